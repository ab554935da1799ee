"""Every party's serve and worker commands in the foreground (server/running.py): a port that
is taken gives the Norwegian reason and exit 1 (not werkzeug's English line), and SIGTERM —
what systemd and a container runtime send — stops a server or a worker cleanly with exit 0
(before: the TPF's and the register's ``serve`` and every ``worker`` died without closing)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from server_testlib import REPO, free_port, wait_until

from ipis_server.running import WORKER_RUNNING

pytestmark = pytest.mark.xdist_group("server-process")

SERVERS = [
    ("tpf", ["tpf", "serve"], "TPF"),
    ("register", ["register", "serve"], "Registeret"),
    ("send", ["serve", "--only-send"], "Sendemodulen"),
]
WORKERS = [["worker"], ["tpf", "worker"], ["register", "worker"]]


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IPIS_")}
    return {**env, "PYTHONUNBUFFERED": "1", "IPIS_INSTANCE": str(tmp_path / "send"),
            "IPIS_TPF_INSTANCE": str(tmp_path / "tpf"),
            "IPIS_REGISTER_INSTANCE": str(tmp_path / "register")}


def _start(tmp_path: Path, args: list[str]) -> tuple[subprocess.Popen[str], Path]:
    log = tmp_path / "out.log"
    with log.open("w", encoding="utf-8") as handle:
        process = subprocess.Popen([sys.executable, "-m", "ipis_server", *args], cwd=REPO,
                                   env=_env(tmp_path), stdout=handle, stderr=subprocess.STDOUT,
                                   text=True)
    return process, log


@pytest.mark.parametrize(("name", "command", "label"), SERVERS, ids=[s[0] for s in SERVERS])
def test_a_taken_port_is_said_in_norwegian(tmp_path: Path, name: str, command: list[str],
                                            label: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process, log = _start(tmp_path, [*command, "--port", str(port), "--no-worker"])
        assert process.wait(120) == 1
    text = log.read_text(encoding="utf-8")
    assert f"{label} kunne ikke starte på 127.0.0.1:{port}: porten er allerede i bruk." in text
    assert "Traceback" not in text
    assert "Address already in use" not in text


@pytest.mark.parametrize(("name", "command", "label"), SERVERS, ids=[s[0] for s in SERVERS])
def test_sigterm_stops_a_server_and_its_worker(tmp_path: Path, name: str, command: list[str],
                                               label: str) -> None:
    port = free_port()
    process, log = _start(tmp_path, [*command, "--port", str(port)])
    try:
        wait_until(lambda: f":{port}" in log.read_text(encoding="utf-8"), 120, "started")
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
    finally:
        process.kill()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0  # nothing answers any more
    assert "Traceback" not in log.read_text(encoding="utf-8")


@pytest.mark.parametrize("command", WORKERS, ids=[" ".join(w) for w in WORKERS])
def test_sigterm_stops_a_worker(tmp_path: Path, command: list[str]) -> None:
    process, log = _start(tmp_path, command)
    try:
        wait_until(lambda: WORKER_RUNNING in log.read_text(encoding="utf-8"), 120, "running")
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
    finally:
        process.kill()
    assert "Traceback" not in log.read_text(encoding="utf-8")
