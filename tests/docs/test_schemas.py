"""The XSDs (pyapp/xsd, package data) describe what the code writes and refuse what the
format forbids."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from lxml import etree

from ipis_core.contact import Contact
from ipis_core.crypto.native import NativeBackend
from ipis_core.demo_data import ENCODINGS, document_bytes
from ipis_core.keyfile import parse_key_file, render_key_file
from ipis_core.keygen import generate_keys
from ipis_core.message import MessageEncryptor
from ipis_core.schemas import XSD_DIR

XSD = XSD_DIR
TODAY = dt.date(2026, 12, 1)


@pytest.fixture(scope="module")
def keys():
    return parse_key_file(render_key_file(generate_keys(TODAY, bits=2048).key_file))


def schema(name: str) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(XSD / name)))


def encrypt(keys, data: bytes) -> bytes:
    async def run() -> bytes:
        encryptor = MessageEncryptor(
            keys, Contact.validated("a@kommune.no", "Kari Ås", "91234567"), NativeBackend(), TODAY
        )
        return await encryptor.feed(data) + await encryptor.finish()

    return asyncio.run(run())


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_demo_data_is_valid_iplos_export(encoding):
    document = etree.fromstring(document_bytes(20, encoding=encoding))
    assert schema("iplos-eksport.xsd").validate(document.getroottree())


@pytest.mark.parametrize("persons", [0, 3])
def test_encrypted_message_envelope_is_valid(keys, persons):
    envelope = etree.fromstring(encrypt(keys, document_bytes(persons)))
    xsd = schema("ipis-kryptert.xsd")
    assert xsd.validate(envelope), xsd.error_log


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("xmlenc11#aes256-gcm", "xmlenc#aes256-cbc"),  # content downgrade to CBC
        ("xmlenc11#mgf1sha256", "xmlenc11#mgf1sha1"),  # OAEP mask with SHA-1
        ("xmlenc#sha256", "xmldsig#sha1"),  # OAEP digest SHA-1
        ("<Meldingstype>", "<Personer/><Meldingstype>"),  # an element that is not allowed
    ],
)
def test_envelope_schema_refuses_downgrades_and_extra_elements(keys, old, new):
    text = encrypt(keys, document_bytes(1)).decode()
    assert old in text
    envelope = etree.fromstring(text.replace(old, new, 1).encode())
    assert not schema("ipis-kryptert.xsd").validate(envelope)


def test_envelope_schema_refuses_a_cleartext_iplos_file():
    assert not schema("ipis-kryptert.xsd").validate(etree.fromstring(document_bytes(2)))
