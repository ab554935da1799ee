"""Ctrl-C during ``ipis encrypt`` without an event loop (pyapp/interrupts.py): held back to
the next checkpoint, so it never lands inside a step that starts or ends something."""

from __future__ import annotations

import os
import pathlib
import signal
import threading

import pytest
from ipis_testlib import CONTACT, FNR, TODAY, document, person

from ipis_core.encrypt_file import encrypt_file_now
from ipis_core.interrupts import DeferredInterrupt
from ipis_core.person_segments import SegmentSizes
from ipis_core.second_process import SecondProcess

EVERY_PERSON = SegmentSizes(min_file_bytes=0, first_bytes=1, segment_bytes=1)


def test_ctrl_c_while_the_second_process_starts_is_taken_at_the_next_checkpoint(
    tmp_path: pathlib.Path, key_file_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C arriving as the child is forked (where a KeyboardInterrupt would lose the
    child's handle) is only noted there; the run stops at the next checkpoint, with no output
    and the child reaped."""
    real_start = SecondProcess.start.__func__  # type: ignore[attr-defined]
    started: list[int] = []  # the children's pids

    def start(cls, *args):  # type: ignore[no-untyped-def]
        second = real_start(cls, *args)
        signal.raise_signal(signal.SIGINT)  # handled at once: held back, nothing raised
        started.append(second.pid)
        return second

    monkeypatch.setattr(SecondProcess, "start", classmethod(start))
    data = tmp_path / "data.xml"
    data.write_text(document([person(FNR[i % 4]) for i in range(40)]), encoding="utf-8")
    out = tmp_path / "ut"
    out.mkdir()
    with pytest.raises(KeyboardInterrupt):
        encrypt_file_now(str(data), str(out / "k.xml"), str(key_file_path), CONTACT, TODAY,
                         EVERY_PERSON)
    assert len(started) == 1  # the interrupt came after the start, not inside it
    assert os.listdir(out) == []
    with pytest.raises(ChildProcessError):
        os.waitpid(started[0], os.WNOHANG)  # reaped: neither running nor a zombie
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_second_ctrl_c_raises_at_once() -> None:
    with DeferredInterrupt() as interrupt:
        signal.raise_signal(signal.SIGINT)
        assert interrupt.pending
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
        with pytest.raises(KeyboardInterrupt):
            interrupt.checkpoint()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_without_a_ctrl_c_a_checkpoint_does_nothing() -> None:
    with DeferredInterrupt() as interrupt:
        interrupt.checkpoint()
        assert not interrupt.pending


def test_outside_the_main_thread_nothing_is_held_back() -> None:
    """signal.signal only works in the main thread: elsewhere the handler stays as it was."""
    seen: list[object] = []

    def enter() -> None:
        with DeferredInterrupt():
            seen.append(signal.getsignal(signal.SIGINT))

    thread = threading.Thread(target=enter)
    thread.start()
    thread.join()
    assert seen == [signal.default_int_handler]
