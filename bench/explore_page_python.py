"""The page's Python work, natively and in Pyodide, with the crypto taken out (issue 10).

Why the page cannot reach 2x ``ipis encrypt`` on a 2-core machine is a question of CPU: this
measures how much of it is the Python thread's alone. The same core encrypts the 50 MB demo
file (``ipis demo-data --persons 110000 --seed 7``, made in bench/out/ when missing) in 1 MB
slices, with a crypto backend that returns bytes of the right lengths without encrypting
(bench/no_crypto.py), so only the core's own work is timed:

- ``native``: CPython here, ``MessageEncryptor`` fed slice by slice (one process, one thread);
- ``pyodide``: the same code in the page's Pyodide (the npm package, under Node.js:
  bench/explore_page_python.mjs);
- ``pyodide, page path``: the page's own entry point, web/krypt_worker.py ``encrypt``, with
  web/worker.js's crypto glue replaced by no-op JavaScript functions: what the worker's thread
  does apart from the sealing itself, Python/JavaScript copies included.

Each figure is the median CPU time (``time.process_time``) of ``--runs`` runs, in the same run
of this script. Pyodide's Python version is printed beside the native one.

    python bench/explore_page_python.py [--runs 3] [--profile]

An exploration tool behind a decision, not a benchmark: no target and no section in
docs/ytelse.md, so ``make bench`` (which runs bench/bench_*.py) leaves it out. Needs ``npm ci``
(node_modules/pyodide).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import tempfile

from explore_indentation import demo_file  # the same 50 MB demo file, made once
from no_crypto import timed_without_crypto

ROOT = pathlib.Path(__file__).resolve().parent.parent


def key_file(folder: pathlib.Path) -> pathlib.Path:
    from ipis_core.keyfile import render_key_file
    from ipis_core.keygen import generate_keys

    path = folder / "nokkelfil.xml"
    path.write_bytes(render_key_file(generate_keys(dt.date.today(), bits=3072).key_file))
    return path


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="cProfile one page-path run")
    args = parser.parse_args(argv)
    source = demo_file()
    data = source.read_bytes()
    with tempfile.TemporaryDirectory(prefix="ipis-explore-") as folder:
        keys = key_file(pathlib.Path(folder))
        raw_keys = keys.read_bytes()
        today = dt.date.today()
        native = [timed_without_crypto(data, raw_keys, today)[0] for _ in range(args.runs)]
        answer = subprocess.run(
            ["node", str(ROOT / "bench" / "explore_page_python.mjs"), str(ROOT), str(source),
             str(keys), str(args.runs), "1" if args.profile else "0"],
            capture_output=True, text=True,
        )  # fmt: skip
    if answer.returncode != 0:
        print(answer.stderr[-3000:], file=sys.stderr)  # Node prints Pyodide's whole line first
        return 1
    figures = json.loads(answer.stdout.strip().splitlines()[-1])
    native_s = statistics.median(native)
    core_s = statistics.median(figures["core"])
    page_s = statistics.median(figures["page"])
    print(f"{source.name}: {len(data) / 1e6:.1f} MB, {figures['persons']} persons; "
          f"median CPU of {args.runs} runs, no crypto ({os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.1f})")  # fmt: skip
    print(f"  native (Python {platform.python_version()}):  {native_s:.2f} s")
    print(f"  pyodide (Python {figures['version']}): {core_s:.2f} s ({core_s / native_s:.2f}x)")
    print(f"  pyodide, page path:      {page_s:.2f} s ({page_s / native_s:.2f}x)")
    if figures["profile"]:
        print(figures["profile"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
