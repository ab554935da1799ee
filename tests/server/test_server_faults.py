"""Faults at a real server process (issue 7, points 7, 8, 10 and 12): the database stopped
mid-upload, uploads over the size limit, a crash mid-upload, several processes migrating one
empty database at once, and the modes of the instance's files."""

from __future__ import annotations

import os
import secrets
import select
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from server_testlib import (
    DEMO,
    REPO,
    HeldBody,
    PostgresCluster,
    RunningServer,
    csrf_token,
    error_text,
    files_under,
    free_port,
    login_session,
    post_held,
    start_server,
    unique_copy,
    wait_for_http,
    wait_until,
)

from ipis_server.storage import Storage

pytestmark = pytest.mark.xdist_group("server-faults")

TOO_LARGE = "Filen er for stor."
LIMIT = 100_000


def _raw_post(url: str, path: str, headers: dict[str, str], chunks: list[bytes]) -> tuple[int, str]:
    """POST over a plain socket; stops sending as soon as the server answers."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        head = f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        sock.sendall(head.encode())
        for chunk in chunks:
            if select.select([sock], [], [], 0)[0]:
                break  # the answer is there: the server will not read the rest
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
        received = b""
        try:
            while block := sock.recv(65536):
                received += block
                header, _, body = received.partition(b"\r\n\r\n")
                length = [int(line.split(b":")[1]) for line in header.split(b"\r\n")
                          if line.lower().startswith(b"content-length:")]
                if length and len(body) >= length[0]:
                    break
        except ConnectionResetError:
            pass
    status = int(received.split(b" ", 2)[1])
    return status, received.partition(b"\r\n\r\n")[2].decode("utf-8", "replace")


def _multipart(token: str, data: bytes, extra_fields: int = 0) -> tuple[str, bytes]:
    boundary = "ipisgrense"
    body = f"--{boundary}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{token}\r\n"
    for i in range(extra_fields):
        body += f"--{boundary}\r\nContent-Disposition: form-data; name=\"x{i}\"\r\n\r\n{i}\r\n"
    body += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"fil\"; "
             "filename=\"f.xml\"\r\nContent-Type: text/xml\r\n\r\n")
    whole = body.encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return f"multipart/form-data; boundary={boundary}", whole


@pytest.fixture(scope="module")
def small_limit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    server = start_server(tmp_path_factory.mktemp("grense") / "instance",
                          {"IPIS_DATABASE_URL": "", "IPIS_MAX_UPLOAD_BYTES": str(LIMIT)})
    yield server
    server.stop()


def _logged_in(server: RunningServer) -> tuple[dict[str, str], str]:
    session, response = login_session(server.url, DEMO, server.pin)
    assert response.url.endswith("/send")
    token = csrf_token(session.get(server.url + "/send").text)
    return {"Cookie": f"ipis_sesjon={session.cookies['ipis_sesjon']}"}, token


def _nothing_stored(server: RunningServer) -> None:
    assert files_under(server.instance / "lager" / "mottak") == []
    assert files_under(server.instance / "lager" / "innsendinger") == []


def test_declared_upload_over_the_limit_gets_413_page_before_the_body(
    small_limit: RunningServer, big_file: Path
) -> None:
    """Content-Length over the limit: the Norwegian 413 page at once, though the body never
    comes (before: HTTP 500, the handler re-read the request)."""
    headers, token = _logged_in(small_limit)
    content_type, body = _multipart(token, big_file.read_bytes())
    headers.update({"Content-Type": content_type, "Content-Length": str(50 * 1024 * 1024)})
    status, page = _raw_post(small_limit.url, "/send", headers, [body[:1000]])
    assert status == 413
    assert TOO_LARGE in error_text(page)
    _nothing_stored(small_limit)


def test_chunked_upload_over_the_limit_gets_413_page(small_limit: RunningServer,
                                                     big_file: Path) -> None:
    headers, token = _logged_in(small_limit)
    content_type, body = _multipart(token, big_file.read_bytes())
    headers.update({"Content-Type": content_type, "Transfer-Encoding": "chunked"})
    pieces = [body[i:i + 65536] for i in range(0, len(body), 65536)]
    chunks = [b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces] + [b"0\r\n\r\n"]
    status, page = _raw_post(small_limit.url, "/send", headers, chunks)
    assert status == 413
    assert TOO_LARGE in error_text(page)
    _nothing_stored(small_limit)


def test_too_many_form_parts_is_not_called_too_large(small_limit: RunningServer,
                                                     files: object) -> None:
    headers, token = _logged_in(small_limit)
    content_type, body = _multipart(token, b"<x/>", extra_fields=12)
    headers.update({"Content-Type": content_type, "Content-Length": str(len(body))})
    status, page = _raw_post(small_limit.url, "/send", headers, [body])
    assert status == 400
    assert "flere felt enn skjemaet" in error_text(page)
    assert "for stor" not in page
    _nothing_stored(small_limit)


def test_instance_folder_and_database_are_private(small_limit: RunningServer) -> None:
    """The instance folder 0700, the database (and its WAL files) and the key 0600 (before:
    ipis.db was created 0644 in a 0755 folder)."""
    instance = small_limit.instance
    assert stat.S_IMODE(instance.stat().st_mode) == 0o700
    for name in ("ipis.db", "ipis.db-wal", "ipis.db-shm", "secret_key"):
        path = instance / name
        if name == "ipis.db" or path.exists():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, name
    for folder in ("lager", "lager/mottak", "lager/innsendinger"):
        assert stat.S_IMODE((instance / folder).stat().st_mode) == 0o700, folder


def test_partial_upload_of_a_killed_server_is_removed_at_the_next_start(
    tmp_path: Path, big_file: Path
) -> None:
    """SIGKILL mid-upload leaves a partial file; the next start removes it at once (before:
    only when it was an hour old). A live upload's partial file is never removed."""
    instance = tmp_path / "instance"
    env = {"IPIS_DATABASE_URL": ""}
    server = start_server(instance, env)
    incoming = instance / "lager" / "mottak"
    try:
        session = login_session(server.url, DEMO, server.pin)[0]
        body = HeldBody(csrf_token(session.get(server.url + "/send").text),
                        unique_copy(big_file.read_bytes()))
        with ThreadPoolExecutor(1) as pool:
            sending = pool.submit(post_held, session, server.url, body)
            wait_until(lambda: list(incoming.glob("*.part")) != [], what="upload under way")
            Storage(instance / "lager").clear_incoming()  # as another process would
            assert list(incoming.glob("*.part")) != []
            body.release.set()
            assert "Sending utført" in sending.result().text

            body = HeldBody(csrf_token(session.get(server.url + "/send").text),
                            unique_copy(big_file.read_bytes()))
            sending = pool.submit(post_held, session, server.url, body)
            wait_until(lambda: list(incoming.glob("*.part")) != [], what="upload under way")
            server.process.send_signal(signal.SIGKILL)
            server.process.wait(30)
            body.release.set()
            with pytest.raises(Exception):
                sending.result()
        assert list(incoming.glob("*.part")) != []
    finally:
        server.stop()
    restarted = start_server(instance, env)
    try:
        assert list(incoming.iterdir()) == []
    finally:
        restarted.stop()


@pytest.mark.postgres
def test_database_stopped_mid_upload_removes_the_file_and_says_so(
    tmp_path: Path, big_file: Path
) -> None:
    """PostgreSQL stops while the file streams in: the user gets a Norwegian message, the
    stored file is removed, and after the restart uploads work again (before: HTTP 500 and an
    orphan file in the storage)."""
    cluster = PostgresCluster()
    try:
        url = cluster.start()
        from server_testlib import create_database

        env = {"IPIS_DATABASE_URL": create_database(url, "ipis")}
        server = start_server(tmp_path / "instance", env)
        try:
            session = login_session(server.url, DEMO, server.pin)[0]
            body = HeldBody(csrf_token(session.get(server.url + "/send").text),
                            unique_copy(big_file.read_bytes()))
            incoming = server.instance / "lager" / "mottak"
            with ThreadPoolExecutor(1) as pool:
                sending = pool.submit(post_held, session, server.url, body)
                wait_until(lambda: list(incoming.glob("*.part")) != [], what="upload under way")
                cluster.halt()
                body.release.set()
                response = sending.result()
            assert response.status_code == 503
            assert error_text(response.text).startswith(
                "Filen kunne ikke registreres fordi databasen ikke svarte.")
            assert files_under(server.instance / "lager") == []
            cluster.resume()
            session = login_session(server.url, DEMO, server.pin)[0]
            token = csrf_token(session.get(server.url + "/send").text)
            again = session.post(server.url + "/send", data={"csrf_token": token},
                                 files={"fil": ("f.xml", big_file.read_bytes(), "text/xml")})
            assert "Sending utført" in again.text, error_text(again.text)
            history = session.get(server.url + "/innsendinger").text
            assert history.count("IPIS-") == 1
        finally:
            server.stop()
    finally:
        cluster.stop()


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_processes_started_together_on_an_empty_database_all_start(
    db: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """gunicorn (as docs/drift.md runs it) and six ``ipis worker --once`` at the same moment
    on an empty database: every one migrates or waits, none crashes (before: UniqueViolation
    on alembic_version, 4 starts of 5 on PostgreSQL)."""
    instance = tmp_path / "instance"
    env = {**os.environ, "IPIS_INSTANCE": str(instance), "IPIS_DATABASE_URL": "",
           "IPIS_TPF_URL": ""}
    if db == "postgres":
        from server_testlib import create_database

        env["IPIS_DATABASE_URL"] = create_database(
            request.getfixturevalue("postgres_server"), f"m_{secrets.token_hex(6)}")
    port = free_port()
    gunicorn = [str(Path(sys.executable).parent / "gunicorn"), "--bind", f"127.0.0.1:{port}",
                "--worker-class", "gthread", "--workers", "2", "--threads", "4", "--preload",
                "ipis_server.send.wsgi:app"]
    workers = [[sys.executable, "-m", "ipis_server", "worker", "--once"]] * 6
    log = tmp_path / "gunicorn.log"
    with log.open("w") as handle:
        web = subprocess.Popen(gunicorn, cwd=REPO, env=env, stdout=handle,
                               stderr=subprocess.STDOUT)
        others = [subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True) for command in workers]
    try:
        outputs = [process.communicate(timeout=120)[0] for process in others]
        for process, output in zip(others, outputs, strict=True):
            assert process.returncode == 0, output
        wait_for_http(f"http://127.0.0.1:{port}/logg-inn", web, timeout=60)
    finally:
        web.terminate()
        web.wait(30)
    assert "Traceback" not in log.read_text()
    migrated = subprocess.run([sys.executable, "-m", "ipis_server", "migrate"], cwd=REPO,
                              env=env, capture_output=True, text=True, check=True)
    assert f"Databasen er oppdatert (revisjon {_head_revision()})" in migrated.stdout


def _head_revision() -> str:
    """The newest of the send module's migrations, as Alembic sees it."""
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory

    from ipis_server.send.models import MIGRATIONS_DIR

    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head
