"""``ipis encrypt``'s second process: it claims segments of the persons (person_segments.py)
as the main process does, encrypts them, and sends them back through a pipe in file order. A
thread of the main process reads that pipe as it fills, so the main process knows which of the
child's segments have arrived whole and can take them without waiting. Native only: the page
runs on one thread and never imports this.

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
    PersonsBefore,
    SealedPersons,
    SegmentClaims,
    SegmentPlan,
    SegmentsDisagree,
    SegmentSealer,
)

# Frames from the child, each a header of four numbers and what it announces:
# _START   (segment index, first løpenummer, 0)
# _BATCH   (persons, check digit lines, TPF bytes), then the lines and the persons' TPF XML
# _END     (segment index, line feeds in the segment, 0)
# _DISAGREE: the child's segments disagree with the plan (a fault, say); its last frame
# _DONE:   every segment is claimed, the child has sent all of its own; its last frame
_FRAME = struct.Struct("<BQQQ")
_START, _BATCH, _END, _DISAGREE, _DONE = 1, 2, 3, 4, 5
_LINE = "Q"  # array typecode of a line number
_LINE_BYTES = array(_LINE).itemsize
# Batches sealed ahead of the main process at most (about 0.25 MB each), in the child and
# again in the main process's reading thread: memory stays flat whoever is faster.
QUEUED_BATCHES = 24
PIPE_BYTES = 1 << 20  # Linux's default pipe-max-size; the default 64 KB means more switches
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_PUT_WAIT_SECONDS = 0.05  # how often a full queue's writer looks whether it should stop

# What the parent's reading thread queues: a frame's kind and numbers, or a batch.
_Item = tuple[int, int, int] | SealedPersons


class SecondProcess:
    """The parent's handle on the child: its segments in file order, and its end."""

    def __init__(self, pid: int, frames: _FrameReader) -> None:
        self.pid = pid
        self._frames = frames

    @classmethod
    def start(
        cls, fd: int, plan: SegmentPlan, sealing: RecordSealing, claims: SegmentClaims
    ) -> SecondProcess:
        """Fork the child, which claims segments of ``plan`` (the data file open as ``fd``)
        from ``claims`` until none is left."""
        try:
            read_end, write_end = os.pipe()
        except OSError:
            raise SegmentsDisagree() from None
        with contextlib.suppress(OSError, AttributeError):  # a smaller pipe only costs time
            import fcntl

            fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        # Ctrl-C between the fork and the child's SIG_IGN would raise in the child: blocked
        # until then. In the parent it is delivered once the child is in hand, and when it
        # raises there (no DeferredInterrupt), the child is reaped before it propagates.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        parent = os.getpid()
        try:
            pid = os.fork()
        except OSError:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            os.close(read_end)
            os.close(write_end)
            raise SegmentsDisagree() from None
        if pid == 0:
            _child(parent, fd, read_end, write_end, plan, sealing, claims, mask)
        os.close(write_end)
        second = cls(pid, _FrameReader(os.fdopen(read_end, "rb")))
        try:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # runs a Ctrl-C's handler
        except BaseException:
            second.close()
            raise
        return second

    def arrived(self, index: int) -> bool:
        """Whether segment ``index`` has arrived whole from the child: taking it then does not
        wait. (One the child claimed but did not send, because it died, never arrives.)"""
        return self._frames.last_ended >= index

    def segment(self, index: int) -> ChildSegment:
        """Segment ``index``, the child's next: its batches follow."""
        item = self._frames.next()
        if isinstance(item, SealedPersons) or item[:2] != (_START, index):
            raise SegmentsDisagree()
        return ChildSegment(self._frames, index, item[2])

    def close(self) -> None:
        """Reap the child; kill it first when it is still at work (the run ended early)."""
        if self.pid == 0:
            return
        if not self._frames.child_done:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        self._frames.close()  # the pipe's end comes once the child is gone
        os.waitpid(self.pid, 0)
        self.pid = 0


class ChildSegment:
    """A segment of the child's, taken from the pipe batch by batch (``SealedSegment``)."""

    def __init__(self, frames: _FrameReader, index: int, first_number: int) -> None:
        self.first_number = first_number
        self.newlines = 0
        self._frames = frames
        self._index = index

    def batches(self) -> Iterator[SealedPersons]:
        while True:
            item = self._frames.next()
            if isinstance(item, SealedPersons):
                yield item
            elif item[:2] == (_END, self._index):
                self.newlines = item[2]
                return
            else:
                raise SegmentsDisagree()


class _FrameReader:
    """The parent's end of the pipe, read by a thread of its own as the child writes, so
    ``last_ended`` tells which segments have arrived whole (the pipe read releases the GIL)."""

    def __init__(self, pipe: BinaryIO) -> None:
        self.last_ended = 0  # the index of the child's last segment that arrived whole
        self.child_done = False  # the child sent its last frame and is ending by itself
        self._pipe = pipe
        self._items: queue.Queue[_Item | None] = queue.Queue(maxsize=QUEUED_BATCHES)
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ipis-second", daemon=True)
        self._thread.start()

    def next(self) -> _Item:
        """The next frame or batch; ``SegmentsDisagree`` once there is none."""
        item = self._items.get()
        if item is None:
            self._items.put(None)  # for any later call: still the end
            raise SegmentsDisagree()
        return item

    def close(self) -> None:
        """Stop the thread (after the child ended or was killed) and close the pipe."""
        self._closing.set()
        while self._thread.is_alive():
            with contextlib.suppress(queue.Empty):
                while True:
                    self._items.get_nowait()  # a thread waiting to put gets its place
            self._thread.join(_PUT_WAIT_SECONDS)
        self._pipe.close()

    def _run(self) -> None:
        try:
            while (item := self._read_item()) is not None and self._put(item):
                pass
        except (OSError, SegmentsDisagree):
            pass
        finally:
            self._put(None)  # the end, after everything that came before it

    def _read_item(self) -> _Item | None:
        kind, a, b, c = _FRAME.unpack(self._read(_FRAME.size))
        if kind == _BATCH:
            lines = array(_LINE, self._read(b * _LINE_BYTES)).tolist()
            return SealedPersons(a, lines, self._read(c))
        if kind in (_DISAGREE, _DONE):
            self.child_done = True  # its last frame
            return None
        return kind, a, b

    def _put(self, item: _Item | None) -> bool:
        """Queue ``item``, waiting while the queue is full; False when closing."""
        while not self._closing.is_set():
            try:
                self._items.put(item, timeout=_PUT_WAIT_SECONDS)
            except queue.Full:
                continue
            if isinstance(item, tuple) and item[0] == _END:
                self.last_ended = item[1]
            return True
        return False

    def _read(self, size: int) -> bytes:
        data = self._pipe.read(size)
        if len(data) != size:
            raise SegmentsDisagree()  # the child ended (or was killed) before sending it
        return data


def _child(
    parent: int,
    fd: int,
    read_end: int,
    write_end: int,
    plan: SegmentPlan,
    sealing: RecordSealing,
    claims: SegmentClaims,
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
            _serve(fd, pipe, plan, sealing, claims)
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


def _serve(
    fd: int, pipe: BinaryIO, plan: SegmentPlan, sealing: RecordSealing, claims: SegmentClaims
) -> None:
    """Seal the segments this process claims, in order; a sender thread writes the frames, so
    the next batches are sealed while the parent still works on its own segment."""
    outgoing: queue.Queue[tuple[bytes, ...] | None] = queue.Queue(maxsize=QUEUED_BATCHES)
    failed = threading.Event()
    sender = threading.Thread(target=_send, args=(pipe, outgoing, failed), daemon=True)
    sender.start()
    try:
        before = PersonsBefore(fd, plan)
        while (index := claims.claim()) is not None:
            if not _seal_claimed(fd, plan, sealing, index, before, outgoing, failed):
                return
        outgoing.put((_FRAME.pack(_DONE, 0, 0, 0),))
    except SegmentsDisagree:
        outgoing.put((_FRAME.pack(_DISAGREE, 0, 0, 0),))
    finally:
        outgoing.put(None)
        sender.join()


def _seal_claimed(
    fd: int,
    plan: SegmentPlan,
    sealing: RecordSealing,
    index: int,
    before: PersonsBefore,
    outgoing: queue.Queue[tuple[bytes, ...] | None],
    failed: threading.Event,
) -> bool:
    """Seal segment ``index`` and queue its frames; False when the parent stopped listening."""
    segment = plan.segments[index]
    sealer = SegmentSealer(fd, segment, plan.codec, before.upto(index) + 1, sealing)
    outgoing.put((_FRAME.pack(_START, index, sealer.first_number, 0),))
    persons = 0
    for batch in sealer.batches():
        if failed.is_set():
            return False
        lines = array(_LINE, batch.bad_check_digit_lines).tobytes()
        header = _FRAME.pack(_BATCH, batch.persons, len(batch.bad_check_digit_lines),
                             len(batch.tpf_xml))
        outgoing.put((header, lines, batch.tpf_xml))
        persons += batch.persons
    before.read(index, persons)
    outgoing.put((_FRAME.pack(_END, index, sealer.newlines, 0),))
    return True


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
