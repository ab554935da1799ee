"""Fuzzing the envelope reader (issue 7.15): mutated envelopes and random bytes, fed in random
pieces, give a fault of ours or an envelope that really holds nothing but its fields, never a
traceback; and the answer does not depend on how the bytes were cut.

Bounded here (``IPIS_FUZZ_EXAMPLES``, default 150); ``scripts/fuzz.py envelope`` runs the same
properties for longer and keeps any input that crashes the reader in
tests/vectors/envelope/fuzz-corpus/, which every run replays (tests/fuzz_corpus.py).
"""

from __future__ import annotations

import json
import re

import pytest
from fuzz_corpus import corpus, examples, keep_if_final
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ipis_testlib import VECTORS
from lxml import etree

from ipis_core.clear_part import holds_fodselsnummer
from ipis_core.envelope import EnvelopeReader
from ipis_core.faults import EncryptedMessageFault
from ipis_core.schemas import ENVELOPE_XSD

FOLDER = VECTORS / "envelope"
CORPUS = FOLDER / "fuzz-corpus"
EXPECTED = json.loads((FOLDER / "expected.json").read_text(encoding="utf-8"))
KEY_NAMES = frozenset(EXPECTED["key_names"])
BASES = [(FOLDER / "valid" / c["file"]).read_bytes() for c in EXPECTED["valid"]]
SETTINGS = settings(max_examples=examples(150), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

SNIPPETS = [
    b"<", b">", b"</", b"/>", b"<!--", b"-->", b"<?x y?>", b"<![CDATA[", b"]]>", b"&", b"&amp;",
    b"&#49;", b"&#x31;", b"&x;", b"\x00", b"\xff", b"\xc3", b"\xef\xbb\xbf", b'"', b"'", b"=",
    b"<!DOCTYPE x>", b" ", b"\n", b"\t", b"15857010032", b"158570 10032", b"<a>", b"</a>",
    b"<xenc:CipherValue>", b"</xenc:CipherValue>", b"<ds:KeyName>", b'xmlns:a="urn:a"',
    b'xmlns="urn:a"', b"A" * 3000, b" " * 2100, b"AAAA", b"====", b"<Navn>", b"</Navn>",
    b"<Meldingstype>IPLOS</Meldingstype>", b'Id="tpf-lag"', b"<?xml version='1.0'?>",
]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        start = draw(st.integers(0, len(data) - 1))
        end = draw(st.integers(start, min(len(data), start + 40)))
        action = draw(st.sampled_from(["delete", "insert", "replace", "truncate", "duplicate"]))
        if action == "delete":
            del data[start:end]
        elif action == "insert":
            data[start:start] = draw(st.sampled_from(SNIPPETS))
        elif action == "replace":
            data[start:end] = draw(st.binary(max_size=end - start + 2))
        elif action == "truncate":
            del data[start:]
        else:
            data[start:start] = data[start:end]
    return bytes(data)


def cut(data: bytes, sizes: list[int]) -> list[bytes]:
    pieces, at, index = [], 0, 0
    while at < len(data):
        size = sizes[index % len(sizes)]
        pieces.append(data[at : at + size])
        at += size
        index += 1
    return pieces


def outcome(pieces: list[bytes]) -> tuple[str, bytes]:
    """("ok", bytes handed back) or (fault class name, b""); anything else is a crash."""
    reader = EnvelopeReader(KEY_NAMES)
    handed = []
    try:
        for piece in pieces:
            handed.append(reader.feed(piece))
        handed.append(reader.close())
    except EncryptedMessageFault as fault:
        assert fault.message and "\n" not in fault.message
        assert "15857010032" not in fault.message + fault.detail
        return type(fault).__name__, b""
    return "ok", b"".join(handed)


_SAFE = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
_SCHEMA = etree.XMLSchema(etree.parse(str(ENVELOPE_XSD)))
_TPF_CIPHER_VALUE = (
    "{http://www.w3.org/2001/04/xmlenc#}EncryptedData/{http://www.w3.org/2001/04/xmlenc#}"
    "CipherData/{http://www.w3.org/2001/04/xmlenc#}CipherValue"
)


def check_accepted(data: bytes) -> None:
    """What the reader accepted, read by another parser: nothing but the envelope's fields."""
    declared = data.lstrip(b"\xef\xbb\xbf").startswith(b"<?xml")
    body = data[data.index(b"?>") + 2 :] if declared else data
    assert b"<!" not in body and b"<?" not in body  # no comment, PI, CDATA or DOCTYPE
    root = etree.fromstring(data, _SAFE)
    assert _SCHEMA.validate(root), _SCHEMA.error_log  # the code is never laxer than the XSD
    streamed = root.find(_TPF_CIPHER_VALUE)
    for element in root.iter():
        values = list(element.attrib.values())
        if element is not streamed:
            values += [element.text or "", element.tail or ""]
        assert not any(holds_fodselsnummer(v) for v in values)
    assert not re.search(rb"[0-9]{11}", data[: data.rindex(b"<xenc:CipherValue>")])


def run_case(data: bytes, sizes: list[int]) -> None:
    try:
        pieced = outcome(cut(data, sizes))
        whole = outcome([data])
        assert pieced[0] == whole[0], (pieced[0], whole[0])  # the cuts do not matter
        if whole[0] == "ok":
            assert pieced[1] == whole[1] == data
            check_accepted(data)
    except BaseException:
        keep_if_final(CORPUS, data)
        raise


@SETTINGS
@given(data=mutated() | st.binary(max_size=400),
       sizes=st.lists(st.integers(1, 5000), min_size=1, max_size=6))
def test_fuzzed_envelopes_give_a_fault_or_a_clean_envelope(data: bytes, sizes: list[int]) -> None:
    run_case(data, sizes)


@pytest.mark.parametrize("path", corpus(CORPUS), ids=lambda p: p.name)
def test_fuzz_corpus_is_handled(path: object) -> None:
    """Inputs that once crashed the reader (found by scripts/fuzz.py)."""
    data = path.read_bytes()  # type: ignore[attr-defined]
    for sizes in ([1], [7, 4096], [1 << 20]):
        run_case(data, sizes)
