"""The production stack of docs/drift.md on loopback, for the load and fault benchmarks.

PostgreSQL (a throwaway cluster, as the tests make it), gunicorn with the documented command,
``ipis worker`` as its own process, and a stand-in TPF that keeps the outbox contract
(``PUT /{id}`` idempotent with a bearer token, ``GET /{id}`` 200/404) and counts every PUT, so
a benchmark can say what was lost or delivered twice. Municipalities are real accounts with
real encrypted files of their own kommunenummer.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "server"))
from server_testlib import PostgresCluster, create_database, free_port  # noqa: E402

OUT = REPO / "bench" / "out" / "stack"
BYTES_PER_PERSON = 1062  # encrypted bytes per demo person (bench_upload.py)
KOMMUNER = ("0301", "4601", "5001", "1103", "3907", "5501", "1804", "3301", "4204", "3403",
            "1508", "5601", "3001", "3003", "3004", "3005", "3006", "3007", "3012", "3014")
PIN = "24682468"
TOKEN = "bench-token"
CHUNK = 1 << 20


def ipis(*args: str, env: dict[str, str] | None = None) -> str:
    return subprocess.run(
        [sys.executable, "-m", "ipis_server", *args], check=True, capture_output=True,
        text=True, cwd=REPO, env={**os.environ, **(env or {})},
    ).stdout


def orgnr(index: int) -> str:
    from ipis_core.identifiers import orgnr_ok

    candidate = 920000000 + index * 1000
    while not orgnr_ok(str(candidate)):
        candidate += 1
    return str(candidate)


def encrypted_file(kommune: str, megabytes: int) -> Path:
    """A real encrypted file of about ``megabytes`` MB from ``kommune``, made once."""
    OUT.mkdir(parents=True, exist_ok=True)
    target = OUT / f"kryptert-{kommune}-{megabytes}mb.xml"
    if target.exists():
        return target
    keys = OUT / "nokler"
    if not (keys / "nokkelfil.xml").exists():
        ipis("keys", "generate", "--out-dir", str(keys), "--valid-from", "2026-01-01",
             "--bits", "2048")
    data = OUT / f"iplos-{kommune}.xml"
    ipis("demo-data", "--persons", str(megabytes * 1_000_000 // BYTES_PER_PERSON), "--out",
         str(data), "--kommune", kommune, "--seed", kommune)
    ipis("encrypt", "--data", str(data), "--out", str(target), "--keys",
         str(keys / "nokkelfil.xml"), "--email", "bench@example.no", "--name", "Bench",
         "--mobile", "91234567")
    data.unlink()
    return target


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (p50 is the median of an odd count)."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(share * len(ordered) + 0.5) - 1))]


def p50_p95(values: list[float]) -> str:
    if not values:
        return "p50 -, p95 -"
    return f"p50 {statistics.median(values):.2f} s, p95 {percentile(values, 0.95):.2f} s"


# --- the stand-in TPF ---------------------------------------------------------------------------


@dataclass
class Tpf:
    """Keeps the outbox contract; ``down`` answers 503; ``hold`` stalls PUTs until cleared."""

    folder: Path
    puts: dict[str, int] = field(default_factory=dict)
    stores: dict[str, int] = field(default_factory=dict)  # whole files taken in, per id
    digests: dict[str, str] = field(default_factory=dict)
    arrived: dict[str, float] = field(default_factory=dict)
    down: bool = False
    hold: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def __post_init__(self) -> None:
        self.hold.set()
        tpf = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: object) -> None:
                pass

            def _answer(self, status: int) -> None:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_PUT(self) -> None:
                submission = self.path.rsplit("/", 1)[1]
                with tpf.lock:
                    tpf.puts[submission] = tpf.puts.get(submission, 0) + 1
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    return self._answer(401)
                if tpf.down:
                    return self._answer(503)
                length = int(self.headers["Content-Length"])
                digest = hashlib.sha256()
                temp = tpf.folder / f".{submission}.{secrets.token_hex(4)}"
                with temp.open("wb") as out:
                    while length:
                        tpf.hold.wait()
                        block = self.rfile.read(min(CHUNK, length))
                        if not block:
                            temp.unlink()
                            return None
                        digest.update(block)
                        out.write(block)
                        length -= len(block)
                if digest.hexdigest() != self.headers.get("X-IPIS-SHA256"):
                    temp.unlink()
                    return self._answer(400)
                temp.replace(tpf.folder / submission)
                with tpf.lock:
                    tpf.stores[submission] = tpf.stores.get(submission, 0) + 1
                    tpf.digests[submission] = digest.hexdigest()
                    tpf.arrived.setdefault(submission, time.monotonic())
                return self._answer(201)

            def do_GET(self) -> None:
                if tpf.down:
                    return self._answer(503)
                submission = self.path.rsplit("/", 1)[1]
                self._answer(200 if submission in tpf.digests else 404)

        self.folder.mkdir(parents=True, exist_ok=True)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/innsendinger"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.hold.set()
        self._server.shutdown()
        self._server.server_close()


# --- the stack ----------------------------------------------------------------------------------


@dataclass
class Upload:
    kommune: str
    sha256: str
    seconds: float
    status: int
    receipt: str = ""  # the public id when the receipt page came back
    message: str = ""
    finished_at: float = 0.0


class Stack:
    """PostgreSQL + gunicorn + ``ipis worker`` + the TPF stand-in, in a temporary folder."""

    def __init__(self, storage_dir: Path | None = None, env: dict[str, str] | None = None) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="ipis-stack-"))
        self.instance = self.root / "instance"
        self.cluster = PostgresCluster()
        self.tpf = Tpf(self.root / "tpf")
        database = create_database(self.cluster.start(), "ipis")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ, "IPIS_INSTANCE": str(self.instance), "IPIS_DATABASE_URL": database,
            "IPIS_TPF_URL": self.tpf.url, "IPIS_TPF_TOKEN": TOKEN, "IPIS_SECRET_KEY": "b" * 64,
            "IPIS_WORKER_LEASE_SECONDS": "6", "PYTHONUNBUFFERED": "1",
            # the key file the bench's files are encrypted with (encrypted_file): the send
            # module takes in only files for the keys of the key files it serves
            "IPIS_KEY_FILE": str(OUT / "nokler" / "nokkelfil.xml"),
            **(env or {}),
        }
        if storage_dir is not None:
            self.env["IPIS_STORAGE_DIR"] = str(storage_dir)
        self.storage = storage_dir or self.instance / "lager"
        self.web: subprocess.Popen[bytes] | None = None
        self.worker: subprocess.Popen[bytes] | None = None
        self.accounts: dict[str, tuple[str, str, str]] = {}

    def add_accounts(self, kommuner: tuple[str, ...]) -> None:
        from ipis_server.db import open_database, upgrade_schema
        from ipis_server.send.accounts import add_account
        from ipis_server.send.models import MIGRATIONS_DIR

        database = open_database(self.env["IPIS_DATABASE_URL"])
        upgrade_schema(database, MIGRATIONS_DIR)
        with database.session() as db:
            for index, kommune in enumerate(kommuner):
                numbers = (kommune, "00", orgnr(index))
                add_account(db, *numbers, pin=PIN, actor="bench")
                self.accounts[kommune] = numbers
        database.dispose()

    def start_web(self) -> None:
        log = (self.root / "gunicorn.log").open("ab")
        self.web = subprocess.Popen(
            [str(Path(sys.executable).parent / "gunicorn"), "--bind", f"127.0.0.1:{self.port}",
             "--worker-class", "gthread", "--workers", "2", "--threads", "8", "--timeout",
             "120", "--preload", "ipis_server.send.wsgi:app"],
            cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        deadline = time.monotonic() + 90
        while True:
            try:
                requests.get(self.url + "/logg-inn", timeout=2)
                return
            except requests.RequestException:
                if time.monotonic() > deadline or self.web.poll() is not None:
                    raise RuntimeError("gunicorn startet ikke") from None
                time.sleep(0.1)

    def kill_web(self) -> None:
        assert self.web is not None
        os.killpg(self.web.pid, signal.SIGKILL)  # master and workers, no goodbye
        self.web.wait(30)

    def start_worker(self) -> None:
        log = (self.root / "worker.log").open("ab")
        self.worker = subprocess.Popen(
            [sys.executable, "-m", "ipis_server", "worker"], cwd=REPO, env=self.env,
            stdout=log, stderr=subprocess.STDOUT)

    def kill_worker(self) -> None:
        assert self.worker is not None
        self.worker.send_signal(signal.SIGKILL)
        self.worker.wait(30)

    def close(self) -> None:
        for process in (self.web, self.worker):
            if process is not None and process.poll() is None:
                if process is self.web:
                    os.killpg(process.pid, signal.SIGTERM)
                else:
                    process.terminate()
                process.wait(30)
        self.tpf.close()
        self.cluster.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    # --- clients ---------------------------------------------------------------------------

    def session(self, kommune: str) -> requests.Session:
        session = requests.Session()
        page = session.get(self.url + "/logg-inn", timeout=60).text
        k, b, o = self.accounts[kommune]
        response = session.post(self.url + "/logg-inn", timeout=120, data={
            "csrf_token": _token(page), "kommunenummer": k, "bydelsnummer": b,
            "organisasjonsnummer": o, "pin": PIN})
        if not response.url.endswith("/send"):
            raise RuntimeError(f"innlogging feilet for {kommune}")
        return session

    def upload(self, session: requests.Session, kommune: str, path: Path,
               extra: bytes = b"", hook: Callable[[int], None] | None = None) -> Upload:
        """POST the file as the browser form does, streamed; ``hook(bytes sent)`` per MB."""
        sha = hashlib.sha256()
        with path.open("rb") as handle:
            while block := handle.read(CHUNK):
                sha.update(block)
        sha.update(extra)
        try:
            form = session.get(self.url + "/send", timeout=60)
        except requests.RequestException as error:
            return Upload(kommune, sha.hexdigest(), 0.0, 0, message=type(error).__name__)
        if (csrf := _token(form.text)) is None:  # the form page itself refused (e.g. 503)
            return Upload(kommune, sha.hexdigest(), 0.0, form.status_code,
                          message=_page_message(form.text))
        content_type, body = _multipart(path, csrf, extra, hook)
        started = time.perf_counter()
        try:
            response = session.post(self.url + "/send", data=body, timeout=600,
                                    headers={"Content-Type": content_type})
        except requests.RequestException as error:
            return Upload(kommune, sha.hexdigest(), time.perf_counter() - started, 0,
                          message=type(error).__name__)
        elapsed = time.perf_counter() - started
        found = re.search(r"/kvittering/([0-9a-f]{32})$", response.url)
        if found and "Sending utført" in response.text and sha.hexdigest() in response.text:
            return Upload(kommune, sha.hexdigest(), elapsed, response.status_code,
                          receipt=found.group(1), finished_at=time.monotonic())
        return Upload(kommune, sha.hexdigest(), elapsed, response.status_code,
                      message=_page_message(response.text))

    # --- what was lost ---------------------------------------------------------------------

    def wait_delivered(self, uploads: list[Upload], timeout: float = 300.0) -> None:
        wanted = {u.receipt for u in uploads if u.receipt}
        deadline = time.monotonic() + timeout
        while not wanted <= set(self.tpf.digests) and time.monotonic() < deadline:
            time.sleep(0.2)

    def account(self, uploads: list[Upload]) -> dict[str, int]:
        """Receipts given; of them lost (not at the TPF, or with other bytes) and delivered
        more than once; and files left behind in the storage that no receipt names."""
        receipts = [u for u in uploads if u.receipt]
        lost = [u for u in receipts if self.tpf.digests.get(u.receipt) != u.sha256]
        twice = [u for u in receipts if self.tpf.stores.get(u.receipt, 0) > 1]
        named = {f"{u.receipt}.xml" for u in receipts}
        stored = {p.name for p in (self.storage / "innsendinger").glob("*.xml")}
        partial = list((self.storage / "mottak").glob("*"))
        return {"receipts": len(receipts), "lost": len(lost), "sent_twice": len(twice),
                "orphans": len(stored - named) + len(partial)}

    def delivery_seconds(self, uploads: list[Upload]) -> list[float]:
        return [self.tpf.arrived[u.receipt] - u.finished_at for u in uploads
                if u.receipt in self.tpf.arrived]


def _token(html: str) -> str | None:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html)
    return match.group(1) if match else None


def _page_message(html: str) -> str:
    """The Norwegian message a refusing page shows the clerk (its error paragraph or title)."""
    message = (re.search(r'id="feiltekst"[^>]*>([^<]*)', html)
               or re.search(r'id="feil"[^>]*>\s*<p>([^<]*)', html)
               or re.search(r"<main[^>]*>.*?<p[^>]*>([^<]+)", html, re.S)
               or re.search(r"<title>([^<]*)", html))
    return message.group(1).strip() if message else ""


class _Body:
    def __init__(self, length: int, chunks: Iterator[bytes]) -> None:
        self._length, self._chunks = length, chunks

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[bytes]:
        return self._chunks


def _multipart(path: Path, csrf: str, extra: bytes,
               hook: Callable[[int], None] | None) -> tuple[str, _Body]:
    boundary = "----ipisbench" + secrets.token_hex(8)
    head = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{csrf}\r\n"
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"fil\"; "
        f"filename=\"{path.name}\"\r\nContent-Type: text/xml\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def chunks() -> Iterator[bytes]:
        yield head
        sent = 0
        with path.open("rb") as handle:
            while block := handle.read(CHUNK):
                yield block
                sent += len(block)
                if hook is not None:
                    hook(sent)
        yield extra
        yield tail

    length = len(head) + path.stat().st_size + len(extra) + len(tail)
    return f"multipart/form-data; boundary={boundary}", _Body(length, chunks())
