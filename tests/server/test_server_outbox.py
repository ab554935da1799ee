"""Forwarding to a real stub TPF server on loopback that fails the first attempts."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from server_testlib import SampleFiles, csrf_token, login, make_config, new_account, wait_until
from sqlalchemy import select

from ipis_server.send import create_app
from ipis_server.send.outbox import Worker
from ipis_server.send.services import services
from ipis_server.send.status import CONFIRMED, FORWARDED, RETRYING


@dataclass
class StubTpf:
    """Answers 503 to the first ``fail_first`` PUTs, then ``final_status``; records requests."""

    fail_first: int = 2
    final_status: int = 201
    token: str = "hemmelig-token"
    puts: list[tuple[str, str, str]] = field(default_factory=list)  # path, auth, sha256
    stored: dict[str, bytes] = field(default_factory=dict)
    url: str = ""
    answer_body: bytes = b""  # JSON sent with the final answer (formats §5)


def _handler(stub: StubTpf) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: object) -> None:
            pass

        def do_PUT(self) -> None:
            length = int(self.headers["Content-Length"])
            body = self.rfile.read(length)
            stub.puts.append((self.path, self.headers.get("Authorization", ""),
                              hashlib.sha256(body).hexdigest()))
            if len(stub.puts) <= stub.fail_first:
                self.send_response(503)
            elif self.headers.get("Authorization") != f"Bearer {stub.token}":
                self.send_response(401)
            else:
                stub.stored[self.path] = body  # same id twice: stored once (idempotent)
                self.send_response(stub.final_status)
                self._body(stub.answer_body)
                return
            self._body(b"")

        def do_GET(self) -> None:
            self.send_response(200 if self.path in stub.stored else 404)
            self._body(stub.answer_body if self.path in stub.stored else b"")

        def _body(self, body: bytes) -> None:
            if body:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@pytest.fixture
def stub() -> Iterator[StubTpf]:
    state = StubTpf()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}/tpf/innsendinger"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def _submit(app: object, files: SampleFiles) -> str:
    new_account(app)  # type: ignore[arg-type]
    client = app.test_client()  # type: ignore[attr-defined]
    login(client)
    token = csrf_token(client.get("/send").text)
    response = client.post(
        "/send",
        data={"csrf_token": token, "fil": (io.BytesIO(files.encrypted.read_bytes()), "f.xml")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 303
    return str(response.headers["Location"]).rsplit("/", 1)[1]


def _status(app: object, public_id: str) -> str:
    from sqlalchemy import select

    from ipis_server.send.models import Submission

    with services(app).db.session() as db:  # type: ignore[arg-type]
        return db.scalars(select(Submission.status).where(Submission.public_id == public_id)).one()


class ManualClock:
    """The worker's clock, moved by the test: backoff is checked without waiting for it."""

    def __init__(self) -> None:
        from ipis_server.send.models import utcnow

        self.now = utcnow()

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


def test_retries_with_backoff_until_tpf_confirms(tmp_path: Path, database_url: str,
                                                stub: StubTpf, files: SampleFiles) -> None:
    app = create_app(make_config(tmp_path, database_url, keys=files.keys, tpf_url=stub.url,
                                 tpf_token=stub.token, retry_base_seconds=5))
    public_id = _submit(app, files)
    clock = ManualClock()
    worker = Worker(services(app), clock=clock)
    for attempt, backoff in ((1, 5), (2, 10)):  # 5 s, then 10 s, each with up to 20 % jitter
        assert worker.process_one()
        assert _status(app, public_id) == RETRYING
        assert len(stub.puts) == attempt
        clock.advance(backoff * 0.99)
        assert not worker.process_one()  # backing off: nothing due yet
        clock.advance(backoff * 0.22)
    assert worker.process_one()
    assert _status(app, public_id) == CONFIRMED
    assert len(stub.puts) == 3
    path, auth, sha = stub.puts[-1]
    assert path == f"/tpf/innsendinger/{public_id}"
    assert auth == f"Bearer {stub.token}"
    assert sha == files.sha256
    assert not worker.process_one()  # done: never delivered again
    services(app).db.dispose()


def test_accepted_then_confirmed_on_poll(tmp_path: Path, database_url: str, stub: StubTpf,
                                         files: SampleFiles) -> None:
    stub.fail_first = 0
    stub.final_status = 202
    app = create_app(make_config(tmp_path, database_url, keys=files.keys, tpf_url=stub.url,
                                 tpf_token=stub.token))
    public_id = _submit(app, files)
    worker = Worker(services(app))
    assert worker.process_one()
    assert _status(app, public_id) == FORWARDED
    import datetime as dt

    from ipis_server.send.models import utcnow

    later = Worker(services(app), clock=lambda: utcnow() + dt.timedelta(minutes=1))
    assert later.process_one()
    assert _status(app, public_id) == CONFIRMED
    assert len(stub.puts) == 1
    services(app).db.dispose()


def test_worker_thread_in_serve_delivers_to_local_inbox(tmp_path: Path, database_url: str,
                                                        files: SampleFiles) -> None:
    from ipis_server.send.outbox import start_thread

    config = make_config(tmp_path, database_url, keys=files.keys, worker_poll_seconds=0.05)
    app = create_app(config)
    stop = threading.Event()
    thread = start_thread(services(app), stop)
    public_id = _submit(app, files)
    deadline = time.monotonic() + 10
    while _status(app, public_id) != FORWARDED and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    thread.join(5)
    assert _status(app, public_id) == FORWARDED
    delivered = config.inbox_dir / f"{public_id}.xml"
    assert delivered.read_bytes() == files.encrypted.read_bytes()
    services(app).db.dispose()


# --- issue 7, point 11: timeouts, asking before sending again, the lease --------------------


@dataclass
class SlowTpf:
    """Stores each PUT, then answers only after ``answer`` is set (or never); GET tells the
    truth: 200 when stored, 404 when not. Records every request."""

    requests: list[tuple[str, str]] = field(default_factory=list)  # method, path
    stored: dict[str, bytes] = field(default_factory=dict)
    answer: threading.Event = field(default_factory=threading.Event)
    store: bool = True
    url: str = ""

    def puts(self) -> int:
        return sum(1 for method, _ in self.requests if method == "PUT")


def _slow_handler(tpf: SlowTpf) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: object) -> None:
            pass

        def do_PUT(self) -> None:
            tpf.requests.append(("PUT", self.path))
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if tpf.store:
                tpf.stored[self.path] = body
            tpf.answer.wait(60)
            self.send_response(201)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            tpf.requests.append(("GET", self.path))
            self.send_response(200 if self.path in tpf.stored else 404)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler


@pytest.fixture
def slow_tpf() -> Iterator[SlowTpf]:
    state = SlowTpf()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _slow_handler(state))
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}/tpf"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    state.answer.set()
    server.shutdown()
    server.server_close()


def test_tpf_answering_too_late_is_asked_not_sent_the_file_again(
    tmp_path: Path, database_url: str, slow_tpf: SlowTpf, files: SampleFiles
) -> None:
    """The TPF took the file but answered after the read timeout: the next attempt asks with
    GET and finds it confirmed; the file is sent once (before: sent again at every retry,
    the status «feilet» for good)."""
    app = create_app(make_config(
        tmp_path, database_url, keys=files.keys, tpf_url=slow_tpf.url,
        tpf_read_timeout_seconds=0.5,
        tpf_read_seconds_per_mb=0.0, retry_base_seconds=0.01, retry_max_seconds=0.01))
    public_id = _submit(app, files)
    worker = Worker(services(app))
    assert worker.process_one()
    assert _status(app, public_id) == RETRYING
    wait_until(lambda: worker.process_one() and _status(app, public_id) == CONFIRMED, 30,
               "confirmed by asking")
    assert slow_tpf.puts() == 1
    assert slow_tpf.requests[-1] == ("GET", f"/tpf/{public_id}")
    services(app).db.dispose()


def test_read_timeout_grows_with_the_file(tmp_path: Path, database_url: str,
                                          slow_tpf: SlowTpf, files: SampleFiles) -> None:
    """The same slow TPF, with time enough per MB: answered within the scaled timeout."""
    from ipis_server.outbox import HttpDeliverer
    from ipis_server.send.outbox import tpf_target

    config = make_config(tmp_path, database_url, keys=files.keys, tpf_url=slow_tpf.url,
                         tpf_read_timeout_seconds=0.5, tpf_read_seconds_per_mb=60_000.0)
    size_mb = files.encrypted.stat().st_size / (1024 * 1024)
    connect, read = HttpDeliverer(tpf_target(config)).timeouts(files.encrypted.stat().st_size)
    assert connect == config.tpf_connect_timeout_seconds
    assert read == pytest.approx(0.5 + 60_000 * size_mb)
    app = create_app(config)
    public_id = _submit(app, files)
    timer = threading.Timer(1.0, slow_tpf.answer.set)  # after the base read timeout
    timer.start()
    assert Worker(services(app)).process_one()
    timer.join()
    assert _status(app, public_id) == CONFIRMED
    assert slow_tpf.puts() == 1
    services(app).db.dispose()


def test_lease_is_renewed_while_a_delivery_runs(tmp_path: Path, database_url: str,
                                                slow_tpf: SlowTpf, files: SampleFiles) -> None:
    """A delivery longer than the lease keeps its item: no second worker takes it meanwhile."""
    import datetime as dt

    from ipis_server.send.models import OutboxItem, utcnow

    app = create_app(make_config(tmp_path, database_url, keys=files.keys, tpf_url=slow_tpf.url,
                                 worker_lease_seconds=3.0))
    _submit(app, files)
    first, second = Worker(services(app)), Worker(services(app))
    delivering = threading.Thread(target=first.process_one)
    delivering.start()
    try:
        wait_until(lambda: slow_tpf.puts() == 1, 30, "the first PUT")
        started = utcnow()
        wait_until(lambda: utcnow() > started + dt.timedelta(seconds=4), 30, "past one lease")

        def claimed_until() -> dt.datetime:
            with services(app).db.session() as db:
                item = db.scalars(select(OutboxItem)).one()
                assert item.claimed_until is not None
                return item.claimed_until

        assert claimed_until() > started + dt.timedelta(seconds=3)  # renewed
        assert not second.process_one()
    finally:
        slow_tpf.answer.set()
        delivering.join(30)
    assert slow_tpf.puts() == 1
    services(app).db.dispose()


def test_item_of_a_killed_worker_is_delivered_within_a_lease(
    tmp_path: Path, slow_tpf: SlowTpf, files: SampleFiles
) -> None:
    """``ipis worker`` SIGKILLed mid-delivery: another worker asks the TPF and delivers once
    the short lease has run out (before: the item waited ten minutes)."""
    import os
    import signal
    import subprocess
    import sys

    from server_testlib import REPO

    instance = tmp_path / "instance"
    config = make_config(tmp_path, f"sqlite:///{instance / 'ipis.db'}", keys=files.keys)
    app = create_app(config)
    public_id = _submit(app, files)
    services(app).db.dispose()
    slow_tpf.store = False  # the killed worker's PUT never arrives whole
    env = {**os.environ, "IPIS_INSTANCE": str(instance), "IPIS_DATABASE_URL": "",
           "IPIS_STORAGE_DIR": str(config.storage_dir), "IPIS_TPF_URL": slow_tpf.url,
           "IPIS_WORKER_LEASE_SECONDS": "3"}
    command = [sys.executable, "-m", "ipis_server", "worker"]
    first = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: slow_tpf.puts() == 1, 60, "the first worker's PUT")
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    finally:
        first.kill()
    slow_tpf.store = True
    slow_tpf.answer.set()
    second = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: f"/tpf/{public_id}" in slow_tpf.stored, 60, "delivered again")
    finally:
        second.terminate()
        second.wait(30)
    assert ("GET", f"/tpf/{public_id}") in slow_tpf.requests  # asked before sending again

def _report(app: object, public_id: str) -> str | None:
    from sqlalchemy import select

    from ipis_server.send.models import Submission

    with services(app).db.session() as db:  # type: ignore[arg-type]
        return db.scalars(
            select(Submission.tpf_report).where(Submission.public_id == public_id)).one()


def test_refused_at_the_tpf_door_is_final_with_its_reason(tmp_path: Path, database_url: str,
                                                          stub: StubTpf,
                                                          files: SampleFiles) -> None:
    """A 400 with the TPF's Norwegian message: no retries, the reason is kept for the pages."""
    import json

    stub.fail_first = 0
    stub.final_status = 400
    reason = ("Filen er kryptert med nøkkelen tpf-2025, som gjaldt til og med 2026-11-30. "
              "Hent gjeldende nøkkelfil fra SSB, og krypter IPLOS-datafilen på nytt.")
    stub.answer_body = json.dumps({"melding": reason}).encode()
    app = create_app(make_config(tmp_path, database_url, keys=files.keys, tpf_url=stub.url,
                                 tpf_token=stub.token))
    public_id = _submit(app, files)
    worker = Worker(services(app))
    assert worker.process_one()
    assert _status(app, public_id) == "avvist"
    assert json.loads(_report(app, public_id) or "") == {"status": "avvist", "melding": reason}
    assert not worker.process_one()  # final: never sent again
    assert len(stub.puts) == 1
    services(app).db.dispose()


def test_a_reason_holding_a_fodselsnummer_is_not_kept(tmp_path: Path, database_url: str,
                                                      stub: StubTpf, files: SampleFiles) -> None:
    import json

    stub.fail_first = 0
    stub.final_status = 400
    stub.answer_body = json.dumps({"melding": f"Feil i {files.fodselsnummer}"}).encode()
    app = create_app(make_config(tmp_path, database_url, keys=files.keys, tpf_url=stub.url,
                                 tpf_token=stub.token))
    public_id = _submit(app, files)
    Worker(services(app)).process_one()
    assert _status(app, public_id) == "avvist"
    kept = _report(app, public_id) or ""
    assert files.fodselsnummer not in kept
    assert json.loads(kept)["melding"] == "TPF avviste filen uten å oppgi grunn."
    services(app).db.dispose()


def test_tpf_status_body_is_kept_until_final(tmp_path: Path, database_url: str, stub: StubTpf,
                                             files: SampleFiles) -> None:
    """202 with the TPF's body, then on the next poll 200 with the register's answer."""
    import datetime as dt
    import json

    from ipis_server.send.models import utcnow

    stub.fail_first = 0
    stub.final_status = 202
    stub.answer_body = json.dumps({"status": "behandles"}).encode()
    app = create_app(make_config(tmp_path, database_url, keys=files.keys, tpf_url=stub.url,
                                 tpf_token=stub.token))
    public_id = _submit(app, files)
    assert Worker(services(app)).process_one()
    assert _status(app, public_id) == FORWARDED
    assert json.loads(_report(app, public_id) or "") == {"status": "behandles"}
    final = {"status": "levert", "personer": 20, "ugyldigeFodselsnumre": 2,
             "register": {"status": "lastet", "personer": 18}}
    stub.answer_body = json.dumps(final).encode()
    later = Worker(services(app), clock=lambda: utcnow() + dt.timedelta(minutes=1))
    assert later.process_one()
    assert _status(app, public_id) == CONFIRMED
    assert json.loads(_report(app, public_id) or "") == final
    assert len(stub.puts) == 1
    services(app).db.dispose()


def test_idle_worker_poll_from_the_environment(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """IPIS_WORKER_POLL_SECONDS (docs/drift.md), like the TPF's and register's idle settings."""
    from ipis_server.send import Config

    assert Config.from_env(tmp_path / "standard").worker_poll_seconds == 2.0
    monkeypatch.setenv("IPIS_WORKER_POLL_SECONDS", "0.3")
    assert Config.from_env(tmp_path / "satt").worker_poll_seconds == 0.3
