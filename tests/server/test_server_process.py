"""Against a real ``ipis serve`` process on 127.0.0.1, with SQLite and with PostgreSQL."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from server_testlib import (
    DEMO,
    OTHER,
    RunningServer,
    SampleFiles,
    create_database,
    csrf_token,
    error_text,
    ipis,
    start_server,
)

pytestmark = pytest.mark.xdist_group("server-process")  # one worker: the servers are shared


@pytest.fixture(scope="module",
                params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def running(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
            files: SampleFiles) -> Iterator[RunningServer]:
    env = {"IPIS_DATABASE_URL": ""}
    if request.param == "postgres":
        server_url = request.getfixturevalue("postgres_server")
        env["IPIS_DATABASE_URL"] = create_database(server_url, f"serve_{secrets.token_hex(6)}")
    server = start_server(tmp_path_factory.mktemp("serve") / "instance", env, keys=files.keys)
    server.env = env  # type: ignore[attr-defined]
    yield server
    server.stop()


def _login(
    session: requests.Session, url: str, numbers: tuple[str, str, str], pin: str
) -> requests.Response:
    token = csrf_token(session.get(url + "/logg-inn").text)
    k, b, o = numbers
    return session.post(url + "/logg-inn", data={
        "csrf_token": token, "kommunenummer": k, "bydelsnummer": b,
        "organisasjonsnummer": o, "pin": pin})


def test_serve_demo_upload_receipt_and_forwarding(running: RunningServer,
                                                  files: SampleFiles) -> None:
    log = running.log_text()
    assert "Kommunenummer:       0301" in log and "Organisasjonsnummer: 922542570" in log
    assert (running.instance / "nokler" / "nokkelfil.xml").is_file()
    session = requests.Session()
    assert _login(session, running.url, DEMO, running.pin).url.endswith("/send")
    token = csrf_token(session.get(running.url + "/send").text)
    with files.encrypted.open("rb") as handle:
        response = session.post(running.url + "/send", data={"csrf_token": token},
                                files={"fil": ("iplos-kryptert.xml", handle, "text/xml")})
    assert response.status_code == 200, error_text(response.text)
    assert "Sending utført" in response.text and files.sha256 in response.text
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        listing = session.get(running.url + "/innsendinger").text
        if "videresendt" in listing:
            break
        time.sleep(0.2)
    assert "videresendt" in listing
    inbox = list((running.instance / "tpf-innboks").glob("*.xml"))
    assert files.encrypted.read_bytes() in [p.read_bytes() for p in inbox]
    key = session.get(running.url + "/last-ned/nokkelfil.xml")
    assert key.status_code == 200
    assert "IPLOSKrypteringsnokler" in key.content.decode("utf-16")


def test_cleartext_upload_leaves_no_trace_in_process_logs(running: RunningServer,
                                                          files: SampleFiles) -> None:
    session = requests.Session()
    _login(session, running.url, DEMO, running.pin)
    token = csrf_token(session.get(running.url + "/send").text)
    with files.cleartext.open("rb") as handle:
        response = session.post(running.url + "/send", data={"csrf_token": token},
                                files={"fil": ("iplos.xml", handle, "text/xml")})
    assert response.status_code == 422
    assert error_text(response.text) == "Ugyldig format på kryptert melding. Kjøringen avsluttes"
    session.get(running.url + "/innsendinger")  # the refused request's log lines are written
    assert files.fodselsnummer not in running.log_text()
    for path in running.instance.rglob("*"):
        if path.is_file():
            assert files.fodselsnummer.encode() not in path.read_bytes(), path


def test_account_commands(running: RunningServer) -> None:
    instance = ["--instance", str(running.instance)]
    env = running.env  # type: ignore[attr-defined]
    numbers = ["--kommunenummer", OTHER[0], "--organisasjonsnummer", OTHER[2]]
    added = ipis("account", "add", *numbers, *instance, env=env)
    pin = re.search(r"PIN-kode: (\d+)", added.stdout)
    assert pin, added.stdout
    session = requests.Session()
    assert _login(session, running.url, OTHER, pin.group(1)).url.endswith("/send")
    assert ipis("account", "add", *numbers, *instance, env=env, check=False).returncode == 1
    bad = ipis("account", "add", "--kommunenummer", "0301", "--organisasjonsnummer",
               "123456789", *instance, env=env, check=False)
    assert bad.returncode == 1 and "kontrollsiffer" in bad.stderr
    ipis("account", "reset-pin", *numbers, "--pin-stdin", *instance, stdin="24681357\n", env=env)
    assert _login(requests.Session(), running.url, OTHER, "24681357").url.endswith("/send")
    ipis("account", "disable", *numbers, *instance, env=env)
    listing = ipis("account", "list", *instance, env=env).stdout
    assert "1103 00 964965226  deaktivert" in listing
    assert "/logg-inn" in _login(requests.Session(), running.url, OTHER, "24681357").url
    assert "24681357" not in running.log_text()


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_gunicorn_production_entry_point(db: str, request: pytest.FixtureRequest,
                                         tmp_path_factory: pytest.TempPathFactory,
                                         files: SampleFiles) -> None:
    """docs/drift.md's command: two gthread workers share sessions, CSRF and the database."""
    import os
    import subprocess
    import sys

    from server_testlib import REPO, free_port, install_key_file, wait_for_http

    instance = tmp_path_factory.mktemp("gunicorn") / "instance"
    install_key_file(instance, files.keys)
    env = {**os.environ, "IPIS_INSTANCE": str(instance), "IPIS_DATABASE_URL": ""}
    if db == "postgres":
        env["IPIS_DATABASE_URL"] = create_database(
            request.getfixturevalue("postgres_server"), f"g_{secrets.token_hex(6)}")
    ipis("account", "add", "--kommunenummer", DEMO[0], "--organisasjonsnummer", DEMO[2],
         "--pin-stdin", stdin="31415926\n", env=env)
    port = free_port()
    log = instance.parent / "gunicorn.log"
    with log.open("w") as handle:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "gunicorn"), "--bind", f"127.0.0.1:{port}",
             "--worker-class", "gthread", "--workers", "2", "--threads", "4", "--preload",
             "--access-logfile", "-", "ipis_server.send.wsgi:app"],
            cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(url + "/logg-inn", process, timeout=60)
        for _ in range(3):  # new connections: more than one worker answers
            session = requests.Session()
            assert _login(session, url, DEMO, "31415926").url.endswith("/send")
        token = csrf_token(session.get(url + "/send").text)
        with files.encrypted.open("rb") as handle:
            response = session.post(url + "/send", data={"csrf_token": token},
                                    files={"fil": ("f.xml", handle, "text/xml")})
        assert "Sending utført" in response.text, error_text(response.text)
    finally:
        process.terminate()
        process.wait(15)
    assert "31415926" not in log.read_text()
