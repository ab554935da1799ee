"""Encrypting a file on disk natively: the ``ipis encrypt`` command's work.

The browser has one thread, so ``MessageEncryptor`` stays single-threaded; natively the run
uses the machine's second core twice over:
- the output is hashed and written by ``HashingWriter`` on a thread of its own (hashlib and file
  writes release the GIL on large buffers);
- a file of some megabytes is cut into segments of persons, which this process and a second
  one (person_segments.py, second_process.py) claim as each becomes free, then read, number
  and seal; the TPF layer, one AES-GCM stream, is written here in file order. When this
  process would wait for a segment of the second one, it seals one of its own ahead instead.
  When the cuts or the segments disagree with the plan (a fault among them), the file is read
  again on one process, so a fault is always the first one in file order, with its exact
  message and line.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import queue
import threading
from collections.abc import Callable, Iterator
from typing import BinaryIO

from .atomic import AtomicOutput
from .contact import Contact
from .crypto.native import NativeBackend
from .faults import (
    DataFileUnreadable,
    IplosFault,
    MissingDataFile,
    MissingKeyFile,
    MissingOutputFile,
    OutputNotWritable,
    OutputSameAsInput,
)
from .interrupts import DeferredInterrupt, no_checkpoint
from .keyfile import KeyFile, load_key_file
from .message import EncryptionSummary, MessageEncryptor, RecordSealing
from .person_segments import (
    PersonsBefore,
    SealedPersons,
    SealedSegment,
    SegmentClaims,
    SegmentPlan,
    SegmentsDisagree,
    SegmentSealer,
    SegmentSizes,
    plan_segments,
)
from .reader_header import PERSONER, ROOT
from .second_process import SecondProcess

CHUNK_BYTES = 1 << 20
# Read before the second process is forked: the header is far shorter.
HEADER_STEP_BYTES = 1 << 16
# Where to cut (person_segments.SegmentSizes), measured with bench/bench_encrypt.py.
SEGMENT_SIZES = SegmentSizes(min_file_bytes=8 << 20, first_bytes=1 << 20, segment_bytes=1 << 20)
# Segments this process seals ahead of the TPF layer at most, while one of the second
# process's is not there yet (each about 2x its input in memory until it is written).
SEALED_AHEAD = 2
# Fed to the main reader after the last segment: the persons were read elsewhere, and the end of
# the file with them (in a codec person_segments can cut: these bytes in ASCII).
_CLOSING = f"</{PERSONER}></{ROOT}>".encode()
# Output pieces (about 2 MB each: the output of one input chunk) queued for the writer at
# most: enough to ride out a slow write, small enough to keep memory flat.
QUEUED_PIECES = 4
# Written output is flushed to disk (fdatasync) on the writer thread every so often, while the
# file is still being encrypted: AtomicOutput's fsync at the end then has little left to wait
# for (about 50 ms less for 50 MB on the reference machine). Durability is unchanged.
SYNC_BYTES = 32 << 20


class HashingWriter:
    """Writes pieces to ``sink`` and hashes them (SHA-256), in order, on its own thread."""

    def __init__(self, sink: BinaryIO) -> None:
        self._sink = sink
        self._sha256 = hashlib.sha256()
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=QUEUED_PIECES)
        self._error: Exception | None = None  # raised in the main thread at its next call
        self._thread = threading.Thread(target=self._run, name="ipis-writer", daemon=True)
        self._thread.start()

    def write(self, piece: bytes) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(piece)

    def finish(self) -> str:
        """Wait until everything is written; the SHA-256 (hex) of all of it."""
        self.stop()
        if self._error is not None:
            raise self._error
        return self._sha256.hexdigest()

    def stop(self) -> None:
        """End the thread (also after a fault): nothing is written after this returns."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def _run(self) -> None:
        unsynced = 0
        while (piece := self._queue.get()) is not None:
            if self._error is not None:
                continue  # drain: the main thread raises at its next call
            try:
                self._sink.write(piece)
                self._sha256.update(piece)
                unsynced += len(piece)
                if unsynced >= SYNC_BYTES:
                    self._sink.flush()
                    os.fdatasync(self._sink.fileno())
                    unsynced = 0
            except Exception as error:  # an OSError becomes OutputNotWritable there
                self._error = error


def check_form(
    data: str | None,
    out: str | None,
    keys: str | None,
    email: str | None,
    name: str | None,
    mobile: str | None,
) -> Contact:
    """The seed's checks in the seed's order, before anything is read."""
    if not data:
        raise MissingDataFile()
    if not out:
        raise MissingOutputFile()
    if not keys:
        raise MissingKeyFile()
    return Contact.validated(email, name, mobile)


async def encrypt_file(
    data_path: str,
    out_path: str,
    keys_path: str,
    contact: Contact,
    today: dt.date | None = None,
    sizes: SegmentSizes = SEGMENT_SIZES,
    checkpoint: Callable[[], None] = no_checkpoint,
) -> EncryptionSummary:
    """Encrypt ``data_path`` to ``out_path`` atomically; raise an IplosFault on any fault.
    ``checkpoint`` is called between chunks and batches: where a held-back Ctrl-C is raised
    (``DeferredInterrupt``)."""
    today = today or dt.date.today()
    key_file = load_key_file(keys_path, today)
    if os.path.exists(out_path) and os.path.exists(data_path):
        if os.path.samefile(out_path, data_path):
            raise OutputSameAsInput()
    try:
        source = open(data_path, "rb")
    except OSError:
        raise DataFileUnreadable() from None
    with source:
        plan = plan_segments(source.fileno(), sizes)
        if plan is not None:
            try:
                return await _encrypt_in_segments(
                    source, plan, out_path, key_file, contact, today, checkpoint
                )
            except SegmentsDisagree:
                source.seek(0)  # nothing was written: read it all again, on one process
        return await _encrypt_whole(source, out_path, key_file, contact, today, checkpoint)


def encrypt_file_now(
    data_path: str,
    out_path: str,
    keys_path: str,
    contact: Contact,
    today: dt.date | None = None,
    sizes: SegmentSizes = SEGMENT_SIZES,
) -> EncryptionSummary:
    """``encrypt_file`` without an event loop, for ``ipis encrypt``: natively nothing in it
    suspends (the native backend's awaitables are done at once), so the coroutine runs to its
    end in one step, and asyncio, about 30 ms to import, stays out of every run. Ctrl-C is
    held back until the next checkpoint between chunks or batches (``DeferredInterrupt``), as
    ``asyncio.run`` did: a KeyboardInterrupt there undoes every step on the way out (the
    output's temporary file, the writer thread, the second process)."""
    with DeferredInterrupt() as interrupt:
        coroutine = encrypt_file(
            data_path, out_path, keys_path, contact, today, sizes, interrupt.checkpoint
        )
        try:
            coroutine.send(None)
        except StopIteration as done:
            summary: EncryptionSummary = done.value
            return summary
        coroutine.close()
    raise RuntimeError("encrypt_file waited for something without an event loop")


async def _encrypt_whole(
    source: BinaryIO,
    out_path: str,
    key_file: KeyFile,
    contact: Contact,
    today: dt.date,
    checkpoint: Callable[[], None],
) -> EncryptionSummary:
    """On one process (and the writer thread)."""
    encryptor = MessageEncryptor(key_file, contact, NativeBackend(), today, hash_output=False)
    try:
        with AtomicOutput(out_path) as sink:
            writer = HashingWriter(sink)
            try:
                while chunk := _read(source):
                    writer.write(await encryptor.feed(chunk))
                    checkpoint()
                writer.write(await encryptor.finish())
                encryptor.summary.sha256 = writer.finish()
            finally:
                writer.stop()  # before AtomicOutput closes (or removes) the file
    except OSError:  # reading faults are IplosFaults already; this is the output side
        raise OutputNotWritable() from None
    return encryptor.summary


async def _encrypt_in_segments(
    source: BinaryIO,
    plan: SegmentPlan,
    out_path: str,
    key_file: KeyFile,
    contact: Contact,
    today: dt.date,
    checkpoint: Callable[[], None],
) -> EncryptionSummary:
    """Segment 0 (the header and the first persons) here with ``MessageEncryptor``; the others
    sealed here and in the second process, taken into the TPF layer in file order."""
    encryptor = MessageEncryptor(key_file, contact, NativeBackend(), today, hash_output=False)
    zero = _SegmentZero(source, plan.segments[1].start)
    output: list[bytes] = []  # before the fork: written once the output is open
    while (sealing := encryptor.record_sealing) is None and zero.left:
        output.append(await encryptor.feed(zero.read(HEADER_STEP_BYTES)))
    if sealing is None:
        raise SegmentsDisagree()  # the header does not end before the first cut
    claims = SegmentClaims.open(plan)
    try:
        second = SecondProcess.start(source.fileno(), plan, sealing, claims)
        try:
            with AtomicOutput(out_path) as sink:
                writer = HashingWriter(sink)
                try:
                    for piece in output:
                        writer.write(piece)
                    while zero.left:
                        writer.write(await encryptor.feed(zero.read(CHUNK_BYTES)))
                        checkpoint()
                    if not encryptor.between_persons():
                        raise SegmentsDisagree()
                    segments = _InFileOrder(source.fileno(), plan, sealing, second, claims,
                                            encryptor.next_lopenummer - 1)
                    await _append_segments(
                        encryptor, writer, segments, 1 + zero.newlines, checkpoint
                    )
                    second.close()
                    try:  # sound after the checks above: a fault here would be the plan's
                        writer.write(await encryptor.feed(_CLOSING))
                        writer.write(await encryptor.finish())
                    except IplosFault:
                        raise SegmentsDisagree() from None
                    encryptor.summary.sha256 = writer.finish()
                finally:
                    writer.stop()  # before AtomicOutput closes (or removes) the file
        except OSError:  # reading faults are IplosFaults already; this is the output side
            raise OutputNotWritable() from None
        finally:
            second.close()
    finally:
        claims.close()
    return encryptor.summary


async def _append_segments(
    encryptor: MessageEncryptor,
    writer: HashingWriter,
    segments: _InFileOrder,
    line: int,
    checkpoint: Callable[[], None],
) -> None:
    """Segments 1, 2, … into the TPF layer, each checked to start at the next løpenummer.
    ``line``: the line segment 1 starts on (a segment counts its check digit lines from its
    own start)."""
    for sealed in segments:
        if sealed.first_number != encryptor.next_lopenummer:  # counted other persons before it
            raise SegmentsDisagree()
        for batch in sealed.batches():
            lines = [line - 1 + n for n in batch.bad_check_digit_lines]
            writer.write(await encryptor.append_sealed_persons(batch.tpf_xml, batch.persons, lines))
            checkpoint()
        line += sealed.newlines


class _InFileOrder:
    """Segments 1, 2, … in file order, each sealed here or in the second process, whichever
    claimed it. Before waiting for one of the second process's, this process claims and seals
    a later one itself (at most ``SEALED_AHEAD``), so neither process sits idle."""

    def __init__(
        self,
        fd: int,
        plan: SegmentPlan,
        sealing: RecordSealing,
        second: SecondProcess,
        claims: SegmentClaims,
        segment_zero_persons: int,
    ) -> None:
        self._fd = fd
        self._plan = plan
        self._sealing = sealing
        self._second = second
        self._claims: SegmentClaims | None = claims
        self._before = PersonsBefore(fd, plan)
        self._before.read(0, segment_zero_persons)
        self._ahead: dict[int, _SealedHere] = {}

    def __iter__(self) -> Iterator[SealedSegment]:
        for index in range(1, len(self._plan.segments)):
            while index not in self._ahead and self._seal_ahead(index):
                pass
            here = self._ahead.pop(index, None)
            yield here if here is not None else self._second.segment(index)

    def _seal_ahead(self, index: int) -> bool:
        """Claim and seal the next free segment here, unless segment ``index`` (the next one
        due) has arrived from the second process, enough are sealed ahead, or none is left."""
        if self._claims is None or len(self._ahead) >= SEALED_AHEAD or self._second.arrived(index):
            return False
        claimed = self._claims.claim()
        if claimed is None:
            self._claims = None
            return False
        segment = self._plan.segments[claimed]
        first = self._before.upto(claimed) + 1
        sealer = SegmentSealer(self._fd, segment, self._plan.codec, first, self._sealing)
        batches = list(sealer.batches())
        self._before.read(claimed, sum(b.persons for b in batches))
        self._ahead[claimed] = _SealedHere(first, sealer.newlines, batches)
        return True


class _SealedHere:
    """A segment sealed here ahead of its turn (``SealedSegment``)."""

    def __init__(self, first_number: int, newlines: int, batches: list[SealedPersons]) -> None:
        self.first_number = first_number
        self.newlines = newlines
        self._batches = batches

    def batches(self) -> Iterator[SealedPersons]:
        yield from self._batches
        self._batches = []


class _SegmentZero:
    """Segment 0 read from the open file, up to the first cut, counting its line feeds."""

    def __init__(self, source: BinaryIO, end: int) -> None:
        self.left = end
        self.newlines = 0
        self._source = source

    def read(self, most: int) -> bytes:
        chunk = _read(self._source, min(most, self.left))
        if not chunk:
            raise SegmentsDisagree()  # the file is shorter than when the cuts were planned
        self.left -= len(chunk)
        self.newlines += chunk.count(b"\n")
        return chunk


def _read(source: BinaryIO, size: int = CHUNK_BYTES) -> bytes:
    try:
        return source.read(size)
    except OSError:
        raise DataFileUnreadable() from None
