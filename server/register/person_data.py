"""A person's IPLOS data (formats §1), checked and turned into rows of the register's tables.

The encryption module passes a person's data on as it stands; the register is the first to
interpret it, so it checks every value's form before it stores it: a value that breaks the
format refuses the whole submission with the record's løpenummer and the field (never the
value). Nothing here can hold a fødselsnummer: every stored value is a code, a date or a
number of a fixed form.

Rules (the register refuses the submission when one is broken):

- ``Husstand``: at most once; 1, 2 or 3.
- ``Dodsdato``: at most once; a date.
- ``Vurdering``: any number; ``@dato``; one or more ``Variabel`` with ``@kode`` (one of the 17,
  each at most once) and ``@skar`` (1–5, or 9 for «ikke relevant»).
- ``Tjeneste``: any number; ``@kode`` 1–30, ``@fra``, optional ``@til`` (not before ``@fra``)
  and ``@timerPerUke`` (0–168, at most two decimals).
- ``Diagnose``: any number; ``@kode`` an ICD-10 or ICPC-2 code (a capital letter and two
  digits, optionally up to four more letters or digits after an optional point).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from decimal import Decimal

from ipis_core.faults import (
    PersonFieldInvalid,
    PersonFieldMissing,
    PersonFieldRepeated,
    PersonFieldUnknown,
    RecordSwapped,
)

from .variables import VARIABLES

SCORES = {"1": 1, "2": 2, "3": 3, "4": 4, "5": 5, "9": 9}
HOUSEHOLDS = {"1": 1, "2": 2, "3": 3}
SERVICE_CODES = {str(code): code for code in range(1, 31)}
_VARIABLE_INDEX = {code: index for index, code in enumerate(VARIABLES)}
# (kode, skar) -> (column index, score): one look-up checks both values of a Variabel.
_SCORE = {
    (code, text): (index, value)
    for code, index in _VARIABLE_INDEX.items()
    for text, value in SCORES.items()
}
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_HOURS = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,2})?")
_DIAGNOSIS = re.compile(r"[A-Z][0-9]{2}(?:\.?[0-9A-Z]{1,4})?")
MAX_HOURS = Decimal(168)
_NO_SCORES: tuple[int | None, ...] = (None,) * len(VARIABLES)
_SERVICE_ATTRIBUTES = frozenset({"kode", "fra", "til", "timerPerUke"})

# Rows, in the column order of bulk.py's tables (the submission's id is added by the loader).
AssessmentRow = tuple[object, ...]
Row = tuple[object, ...]


@functools.lru_cache(maxsize=1 << 16)
def _valid_date(text: str) -> bool:
    """A calendar date written YYYY-MM-DD (cached: a file has a few thousand distinct dates)."""
    if not _DATE.fullmatch(text):
        return False
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _tag(element: ET.Element) -> str:
    """The tag as the file wrote it, bounded (a namespaced tag is shown with its URI)."""
    tag = element.tag
    return tag if len(tag) <= 60 else tag[:60] + "…"


class PersonReader:
    """Reads one person's data element (``<Person lopenummer="n">…</Person>``) into rows.

    Rows are appended to ``tables[name]`` (the bulk writer's buffers). The hot path of a load:
    written for 100 000 persons, so the common case costs a few dictionary look-ups per
    element and every rule is still checked."""

    def __init__(self, tables: dict[str, list[Row]]) -> None:
        self._persons = tables["personer"]
        self._assessments = tables["vurderinger"]
        self._services = tables["tjenester"]
        self._diagnoses = tables["diagnoser"]

    def read(
        self,
        submission: int,
        lopenummer: int,
        pseudonym: str | None,
        secret_id: str | None,
        element: ET.Element,
    ) -> None:
        if len(element.attrib) != 1:
            raise PersonFieldUnknown(lopenummer, "et attributt på Person")
        if element.text is not None and element.text.strip():
            raise PersonFieldInvalid(lopenummer, "Person", "skal ikke ha tekst")
        household: int | None = None
        death: str | None = None
        seen_household = seen_death = False
        assessments = services = diagnoses = 0
        for child in element:
            tag = child.tag
            if child.tail is not None and child.tail.strip():
                raise PersonFieldInvalid(lopenummer, "Person", "tekst mellom feltene")
            if tag == "Tjeneste":
                services += 1
                self._services.append(
                    (submission, lopenummer, services, *_service(child, lopenummer))
                )
            elif tag == "Vurdering":
                assessments += 1
                self._assessments.append(
                    (submission, lopenummer, assessments, *_assessment(child, lopenummer))
                )
            elif tag == "Diagnose":
                diagnoses += 1
                self._diagnoses.append(
                    (submission, lopenummer, diagnoses, _diagnosis(child, lopenummer))
                )
            elif tag == "Husstand":
                if seen_household:
                    raise PersonFieldRepeated(lopenummer, "Husstand")
                seen_household = True
                household = HOUSEHOLDS.get(_leaf_text(child, lopenummer))
                if household is None:
                    raise PersonFieldInvalid(lopenummer, "Husstand", "må være 1, 2 eller 3")
            elif tag == "Dodsdato":
                if seen_death:
                    raise PersonFieldRepeated(lopenummer, "Dodsdato")
                seen_death = True
                death = _leaf_text(child, lopenummer)
                if not _valid_date(death):
                    raise PersonFieldInvalid(lopenummer, "Dodsdato", "må være en dato (ÅÅÅÅ-MM-DD)")
            else:
                raise PersonFieldUnknown(lopenummer, _tag(child))
        self._persons.append((submission, lopenummer, pseudonym, secret_id, household, death))

    def emit_plain(
        self,
        submission: int,
        lopenummer: int,
        pseudonym: str | None,
        secret_id: str | None,
        person: PlainPerson,
    ) -> None:
        """The rows of a person ``read_plain`` has read (the same rows as ``read``)."""
        self.emit_rows(submission, [(lopenummer, pseudonym)], secret_id,
                       plain_rows(submission, [lopenummer], [person]))

    def emit_rows(self, submission: int, persons: list[tuple[int, str | None]],
                  secret_id: str | None, rows: PlainRows) -> None:
        """The rows of a batch ``plain_rows`` has made, each person under its pseudonym (and
        without one, and without the secret's id, where its fødselsnummer was invalid)."""
        heads, assessments, services, diagnoses = rows
        self._assessments.extend(assessments)
        self._services.extend(services)
        self._diagnoses.extend(diagnoses)
        self._persons.extend([
            (submission, lopenummer, pseudonym,
             secret_id if pseudonym is not None else None, household, death)
            for (lopenummer, pseudonym), (household, death) in zip(persons, heads, strict=True)
        ])


def _no_text(element: ET.Element, lopenummer: int, where: str) -> None:
    if (element.text or "").strip():
        raise PersonFieldInvalid(lopenummer, where, "skal ikke ha tekst")


def _leaf_text(element: ET.Element, lopenummer: int) -> str:
    if element.attrib or len(element):
        raise PersonFieldInvalid(lopenummer, element.tag, "skal bare ha en verdi")
    return (element.text or "").strip()


def _assessment(element: ET.Element, lopenummer: int) -> AssessmentRow:
    attributes = element.attrib
    date = attributes.get("dato")
    if date is None:
        raise PersonFieldMissing(lopenummer, "Vurdering/@dato")
    if len(attributes) != 1:
        raise PersonFieldUnknown(lopenummer, "et attributt på Vurdering")
    if not _valid_date(date):
        raise PersonFieldInvalid(lopenummer, "Vurdering/@dato", "må være en dato (ÅÅÅÅ-MM-DD)")
    if element.text is not None and element.text.strip():
        raise PersonFieldInvalid(lopenummer, "Vurdering", "skal ikke ha tekst")
    scores: list[int | None] = list(_NO_SCORES)
    count = 0
    for variable in element:
        attributes = variable.attrib
        found = _SCORE.get((attributes.get("kode", ""), attributes.get("skar", "")))
        if (
            found is None
            or len(attributes) != 2
            or variable.tag != "Variabel"
            or (variable.text is not None and variable.text.strip())
            or (variable.tail is not None and variable.tail.strip())
            or len(variable)
        ):
            raise _variable_fault(variable, lopenummer)
        index, score = found
        if scores[index] is not None:
            raise PersonFieldRepeated(lopenummer, f"variabelen {VARIABLES[index]} i en Vurdering")
        scores[index] = score
        count += 1
    if not count:
        raise PersonFieldMissing(lopenummer, "Variabel i Vurdering")
    return (date, *scores)


def _variable_fault(variable: ET.Element, lopenummer: int) -> Exception:
    """Why a Variabel was refused, the first rule it breaks."""
    if variable.tag != "Variabel":
        return PersonFieldUnknown(lopenummer, f"Vurdering/{_tag(variable)}")
    attributes = variable.attrib
    if set(attributes) != {"kode", "skar"}:
        return PersonFieldInvalid(lopenummer, "Vurdering/Variabel", "skal ha kode og skar")
    if attributes["kode"] not in _VARIABLE_INDEX:
        return PersonFieldInvalid(
            lopenummer, "Vurdering/Variabel/@kode", "må være en av de 17 IPLOS-variablene"
        )
    if attributes["skar"] not in SCORES:
        return PersonFieldInvalid(lopenummer, "Vurdering/Variabel/@skar", "må være 1–5 eller 9")
    return PersonFieldInvalid(lopenummer, "Vurdering/Variabel", "skal være tomt")


def _service(element: ET.Element, lopenummer: int) -> Row:
    if len(element) or (element.text is not None and element.text.strip()):
        raise PersonFieldInvalid(lopenummer, "Tjeneste", "skal være tomt")
    return _service_values(element.attrib, lopenummer)


def _service_values(attributes: Mapping[str, str], lopenummer: int) -> Row:
    code = SERVICE_CODES.get(attributes.get("kode", ""))
    start = attributes.get("fra")
    end = attributes.get("til")
    hours = attributes.get("timerPerUke")
    if (
        code is None
        or start is None
        or not _valid_date(start)
        or (end is not None and (not _valid_date(end) or end < start))  # ISO dates sort as text
        or (hours is not None and not _valid_hours(hours))
        or len(attributes) != 2 + (end is not None) + (hours is not None)
    ):
        raise _service_fault(attributes, lopenummer)
    return (code, start, end, hours)


@functools.lru_cache(maxsize=1 << 12)
def _valid_hours(text: str) -> bool:
    return _HOURS.fullmatch(text) is not None and Decimal(text) <= MAX_HOURS


def _service_fault(attributes: Mapping[str, str], lopenummer: int) -> Exception:
    """Why a Tjeneste was refused, the first rule it breaks."""
    if not attributes.keys() <= _SERVICE_ATTRIBUTES:
        return PersonFieldUnknown(lopenummer, "et attributt på Tjeneste")
    if "kode" not in attributes:
        return PersonFieldMissing(lopenummer, "Tjeneste/@kode")
    if attributes["kode"] not in SERVICE_CODES:
        return PersonFieldInvalid(lopenummer, "Tjeneste/@kode", "må være et heltall fra 1 til 30")
    for name in ("fra", "til"):
        if name == "fra" and name not in attributes:
            return PersonFieldMissing(lopenummer, "Tjeneste/@fra")
        if name in attributes and not _valid_date(attributes[name]):
            return PersonFieldInvalid(
                lopenummer, f"Tjeneste/@{name}", "må være en dato (ÅÅÅÅ-MM-DD)"
            )
    if "til" in attributes and attributes["til"] < attributes["fra"]:
        return PersonFieldInvalid(lopenummer, "Tjeneste/@til", "kan ikke være før @fra")
    return PersonFieldInvalid(
        lopenummer, "Tjeneste/@timerPerUke", "må være et tall fra 0 til 168 med høyst to desimaler"
    )


def _diagnosis(element: ET.Element, lopenummer: int) -> str:
    if set(element.attrib) != {"kode"} or len(element) or (element.text or "").strip():
        raise PersonFieldInvalid(lopenummer, "Diagnose", "skal være tomt med bare @kode")
    return _diagnosis_code(element.attrib["kode"], lopenummer)


def _diagnosis_code(code: str, lopenummer: int) -> str:
    if not _DIAGNOSIS.fullmatch(code):
        raise PersonFieldInvalid(
            lopenummer, "Diagnose/@kode", "må være en ICD-10- eller ICPC-2-kode"
        )
    return code


# --- the fast path: a person written the common way, read without building a tree -------------
#
# Most records hold their elements exactly as fagsystems write them: attribute values in double
# quotes, one space apart, no entity, no comment. ``read_plain`` reads such a record with one
# regular expression per element (a third of the time of parsing it into a tree and walking
# it, for 100 000 persons), and gives up — returns None — at anything else, which then goes the
# tree's way. Every value it accepts is one an XML parser would read identically (no ``&``,
# no ``<``, no tab or line break inside an attribute value, which XML would normalise), and
# every rule is the same function as on the tree's way.

_VALUE = rb'"([^"<&\t\n\r]*)"'
_TOKEN = re.compile(
    rb"<(Husstand|Dodsdato)>([^<&]*)</\1>"
    rb"|<Vurdering dato=" + _VALUE + rb">((?:<Variabel [^<>]*/>)+)</Vurdering>"
    rb"|<Tjeneste((?: [A-Za-z]+=\"[^\"<&\t\n\r]*\")+) ?/>"
    rb"|<Diagnose kode=" + _VALUE + rb" ?/>"
)
_VARIABLE = re.compile(rb"<Variabel kode=" + _VALUE + rb" skar=" + _VALUE + rb" ?/>")
_VARIABLES = re.compile(
    rb'(?:<Variabel kode="[^"<&\t\n\r]*" skar="[^"<&\t\n\r]*" ?/>)+'
)
_SCORE_BYTES = {(code.encode(), text.encode()): found for (code, text), found in _SCORE.items()}
_ATTRIBUTE = re.compile(rb' ([A-Za-z]+)="([^"]*)"')
START = re.compile(rb'<Person lopenummer="([1-9][0-9]{0,8})">')
END = b"</Person>"

PlainPerson = tuple[int | None, str | None, list[tuple[object, ...]], list[Row], list[str]]
# (husstand, dødsdato) of each person, then the rows of vurderinger, tjenester and diagnoser.
PlainRows = tuple[list[tuple[int | None, str | None]], list[Row], list[Row], list[Row]]


def read_plain(body: bytes, lopenummer: int) -> PlainPerson | None:
    """(husstand, dødsdato, vurderinger, tjenester, diagnoser) of a person's elements written
    the common way, checked by the same rules as on the tree's way; None for anything else."""
    household: int | None = None
    death: str | None = None
    seen_household = seen_death = False
    assessments: list[tuple[object, ...]] = []
    services: list[Row] = []
    diagnoses: list[str] = []
    position, end, match = 0, len(body), _TOKEN.match
    while position < end:
        found = match(body, position)
        if found is None:
            return None
        position = found.end()
        leaf, text, date, variables, attributes, code = found.groups()
        if leaf == b"Husstand":
            if seen_household:
                raise PersonFieldRepeated(lopenummer, "Husstand")
            seen_household = True
            household = HOUSEHOLDS.get(text.decode("utf-8", "replace").strip())
            if household is None:
                raise PersonFieldInvalid(lopenummer, "Husstand", "må være 1, 2 eller 3")
        elif leaf == b"Dodsdato":
            if seen_death:
                raise PersonFieldRepeated(lopenummer, "Dodsdato")
            seen_death = True
            death = text.decode("utf-8", "replace").strip()
            if not _valid_date(death):
                raise PersonFieldInvalid(lopenummer, "Dodsdato", "må være en dato (ÅÅÅÅ-MM-DD)")
        elif date is not None:
            row = _plain_assessment(date.decode("utf-8", "replace"), variables, lopenummer)
            if row is None:
                return None
            assessments.append(row)
        elif attributes is not None:
            pairs = _ATTRIBUTE.findall(attributes)
            names = {name.decode(): value.decode("utf-8", "replace") for name, value in pairs}
            if len(names) != len(pairs):
                return None  # an attribute twice: not XML; the tree's way refuses it
            services.append(_service_values(names, lopenummer))
        else:
            diagnoses.append(_diagnosis_code(code.decode("utf-8", "replace"), lopenummer))
    return household, death, assessments, services, diagnoses


def _plain_assessment(date: str, variables: bytes, lopenummer: int) -> tuple[object, ...] | None:
    if not _valid_date(date):
        raise PersonFieldInvalid(lopenummer, "Vurdering/@dato", "må være en dato (ÅÅÅÅ-MM-DD)")
    if not _VARIABLES.fullmatch(variables):
        return None  # a Variabel written another way: the tree's way reads it
    scores: list[int | None] = list(_NO_SCORES)
    for pair in _VARIABLE.findall(variables):
        index_score = _SCORE_BYTES.get(pair)
        if index_score is None:
            code = pair[0].decode("utf-8", "replace")
            if code not in _VARIABLE_INDEX:
                raise PersonFieldInvalid(
                    lopenummer, "Vurdering/Variabel/@kode", "må være en av de 17 IPLOS-variablene"
                )
            raise PersonFieldInvalid(lopenummer, "Vurdering/Variabel/@skar", "må være 1–5 eller 9")
        index, value = index_score
        if scores[index] is not None:
            raise PersonFieldRepeated(lopenummer, f"variabelen {VARIABLES[index]} i en Vurdering")
        scores[index] = value
    return (date, *scores)


def plain_rows(submission: int, numbers: list[int], people: list[PlainPerson]) -> PlainRows:
    """The child tables' rows of persons ``read_plain`` has read, and each person's husstand and
    dødsdato: made where the persons were read (the helper process, for a large delivery), so
    the loader only extends its buffers."""
    heads: list[tuple[int | None, str | None]] = []
    assessments: list[Row] = []
    services: list[Row] = []
    diagnoses: list[Row] = []
    for lopenummer, (household, death, rated, served, diagnosed) in zip(
        numbers, people, strict=True
    ):
        heads.append((household, death))
        for number, assessment in enumerate(rated, 1):
            assessments.append((submission, lopenummer, number, *assessment))
        for number, service in enumerate(served, 1):
            services.append((submission, lopenummer, number, *service))
        for number, code in enumerate(diagnosed, 1):
            diagnoses.append((submission, lopenummer, number, code))
    return heads, assessments, services, diagnoses


def read_plain_batch(numbers: list[int], plaintexts: list[bytes]) -> list[PlainPerson] | None:
    """Every record of a batch read the common way, or None to read them as trees. A record
    whose inner number is not its envelope's (``numbers``) is refused here, as
    ``RegisterOpener.bind`` would, before its data is looked at (as on the trees' way)."""
    people = []
    for lopenummer, plaintext in zip(numbers, plaintexts, strict=True):
        start = START.match(plaintext)
        if start is None or not plaintext.endswith(END):
            return None
        inside = int(start.group(1))
        if inside != lopenummer:
            raise RecordSwapped(lopenummer, inside)
        person = read_plain(plaintext[start.end() : -len(END)], lopenummer)
        if person is None:
            return None
        people.append(person)
    return people
