"""Submission states and the Norwegian words the pages show for them (issue 4.6, issue 9.5).

The delivery state is the send module's own; once the TPF answers with its JSON status
(formats §5, kept in ``Submission.tpf_report``), the pages show the whole chain: received,
forwarded to the TPF, processed by the TPF with the count of invalid numbers, loaded by the
register or refused with the reason. Counts only, never a number.
"""

from __future__ import annotations

from typing import Protocol

from ..status_report import (
    DELIVERED,
    LOADED,
    PROCESSING,
    QUEUED,
    StatusReport,
    StatusReportInvalid,
)
from ..status_report import REFUSED as REPORT_REFUSED

AWAITING_CONFIRMATION = "venter"  # identical to an earlier file; the user has not decided
RECEIVED = "mottatt"  # durable in storage, not yet delivered to the TPF
FORWARDED = "videresendt"  # the TPF accepted it (202), confirmation pending
CONFIRMED = "bekreftet"  # the TPF confirmed receipt
RETRYING = "feilet"  # the last delivery attempt failed; the worker tries again
REFUSED = "avvist"  # the TPF refused the file (its reason is in the submission's tpf_report)

LABELS = {
    AWAITING_CONFIRMATION: "venter på bekreftelse (lik en tidligere fil)",
    RECEIVED: "mottatt",
    FORWARDED: "videresendt",
    CONFIRMED: "bekreftet av TPF",
    RETRYING: "feilet — prøver igjen",
    REFUSED: "avvist av TPF",
}


def label(status: str) -> str:
    return LABELS.get(status, status)


class _Shown(Protocol):
    status: str
    tpf_report: str | None


def tpf_report(submission: _Shown) -> StatusReport | None:
    """The TPF's last status as kept (checked when it was kept; checked again here)."""
    if not submission.tpf_report:
        return None
    try:
        return StatusReport.loads(submission.tpf_report)
    except StatusReportInvalid:
        return None


def _persons(count: int | None) -> str:
    return "" if count is None else f"{count} {'person' if count == 1 else 'personer'}"


def _tpf_step(report: StatusReport) -> str:
    if report.status == PROCESSING:
        return "Videresendt til TPF, som behandler filen"
    if report.status == REPORT_REFUSED:
        return f"Avvist av TPF: {report.melding}" if report.melding else "Avvist av TPF"
    invalid = report.ugyldige_fodselsnumre or 0
    counts = [part for part in (_persons(report.personer),) if part]
    counts.append(
        "ingen ugyldige fødselsnumre"
        if invalid == 0
        else f"{invalid} ugyldige fødselsnumre (ikke sendt videre)"
        if invalid != 1
        else "1 ugyldig fødselsnummer (ikke sendt videre)"
    )
    return "Behandlet av TPF: " + ", ".join(counts)


def _register_step(report: StatusReport) -> str | None:
    if report.status != DELIVERED:
        return None
    register = report.register
    if register is None:
        return "Sendt videre til registeret"
    if register.status == LOADED:
        persons = _persons(register.personer)
        return "Lastet i registeret" + (f": {persons}" if persons else "")
    if register.status == REPORT_REFUSED:
        return "Avvist av registeret" + (f": {register.melding}" if register.melding else "")
    if register.status == QUEUED:  # the register has not taken it yet (it may be down)
        return "Venter på levering til registeret"
    return "Sendt videre til registeret, venter på svar"


def steps(submission: _Shown) -> list[str]:
    """The chain so far, one line per step after «mottatt» (the receipt page)."""
    report = tpf_report(submission)
    if report is None:
        return [label(submission.status)]
    shown = ["Mottatt", _tpf_step(report)]
    if report.status != PROCESSING:
        shown.insert(1, "Videresendt til TPF")
    register = _register_step(report)
    if register is not None:
        shown.append(register)
    return shown


def summary(submission: _Shown) -> str:
    """The last step (the history page's status column)."""
    return steps(submission)[-1]


def css_class(submission: _Shown) -> str:
    report = tpf_report(submission)
    refused = report is not None and (
        report.status == REPORT_REFUSED
        or (report.register is not None and report.register.status == REPORT_REFUSED)
    )
    return "status-avvist" if refused else f"status-{submission.status}"
