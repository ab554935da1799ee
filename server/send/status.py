"""Submission states and the Norwegian words the list page shows for them (issue 4, point 6)."""

from __future__ import annotations

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
