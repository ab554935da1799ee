"""The persons of an IPLOS file cut into segments, for ``ipis encrypt`` on two processes.

Native only (the page reads on one thread). The file is cut at ``<Person>`` tags found by a
plain byte search near planned offsets. Segment 0 holds the header and is read by the main
process's ``MessageEncryptor``; every later segment is claimed by whichever process is free
first (``SegmentClaims``: the kernel hands each index out once, in file order), so neither
process waits while the other still has work, whatever their speeds. A claimed segment is
read by a reader of its own (``IplosReader.for_persons_segment``) and its persons are numbered
and sealed there (``SegmentSealer``); the main process puts the results into the TPF layer in
file order.

A cut is only trusted when both sides of it agree: the segment before it ends between persons
(``IplosReader.between_persons``), the segment after it parses as whole persons, and the
numbers a segment was given (counted from ``<Person>`` tags in the raw bytes before it)
follow the persons actually read. Anything else, a fault included, raises ``SegmentsDisagree``
and the caller reads the whole file again on one process, which finds the first fault in file
order with its exact message and line: the segments' own faults are never shown.
"""

from __future__ import annotations

import os
import stat
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import compress
from operator import attrgetter, not_
from typing import Protocol, cast

from .crypto.native import seal_records_now
from .faults import IplosFault
from .message import RECORDS_PER_BATCH, RecordSealing, register_plaintexts, tpf_persons
from .reader import IplosReader, PersonRecord
from .reader_encoding import SNIFF_BYTES, SUPPORTED_CODECS, sniff

PERSON_START = b"<Person>"
READ_BYTES = 1 << 20
_SEARCH_BYTES = 1 << 16  # read at a planned offset to find the next <Person>
# Codecs in which a byte offset is a character boundary and "<Person>" and "\n" are those
# bytes: every ASCII-compatible one of formats §1. UTF-16 files are read on one process.
CUTTABLE_CODECS = frozenset(c for c in SUPPORTED_CODECS if not c.startswith("utf-16"))
_line = attrgetter("line")
_check_digits_ok = attrgetter("check_digits_ok")


class SegmentsDisagree(Exception):
    """A cut or a segment is not what the plan assumed (or holds a fault): read on one process."""


# At most this many segments, so that every index fits in the claims pipe at once (4 bytes
# each; Linux's default pipe holds 64 KiB): a larger file gets larger segments.
MAX_SEGMENTS = 16_000
_INDEX = struct.Struct("<I")


@dataclass(frozen=True)
class SegmentSizes:
    """Where to cut. Measured on the 2-core reference machine (bench/bench_encrypt.py):
    ``min_file_bytes`` is where the second process starts to pay for itself."""

    min_file_bytes: int
    first_bytes: int  # segment 0: the header and the first persons, read by the main process
    segment_bytes: int  # each later segment, claimed by either process


@dataclass(frozen=True)
class Segment:
    index: int  # 0: the header and the first persons; later ones are claimed
    start: int  # byte offset in the file: a <Person> tag (segment 0: the file's start)
    end: int | None  # the next segment's start; None for the last one: to the file's end


@dataclass(frozen=True)
class SegmentPlan:
    codec: str
    segments: tuple[Segment, ...]


@dataclass(frozen=True)
class SealedPersons:
    """A batch of a segment's persons, numbered and sealed: their elements of the TPF layer."""

    persons: int
    bad_check_digit_lines: list[int]  # counted from 1 at the segment's first byte
    tpf_xml: bytes = field(repr=False)  # Fodselsnummer elements: never in a repr or a log


class SealedSegment(Protocol):
    """A segment's persons, numbered from ``first_number``, as they are sealed (here or in
    the second process); ``newlines`` (line feeds in the segment) once they are all given."""

    first_number: int
    newlines: int

    def batches(self) -> Iterator[SealedPersons]: ...


def plan_segments(fd: int, sizes: SegmentSizes) -> SegmentPlan | None:
    """Cuts for the open file ``fd``; None when it is read on one process: small, not a regular
    file, UTF-16, or not an XML file at all (the reader then says so)."""
    status = os.fstat(fd)
    if not stat.S_ISREG(status.st_mode) or status.st_size < sizes.min_file_bytes:
        return None
    try:
        codec, _ = sniff(os.pread(fd, SNIFF_BYTES, 0))
    except (IplosFault, OSError):
        return None
    if codec not in CUTTABLE_CODECS:
        return None
    starts = [0]
    step = max(sizes.segment_bytes, status.st_size // (MAX_SEGMENTS - 1) + 1)
    target = max(sizes.first_bytes, SNIFF_BYTES)  # the reader parses nothing before that
    while (found := _person_start(fd, target, status.st_size)) is not None:
        starts.append(found)
        target = found + step
    if len(starts) < 2:
        return None
    ends: list[int | None] = [*starts[1:], None]
    segments = tuple(Segment(i, s, e) for i, (s, e) in enumerate(zip(starts, ends, strict=True)))
    return SegmentPlan(codec, segments)


class SegmentClaims:
    """Which process reads which segment: the indices 1, 2, … wait in a pipe, and ``claim``
    takes the next one. A read of four bytes from a pipe is atomic, so the kernel settles
    who gets each index, in file order, with no lock. Made before the fork, with the write
    end closed: once every index is taken, ``claim`` finds the pipe's end at once."""

    def __init__(self, read_end: int) -> None:
        self._read_end = read_end

    @classmethod
    def open(cls, plan: SegmentPlan) -> SegmentClaims:
        try:
            read_end, write_end = os.pipe()
        except OSError:
            raise SegmentsDisagree() from None
        indices = b"".join(_INDEX.pack(s.index) for s in plan.segments[1:])
        try:
            # Nobody reads yet: a pipe smaller than usual (a user over pipe-user-pages-soft
            # gets one page) must not block this write for ever, but end in one process.
            os.set_blocking(write_end, False)
            written = os.write(write_end, indices)
        except OSError:  # BlockingIOError among them
            written = -1
        finally:
            os.close(write_end)
        if written != len(indices):
            os.close(read_end)
            raise SegmentsDisagree()
        return cls(read_end)

    def claim(self) -> int | None:
        """The next segment's index, or None when every one is taken."""
        try:
            taken = os.read(self._read_end, _INDEX.size)
        except OSError:
            raise SegmentsDisagree() from None
        if not taken:
            return None
        if len(taken) != _INDEX.size:
            raise SegmentsDisagree()
        (index,) = _INDEX.unpack(taken)
        return int(index)

    def close(self) -> None:
        if self._read_end >= 0:
            os.close(self._read_end)
            self._read_end = -1


class PersonsBefore:
    """The persons before a claimed segment, so its first gets the right løpenummer: those of
    the segments this process read itself, and ``<Person>`` tags counted in the raw bytes of
    the others (checked in the end: the main process compares each segment's first number
    with the persons actually read before it)."""

    def __init__(self, fd: int, plan: SegmentPlan) -> None:
        self._fd = fd
        self._segments = plan.segments
        self._counted = 0  # segments [0, _counted) are in ``persons``
        self.persons = 0

    def upto(self, index: int) -> int:
        """Persons in segments ``[0, index)``, counting those not read here."""
        for segment in self._segments[self._counted : index]:
            self.persons += count_persons(self._fd, segment)
        self._counted = max(self._counted, index)
        return self.persons

    def read(self, index: int, persons: int) -> None:
        """Segment ``index``, the next one after ``upto(index)``, was read here: ``persons``."""
        if index != self._counted:
            raise SegmentsDisagree()
        self.persons += persons
        self._counted = index + 1


def count_persons(fd: int, segment: Segment) -> int:
    """``<Person>`` tags in the segment's raw bytes: its persons, if the cuts are right (the
    main process checks that against the persons it reads)."""
    count, tail = 0, b""
    for chunk in read_range(fd, segment.start, segment.end):
        data = tail + chunk
        count += data.count(PERSON_START)
        tail = data[1 - len(PERSON_START) :]  # a tag cut by the chunk's end is counted next
    return count


def read_range(fd: int, start: int, end: int | None) -> Iterator[bytes]:
    """The file's bytes from ``start`` to ``end`` (None: to the end), in pieces."""
    position = start
    while end is None or position < end:
        size = READ_BYTES if end is None else min(READ_BYTES, end - position)
        chunk = os.pread(fd, size, position)
        if not chunk:
            if end is None:
                return
            raise SegmentsDisagree()  # the file is shorter than when the cuts were planned
        yield chunk
        position += len(chunk)


class SegmentSealer:
    """Reads one segment (not segment 0) and numbers and seals its persons from
    ``first_number``, batch by batch; ``SegmentsDisagree`` on any fault, or when the segment
    does not end between persons."""

    def __init__(
        self, fd: int, segment: Segment, codec: str, first_number: int, sealing: RecordSealing
    ) -> None:
        self.first_number = first_number
        self.newlines = 0
        self._fd = fd
        self._segment = segment
        self._codec = codec
        self._sealing = sealing

    def batches(self) -> Iterator[SealedPersons]:
        try:
            yield from self._batches()
        except (IplosFault, OSError):
            raise SegmentsDisagree() from None

    def _batches(self) -> Iterator[SealedPersons]:
        reader = IplosReader.for_persons_segment(self._codec)
        batch: list[PersonRecord] = []
        number = self.first_number
        for chunk in read_range(self._fd, self._segment.start, self._segment.end):
            self.newlines += chunk.count(b"\n")
            batch += cast(list[PersonRecord], reader.feed(chunk))  # a segment has no Header
            while len(batch) >= RECORDS_PER_BATCH:
                yield self._seal(batch[:RECORDS_PER_BATCH], number)
                number += RECORDS_PER_BATCH
                del batch[:RECORDS_PER_BATCH]
        if self._segment.end is None:
            batch += cast(list[PersonRecord], reader.close())  # raises unless </IPLOS> ended it
        elif not reader.between_persons():
            raise SegmentsDisagree()
        if batch:
            yield self._seal(batch, number)

    def _seal(self, batch: list[PersonRecord], first: int) -> SealedPersons:
        plaintexts = register_plaintexts(self._sealing.record_format, first, batch)
        sealed = seal_records_now(self._sealing.register_key, plaintexts)
        wrong = map(not_, map(_check_digits_ok, batch))
        return SealedPersons(
            persons=len(batch),
            bad_check_digit_lines=list(compress(map(_line, batch), wrong)),
            tpf_xml=tpf_persons(first, batch, sealed),
        )


def _person_start(fd: int, target: int, size: int) -> int | None:
    """Offset of the first ``<Person>`` at or after ``target``, None when there is none."""
    while target < size:
        window = os.pread(fd, _SEARCH_BYTES, target)
        found = window.find(PERSON_START)
        if found >= 0:
            return target + found
        if len(window) < _SEARCH_BYTES:
            return None
        target += len(window) - len(PERSON_START) + 1
    return None
