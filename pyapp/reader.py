"""Streaming reader of the IPLOS export format 3.0 (formats §1) on ``xml.parsers.expat``.

Push parser: ``feed`` bytes as they are read and get back the events completed so far (one
``Header`` when ``Personer`` starts, then one ``PersonRecord`` per ``Person``). Memory holds
the header and the current person, never the file.

The rooms, in the order the bytes pass through them:
- reader_encoding.py: is it an XML file at all, its encoding and XML declaration; the bytes
  are re-encoded as UTF-8 for expat;
- reader_header.py: the header, built as a small tree and validated field by field;
- reader_persons.py: from ``<Personer>`` on expat only checks well-formedness (in C) and the
  persons are cut out of the same bytes behind it: person data is not interpreted (formats
  §1), and Python work per person is what bounds the speed on 100 000 persons;
- reader_person_parser.py: the exact path for persons of an unusual shape and their faults;
- reader_faults.py: expat's errors as the user's faults.

Any DOCTYPE is refused at its first byte, so no entity (expansion bomb) or external resource is
ever declared, let alone loaded. Faults are exceptions raised from the handlers and scanners,
so the first fault in file order wins.
"""

from __future__ import annotations

from xml.parsers import expat

from . import faults
from .reader_encoding import SNIFF_BYTES, Utf8Transcoder, sniff
from .reader_events import Event, Header, Node, PersonRecord, Sender, escape_attribute, escape_text
from .reader_faults import translate
from .reader_header import PERSONER, ROOT, SUPPORTED_VERSION, HeaderPhase, release
from .reader_person_parser import innermost_open
from .reader_persons import PersonScanner, Phase
from .reader_window import ByteWindow

__all__ = [
    "ROOT",
    "SUPPORTED_VERSION",
    "Event",
    "Header",
    "IplosReader",
    "Node",
    "PersonRecord",
    "Phase",
    "Sender",
    "escape_attribute",
    "escape_text",
]


class IplosReader:
    """Push parser for one IPLOS export file; see the module docstring."""

    def __init__(self) -> None:
        self._pending = bytearray()  # bytes held back until the encoding is known
        self._to_utf8: Utf8Transcoder | None = None
        self._parser = expat.ParserCreate(encoding="UTF-8")  # we hand it UTF-8, always
        self._parser.ordered_attributes = True
        self._parser.buffer_text = True
        self._parser.buffer_size = 1 << 16
        self._parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        self._parser.StartDoctypeDeclHandler = self._refuse_doctype
        self._window = ByteWindow()  # UTF-8 bytes a later step may still slice from
        self._header_phase = HeaderPhase(self._parser, self._window, self._begin_persons)
        self._scanner: PersonScanner | None = None
        self._personer_line = 0
        self._events: list[Event] = []
        self.header: Header | None = None
        self.bytes_read = 0

    @classmethod
    def for_persons_segment(cls, codec: str) -> IplosReader:
        """A reader for a segment of the persons: whole ``Person`` elements cut from a file
        whose header another reader has read (``ipis encrypt`` reads the persons in segments on
        two processes). It reads as if ``<IPLOS><Personer>`` had just been read, gives only
        ``PersonRecord``s, and counts lines from 1 at the segment's first byte. Its faults
        need not be those of the whole file: the caller reads the file again to find those."""
        reader = cls()
        reader._to_utf8 = Utf8Transcoder(codec)
        release(reader._parser)
        opening = f"<{ROOT}><{PERSONER}>".encode()
        reader._window.append(opening)
        reader._parser.Parse(opening, False)
        reader._scanner = PersonScanner(reader._window, len(opening), 1)
        return reader

    def between_persons(self) -> bool:
        """Whether the bytes fed so far end between two persons: in ``Personer``, every person
        begun has ended, and nothing but whitespace follows the last one. There the persons
        can be cut into segments."""
        scanner = self._scanner
        if scanner is None or scanner.phase is not Phase.PERSONS or scanner.in_person:
            return False
        return not self._window.slice(scanner.position, self._window.end).strip(b" \t\r\n")

    @property
    def phase(self) -> Phase:
        return Phase.HEADER if self._scanner is None else self._scanner.phase

    @property
    def persons(self) -> int:
        return 0 if self._scanner is None else self._scanner.count

    @property
    def bad_check_digit_lines(self) -> list[int]:
        """Lines of the persons whose fødselsnummer has wrong check digits (never numbers)."""
        return [] if self._scanner is None else self._scanner.bad_check_digit_lines

    # --- public API -------------------------------------------------------------------------

    def feed(self, chunk: bytes) -> list[Event]:
        """Parse the next bytes of the file; return the events they completed."""
        self.bytes_read += len(chunk)
        if self._to_utf8 is None:
            self._pending += chunk
            if len(self._pending) < SNIFF_BYTES:
                return []
            chunk = self._start()
        self._parse(chunk, final=False)
        return self._take_events()

    def close(self) -> list[Event]:
        """Signal the end of the file; raise if the document is incomplete.

        A document that ends without error has had its root element, IPLOS, with Personer
        (else expat or the header phase raised), so the header is always among the events."""
        self._parse(self._start() if self._to_utf8 is None else b"", final=True)
        return self._take_events()

    # --- bytes in ---------------------------------------------------------------------------

    def _start(self) -> bytes:
        """Settle the encoding on the first bytes; what is left of them, BOM removed."""
        raw = bytes(self._pending)
        self._pending = bytearray()
        codec, bom = sniff(raw[:SNIFF_BYTES])
        self._to_utf8 = Utf8Transcoder(codec)
        return raw[bom:]

    def _parse(self, chunk: bytes, final: bool) -> None:
        assert self._to_utf8 is not None
        data = self._to_utf8(chunk, final)
        self._window.append(data)
        try:
            self._parser.Parse(data, final)
        except expat.ExpatError as error:
            error_index = self._parser.ErrorByteIndex
            if self._scanner is not None:  # faults earlier in the file come first
                self._scanner.scan(error_index, self._events)
            raise translate(
                error,
                error_index,
                self._window,
                root_seen=self.header is not None or bool(self._header_phase.stack),
                open_element=self._open_element,
            ) from None
        if self._scanner is None:
            self._window.forget_before(self._header_phase.last_event_index)
        else:
            self._scanner.scan(self._window.end, self._events)
            self._window.forget_before(self._scanner.position)

    def _take_events(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    # --- handlers and hand-overs ------------------------------------------------------------

    def _refuse_doctype(self, *_: object) -> None:
        raise faults.doctype_refused(self._parser.CurrentLineNumber)

    def _begin_persons(self, header: Header, tag_start: int, line: int) -> None:
        """``<Personer>`` read: the header is complete; the persons are cut from here on."""
        self.header = header
        self._events.append(header)
        self._personer_line = line
        start = self._window.tag_end(tag_start)
        line_after = line + self._window.slice(tag_start, start).count(b"\n")
        self._scanner = PersonScanner(self._window, start, line_after)

    def _open_element(self, up_to: int) -> tuple[str, int]:
        """Innermost element open at ``up_to``: the header's, or a re-scan of the person."""
        if self._header_phase.stack:
            node = self._header_phase.stack[-1]
            return node.name, node.line
        if self.phase is Phase.PERSONS:
            assert self._scanner is not None
            position = self._scanner.position
            found = innermost_open(self._window.slice(position, up_to), self._scanner.line)
            return found or ("Personer", self._personer_line)
        return ROOT, self._header_phase.root_line
