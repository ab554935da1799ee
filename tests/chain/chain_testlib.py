"""The whole chain as it runs apart: the send module, the TPF and the register, each its own
server process (or processes) on 127.0.0.1 with its own instance folder, database and keys,
talking HTTP with bearer tokens.

The TPF and the register are started with the existing helpers (``ipis tpf serve``, ``ipis
register serve``); the send module runs as in production (gunicorn and ``ipis worker``), so
these tests do not depend on what ``ipis serve`` starts. ``deploy`` starts any party that way,
with as many workers as wanted (the scale-out test). The municipality's side is in
municipality.py, reading the register's data back in register_data.py.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from register_testlib import TOKEN as REGISTER_TOKEN
from register_testlib import KeySet, RunningRegister, start_register
from server_testlib import (
    DEMO,
    REPO,
    add_account_cli,
    free_port,
    install_key_file,
    ipis,
    wait_for_http,
)
from tpf_testlib import TOKEN as TPF_TOKEN
from tpf_testlib import RunningTpf, install_keys, start_tpf

PIN = "27182818"
# Seconds between a party's GETs of the next party's status, and the send module's idle
# worker's look for new work (the TPF's and register's: start_tpf's and start_register's).
POLL = "0.3"


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any IPIS_* setting, plus ``extra``: each party is
    configured only by what its own operator would set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IPIS_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def stop_all(processes: Sequence[subprocess.Popen[Any]]) -> None:
    """SIGTERM to every process first, then wait for each (SIGKILL after 20 s)."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


# --- a party as in production: gunicorn and worker processes ----------------------------------


@dataclass
class Deployment:
    """One party: gunicorn (the web app) and its worker processes, each with its own log."""

    url: str
    instance: Path
    env: dict[str, str]
    logs: list[Path]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def stop(self) -> None:
        stop_all(self.processes)

    def log_text(self) -> str:
        return "".join(p.read_text(encoding="utf-8", errors="replace") for p in self.logs
                       if p.exists())

    def log_bytes(self) -> bytes:
        return b"".join(p.read_bytes() for p in self.logs if p.exists())


GUNICORN = str(Path(sys.executable).parent / "gunicorn")
WSGI = {"send": "ipis_server.send.wsgi:app", "tpf": "ipis_server.tpf.wsgi:app",
        "register": "ipis_server.register.wsgi:app"}
WORKER = {"send": ["worker"], "tpf": ["tpf", "worker"], "register": ["register", "worker"]}
HEALTH = {"send": "/logg-inn", "tpf": "/", "register": "/logg-inn"}


def deploy(party: str, instance: Path, env: dict[str, str], workers: int = 1,
           web_workers: int = 1) -> Deployment:
    """docs/drift.md's layout for ``party``: gunicorn with ``web_workers`` processes and
    ``workers`` worker processes, all on ``env`` (the party's IPIS_* settings)."""
    port = free_port()
    logs = [instance.parent / f"{instance.name}-gunicorn.log"]
    logs += [instance.parent / f"{instance.name}-worker-{n}.log" for n in range(1, workers + 1)]
    commands = [[GUNICORN, "--bind", f"127.0.0.1:{port}", "--worker-class", "gthread",
                 "--workers", str(web_workers), "--threads", "4", "--timeout", "120",
                 "--preload", "--access-logfile", "-", WSGI[party]]]
    commands += [[sys.executable, "-m", "ipis_server", *WORKER[party]]] * workers
    running = Deployment(f"http://127.0.0.1:{port}", instance, env, logs)
    try:
        for command, log in zip(commands, logs, strict=True):
            with log.open("wb") as handle:
                running.processes.append(subprocess.Popen(
                    command, cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT))
        wait_for_http(running.url + HEALTH[party], running.processes[0], timeout=90)
    except BaseException:
        running.stop()
        raise
    return running


def start_send(instance: Path, key_folder: Path, tpf_url: str, database_url: str = "",
               workers: int = 1, env_extra: dict[str, str] | None = None,
               web_workers: int = 1) -> Deployment:
    """The send module serving ``key_folder``'s key file, with the demo account (PIN ``PIN``),
    forwarding to ``tpf_url``."""
    instance.mkdir(parents=True, exist_ok=True)
    install_key_file(instance, key_folder)
    env = clean_env(IPIS_INSTANCE=str(instance), IPIS_TPF_URL=tpf_url,
                    IPIS_TPF_TOKEN=TPF_TOKEN, IPIS_TPF_POLL_SECONDS=POLL,
                    IPIS_WORKER_POLL_SECONDS=POLL, IPIS_DATABASE_URL=database_url,
                    **(env_extra or {}))
    add_account_cli(instance, env, DEMO, PIN)
    return deploy("send", instance, env, workers, web_workers)


# --- the three parties ------------------------------------------------------------------------


@dataclass
class Chain:
    send: Deployment
    tpf: RunningTpf
    register: RunningRegister

    def stop(self) -> None:
        """All at once (each party's own stop waits for its processes in turn)."""
        stop_all([*self.send.processes, self.tpf.process, self.register.process])

    def instances(self) -> dict[str, Path]:
        return {"send": self.send.instance, "tpf": self.tpf.instance,
                "register": self.register.instance}

    def logs(self) -> dict[str, bytes]:
        return {"send": self.send.log_bytes(), "tpf": self.tpf.log.read_bytes(),
                "register": self.register.log.read_bytes()}

    def secret(self) -> bytes:
        """The TPF's pseudonym secret (read here only to compute the expected pseudonyms)."""
        return bytes.fromhex((self.tpf.instance / "hemmelighet" / "tpf-h1").read_text())


def private_tmp(root: Path, party: str) -> dict[str, str]:
    """A temp folder of the party's own (TMPDIR), so that what it writes there is searched."""
    folder = root / f"{party}-tmp"
    folder.mkdir(parents=True, exist_ok=True)
    return {"TMPDIR": str(folder)}


def start_chain(root: Path, keys: KeySet, *older: KeySet) -> Chain:
    """Register, TPF and send module under ``root``, SQLite each, all holding ``keys`` (the
    key file the send module serves) and the ``older`` years' keys (the TPF's and register's
    keyrings). Each party's temp files go to ``root/<party>-tmp``."""
    register_instance = root / "register"
    for key_set in older:
        ipis("keys", "install", "--party", "register", "--instance", str(register_instance),
             "--from", str(key_set.folder), env=clean_env())
    register = start_register(register_instance, keys, env_extra=private_tmp(root, "register"))
    tpf = None
    try:
        install_keys(root / "tpf", keys, *older)  # type: ignore[arg-type]
        tpf = start_tpf(root / "tpf", clean_env(
            IPIS_TPF_REGISTER_URL=register.url + "/innsendinger",
            IPIS_TPF_REGISTER_TOKEN=REGISTER_TOKEN, IPIS_TPF_REGISTER_POLL_SECONDS=POLL,
            **private_tmp(root, "tpf")))
        send = start_send(root / "send", keys.folder, tpf.url, env_extra=private_tmp(root, "send"))
    except BaseException:
        if tpf is not None:
            tpf.stop()
        register.stop()
        raise
    return Chain(send, tpf, register)


def restart_register(register: RunningRegister) -> None:
    """``ipis register serve`` again on the same address, instance and settings (after a
    stop): the TPF keeps its URL. Its output goes on in the same log."""
    port = register.url.rsplit(":", 1)[1]
    with register.log.open("a", encoding="utf-8") as handle:
        register.process = subprocess.Popen(
            [sys.executable, "-m", "ipis_server", "register", "serve", "--host", "127.0.0.1",
             "--port", port, "--instance", str(register.instance)],
            stdout=handle, stderr=subprocess.STDOUT, text=True, cwd=REPO, env=register.env)
    wait_for_http(register.url + "/logg-inn", register.process, timeout=60)


def tpf_delivery_attempts(tpf: RunningTpf, submission: str) -> int:
    """Failed attempts of the TPF's delivery of ``submission`` to the register (its database,
    read-only)."""
    connection = sqlite3.connect(f"file:{tpf.instance / 'tpf.db'}?mode=ro", uri=True, timeout=30)
    try:
        found = connection.execute(
            "SELECT attempts FROM register_outbox WHERE delivery_id = ?", (submission,)
        ).fetchone()
    finally:
        connection.close()
    return int(found[0]) if found else 0
