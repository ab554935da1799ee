"""What the IPLOS reader gives: the ``Header`` (with its small element tree) and one
``PersonRecord`` per person, and the escaping used to write header elements out again."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple


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
