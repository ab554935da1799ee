"""``ipis encrypt``'s second process: it encrypts the odd segments of the persons
(person_segments.py) while the main process reads the even ones, and sends them back through a
pipe in file order. Native only: the page runs on one thread and never imports this.

Why a process and not a thread: of the ~1.4 s of CPU ``ipis encrypt`` spends on 50 MB, only
0.1-0.15 s releases the GIL (hashing, writing, the TPF layer's AES-GCM); sealing the persons on
a thread was slower than on none. Why ``os.fork`` and not multiprocessing's spawn or
forkserver: the child needs the code, the keys and the header the parent already holds; a
fork costs a few milliseconds, while a fresh interpreter importing the core and
``cryptography`` costs about 0.1 s before it does anything (bench/bench_second_process.py).
The fork happens before ``ipis encrypt`` starts its writer thread, so the parent has one thread
then.

The child ignores Ctrl-C (the terminal sends it to both processes): the parent ends the run
and the child with it. Whatever happens, ``close`` reaps the child (killed when it is still at
work), so none is left running or as a zombie. Person data only ever crosses the pipe, never
a file; the child writes nothing else anywhere and exits without Python's exit handlers.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import struct
import threading
from array import array
from typing import BinaryIO, NoReturn

from .message import RecordSealing
from .person_segments import (
    SealedSegment,
    SegmentPlan,
    SegmentsDisagree,
    count_persons,
    encrypt_segment,
)

# kind, segment index, first løpenummer, persons, line feeds, check digit lines, TPF bytes
_FRAME = struct.Struct("<BQQQQQQ")
_SEGMENT = 1
_DISAGREE = 2
_LINE = "Q"  # array typecode of a line number
_LINE_BYTES = array(_LINE).itemsize
# Segments sealed ahead of the main process at most: each waits in the child's memory (about
# 1.7 times its input) until the main process asks for it.
QUEUED_SEGMENTS = 2
PIPE_BYTES = 1 << 20  # Linux's default pipe-max-size; the default 64 KB means more switches
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


class SecondProcess:
    """The parent's handle on the child: its segments in order, and its end."""

    def __init__(self, pid: int, pipe: BinaryIO, last_index: int) -> None:
        self.pid = pid
        self._pipe = pipe
        self._last_index = last_index  # the child's last segment: then it ends by itself
        self._done = False  # the child sent its last frame and is ending by itself

    @classmethod
    def start(cls, fd: int, plan: SegmentPlan, sealing: RecordSealing) -> SecondProcess:
        """Fork the child for the odd segments of ``plan`` (the data file open as ``fd``)."""
        try:
            read_end, write_end = os.pipe()
        except OSError:
            raise SegmentsDisagree() from None
        with contextlib.suppress(OSError, AttributeError):  # a smaller pipe only costs time
            import fcntl

            fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        last_index = max(s.index for s in plan.segments if not s.main)  # there is one: >= 2
        # Ctrl-C between the fork and the child's SIG_IGN would raise in the child: blocked
        # until then (in the parent, it is delivered once the child is in hand).
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        parent = os.getpid()
        try:
            try:
                pid = os.fork()
            except OSError:
                os.close(read_end)
                os.close(write_end)
                raise SegmentsDisagree() from None
            if pid == 0:
                _child(parent, fd, read_end, write_end, plan, sealing, mask)
            os.close(write_end)
            return cls(pid, os.fdopen(read_end, "rb"), last_index)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)

    def sealed(self, index: int) -> SealedSegment:
        """Segment ``index``, the child's next; ``SegmentsDisagree`` if it has none."""
        try:
            header = self._pipe.read(_FRAME.size)
            if len(header) < _FRAME.size:
                self._done = True  # the child ended (or was killed) before sending it
                raise SegmentsDisagree()
            kind, got, first, persons, newlines, lines, size = _FRAME.unpack(header)
            if kind != _SEGMENT or got != index:
                self._done = kind == _DISAGREE  # its last frame
                raise SegmentsDisagree()
            line_bytes = self._pipe.read(lines * _LINE_BYTES)
            tpf_xml = self._pipe.read(size)
        except OSError:
            raise SegmentsDisagree() from None
        if len(line_bytes) != lines * _LINE_BYTES or len(tpf_xml) != size:
            self._done = True
            raise SegmentsDisagree()
        self._done = index == self._last_index
        return SealedSegment(
            index, first, persons, newlines, array(_LINE, line_bytes).tolist(), tpf_xml
        )

    def close(self) -> None:
        """Reap the child; kill it first when it is still at work (the run ended early)."""
        if self.pid == 0:
            return
        self._pipe.close()  # a child still writing gets EPIPE
        if not self._done:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        self.pid = 0


def _child(
    parent: int,
    fd: int,
    read_end: int,
    write_end: int,
    plan: SegmentPlan,
    sealing: RecordSealing,
    mask: set[int | signal.Signals],
) -> NoReturn:
    """The child's whole life: never returns into the parent's code, never runs exit handlers
    (they belong to the parent: its buffers, its temporary files)."""
    status = 1
    try:
        _die_with_parent(parent)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        os.close(read_end)
        with os.fdopen(write_end, "wb") as pipe:
            _serve(fd, pipe, plan, sealing)
        status = 0
    except BaseException:  # noqa: S110 - nothing to tell: the parent sees the pipe end
        pass
    finally:
        os._exit(status)


def _die_with_parent(parent: int) -> None:
    """Linux: the kernel kills this process when the parent dies, even by SIGKILL (which
    runs no ``finally``); elsewhere the child ends at its next write to the closed pipe."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it died before that took effect
        os._exit(1)


def _serve(fd: int, pipe: BinaryIO, plan: SegmentPlan, sealing: RecordSealing) -> None:
    """Seal the odd segments in order; a sender thread writes them, so the next one is sealed
    while the parent still reads its own."""
    outgoing: queue.Queue[tuple[bytes, ...] | None] = queue.Queue(maxsize=QUEUED_SEGMENTS)
    failed = threading.Event()
    sender = threading.Thread(target=_send, args=(pipe, outgoing, failed), daemon=True)
    sender.start()
    try:
        persons_before = 0
        last = max(s.index for s in plan.segments if not s.main)
        for segment in plan.segments[: last + 1]:
            if failed.is_set():
                break
            if segment.main:  # the parent's: only counted, for the numbers that follow
                persons_before += count_persons(fd, segment)
                continue
            sealed = encrypt_segment(fd, segment, plan.codec, persons_before + 1, sealing)
            persons_before += sealed.persons
            outgoing.put(_frame(sealed))
    except SegmentsDisagree:
        outgoing.put((_FRAME.pack(_DISAGREE, 0, 0, 0, 0, 0, 0),))
    finally:
        outgoing.put(None)
        sender.join()


def _frame(sealed: SealedSegment) -> tuple[bytes, ...]:
    lines = array(_LINE, sealed.bad_check_digit_lines).tobytes()
    header = _FRAME.pack(_SEGMENT, sealed.index, sealed.first_number, sealed.persons,
                         sealed.newlines, len(sealed.bad_check_digit_lines), len(sealed.tpf_xml))
    return header, lines, sealed.tpf_xml


def _send(
    pipe: BinaryIO, outgoing: queue.Queue[tuple[bytes, ...] | None], failed: threading.Event
) -> None:
    while (frame := outgoing.get()) is not None:
        if failed.is_set():
            continue  # drain, so the sealing thread never blocks on a full queue
        try:
            for part in frame:
                pipe.write(part)
            pipe.flush()
        except OSError:  # the parent closed the pipe: it no longer wants any
            failed.set()
