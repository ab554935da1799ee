"""The TPF's workers: processing received files, and delivering to the register.

Both claim their rows the same way (server/outbox.py: a lease, ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, a heartbeat), so several ``ipis tpf worker`` processes on several hosts can share
one database: each submission is processed by one of them at a time, and if two ever finish
the same one (a lease ran out), the unique message row per submission keeps one result.

A processing failure that is the file's fault (format, a layer altered, the sender changed, a
key no longer accepted) refuses the submission with its Norwegian message; anything else (no
current register key, the secret missing, a disk or database error) is retried with backoff.
Nothing a worker logs comes from the file: faults by class, other errors by type only (no
message, no traceback), since a message of an unexpected error could quote the content.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ipis_core.faults import EncryptedMessageFault, IplosFault

from ..dbtypes import utcnow
from ..outbox import (
    Answer,
    HttpTarget,
    LeasedQueue,
    OutboxSettings,
    OutboxWorker,
    Outcome,
    Parcel,
    backoff,
    make_deliverer,
)
from ..status_report import REFUSED as REPORT_REFUSED
from ..status_report import WAITING, NextPartyReport
from ..storage import IncomingFile
from .models import (
    CURRENT,
    DELIVERED,
    MESSAGE,
    REFUSED,
    PseudonymSecret,
    RegisterOutboxItem,
    Submission,
)
from .processing import ProcessingResult, pseudonymise
from .secret_state import current_pseudonymiser
from .services import TpfServices

log = logging.getLogger("ipis.tpf")


class _HashingSink:
    """The temporary output file, hashed as it is written (the §5 ``X-IPIS-SHA256``)."""

    def __init__(self, target: IncomingFile) -> None:
        self.target = target
        self.digest = hashlib.sha256()

    def write(self, data: bytes) -> None:
        self.digest.update(data)
        self.target.write(data)


@dataclass(frozen=True)
class _Job:
    row_id: int
    innsending_id: str
    storage_name: str


class _Retry(Exception):
    """Not the file's fault: try again later (the text is for the operator's log)."""


class ProcessingWorker:
    """Claims received submissions and pseudonymises them (server/tpf/processing.py)."""

    def __init__(self, svc: TpfServices, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self._svc = svc
        self._clock = clock
        self.queue = LeasedQueue(svc.db, Submission, svc.config.worker_lease_seconds, clock)

    def process_one(self) -> bool:
        row_id = self.queue.claim()
        if row_id is None:
            return False
        with self._svc.db.session() as db:
            row = db.get(Submission, row_id)
            assert row is not None
            row.attempts += 1
            job = _Job(row.id, row.innsending_id, row.storage_name)
            attempts = row.attempts
            db.commit()
        try:
            with self.queue.heartbeat(row_id):
                self._process(job)
        except EncryptedMessageFault as fault:
            self._refuse(job, fault)
        except _Retry as retry:
            self._retry(job, attempts, str(retry))
        except IplosFault as fault:  # the operator's: a key, the secret
            self._retry(job, attempts, fault.message)
        except Exception as error:  # never the message: it could quote the content
            self._retry(job, attempts, type(error).__name__)
        return True

    def _process(self, job: _Job) -> None:
        svc = self._svc
        pseudonymiser = current_pseudonymiser(svc.db, svc.secrets, svc.config.test_numbers)
        register_key = svc.keyring.current(svc.today()).key_file.iplos
        target = svc.outputs.open_incoming()
        sink = _HashingSink(target)
        try:
            with svc.inputs.path_of(job.storage_name).open("rb") as source:
                result = pseudonymise(
                    source,
                    sink,
                    # The key's date was checked at the door, on the day the file came in; a
                    # file accepted then is processed whenever its turn comes.
                    private_key=svc.keyring.private_key,
                    register_key=register_key,
                    pseudonymiser=pseudonymiser,
                    innsending_id=job.innsending_id,
                    key_names=svc.keyring.known_names(),
                )
            output_name = f"{job.innsending_id}-{secrets.token_hex(4)}.xml"
            target.commit(output_name)
        except BaseException:
            target.discard()  # unauthenticated until the end: nothing of it is kept
            raise
        try:
            self._finish(job, result, output_name, target.size, sink.digest.hexdigest())
        except BaseException:
            svc.outputs.remove(output_name)
            raise

    def _finish(
        self, job: _Job, result: ProcessingResult, output_name: str, size: int, sha256: str
    ) -> None:
        """One transaction: the secret still current, the row done, the message queued."""
        now = self._clock()
        with self._svc.db.session() as db:
            still_current = db.execute(
                update(PseudonymSecret)
                .where(PseudonymSecret.id == result.secret_id, PseudonymSecret.state == CURRENT)
                .values(uses=PseudonymSecret.uses + 1)
            )
            if still_current.rowcount != 1:  # type: ignore[attr-defined]
                raise _Retry("pseudonymhemmeligheten ble byttet under behandlingen")
            row = db.get(Submission, job.row_id)
            assert row is not None
            if row.done_at is not None:
                raise _Retry("behandlet av en annen arbeider")
            row.status = DELIVERED
            row.persons = result.persons
            row.invalid_numbers = result.invalid_numbers
            row.secret_id = result.secret_id
            row.file_id = result.file_id
            row.processed_at = now
            row.done_at = now
            row.claimed_until = None
            row.last_error = ""
            db.add(
                RegisterOutboxItem(
                    kind=MESSAGE,
                    delivery_id=job.innsending_id,
                    submission_id=row.id,
                    storage_name=output_name,
                    size_bytes=size,
                    sha256=sha256,
                    sent=False,
                    attempts=0,
                    last_error="",
                    next_attempt_at=now,
                )
            )
            try:
                db.commit()
            except IntegrityError:
                raise _Retry("meldingen er allerede lagt i utboksen") from None
        log.info(
            "Innsending %s behandlet: %d personer, %d ugyldige fødselsnumre, hemmelighet %s",
            job.innsending_id, result.persons, result.invalid_numbers, result.secret_id,
        )

    def _refuse(self, job: _Job, fault: EncryptedMessageFault) -> None:
        now = self._clock()
        with self._svc.db.session() as db:
            row = db.get(Submission, job.row_id)
            assert row is not None
            row.status = REFUSED
            row.message = fault.message
            row.done_at = now
            row.processed_at = now
            row.claimed_until = None
            db.commit()
        log.info("Innsending %s avvist: %s", job.innsending_id, type(fault).__name__)

    def _retry(self, job: _Job, attempts: int, reason: str) -> None:
        now = self._clock()
        config = self._svc.config
        with self._svc.db.session() as db:
            row = db.get(Submission, job.row_id)
            assert row is not None
            if row.done_at is not None:
                return
            row.last_error = reason[:500]
            row.claimed_until = None
            row.next_attempt_at = now + backoff(
                attempts, config.retry_base_seconds, config.retry_max_seconds
            )
            db.commit()
        log.warning("Behandling av %s utsatt (forsøk %d): %s", job.innsending_id, attempts,
                    reason)


def register_target(svc: TpfServices) -> HttpTarget:
    config = svc.config
    return HttpTarget(
        url=config.register_url,
        token=config.register_token,
        name="registeret",
        ca_file=config.register_ca_file,
        client_cert=config.register_client_cert,
        client_key=config.register_client_key,
        connect_timeout_seconds=config.register_connect_timeout_seconds,
        read_timeout_seconds=config.register_read_timeout_seconds,
        read_seconds_per_mb=config.register_read_seconds_per_mb,
    )


class RegisterOutbox(OutboxWorker[RegisterOutboxItem]):
    """Delivers the TPF's messages to the register (``IPIS_TPF_REGISTER_URL``, or a local
    folder for the demo) and keeps the register's answer for the send module's status."""

    def __init__(self, svc: TpfServices, clock: Callable[[], dt.datetime] = utcnow) -> None:
        config = svc.config
        settings = OutboxSettings(
            lease_seconds=config.worker_lease_seconds,
            retry_base_seconds=config.retry_base_seconds,
            retry_max_seconds=config.retry_max_seconds,
            poll_answer_seconds=config.register_poll_seconds,
            idle_seconds=config.worker_idle_seconds,
        )
        deliverer = make_deliverer(register_target(svc), config.register_inbox_dir)
        super().__init__(svc.db, RegisterOutboxItem, deliverer, settings, clock)
        self._svc = svc

    def parcel(self, db: Session, row: RegisterOutboxItem) -> Parcel:
        path = self._svc.outputs.path_of(row.storage_name)
        return Parcel(row.delivery_id, path, row.size_bytes, row.sha256)

    def sent_before(self, db: Session, row: RegisterOutboxItem) -> bool:
        return row.sent

    def on_answer(
        self, db: Session, row: RegisterOutboxItem, answer: Answer, now: dt.datetime
    ) -> None:
        row.sent = True
        submission = row.submission
        if submission is None:  # a §6 mapping: the log says what the register answered
            return
        if answer.outcome is Outcome.REFUSED:
            melding = answer.message or "Registeret avviste meldingen uten å oppgi grunn."
            report: str | None = NextPartyReport(REPORT_REFUSED, melding).dumps()
        elif answer.report is not None:
            report = answer.report.as_next_party().dumps()
        elif not self.deliverer.polls:
            report = ""  # a local folder: nobody answers
        else:  # taken, with no status body: waiting for the register's answer
            report = submission.register_report or NextPartyReport(WAITING).dumps()
        submission.register_report = report

    def describe(self, row: RegisterOutboxItem) -> str:
        return f"{row.kind} {row.delivery_id}"


class TpfWorker:
    """Both loops in one thread: ``ipis tpf worker`` and the thread of ``ipis tpf serve``."""

    def __init__(self, svc: TpfServices, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.svc = svc
        self.processing = ProcessingWorker(svc, clock)
        self.outbox = RegisterOutbox(svc, clock)

    def process_one(self) -> bool:
        processed = self.processing.process_one()
        delivered = self.outbox.process_one()
        return processed or delivered

    def drain(self) -> int:
        count = 0
        while self.process_one():
            count += 1
        return count

    def _sweep(self) -> None:
        for storage in (self.svc.inputs, self.svc.outputs):
            storage.clear_incoming()

    def run(self, stop: threading.Event) -> None:
        config = self.svc.config
        next_sweep = 0.0
        while not stop.is_set():
            try:
                if time.monotonic() >= next_sweep:
                    next_sweep = time.monotonic() + 60.0
                    self._sweep()
                busy = self.process_one()
            except Exception as error:  # survive a database hiccup; type only (privacy)
                log.error("Feil i TPF-arbeideren (%s); prøver igjen", type(error).__name__)
                busy = False
            if not busy:
                stop.wait(config.worker_idle_seconds)


def start_thread(svc: TpfServices, stop: threading.Event) -> threading.Thread:
    thread = threading.Thread(
        target=TpfWorker(svc).run, args=(stop,), name="ipis-tpf-worker", daemon=True
    )
    thread.start()
    return thread

