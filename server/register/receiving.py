"""The register's side of the delivery contract with the TPF (formats §5): the intake
(server/intake.py) with the register's check, row and status.

The TPF sends two kinds of message to the same address, told apart by the clear root element:
the pseudonymised submission (§4) and, after a secret rotation, the pseudonym mapping (§6).
The check reads the clear part with the one envelope reader and that message's grammar, and
refuses at the door (before the upload finishes, nothing kept) a file that breaks it or is
wrapped for a register key the keyring does not take today.
"""

from __future__ import annotations

import datetime as dt

from flask import Blueprint
from sqlalchemy import select
from sqlalchemy.orm import Session

from ipis_core.envelope import ClearPartReader
from ipis_core.faults import IplosFault

from ..intake import Arrival, Intake, Known, make_blueprint
from ..keyring import Keyring
from ..status_report import StatusReport
from .layer import Wording, kind_of, translated, transport_key
from .loading import accept_transport_key
from .mapping import WORDING as MAPPING_WORDING
from .mapping import MappingReader
from .message import PseudonymisedReader
from .models import MAPPING, MESSAGE, PROCESSING, Delivery
from .services import RegisterServices, register_services


class RegisterCheck:
    """The clear part of a delivery, checked as it arrives; ``kind`` once the root is seen."""

    def __init__(self, keyring: Keyring, day: dt.date) -> None:
        self._keyring = keyring
        self.day = day  # the keys' dates are judged by it, now and when the delivery is loaded
        self._head = b""
        self._reader: ClearPartReader | None = None
        self._accepted = False
        self._wording = Wording()
        self.kind = MESSAGE

    def _choose(self, head: bytes) -> ClearPartReader | None:
        kind = kind_of(head)
        if kind is None:
            return None
        if kind == MAPPING:
            self.kind, self._wording = MAPPING, MAPPING_WORDING
            return MappingReader(self._ciphertext)
        return PseudonymisedReader(self._ciphertext)  # also what it refuses, saying why

    def _ciphertext(self, _text: bytes) -> None:
        if not self._accepted:  # the clear part is complete once the ciphertext begins
            assert self._reader is not None
            accept_transport_key(self._keyring, transport_key(self._reader).key_name, self.day)
            self._accepted = True

    def feed(self, chunk: bytes) -> bytes:
        try:
            if self._reader is None:
                self._head += chunk
                self._reader = self._choose(self._head)
                if self._reader is None:
                    return b""
                chunk, self._head = self._head, b""
            return self._reader.feed(chunk)
        except IplosFault as fault:
            raise translated(fault, self._wording) from None

    def finish(self) -> bytes:
        try:
            if self._reader is None:
                self._reader = PseudonymisedReader(self._ciphertext)
                self._reader.feed(self._head)
            return self._reader.close()
        except IplosFault as fault:
            raise translated(fault, self._wording) from None

    def sender(self) -> tuple[str | None, str | None, str | None]:
        if isinstance(self._reader, PseudonymisedReader):
            clear = self._reader.clear
            return (clear.sender.kommunenummer, clear.sender.bydelsnummer,
                    clear.sender.organisasjonsnummer)
        return None, None, None


def report_of(row: Delivery) -> StatusReport:
    """The register's answer in the §5 status body (never a value from the file)."""
    return StatusReport(status=row.status, melding=row.melding, personer=row.personer)


class RegisterIntakeParty:
    def __init__(self, svc: RegisterServices) -> None:
        self._svc = svc

    def new_check(self) -> RegisterCheck:
        return RegisterCheck(self._svc.keyring, self._svc.today())

    def record(self, db: Session, arrival: Arrival) -> StatusReport:
        check = arrival.check
        assert isinstance(check, RegisterCheck)
        kommune, bydel, org = check.sender()
        row = Delivery(
            innsending_id=arrival.innsending_id,
            sha256=arrival.sha256,
            size_bytes=arrival.size,
            storage_name=arrival.storage_name,
            kind=check.kind,
            nokkeldag=check.day,
            kommunenummer=kommune,
            bydelsnummer=bydel,
            organisasjonsnummer=org,
            status=PROCESSING,
            melding="",
            last_error="",
            attempts=0,
        )
        db.add(row)
        db.flush()
        return report_of(row)

    def find(self, db: Session, innsending_id: str) -> Known | None:
        row = db.scalar(select(Delivery).where(Delivery.innsending_id == innsending_id))
        return None if row is None else Known(row.sha256, report_of(row))


def intake_of_app() -> Intake:
    svc = register_services()
    return Intake(
        tokens=svc.config.tokens,
        db=svc.db,
        storage=svc.storage,
        max_bytes=svc.config.max_upload_bytes,
        party=RegisterIntakeParty(svc),
    )


def blueprint() -> Blueprint:
    return make_blueprint("register_intake", intake_of_app)
