"""Loading what the intake stored: ``ipis register worker`` (and a thread of ``ipis register
serve``). Several workers may run, on one host or many, against one PostgreSQL database.

Each delivery is claimed with a lease (outbox.LeasedQueue: ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, a conditional UPDATE everywhere), renewed by a heartbeat while it loads, and loaded
once: the submission's id is unique in ``innsendinger`` (a second worker that took the same
delivery after a lost lease finds it loaded and records that outcome). A fault of the file
refuses it for good; anything else (the database, the disk) is tried again with backoff.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable

from sqlalchemy.exc import SQLAlchemyError

from ..dbtypes import utcnow
from ..outbox import LeasedQueue, backoff
from .loading import LoadOutcome, load_delivery
from .mapping import apply_mapping
from .models import MAPPING, Delivery
from .services import RegisterServices

log = logging.getLogger("ipis.register")
MAX_ERROR_CHARS = 500


class RegisterWorker:
    """Drains the deliveries of one register database; ``run`` until ``stop`` is set."""

    def __init__(
        self, svc: RegisterServices, clock: Callable[[], dt.datetime] = utcnow
    ) -> None:
        self._svc = svc
        self._clock = clock
        self.queue = LeasedQueue(svc.db, Delivery, svc.config.worker_lease_seconds, clock)

    def process_one(self) -> bool:
        """Load (or apply) one due delivery; False when none is due."""
        row_id = self.queue.claim()
        if row_id is None:
            return False
        with self._svc.db.session() as db:
            row = db.get(Delivery, row_id)
            assert row is not None
            row.attempts += 1
            db.commit()
            kind, key, storage_name = row.kind, row.innsending_id, row.storage_name
            received_at, attempts = row.received_at, row.attempts
            key_day = row.nokkeldag or self._svc.today()
        try:
            with self.queue.heartbeat(row_id):
                outcome = self._load(kind, key, storage_name, received_at, key_day)
        except (SQLAlchemyError, OSError) as error:
            self._record_failure(row_id, attempts, f"{type(error).__name__}")
            return True
        self._record_outcome(row_id, outcome)
        return True

    def _load(self, kind: str, key: str, storage_name: str, received_at: dt.datetime,
              key_day: dt.date) -> LoadOutcome:
        """``key_day``: the day the delivery came in, by which its keys' dates are judged."""
        svc = self._svc
        path = svc.storage.path_of(storage_name)
        with path.open("rb") as source:
            if kind == MAPPING:
                return apply_mapping(svc.db, svc.keyring, source, key, key_day)
            return load_delivery(svc.db, svc.keyring, source, key, received_at, key_day)

    def _record_outcome(self, row_id: int, outcome: LoadOutcome) -> None:
        with self._svc.db.session() as db:
            row = db.get(Delivery, row_id)
            assert row is not None
            row.status = outcome.status
            row.melding = outcome.message
            row.personer = outcome.persons
            row.done_at = self._clock()
            row.claimed_until = None
            row.last_error = ""
            storage_name = row.storage_name
            db.commit()
        # The database holds what the file said (or why it was refused): the file goes.
        self._svc.storage.remove(storage_name)
        log.info("Mottak %s: %s", row_id, outcome.status)

    def _record_failure(self, row_id: int, attempts: int, error: str) -> None:
        config = self._svc.config
        with self._svc.db.session() as db:
            row = db.get(Delivery, row_id)
            assert row is not None
            row.last_error = error[:MAX_ERROR_CHARS]
            row.next_attempt_at = self._clock() + backoff(
                attempts, config.retry_base_seconds, config.retry_max_seconds
            )
            row.claimed_until = None
            db.commit()
        log.warning("Lasting av mottak %s feilet (forsøk %d): %s", row_id, attempts, error)

    def run(self, stop: threading.Event) -> None:
        idle = self._svc.config.worker_idle_seconds
        while not stop.is_set():
            try:
                busy = self.process_one()
            except Exception:  # the worker must survive a database hiccup
                log.exception("Feil i lasteren; prøver igjen")
                busy = False
            if not busy:
                stop.wait(idle)

    def drain(self) -> int:
        """Load everything due now (``ipis register worker --once``, tests)."""
        count = 0
        while self.process_one():
            count += 1
        return count


def start_thread(svc: RegisterServices, stop: threading.Event) -> threading.Thread:
    thread = threading.Thread(
        target=RegisterWorker(svc).run, args=(stop,), name="ipis-register-loader", daemon=True
    )
    thread.start()
    return thread
