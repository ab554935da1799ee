"""Fixtures shared by every test folder.

One Chromium per test process: Playwright's sync API keeps an event loop running while it is
open, so two sessions in one process collide, and so does ``asyncio.run`` in a later
non-browser test. ``make test`` therefore runs the browser tests (marker ``browser``) in a
pytest run of their own, and both browser suites share this one session.
"""

from __future__ import annotations

import pathlib
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

import pytest
from chromium_launch import CHROMIUM, CHROMIUM_ARGS

# How long a starting thread may take to run its first line before the next may start.
_FIRST_LINE_SECONDS = 10.0


@pytest.fixture(scope="session", autouse=True)
def one_thread_installs_its_trace_at_a_time() -> Iterator[None]:
    """Under coverage on Python 3.11, every new thread installs a trace function as it starts
    (threading's hook, then coverage's own tracer), and CPython guards that with one
    process-wide flag: when two starting threads meet there, one dies before it runs
    ("Cannot install a trace function while another trace function is being installed",
    python/cpython#98257). Tests that start many threads at once (slow clients, parallel
    logins behind a barrier) then fail at random. So ``Thread.start`` here waits until the new
    thread has run its first traced line, one thread at a time. Python 3.12+ traces through
    sys.monitoring and needs none of this; without coverage there is no hook to wrap."""
    hook = threading.gettrace()
    if sys.version_info >= (3, 12) or hook is None:
        yield
        return
    starting = threading.Lock()
    real_start = threading.Thread.start

    def first_event(frame: FrameType, event: str, arg: Any) -> Any:
        result = hook(frame, event, arg)  # coverage installs its tracer for this thread
        traced = getattr(threading.current_thread(), "_ipis_traced", None)
        if traced is not None:
            traced.set()
        return result

    def start(self: threading.Thread) -> None:
        traced = threading.Event()
        self._ipis_traced = traced  # type: ignore[attr-defined]
        with starting:
            real_start(self)
            traced.wait(_FIRST_LINE_SECONDS)

    threading.settrace(first_event)
    threading.Thread.start = start  # type: ignore[method-assign]
    try:
        yield
    finally:
        threading.Thread.start = real_start  # type: ignore[method-assign]
        threading.settrace(hook)


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
