"""Streaming reader of the IPLOS export format 3.0 (formats §1) on ``xml.parsers.expat``.

Push parser: ``feed`` bytes as they are read and get back the events completed so far (one
``Header`` when ``Personer`` starts, then one ``PersonRecord`` per ``Person``). Memory holds
the header and the current person, never the file.

Why it looks the way it does:
- The header (a few elements) is built as a small tree and validated field by field.
- Person data is not interpreted (formats §1), so instead of re-serialising it from parser
  events, the reader slices the person's bytes out of the stream, which it has re-encoded as
  UTF-8 itself. Per element it then only counts depth: Python work per event is what bounds
  the speed on 100 000 persons.
- Any DOCTYPE is refused at its first byte, so no entity (expansion bomb) or external resource
  is ever declared, let alone loaded.
- Faults are exceptions raised from the handlers, so the first fault in file order wins.
"""

from __future__ import annotations

import codecs
import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple
from xml.parsers import expat

from . import clear_part, faults
from .identifiers import fnr_check_digits_ok

SUPPORTED_VERSION = "3.0"
ROOT = "IPLOS"

# Children of each header element in the order of formats §1; True = required.
_HEADER_CHILDREN: dict[str, tuple[tuple[str, bool], ...]] = {
    "IPLOS": (
        ("Meldingstype", True),
        ("Avsender", True),
        ("Mottaker", True),
        ("Uttak", True),
        ("Personer", True),
    ),
    "Avsender": (
        ("Kommunenummer", True),
        ("Bydelsnummer", True),
        ("Organisasjonsnummer", True),
        ("Navn", False),
        ("Fagsystem", False),
    ),
    "Mottaker": (("Navn", True), ("Organisasjonsnummer", False)),
    "Uttak": (("Dato", True), ("PeriodeFra", True), ("PeriodeTil", True)),
}
_ATTRIBUTES_ALLOWED = {"Fagsystem": frozenset({"navn", "versjon"})}

_ENCODINGS = {  # codec name -> how the user knows it; formats §1 lists these
    "utf-8": "UTF-8",
    "utf-16": "UTF-16",
    "utf-16-le": "UTF-16",
    "utf-16-be": "UTF-16",
    "latin-1": "ISO-8859-1",
    "iso8859-1": "ISO-8859-1",
    "cp1252": "windows-1252",
    "ascii": "US-ASCII",
}
_DECLARATION_RE = re.compile(rb"""^<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_SNIFF_BYTES = 1024
# Indentation: whitespace holding a line break between '>' and '<'. A single space, as in
# <Navn> </Navn>, is data and stays.
_INDENTATION_RE = re.compile(rb">[ \t\r]*\n\s*<")


_END_TAG_NAME_RE = re.compile(rb"(?:</)?\s*([^\s>/]+)")  # expat points just after "</"
_TAG_NAME_RE = re.compile(rb"<([^\s>/]+)")
_LEADING_MISC_RE = re.compile(rb"(?:\s+|<!--.*?-->|<\?.*?\?>)*", re.DOTALL)
# The common shape of a person: <Person>, Fodselsnummer first with 11 digits, then data up to
# the first </Person> holding no comment, CDATA, processing instruction, nested Person or
# second Fodselsnummer (then that </Person> is the person's own end tag).
_FAST_PERSON_START_RE = re.compile(
    rb"(\s*+)<Person>\s*+(<Fodselsnummer>\s*+(\d{11})\s*+</Fodselsnummer>)"
)
_NOT_FAST_RE = re.compile(rb"<[!?]|<Person[\s/>]|</?Fodselsnummer[\s/>]")


@dataclass
class Node:
    """A header element: small, so kept whole for validation and for the clear copy."""

    name: str
    line: int
    attributes: list[tuple[str, str]] = field(default_factory=list)
    children: list[Node] = field(default_factory=list)
    text_parts: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.text_parts).strip()

    def child(self, name: str) -> Node | None:
        return next((c for c in self.children if c.name == name), None)

    def child_text(self, name: str) -> str:
        node = self.child(name)
        return node.text if node is not None else ""

    def to_xml(self) -> str:
        """Canonical serialisation: no comments, no indentation, trimmed leaf text."""
        attributes = "".join(f' {k}="{escape_attribute(v)}"' for k, v in self.attributes)
        if self.children:
            inner = "".join(c.to_xml() for c in self.children)
        else:
            inner = escape_text(self.text)
        if not inner:
            return f"<{self.name}{attributes}/>"
        return f"<{self.name}{attributes}>{inner}</{self.name}>"


def escape_text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escape_attribute(value: str) -> str:
    return (
        escape_text(value)
        .replace('"', "&quot;")
        .replace("\n", "&#10;")
        .replace("\r", "&#13;")
        .replace("\t", "&#9;")
    )


@dataclass(frozen=True)
class Sender:
    kommunenummer: str
    bydelsnummer: str
    organisasjonsnummer: str
    navn: str


@dataclass(frozen=True)
class Header:
    """Everything before ``Personer``; the first event the reader gives."""

    meldingstype: Node
    avsender: Node
    mottaker: Node
    uttak: Node
    # xmlns declarations on <IPLOS>, so a prefix used in person data stays declared in the
    # register's record, which is parsed on its own.
    namespace_declarations: tuple[tuple[str, str], ...] = ()

    @property
    def sender(self) -> Sender:
        return Sender(
            kommunenummer=self.avsender.child_text("Kommunenummer"),
            bydelsnummer=self.avsender.child_text("Bydelsnummer"),
            organisasjonsnummer=self.avsender.child_text("Organisasjonsnummer"),
            navn=self.avsender.child_text("Navn"),
        )


class PersonRecord(NamedTuple):
    """One person as read (a NamedTuple: made 100 000 times, it must be cheap to build)."""

    line: int  # where <Person> starts
    fodselsnummer_xml: bytes  # the Fodselsnummer element as it stood (UTF-8)
    fodselsnummer: str
    data_xml: bytes  # every other child of Person, UTF-8, without comments or indentation
    check_digits_ok: bool


Event = Header | PersonRecord


def _codec_for(raw_start: bytes) -> tuple[str, int]:
    """The codec of the document and how many BOM bytes to skip (formats §1 encodings)."""
    if raw_start.startswith(b"\xef\xbb\xbf"):
        return "utf-8", 3
    if raw_start.startswith(b"\xff\xfe"):
        return "utf-16-le", 2
    if raw_start.startswith(b"\xfe\xff"):
        return "utf-16-be", 2
    if raw_start.startswith(b"<\x00?\x00"):
        return "utf-16-le", 0
    if raw_start.startswith(b"\x00<\x00?"):
        return "utf-16-be", 0
    match = _DECLARATION_RE.match(raw_start)
    if not match:
        return "utf-8", 0
    declared = match.group(1).decode("ascii")
    try:
        codec = codecs.lookup(declared).name
    except LookupError:
        raise faults.unknown_encoding(declared) from None
    if codec not in _ENCODINGS:
        raise faults.unknown_encoding(declared)
    if codec.startswith("utf-16"):  # declared UTF-16 but no BOM and ASCII bytes: contradiction
        raise faults.bad_characters(1)
    return codec, 0


class IplosReader:
    """Push parser for one IPLOS export file; see the module docstring."""

    def __init__(self) -> None:
        self._pending = bytearray()  # bytes held back until the encoding is known
        self._decoder: codecs.IncrementalDecoder | None = None  # None: UTF-8 passes through
        self._started = False
        self._lines_decoded = 1
        self._parser = expat.ParserCreate(encoding="UTF-8")  # we hand it UTF-8, always
        self._parser.ordered_attributes = True
        self._parser.buffer_text = True
        self._parser.buffer_size = 1 << 16
        self._parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        self._parser.StartDoctypeDeclHandler = self._refuse_doctype
        self._use_header_handlers()
        # UTF-8 bytes given to expat that a later event may still slice from.
        self._buffer = bytearray()
        self._buffer_offset = 0  # absolute offset of _buffer[0]
        self._fed = 0
        self._last_event_index = 0
        self._events: list[Event] = []
        # header phase
        self._stack: list[Node] = []
        self._root_line = 1
        self._namespaces: tuple[tuple[str, str], ...] = ()
        self.header: Header | None = None
        self._personer_line = 0
        # person phase: expat validates with no handlers; persons are cut from the bytes
        self._mode = "header"  # header -> persons -> after -> done
        self._scan_pos = 0  # absolute index of the next unprocessed byte in the person phase
        self._scan_line = 1  # line number at _scan_pos
        self.persons = 0
        self.bytes_read = 0
        self.bad_check_digit_lines: list[int] = []

    # --- public API -------------------------------------------------------------------------

    def feed(self, chunk: bytes) -> list[Event]:
        """Parse the next bytes of the file; return the events they completed."""
        self.bytes_read += len(chunk)
        if not self._started:
            self._pending += chunk
            if len(self._pending) < _SNIFF_BYTES:
                return []
            chunk = self._start()
        self._parse(self._to_utf8(chunk, final=False), final=False)
        return self._take_events()

    def close(self) -> list[Event]:
        """Signal the end of the file; raise if the document is incomplete."""
        if not self._started:
            chunk = self._start()
            self._parse(self._to_utf8(chunk, final=False), final=False)
        self._parse(self._to_utf8(b"", final=True), final=True)
        if self.header is None and not self._stack:
            raise faults.RootNotIplos()
        return self._take_events()

    # --- bytes in ---------------------------------------------------------------------------

    def _start(self) -> bytes:
        self._started = True
        raw = bytes(self._pending)
        self._pending = bytearray()
        codec, bom = _codec_for(raw[:_SNIFF_BYTES])
        if codec != "utf-8":
            self._decoder = codecs.getincrementaldecoder(codec)("strict")
        return raw[bom:]

    def _to_utf8(self, chunk: bytes, final: bool) -> bytes:
        if self._decoder is None:
            return chunk  # expat checks UTF-8 itself
        try:
            text = self._decoder.decode(chunk, final)
        except UnicodeDecodeError as error:
            good = error.object[: error.start]
            # decode the good prefix in a fresh decoder to count its lines
            raise faults.bad_characters(self._lines_decoded + _count_lines(good, error)) from None
        self._lines_decoded += text.count("\n")
        return text.encode("utf-8")

    def _parse(self, data: bytes, final: bool) -> None:
        self._buffer += data
        self._fed += len(data)
        try:
            self._parser.Parse(data, final)
        except expat.ExpatError as error:
            if self._mode != "header":  # faults earlier in the file come first
                self._scan(self._parser.ErrorByteIndex, final=False)
            raise self._translate(error) from None
        if self._mode != "header":
            self._scan(self._fed, final)
        self._trim_buffer()

    def _trim_buffer(self) -> None:
        keep_from = self._scan_pos if self._mode != "header" else self._last_event_index
        drop = keep_from - self._buffer_offset
        if drop > (1 << 20):  # trim in large steps: del is O(remaining)
            del self._buffer[:drop]
            self._buffer_offset = keep_from

    def _slice(self, start: int, end: int) -> bytes:
        return bytes(self._buffer[start - self._buffer_offset : end - self._buffer_offset])

    def _tag_end(self, index: int) -> int:
        """Absolute index just after the '>' of the tag that starts at ``index``."""
        relative = self._buffer.index(b">", index - self._buffer_offset)
        return relative + self._buffer_offset + 1

    def _take_events(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    # --- faults from expat ------------------------------------------------------------------

    def _translate(self, error: expat.ExpatError) -> faults.IplosFault:
        if error.code == _INVALID_TOKEN and self._bad_character_at(self._parser.ErrorByteIndex):
            return faults.bad_characters(error.lineno)
        if self.header is None and not self._stack:
            return faults.RootNotIplos() if error.code == _NO_ELEMENTS else _not_xml(error)
        if error.code == _TAG_MISMATCH:
            start_tag, start_line = self._open_element(self._parser.ErrorByteIndex)
            at = self._parser.ErrorByteIndex - self._buffer_offset
            match = _END_TAG_NAME_RE.match(bytes(self._buffer[at : at + 512]))
            end_tag = match.group(1).decode("utf-8", "replace") if match else "?"
            return faults.TagMismatch(start_tag, start_line, end_tag, error.lineno)
        if error.code in _TRUNCATION_CODES:
            tag, line = self._open_element(self._fed)
            return faults.truncated(tag, line)
        return _not_xml(error)

    def _bad_character_at(self, index: int) -> bool:
        """Is the byte expat stopped at not a character (bad UTF-8, a control character)?"""
        start = index - self._buffer_offset
        window = bytes(self._buffer[start : start + 4])
        if not window:
            return False
        if window[0] < 0x20 and window[0] not in b"\t\n\r":
            return True
        try:
            window.decode("utf-8")
        except UnicodeDecodeError as problem:
            return problem.start == 0 and problem.reason != "unexpected end of data"
        return False

    def _open_element(self, up_to: int) -> tuple[str, int]:
        """Innermost element open at ``up_to``: the header stack, or a re-scan of the person."""
        if self._stack:
            node = self._stack[-1]
            return node.name, node.line
        if self._mode == "persons":
            found = _innermost_open(self._slice(self._scan_pos, up_to), self._scan_line)
            return found or ("Personer", self._personer_line)
        return ROOT, self._root_line

    # --- handlers shared by all phases ----------------------------------------------------

    def _refuse_doctype(self, *_: object) -> None:
        raise faults.doctype_refused(self._parser.CurrentLineNumber)

    # --- header phase -----------------------------------------------------------------------

    def _use_header_handlers(self) -> None:
        self._parser.StartElementHandler = self._start_header
        self._parser.EndElementHandler = self._end_header
        self._parser.CharacterDataHandler = self._text_header

    def _start_header(self, name: str, attributes: list[str]) -> None:
        line = self._parser.CurrentLineNumber
        self._last_event_index = self._parser.CurrentByteIndex
        if not self._stack:
            if name != ROOT:
                raise faults.RootNotIplos()
            if _attribute(attributes, "versjon") != SUPPORTED_VERSION:
                raise faults.UnsupportedVersion()
            declared = zip(attributes[::2], attributes[1::2], strict=True)
            self._namespaces = tuple((k, v) for k, v in declared if k.split(":")[0] == "xmlns")
            self._stack.append(Node(name, line))
            self._root_line = line
            return
        parent = self._stack[-1]
        allowed = _HEADER_CHILDREN.get(parent.name)
        if allowed is None:  # a child inside a leaf field
            raise faults.unknown_element(name, line)
        names = [n for n, _ in allowed]
        if name not in names:
            raise faults.unknown_element(name, line)
        position = names.index(name)
        if parent.children and names.index(parent.children[-1].name) >= position:
            raise faults.misplaced_element(name, line)
        if name == "Personer":
            self._begin_persons(attributes, line)
            return
        permitted = _ATTRIBUTES_ALLOWED.get(name, frozenset())
        pairs = list(zip(attributes[::2], attributes[1::2], strict=True))
        if any(key not in permitted for key, _ in pairs):
            raise faults.unexpected_attribute(name, line)
        node = Node(name, line, pairs)
        parent.children.append(node)
        self._stack.append(node)

    def _text_header(self, text: str) -> None:
        node = self._stack[-1] if self._stack else None
        if node is None:
            return
        if node.name in _HEADER_CHILDREN:
            if text.strip():
                raise faults.unexpected_text(node.name, self._parser.CurrentLineNumber)
            return
        node.text_parts.append(text)

    def _end_header(self, name: str) -> None:
        self._last_event_index = self._parser.CurrentByteIndex
        node = self._stack.pop()
        if node.name in _HEADER_CHILDREN:
            _check_required(node, self._path(node))
        _check_value(node, self._path(node))
        if not self._stack:  # </IPLOS> without Personer
            _check_required(node, ROOT)

    def _path(self, node: Node) -> str:
        return "\\".join([n.name for n in self._stack] + [node.name])

    def _begin_persons(self, attributes: list[str], line: int) -> None:
        root = self._stack[0]
        _check_required(root, ROOT, before="Personer")
        if attributes:
            raise faults.unexpected_attribute("Personer", line)
        self.header = Header(
            meldingstype=_required_child(root, "Meldingstype"),
            avsender=_required_child(root, "Avsender"),
            mottaker=_required_child(root, "Mottaker"),
            uttak=_required_child(root, "Uttak"),
            namespace_declarations=self._namespaces,
        )
        root.children.append(Node("Personer", line))
        self._events.append(self.header)
        self._personer_line = line
        self._stack = []
        self._mode = "persons"
        tag_start = self._parser.CurrentByteIndex
        self._scan_pos = self._tag_end(tag_start)
        self._scan_line = line + self._slice(tag_start, self._scan_pos).count(b"\n")
        # From here expat only checks well-formedness, in C, with no Python call per element.
        self._parser.StartElementHandler = None
        self._parser.EndElementHandler = None
        self._parser.CharacterDataHandler = None

    # --- person phase: cutting persons out of validated bytes ------------------------------
    #
    # Everything up to ``limit`` has been parsed by expat without error, so it is well-formed
    # XML: '<' only ever starts markup, and the regular expressions below can find element
    # boundaries. The fast path takes the common shape of a person in one C-level match; any
    # other shape (attributes, comments, CDATA, Fodselsnummer not first, faults) is parsed by
    # a fresh expat parser with full handlers, which gives exact faults and line numbers.

    def _scan(self, limit: int, final: bool) -> None:
        buffer, offset = self._buffer, self._buffer_offset
        pos, end, line = self._scan_pos - offset, limit - offset, self._scan_line
        fast_start = _FAST_PERSON_START_RE.match
        forbidden = _NOT_FAST_RE.search
        find = buffer.find
        records = self._events
        bad_lines = self.bad_check_digit_lines
        count = buffer.count
        strip_indentation = _INDENTATION_RE.sub
        try:
            while self._mode == "persons":
                match = fast_start(buffer, pos, end)
                close = find(b"</Person>", match.end(), end) if match is not None else -1
                if (
                    close >= 0
                    and forbidden(buffer, match.end(), close) is None  # type: ignore[union-attr]
                    and count(b"<", match.end(), close) == count(b">", match.end(), close)  # type: ignore[union-attr]
                ):
                    assert match is not None
                    person_line = line + count(b"\n", pos, match.end(1))
                    number = match.group(3).decode("ascii")
                    ok = fnr_check_digits_ok(number)
                    if not ok:
                        bad_lines.append(person_line)
                    # From the '>' ending </Fodselsnummer> to the '<' starting </Person>, so
                    # indentation at both ends is matched too; the two bracket bytes go again.
                    data = strip_indentation(b"><", buffer[match.end() - 1 : close + 1])[1:-1]
                    records.append(PersonRecord(person_line, match.group(2), number, data, ok))
                    self.persons += 1
                    pos = close + 9  # len(b"</Person>")
                    line = person_line + count(b"\n", match.end(1), pos)
                    continue
                if match is not None and close < 0 and not final:
                    break  # the person's end has not been read yet
                step = self._scan_other(pos, end, line, final)
                if step is None:
                    break
                pos, line = step
            while self._mode == "after":
                step = self._scan_after_persons(pos, end, line)
                if step is None:
                    break
                pos, line = step
        finally:
            self._scan_pos, self._scan_line = pos + offset, line

    def _next_markup(self, pos: int, end: int, line: int, parent: str) -> tuple[int, int] | None:
        """Skip whitespace and comments; the next '<' and its line, or None if not read yet.

        Text there (not markup) is refused as text directly in ``parent``."""
        lead = _LEADING_MISC_RE.match(self._buffer, pos, end)
        after_misc = lead.end() if lead else pos
        if after_misc >= end:
            return None
        next_line = line + self._buffer.count(b"\n", pos, after_misc)
        if self._buffer[after_misc] != 0x3C:  # '<'
            raise faults.unexpected_text(parent, next_line)
        return after_misc, next_line

    def _scan_other(self, pos: int, end: int, line: int, final: bool) -> tuple[int, int] | None:
        """Anything but a fast-path person: the end of Personer, a fault, or the slow path."""
        buffer = self._buffer
        found = self._next_markup(pos, end, line, "Personer")
        if found is None:
            return None
        after_misc, next_line = found
        if buffer.startswith(b"</", after_misc):  # well-formed: this is </Personer>
            close = buffer.find(b">", after_misc, end)
            if close < 0:
                return None
            self._mode = "after"
            return close + 1, next_line + buffer.count(b"\n", after_misc, close)
        return self._slow_person(pos, end, line)

    def _scan_after_persons(self, pos: int, end: int, line: int) -> tuple[int, int] | None:
        """Between </Personer> and </IPLOS> only whitespace and comments may stand."""
        buffer = self._buffer
        found = self._next_markup(pos, end, line, ROOT)
        if found is None:
            return None
        after_misc, next_line = found
        if buffer.startswith(b"</", after_misc):  # </IPLOS>: expat checks the rest
            self._mode = "done"
            return after_misc, next_line
        name = _TAG_NAME_RE.match(buffer, after_misc, end)
        if name is None or name.end() >= end:
            return None
        raise _misplaced_or_unknown(name.group(1).decode("utf-8", "replace"), next_line)

    def _slow_person(self, pos: int, end: int, line: int) -> tuple[int, int] | None:
        """Parse the next person with full handlers; None when its end is not here yet."""
        segment = bytes(self._buffer[pos:end])
        found = _parse_person_segment(segment, line)
        if found is None:
            return None
        record, consumed = found
        if not record.check_digits_ok:
            self.bad_check_digit_lines.append(record.line)
        self._events.append(record)
        self.persons += 1
        return pos + consumed, line + segment.count(b"\n", 0, consumed)


# --- helpers ----------------------------------------------------------------------------------

_TAG_MISMATCH = expat.errors.codes[expat.errors.XML_ERROR_TAG_MISMATCH]
_INVALID_TOKEN = expat.errors.codes[expat.errors.XML_ERROR_INVALID_TOKEN]
_NO_ELEMENTS = expat.errors.codes[expat.errors.XML_ERROR_NO_ELEMENTS]
_TRUNCATION_CODES = frozenset(
    expat.errors.codes[e]
    for e in (
        expat.errors.XML_ERROR_NO_ELEMENTS,
        expat.errors.XML_ERROR_UNCLOSED_TOKEN,
        expat.errors.XML_ERROR_PARTIAL_CHAR,
        expat.errors.XML_ERROR_UNCLOSED_CDATA_SECTION,
    )
)


def _not_xml(error: expat.ExpatError) -> faults.MalformedData:
    return faults.not_xml(error.lineno, error.offset + 1)


def _count_lines(good: bytes, error: UnicodeDecodeError) -> int:
    try:
        return good.decode(error.encoding, "replace").count("\n")
    except LookupError:
        return 0


def _attribute(attributes: list[str], name: str) -> str | None:
    for index in range(0, len(attributes), 2):
        if attributes[index] == name:
            return attributes[index + 1]
    return None


def _misplaced_or_unknown(name: str, line: int) -> faults.MalformedData:
    if any(name == n for n, _ in _HEADER_CHILDREN[ROOT]):
        return faults.misplaced_element(name, line)
    return faults.unknown_element(name, line)


def _required_child(node: Node, name: str) -> Node:
    child = node.child(name)
    assert child is not None, name  # _check_required ran first
    return child


def _check_required(node: Node, path: str, before: str | None = None) -> None:
    """Raise for the first required child (in the listed order) that ``node`` lacks."""
    for name, required in _HEADER_CHILDREN[node.name]:
        if name == before:
            return
        if required and node.child(name) is None:
            raise faults.MissingElement(f"{path}\\{name}")


def _is_date(value: str) -> bool:
    if len(value) != 10:
        return False
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


# The fields copied into the encrypted file's clear part have their rules in clear_part (the
# send module checks the same ones); the rest are checked here.
_VALUE_RULES: dict[str, tuple[Callable[[str], bool], str]] = {
    "Dato": (_is_date, "må være en dato på formen ÅÅÅÅ-MM-DD"),
    "PeriodeFra": (_is_date, "må være en dato på formen ÅÅÅÅ-MM-DD"),
    "PeriodeTil": (_is_date, "må være en dato på formen ÅÅÅÅ-MM-DD"),
}


def _check_value(node: Node, path: str) -> None:
    clear_part.check_header_field(path, node.name, node.line, node.text, node.attributes)
    rule = _VALUE_RULES.get(node.name)
    if rule is not None and not rule[0](node.text):
        raise faults.invalid_value(node.name, node.line, rule[1])
    if node.name == "Uttak" and node.child_text("PeriodeFra") > node.child_text("PeriodeTil"):
        raise faults.invalid_value("PeriodeFra", node.line, "er etter PeriodeTil")


def _innermost_open(xml: bytes, first_line: int) -> tuple[str, int] | None:
    """Re-scan a segment's bytes with a full element stack (only on the fault path)."""
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


class _SegmentDone(Exception):
    pass


class _PersonSegment:
    """One person parsed with full handlers: the reader's exact (and slow) path.

    What is left out of the register's record is found from expat's events as byte ranges:
    the Fodselsnummer element, comments, processing instructions, and indentation (text nodes
    of whitespace only, holding a line break, outside CDATA).
    """

    def __init__(self, segment: bytes, first_line: int) -> None:
        self.segment = segment
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

    def _line(self) -> int:
        return self.first_line + self.parser.CurrentLineNumber - 1

    def _fnr_open(self) -> bool:
        return self.fnr_start >= 0 and self.fnr_end_tag < 0

    def _close_text(self) -> None:
        """Markup follows: drop the text node before it if it is indentation."""
        if self.text_start >= 0 and self.text_blank and self.depth >= 1:
            end = self.parser.CurrentByteIndex
            raw = self.segment[self.text_start : end]
            if raw.isspace() and b"\n" in raw:
                self.removed.append((self.text_start, end))
        self.text_start = -1
        self.text_blank = True

    def _start(self, name: str, attributes: list[str]) -> None:
        self._close_text()
        if self.depth == 0:
            if name != "Person":
                raise faults.unknown_element(name, self._line())
            if attributes:
                raise faults.unexpected_attribute(name, self._line())
            self.person_line = self._line()
            self.person_start = self.parser.CurrentByteIndex
        elif self._fnr_open():
            raise faults.unknown_element(name, self._line())
        elif name == "Person":
            raise faults.misplaced_element(name, self._line())
        elif self.depth == 1 and name == "Fodselsnummer":
            if self.fnr_start >= 0:
                raise faults.misplaced_element(name, self._line())
            self.fnr_start = self.parser.CurrentByteIndex
            self.fnr_line = self._line()
            self.fnr_text = []
        self.depth += 1

    def _end(self, name: str) -> None:
        self._close_text()
        self.depth -= 1
        if self.depth == 1 and name == "Fodselsnummer" and self._fnr_open():
            self.fnr_end_tag = self.parser.CurrentByteIndex
            number = "".join(self.fnr_text or []).strip()
            self.fnr_text = None
            if len(number) != 11 or not number.isascii() or not number.isdigit():
                raise faults.invalid_value("Fodselsnummer", self.fnr_line, "må ha 11 siffer")
            self.number = number
            close = self.segment.index(b">", self.fnr_end_tag) + 1
            self.removed.append((self.fnr_start, close))
        elif self.depth == 0:
            self.person_end = self.parser.CurrentByteIndex
            raise _SegmentDone()

    def _text(self, text: str) -> None:
        if self.fnr_text is not None:
            self.fnr_text.append(text)
        elif self.depth == 0:
            if text.strip():
                raise faults.unexpected_text("Personer", self._line())
            return
        if self.text_start < 0:
            self.text_start = self.parser.CurrentByteIndex
        if self.in_cdata or not text.isspace():
            self.text_blank = False

    def _comment(self, _data: str) -> None:
        self._close_text()
        start = self.parser.CurrentByteIndex
        if self.depth >= 1:
            self.removed.append((start, self.segment.index(b"-->", start + 4) + 3))

    def _processing_instruction(self, _target: str, _data: str) -> None:
        self._close_text()
        start = self.parser.CurrentByteIndex
        if self.depth >= 1:
            self.removed.append((start, self.segment.index(b"?>", start + 2) + 2))

    def _start_cdata(self) -> None:
        if self.text_start < 0:
            self.text_start = self.parser.CurrentByteIndex
        self.text_blank = False  # a CDATA section is data, whatever it holds
        self.in_cdata = True

    def _end_cdata(self) -> None:
        self.in_cdata = False

    def parse(self) -> tuple[PersonRecord, int] | None:
        try:
            self.parser.Parse(self.segment, False)
        except _SegmentDone:
            return self._record()
        except expat.ExpatError as error:  # cannot happen on validated bytes; be safe
            raise faults.not_xml(self.first_line + error.lineno - 1, error.offset + 1) from None
        return None

    def _record(self) -> tuple[PersonRecord, int]:
        segment = self.segment
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


def _parse_person_segment(segment: bytes, first_line: int) -> tuple[PersonRecord, int] | None:
    return _PersonSegment(segment, first_line).parse()
