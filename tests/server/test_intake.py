"""server/intake.py on a real threaded server on loopback, on SQLite and PostgreSQL: the token,
the stored-then-202 order, idempotent PUT, 409, the SHA-256 check, refusal at the door, and
parallel PUTs of one id ending as one row and one file."""

from __future__ import annotations

import hashlib
import json
import secrets
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from flask import Flask
from server_testlib import files_under
from sqlalchemy import Integer, String, func, select, update
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from werkzeug.serving import make_server

from ipis_core.faults import CleartextIplosFile
from ipis_server.db import Database, open_database
from ipis_server.intake import (
    CONFLICT,
    DIGEST_MISMATCH,
    UNAUTHORIZED,
    Arrival,
    Intake,
    Known,
    ReceivedColumns,
    make_blueprint,
)
from ipis_server.status_report import StatusReport
from ipis_server.storage import Storage

TOKEN = "riktig-token-" + "x" * 20


class Base(DeclarativeBase):
    pass


class Received(ReceivedColumns, Base):
    __tablename__ = "mottatt"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(20), default="behandles")


class RefuseNei:
    """A stream check that refuses a body starting with NEI (as the envelope reader refuses
    a file at its first bad token) and passes everything else on as validated."""

    def __init__(self, barrier: threading.Barrier | None = None) -> None:
        self.start = b""
        self.barrier = barrier

    def feed(self, chunk: bytes) -> bytes:
        if len(self.start) < 3:
            self.start += chunk[:3]
            if self.start.startswith(b"NEI"):
                raise CleartextIplosFile()
        return chunk

    def finish(self) -> bytes:
        if self.barrier is not None:  # every request has passed the look-up before the insert
            self.barrier.wait(60)
        return b""


class Party:
    def __init__(self) -> None:
        self.barrier: threading.Barrier | None = None
        self.records = 0

    def new_check(self) -> RefuseNei:
        return RefuseNei(self.barrier)

    def record(self, db: Session, arrival: Arrival) -> StatusReport:
        self.records += 1
        db.add(Received(innsending_id=arrival.innsending_id, sha256=arrival.sha256,
                        size_bytes=arrival.size, storage_name=arrival.storage_name))
        db.flush()
        return StatusReport("behandles")

    def find(self, db: Session, innsending_id: str) -> Known | None:
        row = db.scalar(select(Received).where(Received.innsending_id == innsending_id))
        if row is None:
            return None
        return Known(row.sha256, StatusReport(row.status, personer=3 if row.status != "behandles"
                                              else None))


@dataclass
class Running:
    url: str
    port: int
    db: Database
    storage: Storage
    party: Party

    def rows(self) -> int:
        with self.db.session() as db:
            return int(db.scalar(select(func.count()).select_from(Received)) or 0)


@pytest.fixture
def running(tmp_path: Path, database_url: str) -> Iterator[Running]:
    database = open_database(database_url)
    Base.metadata.create_all(database.engine)
    storage = Storage(tmp_path / "lager")
    party = Party()
    intake = Intake(tokens=("gammelt-token", TOKEN), db=database, storage=storage,
                    max_bytes=10 * 1024 * 1024, party=party)
    app = Flask(__name__)
    app.register_blueprint(make_blueprint("mottak", lambda: intake), url_prefix="/mottak")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_port
    yield Running(f"http://127.0.0.1:{port}/mottak", port, database, storage, party)
    server.shutdown()
    database.dispose()


def _put(url: str, body: bytes, token: str = TOKEN, sha: str | None = None) -> requests.Response:
    return requests.put(url, data=body, timeout=60, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/xml",
        "X-IPIS-SHA256": sha or hashlib.sha256(body).hexdigest()})


def _new_id() -> str:
    return secrets.token_hex(16)


def test_token_is_required_for_put_and_get(running: Running) -> None:
    target = f"{running.url}/{_new_id()}"
    for token in ("", "feil", TOKEN[:-1], TOKEN + "x"):
        response = _put(target, b"<fil/>", token=token)
        assert response.status_code == 401
        assert response.json() == {"melding": UNAUTHORIZED}
        assert requests.get(target, timeout=10,
                            headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert running.rows() == 0
    assert _put(target, b"<fil/>", token="gammelt-token").status_code == 202  # rotation overlap


def test_stored_then_202_repeat_is_noop_other_content_409(running: Running) -> None:
    target = f"{running.url}/{_new_id()}"
    body = b"<fil>" + b"a" * 300_000 + b"</fil>"
    first = _put(target, body)
    assert first.status_code == 202 and first.json() == {"status": "behandles"}
    [stored] = files_under(running.storage.stored)
    assert stored.read_bytes() == body
    assert _put(target, body).status_code == 202
    conflict = _put(target, body + b" ")
    assert conflict.status_code == 409 and conflict.json() == {"melding": CONFLICT}
    assert running.rows() == 1 and len(files_under(running.storage.stored)) == 1
    assert files_under(running.storage.incoming) == []
    auth = {"Authorization": f"Bearer {TOKEN}"}
    working = requests.get(target, headers=auth, timeout=10)
    assert working.status_code == 202 and working.json() == {"status": "behandles"}
    with running.db.session() as db:
        db.execute(update(Received).values(status="levert"))
        db.commit()
    done = requests.get(target, headers=auth, timeout=10)
    assert done.status_code == 200 and done.json() == {"status": "levert", "personer": 3}
    unknown = requests.get(f"{running.url}/{_new_id()}", headers=auth, timeout=10)
    assert unknown.status_code == 404 and "melding" in unknown.json()
    assert requests.get(f"{running.url}/IKKE-EN-ID", headers=auth, timeout=10).status_code == 404


def test_body_must_match_its_sha256(running: Running) -> None:
    target = f"{running.url}/{_new_id()}"
    response = _put(target, b"<fil/>", sha=hashlib.sha256(b"<annen/>").hexdigest())
    assert response.status_code == 400 and response.json() == {"melding": DIGEST_MISMATCH}
    assert _put(target, b"<fil/>", sha="abc").status_code == 400
    assert running.rows() == 0
    assert files_under(running.storage.stored) == files_under(running.storage.incoming) == []
    chunked = requests.put(target, data=iter([b"<fil/>"]), timeout=10, headers={
        "Authorization": f"Bearer {TOKEN}", "X-IPIS-SHA256": hashlib.sha256(b"<fil/>").hexdigest()})
    assert chunked.status_code == 411


def test_refused_at_the_door_before_the_upload_finishes(running: Running) -> None:
    """The check refuses the first chunk: the 400 arrives while most of the body is unsent,
    and nothing of it stays on disk."""
    body = b"NEI" + b"x" * (3 * 1024 * 1024)
    head = (
        f"PUT /mottak/{_new_id()} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/xml\r\n"
        f"X-IPIS-SHA256: {hashlib.sha256(body).hexdigest()}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", running.port), timeout=60) as sock:
        sock.sendall(head + body[: 512 * 1024])  # a sixth of the body; the rest never sent
        received = b""
        while b"\r\n\r\n" not in received or not received.rstrip().endswith(b"}"):
            piece = sock.recv(65536)
            if not piece:
                break
            received += piece
    status_line, _, rest = received.partition(b"\r\n")
    assert b" 400 " in status_line
    payload = json.loads(rest.split(b"\r\n\r\n", 1)[1])
    assert payload == {"melding": "Ugyldig format på kryptert melding. Kjøringen avsluttes"}
    assert running.rows() == 0
    assert files_under(running.storage.stored) == files_under(running.storage.incoming) == []


def test_parallel_puts_of_one_id_end_as_one_row_and_one_file(running: Running) -> None:
    target = f"{running.url}/{_new_id()}"
    body = b"<fil>" + b"b" * 200_000 + b"</fil>"
    running.party.barrier = threading.Barrier(8)  # all eight insert: seven lose to the index
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: _put(target, body).status_code, range(8)))
    assert answers == [202] * 8
    assert running.party.records == 8
    assert running.rows() == 1
    assert len(files_under(running.storage.stored)) == 1
    assert files_under(running.storage.incoming) == []
    # Two contents for one new id at once: one wins; the rest get 202 or 409 by their SHA-256.
    target = f"{running.url}/{_new_id()}"
    bodies = [body, body + b"\n"] * 4
    running.party.barrier = threading.Barrier(8)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda b: (_put(target, b).status_code, b), bodies))
    winners = {hashlib.sha256(b).hexdigest() for code, b in results if code == 202}
    assert len(winners) == 1
    assert all(code == 409 for code, b in results if hashlib.sha256(b).hexdigest() not in winners)
    with running.db.session() as db:
        row = db.scalar(select(Received).where(Received.innsending_id == target.rsplit("/", 1)[1]))
        assert row is not None and row.sha256 in winners
    assert running.rows() == 2 and len(files_under(running.storage.stored)) == 2
