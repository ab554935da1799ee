"""Fuzz the readers of untrusted input for longer than the test suite does (issue 7.15).

Targets: ``envelope`` (the encrypted message's clear part: tests/core/test_core_envelope_fuzz.py),
``iplos`` (the IPLOS export reader) and ``keyfile`` (the key file reader), both in
tests/core/test_core_properties.py. Runs the target's hypothesis properties with many more
examples, over and over with fresh seeds until the time is up. An input that crashes a reader or
breaks a property is written to the target's corpus, tests/vectors/<target>/fuzz-corpus/ (which
every test run replays), and the run stops with the failing example printed. Not part of
`make test`.

    .venv/bin/python scripts/fuzz.py [envelope|iplos|keyfile ...] [--seconds 600] [--examples N]
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
PROPERTIES = "tests/core/test_core_properties.py"
TARGETS = {
    "envelope": (
        ["tests/core/test_core_envelope_fuzz.py"
         "::test_fuzzed_envelopes_give_a_fault_or_a_clean_envelope"],
        "tests/vectors/envelope/fuzz-corpus/",
    ),
    "iplos": (
        [f"{PROPERTIES}::test_malformed_documents_give_a_documented_fault_or_a_correct_result",
         f"{PROPERTIES}::test_arbitrary_bytes_never_give_a_traceback"],
        "tests/vectors/iplos/fuzz-corpus/",
    ),
    "keyfile": (
        [f"{PROPERTIES}::test_key_file_parser_never_tracebacks"],
        "tests/vectors/keyfiles/fuzz-corpus/",
    ),
}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", metavar="target",
                        help=f"what to fuzz: {', '.join(TARGETS)} (default: all, in turn)")
    parser.add_argument("--seconds", type=float, default=600.0, help="stop after this long")
    parser.add_argument("--examples", type=int, default=20000, help="examples per round")
    args = parser.parse_args(argv)
    targets = args.targets or list(TARGETS)
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        parser.error(f"unknown target {', '.join(unknown)}: choose from {', '.join(TARGETS)}")
    env = {**os.environ, "IPIS_FUZZ_EXAMPLES": str(args.examples), "IPIS_FUZZ_SAVE": "1"}
    started = time.monotonic()
    rounds = 0
    while time.monotonic() - started < args.seconds:
        target = targets[rounds % len(targets)]
        tests, corpus = TARGETS[target]
        seed = secrets.randbelow(2**32)
        rounds += 1
        print(f"runde {rounds} ({target}): {args.examples} eksempler, frø {seed}", flush=True)
        status = subprocess.call(  # noqa: S603 - this interpreter, fixed arguments
            [sys.executable, "-m", "pytest", *tests, "-q", "-p", "no:xdist", "-p",
             "no:cacheprovider", f"--hypothesis-seed={seed}"],
            cwd=REPO, env=env,
        )
        if status != 0:
            print(f"Feil funnet: inndata er lagret i {corpus}")
            return 1
    elapsed = time.monotonic() - started
    print(f"{rounds} runder på {elapsed:.0f} s ({', '.join(targets)}): ingen feil")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
