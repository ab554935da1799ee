"""Round trips (issue 2): encrypt generated files, open both layers, compare with the input.

Each file is opened twice: with pyapp/decrypt.py (the TPF's and the register's code) and with
the independent reader in ipis_testlib (lxml + cryptography, written from formats §3).
"""

from __future__ import annotations

import io
import re

import pytest
from ipis_testlib import (
    CONTACT,
    FNR,
    NS,
    VECTORS,
    XENC,
    Keys,
    canonical,
    document,
    encrypt_bytes,
    input_persons,
    open_message,
    parse,
    person,
)

from ipis_core import decrypt
from ipis_core.demo_data import ENCODINGS, document_bytes
from ipis_core.message import NO_PERSONS_WARNING

CLEAR = ["Meldingstype", "Avsender", "Mottaker", f"{{{XENC}}}EncryptedData"]
BASE64_CIPHER_VALUE = re.compile(rb"(<xenc:CipherValue>)[A-Za-z0-9+/]*={0,2}(</xenc:CipherValue>)")


def check_round_trip(data: bytes, encrypted: bytes, keys: Keys) -> None:
    expected = input_persons(data)
    fnrs = [fnr for fnr, _ in expected]
    source = parse(data)

    # --- the clear part: Meldingstype, Avsender, Mottaker and the TPF layer, nothing else
    opened = open_message(encrypted, keys)
    assert [c.tag for c in opened.clear if isinstance(c.tag, str)] == CLEAR
    for name in ("Meldingstype", "Avsender", "Mottaker"):
        assert canonical(opened.clear.find(name)) == canonical(source.find(name))
    clear_text = opened.clear.text or ""
    for child in opened.clear:
        clear_text += child.tail or ""
    assert not clear_text.strip()
    tpf_data = opened.clear.find("xenc:EncryptedData", NS)
    assert tpf_data.get("Type") == XENC + "Element"
    # Nothing of the persons, the contact or Uttak in clear: looked for outside the base64 of
    # the CipherValues, where a short word like "Uttak" turns up by chance (1 run in 170).
    outside = BASE64_CIPHER_VALUE.sub(rb"\1\2", encrypted)
    assert outside.count(b"<xenc:CipherValue></xenc:CipherValue>") == 2  # TPF key and layer
    for fnr in fnrs:
        assert fnr.encode() not in outside
    for marker in (CONTACT.email, CONTACT.name, "Uttak", "Husstand", "Personer", "Kontaktperson"):
        assert marker.encode() not in outside, marker

    # --- the TPF layer: contact, Uttak, register key, one element per person with the fnr
    tpf = opened.tpf
    assert tpf.tag == "IPLOSInnhold"
    assert tpf.findtext("Kontaktperson/Epost") == CONTACT.email
    assert tpf.findtext("Kontaktperson/Navn") == CONTACT.name
    assert tpf.findtext("Kontaktperson/Mobiltelefon") == CONTACT.mobile
    assert canonical(tpf.find("Uttak")) == canonical(source.find("Uttak"))
    persons = tpf.findall("Personer/Person")
    assert [p.findtext("Fodselsnummer").strip() for p in persons] == fnrs
    for element in persons:  # only the Fodselsnummer and the register layer
        assert [c.tag for c in element] == ["Fodselsnummer", f"{{{XENC}}}EncryptedData"]
    for marker in (b"Husstand", b"Vurdering", b"Tjeneste", b"Diagnose", b"Dodsdato"):
        assert marker not in opened.tpf_plaintext

    # --- the register layer: each person's data, equal to the input, without the fnr
    assert len(opened.persons) == len(expected)
    for number, ((fnr, plaintext, root), (_, children)) in enumerate(
        zip(opened.persons, expected, strict=True), start=1
    ):
        assert root.tag == "Person" and root.get("lopenummer") == str(number)
        assert [canonical(c) for c in root if isinstance(c.tag, str)] == children
        for other in fnrs:
            assert other.encode() not in plaintext
        assert CONTACT.email.encode() not in plaintext
    assert opened.control.tag == "Registerkontroll"
    assert opened.control.get("antallPersoner") == str(len(expected))
    assert opened.control.get("filId") == tpf.get("filId")

    # --- the same through pyapp/decrypt.py
    ours = decrypt.open_message(
        io.BytesIO(encrypted),
        decrypt.load_private_key(keys.tpf_pem),
        decrypt.load_private_key(keys.iplos_pem),
    )
    assert ours.fodselsnumre == fnrs
    assert [r.lopenummer for r in ours.records] == list(range(1, len(expected) + 1))
    for record, (_, children) in zip(ours.records, expected, strict=True):
        root = parse(record.person_xml)
        assert [canonical(c) for c in root if isinstance(c.tag, str)] == children
    assert ours.tpf.contact == CONTACT


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("persons", [0, 1, 1000])
def test_round_trip_generated(keys: Keys, persons: int, encoding: str) -> None:
    data = document_bytes(persons, kommune="1508", seed=persons + 11, encoding=encoding)
    if encoding.startswith("UTF-8") or encoding == "windows-1252":
        assert "Ærø-Øvre Åsen".encode(encoding.replace("-BOM", "")) in data  # æøå in names
    encrypted, summary = encrypt_bytes(data, keys, chunk=(1 << 16) if persons > 1 else 7)
    assert summary.persons == persons
    assert summary.warnings == ([NO_PERSONS_WARNING] if persons == 0 else [])
    check_round_trip(data, encrypted, keys)


def test_round_trip_keeps_attributes_entities_cdata_and_order(keys: Keys) -> None:
    body = (
        "      <!-- a comment in the person -->\n"
        "      <Husstand>3</Husstand>\n"
        '      <Tjeneste til="2026-01-01" fra="2025-01-01" kode="7"/>\n'
        '      <Vurdering dato="2025-03-01"><Variabel kode="SYN" skar="9"/></Vurdering>\n'
        "      <Merknad>A &amp; B &lt;C&gt; &#229; <![CDATA[<rå> & ]]> ÆØÅ</Merknad>\n"
        '      <Diagnose kode="I63"/><Diagnose kode="F03"/>\n'
    )
    data = document([person(FNR[2], body), person(FNR[3])]).encode()
    encrypted, _ = encrypt_bytes(data, keys)
    check_round_trip(data, encrypted, keys)


def test_encrypted_size_follows_the_documented_overhead(keys: Keys) -> None:
    """docs/formater.md "Size": person data is base64'd twice (16/9) and each person adds
    the XML Encryption markup a standard decryptor needs. The issue's 2x target cannot be met
    at ~480 bytes a person without breaking invariant 5 (bench/ reports the measured ratio,
    2.2x); this guards the model, so any growth of the per-person overhead fails here."""
    data = document_bytes(2000, seed=3)
    encrypted, _ = encrypt_bytes(data, keys)
    opened = open_message(encrypted, keys)
    persons = 2000
    records = sum(len(plaintext) for _, plaintext, _ in opened.persons)  # with their wrapper
    # each person in the TPF layer: <Person lopenummer="n"> + Fodselsnummer (42 bytes) +
    # EncryptedData markup (192 bytes) around the base64 of IV + record + tag (28 bytes);
    # then the whole TPF layer is base64'd again
    per_person_markup = len('<Person lopenummer="1000"></Person>') + 42 + 192
    model = 4 / 3 * (4 / 3 * (records + 28 * persons) + per_person_markup * persons)
    assert len(encrypted) <= model * 1.01 + 4096, f"{len(encrypted)} > model {model:.0f}"
    assert len(encrypted) / len(data) < 2.25, f"{len(encrypted) / len(data):.2f}x"


def test_fresh_keys_and_ivs_for_every_file_and_record(keys: Keys) -> None:
    data = document([person(FNR[0]), person(FNR[0])]).encode()
    first, _ = encrypt_bytes(data, keys)
    second, _ = encrypt_bytes(data, keys)
    a, b = open_message(first, keys), open_message(second, keys)
    assert a.register_key != b.register_key
    values = re.findall(rb"<xenc:CipherValue>([^<]{16})", a.tpf_plaintext + first + second)
    assert len(values) == len(set(values))  # identical records still give different ciphertext


def _register_side(encrypted: bytes, keys: Keys):
    plaintext = io.BytesIO()
    decrypt.open_tpf_layer(io.BytesIO(encrypted), decrypt.load_private_key(keys.tpf_pem), plaintext)
    plaintext.seek(0)
    people: list[decrypt.TpfPerson] = []
    layer = decrypt.parse_tpf_layer(plaintext, people.append)
    opener = decrypt.RegisterOpener(
        decrypt.load_private_key(keys.iplos_pem), layer.register_key, layer.register_control
    )
    return opener, people


REASONS = {
    "swap": "er byttet om eller flyttet",
    "duplicate": "forekommer to ganger",
    "drop": "1 personposter mangler (løpenummer 3)",
    "move-between-files": "hører til en annen fil",
}


@pytest.mark.parametrize("tamper", ["swap", "duplicate", "drop", "move-between-files"])
def test_record_binding_detects_tampering(keys: Keys, tamper: str) -> None:
    """formats §3 invariant 4: swapped, duplicated, dropped or moved records are detected."""
    from ipis_core.faults import RecordBindingBroken

    data = document([person(FNR[i]) for i in range(4)]).encode()
    encrypted, _ = encrypt_bytes(data, keys)
    opener, people = _register_side(encrypted, keys)
    pairs = [(p.lopenummer, p.register_cipher_value) for p in people]
    if tamper == "swap":
        pairs[0], pairs[1] = (1, pairs[1][1]), (2, pairs[0][1])
    elif tamper == "duplicate":  # the same record, under its own number, twice
        pairs.insert(1, pairs[0])
    elif tamper == "drop":
        del pairs[2]
    else:
        other, _ = encrypt_bytes(data, keys)
        _, other_people = _register_side(other, keys)
        pairs[3] = (4, other_people[3].register_cipher_value)
    with pytest.raises(RecordBindingBroken) as caught:
        for number, cipher in pairs:
            opener.open(number, cipher)
        opener.finish()
    # each tampering caught by its own check, not by another one on the way
    assert REASONS[tamper] in caught.value.message, caught.value.message


def test_untampered_records_pass_the_binding_check(keys: Keys) -> None:
    data = document([person(FNR[i]) for i in range(4)]).encode()
    opener, people = _register_side(encrypt_bytes(data, keys)[0], keys)
    for p in people:
        opener.open(p.lopenummer, p.register_cipher_value)
    opener.finish()


@pytest.mark.parametrize(
    "body",
    [
        "      <!-- c -->\n      <Merknad><![CDATA[a <!-- ikke en kommentar --> b]]></Merknad>\n",
        "      <?pi x?>\n      <Merknad>x<![CDATA[<?y?>]]></Merknad>\n",
        "      <Merknad><![CDATA[a >   < b]]></Merknad>\n",
        "      <Merknad>a >  <![CDATA[x]]></Merknad>\n",
        "      <Merknad>a >\n  <Del/>b</Merknad>\n",
    ],
    ids=["comment-like-cdata", "pi-like-cdata", "cdata-whitespace", "text-before-cdata",
         "mixed-content"],
)
def test_person_text_is_kept_exactly(keys: Keys, body: str) -> None:
    """formats §1: person data is encrypted as it stands; only comments (and indentation
    between elements) go. Removing them from raw bytes must not touch CDATA or text."""
    data = document([person(FNR[0], body)]).encode()
    encrypted, _ = encrypt_bytes(data, keys)
    check_round_trip(data, encrypted, keys)


def test_namespace_declared_on_the_root_is_refused_or_kept(keys: Keys) -> None:
    """A prefix declared on IPLOS and used in a person: the register's record must still be
    namespace-well-formed XML (so the register can parse it), or the file must be refused."""
    from ipis_core.faults import IplosFault

    text = document([person(FNR[0], "      <a:Husstand>1</a:Husstand>\n")])
    data = text.replace('versjon="3.0">', 'versjon="3.0" xmlns:a="urn:x">').encode()
    try:
        encrypted, _ = encrypt_bytes(data, keys)
    except IplosFault:
        return
    check_round_trip(data, encrypted, keys)


VALID = sorted((VECTORS / "iplos" / "valid").glob("*.xml"))


@pytest.mark.parametrize("path", VALID, ids=[p.name for p in VALID])
def test_round_trip_hand_written_encodings(keys: Keys, path) -> None:
    data = path.read_bytes()
    encrypted, summary = encrypt_bytes(data, keys, chunk=5)
    assert summary.persons == 2
    check_round_trip(data, encrypted, keys)
    assert "Ærøy" in open_message(encrypted, keys).clear.findtext("Avsender/Navn")
