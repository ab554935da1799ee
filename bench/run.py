"""Run every benchmark in this folder (``make bench``) and write docs/ytelse.md from them.

Each ``bench_*.py`` prints its figures and, through bench/report.py, writes its section (the
command, input sizes, medians, the baseline measured in the same run, ratios); this script
puts the sections of the benchmarks it ran into docs/ytelse.md between their markers, with
the date and the machine, and keeps the sections of benchmarks it did not run. Not part of
CI: the figures depend on the machine. Arguments after ``--`` are passed on to every benchmark
(for example ``python bench/run.py -- --quick``); names before it choose benchmarks by their
file name without ``bench_`` (``python bench/run.py encrypt tpf -- --quick``).
"""

from __future__ import annotations

import datetime as dt
import os
import pathlib
import shutil
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from report import DOC, REPORT_ENV, machine, splice  # noqa: E402

HEADER = """# Ytelse

Skrevet av `make bench` (`bench/run.py`); hver benchmark skriver sin egen del (bench/report.py).
Hver måling står med kommando, inndata, median, en grunnlinje målt i samme kjøring og forholdet
mellom dem. Tallene gjelder maskinen som står under hver del, og varierer med last.
"""


def write_document(sections: dict[str, str], when: str, where: str) -> None:
    document = DOC.read_text(encoding="utf-8") if DOC.exists() else HEADER
    for name, body in sections.items():
        stamped = body.rstrip() + f"\n\nMålt {when} på: {where}\n"
        document = splice(document, name, stamped)
    DOC.write_text(document, encoding="utf-8")


def main(argv: list[str]) -> int:
    passed_on = argv[argv.index("--") + 1 :] if "--" in argv else []
    only = [a.removesuffix(".py").removeprefix("bench_")
            for a in (argv[: argv.index("--")] if "--" in argv else argv) if a]
    scripts = sorted(HERE.glob("bench_*.py"))
    names = [s.stem.removeprefix("bench_") for s in scripts]
    unknown = [name for name in only if name not in names]
    if unknown:
        print(f"no bench/bench_{unknown[0]}.py: one of {', '.join(names)}", file=sys.stderr)
        return 1
    if only:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in only]
    if not scripts:
        print("no bench/bench_*.py found", file=sys.stderr)
        return 1
    report = HERE / "out" / "report"
    shutil.rmtree(report, ignore_errors=True)
    report.mkdir(parents=True)
    env = {**os.environ, REPORT_ENV: str(report)}
    failed = []
    for script in scripts:
        print(f"=== {script.name} ===", flush=True)
        started = time.perf_counter()
        status = subprocess.call([sys.executable, str(script), *passed_on], cwd=HERE.parent,
                                 env=env)
        print(f"=== {script.name}: exit {status}, {time.perf_counter() - started:.1f} s ===\n",
              flush=True)
        if status != 0:
            failed.append(script.name)
    sections = {path.stem: path.read_text(encoding="utf-8")
                for path in sorted(report.glob("*.md"))}
    if sections:
        write_document(sections, dt.date.today().isoformat(), machine())
        print(f"{DOC.relative_to(HERE.parent)}: {', '.join(sections)}")
    silent = [s.name for s in scripts if s.stem.removeprefix("bench_") not in sections]
    if silent:
        print("no section in docs/ytelse.md from: " + ", ".join(silent))
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
