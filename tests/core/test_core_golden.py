"""tests/vectors/message: a file made by an earlier build still opens (format stability)."""

from __future__ import annotations

import io

from ipis_testlib import VECTORS, canonical, input_persons, parse

from ipis_core import decrypt
from ipis_core.keyfile import parse_key_file

FOLDER = VECTORS / "message"


def test_golden_message_opens_with_pyapp_decrypt() -> None:
    data = (FOLDER / "iplos.xml").read_bytes()
    opened = decrypt.open_message(
        io.BytesIO((FOLDER / "kryptert.xml").read_bytes()),
        decrypt.load_private_key((FOLDER / "tpf-privat.pem").read_bytes()),
        decrypt.load_private_key((FOLDER / "iplos-privat.pem").read_bytes()),
    )
    expected = input_persons(data)
    assert opened.fodselsnumre == [fnr for fnr, _ in expected]
    for record, (_, children) in zip(opened.records, expected, strict=True):
        root = parse(record.person_xml)
        assert [canonical(c) for c in root if isinstance(c.tag, str)] == children
    assert opened.tpf.contact.name == "Åse Ødegård"
    assert opened.tpf.contact.mobile == "91234567"


def test_golden_key_file_names_the_keys_of_the_message() -> None:
    key_file = parse_key_file((FOLDER / "nokkelfil.xml").read_bytes())
    text = (FOLDER / "kryptert.xml").read_text(encoding="utf-8")
    assert f"<ds:KeyName>{key_file.tpf.key_id}</ds:KeyName>" in text


def test_non_ascii_in_a_cipher_value_is_a_format_fault_not_a_traceback() -> None:
    """binascii.a2b_base64 raises ValueError (not binascii.Error) for non-ASCII str input."""
    import pytest

    from ipis_core.faults import IplosFault

    data = (FOLDER / "kryptert.xml").read_bytes()
    tpf = decrypt.load_private_key((FOLDER / "tpf-privat.pem").read_bytes())
    register = decrypt.load_private_key((FOLDER / "iplos-privat.pem").read_bytes())
    first = data.index(b"<xenc:CipherValue>") + len(b"<xenc:CipherValue>")
    last = data.rindex(b"<xenc:CipherValue>") + len(b"<xenc:CipherValue>")
    for at in (first, last):  # the wrapped TPF key, then the TPF layer itself
        damaged = data[:at] + "å".encode() + data[at:]
        with pytest.raises(IplosFault):
            decrypt.open_message(io.BytesIO(damaged), tpf, register)


def test_unknown_encoding_in_an_encrypted_message_is_a_format_fault() -> None:
    """expat raises LookupError (not ExpatError) for an encoding it does not know."""
    import pytest

    from ipis_core.faults import IplosFault
    from ipis_core.inspect import inspect_file

    data = (FOLDER / "kryptert.xml").read_bytes().replace(b'encoding="UTF-8"', b'encoding="X-8"', 1)
    tpf = decrypt.load_private_key((FOLDER / "tpf-privat.pem").read_bytes())
    register = decrypt.load_private_key((FOLDER / "iplos-privat.pem").read_bytes())
    with pytest.raises(IplosFault):
        decrypt.open_message(io.BytesIO(data), tpf, register)
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".xml") as handle:
        handle.write(data)
        handle.flush()
        with pytest.raises(IplosFault):
            inspect_file(handle.name)
