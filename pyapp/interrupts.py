"""Ctrl-C during ``ipis encrypt``, taken where the run can stop cleanly.

``asyncio.run`` used to give this for free: the first Ctrl-C cancelled the task, and the
cancellation took effect at the next point where the coroutine suspended. ``ipis encrypt`` now
runs without an event loop (encrypt_file.py), so this does the same by hand: the first Ctrl-C
is only noted, and raised as ``KeyboardInterrupt`` at the next ``checkpoint`` (between batches
and chunks); never inside a step that starts or ends something, such as forking the second
process or committing the output file. A second Ctrl-C raises at once, so a run stuck waiting
can still be stopped.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType
from typing import Any


class DeferredInterrupt:
    """While entered (in the main thread only; elsewhere it changes nothing), SIGINT is held
    back until ``checkpoint``."""

    def __init__(self) -> None:
        self.pending = False
        self._previous: Any = None
        self._installed = False

    def __enter__(self) -> DeferredInterrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._note)
            self._installed = True
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False

    def checkpoint(self) -> None:
        """Raise the Ctrl-C held back, if any."""
        if self.pending:
            raise KeyboardInterrupt

    def _note(self, signum: int, frame: FrameType | None) -> None:
        if self.pending:
            raise KeyboardInterrupt  # the second Ctrl-C: at once
        self.pending = True


def no_checkpoint() -> None:
    """``checkpoint`` where nothing is held back (``encrypt_file`` under an event loop)."""
