"""Every message the send module can show a municipality stands in the user guide's words
(docs/brukerveiledning.md), so a new message cannot be added without telling the clerk what it
means and what to do (issue 8.7: five were missing)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ipis_core import faults
from ipis_server.send import app, auth, upload

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "brukerveiledning.md"
MESSAGES = {
    "auth.LOGIN_FAILED": auth.LOGIN_FAILED,
    "auth.THROTTLED": auth.THROTTLED,
    "upload.NO_FILE": upload.NO_FILE,
    "upload.CSRF_FAILED": upload.CSRF_FAILED,
    "upload.STORAGE_FAILED": upload.STORAGE_FAILED,
    "upload.DISCONNECTED": upload.DISCONNECTED,
    "upload.TOO_MANY_PARTS": upload.TOO_MANY_PARTS,
    "upload.DATABASE_FAILED": upload.DATABASE_FAILED,
    "upload.DATABASE_UNCERTAIN": upload.DATABASE_UNCERTAIN,
    "app.DATABASE_DOWN": app.DATABASE_DOWN,
    "the seed's format message": faults.FORMAT_MESSAGE,
    "the seed's XML message": faults.NotWellFormed().message,
    "last year's key after the overlap": faults.KeyOutsideOverlap(
        "tpf-2025", "2026-11-30", "2027-01-31").message,
}


def _words(text: str) -> str:
    """Whitespace and the guide's line breaks made alike."""
    return re.sub(r"\s+", " ", text).strip()


@pytest.mark.parametrize("name", MESSAGES)
def test_the_guide_explains_every_send_module_message(name: str) -> None:
    message = MESSAGES[name]
    # The part before any value filled in at run time (a size, a number).
    fixed = re.split(r"\d", message, maxsplit=1)[0].rstrip(" .(")
    assert len(fixed) > 20, name
    assert _words(fixed) in _words(GUIDE.read_text(encoding="utf-8")), name
