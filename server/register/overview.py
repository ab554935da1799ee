"""The delivery overview for the register's staff: for one year, every kommune and bydel with
delivered / missing / refused, persons counted and the last delivery; persons per year.

A submission counts for the year its period ends in (``innsendinger.aar``; a refused one whose
period could not be read, for the year it arrived). A kommune or bydel has **levert** when a
current loaded submission for the year exists (its persons are those of the one with the latest
period), **avvist** when every submission for the year was refused, and **mangler** when there
is none. The four cities may deliver as a whole (bydel 00) or per bydel; both are shown.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .klass import Kommune, Unit, kommuner
from .models import LOADED, PROCESSING, REFUSED, Delivery, Submission

DELIVERED = "levert"
MISSING = "mangler"
REFUSED_STATE = REFUSED
PARTLY = "delvis"  # a city with some of its bydeler delivered, not the whole
COVERED = "dekket"  # a bydel of a city that delivered as a whole
LABELS = {
    DELIVERED: "Levert",
    MISSING: "Mangler",
    REFUSED: "Avvist",
    PARTLY: "Levert for noen bydeler",
    COVERED: "Dekket av hele kommunen",
}


@dataclass
class UnitYear:
    """What one sender has delivered for the year."""

    unit: Unit
    state: str = MISSING
    persons: int | None = None
    last_delivery: dt.datetime | None = None
    submissions: int = 0
    message: str = ""  # the latest refusal's reason, when refused

    @property
    def label(self) -> str:
        return LABELS[self.state]


@dataclass
class KommuneYear:
    line: UnitYear
    bydeler: list[UnitYear] = field(default_factory=list)


@dataclass
class Overview:
    year: int
    kommuner: list[KommuneYear]
    unknown: list[UnitYear]  # senders in the register that Klass does not list
    waiting: int  # deliveries received but not loaded yet (any year)
    years: list[int]  # the years the register has, for the year picker
    persons_per_year: list[tuple[int, int]]

    def count(self, state: str) -> int:
        return sum(1 for k in self.kommuner if k.line.state == state)


@dataclass
class _Row:
    kommunenummer: str
    bydelsnummer: str
    status: str
    gjeldende: bool
    persons: int | None
    period_end: dt.date | None
    received: dt.datetime
    message: str


def _unit_year(unit: Unit, rows: Iterable[_Row]) -> UnitYear:
    result = UnitYear(unit)
    current = [r for r in rows if r.status == LOADED and r.gjeldende]
    all_rows = list(rows)
    result.submissions = len(all_rows)
    if all_rows:
        result.last_delivery = max(r.received for r in all_rows)
    if current:
        latest = max(current, key=lambda r: (r.period_end or dt.date.min, r.received))
        result.state, result.persons = DELIVERED, latest.persons
    elif all_rows and all(r.status == REFUSED for r in all_rows):
        latest = max(all_rows, key=lambda r: r.received)
        result.state, result.message = REFUSED, latest.message
    return result


def _city(kommune: Kommune, rows: dict[tuple[str, str], list[_Row]]) -> KommuneYear:
    whole = _unit_year(kommune.unit, rows.get((kommune.unit.kommunenummer, "00"), []))
    parts = [
        _unit_year(b, rows.get((b.kommunenummer, b.bydelsnummer), [])) for b in kommune.bydeler
    ]
    delivered_parts = [p for p in parts if p.state == DELIVERED]
    if whole.state == DELIVERED:
        for part in parts:
            if part.state == MISSING:
                part.state = COVERED
    elif delivered_parts:
        whole.state = PARTLY
        whole.persons = sum(p.persons or 0 for p in delivered_parts)
    dates = [d for d in [whole.last_delivery, *(p.last_delivery for p in parts)] if d]
    whole.last_delivery = max(dates) if dates else None
    return KommuneYear(whole, parts)


def build(db: Session, year: int) -> Overview:
    found = db.execute(
        select(
            Submission.kommunenummer,
            Submission.bydelsnummer,
            Submission.status,
            Submission.gjeldende,
            Submission.antall_personer,
            Submission.periode_til,
            Submission.mottatt,
            Submission.melding,
        ).where(Submission.aar == year)
    ).all()
    rows: dict[tuple[str, str], list[_Row]] = {}
    for r in found:
        key = (r.kommunenummer or "????", r.bydelsnummer or "??")
        rows.setdefault(key, []).append(_Row(*key, r.status, bool(r.gjeldende),
                                             r.antall_personer, r.periode_til, r.mottatt,
                                             r.melding))
    known: set[tuple[str, str]] = set()
    result = []
    for kommune in kommuner():
        known.add((kommune.unit.kommunenummer, "00"))
        known.update((b.kommunenummer, b.bydelsnummer) for b in kommune.bydeler)
        if kommune.bydeler:
            result.append(_city(kommune, rows))
        else:
            unit = kommune.unit
            result.append(KommuneYear(_unit_year(unit, rows.get((unit.kommunenummer, "00"), []))))
    unknown = [
        _unit_year(Unit(k, b, "(ikke i Klass-listen)"), found_rows)
        for (k, b), found_rows in sorted(rows.items())
        if (k, b) not in known
    ]
    waiting: int = db.scalar(
        select(func.count()).select_from(Delivery).where(Delivery.status == PROCESSING)
    ) or 0
    years = sorted(set(db.scalars(select(Submission.aar).distinct())) | {year}, reverse=True)
    per_year = db.execute(
        select(Submission.aar, func.coalesce(func.sum(Submission.antall_personer), 0))
        .where(Submission.status == LOADED, Submission.gjeldende.is_(True))
        .group_by(Submission.aar)
        .order_by(Submission.aar)
    ).all()
    return Overview(
        year=year,
        kommuner=result,
        unknown=unknown,
        waiting=waiting,
        years=years,
        persons_per_year=[(int(y or 0), int(n or 0)) for y, n in per_year],
    )
