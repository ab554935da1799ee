"""docs/sikkerhet.md names, for each guarantee, the tests that prove it: they must exist."""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
DOC = TESTS.parent / "docs" / "sikkerhet.md"
REFERENCE = re.compile(r"`((?:core|server|browser|docs|register|chain)/[\w/]+\.py)?::(\w+)`")


def test_every_test_named_in_sikkerhet_md_exists() -> None:
    named = 0
    for line in DOC.read_text(encoding="utf-8").splitlines():
        current = None
        for match in REFERENCE.finditer(line):
            current = match.group(1) or current
            assert current, line
            source = (TESTS / current).read_text(encoding="utf-8")
            assert f"def {match.group(2)}(" in source, f"{current}::{match.group(2)}"
            named += 1
    assert named > 40
