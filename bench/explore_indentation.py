"""Removing indentation from persons' data (pyapp/reader_persons.py), two ways (issue 8.5).

The reader takes runs of about 1 MB of plain persons and removes the whitespace holding a
line break between '>' and '<' before it cuts them apart. Measured here over the person runs of
the 50 MB demo file (``ipis demo-data --persons 110000 --seed 7``, made in bench/out/ when
missing), each way's median over ``--runs``, alternating:
- ``replace per form``: the forms of indentation seen in the first 4 KB removed by one
  ``bytes.replace`` pass each, then a regular expression for any line break left (the reader
  until issue 8.5's second round);
- ``one substitution``: the reader's ``_without_indentation`` now, one ``re.sub``.
Both outputs are compared byte for byte first.

    python bench/explore_indentation.py [--runs 7]

An exploration tool behind a design choice, not a benchmark: no target and no section in
docs/ytelse.md, so ``make bench`` (which runs bench/bench_*.py) leaves it out.
"""

from __future__ import annotations

import argparse
import pathlib
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

from ipis_core.reader_persons import _without_indentation

OUT = pathlib.Path(__file__).parent / "out"
PERSONS = 110_000
RUN_BYTES = 1 << 20
_FORM_RE = re.compile(rb">([ \t\r]*\n\s*)<")
_LEFT_RE = re.compile(rb">[ \t\r]*\n\s*<")


def replace_per_form(xml: bytes) -> bytes:
    """The reader's way before: ``bytes.replace`` for each form seen in the first 4 KB."""
    forms = set(_FORM_RE.findall(xml, 0, 4096))
    for form in sorted(forms, key=len, reverse=True):
        xml = xml.replace(b">" + form + b"<", b"><")
    if b"\n" in xml:
        xml = _LEFT_RE.sub(b"><", xml)
    return xml


def person_runs(path: pathlib.Path) -> list[bytes]:
    """The file's persons in runs of about 1 MB, each ending with ``</Person>``."""
    data = path.read_bytes()
    runs, position = [], data.index(b"<Person>")
    while (last := data.rfind(b"</Person>", position, position + RUN_BYTES)) > position:
        end = last + len(b"</Person>")
        runs.append(data[position:end])
        position = end
    return runs


def demo_file() -> pathlib.Path:
    path = OUT / f"iplos-{PERSONS}.xml"
    if not path.exists():
        OUT.mkdir(exist_ok=True)
        subprocess.run([sys.executable, "-m", "ipis_server", "demo-data", "--persons",
                        str(PERSONS), "--out", str(path), "--seed", "7"], check=True)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    path = demo_file()
    runs = person_runs(path)
    ways: dict[str, Callable[[bytes], bytes]] = {
        "replace per form": replace_per_form,
        "one substitution": _without_indentation,
    }
    if [replace_per_form(r) for r in runs] != [_without_indentation(r) for r in runs]:
        print("the two ways differ")
        return 1
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(args.runs):
        for name, way in ways.items():
            started = time.perf_counter()
            for run in runs:
                way(run)
            seconds[name].append(time.perf_counter() - started)
    megabytes = sum(map(len, runs)) / 1e6
    print(f"{len(runs)} runs of persons, {megabytes:.1f} MB, from {path.name}; "
          f"Python {sys.version.split()[0]}; median of {args.runs}")
    base = statistics.median(seconds["replace per form"])
    for name, measured in seconds.items():
        median = statistics.median(measured)
        print(f"  {name:18} {median:.3f} s  ({median / base:.2f}x replace per form)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
