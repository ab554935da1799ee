"""The slow, exact path for one person: a fresh expat parser with every handler.

The fast path (reader_persons.py) takes the common shape of a person with one regular
expression. Any other shape (attributes, comments, CDATA, processing instructions,
``Fodselsnummer`` not first, a '>' in text) and every fault inside a person come here, where
expat's events give exact faults and lines. What is left out of the register's record is found
as byte ranges: the ``Fodselsnummer`` element, comments, processing instructions, and
indentation (text nodes of whitespace only, holding a line break, outside CDATA).
"""

from __future__ import annotations

from xml.parsers import expat

from . import faults
from .identifiers import fnr_check_digits_ok
from .reader_events import PersonRecord

PERSON = "Person"
FODSELSNUMMER = "Fodselsnummer"


class _PersonEnded(Exception):
    """Raised from the end handler: stop expat at the person's end tag."""


class SlowPerson:
    """One person fed in pieces (bytes expat already found well-formed) from its start tag:
    an element directly in ``Personer`` that should be a ``Person``."""

    def __init__(self, first_line: int) -> None:
        self.segment = bytearray()  # everything fed; expat's byte indices point into it
        self.first_line = first_line
        self.parser = expat.ParserCreate(encoding="UTF-8")
        self.parser.ordered_attributes = True
        self.parser.StartElementHandler = self._start
        self.parser.EndElementHandler = self._end
        self.parser.CharacterDataHandler = self._text
        self.parser.CommentHandler = self._comment
        self.parser.ProcessingInstructionHandler = self._processing_instruction
        self.parser.StartCdataSectionHandler = self._start_cdata
        self.parser.EndCdataSectionHandler = self._end_cdata
        self.depth = 0
        self.person_line = 0
        self.person_start = -1
        self.person_end = -1
        self.fnr_start = self.fnr_end_tag = -1
        self.fnr_line = 0
        self.fnr_text: list[str] | None = None
        self.number = ""
        self.removed: list[tuple[int, int]] = []
        self.text_start = -1  # current text node: start, and whether it is only whitespace
        self.text_blank = True
        self.in_cdata = False

    def feed(self, piece: bytes) -> tuple[PersonRecord, int] | None:
        """The record and the bytes it took from the segment, once its end tag is fed."""
        self.segment += piece
        try:
            self.parser.Parse(piece, False)
        except _PersonEnded:
            return self._record()
        return None

    def _line(self) -> int:
        return self.first_line + self.parser.CurrentLineNumber - 1

    def _fnr_open(self) -> bool:
        return self.fnr_start >= 0 and self.fnr_end_tag < 0

    def _close_text(self) -> None:
        """Markup follows: drop the text node before it if it is indentation."""
        if self.text_start >= 0 and self.text_blank:
            end = self.parser.CurrentByteIndex
            raw = self.segment[self.text_start : end]
            if raw.isspace() and b"\n" in raw:
                self.removed.append((self.text_start, end))
        self.text_start = -1
        self.text_blank = True

    def _start(self, name: str, attributes: list[str]) -> None:
        self._close_text()
        if self.depth == 0:
            if name != PERSON:
                raise faults.unknown_element(name, self._line())
            if attributes:
                raise faults.unexpected_attribute(name, self._line())
            self.person_line = self._line()
            self.person_start = self.parser.CurrentByteIndex
        elif self._fnr_open():
            raise faults.unknown_element(name, self._line())
        elif name == PERSON:
            raise faults.misplaced_element(name, self._line())
        elif self.depth == 1 and name == FODSELSNUMMER:
            if self.fnr_start >= 0:
                raise faults.misplaced_element(name, self._line())
            self.fnr_start = self.parser.CurrentByteIndex
            self.fnr_line = self._line()
            self.fnr_text = []
        self.depth += 1

    def _end(self, name: str) -> None:
        self._close_text()
        self.depth -= 1
        if self.depth == 1 and name == FODSELSNUMMER and self._fnr_open():
            self.fnr_end_tag = self.parser.CurrentByteIndex
            number = "".join(self.fnr_text or []).strip()
            self.fnr_text = None
            if len(number) != 11 or not number.isascii() or not number.isdigit():
                raise faults.invalid_value(FODSELSNUMMER, self.fnr_line, "må ha 11 siffer")
            self.number = number
            close = self.segment.index(b">", self.fnr_end_tag) + 1
            self.removed.append((self.fnr_start, close))
        elif self.depth == 0:
            self.person_end = self.parser.CurrentByteIndex
            raise _PersonEnded()

    def _text(self, text: str) -> None:
        # Only inside the person: before it, expat reports no text (it is not in an element).
        if self.fnr_text is not None:
            self.fnr_text.append(text)
        if self.text_start < 0:
            self.text_start = self.parser.CurrentByteIndex
        if self.in_cdata or not text.isspace():
            self.text_blank = False

    def _comment(self, _data: str) -> None:
        self._close_text()
        start = self.parser.CurrentByteIndex
        self.removed.append((start, self.segment.index(b"-->", start + 4) + 3))

    def _processing_instruction(self, _target: str, _data: str) -> None:
        self._close_text()
        start = self.parser.CurrentByteIndex
        self.removed.append((start, self.segment.index(b"?>", start + 2) + 2))

    def _start_cdata(self) -> None:
        if self.text_start < 0:
            self.text_start = self.parser.CurrentByteIndex
        self.text_blank = False  # a CDATA section is data, whatever it holds
        self.in_cdata = True

    def _end_cdata(self) -> None:
        self.in_cdata = False

    def _record(self) -> tuple[PersonRecord, int]:
        segment = bytes(self.segment)
        if self.fnr_start < 0:
            raise faults.MissingElement("IPLOS\\Personer\\Person\\Fodselsnummer")
        fnr_range = next(r for r in self.removed if r[0] == self.fnr_start)
        pieces = []
        position = segment.index(b">", self.person_start) + 1
        for start, end in sorted(self.removed):
            pieces.append(segment[position:start])
            position = end
        pieces.append(segment[position : self.person_end])
        record = PersonRecord(
            line=self.person_line,
            fodselsnummer_xml=segment[fnr_range[0] : fnr_range[1]],
            fodselsnummer=self.number,
            data_xml=b"".join(pieces),
            check_digits_ok=fnr_check_digits_ok(self.number),
        )
        return record, segment.index(b">", self.person_end) + 1


def innermost_open(xml: bytes, first_line: int) -> tuple[str, int] | None:
    """The innermost element still open at the end of ``xml`` and its line (fault path only:
    a re-scan of the current person with a full element stack)."""
    stack: list[tuple[str, int]] = []
    parser = expat.ParserCreate(encoding="UTF-8")

    def start(name: str, _attributes: dict[str, str]) -> None:
        stack.append((name, parser.CurrentLineNumber + first_line - 1))

    def end(_name: str) -> None:
        stack.pop()

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        parser.Parse(xml, False)
    except expat.ExpatError:
        pass
    return stack[-1] if stack else None
