"""What may stand in the clear part of an encrypted message: one rule per value (formats §3).

The clear part (Meldingstype, Avsender, Mottaker and the TPF key's name) is read by the send
module, kept in its storage and seen by everyone who handles the file, so what a value may
contain is fixed here, not only its shape: every value is bounded, drawn from a small
character class, holds at most ten digits (so no 11-digit number fits, however it is spaced),
and no value may hold an 11-digit number that passes the fødselsnummer check (D-, H- and
synthetic numbers included). The same rules are used on both sides: by the IPLOS reader for the
header fields the encryption module copies into the clear part (so it never writes a file the
send module would refuse), and by the envelope reader (ipis_core.envelope). The XSD
(xsd/iplos-felles.xsd) states the same patterns; tests check both on the same vectors.

Standard library only: this runs in the page too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .faults import FodselsnummerInClearField, InvalidValue
from .identifiers import fnr_check_digits_ok, orgnr_ok

MAX_DIGITS = 10  # per value: one fewer than a fødselsnummer has

# Letters of the Latin script (basic, Latin-1, Extended-A and -B: Norwegian, Sámi, Nordic and
# most European names), ASCII digits, the space, and the punctuation names use. No control
# characters, no other scripts' digits (which could spell a number unseen), no symbols.
_NAME_CLASS = (
    "A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f0-9 .,;:'\u2019\"()&/+\\-\u2013\u2014"
)
_CODE_CLASS = "A-Za-z0-9_\\-"
_VERSION_CLASS = "A-Za-z0-9 ._\\-()"
_KEY_NAME_CLASS = "A-Za-z0-9._\\-"

# Digits possibly spaced or punctuated as people write a fødselsnummer: 010190 12345.
_DIGIT_RUN = re.compile(r"[0-9](?:[ .\-/]?[0-9]){10,}")


def holds_fodselsnummer(value: str) -> bool:
    """True when any 11 consecutive digits in ``value`` (spaces, dots, dashes and slashes
    between digits ignored) pass the fødselsnummer check."""
    for match in _DIGIT_RUN.finditer(value):
        digits = re.sub(r"[^0-9]", "", match.group())
        for start in range(len(digits) - 10):
            if fnr_check_digits_ok(digits[start : start + 11]):
                return True
    return False


@dataclass(frozen=True)
class ValueRule:
    """A bounded, patterned value. ``expected`` completes "Feltet X på linje N …" (one clause,
    no full stop, never the value itself)."""

    name: str
    characters: str  # a regular-expression character class body
    min_length: int
    max_length: int
    expected: str
    max_digits: int = MAX_DIGITS

    def __post_init__(self) -> None:
        object.__setattr__(self, "_pattern", re.compile(f"[{self.characters}]*"))

    def accepts(self, value: str) -> bool:
        if not self.min_length <= len(value) <= self.max_length:
            return False
        if not self._pattern.fullmatch(value):  # type: ignore[attr-defined]
            return False
        return sum(c.isascii() and c.isdigit() for c in value) <= self.max_digits

    def explain(self, value: str) -> str:
        """The clause for a refused ``value`` (the same text the reader has always used for an
        empty required field)."""
        return EMPTY if not value and self.min_length else self.expected


@dataclass(frozen=True)
class DigitsRule:
    """An identifier of exactly ``length`` ASCII digits, with an optional check."""

    name: str
    length: int
    expected: str
    check_orgnr: bool = False

    def accepts(self, value: str) -> bool:
        if len(value) != self.length or not value.isascii() or not value.isdigit():
            return False
        return orgnr_ok(value) if self.check_orgnr else True

    def explain(self, _value: str) -> str:
        return self.expected


Rule = ValueRule | DigitsRule

EMPTY = "kan ikke være tomt"

_NAME_EXPECTED = (
    "kan ha høyst {n} tegn: bokstaver, mellomrom, vanlige skilletegn og høyst ti siffer"
)

KOMMUNENUMMER = DigitsRule("Kommunenummer", 4, "må ha fire siffer")
BYDELSNUMMER = DigitsRule("Bydelsnummer", 2, "må ha to siffer (00 for hele kommunen)")
ORGANISASJONSNUMMER = DigitsRule(
    "Organisasjonsnummer",
    9,
    "må være et organisasjonsnummer med ni siffer og riktig kontrollsiffer",
    check_orgnr=True,
)
MELDINGSTYPE = ValueRule(
    "Meldingstype",
    _CODE_CLASS,
    1,
    30,
    "kan ha høyst 30 tegn: bokstaver, bindestrek, understrek og høyst ti siffer",
)
AVSENDER_NAVN = ValueRule("Navn", _NAME_CLASS, 0, 150, _NAME_EXPECTED.format(n=150))
MOTTAKER_NAVN = ValueRule("Navn", _NAME_CLASS, 1, 150, _NAME_EXPECTED.format(n=150))
FAGSYSTEM_NAVN = ValueRule(
    "navn",
    _NAME_CLASS,
    0,
    60,
    "har attributtet navn, som " + _NAME_EXPECTED.format(n=60),
)
FAGSYSTEM_VERSJON = ValueRule(
    "versjon",
    _VERSION_CLASS,
    0,
    30,
    "har attributtet versjon, som kan ha høyst 30 tegn: bokstaver, mellomrom, punktum, "
    "bindestrek, understrek, parenteser og høyst ti siffer",
)
FAGSYSTEM_TEXT = ValueRule(
    "Fagsystem",
    " ",
    0,
    0,
    "skal være tomt; fagsystemet oppgis i attributtene navn og versjon",
)
KEY_NAME = ValueRule(
    "ds:KeyName",
    _KEY_NAME_CLASS,
    1,
    64,
    "kan ha høyst 64 tegn: bokstaver, punktum, bindestrek, understrek og høyst ti siffer",
)

# The header fields of the IPLOS export that the encryption module copies into the clear
# part, by their path in the export (the reader's names) and in the envelope.
HEADER_FIELDS: dict[str, Rule] = {
    "IPLOS\\Meldingstype": MELDINGSTYPE,
    "IPLOS\\Avsender\\Kommunenummer": KOMMUNENUMMER,
    "IPLOS\\Avsender\\Bydelsnummer": BYDELSNUMMER,
    "IPLOS\\Avsender\\Organisasjonsnummer": ORGANISASJONSNUMMER,
    "IPLOS\\Avsender\\Navn": AVSENDER_NAVN,
    "IPLOS\\Avsender\\Fagsystem": FAGSYSTEM_TEXT,
    "IPLOS\\Mottaker\\Navn": MOTTAKER_NAVN,
    "IPLOS\\Mottaker\\Organisasjonsnummer": ORGANISASJONSNUMMER,
}
HEADER_ATTRIBUTES: dict[tuple[str, str], Rule] = {
    ("IPLOS\\Avsender\\Fagsystem", "navn"): FAGSYSTEM_NAVN,
    ("IPLOS\\Avsender\\Fagsystem", "versjon"): FAGSYSTEM_VERSJON,
}


def _check(rule: Rule, value: str, tag: str, line: int, attribute: str = "") -> None:
    if holds_fodselsnummer(value):
        raise FodselsnummerInClearField(tag, line, attribute)
    if not rule.accepts(value):
        raise InvalidValue(tag, line, rule.explain(value))


def check_header_field(
    path: str, tag: str, line: int, text: str, attributes: list[tuple[str, str]]
) -> None:
    """The IPLOS reader's check of a header field the encryption module copies into the clear
    part: the same rules as the send module's, with the reader's messages (element, line)."""
    rule = HEADER_FIELDS.get(path)
    if rule is not None:
        _check(rule, text, tag, line)
    for name, value in attributes:
        attribute_rule = HEADER_ATTRIBUTES.get((path, name))
        if attribute_rule is not None:
            _check(attribute_rule, value, tag, line, name)
