"""One sender's line for a year, for the send module's history page: delivered, in progress,
refused or missing, with the persons the register counted and the last delivery.

Made from what the send module already holds for each of the account's submissions: when it
was received and the TPF's §5 status body, which carries the register's answer (``register``).
The send module does not know a submission's period (it is encrypted), so a submission counts
for the year it was *received* in; the register's own overview counts by the period.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from ..status_report import LOADED, PROCESSING, QUEUED, REFUSED, WAITING, StatusReport

DELIVERED = "levert"  # the register loaded a submission received this year
IN_PROGRESS = "behandles"  # on its way: at the TPF, or waiting for the register
REFUSED_LINE = "avvist"  # every submission this year was refused (by the TPF or the register)
MISSING = "mangler"  # nothing received this year
LABELS = {
    DELIVERED: "Levert",
    IN_PROGRESS: "Under behandling",
    REFUSED_LINE: "Avvist",
    MISSING: "Ikke levert",
}


@dataclass(frozen=True)
class SenderYear:
    year: int
    state: str  # levert | behandles | avvist | mangler
    persons: int | None  # the register's count for the latest loaded submission
    last_delivery: dt.datetime | None  # the latest submission received this year
    message: str  # the reason of the latest refusal, when it matters

    @property
    def label(self) -> str:
        return LABELS[self.state]


def _register_state(report: StatusReport | None) -> str:
    """One submission's state along the whole chain."""
    if report is None or report.status == PROCESSING:
        return IN_PROGRESS
    if report.status == REFUSED:
        return REFUSED_LINE
    register = report.register
    if register is None:
        return IN_PROGRESS  # passed on where nobody answers (the demo's folder)
    if register.status == LOADED:
        return DELIVERED
    if register.status in (QUEUED, WAITING):
        return IN_PROGRESS
    return REFUSED_LINE


def _message(report: StatusReport | None) -> str:
    if report is None:
        return ""
    if report.status == REFUSED:
        return report.melding
    return report.register.melding if report.register is not None else ""


def sender_year(year: int, submissions: Iterable[tuple[dt.datetime, StatusReport | None]]
                ) -> SenderYear:
    """The line for ``year`` from (received at, the TPF's status body or None) of each of one
    account's submissions (any years; the others are left out)."""
    chosen = sorted((s for s in submissions if s[0].year == year), key=lambda s: s[0])
    if not chosen:
        return SenderYear(year, MISSING, None, None, "")
    last_received = chosen[-1][0]
    states = [(received, report, _register_state(report)) for received, report in chosen]
    loaded = [s for s in states if s[2] == DELIVERED]
    if loaded:
        _, report, _ = loaded[-1]
        assert report is not None and report.register is not None
        latest = states[-1]
        note = _message(latest[1]) if latest[2] == REFUSED_LINE else ""
        return SenderYear(year, DELIVERED, report.register.personer, last_received,
                          f"Den siste innsendingen ble avvist: {note}" if note else "")
    if any(s[2] == IN_PROGRESS for s in states):
        return SenderYear(year, IN_PROGRESS, None, last_received, "")
    return SenderYear(year, REFUSED_LINE, None, last_received, _message(states[-1][1]))
