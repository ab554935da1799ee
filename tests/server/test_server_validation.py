"""The upload's validator (the core's envelope reader, with the login and the served key names):
each fault of formats §3, at any chunk size, and only validated bytes handed on for storage."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from server_testlib import XSD, SampleFiles

from ipis_core.envelope_grammar import KNOWN_ELEMENTS
from ipis_core.faults import (
    AlgorithmNotAllowed,
    CipherValueInvalid,
    CleartextIplosFile,
    EmptyMessage,
    EncryptedMessageFault,
    InvalidEnvelopeValue,
    MarkupNotAllowed,
    MisplacedEnvelopeElement,
    NotWellFormed,
    SenderDiffersFromLogin,
    UnknownEnvelopeElement,
    UnknownKeyName,
    WrongRootElement,
)
from ipis_server.send.validation import ServedKeyNames, UploadValidator, refusal_status

FORMAT = "Ugyldig format på kryptert melding. Kjøringen avsluttes"
NOT_XML = "Feil ved sending av fil; Ikke gyldig XML."
KEY_NAMES = frozenset({"tpf-2026"})


def check(data: bytes, chunk: int = 65536, login: tuple[str, str] = ("0301", "00"),
          key_names: frozenset[str] = KEY_NAMES) -> tuple[bytes, object]:
    """Feed ``data`` in chunks; return the bytes handed on for storage and the envelope."""
    validator = UploadValidator(key_names, *login)
    stored = b""
    for start in range(0, len(data), chunk):
        stored += validator.feed(data[start:start + chunk])
    rest, envelope = validator.finish()
    return stored + rest, envelope


@pytest.mark.parametrize("chunk", [1, 7, 4096, 1 << 20])
def test_accepts_encrypted_file_at_any_chunk_size(files: SampleFiles, chunk: int) -> None:
    data = files.encrypted.read_bytes()
    stored, envelope = check(data, chunk)
    assert envelope.kommunenummer == "0301"  # type: ignore[attr-defined]
    assert envelope.tpf_key.key_name == "tpf-2026"  # type: ignore[attr-defined]
    assert stored == data  # every byte handed on once, in order, after it was checked


def _fault(data: bytes, **kw: object) -> EncryptedMessageFault:
    with pytest.raises(EncryptedMessageFault) as caught:
        check(data, **kw)  # type: ignore[arg-type]
    return caught.value


def test_cleartext_iplos_file_is_refused_as_not_encrypted(files: SampleFiles) -> None:
    fault = _fault(files.cleartext.read_bytes())
    assert isinstance(fault, CleartextIplosFile)
    assert refusal_status(fault) == 422
    assert fault.message == FORMAT


@pytest.mark.parametrize(
    ("edit", "kind", "message"),
    [
        (lambda d: d[: len(d) // 2], NotWellFormed, NOT_XML),
        (lambda d: b"hello", NotWellFormed, NOT_XML),
        (lambda d: d.replace(b"</Meldingstype>", b"</Meldingstype><Ukjent>1</Ukjent>", 1),
         UnknownEnvelopeElement, "Valideringsfeil. Ukjent tag navn: Ukjent"),
        (lambda d: d.replace(b"<xenc:CipherData>", b"<xenc:Fremmed/><xenc:CipherData>", 1),
         UnknownEnvelopeElement, "Valideringsfeil. Ukjent tag navn: xenc:Fremmed"),
        (lambda d: d.replace(b"</Mottaker>", b"</Mottaker><Meldingstype>X</Meldingstype>", 1),
         MisplacedEnvelopeElement, FORMAT),
        (lambda d: d.replace(b'versjon="1"', b'versjon="9"', 1), InvalidEnvelopeValue, FORMAT),
        (lambda d: d.replace(b"aes256-gcm", b"aes128-gcm", 1), AlgorithmNotAllowed, FORMAT),
        (lambda d: d.replace(b"IPLOSKryptert", b"Annet"), WrongRootElement, FORMAT),
        (lambda d: b'<?xml version="1.0"?><!DOCTYPE IPLOSKryptert [<!ENTITY x "y">]>'
         + d.split(b"?>", 1)[1], MarkupNotAllowed, FORMAT),
        (lambda d: d.replace(b"</xenc:CipherValue></xenc:CipherData></xenc:EncryptedData>",
                             b"!!</xenc:CipherValue></xenc:CipherData></xenc:EncryptedData>"),
         CipherValueInvalid, FORMAT),
        (lambda d: b"", EmptyMessage, FORMAT),
    ],
    ids=["truncated", "not-xml", "unknown", "unknown-xenc", "twice", "version", "algorithm",
         "root", "doctype", "bad-base64", "empty"],
)
def test_faults_have_the_seed_messages(files: SampleFiles, edit: object, kind: type,
                                       message: str) -> None:
    data = edit(files.encrypted.read_bytes())  # type: ignore[operator]
    fault = _fault(data)
    assert isinstance(fault, kind)
    assert fault.message == message


def test_kommunenummer_mismatch_names_both_numbers(files: SampleFiles) -> None:
    data = files.encrypted.read_bytes()
    validator = UploadValidator(KEY_NAMES, "1103", "00")
    with pytest.raises(SenderDiffersFromLogin) as caught:
        validator.feed(data)
    message = caught.value.message
    assert "0301" in message and "1103" in message
    assert "krypter filen på nytt" in message
    assert "IPLOS-datafilen" in message


def test_kommunenummer_mismatch_is_found_before_the_tpf_layer_is_handed_on(
        files: SampleFiles) -> None:
    """Refused at the end of the clear Avsender: not a byte of the TPF layer is returned."""
    data = files.encrypted.read_bytes()
    validator = UploadValidator(KEY_NAMES, "1103", "00")
    stored = b""
    with pytest.raises(SenderDiffersFromLogin):
        for start in range(0, len(data), 16):
            stored += validator.feed(data[start:start + 16])
    assert b"</Avsender>" not in stored and b"EncryptedData" not in stored


def test_a_key_name_the_send_module_does_not_serve_is_refused(files: SampleFiles) -> None:
    fault = _fault(files.encrypted.read_bytes(), key_names=frozenset({"tpf-2025"}))
    assert isinstance(fault, UnknownKeyName)
    assert "nøkkel som ikke er i bruk" in fault.message


def test_large_cipher_value_keeps_no_text(files: SampleFiles) -> None:
    """A 20 MB CipherValue passes through in 1 MB chunks, handed on as it is checked and not
    kept: measured, the validator's Python allocations never reach a quarter of the value
    (keeping it as text would take 20 MB)."""
    import tracemalloc

    data = files.encrypted.read_bytes()
    head, _, rest = data.rpartition(b"<xenc:CipherValue>")
    body, _, tail = rest.partition(b"</xenc:CipherValue>")
    value = b"QUJD" * 5_000_000
    big = head + b"<xenc:CipherValue>" + value + b"</xenc:CipherValue>" + tail
    chunks = [big[start:start + (1 << 20)] for start in range(0, len(big), 1 << 20)]
    validator = UploadValidator(KEY_NAMES, "0301", "00")
    handed_on = 0
    fed = 0
    tracemalloc.start()
    try:
        for chunk in chunks:
            handed_on += len(validator.feed(chunk))
            fed += len(chunk)
            assert fed - handed_on <= 4096  # at most one small token held back
        rest_bytes, envelope = validator.finish()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert envelope.kommunenummer == "0301"
    assert handed_on + len(rest_bytes) == len(big)
    assert peak < len(value) // 4, f"peak {peak} bytes while validating"
    assert body  # the real value was there


def test_served_key_names_follow_the_key_file(tmp_path: Path, files: SampleFiles) -> None:
    """Re-read when the file changes (a key rotation needs no restart); none when missing."""
    import os
    import shutil

    key_file = tmp_path / "nokkelfil.xml"
    served = ServedKeyNames(key_file)
    assert served.current() == frozenset()
    shutil.copyfile(files.keys / "nokkelfil.xml", key_file)
    assert served.current() == frozenset({"tpf-2026"})
    text = key_file.read_bytes().decode("utf-16").replace('id="tpf-2026"', 'id="tpf-2027"')
    key_file.write_bytes(text.encode("utf-16"))
    os.utime(key_file, ns=(1, 1))  # a different stamp even on a coarse clock
    assert served.current() == frozenset({"tpf-2027"})
    key_file.write_bytes(b"<IPLOSKrypteringsnokler/>")
    assert served.current() == frozenset()


def test_known_elements_match_the_schema() -> None:
    """The "Ukjent tag navn" list (from the grammar) and the XSD must not drift apart."""
    folder = XSD.parent
    declared_in = {
        name: set(re.findall(r'element name="([A-Za-z]+)"', (folder / name).read_text()))
        for name in ("ipis-kryptert.xsd", "xenc-profil.xsd", "xenc11-profil.xsd",
                     "xmldsig-profil.xsd", "iplos-felles.xsd")
    }
    envelope = set().union(*(v for k, v in declared_in.items() if k != "iplos-felles.xsd"))
    everything = set().union(*declared_in.values())
    known = {name.rpartition(" ")[2] for name in KNOWN_ELEMENTS}
    assert envelope <= known
    assert known <= everything
