"""How the tests and benchmarks start Debian's Chromium (one place for the flags)."""

from __future__ import annotations

import os

CHROMIUM = os.environ.get("IPIS_CHROMIUM", "/usr/bin/chromium")
# As root in a container, with a closed network: no sandbox, no background connections;
# Norwegian browser texts (the file picker's button) for the user guide's screenshots.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--lang=nb",
]
