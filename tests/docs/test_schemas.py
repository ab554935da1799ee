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


# --- the envelope XSD and the code held to the same vectors (tests/vectors/envelope) -------------

import json  # noqa: E402
import pathlib  # noqa: E402

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from ipis_core import clear_part  # noqa: E402

ENVELOPE_VECTORS = pathlib.Path(__file__).resolve().parents[1] / "vectors" / "envelope"
EXPECTED = json.loads((ENVELOPE_VECTORS / "expected.json").read_text(encoding="utf-8"))
# How a careful server would parse: no DTD, no entities, no network.
SAFE_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def xsd_outcome(data: bytes) -> str:
    try:
        document = etree.fromstring(data, SAFE_PARSER)
    except etree.XMLSyntaxError:
        return "refuses"
    return "accepts" if schema("ipis-kryptert.xsd").validate(document) else "refuses"


@pytest.mark.parametrize("case", EXPECTED["valid"], ids=[c["file"] for c in EXPECTED["valid"]])
def test_xsd_accepts_every_valid_envelope_vector(case):
    assert xsd_outcome((ENVELOPE_VECTORS / "valid" / case["file"]).read_bytes()) == "accepts"


@pytest.mark.parametrize(
    "case",
    [c for c in EXPECTED["invalid"] if c["xsd"] is not None],
    ids=[c["file"] for c in EXPECTED["invalid"] if c["xsd"] is not None],
)
def test_xsd_refuses_what_the_code_refuses_except_the_documented_code_only_rules(case):
    """Every invalid vector the code refuses, the XSD refuses too, unless the rule is one an
    XSD cannot state (listed in expected.json and docs/formater.md)."""
    outcome = xsd_outcome((ENVELOPE_VECTORS / "invalid" / case["file"]).read_bytes())
    assert outcome == case["xsd"]
    assert (outcome == "accepts") == ("code_only" in case)


def test_code_only_rules_are_the_documented_ones():
    documented = (pathlib.Path(__file__).resolve().parents[2] / "docs" / "formater.md").read_text(
        encoding="utf-8"
    )
    reasons = EXPECTED["code_only"]
    for case in EXPECTED["invalid"]:
        if case["xsd"] is None or "code_only" in case:
            assert case.get("code_only") in reasons, case["file"]
    for key in reasons:
        assert f"`{key}`" in documented, key


# A minimal envelope (the golden vector) with one value replaced: the XSD's verdict on that
# value must be the code's rule's verdict, for any string.
GOLDEN = (ENVELOPE_VECTORS / "valid" / "golden.xml").read_text(encoding="utf-8")
PLACES = {
    "avsender-navn": ("<Navn>Ålesund kommune, Pleie- og omsorgstjenesten Ærøy–Øksnes</Navn>",
                      "<Navn>{}</Navn>", clear_part.AVSENDER_NAVN),
    "mottaker-navn": ("<Navn>Statistisk sentralbyrå</Navn>", "<Navn>{}</Navn>",
                      clear_part.MOTTAKER_NAVN),
    "meldingstype": ("<Meldingstype>IPLOS</Meldingstype>", "<Meldingstype>{}</Meldingstype>",
                     clear_part.MELDINGSTYPE),
    "fagsystem-navn": ('navn="Profil"', 'navn="{}"', clear_part.FAGSYSTEM_NAVN),
    "fagsystem-versjon": ('versjon="9.1"', 'versjon="{}"', clear_part.FAGSYSTEM_VERSJON),
    "key-name": ("<ds:KeyName>tpf-vektor</ds:KeyName>", "<ds:KeyName>{}</ds:KeyName>",
                 clear_part.KEY_NAME),
}
VALUES = st.text(
    alphabet=st.sampled_from("aZæÅÀÿĀſƀɏɐΩ 0123456789.,;:'’\"()&/+-–—_!?*#«»\t")
    | st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]),
    max_size=160,
) | st.builds(lambda n, c: c * n, st.integers(0, 160), st.sampled_from("aÅ9 ."))


def _escape(value: str, attribute: bool) -> str:
    value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return value.replace('"', "&quot;").replace("\t", "&#9;") if attribute else value


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(place=st.sampled_from(sorted(PLACES)), value=VALUES)
def test_xsd_patterns_and_the_code_s_rules_agree_on_any_value(place, value):
    old, template, rule = PLACES[place]
    attribute = template.startswith(("navn", "versjon"))
    document = GOLDEN.replace(old, template.format(_escape(value, attribute)), 1).encode()
    assert (xsd_outcome(document) == "accepts") == rule.accepts(value), repr(value)
