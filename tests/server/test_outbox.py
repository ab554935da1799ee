"""server/outbox.py: leases claimed once by parallel workers (SKIP LOCKED on PostgreSQL), the
heartbeat, backoff with jitter, timeouts scaled with the file's size, and the answers."""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from server_testlib import wait_until
from sqlalchemy import func, select
from sqlalchemy.orm import DeclarativeBase, Session

from ipis_server.db import open_database
from ipis_server.dbtypes import utcnow
from ipis_server.outbox import (
    Answer,
    HttpDeliverer,
    HttpTarget,
    LeaseColumns,
    LeasedQueue,
    OutboxSettings,
    OutboxWorker,
    Outcome,
    Parcel,
    backoff,
)


class Base(DeclarativeBase):
    pass


class Row(LeaseColumns, Base):
    __tablename__ = "rader"


def test_backoff_is_exponential_with_jitter_and_capped() -> None:
    for attempts, low in ((1, 5), (2, 10), (3, 20), (4, 40)):
        for _ in range(20):
            delay = backoff(attempts, 5, 3600).total_seconds()
            assert low <= delay <= low * 1.2
    assert 3600 <= backoff(30, 5, 3600).total_seconds() <= 4320


def test_read_timeout_grows_with_the_file() -> None:
    deliverer = HttpDeliverer(HttpTarget("http://127.0.0.1:9", "t", connect_timeout_seconds=3,
                                         read_timeout_seconds=60, read_seconds_per_mb=0.5))
    assert deliverer.timeouts(0) == (3, 60)
    assert deliverer.timeouts(1024 * 1024 * 1024) == (3, 60 + 512)


def test_parallel_workers_claim_each_row_once(tmp_path: Path, database_url: str) -> None:
    database = open_database(database_url)
    Base.metadata.create_all(database.engine)
    with database.session() as db:
        db.add_all(Row() for _ in range(40))
        db.commit()
    queue = LeasedQueue(database, Row, lease_seconds=600)
    claimed: list[int] = []
    lock = threading.Lock()

    def claim_all(_: int) -> None:
        while (row_id := queue.claim()) is not None:
            with lock:
                claimed.append(row_id)

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(claim_all, range(6)))
    assert sorted(claimed) == list(range(1, 41))
    assert queue.claim() is None  # all leased
    later = LeasedQueue(database, Row, lease_seconds=600,
                        clock=lambda: utcnow() + dt.timedelta(minutes=11))
    assert later.claim() is not None  # a lease that ran out is due again
    database.dispose()


class _Slow(OutboxWorker[Row]):
    """A worker whose receiver holds the file until released."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.release = threading.Event()
        self.answers: list[Answer] = []

    def parcel(self, db: Session, row: Row) -> Parcel:
        return Parcel(str(row.id), Path("/dev/null"), 0, "0" * 64)

    def sent_before(self, db: Session, row: Row) -> bool:
        return False

    def on_answer(self, db: Session, row: Row, answer: Answer, now: dt.datetime) -> None:
        self.answers.append(answer)


class _HeldReceiver:
    polls = False

    def __init__(self) -> None:
        self.release = threading.Event()

    def put(self, parcel: Parcel) -> Answer:
        self.release.wait(120)
        return Answer(Outcome.DONE, 200)

    def get(self, parcel: Parcel) -> Answer:
        return Answer(Outcome.UNKNOWN, 404)


def test_heartbeat_renews_the_lease_while_the_file_travels(tmp_path: Path,
                                                           database_url: str) -> None:
    database = open_database(database_url)
    Base.metadata.create_all(database.engine)
    with database.session() as db:
        db.add(Row())
        db.commit()
    receiver = _HeldReceiver()
    worker = _Slow(database, Row, receiver, OutboxSettings(lease_seconds=0.6))

    def lease_end() -> dt.datetime | None:
        with database.session() as db:
            return db.scalar(select(Row.claimed_until))

    thread = threading.Thread(target=worker.process_one)
    thread.start()
    wait_until(lambda: lease_end() is not None, what="claimed")
    first = lease_end()
    assert first is not None
    wait_until(lambda: (lease_end() or first) > first, what="the heartbeat renews the lease")
    receiver.release.set()
    thread.join(60)
    assert [a.outcome for a in worker.answers] == [Outcome.DONE]
    with database.session() as db:
        assert db.scalar(select(func.count()).where(Row.done_at.is_not(None))) == 1
        assert db.scalar(select(Row.claimed_until)) is None
    database.dispose()


@pytest.mark.parametrize("outcome", [Outcome.REFUSED, Outcome.DONE])
def test_a_final_answer_ends_the_row(tmp_path: Path, outcome: Outcome) -> None:
    database = open_database(f"sqlite:///{tmp_path / 'u.db'}")
    Base.metadata.create_all(database.engine)
    with database.session() as db:
        db.add(Row())
        db.commit()

    class Once:
        polls = True

        def put(self, parcel: Parcel) -> Answer:
            return Answer(outcome, 400 if outcome is Outcome.REFUSED else 200)

        def get(self, parcel: Parcel) -> Answer:
            raise AssertionError("a first attempt sends")

    worker = _Slow(database, Row, Once(), OutboxSettings())
    assert worker.drain() == 1
    assert not worker.process_one()
    database.dispose()
