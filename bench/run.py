"""Run every benchmark in this folder (``make bench``): each ``bench_*.py`` prints its figures.

Not part of CI: the figures depend on the machine. Arguments after ``--`` are passed on to
every benchmark (for example ``python bench/run.py -- --quick``).
"""

from __future__ import annotations

import pathlib
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    passed_on = argv[argv.index("--") + 1 :] if "--" in argv else []
    only = [a for a in (argv[: argv.index("--")] if "--" in argv else argv) if a]
    scripts = sorted(HERE.glob("bench_*.py"))
    if only:
        scripts = [s for s in scripts if any(name in s.name for name in only)]
    if not scripts:
        print("no bench/bench_*.py found", file=sys.stderr)
        return 1
    failed = []
    for script in scripts:
        print(f"=== {script.name} ===", flush=True)
        started = time.perf_counter()
        status = subprocess.call([sys.executable, str(script), *passed_on], cwd=HERE.parent)
        print(f"=== {script.name}: exit {status}, {time.perf_counter() - started:.1f} s ===\n",
              flush=True)
        if status != 0:
            failed.append(script.name)
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
