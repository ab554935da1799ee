"""The TPF's processing of one submission (``ipis tpf process``) beside the core's encryption of
the same file, in the same run (issue 9, "Show").

For each size: ``ipis encrypt`` of the generated IPLOS file (the baseline, as bench_encrypt.py
runs it), then ``ipis tpf process`` of the encrypted file as a subprocess: wall time, CPU time
and peak RSS of that child (``os.wait4``), and, in the same run, the floor of the TPF's work:
opening the TPF layer alone (envelope reader, base64, AES-GCM) into a null sink. A small file
(5 MB) is processed too, so the peak RSS of the sizes shows whether memory is flat.

Targets (issue 9) on the 2-core reference machine: 50 MB processed in at most 3 s; peak RSS
flat in the file size (the 50 MB and 500 MB runs within 25 MB of the 5 MB run).

    python bench/bench_tpf.py             # 5 MB and 50 MB x3
    python bench/bench_tpf.py --quick     # 5 MB and 50 MB x1
    python bench/bench_tpf.py --sizes 50 500

Inputs are shared with bench_encrypt.py (bench/out/, kept between runs).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import subprocess
import sys

# Run as a script, this folder is on sys.path: the encryption bench's helpers are shared.
from bench_encrypt import MB, OUT, PERSONS, ipis, make_input, make_keys, run_measured
from report import Figure, Section, command_line, number, target
from report import size as input_size

PERSONS.setdefault("5", 11_000)  # ~5 MB: the small file of the memory comparison
TARGET_SECONDS_50MB = 3.0
FLAT_RSS_MB = 25.0
TODAY_ARGS: list[str] = []

FLOOR = """
import sys
from ipis_core.decrypt import load_private_key, open_tpf_layer
class Null:
    def write(self, data): pass
key = load_private_key(open(sys.argv[1], "rb").read())
with open(sys.argv[2], "rb") as source:
    open_tpf_layer(source, key, Null())
"""


def prepare_tpf(keys_folder: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    """A TPF keyring with this run's key and a pseudonym secret."""
    from ipis_server.tpf.pseudonyms import SecretStore

    instance = OUT / "tpf"
    subprocess.run(["rm", "-rf", str(instance)], check=True)
    subprocess.run([*ipis(), "keys", "install", "--instance", str(instance), "--party", "tpf",
                    "--from", str(keys_folder)], check=True, stdout=subprocess.DEVNULL)
    store = SecretStore(instance / "hemmelighet")
    store.create("tpf-h1")
    return instance / "nokler", store.path("tpf-h1")


def bench_size(size: int, runs: int, key_file: pathlib.Path, today: str,
               keyring: pathlib.Path, secret: pathlib.Path) -> dict[str, float]:
    source = make_input(str(size))  # bench_encrypt's sizes are named by strings
    encrypted = OUT / f"{source.stem}.tpf-inn.xml"
    output = OUT / f"{source.stem}.tpf-ut.xml"
    encrypt_runs = []
    process_runs = []
    floor_runs = []
    for attempt in range(runs):
        encrypted.unlink(missing_ok=True)
        encrypt_runs.append(run_measured([
            *ipis(), "encrypt", "--data", str(source), "--out", str(encrypted), "--keys",
            str(key_file), "--email", "iplos@kommune.no", "--name", "Åse Ødegård", "--mobile",
            "912 34 567", "--today", today,
        ]))
        output.unlink(missing_ok=True)
        process_runs.append(run_measured([
            *ipis(), "tpf", "process", str(encrypted), str(output), "--keys-dir", str(keyring),
            "--secret", str(secret), "--register-key-file", str(key_file), "--test-numbers",
            "--today", today,
        ]))
        floor_runs.append(run_measured([
            sys.executable, "-c", FLOOR, str(key_file.parent / "tpf-privat.pem"),
            str(encrypted),
        ]))
        print(f"  {size} MB run {attempt + 1}: encrypt {encrypt_runs[-1][0]:.2f} s, "
              f"tpf process {process_runs[-1][0]:.2f} s wall / {process_runs[-1][2]:.2f} s CPU, "
              f"peak RSS {process_runs[-1][1]:.0f} MB (load {os.getloadavg()[0]:.2f})",
              flush=True)
    figures = {
        "size": float(size),
        "persons": float(PERSONS[str(size)]),
        "runs": float(runs),
        "input": source.stat().st_size / MB,
        "encrypted": encrypted.stat().st_size / MB,
        "output": output.stat().st_size / MB,
        "encrypt": statistics.median(r[0] for r in encrypt_runs),
        "encrypt_cpu": statistics.median(r[2] for r in encrypt_runs),
        "process": statistics.median(r[0] for r in process_runs),
        "process_cpu": statistics.median(r[2] for r in process_runs),
        "process_rss": max(r[1] for r in process_runs),
        "process_rss_median": statistics.median(r[1] for r in process_runs),
        "encrypt_rss_median": statistics.median(r[1] for r in encrypt_runs),
        "floor": statistics.median(r[0] for r in floor_runs),
        "floor_rss": max(r[1] for r in floor_runs),
    }
    encrypted.unlink()
    output.unlink()
    return figures


def report(results: list[dict[str, float]]) -> list[str]:
    missed = []
    print()
    print(f"ipis tpf process beside ipis encrypt of the same file ({os.cpu_count()} cores), "
          "medians")
    header = (f"{'input':>9} {'encrypted':>10} {'encrypt s':>10} {'tpf s':>7} {'tpf cpu':>8} "
              f"{'tpf/enc':>8} {'peak RSS':>9} {'open-only s':>12} {'tpf/open':>9}")
    print(header)
    print("-" * len(header))
    for r in results:
        print(f"{r['input']:>6.1f} MB {r['encrypted']:>7.1f} MB {r['encrypt']:>10.2f} "
              f"{r['process']:>7.2f} {r['process_cpu']:>8.2f} {r['process'] / r['encrypt']:>8.2f} "
              f"{r['process_rss']:>6.0f} MB {r['floor']:>12.2f} {r['process'] / r['floor']:>9.2f}")
        if r["size"] == 50 and r["process"] > TARGET_SECONDS_50MB:
            missed.append(f"50 MB processed in {r['process']:.2f} s (target <= 3 s)")
    smallest = min(results, key=lambda r: r["size"])
    for r in results:
        if r["process_rss"] - smallest["process_rss"] > FLAT_RSS_MB:
            missed.append(f"{r['size']:.0f} MB peak RSS {r['process_rss']:.0f} MB, "
                          f"{smallest['size']:.0f} MB {smallest['process_rss']:.0f} MB (not flat)")
    print()
    print("open-only = the TPF layer's decryption alone (envelope reader, base64, AES-GCM);")
    print(f"load average now {os.getloadavg()[0]:.2f} (other processes slow wall times; CPU time "
          "is the steadier figure)")
    for line in missed:
        print(f"TARGET MISSED: {line}")
    if not missed:
        print("all targets met")
    return missed


def section(results: list[dict[str, float]], argv: list[str]) -> Section:
    """This run's part of docs/ytelse.md: ``ipis tpf process`` against ``ipis encrypt`` of the
    same input, in time and in peak RSS."""
    out = Section("tpf", "TPF: ipis tpf process av én innsending",
                  command_line("bench/bench_tpf.py", argv))
    smallest = min(results, key=lambda r: r["size"])
    for r in results:
        size = input_size(r["input"], int(r["persons"]))
        runs = int(r["runs"])
        notes = [f"CPU {number(r['process_cpu'])} s (encrypt {number(r['encrypt_cpu'])} s)",
                 f"kryptert fil {number(r['encrypted'])} MB",
                 f"å åpne TPF-laget alene {number(r['floor'])} s"]
        if r["size"] == 50:
            notes.append(target("50 MB på ≤ 3 s", r["process"] <= TARGET_SECONDS_50MB))
        out.add(Figure("ipis tpf process, veggtid", size, r["process"], "s",
                       "ipis encrypt av samme inndata", r["encrypt"], runs=runs,
                       note="; ".join(notes)))
        flat = r["process_rss"] - smallest["process_rss"] <= FLAT_RSS_MB
        out.add(Figure("ipis tpf process, største RSS", size, r["process_rss_median"], "MB",
                       "ipis encrypt av samme inndata", r["encrypt_rss_median"], runs=runs,
                       note=f"høyeste {r['process_rss']:.0f} MB; " + target(
                           f"flatt (≤ {FLAT_RSS_MB:.0f} MB over {smallest['input']:.0f} MB-filen)",
                           flat)))
    out.note("`ipis tpf process` er den samme strøm-til-strøm-funksjonen som TPFs arbeidere "
             "kjører: TPF-laget åpnes med TPF-nøkkelen, hvert nummer sjekkes og pseudonymiseres, "
             "og §4-meldingen krypteres til registeret mens den skrives.")
    return out


def main() -> int:
    argv = sys.argv[1:]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["5", "50"], help="5, 50 and/or 500 (MB)")
    parser.add_argument("--runs", "--repeat", type=int, default=3, help="runs of each size")
    parser.add_argument("--quick", action="store_true", help="each size once")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    named = {s for a in args.sizes for s in a.split(",")}
    unknown = sorted(named - {"5", "50", "500"})
    if unknown:
        parser.error(f"unknown size {unknown[0]!r}: one of 5, 50, 500")
    sizes = sorted({int(s) for s in named} | {5})
    runs = 1 if args.quick else args.runs
    OUT.mkdir(parents=True, exist_ok=True)
    key_file, today = make_keys()
    keyring, secret = prepare_tpf(key_file.parent)
    results = []
    for size in sizes:
        print(f"{size} MB:", flush=True)
        results.append(bench_size(size, runs if size <= 50 else 1, key_file, today, keyring,
                                  secret))
    missed = report(results)
    section(results, argv).write()
    return 1 if missed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
