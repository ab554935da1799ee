"""Forwarding to the TPF: a transactional outbox drained by a worker (issue 4, point 6).

The submission's row and its outbox row are committed together by the upload, so nothing
received can be forgotten; the worker delivers at least once, with exponential backoff, and
the TPF deduplicates by the submission id in the URL (PUT is idempotent). More than one
worker may run: each claims an item with a short lease, renewed by a heartbeat while the file
travels, so an item of a killed worker is taken up again within a lease (issue 7, point 11).

The TPF's contract (docs/drift.md): ``PUT {url}/{id}`` with a bearer token, idempotent, answers
200/201 (confirmed) or 202 (taken, being processed); ``GET {url}/{id}`` answers 200 (done),
202 (working) or 404 (unknown). Every attempt after the first asks with GET before it sends
the file again: a TPF that answered too late has the file already.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import requests
from sqlalchemy import or_, select, update

from ..storage import fsync_folder
from .config import Config
from .models import OutboxItem, Submission, utcnow
from .services import Services
from .status import CONFIRMED, FORWARDED, RETRYING

log = logging.getLogger("ipis.outbox")
POLL_CONFIRMATION = dt.timedelta(seconds=30)
MEGABYTE = 1024 * 1024


class DeliveryFailed(Exception):
    """This attempt failed (network, TPF error); the worker tries again later."""


class Deliverer(Protocol):
    def deliver(self, submission: Submission, path: Path) -> str:
        """Deliver (or ask about) one submission; returns FORWARDED or CONFIRMED."""
        ...

    def check(self, submission: Submission) -> str | None:
        """After FORWARDED: CONFIRMED, FORWARDED, or None when the TPF lost it (send again)."""
        ...


class HttpDeliverer:
    """``PUT {IPIS_TPF_URL}/{submission id}`` with a bearer token (mutual TLS optional)."""

    def __init__(self, config: Config) -> None:
        self._base = config.tpf_url.rstrip("/")
        self._connect_timeout = config.tpf_connect_timeout_seconds
        self._read_timeout = config.tpf_read_timeout_seconds
        self._read_per_mb = config.tpf_read_seconds_per_mb
        self._http = requests.Session()
        self._http.headers["Authorization"] = f"Bearer {config.tpf_token}"
        if config.tpf_ca_file:
            self._http.verify = config.tpf_ca_file
        if config.tpf_client_cert:
            self._http.cert = (config.tpf_client_cert, config.tpf_client_key or None)  # type: ignore[assignment]

    def _url(self, submission: Submission) -> str:
        return f"{self._base}/{submission.public_id}"

    def timeouts(self, size_bytes: int) -> tuple[float, float]:
        """(connect, read) for a file of this size: the TPF reads it all before answering."""
        return (
            self._connect_timeout,
            self._read_timeout + self._read_per_mb * size_bytes / MEGABYTE,
        )

    def deliver(self, submission: Submission, path: Path) -> str:
        headers = {
            "Content-Type": "application/xml",
            "Content-Length": str(submission.size_bytes),
            "X-IPIS-SHA256": submission.sha256,
            "X-IPIS-Kvitteringsnummer": submission.receipt_number,
            "X-IPIS-Avsender": (
                f"{submission.kommunenummer}-{submission.bydelsnummer}-"
                f"{submission.organisasjonsnummer}"
            ),
        }
        try:
            with path.open("rb") as body:  # streamed, never read whole
                response = self._http.put(
                    self._url(submission),
                    data=body,
                    headers=headers,
                    timeout=self.timeouts(submission.size_bytes),
                )
        except requests.RequestException as error:
            raise DeliveryFailed(type(error).__name__) from None
        if response.status_code in (200, 201):
            return CONFIRMED
        if response.status_code == 202:
            return FORWARDED
        raise DeliveryFailed(f"TPF svarte HTTP {response.status_code}")

    def check(self, submission: Submission) -> str | None:
        try:
            response = self._http.get(self._url(submission), timeout=self.timeouts(0))
        except requests.RequestException as error:
            raise DeliveryFailed(type(error).__name__) from None
        if response.status_code == 200:
            return CONFIRMED
        if response.status_code == 202:
            return FORWARDED
        if response.status_code == 404:
            return None
        raise DeliveryFailed(f"TPF svarte HTTP {response.status_code}")


class InboxDeliverer:
    """Demo stand-in for the TPF: a durable copy in a local inbox folder."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)

    def deliver(self, submission: Submission, path: Path) -> str:
        target = self._folder / f"{submission.public_id}.xml"
        if target.exists():
            return FORWARDED  # delivered before (at least once, idempotent)
        temp = self._folder / f".{submission.public_id}.tmp"
        try:
            with path.open("rb") as source, temp.open("wb") as out:
                while block := source.read(1 << 20):
                    out.write(block)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, target)
            fsync_folder(self._folder)
        except OSError as error:
            temp.unlink(missing_ok=True)
            raise DeliveryFailed(type(error).__name__) from None
        return FORWARDED

    def check(self, submission: Submission) -> str | None:
        return FORWARDED if (self._folder / f"{submission.public_id}.xml").exists() else None


def make_deliverer(config: Config) -> Deliverer:
    if config.tpf_url:
        return HttpDeliverer(config)
    return InboxDeliverer(config.inbox_dir)


def backoff(config: Config, attempts: int) -> dt.timedelta:
    """Exponential with 20 % jitter, capped: 5 s, 10 s, 20 s … at most an hour (defaults)."""
    seconds = min(config.retry_max_seconds, config.retry_base_seconds * 2 ** max(0, attempts - 1))
    return dt.timedelta(seconds=seconds * (1 + random.random() * 0.2))  # noqa: S311 - jitter


class _Heartbeat:
    """Renews one claimed item's lease while its delivery runs (a 1 GB PUT takes minutes).

    The lease is short, so the item of a worker killed mid-delivery is due again within a
    lease, not ten minutes (issue 7, point 11); if renewing fails for a whole lease, another
    worker may deliver the same item too, which the idempotent PUT makes harmless.
    """

    def __init__(self, worker: Worker, item_id: int) -> None:
        self._worker = worker
        self._item_id = item_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ipis-lease", daemon=True)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._worker.lease.total_seconds() / 3):
            try:
                self._worker.renew(self._item_id)
            except Exception:  # a database hiccup: the next beat tries again
                log.warning("Kunne ikke forlenge leieavtalen for utbokspost %s", self._item_id)


class Worker:
    """Drains the outbox of one database; ``run`` until ``stop`` is set."""

    def __init__(
        self,
        svc: Services,
        deliverer: Deliverer | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self._svc = svc
        self._deliverer = deliverer or make_deliverer(svc.config)
        self._clock = clock
        self.lease = dt.timedelta(seconds=svc.config.worker_lease_seconds)

    def _claim(self) -> int | None:
        now = self._clock()
        with self._svc.db.session() as db:
            due = db.scalars(
                select(OutboxItem.id)
                .where(
                    OutboxItem.done_at.is_(None),
                    OutboxItem.next_attempt_at <= now,
                    or_(OutboxItem.claimed_until.is_(None), OutboxItem.claimed_until < now),
                )
                .order_by(OutboxItem.next_attempt_at)
                .limit(10)
            ).all()
            for item_id in due:
                claimed = db.execute(
                    update(OutboxItem)
                    .where(
                        OutboxItem.id == item_id,
                        OutboxItem.done_at.is_(None),
                        or_(OutboxItem.claimed_until.is_(None), OutboxItem.claimed_until < now),
                    )
                    .values(claimed_until=now + self.lease)
                )
                db.commit()
                if claimed.rowcount == 1:  # type: ignore[attr-defined]
                    return item_id
        return None

    def renew(self, item_id: int) -> None:
        with self._svc.db.session() as db:
            db.execute(
                update(OutboxItem)
                .where(OutboxItem.id == item_id, OutboxItem.done_at.is_(None))
                .values(claimed_until=self._clock() + self.lease)
            )
            db.commit()

    def process_one(self) -> bool:
        """Deliver one due item; False when none is due.

        No transaction is open while the file travels (minutes for 1 GB): on SQLite that
        would hold the write lock and block every upload's commit.
        """
        item_id = self._claim()
        if item_id is None:
            return False
        with self._svc.db.session() as db:
            item = db.get(OutboxItem, item_id)
            assert item is not None
            submission = item.submission  # loaded now; used detached below
            sent_before = item.attempts > 0 or submission.status in (FORWARDED, RETRYING)
            item.attempts += 1
            attempts = item.attempts
            db.commit()
        try:
            with _Heartbeat(self, item_id):
                result = self._attempt(submission, sent_before)
        except DeliveryFailed as failure:
            self._record_failure(item_id, attempts, str(failure)[:500])
            return True
        self._record_success(item_id, result)
        return True

    def _attempt(self, submission: Submission, sent_before: bool) -> str:
        """Ask first whenever the file may have reached the TPF already; send only if not."""
        if sent_before:
            known = self._deliverer.check(submission)
            if known is not None:
                return known
        return self._deliver(submission)

    def _record_failure(self, item_id: int, attempts: int, error: str) -> None:
        now = self._clock()
        with self._svc.db.session() as db:
            item = db.get(OutboxItem, item_id)
            assert item is not None
            item.last_error = error
            item.next_attempt_at = now + backoff(self._svc.config, attempts)
            item.claimed_until = None
            item.submission.status = RETRYING
            item.submission.status_at = now
            db.commit()
            log.warning(
                "Videresending av %s feilet (forsøk %d): %s; prøver igjen %s",
                item.submission.public_id,
                attempts,
                error,
                item.next_attempt_at.isoformat(timespec="seconds"),
            )

    def _record_success(self, item_id: int, result: str) -> None:
        now = self._clock()
        with self._svc.db.session() as db:
            item = db.get(OutboxItem, item_id)
            assert item is not None
            submission = item.submission
            if result != submission.status:
                submission.status = result
                submission.status_at = now
            item.last_error = ""
            item.claimed_until = None
            needs_confirmation = result == FORWARDED and isinstance(self._deliverer, HttpDeliverer)
            if needs_confirmation:
                item.attempts = 0
                item.next_attempt_at = now + POLL_CONFIRMATION
            else:
                item.done_at = now
            db.commit()
            log.info("Innsending %s: %s", submission.public_id, result)

    def _deliver(self, submission: Submission) -> str:
        path = self._svc.storage.path_of(submission.storage_name)
        if not path.is_file():
            raise DeliveryFailed("filen mangler i lageret")
        return self._deliverer.deliver(submission, path)

    def run(self, stop: threading.Event) -> None:
        config = self._svc.config
        next_sweep = 0.0
        while not stop.is_set():
            try:
                if time.monotonic() >= next_sweep:  # partial uploads of crashed processes
                    next_sweep = time.monotonic() + config.incoming_sweep_seconds
                    removed = self._svc.storage.clear_incoming()
                    if removed:
                        log.info("Fjernet %d avbrutte opplastinger fra mottaksmappen", removed)
                busy = self.process_one()
            except Exception:  # the worker thread must survive a database hiccup
                log.exception("Feil i videresendingen; prøver igjen")
                busy = False
            if not busy:
                stop.wait(config.worker_poll_seconds)

    def drain(self) -> int:
        """Process everything due now (``ipis worker --once``, tests)."""
        count = 0
        while self.process_one():
            count += 1
        return count


def start_thread(svc: Services, stop: threading.Event) -> threading.Thread:
    thread = threading.Thread(target=Worker(svc).run, args=(stop,), name="ipis-worker", daemon=True)
    thread.start()
    return thread
