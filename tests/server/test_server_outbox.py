"""Forwarding to a real stub TPF server on loopback that fails the first attempts."""

from __future__ import annotations

import hashlib
import io
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from server_testlib import SampleFiles, csrf_token, login, make_config, new_account

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


def test_retries_with_backoff_until_tpf_confirms(tmp_path: Path, database_url: str,
                                                stub: StubTpf, files: SampleFiles) -> None:
    app = create_app(make_config(tmp_path, database_url, keys=files.keys, tpf_url=stub.url,
                                 tpf_token=stub.token, retry_base_seconds=0.2))
    public_id = _submit(app, files)
    worker = Worker(services(app))
    assert worker.process_one()
    assert _status(app, public_id) == RETRYING
    assert not worker.process_one()  # backing off: nothing due yet
    deadline = time.monotonic() + 10
    while _status(app, public_id) != CONFIRMED and time.monotonic() < deadline:
        worker.process_one()
        time.sleep(0.05)
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
