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


def make_big_file(files: SampleFiles, folder: Path) -> Path:
    cleartext = folder / "iplos-stor.xml"
    ipis("demo-data", "--persons", "2000", "--out", str(cleartext))
    encrypted = folder / "iplos-stor-kryptert.xml"
    ipis("encrypt", "--data", str(cleartext), "--out", str(encrypted), "--keys",
         str(files.keys / "nokkelfil.xml"), "--email", "kari@example.no", "--name",
         "Kari Nordmann", "--mobile", "91234567", "--today", "2026-06-01")
    cleartext.unlink()
    assert encrypted.stat().st_size > 1.5 * 1024 * 1024
    return encrypted


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

    def halt(self) -> None:
        """Stop the server at once (a crash, as far as the clients can tell); keep the data."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w",
                  "stop")

    def resume(self) -> None:
        self._run(
            str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"),
            "-o", f"-h 127.0.0.1 -p {self.port} -k {self.root} -F", "-w", "start",
        )

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
    """``ipis serve --only-send`` (the send module alone, delivering to its local inbox
    folder) as a subprocess on a free loopback port; waits until it answers.

    ``keys``: a folder from ``ipis keys generate`` whose key file the server serves (else it
    makes demo keys)."""
    instance.mkdir(parents=True, exist_ok=True)
    if keys is not None:
        install_key_file(instance, keys)
    port = free_port()
    log = instance.parent / f"{instance.name}-serve.log"
    handle = log.open("w", encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, "-m", "ipis_server", "serve", "--only-send", "--host", "127.0.0.1",
         "--port", str(port), "--instance", str(instance)],
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


# --- real clients against a real server process -----------------------------------------------


def wait_until(condition: Any, timeout: float = 60.0, what: str = "") -> None:
    """Poll ``condition`` until it is true; generous deadlines, never a fixed sleep."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what or repr(condition))
        time.sleep(0.05)


def login_session(url: str, numbers: tuple[str, str, str], pin: str,
                  forwarded_for: str | None = None) -> tuple[Any, Any]:
    """A requests session and the response of its login POST."""
    import requests

    session = requests.Session()
    if forwarded_for:
        session.headers["X-Forwarded-For"] = forwarded_for
    token = csrf_token(session.get(url + "/logg-inn").text)
    k, b, o = numbers
    response = session.post(url + "/logg-inn", data={
        "csrf_token": token, "kommunenummer": k, "bydelsnummer": b,
        "organisasjonsnummer": o, "pin": pin})
    return session, response


class HeldBody:
    """A multipart upload body with its exact length, whose last bytes wait for ``release``.

    Lets a test hold many uploads open at the server (their partial files exist), then let
    them finish at once, or do something to the server in between.
    """

    def __init__(self, csrf: str, data: bytes, name: str = "kryptert.xml",
                 held_back: int = 16) -> None:
        import threading

        boundary = "----ipistest" + os.urandom(8).hex()
        self.content_type = f"multipart/form-data; boundary={boundary}"
        head = (
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n"
            f"{csrf}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"fil\"; "
            f"filename=\"{name}\"\r\nContent-Type: text/xml\r\n\r\n"
        ).encode()
        whole = head + data + f"\r\n--{boundary}--\r\n".encode()
        self._first, self._rest = whole[:-held_back], whole[-held_back:]
        self.release = threading.Event()

    def __len__(self) -> int:
        return len(self._first) + len(self._rest)

    def __iter__(self) -> Any:
        yield self._first
        self.release.wait(120)
        yield self._rest


def post_held(session: Any, url: str, body: HeldBody) -> Any:
    return session.post(url + "/send", data=body, headers={"Content-Type": body.content_type},
                        timeout=180)


def add_account_cli(instance: Path, env: dict[str, str], numbers: tuple[str, str, str],
                    pin: str) -> None:
    k, b, o = numbers
    ipis("account", "add", "--kommunenummer", k, "--bydelsnummer", b, "--organisasjonsnummer",
         o, "--pin-stdin", "--instance", str(instance), stdin=pin + "\n", env=env)


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def account_numbers(index: int, kommunenummer: str = "0301") -> tuple[str, str, str]:
    """A distinct account per test: ``0301 00`` (the test file's sender) and a valid orgnr."""
    from ipis_core.identifiers import orgnr_ok

    candidate = 910000000 + index * 1000
    while not orgnr_ok(str(candidate)):
        candidate += 1
    return kommunenummer, "00", str(candidate)


_COPIES = iter(range(1, 1 << 30))


def unique_copy(data: bytes) -> bytes:
    """The same valid file with a different SHA-256: 40 characters of whitespace after the root
    element, spaces and line breaks spelling this process and a counter in binary (the
    envelope reader bounds a whitespace run, so its length alone cannot carry the number)."""
    number = (os.getpid() << 20) | next(_COPIES)
    return data + b"".join(b"\n" if number >> bit & 1 else b" " for bit in range(40))
