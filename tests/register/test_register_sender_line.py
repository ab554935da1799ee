"""One sender's line for a year, from the §5 status bodies the send module keeps."""

from __future__ import annotations

import datetime as dt

from ipis_server.register.sender_line import sender_year
from ipis_server.status_report import StatusReport

JAN = dt.datetime(2026, 1, 20, 9, 0, tzinfo=dt.UTC)
FEB = dt.datetime(2026, 2, 3, 9, 0, tzinfo=dt.UTC)
LAST_YEAR = dt.datetime(2025, 12, 1, 9, 0, tzinfo=dt.UTC)


def report(body: dict[str, object]) -> StatusReport:
    return StatusReport.from_json(body)


LOADED = report({"status": "levert", "personer": 120, "ugyldigeFodselsnumre": 0,
                 "register": {"status": "lastet", "personer": 118}})
WAITING = report({"status": "levert", "personer": 120, "register": {"status": "venter"}})
REGISTER_REFUSED = report({"status": "levert", "register": {
    "status": "avvist", "melding": "Personposten med løpenummer 4 forekommer to ganger."}})
TPF_REFUSED = report({"status": "avvist", "melding": "Filen er kryptert med nøkkelen tpf-2024."})


def test_missing_when_nothing_was_received_that_year() -> None:
    line = sender_year(2026, [(LAST_YEAR, LOADED)])
    assert (line.state, line.label, line.persons, line.last_delivery) == (
        "mangler", "Ikke levert", None, None)


def test_delivered_with_the_registers_count_and_the_last_delivery() -> None:
    line = sender_year(2026, [(JAN, LOADED), (FEB, WAITING)])
    assert (line.state, line.label, line.persons, line.last_delivery) == (
        "levert", "Levert", 118, FEB)


def test_in_progress_until_the_register_answers() -> None:
    assert sender_year(2026, [(JAN, WAITING)]).state == "behandles"
    queued = report({"status": "levert", "personer": 120, "register": {"status": "sendes"}})
    assert sender_year(2026, [(JAN, queued)]).state == "behandles"  # not yet at the register
    assert sender_year(2026, [(JAN, None)]).state == "behandles"
    assert sender_year(2026, [(JAN, report({"status": "behandles"}))]).label == (
        "Under behandling")


def test_refused_with_the_latest_reason() -> None:
    line = sender_year(2026, [(JAN, TPF_REFUSED), (FEB, REGISTER_REFUSED)])
    assert (line.state, line.message, line.last_delivery) == (
        "avvist", "Personposten med løpenummer 4 forekommer to ganger.", FEB)


def test_a_later_refusal_does_not_undo_a_delivery() -> None:
    line = sender_year(2026, [(JAN, LOADED), (FEB, TPF_REFUSED)])
    assert line.state == "levert" and line.persons == 118
    assert line.message == (
        "Den siste innsendingen ble avvist: Filen er kryptert med nøkkelen tpf-2024.")
