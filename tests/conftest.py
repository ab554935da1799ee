"""Fixtures shared by every test folder.

One Chromium per test process: Playwright's sync API keeps an event loop running while it is
open, so two sessions in one process collide, and so does ``asyncio.run`` in a later
non-browser test. ``make test`` therefore runs the browser tests (marker ``browser``) in a
pytest run of their own, and both browser suites share this one session.
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator
from typing import Any

import pytest
from chromium_launch import CHROMIUM, CHROMIUM_ARGS


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's Chromium through Playwright (``playwright install`` cannot download here)."""
    from playwright.sync_api import sync_playwright

    if not pathlib.Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} mangler: kjør `make setup-system` (Debian-pakken chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
