"""The header phase of the IPLOS reader: everything before ``Personer`` (formats §1).

A few elements, so expat calls Python for each of them; they are built into a small tree of
``Node`` and checked field by field as they end: order, required children, attributes, stray
text, and the form of each value. When ``Personer`` starts, the ``Header`` is complete and the
handlers are taken off again: the persons are not read this way (reader_persons.py).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from xml.parsers import expat

from . import clear_part, faults
from .reader_events import Header, Node
from .reader_window import ByteWindow

SUPPORTED_VERSION = "3.0"
ROOT = "IPLOS"
PERSONER = "Personer"

# Children of each header element in the order of formats §1; True = required.
HEADER_CHILDREN: dict[str, tuple[tuple[str, bool], ...]] = {
    ROOT: (
        ("Meldingstype", True),
        ("Avsender", True),
        ("Mottaker", True),
        ("Uttak", True),
        (PERSONER, True),
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

# A start or end tag, attribute values quoted (a '>' may stand inside them), then whatever may
# stand before text without being text: whitespace, comments, processing instructions.
_TAG_RE = re.compile(rb"<[^>\"']*+(?:(?:\"[^\"]*+\"|'[^']*+')[^>\"']*+)*+>")
_NOT_TEXT_RE = re.compile(rb"(?:\s++|<!--.*?-->|<\?.*?\?>)*+", re.DOTALL)


def _is_date(value: str) -> bool:
    if len(value) != 10:
        return False
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


_DATE = (_is_date, "må være en dato på formen ÅÅÅÅ-MM-DD")
# The fields copied into the encrypted file's clear part have their rules in clear_part (the
# send module checks the same ones); the rest are checked here.
_VALUE_RULES: dict[str, tuple[Callable[[str], bool], str]] = {
    "IPLOS\\Uttak\\Dato": _DATE,
    "IPLOS\\Uttak\\PeriodeFra": _DATE,
    "IPLOS\\Uttak\\PeriodeTil": _DATE,
}


class HeaderPhase:
    """expat handlers for the header; calls ``on_personer`` once ``<Personer>`` is read."""

    def __init__(
        self,
        parser: expat.XMLParserType,
        window: ByteWindow,
        on_personer: Callable[[Header, int, int], None],
    ) -> None:
        self._parser = parser
        self._window = window
        self._on_personer = on_personer
        self.stack: list[Node] = []
        self.root_line = 1
        self._namespaces: tuple[tuple[str, str], ...] = ()
        # Byte index and line of the last element event: the window keeps its bytes, and a
        # stray text's line is counted from there (expat reports buffered text late).
        self.last_event_index = 0
        self._last_event_line = 1
        parser.StartElementHandler = self._start
        parser.EndElementHandler = self._end
        parser.CharacterDataHandler = self._text

    def _start(self, name: str, attributes: list[str]) -> None:
        line = self._mark_event()
        if not self.stack:
            self._start_root(name, attributes, line)
            return
        parent = self.stack[-1]
        allowed = HEADER_CHILDREN.get(parent.name)
        if allowed is None:  # a child inside a leaf field
            raise faults.unknown_element(name, line)
        names = [n for n, _ in allowed]
        if name not in names:
            raise faults.unknown_element(name, line)
        if parent.children and names.index(parent.children[-1].name) >= names.index(name):
            raise faults.misplaced_element(name, line)
        if name == PERSONER:
            self._start_personer(attributes, line)
            return
        permitted = _ATTRIBUTES_ALLOWED.get(name, frozenset())
        pairs = list(zip(attributes[::2], attributes[1::2], strict=True))
        if any(key not in permitted for key, _ in pairs):
            raise faults.unexpected_attribute(name, line)
        node = Node(name, line, pairs)
        parent.children.append(node)
        self.stack.append(node)

    def _start_root(self, name: str, attributes: list[str], line: int) -> None:
        if name != ROOT:
            raise faults.RootNotIplos()
        pairs = list(zip(attributes[::2], attributes[1::2], strict=True))
        if dict(pairs).get("versjon") != SUPPORTED_VERSION:
            raise faults.UnsupportedVersion()
        self._namespaces = tuple((k, v) for k, v in pairs if k.split(":")[0] == "xmlns")
        self.stack.append(Node(name, line))
        self.root_line = line

    def _text(self, text: str) -> None:
        node = self.stack[-1]  # expat itself refuses text outside the root element
        if node.name not in HEADER_CHILDREN:
            node.text_parts.append(text)
        elif text.strip():
            raise faults.unexpected_text(node.name, self._stray_text_line())

    def _end(self, _name: str) -> None:
        self._mark_event()
        node = self.stack.pop()
        path = "\\".join([n.name for n in self.stack] + [node.name])
        if node.name in HEADER_CHILDREN:
            _check_required(node, path)
        clear_part.check_header_field(path, node.name, node.line, node.text, node.attributes)
        rule = _VALUE_RULES.get(path)
        if rule is not None and not rule[0](node.text):
            raise faults.invalid_value(node.name, node.line, rule[1])
        if path == "IPLOS\\Uttak\\PeriodeTil":
            # Reported on PeriodeFra's line: the message names PeriodeFra (docs/formater.md).
            start = self.stack[-1].child("PeriodeFra")
            if start is not None and start.text > node.text:
                raise faults.invalid_value("PeriodeFra", start.line, "er etter PeriodeTil")

    def _start_personer(self, attributes: list[str], line: int) -> None:
        root = self.stack[0]
        _check_required(root, ROOT, before=PERSONER)
        if attributes:
            raise faults.unexpected_attribute(PERSONER, line)
        header = Header(
            meldingstype=_required_child(root, "Meldingstype"),
            avsender=_required_child(root, "Avsender"),
            mottaker=_required_child(root, "Mottaker"),
            uttak=_required_child(root, "Uttak"),
            namespace_declarations=self._namespaces,
        )
        root.children.append(Node(PERSONER, line))
        self.stack = []
        release(self._parser)
        self._on_personer(header, self._parser.CurrentByteIndex, line)

    def _mark_event(self) -> int:
        self.last_event_index = self._parser.CurrentByteIndex
        self._last_event_line = self._parser.CurrentLineNumber
        return self._last_event_line

    def _stray_text_line(self) -> int:
        """The line of the first character of text after the last tag (not where expat is)."""
        data, offset = self._window.data, self._window.offset
        position = self.last_event_index - offset
        # A start or end tag's event points at its '<'; an empty element's end, past its '/>'.
        if data.startswith(b"<", position) and not data.startswith((b"<!", b"<?"), position):
            tag = _TAG_RE.match(data, position)
            assert tag is not None  # the tag of the last event, already parsed
            position = tag.end()
        text = _NOT_TEXT_RE.match(data, position)
        assert text is not None  # the pattern matches the empty string
        return self._last_event_line + data.count(b"\n", self.last_event_index - offset, text.end())


def release(parser: expat.XMLParserType) -> None:
    """The header is over: from here expat only checks well-formedness, in C, with no Python
    call per element."""
    parser.StartElementHandler = None
    parser.EndElementHandler = None
    parser.CharacterDataHandler = None


def _required_child(node: Node, name: str) -> Node:
    child = node.child(name)
    assert child is not None, name  # _check_required ran first
    return child


def _check_required(node: Node, path: str, before: str | None = None) -> None:
    """Raise for the first required child (in the listed order) that ``node`` lacks."""
    for name, required in HEADER_CHILDREN[node.name]:
        if name == before:
            return
        if required and node.child(name) is None:
            raise faults.MissingElement(f"{path}\\{name}")


def misplaced_or_unknown(name: str, line: int) -> faults.MalformedData:
    """An element where the header is over: a header element again, or an unknown one."""
    if any(name == n for n, _ in HEADER_CHILDREN[ROOT]):
        return faults.misplaced_element(name, line)
    return faults.unknown_element(name, line)
