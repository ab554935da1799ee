"""Helpers for tests/core: building IPLOS documents, encrypting in memory, and an independent
reader of the encrypted format (lxml + cryptography, written from formats §3, not from
pyapp/message.py), so the round trip does not check the code against itself.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime as dt
import os
import pathlib

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from lxml import etree

from ipis_core.contact import Contact
from ipis_core.crypto.native import NativeBackend
from ipis_core.message import EncryptionSummary, MessageEncryptor

XENC = "http://www.w3.org/2001/04/xmlenc#"
XENC11 = "http://www.w3.org/2009/xmlenc11#"
DS = "http://www.w3.org/2000/09/xmldsig#"
NS = {"xenc": XENC, "xenc11": XENC11, "ds": DS}
AES256_GCM = XENC11 + "aes256-gcm"
RSA_OAEP = XENC11 + "rsa-oaep"
MGF1_SHA256 = XENC11 + "mgf1sha256"
SHA256 = XENC + "sha256"

TODAY = dt.date(2026, 6, 1)
VALID_FROM = dt.date(2026, 1, 1)
VECTORS = pathlib.Path(__file__).resolve().parent.parent / "vectors"
CONTACT = Contact.validated("iplos@kommune.no", "Åse Ødegård", "912 34 567")

_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, huge_tree=True, remove_blank_text=False
)


# --- building input documents ---------------------------------------------------------------

HEADER = """<?xml version="1.0" encoding="{encoding}"?>
<IPLOS versjon="3.0">
  <Meldingstype>IPLOS</Meldingstype>
  <Avsender>
    <Kommunenummer>0301</Kommunenummer>
    <Bydelsnummer>00</Bydelsnummer>
    <Organisasjonsnummer>974778874</Organisasjonsnummer>
    <Navn>Oslo kommune, Søndre Nordstrand</Navn>
    <Fagsystem navn="Gerica" versjon="2026.2"/>
  </Avsender>
  <Mottaker>
    <Navn>Statistisk sentralbyrå</Navn>
    <Organisasjonsnummer>971526920</Organisasjonsnummer>
  </Mottaker>
  <Uttak>
    <Dato>2026-01-15</Dato>
    <PeriodeFra>2025-01-01</PeriodeFra>
    <PeriodeTil>2025-12-31</PeriodeTil>
  </Uttak>
  <Personer>
"""
# line numbers in HEADER: <IPLOS> 2, Avsender 4, Kommunenummer 5, Mottaker 11, Uttak 15,
# Personer 20; the first Person starts on line 21.
FOOTER = "  </Personer>\n</IPLOS>\n"
FNR = ("01814011026", "41824591006", "15898091098", "31850591183")  # synthetic, valid


def person(fnr: str = FNR[0], body: str | None = None) -> str:
    """A Person of 7 lines by default (Fodselsnummer on its second line)."""
    if body is None:
        body = (
            "      <Husstand>1</Husstand>\n"
            '      <Vurdering dato="2025-03-01">\n'
            '        <Variabel kode="SPISE" skar="2"/>\n'
            "      </Vurdering>\n"
            '      <Tjeneste kode="12" fra="2024-01-01" timerPerUke="7.5"/>\n'
        )
    return f"    <Person>\n      <Fodselsnummer>{fnr}</Fodselsnummer>\n{body}    </Person>\n"


def document(persons: list[str] | None = None, encoding: str = "UTF-8") -> str:
    persons = [person()] if persons is None else persons
    return HEADER.format(encoding=encoding) + "".join(persons) + FOOTER


# --- encrypting in memory -------------------------------------------------------------------


class Keys:
    """The key file and both private keys (PEM); repr without the keys, for test reports."""

    def __init__(self, key_file: object, tpf_pem: bytes, iplos_pem: bytes) -> None:
        self.key_file = key_file  # pyapp.keyfile.KeyFile
        self.tpf_pem = tpf_pem
        self.iplos_pem = iplos_pem

    def __repr__(self) -> str:
        return "Keys(<test keys>)"

    @property
    def tpf_private(self) -> rsa.RSAPrivateKey:
        return _private(self.tpf_pem)

    @property
    def iplos_private(self) -> rsa.RSAPrivateKey:
        return _private(self.iplos_pem)


def _private(pem: bytes) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def encrypt_bytes(
    data: bytes, keys: Keys, chunk: int = 1 << 16, contact: Contact = CONTACT
) -> tuple[bytes, EncryptionSummary]:
    async def run() -> tuple[bytes, EncryptionSummary]:
        encryptor = MessageEncryptor(keys.key_file, contact, NativeBackend(), TODAY)
        out = []
        for start in range(0, len(data), chunk):
            out.append(await encryptor.feed(data[start : start + chunk]))
        out.append(await encryptor.finish())
        return b"".join(out), encryptor.summary

    return asyncio.run(run())


# --- the independent reader ------------------------------------------------------------------

OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


@dataclasses.dataclass
class Opened:
    clear: etree._Element  # the encrypted file's root
    tpf: etree._Element  # the TPF layer's plaintext root
    tpf_plaintext: bytes
    persons: list[tuple[str, bytes, etree._Element]]  # (Fodselsnummer text, plaintext, root)
    control: etree._Element
    register_key: bytes


def parse(data: bytes) -> etree._Element:
    return etree.fromstring(data, _PARSER)


def _cipher_value(encrypted_data: etree._Element) -> bytes:
    method = encrypted_data.find("xenc:EncryptionMethod", NS)
    assert method is not None and method.get("Algorithm") == AES256_GCM
    value = encrypted_data.findtext("xenc:CipherData/xenc:CipherValue", namespaces=NS)
    assert value
    return base64.b64decode(value, validate=True)


def gcm_open(key: bytes, blob: bytes) -> bytes:
    assert len(blob) >= 12 + 16
    return AESGCM(key).decrypt(blob[:12], blob[12:], None)


def unwrap(encrypted_key: etree._Element, private: rsa.RSAPrivateKey) -> bytes:
    method = encrypted_key.find("xenc:EncryptionMethod", NS)
    assert method is not None and method.get("Algorithm") == RSA_OAEP
    assert method.find("ds:DigestMethod", NS).get("Algorithm") == SHA256
    assert method.find("xenc11:MGF", NS).get("Algorithm") == MGF1_SHA256
    wrapped = base64.b64decode(
        encrypted_key.findtext("xenc:CipherData/xenc:CipherValue", namespaces=NS)
    )
    key = private.decrypt(wrapped, OAEP)
    assert len(key) == 32
    return key


def open_message(data: bytes, keys: Keys) -> Opened:
    root = parse(data)
    encrypted = root.findall("xenc:EncryptedData", NS)
    assert len(encrypted) == 1
    tpf_data = encrypted[0]
    assert tpf_data.get("Type") == XENC + "Element"
    tpf_key_element = tpf_data.find("ds:KeyInfo/xenc:EncryptedKey", NS)
    assert tpf_key_element.findtext("ds:KeyInfo/ds:KeyName", namespaces=NS) == (
        keys.key_file.tpf.key_id
    )
    tpf_key = unwrap(tpf_key_element, keys.tpf_private)
    tpf_plaintext = gcm_open(tpf_key, _cipher_value(tpf_data))
    tpf = parse(tpf_plaintext)
    register_key_element = tpf.find("xenc:EncryptedKey", NS)
    assert register_key_element.findtext("ds:KeyInfo/ds:KeyName", namespaces=NS) == (
        keys.key_file.iplos.key_id
    )
    register_key = unwrap(register_key_element, keys.iplos_private)
    persons = []
    for element in tpf.iterfind("Personer/Person"):
        fnr = element.findtext("Fodselsnummer")
        [person_data] = element.findall("xenc:EncryptedData", NS)
        plaintext = gcm_open(register_key, _cipher_value(person_data))
        persons.append((fnr, plaintext, parse(plaintext)))
    control_data = tpf.find("Registerkontroll/xenc:EncryptedData", NS)
    control = parse(gcm_open(register_key, _cipher_value(control_data)))
    return Opened(root, tpf, tpf_plaintext, persons, control, register_key)


def canonical(element: etree._Element) -> tuple[object, ...]:
    """Tag, attributes and content (text pieces and child elements, in order); comments and
    processing instructions left out with the text around them joined; whitespace-only text
    (indentation) left out."""
    content: list[object] = [element.text or ""]
    for child in element:
        if isinstance(child.tag, str):
            content.append(canonical(child))
            content.append(child.tail or "")
        elif isinstance(content[-1], str):
            content[-1] += child.tail or ""
        else:
            content.append(child.tail or "")
    kept = [c for c in content if not isinstance(c, str) or c.strip()]
    return (element.tag, dict(element.attrib), kept)


def input_persons(data: bytes) -> list[tuple[str, list[tuple[object, ...]]]]:
    """(Fodselsnummer, canonical data children) of each Person of an IPLOS input file."""
    root = parse(data)
    result = []
    for element in root.iterfind("Personer/Person"):
        fnr = element.findtext("Fodselsnummer").strip()
        data_children = [
            canonical(c)
            for c in element
            if isinstance(c.tag, str) and c.tag != "Fodselsnummer"
        ]
        result.append((fnr, data_children))
    return result


def leftovers(folder: str | os.PathLike[str]) -> list[str]:
    return sorted(os.listdir(folder))
