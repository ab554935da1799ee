"""A person's data read two ways gives the same rows: the common way (``read_plain``, regular
expressions) and as a tree (``PersonReader.read``); anything the common way is unsure of goes
the tree's way, and both refuse bad values with the same messages."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from register_testlib import demo_input

from ipis_core.faults import PersonDataInvalid
from ipis_core.reader import IplosReader, PersonRecord
from ipis_server.register.person_data import PersonReader, read_plain


def _tables() -> dict[str, list[tuple[object, ...]]]:
    return {"personer": [], "vurderinger": [], "tjenester": [], "diagnoser": []}


def _both(body: bytes) -> tuple[dict[str, list[tuple[object, ...]]] | None, dict[str, list]]:
    plain_tables, tree_tables = _tables(), _tables()
    person = read_plain(body, 7)
    if person is not None:
        PersonReader(plain_tables).emit_plain(1, 7, "p" * 32, "h", person)
    element = ET.fromstring(b'<Person lopenummer="7">' + body + b"</Person>")
    PersonReader(tree_tables).read(1, 7, "p" * 32, "h", element)
    return (plain_tables if person is not None else None), tree_tables


def test_demo_persons_read_the_same_both_ways() -> None:
    reader = IplosReader()
    events = reader.feed(demo_input(2000, seed=11)) + reader.close()
    bodies = [e.data_xml for e in events if isinstance(e, PersonRecord)]
    assert len(bodies) == 2000
    for body in bodies:
        plain, tree = _both(body)
        assert plain == tree, body


@pytest.mark.parametrize("body", [
    b"<Tjeneste fra='2024-01-01' kode='3'/>",  # single quotes
    b'<Tjeneste fra="2024-01-01"  kode="3"/>',  # two spaces
    b'<Husstand>&#x31;</Husstand>',  # a character reference
    b'<Vurdering dato="2024-01-01"><Variabel skar="2" kode="SPISE"/></Vurdering>',  # order
    b'<Diagnose kode="F03"></Diagnose>',  # not empty-element form
    b'<Tjeneste kode="3" fra="2024-\n01-01"/>',  # XML normalises the line break
    b"<Husstand>2</Husstand><!-- kommentar -->",
])
def test_other_forms_go_the_trees_way(body: bytes) -> None:
    assert read_plain(body, 7) is None


def test_a_repeated_attribute_is_not_read_the_common_way() -> None:
    assert read_plain(b'<Tjeneste kode="3" kode="4" fra="2024-01-01"/>', 7) is None


@pytest.mark.parametrize("body, message", [
    (b"<Husstand>4</Husstand>", "ugyldig verdi i Husstand: må være 1, 2 eller 3"),
    (b'<Tjeneste kode="31" fra="2024-01-01"/>', "Tjeneste/@kode: må være et heltall fra 1 til 30"),
    (b'<Tjeneste kode="3" fra="2024-02-30"/>', "Tjeneste/@fra: må være en dato"),
    (b'<Tjeneste kode="3" fra="2024-02-01" til="2024-01-01"/>', "@til: kan ikke være før @fra"),
    (b'<Tjeneste kode="3" fra="2024-02-01" timerPerUke="169"/>', "@timerPerUke: må være et tall"),
    (b'<Tjeneste kode="3" fra="2024-02-01" farge="gul"/>', "et felt registeret ikke kjenner"),
    (b'<Diagnose kode="12345678901"/>', "Diagnose/@kode: må være en ICD-10- eller ICPC-2-kode"),
    (b'<Vurdering dato="2024-01-01"><Variabel kode="SPISE" skar="6"/></Vurdering>',
     "@skar: må være 1–5 eller 9"),
    (b'<Vurdering dato="2024-01-01"><Variabel kode="SPISE" skar="1"/>'
     b'<Variabel kode="SPISE" skar="2"/></Vurdering>', "har variabelen SPISE i en Vurdering mer"),
    (b"<Husstand>1</Husstand><Husstand>2</Husstand>", "har Husstand mer enn én gang"),
    (b"<Fodselsnummer>01814011026</Fodselsnummer>", "et felt registeret ikke kjenner"),
])
def test_bad_values_are_refused_the_same_both_ways(body: bytes, message: str) -> None:
    with pytest.raises(PersonDataInvalid) as tree:
        PersonReader(_tables()).read(
            1, 7, None, None, ET.fromstring(b'<Person lopenummer="7">' + body + b"</Person>"))
    assert message in tree.value.message
    assert "01814011026" not in tree.value.message
    try:
        plain = read_plain(body, 7)
    except PersonDataInvalid as fault:
        assert fault.message == tree.value.message
    else:
        assert plain is None  # not the common way: the tree's way refuses it
