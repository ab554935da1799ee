"""The fuzz corpora (issue 7.15): inputs that once broke a property are kept as files under
tests/vectors/<target>/fuzz-corpus/ and replayed by every test run.

The properties run bounded in the suite (``IPIS_FUZZ_EXAMPLES`` examples, default given by each
test); ``scripts/fuzz.py`` runs them longer with fresh seeds and ``IPIS_FUZZ_SAVE=1``, so the
shrunk failing input of a new find is written to the target's corpus.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

SAVE = os.environ.get("IPIS_FUZZ_SAVE") == "1"


def examples(default: int) -> int:
    """How many examples a fuzzing property runs: ``IPIS_FUZZ_EXAMPLES`` or the suite's bound."""
    return int(os.environ.get("IPIS_FUZZ_EXAMPLES", str(default)))


def corpus(folder: Path) -> list[Path]:
    """The kept inputs of one target, for a replay test's parametrize."""
    return sorted(folder.glob("*.bin")) if folder.is_dir() else []


def keep_if_final(folder: Path, data: bytes) -> None:
    """Called when a property fails: keep the input once hypothesis has shrunk it."""
    if SAVE and _final_example():
        folder.mkdir(exist_ok=True)
        (folder / f"{hashlib.sha256(data).hexdigest()[:16]}.bin").write_bytes(data)


def _final_example() -> bool:
    """True when hypothesis replays the shrunk failing example (not while it shrinks)."""
    from hypothesis.control import current_build_context

    try:
        return bool(current_build_context().is_final)
    except Exception:  # not under hypothesis: a corpus replay
        return False
