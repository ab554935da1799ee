"""Interoperability (formats §3 invariant 5): libxmlsec1 1.3, through python-xmlsec, decrypts
every EncryptedData of our files: an implementation nobody here wrote proves the format."""

from __future__ import annotations

import json

import pytest

# python-xmlsec is a pinned test dependency (pyproject.toml): without it this module must fail,
# not be skipped, or the interoperability promise (formats §3 invariant 5) goes untested.
import xmlsec
from ipis_testlib import (
    FNR,
    NS,
    VECTORS,
    Keys,
    canonical,
    document,
    encrypt_bytes,
    input_persons,
    parse,
    person,
)

from ipis_core.demo_data import document_bytes


def test_libxmlsec_is_1_3() -> None:
    assert xmlsec.get_libxmlsec_version()[:2] == (1, 3)


def manager(tpf_pem: bytes, tpf_id: str, iplos_pem: bytes, iplos_id: str):
    keys = xmlsec.KeysManager()
    for pem, name in ((tpf_pem, tpf_id), (iplos_pem, iplos_id)):
        key = xmlsec.Key.from_memory(pem, xmlsec.constants.KeyDataFormatPem)
        key.name = name  # ds:KeyName lookup
        keys.add_key(key)
    return keys


def xmlsec_open(encrypted: bytes, keys_manager) -> tuple[object, list[bytes], bytes]:
    """TPF layer by KeyName, then the register key, then every person's EncryptedData."""
    root = parse(encrypted)
    tpf_data = root.find("xenc:EncryptedData", NS)
    tpf = xmlsec.EncryptionContext(keys_manager).decrypt(tpf_data)
    assert tpf.tag == "IPLOSInnhold"
    assert tpf.getparent() is root  # Type=Element: replaced in place
    register_key_element = tpf.find("xenc:EncryptedKey", NS)
    aes_key = xmlsec.EncryptionContext(keys_manager).decrypt(register_key_element)
    assert isinstance(aes_key, bytes) and len(aes_key) == 32
    plaintexts = []
    for element in tpf.iterfind("Personer/Person/xenc:EncryptedData", NS):
        context = xmlsec.EncryptionContext()
        context.key = xmlsec.Key.from_binary_data(xmlsec.constants.KeyDataAes, aes_key)
        plaintexts.append(context.decrypt(element))
    control_element = tpf.find("Registerkontroll/xenc:EncryptedData", NS)
    context = xmlsec.EncryptionContext()
    context.key = xmlsec.Key.from_binary_data(xmlsec.constants.KeyDataAes, aes_key)
    return tpf, plaintexts, context.decrypt(control_element)


def check(data: bytes, encrypted: bytes, keys_manager) -> None:
    expected = input_persons(data)
    tpf, plaintexts, control = xmlsec_open(encrypted, keys_manager)
    assert [p.findtext("Fodselsnummer").strip() for p in tpf.iterfind("Personer/Person")] == [
        fnr for fnr, _ in expected
    ]
    assert len(plaintexts) == len(expected)
    for number, (plaintext, (_, children)) in enumerate(zip(plaintexts, expected, strict=True), 1):
        assert isinstance(plaintext, bytes)
        root = parse(plaintext)
        assert root.get("lopenummer") == str(number)
        assert [canonical(c) for c in root if isinstance(c.tag, str)] == children
    assert parse(control).get("antallPersoner") == str(len(expected))


@pytest.mark.parametrize("persons,encoding", [(0, "UTF-8"), (1, "UTF-16LE"), (300, "windows-1252")])
def test_xmlsec_decrypts_both_layers(keys: Keys, persons: int, encoding: str) -> None:
    data = document_bytes(persons, seed=5, encoding=encoding)
    encrypted, _ = encrypt_bytes(data, keys)
    key_file = keys.key_file
    check(data, encrypted, manager(keys.tpf_pem, key_file.tpf.key_id,
                                   keys.iplos_pem, key_file.iplos.key_id))


def test_xmlsec_decrypts_unusual_person_data(keys: Keys) -> None:
    body = "      <Merknad>A &amp; B <![CDATA[<x>]]> æøå</Merknad>\n      <Husstand>1</Husstand>\n"
    data = document([person(FNR[0], body)]).encode()
    encrypted, _ = encrypt_bytes(data, keys)
    kf = keys.key_file
    check(data, encrypted, manager(keys.tpf_pem, kf.tpf.key_id, keys.iplos_pem, kf.iplos.key_id))


def test_xmlsec_refuses_the_wrong_key(keys: Keys) -> None:
    data = document().encode()
    encrypted, _ = encrypt_bytes(data, keys)
    kf = keys.key_file
    # the register's key under the TPF's name: the TPF layer must not open
    swapped = manager(keys.iplos_pem, kf.tpf.key_id, keys.tpf_pem, kf.iplos.key_id)
    with pytest.raises(xmlsec.Error):
        xmlsec_open(encrypted, swapped)


def test_xmlsec_decrypts_the_golden_message() -> None:
    folder = VECTORS / "message"
    ids = json.loads((VECTORS / "keyfiles" / "expected.json").read_text(encoding="utf-8"))
    check(
        (folder / "iplos.xml").read_bytes(),
        (folder / "kryptert.xml").read_bytes(),
        manager((folder / "tpf-privat.pem").read_bytes(), ids["tpf"]["id"],
                (folder / "iplos-privat.pem").read_bytes(), ids["iplos"]["id"]),
    )
