"""Fuzz the envelope reader for longer than the test suite does (issue 7.15).

Runs the properties of tests/core/test_core_envelope_fuzz.py with many more examples, over and
over with fresh seeds until the time is up. An input that crashes the reader or breaks a
property is written to tests/vectors/envelope/fuzz-corpus/ (which every test run replays) and
the run stops with the failing example printed. Not part of `make test`.

    .venv/bin/python scripts/fuzz_envelope.py [--seconds 600] [--examples 20000]
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TEST = (
    "tests/core/test_core_envelope_fuzz.py"
    "::test_fuzzed_envelopes_give_a_fault_or_a_clean_envelope"
)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0, help="stop after this long")
    parser.add_argument("--examples", type=int, default=20000, help="examples per round")
    args = parser.parse_args(argv)
    env = {**os.environ, "IPIS_FUZZ_EXAMPLES": str(args.examples), "IPIS_FUZZ_SAVE": "1"}
    started = time.monotonic()
    rounds = 0
    while time.monotonic() - started < args.seconds:
        seed = secrets.randbelow(2**32)
        rounds += 1
        print(f"runde {rounds}: {args.examples} eksempler, frø {seed}", flush=True)
        status = subprocess.call(  # noqa: S603 - this interpreter, fixed arguments
            [sys.executable, "-m", "pytest", TEST, "-q", "-p", "no:xdist", "-p",
             "no:cacheprovider", f"--hypothesis-seed={seed}"],
            cwd=REPO, env=env,
        )
        if status != 0:
            print("Feil funnet: inndata er lagret i tests/vectors/envelope/fuzz-corpus/")
            return 1
    elapsed = time.monotonic() - started
    print(f"{rounds} runder, {rounds * args.examples} eksempler på {elapsed:.0f} s: ingen feil")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
