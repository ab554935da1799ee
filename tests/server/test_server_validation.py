"""The streaming validator: each fault of formats §3, at any chunk size, without a full tree."""

from __future__ import annotations

import pytest
from server_testlib import XSD, SampleFiles

from ipis_server.send.validation import (
    EnvelopeSchema,
    NotEncryptedFormat,
    NotWellFormed,
    SenderMismatch,
    StreamingValidator,
    UnknownElement,
    UploadFault,
)

FORMAT = "Ugyldig format på kryptert melding. Kjøringen avsluttes"
NOT_XML = "Feil ved sending av fil; Ikke gyldig XML."


@pytest.fixture(scope="module")
def schema() -> EnvelopeSchema:
    return EnvelopeSchema(XSD)


def check(schema: EnvelopeSchema, data: bytes, chunk: int = 65536,
          login: tuple[str, str] = ("0301", "00")) -> object:
    validator = StreamingValidator(schema, *login)
    for start in range(0, len(data), chunk):
        validator.feed(data[start:start + chunk])
    return validator.finish()


@pytest.mark.parametrize("chunk", [1, 7, 4096, 1 << 20])
def test_accepts_encrypted_file_at_any_chunk_size(schema: EnvelopeSchema, files: SampleFiles,
                                                  chunk: int) -> None:
    data = files.encrypted.read_bytes()
    envelope = check(schema, data, chunk)
    assert envelope.kommunenummer == "0301"  # type: ignore[attr-defined]
    assert envelope.tpf_key_name == "tpf-2026"  # type: ignore[attr-defined]


def _fault(schema: EnvelopeSchema, data: bytes, **kw: object) -> UploadFault:
    with pytest.raises(UploadFault) as caught:
        check(schema, data, **kw)  # type: ignore[arg-type]
    return caught.value


def test_cleartext_iplos_file_is_refused_as_not_encrypted(schema: EnvelopeSchema,
                                                          files: SampleFiles) -> None:
    fault = _fault(schema, files.cleartext.read_bytes())
    assert isinstance(fault, NotEncryptedFormat) and fault.cleartext
    assert fault.message == FORMAT


@pytest.mark.parametrize(
    ("edit", "kind", "message"),
    [
        (lambda d: d[: len(d) // 2], NotWellFormed, NOT_XML),
        (lambda d: b"hello", NotWellFormed, NOT_XML),
        (lambda d: d.replace(b"</Meldingstype>", b"</Meldingstype><Ukjent>1</Ukjent>", 1),
         UnknownElement, "Valideringsfeil. Ukjent tag navn: Ukjent"),
        (lambda d: d.replace(b"<xenc:CipherData>", b"<xenc:Fremmed/><xenc:CipherData>", 1),
         UnknownElement, "Valideringsfeil. Ukjent tag navn: xenc:Fremmed"),
        (lambda d: d.replace(b"</Mottaker>", b"</Mottaker><Meldingstype>X</Meldingstype>", 1),
         NotEncryptedFormat, FORMAT),
        (lambda d: d.replace(b'versjon="1"', b'versjon="9"', 1), NotEncryptedFormat, FORMAT),
        (lambda d: d.replace(b"aes256-gcm", b"aes128-gcm", 1), NotEncryptedFormat, FORMAT),
        (lambda d: d.replace(b"IPLOSKryptert", b"Annet"), NotEncryptedFormat, FORMAT),
        (lambda d: b'<?xml version="1.0"?><!DOCTYPE IPLOSKryptert [<!ENTITY x "y">]>'
         + d.split(b"?>", 1)[1], NotEncryptedFormat, FORMAT),
        (lambda d: d.replace(b"</xenc:CipherValue></xenc:CipherData></xenc:EncryptedData>",
                             b"!!</xenc:CipherValue></xenc:CipherData></xenc:EncryptedData>"),
         NotEncryptedFormat, FORMAT),
        (lambda d: b"", NotEncryptedFormat, FORMAT),
    ],
    ids=["truncated", "not-xml", "unknown", "unknown-xenc", "twice", "version", "algorithm",
         "root", "doctype", "bad-base64", "empty"],
)
def test_faults_have_the_seed_messages(schema: EnvelopeSchema, files: SampleFiles, edit: object,
                                       kind: type, message: str) -> None:
    data = edit(files.encrypted.read_bytes())  # type: ignore[operator]
    fault = _fault(schema, data)
    assert isinstance(fault, kind)
    assert fault.message == message


def test_kommunenummer_mismatch_names_both_numbers(schema: EnvelopeSchema,
                                                   files: SampleFiles) -> None:
    fault = _fault(schema, files.encrypted.read_bytes(), login=("1103", "00"))
    assert isinstance(fault, SenderMismatch)
    assert "0301" in fault.message and "1103" in fault.message
    assert "krypter filen på nytt" in fault.message
    assert "IPLOS-datafilen" in fault.message


def test_large_cipher_value_keeps_no_text(schema: EnvelopeSchema, files: SampleFiles) -> None:
    """A 20 MB CipherValue passes through in 1 MB chunks and is not kept: measured, the
    validator's Python allocations never reach a quarter of the value (keeping it as text
    would take 20 MB)."""
    import tracemalloc

    data = files.encrypted.read_bytes()
    head, _, rest = data.rpartition(b"<xenc:CipherValue>")
    body, _, tail = rest.partition(b"</xenc:CipherValue>")
    value = b"QUJD" * 5_000_000
    big = head + b"<xenc:CipherValue>" + value + b"</xenc:CipherValue>" + tail
    chunks = [big[start:start + (1 << 20)] for start in range(0, len(big), 1 << 20)]
    tracemalloc.start()
    try:
        validator = StreamingValidator(schema, "0301", "00")
        for chunk in chunks:
            validator.feed(chunk)
        envelope = validator.finish()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert envelope.kommunenummer == "0301"
    assert peak < len(value) // 4, f"peak {peak} bytes while validating"
    assert body  # the real value was there


def test_known_elements_match_the_schema() -> None:
    """The "Ukjent tag navn" list and the XSD must not drift apart."""
    import re

    from ipis_server.send.validation import KNOWN_ELEMENTS

    folder = XSD.parent
    declared_in = {
        name: set(re.findall(r'element name="([A-Za-z]+)"', (folder / name).read_text()))
        for name in ("ipis-kryptert.xsd", "xenc-profil.xsd", "xenc11-profil.xsd",
                     "xmldsig-profil.xsd", "iplos-felles.xsd")
    }
    envelope = set().union(*(v for k, v in declared_in.items() if k != "iplos-felles.xsd"))
    everything = set().union(*declared_in.values())
    known = {local for _namespace, local in KNOWN_ELEMENTS}
    assert envelope <= known
    assert known <= everything
