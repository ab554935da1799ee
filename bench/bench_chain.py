"""The whole chain for one 50 MB IPLOS file: from ``ipis encrypt`` to rows in the register's
database (issue 9, "Show"), beside ``ipis encrypt`` alone in the same run.

Each run starts the three parties afresh as processes on 127.0.0.1, as the whole-chain tests
do (tests/chain/chain_testlib.py): the register (``ipis register serve``), the TPF (``ipis tpf
serve``) and the send module (gunicorn and ``ipis worker``), each with its own instance folder,
SQLite database (the default) and keys (3072 bits, ``ipis keys generate``), talking HTTP with
bearer tokens. Idle workers look for work every 0.1 s (TPF), 0.2 s (register) and 0.3 s (send
module); the parties' defaults are 2 s each, which would add up to 6 s of waiting.

The input is ``ipis demo-data --persons 110000 --seed 7`` (53 MB, made once in bench/out/).
Per run, not timed: the parties' start and the clerk's login. Timed, with the boundaries taken
from the parties' own databases (their clocks are this machine's):

1. ``ipis encrypt`` (subprocess, with the parties running idle);
2. upload to receipt: the file streamed as the form's multipart body until «Sending utført»;
3. send → TPF: the receipt until the TPF has stored the file (its ``received_at``): the send
   module's worker finding the submission and PUTting 117 MB;
4. TPF processing: stored until processed (``processed_at``: the §4 message written, fsynced
   and its delivery queued);
5. TPF → register: processed until the register has stored the delivery (``received_at``);
6. register load: stored until loaded (``done_at``: every row committed);
7. total: the start of ``ipis encrypt`` until the rows are in the register.

Baseline: ``ipis encrypt`` of the same file alone (no party running), in each run. Target
(issue 9): the total under 15 s on this 2-core machine. Reported: medians of ``--runs`` runs
(default 3), each phase's ratio to the baseline, the peak RSS of each party's processes.

    .venv/bin/python bench/bench_chain.py            # 50 MB x3
    .venv/bin/python bench/bench_chain.py --quick    # 50 MB once
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
for folder in ("tests/chain", "tests/server", "tests/register", "tests"):
    sys.path.insert(0, str(REPO / folder))
sys.path.insert(0, str(HERE))

from bench_upload import multipart  # noqa: E402
from chain_testlib import Chain, start_chain  # noqa: E402
from municipality import CONTACT, Clerk, submission_id  # noqa: E402
from register_testlib import KeySet  # noqa: E402
from report import Figure, Section, command_line  # noqa: E402
from server_testlib import csrf_token  # noqa: E402

from ipis_core.keyfile import parse_key_file  # noqa: E402

OUT = REPO / "bench" / "out" / "chain"
PERSONS = {5: 11_000, 50: 110_000}
TARGET_SECONDS = 15.0
PHASES = ("encrypt", "upload", "send_to_tpf", "tpf", "tpf_to_register", "load", "total")
LABELS = {
    "encrypt": "`ipis encrypt` (partene kjører)",
    "upload": "opplasting til kvittering",
    "send_to_tpf": "sendemodulen → TPF (lagret hos TPF)",
    "tpf": "TPF-behandling",
    "tpf_to_register": "TPF → registeret (lagret hos registeret)",
    "load": "lasting i registeret",
    "total": "hele kjeden",
}


def ipis(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "ipis_server", *args], check=True, cwd=REPO,
                   stdout=subprocess.DEVNULL)


def prepare(size: int) -> tuple[Path, KeySet]:
    """The input (made once) and this run's keys (3072 bits, valid from ten days ago)."""
    OUT.mkdir(parents=True, exist_ok=True)
    plain = OUT / f"iplos-{PERSONS[size]}.xml"
    if not plain.exists():
        ipis("demo-data", "--persons", str(PERSONS[size]), "--seed", "7", "--out", str(plain))
    keys = OUT / "nokler"
    shutil.rmtree(keys, ignore_errors=True)
    ipis("keys", "generate", "--out-dir", str(keys), "--valid-from",
         (dt.date.today() - dt.timedelta(days=10)).isoformat())
    return plain, KeySet(keys, parse_key_file((keys / "nokkelfil.xml").read_bytes()))


def encrypt(plain: Path, out: Path, keys: KeySet) -> float:
    out.unlink(missing_ok=True)
    started = time.perf_counter()
    ipis("encrypt", "--data", str(plain), "--out", str(out), "--keys",
         str(keys.folder / "nokkelfil.xml"), *CONTACT)
    return time.perf_counter() - started


def _epoch(value: str | None) -> float:
    assert value is not None
    return dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC).timestamp()


def _row(database: Path, query: str, *params: str) -> tuple[str | None, ...] | None:
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
    try:
        found = connection.execute(query, params).fetchone()
        return tuple(found) if found is not None else None
    except sqlite3.OperationalError:  # the table is not there yet
        return None
    finally:
        connection.close()


def peak_rss_mb(pid: int) -> float:
    """VmHWM of ``pid`` and of its children (gunicorn's workers), the largest, in MB."""
    peaks = []
    for candidate in [pid, *_children(pid)]:
        try:
            status = Path(f"/proc/{candidate}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                peaks.append(int(line.split()[1]) / 1024)
    return max(peaks, default=0.0)


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def one_run(run: int, plain: Path, keys: KeySet, persons: int) -> dict[str, float]:
    root = OUT / f"kjoring-{run}"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    encrypted = root / "iplos-kryptert.xml"
    baseline = encrypt(plain, encrypted, keys)  # alone: no party running yet
    chain: Chain = start_chain(root, keys)
    try:
        clerk = Clerk(chain.send.url)
        started = time.time()
        in_chain = encrypt(plain, encrypted, keys)
        upload_start = time.time()
        csrf = csrf_token(clerk.session.get(chain.send.url + "/send").text)
        content_type, body = multipart(encrypted, csrf, b"")
        receipt = clerk.session.post(chain.send.url + "/send", data=body,
                                     headers={"Content-Type": content_type}, timeout=600)
        receipted = time.time()
        if "Sending utført" not in receipt.text:
            raise SystemExit(f"no receipt: HTTP {receipt.status_code}")
        identifier = submission_id(receipt.url)
        register_db = chain.register.instance / "register.db"
        query = "SELECT received_at, done_at, status FROM mottak WHERE innsending_id = ?"
        deadline = time.monotonic() + 900
        while True:
            found = _row(register_db, query, identifier)
            if found is not None and found[1] is not None:
                break
            if time.monotonic() > deadline:
                raise SystemExit("the register did not load the submission in 15 minutes")
            time.sleep(0.05)
        stored_at_register, loaded, status = found
        if status != "lastet":
            raise SystemExit(f"the register did not load it: {status}")
        tpf_row = _row(chain.tpf.instance / "tpf.db",
                       "SELECT received_at, processed_at FROM submissions "
                       "WHERE innsending_id = ?", identifier)
        assert tpf_row is not None
        counted = _row(register_db, "SELECT COUNT(*) FROM personer")
        assert counted is not None and int(counted[0] or 0) == persons, counted
        peaks = {"send": max(peak_rss_mb(p.pid) for p in chain.send.processes),
                 "tpf": peak_rss_mb(chain.tpf.process.pid),
                 "register": peak_rss_mb(chain.register.process.pid)}
    finally:
        chain.stop()
    tpf_stored, tpf_done = (_epoch(v) for v in tpf_row)
    register_stored, register_done = _epoch(stored_at_register), _epoch(loaded)
    figures = {
        "baseline": baseline,
        "encrypt": in_chain,
        "upload": receipted - upload_start,
        "send_to_tpf": tpf_stored - receipted,
        "tpf": tpf_done - tpf_stored,
        "tpf_to_register": register_stored - tpf_done,
        "load": register_done - register_stored,
        "total": register_done - started,
        **{f"rss_{party}": peak for party, peak in peaks.items()},
    }
    print(f"  run {run}: " + ", ".join(f"{name} {figures[name]:.2f} s"
                                       for name in ("baseline", *PHASES))
          + f"; peak RSS send {peaks['send']:.0f} MB, TPF {peaks['tpf']:.0f} MB, register "
          f"{peaks['register']:.0f} MB (load {os.getloadavg()[0]:.2f})", flush=True)
    shutil.rmtree(root, ignore_errors=True)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["50"], help="50 (or 5) MB")
    parser.add_argument("--runs", "--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one run")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    sizes = {s for a in args.sizes for s in a.split(",")}
    if not sizes or not sizes <= {str(size) for size in PERSONS}:
        parser.error(f"--sizes: 50 or 5 (MB), not {' '.join(sorted(sizes))}")
    size = max(int(s) for s in sizes)
    runs = 1 if args.quick else args.runs
    plain, keys = prepare(size)
    load_before = os.getloadavg()[0]
    print(f"input {plain.stat().st_size / 1e6:.1f} MB ({PERSONS[size]} persons), "
          f"{runs} run(s), load {load_before:.2f}", flush=True)
    results = [one_run(n, plain, keys, PERSONS[size]) for n in range(1, runs + 1)]
    medians = {name: statistics.median(r[name] for r in results)
               for name in ("baseline", *PHASES, "rss_send", "rss_tpf", "rss_register")}
    baseline = medians["baseline"]
    print()
    print(f"the whole chain, {plain.stat().st_size / 1e6:.1f} MB, medians of {runs} "
          f"({os.cpu_count()} cores):")
    print(f"  {'ipis encrypt alone (baseline)':<42} {baseline:>7.2f} s")
    for name in PHASES:
        print(f"  {LABELS[name]:<42} {medians[name]:>7.2f} s  x{medians[name] / baseline:.2f}")
    print(f"  peak RSS: send module {medians['rss_send']:.0f} MB, TPF {medians['rss_tpf']:.0f} "
          f"MB, register {medians['rss_register']:.0f} MB")
    load_after = os.getloadavg()[0]
    print(f"load average {load_before:.2f} before, {load_after:.2f} after")
    missed = medians["total"] >= TARGET_SECONDS
    print(f"TARGET MISSED: total {medians['total']:.2f} s (target < {TARGET_SECONDS:.0f} s)"
          if missed else f"target met: total {medians['total']:.2f} s < {TARGET_SECONDS:.0f} s")

    section = Section("chain", "Hele kjeden: fra `ipis encrypt` til rader i registeret (SQLite)",
                      command_line("bench/bench_chain.py", sys.argv[1:]))
    input_size = f"{plain.stat().st_size / 1e6:.0f} MB"
    for name in PHASES:
        section.add(Figure(LABELS[name], input_size, medians[name], "s",
                           "`ipis encrypt` alene", baseline, runs=runs,
                           note=(f"mål: < 15 s — {'ikke nådd' if missed else 'nådd'}"
                                 if name == "total" else "")))
    section.note(f"Største RSS: sendemodulen {medians['rss_send']:.0f} MB, TPF "
                 f"{medians['rss_tpf']:.0f} MB, registeret {medians['rss_register']:.0f} MB. "
                 f"Load {load_before:.1f} før, {load_after:.1f} etter.")
    section.write()
    return 1 if missed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
