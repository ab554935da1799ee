"""Forwarding to the TPF: the send module's rows on the one outbox (server/outbox.py).

The submission's row and its outbox row are committed together by the upload, so nothing
received can be forgotten; the worker delivers at least once (lease, heartbeat, backoff, GET
before re-send: server/outbox.py) and the TPF deduplicates by the submission id in the URL.
What the send module adds: what to send (the stored file, with the receipt number and the
sender as headers), and what the TPF's answers mean for the submission's status, including
the TPF's JSON status (processed, invalid numbers counted, the register's answer), which the
receipt and history pages show (status.py).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable

from sqlalchemy.orm import Session

from ..outbox import (
    Answer,
    Deliverer,
    DeliveryFailed,
    HttpTarget,
    OutboxSettings,
    OutboxWorker,
    Outcome,
    Parcel,
)
from ..outbox import make_deliverer as make_outbox_deliverer
from ..status_report import REFUSED as REPORT_REFUSED
from ..status_report import StatusReport
from .config import Config
from .models import OutboxItem, utcnow
from .services import Services
from .status import CONFIRMED, FORWARDED, REFUSED, RETRYING

log = logging.getLogger("ipis.outbox")
REFUSED_WITHOUT_REASON = "TPF avviste filen uten å oppgi grunn."


def tpf_target(config: Config) -> HttpTarget:
    return HttpTarget(
        url=config.tpf_url,
        token=config.tpf_token,
        name="TPF",
        ca_file=config.tpf_ca_file,
        client_cert=config.tpf_client_cert,
        client_key=config.tpf_client_key,
        connect_timeout_seconds=config.tpf_connect_timeout_seconds,
        read_timeout_seconds=config.tpf_read_timeout_seconds,
        read_seconds_per_mb=config.tpf_read_seconds_per_mb,
    )


def make_deliverer(config: Config) -> Deliverer:
    """``PUT {IPIS_TPF_URL}/{id}``; without a URL, the local inbox folder (demo)."""
    return make_outbox_deliverer(tpf_target(config), config.inbox_dir)


class Worker(OutboxWorker[OutboxItem]):
    """Drains the send module's outbox; ``run`` until ``stop`` is set."""

    def __init__(
        self,
        svc: Services,
        deliverer: Deliverer | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        config = svc.config
        settings = OutboxSettings(
            lease_seconds=config.worker_lease_seconds,
            retry_base_seconds=config.retry_base_seconds,
            retry_max_seconds=config.retry_max_seconds,
            poll_answer_seconds=config.tpf_poll_seconds,
            idle_seconds=config.worker_poll_seconds,
        )
        super().__init__(svc.db, OutboxItem, deliverer or make_deliverer(config), settings, clock)
        self._svc = svc

    def parcel(self, db: Session, row: OutboxItem) -> Parcel:
        submission = row.submission
        path = self._svc.storage.path_of(submission.storage_name)
        if not path.is_file():
            raise DeliveryFailed("filen mangler i lageret")
        return Parcel(
            key=submission.public_id,
            path=path,
            size=submission.size_bytes,
            sha256=submission.sha256,
            headers={
                "X-IPIS-Kvitteringsnummer": submission.receipt_number,
                "X-IPIS-Avsender": (
                    f"{submission.kommunenummer}-{submission.bydelsnummer}-"
                    f"{submission.organisasjonsnummer}"
                ),
            },
        )

    def sent_before(self, db: Session, row: OutboxItem) -> bool:
        return row.submission.status in (FORWARDED, RETRYING)

    def on_answer(self, db: Session, row: OutboxItem, answer: Answer, now: dt.datetime) -> None:
        submission = row.submission
        report = answer.report
        if answer.outcome is Outcome.REFUSED:
            report = StatusReport(REPORT_REFUSED, melding=answer.message or REFUSED_WITHOUT_REASON)
        if report is not None:
            submission.tpf_report = report.dumps()
        refused = report is not None and report.status == REPORT_REFUSED
        if answer.outcome is Outcome.REFUSED or refused:
            status = REFUSED
        elif answer.outcome is Outcome.DONE:
            status = CONFIRMED
        else:
            status = FORWARDED
        if status != submission.status:
            submission.status = status
            submission.status_at = now
        log.info("Innsending %s: %s", submission.public_id, status)

    def on_failure(self, db: Session, row: OutboxItem, error: str, now: dt.datetime) -> None:
        row.submission.status = RETRYING
        row.submission.status_at = now

    def describe(self, row: OutboxItem) -> str:
        return row.submission.public_id

    def _sweep(self) -> None:
        """Partial uploads of crashed processes (issue 7, point 12)."""
        removed = self._svc.storage.clear_incoming()
        if removed:
            log.info("Fjernet %d avbrutte opplastinger fra mottaksmappen", removed)

    def run(  # type: ignore[override]
        self, stop: threading.Event
    ) -> None:
        super().run(stop, sweep=self._sweep, sweep_seconds=self._svc.config.incoming_sweep_seconds)


def start_thread(svc: Services, stop: threading.Event) -> threading.Thread:
    thread = threading.Thread(target=Worker(svc).run, args=(stop,), name="ipis-worker", daemon=True)
    thread.start()
    return thread
