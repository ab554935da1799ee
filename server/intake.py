"""The receiving side of the delivery contract (docs/formater.md §5), as reusable Flask pieces.

The TPF takes files from the send module, and the register from the TPF, the same way:

- ``PUT {base}/{innsendingId}``: bearer token (compared in constant time), the body streamed
  through the party's check into a private temporary file, hashed as it passes, fsynced and
  renamed into storage, then the party's row committed: only then ``202``. A check that
  refuses the stream answers ``400`` with ``{"melding": …}`` at once, before the upload
  finishes, and the partial file is deleted. ``X-IPIS-SHA256`` must equal the bytes received.
- The same id again: the database settles it. The id is unique in the party's table, so two
  PUTs of one id at the same moment both store their file, one insert wins and the other
  removes its file: the same SHA-256 answers ``202`` (a no-op), another ``409``. The look-up
  before reading the body only spares the transfer; it decides nothing.
- ``GET {base}/{innsendingId}``: ``404`` unknown; ``202`` while the answer may still change,
  ``200`` once it is final; both with the JSON status body (server/status_report.py).

The party supplies an ``IntakeParty``: its stream check, its row (unique on the id) and its
status. Nothing here logs or answers with anything from the file's content.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from flask import Blueprint, Response, jsonify, request
from sqlalchemy import BigInteger, String
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Mapped, Session, mapped_column
from werkzeug.exceptions import ClientDisconnected

from ipis_core.faults import IplosFault

from .db import Database
from .dbtypes import UtcDateTime, utcnow
from .status_report import StatusReport
from .storage import IncomingFile, Storage, StorageError

log = logging.getLogger("ipis.intake")

# A refusal comes after at most this much of a bad file (reads block until a chunk is full).
CHUNK_BYTES = 256 * 1024
ID_PATTERN = re.compile(r"[0-9a-f]{32}")  # the send module's public id: 128 random bits, hex
SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")

UNAUTHORIZED = "Mangler gyldig token."
UNKNOWN = "Ukjent innsending."
NO_LENGTH = "Content-Length mangler."
TOO_LARGE = "Filen er for stor."
BAD_DIGEST = "X-IPIS-SHA256 mangler eller er ikke en SHA-256 i heksadesimal."
DIGEST_MISMATCH = (
    "Filen kom ikke frem uendret: SHA-256 av det som ble mottatt, er ikke den som ble oppgitt."
)
CUT_OFF = "Filen ble ikke mottatt helt."
CONFLICT = "Innsendingen finnes allerede med et annet innhold (en annen SHA-256)."
STORAGE_FAILED = "Filen kunne ikke lagres. Prøv igjen senere."
DATABASE_FAILED = "Databasen svarer ikke. Prøv igjen senere."


class ReceivedColumns:
    """The columns a party's intake table has (a declarative mixin): the id is unique, so
    the database settles a second PUT of the same id."""

    innsending_id: Mapped[str] = mapped_column(String(32), unique=True)
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    storage_name: Mapped[str] = mapped_column(String(100))
    received_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class StreamCheck(Protocol):
    """Validates a file as it arrives: ``feed`` returns the bytes now validated (only those
    are written), ``finish`` the rest; both raise an ``IplosFault`` to refuse the file."""

    def feed(self, chunk: bytes) -> bytes: ...

    def finish(self) -> bytes: ...


@dataclass(frozen=True)
class Arrival:
    """A file stored durably, for the party to record (with what its check learned)."""

    innsending_id: str
    sha256: str
    size: int
    storage_name: str
    check: StreamCheck
    headers: dict[str, str]  # the request's X-IPIS-* headers, names in lower case


@dataclass(frozen=True)
class Known:
    """What the party holds for an id: the SHA-256 it was stored with and its status."""

    sha256: str
    report: StatusReport


class IntakeParty(Protocol):
    def new_check(self) -> StreamCheck:
        """A fresh check for one request."""
        ...

    def record(self, db: Session, arrival: Arrival) -> StatusReport:
        """Add the party's row(s) for a stored file and flush, in the caller's transaction;
        the id's unique constraint raises ``IntegrityError`` for a second one."""
        ...

    def find(self, db: Session, innsending_id: str) -> Known | None: ...


@dataclass(frozen=True)
class Intake:
    """One party's intake: its tokens, database, storage, size limit and party hooks."""

    tokens: Sequence[str]
    db: Database
    storage: Storage
    max_bytes: int
    party: IntakeParty


def token_ok(given: str, tokens: Sequence[str]) -> bool:
    """Constant time: the digests of the given and every accepted token are compared, all of
    them, so neither the token nor which one matched shows in the timing."""
    given_digest = hashlib.sha256(given.encode("utf-8", "replace")).digest()
    matched = False
    for token in tokens:
        if token:
            digest = hashlib.sha256(token.encode("utf-8")).digest()
            matched |= hmac.compare_digest(given_digest, digest)
    return matched


def _bearer() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def answer(status: int, body: dict[str, Any], close: bool = False) -> Response:
    response = jsonify(body)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    if close:  # the body was not read: do not let the client go on sending it
        response.headers["Connection"] = "close"
    return response


def refusal(status: int, message: str, close: bool = False) -> Response:
    return answer(status, {"melding": message}, close)


def _status_answer(report: StatusReport) -> Response:
    return answer(200 if report.final else 202, report.to_json())


class _Upload:
    """One PUT's body: through the check, hashed, into a private temporary file."""

    def __init__(self, intake: Intake) -> None:
        self.check = intake.party.new_check()
        self.target: IncomingFile = intake.storage.open_incoming()
        self.digest = hashlib.sha256()

    def write(self, data: bytes) -> None:
        if data:
            self.digest.update(data)
            self.target.write(data)

    def run(self, length: int) -> None:
        stream = request.stream
        remaining = length
        while remaining > 0:
            chunk = stream.read(min(CHUNK_BYTES, remaining))
            if not chunk:
                raise ClientDisconnected()
            remaining -= len(chunk)
            self.write(self.check.feed(chunk))
        self.write(self.check.finish())


def receive(intake: Intake, innsending_id: str) -> Response:
    """``PUT /{innsendingId}``."""
    if not token_ok(_bearer(), intake.tokens):
        response = refusal(401, UNAUTHORIZED, close=True)
        response.headers["WWW-Authenticate"] = "Bearer"
        return response
    if not ID_PATTERN.fullmatch(innsending_id):
        return refusal(404, UNKNOWN, close=True)
    claimed = request.headers.get("X-IPIS-SHA256", "").strip().lower()
    if not SHA256_PATTERN.fullmatch(claimed):
        return refusal(400, BAD_DIGEST, close=True)
    length = request.content_length
    if length is None:
        return refusal(411, NO_LENGTH, close=True)
    if length > intake.max_bytes:
        return refusal(413, TOO_LARGE, close=True)
    with intake.db.session() as db:
        known = intake.party.find(db, innsending_id)
    if known is not None:  # spares the transfer only; the unique constraint decides below
        if known.sha256 == claimed:
            return answer(202, known.report.to_json(), close=True)
        return refusal(409, CONFLICT, close=True)
    try:
        upload = _Upload(intake)
    except OSError:
        log.error("Innsending %s: mottaksmappen kan ikke brukes", innsending_id)
        return refusal(503, STORAGE_FAILED, close=True)
    try:
        upload.run(length)
    except IplosFault as fault:
        upload.target.discard()
        log.info("Innsending %s avvist ved mottak: %s", innsending_id, type(fault).__name__)
        return refusal(400, fault.message, close=True)
    except ClientDisconnected:
        upload.target.discard()
        log.info("Innsending %s: forbindelsen ble brutt under mottaket", innsending_id)
        return refusal(400, CUT_OFF, close=True)
    except StorageError:
        log.error("Innsending %s: filen kunne ikke skrives", innsending_id)
        return refusal(507, STORAGE_FAILED, close=True)
    except BaseException:
        upload.target.discard()
        raise
    sha256 = upload.digest.hexdigest()
    if sha256 != claimed:
        upload.target.discard()
        log.warning("Innsending %s: SHA-256 stemmer ikke med X-IPIS-SHA256", innsending_id)
        return refusal(400, DIGEST_MISMATCH)
    return _store(intake, innsending_id, upload, sha256)


def _store(intake: Intake, innsending_id: str, upload: _Upload, sha256: str) -> Response:
    """fsync and rename, then the row; a second row for the id loses to the first."""
    storage_name = f"{innsending_id}-{secrets.token_hex(4)}.xml"  # parallel PUTs never clash
    try:
        upload.target.commit(storage_name)
    except StorageError:
        log.error("Innsending %s: filen kunne ikke lagres varig", innsending_id)
        return refusal(507, STORAGE_FAILED)
    arrival = Arrival(
        innsending_id=innsending_id,
        sha256=sha256,
        size=upload.target.size,
        storage_name=storage_name,
        check=upload.check,
        headers={
            k.lower(): v for k, v in request.headers.items() if k.lower().startswith("x-ipis-")
        },
    )
    try:
        with intake.db.session() as db:
            try:
                report = intake.party.record(db, arrival)
                db.commit()
            except IntegrityError:
                db.rollback()
                intake.storage.remove(storage_name)
                known = intake.party.find(db, innsending_id)
                if known is None:
                    raise
                if known.sha256 == sha256:
                    log.info("Innsending %s mottatt på nytt (samme SHA-256)", innsending_id)
                    return answer(202, known.report.to_json())
                return refusal(409, CONFLICT)
    except SQLAlchemyError as error:
        intake.storage.remove(storage_name)
        log.error("Innsending %s: databasefeil %s; filen er fjernet", innsending_id,
                  type(error).__name__)
        return refusal(503, DATABASE_FAILED)
    log.info("Mottatt innsending %s: %d byte, sha256 %s", innsending_id, arrival.size, sha256)
    return answer(202, report.to_json())


def status(intake: Intake, innsending_id: str) -> Response:
    """``GET /{innsendingId}``."""
    if not token_ok(_bearer(), intake.tokens):
        response = refusal(401, UNAUTHORIZED)
        response.headers["WWW-Authenticate"] = "Bearer"
        return response
    if not ID_PATTERN.fullmatch(innsending_id):
        return refusal(404, UNKNOWN)
    try:
        with intake.db.session() as db:
            known = intake.party.find(db, innsending_id)
    except SQLAlchemyError as error:
        log.error("Status for %s: databasefeil %s", innsending_id, type(error).__name__)
        return refusal(503, DATABASE_FAILED)
    if known is None:
        return refusal(404, UNKNOWN)
    return _status_answer(known.report)


def make_blueprint(name: str, intake_of: Callable[[], Intake]) -> Blueprint:
    """``PUT``/``GET /<innsending_id>`` under the blueprint's prefix; ``intake_of`` gives the
    app's Intake at request time (no module-level state)."""
    blueprint = Blueprint(name, __name__)

    @blueprint.route("/<innsending_id>", methods=["PUT"])
    def put(innsending_id: str) -> Response:
        return receive(intake_of(), innsending_id)

    @blueprint.route("/<innsending_id>", methods=["GET"])
    def get(innsending_id: str) -> Response:
        return status(intake_of(), innsending_id)

    return blueprint
