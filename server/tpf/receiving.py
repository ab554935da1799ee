"""The TPF's side of the delivery contract with the send module (formats §5): the intake
(server/intake.py) with the TPF's check, row and status.

The check is the core's one envelope reader (the same clear-part rules as the send module's
upload) with the TPF's own key names: a key the keyring has never held is refused by the reader
at the ``ds:KeyName``, and one it holds but no longer takes (older than the previous year's
after the overlap) when its ciphertext begins, with the message saying which key and until
when; a content key that its private key does not unwrap, then too. All before the upload
finishes; nothing of the file stays.
"""

from __future__ import annotations

import datetime as dt
import re

from flask import Blueprint
from sqlalchemy import select
from sqlalchemy.orm import Session

from ipis_core.decrypt import unwrap_key
from ipis_core.envelope import Envelope, EnvelopeReader

from ..intake import Arrival, Intake, Known, make_blueprint
from ..keyring import Keyring
from ..status_report import QUEUED, NextPartyReport, StatusReport
from .models import DELIVERED, PROCESSING, Submission
from .services import TpfServices, tpf_services

RECEIPT_NUMBER = re.compile(r"IPIS-[0-9]{8}-[0-9]{1,12}")  # the send module's, shown in logs


class TpfCheck:
    """The envelope reader with the TPF's key names, and the keyring's date rule."""

    def __init__(self, keyring: Keyring, day: dt.date) -> None:
        self._keyring = keyring
        self._day = day
        self._accepted = False
        self._reader = EnvelopeReader(keyring.known_names(), on_cipher_text=self._ciphertext)

    def _ciphertext(self, _text: bytes) -> None:
        if not self._accepted:  # the header is complete once the ciphertext begins
            wrapped = self._reader.header.tpf_key
            self._keyring.accept(wrapped.key_name, self._day)
            # One RSA decryption: a file for another key under a known id (or a damaged key)
            # is refused now, not after the whole upload.
            unwrap_key(self._keyring.private_key(wrapped.key_name), wrapped, "TPF-laget")
            self._accepted = True

    def feed(self, chunk: bytes) -> bytes:
        return self._reader.feed(chunk)

    def finish(self) -> bytes:
        return self._reader.close()

    @property
    def envelope(self) -> Envelope:
        return self._reader.envelope


def report_of(row: Submission) -> StatusReport:
    """The §5 status body of one submission (never a number, never person data)."""
    register: NextPartyReport | None = None
    if row.status == DELIVERED:
        if row.register_report is None:  # not taken by the register yet: never claim it was
            register = NextPartyReport(QUEUED)
        elif row.register_report:
            register = NextPartyReport.from_json(_json(row.register_report))
    return StatusReport(
        status=row.status,
        melding=row.message,
        personer=row.persons,
        ugyldige_fodselsnumre=row.invalid_numbers,
        register=register,
    )


def _json(text: str) -> object:
    import json

    return json.loads(text)


class TpfIntakeParty:
    def __init__(self, svc: TpfServices) -> None:
        self._svc = svc

    def new_check(self) -> TpfCheck:
        return TpfCheck(self._svc.keyring, self._svc.today())

    def record(self, db: Session, arrival: Arrival) -> StatusReport:
        check = arrival.check
        assert isinstance(check, TpfCheck)
        envelope = check.envelope
        receipt = arrival.headers.get("x-ipis-kvitteringsnummer", "")
        row = Submission(
            innsending_id=arrival.innsending_id,
            sha256=arrival.sha256,
            size_bytes=arrival.size,
            storage_name=arrival.storage_name,
            key_name=envelope.tpf_key.key_name,
            kommunenummer=envelope.kommunenummer,
            bydelsnummer=envelope.bydelsnummer,
            organisasjonsnummer=envelope.organisasjonsnummer,
            receipt_number=receipt if RECEIPT_NUMBER.fullmatch(receipt) else "",
            status=PROCESSING,
            message="",
            last_error="",
            attempts=0,
        )
        db.add(row)
        db.flush()
        return report_of(row)

    def find(self, db: Session, innsending_id: str) -> Known | None:
        row = db.scalar(select(Submission).where(Submission.innsending_id == innsending_id))
        return None if row is None else Known(row.sha256, report_of(row))


def intake_of_app() -> Intake:
    svc = tpf_services()
    return Intake(
        tokens=svc.config.tokens,
        db=svc.db,
        storage=svc.inputs,
        max_bytes=svc.config.max_upload_bytes,
        party=TpfIntakeParty(svc),
    )


def blueprint() -> Blueprint:
    return make_blueprint("tpf_intake", intake_of_app)
