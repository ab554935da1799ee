"""Kommuner and bydeler from SSB's Klass classifications (data/README.md says where from).

The delivery overview lists every kommune (classification 131) and, for the four cities with
bydeler, every bydel (classification 103), so a missing delivery shows as a line, not as an
absence nobody notices.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from importlib import resources

UNKNOWN = "99"  # the classifications' «Uoppgitt» (…99 / 9999): not a place


@dataclass(frozen=True)
class Unit:
    """A sender the register expects: a kommune (``bydelsnummer`` 00) or one of its bydeler."""

    kommunenummer: str
    bydelsnummer: str
    navn: str


@dataclass(frozen=True)
class Kommune:
    unit: Unit
    bydeler: tuple[Unit, ...]  # empty but for Oslo, Bergen, Trondheim and Stavanger


def _rows(name: str) -> list[dict[str, str]]:
    text = resources.files("ipis_server.register.data").joinpath(name).read_text("utf-8")
    return list(csv.DictReader(text.splitlines()))


@functools.cache
def kommuner() -> tuple[Kommune, ...]:
    """Every kommune by number, each with its bydeler by number (read once per process)."""
    bydeler: dict[str, list[Unit]] = {}
    for row in _rows("bydeler.csv"):
        code = row["bydelskode"]
        if code.endswith(UNKNOWN):
            continue
        bydeler.setdefault(code[:4], []).append(Unit(code[:4], code[4:], row["navn"]))
    result = []
    for row in _rows("kommuner.csv"):
        number = row["kommunenummer"]
        if number.endswith(UNKNOWN * 2):
            continue
        result.append(
            Kommune(Unit(number, "00", row["navn"]), tuple(bydeler.get(number, ())))
        )
    return tuple(result)
