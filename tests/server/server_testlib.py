"""Helpers for the send module's tests: a throwaway PostgreSQL cluster, test files, login."""

from __future__ import annotations

import glob
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ipis_core.schemas import ENVELOPE_XSD

if TYPE_CHECKING:
    from flask import Flask
    from flask.testing import FlaskClient

    from ipis_server.send import Config

REPO = Path(__file__).resolve().parents[2]
XSD = ENVELOPE_XSD
CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
ERROR_RES = (
    re.compile(r'id="feiltekst"[^>]*>([^<]*)'),
    re.compile(r'id="feil"[^>]*>\s*<p>([^<]*)'),
)

DEMO = ("0301", "00", "922542570")
OTHER = ("1103", "00", "964965226")  # Stavanger: mismatch tests
LOCKME = ("4601", "00", "964338531")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ipis(*args: str, stdin: str | None = None, env: dict[str, str] | None = None,
         check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ipis_server", *args],
        input=stdin, capture_output=True, text=True, check=check, cwd=REPO,
        env={**os.environ, **(env or {})},
    )


@dataclass(frozen=True)
class SampleFiles:
    keys: Path
    cleartext: Path
    encrypted: Path
    sha256: str
    fodselsnummer: str  # one from the cleartext file: must never reach disk or logs


def make_test_files(folder: Path) -> SampleFiles:
    keys = folder / "nokler"
    ipis("keys", "generate", "--out-dir", str(keys), "--valid-from", "2026-01-01", "--bits", "2048")
    cleartext = folder / "iplos.xml"
    ipis("demo-data", "--persons", "20", "--out", str(cleartext))
    encrypted = folder / "iplos-kryptert.xml"
    out = ipis(
        "encrypt", "--data", str(cleartext), "--out", str(encrypted), "--keys",
        str(keys / "nokkelfil.xml"), "--email", "kari@example.no", "--name", "Kari Nordmann",
        "--mobile", "91234567", "--today", "2026-06-01",
    ).stdout
    sha = re.search(r"SHA-256: ([0-9a-f]{64})", out)
    assert sha, out
    fnr = re.search(rb"<Fodselsnummer>(\d{11})</Fodselsnummer>", cleartext.read_bytes())
    assert fnr
    return SampleFiles(keys, cleartext, encrypted, sha.group(1), fnr.group(1).decode())


# --- PostgreSQL: one throwaway cluster per test process (pytest-xdist worker) ----------------


class PostgresCluster:
    """initdb + pg_ctl as the ``postgres`` user, on 127.0.0.1 and a free port, in a temp dir."""

    def __init__(self) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not found:
            raise RuntimeError("PostgreSQL mangler: kjør `make setup-system`")
        self.bindir = Path(found[-1]).parent
        self.root = Path(tempfile.mkdtemp(prefix="ipis-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self._as_root = os.geteuid() == 0

    def _run(self, *args: str) -> None:
        command = list(args)
        if self._as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, text=True)

    def start(self) -> str:
        if self._as_root:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-A", "trust",
                  "-U", "postgres", "--no-sync", "-E", "UTF8")
        self._run(
            str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"),
            "-o", f"-h 127.0.0.1 -p {self.port} -k {self.root} -F", "-w", "start",
        )
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}"

    def stop(self) -> None:
        try:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.root, ignore_errors=True)


def create_database(server_url: str, name: str) -> str:
    import psycopg

    port = server_url.rsplit(":", 1)[1]
    with psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres",
                         autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{server_url}/{name}"


def wait_for_http(url: str, process: subprocess.Popen[str] | None = None,
                  timeout: float = 30.0) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"serveren stoppet: {process.returncode}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise TimeoutError(url)


def csrf_token(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, html[:500]
    return match.group(1)


def error_text(html: str) -> str:
    for pattern in ERROR_RES:
        match = pattern.search(html)
        if match and match.group(1).strip():
            return match.group(1).strip()
    return ""


@dataclass
class RunningServer:
    url: str
    pin: str
    instance: Path
    log: Path
    process: subprocess.Popen[str]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def install_key_file(instance: Path, keys: Path) -> Path:
    """Serve the key file the test files were encrypted with (its TPF key id is the one the
    send module accepts in ds:KeyName), where ``ipis serve`` looks for it."""
    target = instance / "nokler" / "nokkelfil.xml"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(keys / "nokkelfil.xml", target)
    return target


def start_server(instance: Path, env: dict[str, str] | None = None,
                 keys: Path | None = None) -> RunningServer:
    """``ipis serve`` as a subprocess on a free loopback port; waits until it answers.

    ``keys``: a folder from ``ipis keys generate`` whose key file the server serves (else it
    makes demo keys)."""
    instance.mkdir(parents=True, exist_ok=True)
    if keys is not None:
        install_key_file(instance, keys)
    port = free_port()
    log = instance.parent / f"{instance.name}-serve.log"
    handle = log.open("w", encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, "-m", "ipis_server", "serve", "--host", "127.0.0.1", "--port", str(port),
         "--instance", str(instance)],
        stdout=handle, stderr=subprocess.STDOUT, text=True, cwd=REPO,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )
    handle.close()
    url = f"http://127.0.0.1:{port}"
    server = RunningServer(url, "", instance, log, process)
    try:
        wait_for_http(url + "/logg-inn", process, timeout=60)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            match = re.search(r"PIN-kode:\s+(\d+)", server.log_text())
            if match:
                server.pin = match.group(1)
                break
            time.sleep(0.05)
        assert server.pin, server.log_text()
    except BaseException:
        server.stop()
        raise
    return server


# --- Flask test client helpers ----------------------------------------------------------------


def make_config(tmp_path: Path, database_url: str, keys: Path | None = None,
                **changes: Any) -> Config:
    """A Config under ``tmp_path``; ``keys``: serve that folder's key file (see
    install_key_file), else no key file (every upload is refused for its key name)."""
    import dataclasses
    import secrets

    from ipis_server.send import Config

    instance = tmp_path / "instance"
    instance.mkdir(exist_ok=True)
    if keys is not None:
        install_key_file(instance, keys)
    config = Config(
        instance_dir=instance,
        secret_key=secrets.token_hex(16),
        database_url=database_url,
        storage_dir=instance / "lager",
        inbox_dir=instance / "tpf-innboks",
        key_file=instance / "nokler" / "nokkelfil.xml",
        offline_page=instance / "mangler.html",
    )
    return dataclasses.replace(config, **changes)


def new_account(app: Flask, numbers: tuple[str, str, str] = DEMO, pin: str = "12345678") -> str:
    from ipis_server.send.accounts import add_account
    from ipis_server.send.services import services

    with services(app).db.session() as db:
        add_account(db, *numbers, pin=pin, actor="test")
    return pin


def login(client: FlaskClient, numbers: tuple[str, str, str] = DEMO, pin: str = "12345678") -> Any:
    token = csrf_token(client.get("/logg-inn").text)
    k, b, o = numbers
    return client.post(
        "/logg-inn",
        data={"csrf_token": token, "kommunenummer": k, "bydelsnummer": b,
              "organisasjonsnummer": o, "pin": pin},
    )
