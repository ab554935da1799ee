"""Upload benchmark of the send module (issue 4): an encrypted file over loopback until the receipt.

Starts ``ipis serve`` (SQLite, a temporary instance folder) as a subprocess, logs in as the demo
account, and POSTs the file as multipart/form-data exactly like the browser form, streamed from
disk by the client (the client never holds the file). The time is from the first byte sent
until the receipt page (``Sending utført``) has arrived, i.e. including validation, SHA-256,
fsync and the database commit. The server's peak RSS is its ``VmHWM`` from /proc after the
upload (the whole process: interpreter, Flask, the worker thread).

Inputs are real encrypted files (``ipis demo-data`` + ``ipis encrypt``, 2048-bit keys), made
once and kept in bench/out/upload/. Targets: 50 MB in at most 3 s; peak RSS under 200 MB for
500 MB. The seed's send module took about 6 minutes for 50 MB.

The baseline, measured in the same run on the same file: the floor of what the server must do
with the bytes, i.e. read the file, SHA-256 it, write it to a file on the same disk and fsync.
Each size's figures go to docs/ytelse.md (bench/report.py).

    .venv/bin/python bench/bench_upload.py [--quick] [--sizes 5 50 500] [--runs 3] [--strict]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import Figure, Section, command_line

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "out" / "upload"
BYTES_PER_PERSON = 1062  # encrypted bytes per demo person (measured)
SEED_SECONDS_50MB = 6 * 60
TARGET_SECONDS_50MB = 3.0
TARGET_RSS_MB = 200
CHUNK = 1 << 20


def ipis(*args: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "ipis_server", *args], check=True, capture_output=True, text=True,
        cwd=REPO,
    ).stdout


def encrypted_file(megabytes: int) -> Path:
    """A real encrypted file of about ``megabytes`` MB (10^6 bytes), made once."""
    OUT.mkdir(parents=True, exist_ok=True)
    target = OUT / f"kryptert-{megabytes}mb.xml"
    if target.exists():
        return target
    keys = OUT / "nokler"
    if not (keys / "nokkelfil.xml").exists():
        ipis("keys", "generate", "--out-dir", str(keys), "--valid-from", "2026-01-01",
             "--bits", "2048")
    persons = megabytes * 1_000_000 // BYTES_PER_PERSON
    data = OUT / f"iplos-{megabytes}mb.xml"
    print(f"lager testfil: {persons} personer …", flush=True)
    ipis("demo-data", "--persons", str(persons), "--out", str(data), "--seed", "7")
    ipis("encrypt", "--data", str(data), "--out", str(target), "--keys",
         str(keys / "nokkelfil.xml"), "--email", "bench@example.no", "--name", "Bench",
         "--mobile", "91234567", "--today", "2026-06-01")
    data.unlink()
    return target


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def vm_mb(pid: int, field: str = "VmHWM") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


class RssSampler:
    """The server's current RSS every 20 ms during the uploads (what the upload itself adds)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.before = vm_mb(pid, "VmRSS")
        self.peak = self.before
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, vm_mb(self.pid, "VmRSS"))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


class Server:
    def __init__(self, instance: Path) -> None:
        # Serve the key file the inputs were encrypted with: the send module accepts only files
        # for the TPF key of the key file it serves.
        (instance / "nokler").mkdir(parents=True)
        shutil.copyfile(OUT / "nokler" / "nokkelfil.xml", instance / "nokler" / "nokkelfil.xml")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = instance.parent / "serve.log"
        with self.log.open("w") as handle:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ipis_server", "serve", "--only-send", "--port",
                 str(self.port), "--instance", str(instance)],
                stdout=handle, stderr=subprocess.STDOUT, cwd=REPO,
                env={**os.environ, "PYTHONUNBUFFERED": "1", "IPIS_DATABASE_URL": "",
                     "IPIS_TPF_URL": ""},
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            match = re.search(r"PIN-kode:\s+(\d+)", self.log.read_text())
            if match:
                self.pin = match.group(1)
                break
            if self.process.poll() is not None:
                raise RuntimeError(self.log.read_text())
            time.sleep(0.1)
        else:
            raise TimeoutError("serve")
        while True:
            try:
                requests.get(self.url + "/logg-inn", timeout=1)
                break
            except requests.RequestException:
                time.sleep(0.1)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def token(html: str) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html)
    assert match
    return match.group(1)


class Body:
    """An iterable with a length, so requests sends Content-Length rather than chunks."""

    def __init__(self, length: int, chunks: Iterator[bytes]) -> None:
        self._length = length
        self._chunks = chunks

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[bytes]:
        return self._chunks


def multipart(path: Path, csrf: str, extra: bytes) -> tuple[str, Body]:
    """The form's body as a stream, with its exact length (so no chunked encoding)."""
    boundary = "----ipisbench" + secrets.token_hex(8)
    head = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{csrf}\r\n"
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"fil\"; "
        f"filename=\"{path.name}\"\r\nContent-Type: text/xml\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    length = len(head) + path.stat().st_size + len(extra) + len(tail)

    def body() -> Iterator[bytes]:
        yield head
        with path.open("rb") as handle:
            while block := handle.read(CHUNK):
                yield block
        yield extra  # trailing newlines: a different SHA-256 per run (no duplicate warning)
        yield tail

    return f"multipart/form-data; boundary={boundary}", Body(length, body())


def upload(server: Server, session: requests.Session, path: Path, run: int) -> float:
    csrf = token(session.get(server.url + "/send").text)
    content_type, body = multipart(path, csrf, b"\n" * run)
    started = time.perf_counter()
    response = session.post(
        server.url + "/send", data=body,
        headers={"Content-Type": content_type},
    )
    elapsed = time.perf_counter() - started
    if "Sending utført" not in response.text:
        found = re.search(r'id="feiltekst">([^<]*)', response.text)
        raise RuntimeError(f"ingen kvittering: HTTP {response.status_code} {found and found[1]}")
    return elapsed


def floor_seconds(path: Path, folder: Path) -> float:
    """Read, SHA-256, write and fsync the file: the least any upload of it costs here."""
    started = time.perf_counter()
    digest = hashlib.sha256()
    target = folder / "grunnlinje.bin"
    with path.open("rb") as source, target.open("wb") as out:
        while block := source.read(CHUNK):
            digest.update(block)
            out.write(block)
        out.flush()
        os.fsync(out.fileno())
    elapsed = time.perf_counter() - started
    target.unlink()
    return elapsed


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="50 MB once")
    parser.add_argument("--sizes", type=int, nargs="+", default=[5, 50, 500])
    parser.add_argument("--runs", type=int, default=3,
                        help="runs of each size up to 100 MB (larger ones run once)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args, _ = parser.parse_known_args(argv)
    sizes = [50] if args.quick else args.sizes
    missed = []
    section = Section("upload", "Opplasting til kvittering (ipis serve, SQLite)",
                      command_line("bench/bench_upload.py", argv))
    for megabytes in sizes:
        path = encrypted_file(megabytes)
        size_mb = path.stat().st_size / 1e6
        folder = Path(tempfile.mkdtemp(prefix="ipis-bench-"))
        server = Server(folder / "instance")
        try:
            session = requests.Session()
            session.post(server.url + "/logg-inn", data={
                "csrf_token": token(session.get(server.url + "/logg-inn").text),
                "kommunenummer": "0301", "bydelsnummer": "00",
                "organisasjonsnummer": "922542570", "pin": server.pin})
            idle_rss = vm_mb(server.process.pid)
            runs = 1 if (args.quick or megabytes > 100) else args.runs
            sampler = RssSampler(server.process.pid)
            times = sorted(upload(server, session, path, run + 1) for run in range(runs))
            sampler.stop()
            median = times[len(times) // 2]
            peak = vm_mb(server.process.pid)
            floors = sorted(floor_seconds(path, folder) for _ in range(runs))
            floor = floors[len(floors) // 2]
        finally:
            server.stop()
            shutil.rmtree(folder, ignore_errors=True)
        seed = SEED_SECONDS_50MB * size_mb / 50
        print(
            f"upload {size_mb:.1f} MB: {median:.2f} s (median of {runs}; runs "
            f"{', '.join(f'{t:.2f}' for t in times)}), {size_mb / median:.0f} MB/s; server peak "
            f"RSS {peak:.0f} MB (high-water mark after login {idle_rss:.0f} MB; current RSS "
            f"{sampler.before:.0f} MB before, at most {sampler.peak:.0f} MB during the "
            f"upload); seed ~{seed:.0f} s "
            f"-> {seed / median:.0f}x faster"
        )
        print(f"  baseline (read + SHA-256 + write + fsync): {floor:.2f} s -> "
              f"{median / floor:.1f}x the floor")
        section.add(Figure(
            "fil til kvittering", f"{size_mb:.0f} MB", median, "s",
            "les + SHA-256 + skriv + fsync", floor, runs=runs,
            note=f"største RSS {peak:.0f} MB, under opplastingen {sampler.before:.0f} → "
                 f"{sampler.peak:.0f} MB"))
        if megabytes == 50 and median > TARGET_SECONDS_50MB:
            missed.append(f"50 MB took {median:.2f} s > {TARGET_SECONDS_50MB} s")
        if megabytes >= 500 and peak >= TARGET_RSS_MB:
            missed.append(f"peak RSS {peak:.0f} MB >= {TARGET_RSS_MB} MB")
    for line in missed:
        print(f"TARGET MISSED: {line}")
    section.note("Mål: 50 MB på høyst 3 s; største RSS under 200 MB for 500 MB. Den gamle "
                 "sendemodulen brukte om lag 6 minutter på 50 MB.")
    section.write()
    return 1 if (missed and args.strict) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
