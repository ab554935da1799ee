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
from xml.parsers import expat

from . import faults
from .identifiers import fnr_check_digits_ok, orgnr_ok

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
_INDENTATION_RE = re.compile(rb">\s+<")
_COMMENT_OR_PI_RE = re.compile(rb"<!--.*?-->|<\?.*?\?>", re.DOTALL)
_END_TAG_NAME_RE = re.compile(rb"</\s*([^\s>/]+)")


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

    @property
    def sender(self) -> Sender:
        return Sender(
            kommunenummer=self.avsender.child_text("Kommunenummer"),
            bydelsnummer=self.avsender.child_text("Bydelsnummer"),
            organisasjonsnummer=self.avsender.child_text("Organisasjonsnummer"),
            navn=self.avsender.child_text("Navn"),
        )


@dataclass(frozen=True)
class PersonRecord:
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
        self._parser.CommentHandler = self._note_comment
        self._parser.ProcessingInstructionHandler = self._note_processing_instruction
        self._use_header_handlers()
        # UTF-8 bytes given to expat that a later event may still slice from.
        self._buffer = bytearray()
        self._buffer_offset = 0  # absolute offset of _buffer[0]
        self._fed = 0
        self._last_event_index = 0
        self._events: list[Event] = []
        # header phase
        self._stack: list[Node] = []
        self.header: Header | None = None
        self._personer_line = 0
        # person phase
        self._depth = 0
        self._person_start = -1
        self._person_line = 0
        self._person_has_markup = False
        self._fnr_start = -1
        self._fnr_end = -1
        self._fnr_line = 0
        self._fnr_text: list[str] = []
        self._finished = False
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
            raise self._translate(error) from None
        self._trim_buffer()

    def _trim_buffer(self) -> None:
        keep_from = self._person_start if self._person_start >= 0 else self._last_event_index
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
        if self.header is None and not self._stack:
            return faults.RootNotIplos() if error.code == _NO_ELEMENTS else _not_xml(error)
        if error.code == _TAG_MISMATCH:
            start_tag, start_line = self._open_element(self._parser.ErrorByteIndex)
            at = self._parser.ErrorByteIndex - self._buffer_offset
            match = _END_TAG_NAME_RE.match(bytes(self._buffer[at : at + 512]))
            end_tag = match.group(1).decode("utf-8", "replace") if match else "?"
            return faults.TagMismatch(start_tag, start_line, end_tag, error.lineno)
        if error.code in _TRUNCATION_CODES and self._fed_everything():
            tag, line = self._open_element(self._fed)
            return faults.truncated(tag, line)
        return _not_xml(error)

    def _fed_everything(self) -> bool:
        return self._decoder is None or True

    def _open_element(self, up_to: int) -> tuple[str, int]:
        """Innermost element open at ``up_to``: the header stack, or a re-scan of the person."""
        if self._stack:
            node = self._stack[-1]
            return node.name, node.line
        if self._person_start >= 0:
            return _innermost_open(self._slice(self._person_start, up_to), self._person_line)
        if self._depth >= 2:
            return "Personer", self._personer_line
        return ROOT, 1

    # --- handlers shared by all phases ----------------------------------------------------

    def _refuse_doctype(self, *_: object) -> None:
        raise faults.doctype_refused(self._parser.CurrentLineNumber)

    def _note_comment(self, _data: str) -> None:
        self._person_has_markup = True

    def _note_processing_instruction(self, _target: str, _data: str) -> None:
        self._person_has_markup = True

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
            self._stack.append(Node(name, line))
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
        )
        root.children.append(Node("Personer", line))
        self._events.append(self.header)
        self._personer_line = line
        self._stack = []
        self._depth = 2
        self._parser.StartElementHandler = self._start_persons
        self._parser.EndElementHandler = self._end_persons
        self._parser.CharacterDataHandler = None

    # --- person phase: depth counting and byte slicing --------------------------------------

    def _start_persons(self, name: str, attributes: list[str]) -> None:
        depth = self._depth
        self._depth = depth + 1
        if depth == 3:
            if name == "Fodselsnummer":
                self._begin_fnr()
            return
        if depth > 3:
            if self._fnr_end < 0 <= self._fnr_start:  # an element inside Fodselsnummer
                raise faults.unknown_element(name, self._parser.CurrentLineNumber)
            return
        line = self._parser.CurrentLineNumber
        if depth == 1:  # after </Personer>
            raise _misplaced_or_unknown(name, line)
        if name != "Person":
            raise faults.unknown_element(name, line)
        if attributes:
            raise faults.unexpected_attribute(name, line)
        self._person_start = self._parser.CurrentByteIndex
        self._person_line = line
        self._person_has_markup = False
        self._fnr_start = self._fnr_end = -1

    def _begin_fnr(self) -> None:
        line = self._parser.CurrentLineNumber
        if self._fnr_start >= 0:
            raise faults.misplaced_element("Fodselsnummer", line)
        self._fnr_start = self._parser.CurrentByteIndex
        self._fnr_line = line
        self._fnr_text = []
        self._parser.CharacterDataHandler = self._fnr_text.append

    def _end_persons(self, _name: str) -> None:
        depth = self._depth - 1
        self._depth = depth
        if depth == 3 and self._fnr_start >= 0 and self._fnr_end < 0:
            self._end_fnr()
        elif depth == 2:
            self._end_person()
        elif depth == 1:
            self._last_event_index = self._parser.CurrentByteIndex
            self._parser.StartElementHandler = self._start_persons  # only errors from here
            self._parser.CharacterDataHandler = self._text_after_persons
        elif depth == 0:
            self._finished = True

    def _end_fnr(self) -> None:
        self._parser.CharacterDataHandler = None
        self._fnr_end = self._tag_end(self._parser.CurrentByteIndex)
        number = "".join(self._fnr_text).strip()
        if len(number) != 11 or not number.isascii() or not number.isdigit():
            raise faults.invalid_value("Fodselsnummer", self._fnr_line, "må ha 11 siffer")

    def _end_person(self) -> None:
        end = self._parser.CurrentByteIndex
        self._last_event_index = end
        if self._fnr_start < 0:
            raise faults.MissingElement("IPLOS\\Personer\\Person\\Fodselsnummer")
        start = self._person_start
        after_start_tag = self._tag_end(start)
        data = self._slice(after_start_tag, self._fnr_start) + self._slice(self._fnr_end, end)
        if self._person_has_markup:
            data = _COMMENT_OR_PI_RE.sub(b"", data)
        number = "".join(self._fnr_text).strip()
        record = PersonRecord(
            line=self._person_line,
            fodselsnummer_xml=self._slice(self._fnr_start, self._fnr_end),
            fodselsnummer=number,
            data_xml=_INDENTATION_RE.sub(b"><", data).strip(),
            check_digits_ok=fnr_check_digits_ok(number),
        )
        if not record.check_digits_ok:
            self.bad_check_digit_lines.append(record.line)
        self.persons += 1
        self._events.append(record)
        self._person_start = -1
        self._fnr_text = []

    def _text_after_persons(self, text: str) -> None:
        if text.strip():
            raise faults.unexpected_text(ROOT, self._parser.CurrentLineNumber)


# --- helpers ----------------------------------------------------------------------------------

_TAG_MISMATCH = expat.errors.codes[expat.errors.XML_ERROR_TAG_MISMATCH]
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


def _digits(count: int) -> Callable[[str], bool]:
    return lambda value: len(value) == count and value.isascii() and value.isdigit()


def _is_date(value: str) -> bool:
    if len(value) != 10:
        return False
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


_VALUE_RULES: dict[str, tuple[Callable[[str], bool], str]] = {
    "Kommunenummer": (_digits(4), "må ha fire siffer"),
    "Bydelsnummer": (_digits(2), "må ha to siffer (00 for hele kommunen)"),
    "Organisasjonsnummer": (orgnr_ok, "må være et organisasjonsnummer med ni siffer og riktig "
                            "kontrollsiffer"),
    "Dato": (_is_date, "må være en dato på formen ÅÅÅÅ-MM-DD"),
    "PeriodeFra": (_is_date, "må være en dato på formen ÅÅÅÅ-MM-DD"),
    "PeriodeTil": (_is_date, "må være en dato på formen ÅÅÅÅ-MM-DD"),
    "Meldingstype": (bool, "kan ikke være tomt"),
}


def _check_value(node: Node, path: str) -> None:
    rule = _VALUE_RULES.get(node.name)
    if rule is None and node.name == "Navn" and path.startswith("IPLOS\\Mottaker"):
        rule = (bool, "kan ikke være tomt")
    if rule is not None and not rule[0](node.text):
        raise faults.invalid_value(node.name, node.line, rule[1])
    if node.name == "Uttak" and node.child_text("PeriodeFra") > node.child_text("PeriodeTil"):
        raise faults.invalid_value("PeriodeFra", node.line, "er etter PeriodeTil")


def _innermost_open(xml: bytes, first_line: int) -> tuple[str, int]:
    """Re-scan a person's bytes with a full element stack (only on the fault path)."""
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
    return stack[-1] if stack else ("Person", first_line)
