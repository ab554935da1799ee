"""Load (issue 7, point 14): 20 municipalities upload 20 MB each at the same moment.

Through the production stack of docs/drift.md (gunicorn as documented, PostgreSQL, ``ipis
worker`` as its own process, a TPF stand-in keeping the outbox contract; bench/stack.py). Each
municipality is an account with a real encrypted file of its own kommunenummer. Checked: every
receipt valid (the page names the file's SHA-256), every file delivered to the TPF exactly
once with the same bytes, nothing left in the storage. Printed: what was lost (nothing), the
upload times to the receipt (p50/p95), and the time from receipt to the TPF. The baseline,
measured in the same run, is one 20 MB upload alone.

    .venv/bin/python bench/bench_load.py [--clients 20] [--megabytes 20] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import Figure, Section, command_line
from stack import KOMMUNER, Stack, Upload, encrypted_file, p50_p95


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--megabytes", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="5 municipalities x 5 MB")
    args, _ = parser.parse_known_args(argv)
    clients, megabytes = (5, 5) if args.quick else (args.clients, args.megabytes)
    kommuner = KOMMUNER[:clients]
    print(f"lager {clients} filer à {megabytes} MB …", flush=True)
    paths = {k: encrypted_file(k, megabytes) for k in kommuner}
    stack = Stack()
    try:
        stack.add_accounts(kommuner)
        stack.start_web()
        stack.start_worker()
        sessions = {k: stack.session(k) for k in kommuner}
        alone = stack.upload(sessions[kommuner[0]], kommuner[0], paths[kommuner[0]],
                             extra=b"\n")
        if not alone.receipt:
            raise RuntimeError(f"grunnlinjen fikk ingen kvittering: {alone.message}")
        barrier = threading.Barrier(clients)

        def send(kommune: str) -> Upload:
            barrier.wait(120)
            return stack.upload(sessions[kommune], kommune, paths[kommune])

        with ThreadPoolExecutor(clients) as pool:
            uploads = list(pool.map(send, kommuner))
        stack.wait_delivered([alone, *uploads])
        tally = stack.account([alone, *uploads])
        times = [u.seconds for u in uploads if u.receipt]
        delivery = stack.delivery_seconds(uploads)
        refused = [f"{u.kommune}: HTTP {u.status} {u.message}" for u in uploads if not u.receipt]
    finally:
        stack.close()
    size = f"{clients} × {megabytes} MB"
    print(f"last: {size} samtidig gjennom gunicorn + PostgreSQL + ipis worker")
    print(f"  kvitteringer {tally['receipts']} av {clients + 1}, tapt {tally['lost']}, "
          f"levert mer enn én gang {tally['sent_twice']}, foreldreløse filer {tally['orphans']}")
    print(f"  opplasting til kvittering: {p50_p95(times)} (alene: {alone.seconds:.2f} s)")
    print(f"  kvittering til TPF: {p50_p95(delivery)}")
    for line in refused:
        print(f"  UTEN KVITTERING {line}")
    section = Section("load", f"Last: {size} samtidig", command_line("bench/bench_load.py", argv))
    if times:
        section.add(Figure("opplasting til kvittering, p50", size, statistics.median(times), "s",
                           f"én {megabytes} MB alene", alone.seconds, runs=len(times),
                           note=f"p95 {sorted(times)[int(0.95 * (len(times) - 1))]:.2f} s"))
    section.note(
        f"Tapt: {tally['lost']} av {tally['receipts']} kvitterte filer; levert mer enn én gang: "
        f"{tally['sent_twice']}; foreldreløse filer i lageret: {tally['orphans']}; uten "
        f"kvittering: {len(refused)}. Kvittering til TPF: {p50_p95(delivery)}.")
    section.write()
    bad = tally["lost"] or tally["sent_twice"] or tally["orphans"] or refused
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
