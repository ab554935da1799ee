"""The sending side of the delivery contract (docs/formater.md §5): one transactional outbox
for every party that passes files on (the send module to the TPF, the TPF to the register).

A party commits its outbox row in the same transaction as the thing it owes, so nothing can
be forgotten; a worker delivers at least once and the receiver deduplicates by the id in the
URL. Several workers (threads, processes, hosts) may drain one database:

- **claim**: a due row is taken with a short lease (``claimed_until``), on PostgreSQL with
  ``SELECT … FOR UPDATE SKIP LOCKED`` so workers never queue behind each other's row locks,
  and on every database by a conditional ``UPDATE`` that only one worker can win;
- **heartbeat**: the lease is renewed while a file travels (a 1 GB PUT takes minutes), so the
  row of a killed worker is due again within one lease, not when a long timeout ends;
- **retry**: any failure (network, 5xx, a wrong token) is retried with exponential backoff and
  jitter, capped; the first attempt after any earlier one asks with ``GET`` before it sends
  the file again, since a receiver that answered too late may have it already;
- **answer**: ``202`` means taken; the worker then asks with ``GET`` every poll interval until
  the receiver's answer is final (``200``). A refusal at the door (``400``, ``409``, ``413``,
  ``422``) is final too, with the receiver's Norwegian message; retrying would not help.

The party supplies the rows and what an answer means to it (``OutboxWorker`` subclasses).
"""

from __future__ import annotations

import abc
import datetime as dt
import enum
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, Protocol, TypeVar

import requests
from sqlalchemy import Integer, Text, or_, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from .db import Database
from .dbtypes import UtcDateTime, utcnow
from .status_report import StatusReport, StatusReportInvalid, check_message
from .storage import fsync_folder

log = logging.getLogger("ipis.outbox")
MEGABYTE = 1024 * 1024
COPY_CHUNK = 1 << 20
REFUSAL_CODES = frozenset({400, 409, 413, 422})
MAX_ERROR_CHARS = 500


class DeliveryFailed(Exception):
    """This attempt failed (network, the receiver's error); the worker tries again later."""


class Outcome(enum.Enum):
    TAKEN = "taken"  # 202: stored by the receiver, its answer may still change
    DONE = "done"  # 200/201: the receiver's answer is final
    REFUSED = "refused"  # refused at the door: final, with the receiver's message
    UNKNOWN = "unknown"  # GET 404: the receiver does not have it (send it)


@dataclass(frozen=True)
class Answer:
    outcome: Outcome
    http_status: int = 0
    report: StatusReport | None = None  # the JSON status body, when it keeps the contract
    message: str = ""  # the receiver's Norwegian reason for a refusal


@dataclass(frozen=True)
class Parcel:
    """One file to deliver: ``key`` is the id in the URL (the submission id)."""

    key: str
    path: Path
    size: int
    sha256: str
    headers: Mapping[str, str] = field(default_factory=dict)


class Deliverer(Protocol):
    polls: bool  # the receiver answers later: ask again after 202

    def put(self, parcel: Parcel) -> Answer: ...

    def get(self, parcel: Parcel) -> Answer: ...


@dataclass(frozen=True)
class HttpTarget:
    """Where and how to deliver: ``PUT``/``GET {url}/{id}`` with a bearer token."""

    url: str
    token: str
    name: str = "mottakeren"  # in error texts: "TPF", "registeret"
    ca_file: str = ""  # TLS trust anchor (mutual TLS: docs/drift.md)
    client_cert: str = ""
    client_key: str = ""
    connect_timeout_seconds: float = 10.0
    # The receiver answers a PUT only once it has the whole file: the read timeout is the
    # base plus so much per MB of the file.
    read_timeout_seconds: float = 60.0
    read_seconds_per_mb: float = 0.5


def _refusal_message(response: requests.Response) -> str:
    try:
        data = response.json()
        return check_message(data.get("melding")) if isinstance(data, dict) else ""
    except (ValueError, StatusReportInvalid):
        return ""
    finally:
        response.close()


def _report(response: requests.Response) -> StatusReport | None:
    if not response.content:
        return None
    try:
        return StatusReport.loads(response.content)
    except StatusReportInvalid as invalid:
        log.warning("Ugyldig statussvar (%s) ignorert", invalid)
        return None


class HttpDeliverer:
    """Streamed ``PUT`` (never read whole) and ``GET`` over one requests session."""

    polls = True

    def __init__(self, target: HttpTarget) -> None:
        self._target = target
        self._base = target.url.rstrip("/")
        self._http = requests.Session()
        self._http.headers["Authorization"] = f"Bearer {target.token}"
        if target.ca_file:
            self._http.verify = target.ca_file
        if target.client_cert:
            self._http.cert = (target.client_cert, target.client_key or None)  # type: ignore[assignment]

    def _url(self, parcel: Parcel) -> str:
        return f"{self._base}/{parcel.key}"

    def timeouts(self, size_bytes: int) -> tuple[float, float]:
        """(connect, read) for a file of this size."""
        target = self._target
        return (
            target.connect_timeout_seconds,
            target.read_timeout_seconds + target.read_seconds_per_mb * size_bytes / MEGABYTE,
        )

    def put(self, parcel: Parcel) -> Answer:
        headers = {
            "Content-Type": "application/xml",
            "Content-Length": str(parcel.size),
            "X-IPIS-SHA256": parcel.sha256,
            **parcel.headers,
        }
        try:
            with parcel.path.open("rb") as body:
                response = self._http.put(
                    self._url(parcel), data=body, headers=headers,
                    timeout=self.timeouts(parcel.size),
                )
        except OSError as error:  # requests' errors are OSErrors too
            raise DeliveryFailed(type(error).__name__) from None
        code = response.status_code
        if code in (200, 201):
            return Answer(Outcome.DONE, code, _report(response))
        if code == 202:
            return Answer(Outcome.TAKEN, code, _report(response))
        if code in REFUSAL_CODES:
            return Answer(Outcome.REFUSED, code, None, _refusal_message(response))
        raise DeliveryFailed(f"{self._target.name} svarte HTTP {code}")

    def get(self, parcel: Parcel) -> Answer:
        try:
            response = self._http.get(self._url(parcel), timeout=self.timeouts(0))
        except OSError as error:
            raise DeliveryFailed(type(error).__name__) from None
        code = response.status_code
        if code == 200:
            return Answer(Outcome.DONE, code, _report(response))
        if code == 202:
            return Answer(Outcome.TAKEN, code, _report(response))
        if code == 404:
            return Answer(Outcome.UNKNOWN, code)
        raise DeliveryFailed(f"{self._target.name} svarte HTTP {code}")


class FolderDeliverer:
    """Demo stand-in for a receiver: a durable copy in a local folder, ``{key}.xml``."""

    polls = False

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)

    def target(self, parcel: Parcel) -> Path:
        return self._folder / f"{parcel.key}.xml"

    def put(self, parcel: Parcel) -> Answer:
        target = self.target(parcel)
        if target.exists():
            return Answer(Outcome.TAKEN)  # delivered before (at least once, idempotent)
        temp = self._folder / f".{parcel.key}.tmp"
        try:
            with parcel.path.open("rb") as source, temp.open("wb") as out:
                os.fchmod(out.fileno(), 0o600)
                while block := source.read(COPY_CHUNK):
                    out.write(block)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, target)
            fsync_folder(self._folder)
        except OSError as error:
            temp.unlink(missing_ok=True)
            raise DeliveryFailed(type(error).__name__) from None
        return Answer(Outcome.TAKEN)

    def get(self, parcel: Parcel) -> Answer:
        return Answer(Outcome.TAKEN if self.target(parcel).exists() else Outcome.UNKNOWN)


def make_deliverer(target: HttpTarget, folder: Path) -> Deliverer:
    """HTTP when a URL is set; else the local folder (demo)."""
    return HttpDeliverer(target) if target.url else FolderDeliverer(folder)


def backoff(attempts: int, base_seconds: float, max_seconds: float) -> dt.timedelta:
    """Exponential with 20 % jitter, capped: 5 s, 10 s, 20 s … at most an hour (defaults).
    The jitter spreads the retries of many rows that failed together (a receiver restart)."""
    seconds = min(max_seconds, base_seconds * 2 ** max(0, attempts - 1))
    return dt.timedelta(seconds=seconds * (1 + random.random() * 0.2))  # noqa: S311 - jitter


class LeaseColumns:
    """The columns a claimable row has (a declarative mixin): outbox rows, and the TPF's
    received submissions, which its processing workers claim the same way."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    claimed_until: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    last_error: Mapped[str] = mapped_column(Text, default="")
    done_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)


RowT = TypeVar("RowT", bound=LeaseColumns)


class LeasedQueue(Generic[RowT]):
    """Claim due rows of one table with a lease; renew the lease while working on one."""

    CANDIDATES = 10  # SQLite: rows tried per claim when another worker wins the first

    def __init__(
        self,
        db: Database,
        model: type[RowT],
        lease_seconds: float,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.db = db
        self.model = model
        self.lease = dt.timedelta(seconds=lease_seconds)
        self.clock = clock

    def claim(self) -> int | None:
        """The id of a due row now leased to this worker, or None."""
        model = self.model
        now = self.clock()
        free = or_(model.claimed_until.is_(None), model.claimed_until < now)
        with self.db.session() as db:
            postgres = db.get_bind().dialect.name == "postgresql"
            due = (
                select(model.id)
                .where(model.done_at.is_(None), model.next_attempt_at <= now, free)
                .order_by(model.next_attempt_at)
                .limit(1 if postgres else self.CANDIDATES)
                # PostgreSQL: rows another worker is claiming are skipped, not waited for.
                .with_for_update(skip_locked=True)
            )
            for row_id in db.scalars(due).all():
                claimed = db.execute(
                    update(model)
                    .where(model.id == row_id, model.done_at.is_(None), free)
                    .values(claimed_until=now + self.lease)
                )
                db.commit()
                if claimed.rowcount == 1:  # type: ignore[attr-defined]
                    return row_id
        return None

    def renew(self, row_id: int) -> None:
        model = self.model
        with self.db.session() as db:
            db.execute(
                update(model)
                .where(model.id == row_id, model.done_at.is_(None))
                .values(claimed_until=self.clock() + self.lease)
            )
            db.commit()

    def heartbeat(self, row_id: int) -> Heartbeat:
        return Heartbeat(self.renew, self.lease, row_id)


class Heartbeat:
    """Renews one claimed row's lease every third of a lease while the work runs.

    If renewing fails for a whole lease, another worker may take the row too, which the
    idempotent PUT (and, for processing, the unique output row) makes harmless."""

    def __init__(self, renew: Callable[[int], None], lease: dt.timedelta, row_id: int) -> None:
        self._renew = renew
        self._lease = lease
        self._row_id = row_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ipis-lease", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._lease.total_seconds() / 3):
            try:
                self._renew(self._row_id)
            except Exception:  # a database hiccup: the next beat tries again
                log.warning("Kunne ikke forlenge leieavtalen for rad %s", self._row_id)


@dataclass(frozen=True)
class OutboxSettings:
    lease_seconds: float = 60.0
    retry_base_seconds: float = 5.0
    retry_max_seconds: float = 3600.0
    poll_answer_seconds: float = 30.0  # after 202: ask again this often until final
    idle_seconds: float = 2.0  # the worker's pause when nothing is due


class OutboxWorker(abc.ABC, Generic[RowT]):
    """Drains one outbox table; the party says what to send and what an answer means."""

    def __init__(
        self,
        db: Database,
        model: type[RowT],
        deliverer: Deliverer,
        settings: OutboxSettings,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.db = db
        self.deliverer = deliverer
        self.settings = settings
        self.queue = LeasedQueue(db, model, settings.lease_seconds, clock)
        self.model = model
        self.clock = clock

    @property
    def lease(self) -> dt.timedelta:
        return self.queue.lease

    def renew(self, row_id: int) -> None:
        self.queue.renew(row_id)

    # --- the party's part ---------------------------------------------------------------------

    @abc.abstractmethod
    def parcel(self, db: Session, row: RowT) -> Parcel:
        """What to deliver for this row (raise DeliveryFailed when it cannot be sent now)."""

    @abc.abstractmethod
    def sent_before(self, db: Session, row: RowT) -> bool:
        """True when the receiver may have the file already: ask with GET first."""

    @abc.abstractmethod
    def on_answer(self, db: Session, row: RowT, answer: Answer, now: dt.datetime) -> None:
        """Record what the receiver answered (in the same transaction as the row's state)."""

    def on_failure(self, db: Session, row: RowT, error: str, now: dt.datetime) -> None:
        """Record a failed attempt (the row's retry is scheduled by the worker)."""

    def describe(self, row: RowT) -> str:
        return str(row.id)

    # --- the loop -------------------------------------------------------------------------------

    def process_one(self) -> bool:
        """Deliver (or ask about) one due row; False when none is due.

        No transaction is open while the file travels (minutes for 1 GB): on SQLite that
        would hold the write lock and block every other commit.
        """
        row_id = self.queue.claim()
        if row_id is None:
            return False
        with self.db.session() as db:
            row = db.get(self.model, row_id)
            assert row is not None
            row.attempts += 1
            attempts = row.attempts
            try:
                parcel = self.parcel(db, row)
                ask_first = self.sent_before(db, row) or attempts > 1
            except DeliveryFailed as failure:
                db.rollback()
                self._record_failure(row_id, attempts, str(failure))
                return True
            db.commit()
        try:
            with self.queue.heartbeat(row_id):
                answer = self._attempt(parcel, ask_first)
        except DeliveryFailed as failure:
            self._record_failure(row_id, attempts, str(failure))
            return True
        self._record_answer(row_id, answer)
        return True

    def _attempt(self, parcel: Parcel, ask_first: bool) -> Answer:
        if ask_first:
            known = self.deliverer.get(parcel)
            if known.outcome is not Outcome.UNKNOWN:
                return known
        return self.deliverer.put(parcel)

    def _record_failure(self, row_id: int, attempts: int, error: str) -> None:
        now = self.clock()
        with self.db.session() as db:
            row = db.get(self.model, row_id)
            assert row is not None
            row.attempts = attempts
            row.last_error = error[:MAX_ERROR_CHARS]
            settings = self.settings
            row.next_attempt_at = now + backoff(
                attempts, settings.retry_base_seconds, settings.retry_max_seconds
            )
            row.claimed_until = None
            self.on_failure(db, row, row.last_error, now)
            db.commit()
            log.warning(
                "Levering av %s feilet (forsøk %d): %s; prøver igjen %s",
                self.describe(row), attempts, row.last_error,
                row.next_attempt_at.isoformat(timespec="seconds"),
            )

    def _record_answer(self, row_id: int, answer: Answer) -> None:
        now = self.clock()
        with self.db.session() as db:
            row = db.get(self.model, row_id)
            assert row is not None
            row.last_error = ""
            row.claimed_until = None
            if answer.outcome is Outcome.TAKEN and self.deliverer.polls:
                row.attempts = 0  # asking again is not a failure
                row.next_attempt_at = now + dt.timedelta(
                    seconds=self.settings.poll_answer_seconds
                )
            else:
                row.done_at = now
            self.on_answer(db, row, answer, now)
            db.commit()
            log.info("Levering av %s: %s (HTTP %s)", self.describe(row), answer.outcome.value,
                     answer.http_status or "-")

    def run(
        self,
        stop: threading.Event,
        sweep: Callable[[], None] | None = None,
        sweep_seconds: float = 60.0,
    ) -> None:
        """Until ``stop`` is set; ``sweep`` runs at start and every ``sweep_seconds``."""
        next_sweep = 0.0
        while not stop.is_set():
            try:
                if sweep is not None and time.monotonic() >= next_sweep:
                    next_sweep = time.monotonic() + sweep_seconds
                    sweep()
                busy = self.process_one()
            except Exception:  # the worker thread must survive a database hiccup
                log.exception("Feil i leveringen; prøver igjen")
                busy = False
            if not busy:
                stop.wait(self.settings.idle_seconds)

    def drain(self) -> int:
        """Process everything due now (``--once``, tests)."""
        count = 0
        while self.process_one():
            count += 1
        return count
