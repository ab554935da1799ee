"""``ipis encrypt``'s second process: it encrypts the odd segments of the persons
(person_segments.py) while the main process reads the even ones, and sends them back through a
pipe in file order. Native only: the page runs on one thread and never imports this.

Why a process and not a thread: of the ~1.4 s of CPU ``ipis encrypt`` spends on 50 MB, only
0.1-0.15 s releases the GIL (hashing, writing, the TPF layer's AES-GCM); sealing the persons on
a thread was slower than on none. Why ``os.fork`` and not multiprocessing's spawn or
forkserver: the child needs the code, the keys and the header the parent already holds; a
fork costs a few milliseconds, while a fresh interpreter importing the core and
``cryptography`` costs about 0.1 s before it does anything (bench/explore_second_process.py).
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
from collections.abc import Iterator
from typing import BinaryIO, NoReturn

from .message import RecordSealing
from .person_segments import (
    SealedPersons,
    SegmentPlan,
    SegmentsDisagree,
    SegmentSealer,
    count_persons,
)

# Frames from the child, each a header of four numbers and what it announces:
# _START   (segment index, first løpenummer, 0)
# _BATCH   (persons, check digit lines, TPF bytes), then the lines and the persons' TPF XML
# _END     (segment index, line feeds in the segment, 0)
# _DISAGREE: the child's segments disagree with the plan (a fault, say); its last frame
_FRAME = struct.Struct("<BQQQ")
_START, _BATCH, _END, _DISAGREE = 1, 2, 3, 4
_LINE = "Q"  # array typecode of a line number
_LINE_BYTES = array(_LINE).itemsize
# Batches sealed ahead of the main process at most (about 0.4 MB each): they wait in the
# child's memory while the main process reads its own segment.
QUEUED_BATCHES = 24
PIPE_BYTES = 1 << 20  # Linux's default pipe-max-size; the default 64 KB means more switches
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


class SecondProcess:
    """The parent's handle on the child: its segments in order, and its end."""

    def __init__(self, pid: int, frames: _Frames) -> None:
        self.pid = pid
        self._frames = frames

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
            return cls(pid, _Frames(os.fdopen(read_end, "rb"), last_index))
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)

    def segment(self, index: int) -> ChildSegment:
        """Segment ``index``, the child's next: its batches follow."""
        kind, got, first, _ = self._frames.next()
        if kind != _START or got != index:
            raise SegmentsDisagree()
        return ChildSegment(self._frames, index, first)

    def close(self) -> None:
        """Reap the child; kill it first when it is still at work (the run ended early)."""
        if self.pid == 0:
            return
        self._frames.close()  # a child still writing gets EPIPE
        if not self._frames.done:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        self.pid = 0


class ChildSegment:
    """A segment of the child's, read from the pipe batch by batch (``SealedSegment``)."""

    def __init__(self, frames: _Frames, index: int, first_number: int) -> None:
        self.first_number = first_number
        self.newlines = 0
        self._frames = frames
        self._index = index

    def batches(self) -> Iterator[SealedPersons]:
        while True:
            kind, a, b, c = self._frames.next()
            if kind == _BATCH:
                yield self._frames.batch(a, b, c)
            elif kind == _END and a == self._index:
                self.newlines = b
                # after its last segment, the child ends by itself
                self._frames.done = self._index == self._frames.last_index
                return
            else:
                raise SegmentsDisagree()


class _Frames:
    """The parent's end of the pipe: the child's frames, and whether it sent its last."""

    def __init__(self, pipe: BinaryIO, last_index: int) -> None:
        self.last_index = last_index  # the child's last segment
        self.done = False  # the child sent its last frame and is ending by itself
        self._pipe = pipe

    def next(self) -> tuple[int, int, int, int]:
        kind, a, b, c = _FRAME.unpack(self._read(_FRAME.size))
        if kind == _DISAGREE:
            self.done = True  # its last frame
            raise SegmentsDisagree()
        return kind, a, b, c

    def batch(self, persons: int, lines: int, size: int) -> SealedPersons:
        line_bytes = self._read(lines * _LINE_BYTES)
        return SealedPersons(persons, array(_LINE, line_bytes).tolist(), self._read(size))

    def close(self) -> None:
        self._pipe.close()

    def _read(self, size: int) -> bytes:
        try:
            data = self._pipe.read(size)
        except OSError:
            raise SegmentsDisagree() from None
        if len(data) != size:
            self.done = True  # the child ended (or was killed) before sending it
            raise SegmentsDisagree()
        return data


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
    """Seal the odd segments in order; a sender thread writes the frames, so the next batches
    are sealed while the parent still reads its own segment."""
    outgoing: queue.Queue[tuple[bytes, ...] | None] = queue.Queue(maxsize=QUEUED_BATCHES)
    failed = threading.Event()
    sender = threading.Thread(target=_send, args=(pipe, outgoing, failed), daemon=True)
    sender.start()
    try:
        persons_before = 0
        last = max(s.index for s in plan.segments if not s.main)
        for segment in plan.segments[: last + 1]:
            if segment.main:  # the parent's: only counted, for the numbers that follow
                persons_before += count_persons(fd, segment)
                continue
            sealer = SegmentSealer(fd, segment, plan.codec, persons_before + 1, sealing)
            outgoing.put((_FRAME.pack(_START, segment.index, sealer.first_number, 0),))
            for batch in sealer.batches():
                if failed.is_set():
                    return
                lines = array(_LINE, batch.bad_check_digit_lines).tobytes()
                header = _FRAME.pack(_BATCH, batch.persons, len(batch.bad_check_digit_lines),
                                     len(batch.tpf_xml))
                outgoing.put((header, lines, batch.tpf_xml))
                persons_before += batch.persons
            outgoing.put((_FRAME.pack(_END, segment.index, sealer.newlines, 0),))
    except SegmentsDisagree:
        outgoing.put((_FRAME.pack(_DISAGREE, 0, 0, 0),))
    finally:
        outgoing.put(None)
        sender.join()


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
