"""What a second process costs ``ipis encrypt`` (issue 8.5): starting one, and the pipe.

Measured here, each as the median of several runs:
- ``os.fork`` of a process that has imported what ``ipis encrypt`` imports, until the child
  answers through a pipe (what pyapp/second_process.py does);
- multiprocessing's ``spawn`` and ``forkserver`` starting a child that imports the core and
  ``cryptography`` and answers (the forkserver's first start includes the server's);
- importing ``cryptography``'s AES-GCM in a fresh interpreter, against an empty one;
- 50 MB of person batches (0.4 MB frames, as the child sends them) through a pipe from a
  forked child: wall time and the reading parent's CPU time.

    python bench/explore_second_process.py [--runs 7]

An exploration tool behind a design choice (pyapp/second_process.py), not a benchmark: it has no
target and no section in docs/ytelse.md, so ``make bench`` (which runs bench/bench_*.py) leaves
it out.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import Connection

import ipis_core.encrypt_file  # noqa: F401 - what the parent holds when it forks

FRAME_BYTES = 425_000  # a batch of 512 demo persons in the TPF layer
PIPE_MB = 50


def fork_round_trip() -> float:
    read_end, write_end = os.pipe()
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        os.write(write_end, b"!")
        os._exit(0)
    os.read(read_end, 1)
    elapsed = time.perf_counter() - started
    os.waitpid(pid, 0)
    os.close(read_end)
    os.close(write_end)
    return elapsed


def _ready(connection: Connection) -> None:
    """Under spawn and forkserver, the child has imported this module, and so the core."""
    import cryptography.hazmat.primitives.ciphers.aead  # noqa: F401

    connection.send(b"!")
    connection.close()


def start_with(method: str) -> Callable[[], float]:
    context = multiprocessing.get_context(method)

    def start() -> float:
        receiver, sender = context.Pipe(duplex=False)
        started = time.perf_counter()
        child = context.Process(target=_ready, args=(sender,))
        child.start()
        receiver.recv()
        elapsed = time.perf_counter() - started
        child.join()
        return elapsed

    return start


def interpreter(code: str) -> Callable[[], float]:
    def run() -> float:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        return time.perf_counter() - started

    return run


def pipe_throughput() -> tuple[float, float]:
    """Wall seconds and the parent's CPU seconds for PIPE_MB through a pipe."""
    read_end, write_end = os.pipe()
    import fcntl

    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 1 << 20)
    frame = os.urandom(FRAME_BYTES)
    frames = PIPE_MB * 1_000_000 // FRAME_BYTES
    started, cpu = time.perf_counter(), time.process_time()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        with os.fdopen(write_end, "wb") as pipe:
            for _ in range(frames):
                pipe.write(frame)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        while pipe.read(FRAME_BYTES):
            pass
    wall, used = time.perf_counter() - started, time.process_time() - cpu
    os.waitpid(pid, 0)
    return wall, used


def median(measure: Callable[[], float], runs: int) -> float:
    return statistics.median(measure() for _ in range(runs))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    runs = args.runs
    first_forkserver = start_with("forkserver")()
    rows = [
        ("fork, child answers", median(fork_round_trip, runs)),
        ("spawn, child imports core + cryptography", median(start_with("spawn"), runs)),
        ("forkserver, first start (server included)", first_forkserver),
        ("forkserver, later starts", median(start_with("forkserver"), runs)),
        ("fresh interpreter, nothing imported", median(interpreter("pass"), runs)),
        ("fresh interpreter, import AESGCM", median(interpreter(
            "import cryptography.hazmat.primitives.ciphers.aead"), runs)),
        ("fresh interpreter, import ipis_core.encrypt_file", median(interpreter(
            "import ipis_core.encrypt_file"), runs)),
    ]
    print(f"start-up of a second process (median of {runs}; load {os.getloadavg()[0]:.2f})")
    for label, seconds in rows:
        print(f"  {label:<50} {seconds * 1000:8.1f} ms")
    walls, cpus = zip(*(pipe_throughput() for _ in range(runs)), strict=True)
    print(f"pipe: {PIPE_MB} MB in {FRAME_BYTES // 1000} kB frames: "
          f"{statistics.median(walls) * 1000:.0f} ms wall, "
          f"{statistics.median(cpus) * 1000:.0f} ms CPU in the reading parent")
    return 0


if __name__ == "__main__":
    sys.exit(main())
