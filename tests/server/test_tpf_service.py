"""Against real TPF processes on 127.0.0.1, on SQLite and PostgreSQL: ``ipis tpf serve`` (token,
idempotent PUT, 409, parallel PUTs of one id, GET states, keys at the door), and the
documented production layout (gunicorn and two ``ipis tpf worker`` processes on one
PostgreSQL, every submission processed once)."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from server_testlib import REPO, create_database, files_under, free_port, wait_for_http, wait_until
from tpf_testlib import (
    TOKEN,
    KeySet,
    RunningTpf,
    cleartext,
    encrypt,
    install_keys,
    make_key_set,
    new_id,
    numbers_of,
    start_tpf,
)

pytestmark = pytest.mark.xdist_group("tpf-process")


@pytest.fixture(scope="module")
def dated_keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, KeySet]:
    """Keys dated from the real today (a real process cannot be given a day): the current
    year's, and one whose overlap ended long ago."""
    root = tmp_path_factory.mktemp("tpf-nokler")
    today = dt.date.today()
    return {
        "current": make_key_set(root / "current", today - dt.timedelta(days=10)),
        "old": make_key_set(root / "old", today - dt.timedelta(days=800)),
    }


@pytest.fixture(scope="module",
                params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def running(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
            dated_keys: dict[str, KeySet]) -> Iterator[RunningTpf]:
    env = {"IPIS_TPF_DATABASE_URL": ""}
    if request.param == "postgres":
        server_url = request.getfixturevalue("postgres_server")
        env["IPIS_TPF_DATABASE_URL"] = create_database(server_url, f"tpf_{secrets.token_hex(6)}")
    instance = tmp_path_factory.mktemp("tpf-serve") / "tpf"
    install_keys(instance, dated_keys["current"], dated_keys["old"])
    server = start_tpf(instance, env)
    yield server
    server.stop()


def test_token_put_get_and_processing(running: RunningTpf,
                                      dated_keys: dict[str, KeySet]) -> None:
    key_file = dated_keys["current"].key_file
    plain = cleartext(12, seed=31)
    body = encrypt(plain, key_file)
    submission_id = new_id()
    assert running.get(submission_id).status_code == 404
    for token in ("", "feil-token", TOKEN + "x"):
        refused = running.put(submission_id, body, token=token)
        assert refused.status_code == 401 and refused.json() == {"melding": "Mangler gyldig token."}
        assert running.get(submission_id, token=token).status_code == 401
    taken = running.put(submission_id, body)
    assert taken.status_code == 202 and taken.json()["status"] == "behandles"
    assert running.put(submission_id, body).status_code == 202  # the same again: a no-op
    conflict = running.put(submission_id, body + b"\n")
    assert conflict.status_code == 409
    wait_until(lambda: running.get(submission_id).status_code == 200, 120, "processed")
    assert running.get(submission_id).json() == {
        "status": "levert", "personer": 12, "ugyldigeFodselsnumre": 0}
    delivered = running.instance / "register-innboks" / f"{submission_id}.xml"
    assert delivered.is_file()
    for number in numbers_of(plain):
        assert number not in running.log_text()
        for path in files_under(running.instance):
            assert number.encode() not in path.read_bytes(), path


def test_parallel_puts_of_one_id_are_one_submission(running: RunningTpf,
                                                   dated_keys: dict[str, KeySet]) -> None:
    body = encrypt(cleartext(5, seed=32), dated_keys["current"].key_file)
    submission_id = new_id()
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda _: running.put(submission_id, body).status_code, range(8)))
    assert codes == [202] * 8
    stored = [p for p in files_under(running.instance / "lager" / "innsendinger")
              if p.name.startswith(submission_id)]
    assert len(stored) == 1
    wait_until(lambda: running.get(submission_id).status_code == 200, 120, "processed")
    outbox = [p for p in files_under(running.instance / "register-innboks")
              if p.name.startswith(submission_id)]
    assert len(outbox) == 1
    assert "behandlet: 5 personer" in running.log_text()


def test_keys_refused_at_the_door(running: RunningTpf, dated_keys: dict[str, KeySet]) -> None:
    old = dated_keys["old"].key_file
    refused = running.put(new_id(), encrypt(cleartext(3), old))
    assert refused.status_code == 400
    message = refused.json()["melding"]
    assert message.startswith(f"Filen er kryptert med nøkkelen {old.tpf.key_id}, som gjaldt til "
                              f"og med {old.valid_to.isoformat()}.")
    assert files_under(running.instance / "lager" / "mottak") == []


@pytest.mark.postgres
def test_gunicorn_and_two_workers_on_one_postgresql(
        request: pytest.FixtureRequest, tmp_path: Path, dated_keys: dict[str, KeySet]) -> None:
    """docs/drift.md's layout: every submission processed once by one of the workers."""
    server_url = request.getfixturevalue("postgres_server")
    instance = tmp_path / "tpf"
    install_keys(instance, dated_keys["current"])
    env = {**os.environ, "IPIS_TPF_INSTANCE": str(instance), "IPIS_TPF_TOKEN": TOKEN,
           "IPIS_TPF_TEST_NUMBERS": "1", "IPIS_TPF_WORKER_IDLE_SECONDS": "0.1",
           "IPIS_TPF_DATABASE_URL": create_database(server_url, f"g_{secrets.token_hex(6)}")}
    port = free_port()
    processes: list[subprocess.Popen[bytes]] = []
    logs = [tmp_path / "gunicorn.log", tmp_path / "worker-1.log", tmp_path / "worker-2.log"]
    commands = [
        [str(Path(sys.executable).parent / "gunicorn"), "--bind", f"127.0.0.1:{port}",
         "--worker-class", "gthread", "--workers", "2", "--threads", "4", "--timeout", "120",
         "--preload", "ipis_server.tpf.wsgi:app"],
        [sys.executable, "-m", "ipis_server", "tpf", "worker"],
        [sys.executable, "-m", "ipis_server", "tpf", "worker"],
    ]
    try:
        for command, log in zip(commands, logs, strict=True):
            with log.open("wb") as handle:
                processes.append(subprocess.Popen(command, cwd=REPO, env=env, stdout=handle,
                                                  stderr=subprocess.STDOUT))
        wait_for_http(f"http://127.0.0.1:{port}/", processes[0], timeout=60)
        url = f"http://127.0.0.1:{port}/innsendinger"
        ids = [new_id() for _ in range(6)]
        for index, submission_id in enumerate(ids):
            body = encrypt(cleartext(3, seed=40 + index), dated_keys["current"].key_file)
            answer = requests.put(f"{url}/{submission_id}", data=body, timeout=60, headers={
                "Authorization": f"Bearer {TOKEN}",
                "X-IPIS-SHA256": hashlib.sha256(body).hexdigest()})
            assert answer.status_code == 202, answer.text

        def done() -> bool:
            return all(requests.get(f"{url}/{i}", timeout=10, headers={
                "Authorization": f"Bearer {TOKEN}"}).status_code == 200 for i in ids)

        wait_until(done, 180, "all processed")
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
    worker_logs = logs[1].read_text() + logs[2].read_text()
    for submission_id in ids:
        assert worker_logs.count(f"Innsending {submission_id} behandlet") == 1, submission_id
    delivered = files_under(instance / "register-innboks")
    assert sorted(p.stem for p in delivered) == sorted(ids)
