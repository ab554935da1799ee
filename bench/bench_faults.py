"""Faults (issue 7, point 14): what is lost when parts of the stack fail. Nothing should be.

Each scenario runs on a fresh production stack (bench/stack.py: gunicorn as documented,
PostgreSQL, ``ipis worker``, a TPF stand-in that counts every file it takes in) with a few
municipalities sending real encrypted files:

- normal: no fault (the baseline of this run);
- tpf-down: the TPF answers 503 while the files arrive, then comes back;
- kill-web-mid-upload: gunicorn SIGKILLed while the files stream in, started again, and the
  files without a receipt sent again;
- kill-after-receipt: gunicorn and the worker SIGKILLed right after the receipts (deliveries
  held back), both started again;
- kill-worker-mid-delivery: the worker SIGKILLed while a file travels to the TPF, a new one
  started (the lease is 6 s here);
- disk-full: the storage folder on a tmpfs of 2.5 times the largest file (13 MB at 5 MB; needs
  root for ``mount``, else skipped);
- database-down: PostgreSQL stopped while files stream in, started again, and the refused
  files sent again.

For each: receipts given, lost (a receipted file not at the TPF with the same bytes), taken in
by the TPF more than once, files left in the storage that no receipt names, and the times to
the receipt and from the receipt to the TPF (p50/p95).

    .venv/bin/python bench/bench_faults.py [--only tpf-down ...] [--megabytes 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import Figure, Section, command_line
from stack import KOMMUNER, Stack, Upload, encrypted_file, p50_p95

CLIENTS = 4


@dataclass
class Outcome:
    name: str
    uploads: list[Upload] = field(default_factory=list)
    tally: dict[str, int] = field(default_factory=dict)
    delivery: list[float] = field(default_factory=list)
    note: str = ""

    @property
    def times(self) -> list[float]:
        return [u.seconds for u in self.uploads if u.receipt]


def _wait(condition: Callable[[], bool], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError
        time.sleep(0.1)


def _parallel(stack: Stack, paths: dict[str, Path],
              hook: Callable[[int], None] | None = None) -> list[Upload]:
    sessions = {k: stack.session(k) for k in paths}
    with ThreadPoolExecutor(len(paths)) as pool:
        return list(pool.map(lambda k: stack.upload(sessions[k], k, paths[k], hook=hook), paths))


def _again(stack: Stack, paths: dict[str, Path], uploads: list[Upload]) -> list[Upload]:
    """Send again what got no receipt (as the clerk would after the message)."""
    missing = {u.kommune: paths[u.kommune] for u in uploads if not u.receipt}
    return [u for u in uploads if u.receipt] + (_parallel(stack, missing) if missing else [])


def normal(stack: Stack, paths: dict[str, Path]) -> Outcome:
    return Outcome("normal", _parallel(stack, paths))


def tpf_down(stack: Stack, paths: dict[str, Path]) -> Outcome:
    stack.tpf.down = True
    uploads = _parallel(stack, paths)
    _wait(lambda: all(stack.tpf.puts.get(u.receipt) for u in uploads if u.receipt))
    stack.tpf.down = False
    return Outcome("tpf-down", uploads, note="TPF svarer 503 til alle filene er forsøkt levert")


def kill_web_mid_upload(stack: Stack, paths: dict[str, Path]) -> Outcome:
    killed = threading.Event()
    half = min(p.stat().st_size for p in paths.values()) // 2

    def hook(sent: int) -> None:
        if sent >= half and not killed.is_set():
            killed.set()
            stack.kill_web()

    first = _parallel(stack, paths, hook)
    stack.start_web()
    return Outcome("kill-web-mid-upload", _again(stack, paths, first),
                   note=f"{sum(1 for u in first if not u.receipt)} sendt på nytt etter omstart")


def kill_after_receipt(stack: Stack, paths: dict[str, Path]) -> Outcome:
    stack.tpf.hold.clear()
    uploads = _parallel(stack, paths)
    stack.kill_web()
    stack.kill_worker()
    stack.tpf.hold.set()
    stack.start_web()
    stack.start_worker()
    return Outcome("kill-after-receipt", uploads)


def kill_worker_mid_delivery(stack: Stack, paths: dict[str, Path]) -> Outcome:
    stack.tpf.hold.clear()
    uploads = _parallel(stack, paths)
    _wait(lambda: sum(stack.tpf.puts.values()) >= 1)
    stack.kill_worker()
    stack.tpf.hold.set()
    stack.start_worker()
    return Outcome("kill-worker-mid-delivery", uploads, note="leieavtale 6 s")


def database_down(stack: Stack, paths: dict[str, Path]) -> Outcome:
    halted = threading.Event()
    half = min(p.stat().st_size for p in paths.values()) // 2

    def hook(sent: int) -> None:
        if sent >= half and not halted.is_set():
            halted.set()
            stack.cluster.halt()

    first = _parallel(stack, paths, hook)
    stack.cluster.resume()
    refused = {f"HTTP {u.status}: {u.message}" for u in first if not u.receipt}
    return Outcome("database-down", _again(stack, paths, first),
                   note="PostgreSQL stoppet midt i opplastingene; svar: "
                   + " / ".join(sorted(refused)))


def disk_full(paths: dict[str, Path]) -> Outcome:
    mount = Path(tempfile.mkdtemp(prefix="ipis-full-"))
    size_mb = max(p.stat().st_size for p in paths.values()) * 2.5 / 1e6
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb:.0f}m", "tmpfs",
                              str(mount)], capture_output=True)
    if mounted.returncode != 0:
        mount.rmdir()
        return Outcome("disk-full", note="hoppet over: mount av tmpfs krever root")
    stack = Stack(storage_dir=mount)
    try:
        _start(stack, paths)
        sessions = {k: stack.session(k) for k in paths}
        uploads = [stack.upload(sessions[k], k, paths[k]) for k in paths]  # one after another
        outcome = _finish(stack, Outcome("disk-full", uploads))
        refused = {f"HTTP {u.status}: {u.message}" for u in uploads if not u.receipt}
        outcome.note = f"lager på {size_mb:.0f} MB tmpfs; avvist: " + " / ".join(sorted(refused))
        return outcome
    finally:
        stack.close()
        subprocess.run(["umount", str(mount)], check=False)
        mount.rmdir()


def _start(stack: Stack, paths: dict[str, Path]) -> None:
    stack.add_accounts(tuple(paths))
    stack.start_web()
    stack.start_worker()


def _finish(stack: Stack, outcome: Outcome) -> Outcome:
    stack.wait_delivered(outcome.uploads)
    outcome.tally = stack.account(outcome.uploads)
    outcome.delivery = stack.delivery_seconds(outcome.uploads)
    return outcome


SCENARIOS: dict[str, Callable[[Stack, dict[str, Path]], Outcome]] = {
    "normal": normal,
    "tpf-down": tpf_down,
    "kill-web-mid-upload": kill_web_mid_upload,
    "kill-after-receipt": kill_after_receipt,
    "kill-worker-mid-delivery": kill_worker_mid_delivery,
    "database-down": database_down,
}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", nargs="+", default=[*SCENARIOS, "disk-full"])
    parser.add_argument("--megabytes", type=int, default=5)
    args, _ = parser.parse_known_args(argv)
    paths = {k: encrypted_file(k, args.megabytes) for k in KOMMUNER[:CLIENTS]}
    outcomes = []
    for name in args.only:
        print(f"--- {name}", flush=True)
        if name == "disk-full":
            outcomes.append(disk_full(paths))
            continue
        stack = Stack()
        try:
            _start(stack, paths)
            outcomes.append(_finish(stack, SCENARIOS[name](stack, paths)))
        finally:
            stack.close()
    baseline = next((statistics.median(o.times) for o in outcomes
                     if o.name == "normal" and o.times), float("nan"))
    section = Section("faults", f"Feil: hva går tapt ({CLIENTS} kommuner à {args.megabytes} MB)",
                      command_line("bench/bench_faults.py", argv))
    bad = False
    for o in outcomes:
        t = o.tally
        line = (f"{o.name}: kvitteringer {t.get('receipts', 0)}, tapt {t.get('lost', 0)}, "
                f"tatt inn mer enn én gang {t.get('sent_twice', 0)}, foreldreløse filer "
                f"{t.get('orphans', 0)}; til kvittering {p50_p95(o.times)}; kvittering til TPF "
                f"{p50_p95(o.delivery)}" + (f" ({o.note})" if o.note else ""))
        print(line, flush=True)
        section.note(f"- {line}")
        bad = bad or bool(t.get("lost") or t.get("sent_twice") or t.get("orphans"))
        if o.times:
            section.add(Figure(f"{o.name}: til kvittering, p50", f"{CLIENTS} × {args.megabytes} MB",
                               statistics.median(o.times), "s", "normal, p50", baseline,
                               runs=len(o.times), note=f"tapt {t.get('lost', 0)}"))
    section.write()
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
