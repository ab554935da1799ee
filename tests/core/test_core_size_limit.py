"""The size limit of the TPF layer (docs/formater.md, "Size limit"): a file whose one TPF
CipherValue would pass libxml2's 1 000 000 000-byte text limit is refused, in the core that
``ipis encrypt`` and the page share, with no output at all. The bound is tested at the limit on
a small file by lowering it; the default is the libxml2 figure."""

from __future__ import annotations

import asyncio
import os
import pathlib
import re

import pytest
from ipis_testlib import CONTACT, TODAY, Keys, document, encrypt_bytes, open_message, person

import ipis_core.message
from ipis_core.crypto.native import NativeBackend
from ipis_core.faults import DataFileTooLarge
from ipis_core.message import (
    MAX_CIPHER_VALUE_CHARS,
    NO_PERSONS_WARNING,
    MessageEncryptor,
    cipher_value_chars,
)
from ipis_server.cli import main

CONTACT_ARGS = ["--email", "iplos@kommune.no", "--name", "Åse Ødegård", "--mobile", "912 34 567"]
# In the clear part, the CipherValue after the KeyInfo holding the TPF key (formats §3).
TPF_CIPHER_VALUE = re.compile(
    rb"</xenc:EncryptedKey></ds:KeyInfo><xenc:CipherData><xenc:CipherValue>([^<]*)<")


def tpf_cipher_value(encrypted: bytes) -> bytes:
    match = TPF_CIPHER_VALUE.search(encrypted)
    assert match
    return match.group(1)


def encrypt_with_limit(data: bytes, keys: Keys, limit: int) -> list[bytes]:
    """Output pieces until the end or the fault (the fault propagates)."""

    async def run() -> list[bytes]:
        encryptor = MessageEncryptor(
            keys.key_file, CONTACT, NativeBackend(), TODAY, max_cipher_value_chars=limit
        )
        out = []
        for start in range(0, len(data), 4096):
            out.append(await encryptor.feed(data[start : start + 4096]))
        out.append(await encryptor.finish())
        return out

    return asyncio.run(run())


def test_the_default_limit_is_libxml2s() -> None:
    assert MAX_CIPHER_VALUE_CHARS == 1_000_000_000
    # about 450 MB of IPLOS data makes a CipherValue of that length (2.2x, measured)
    assert "om lag 450 MB" in DataFileTooLarge(MAX_CIPHER_VALUE_CHARS).message


def test_cipher_value_chars_is_the_length_written(keys: Keys) -> None:
    for count in (0, 1, 2, 7):
        data = document([person() for _ in range(count)]).encode()
        encrypted, _ = encrypt_bytes(data, keys)
        value = tpf_cipher_value(encrypted)
        plaintext = open_message(encrypted, keys).tpf_plaintext
        assert len(value) == cipher_value_chars(len(plaintext))


def test_refused_one_character_over_the_limit_accepted_at_it(keys: Keys) -> None:
    data = document([person() for _ in range(40)]).encode()
    exact = len(tpf_cipher_value(encrypt_bytes(data, keys)[0]))
    at_limit = b"".join(encrypt_with_limit(data, keys, exact))
    assert len(tpf_cipher_value(at_limit)) == exact
    assert len(open_message(at_limit, keys).persons) == 40
    with pytest.raises(DataFileTooLarge) as raised:
        encrypt_with_limit(data, keys, exact - 1)
    limit_text = f"{exact - 1:,}".replace(",", "\u00a0")
    assert raised.value.message == (
        f"IPLOS filen er for stor: den krypterte delen for TPF ville blitt over {limit_text} "
        "tegn, som er grensen for hva standard XML-programmer kan lese. Del uttrekket i flere "
        "filer i fagsystemet, eller kontakt SSB."
    )
    assert raised.value.field == "data"


def test_cli_refuses_and_writes_nothing(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, keys: Keys,
    key_file_path: pathlib.Path, tmp_path: pathlib.Path,
) -> None:
    data = document([person() for _ in range(300)]).encode()
    exact = len(tpf_cipher_value(encrypt_bytes(data, keys)[0]))
    source, target = tmp_path / "iplos.xml", tmp_path / "ut"
    source.write_bytes(data)
    target.mkdir()
    monkeypatch.setattr(ipis_core.message, "MAX_CIPHER_VALUE_CHARS", exact - 1)
    status = main(["encrypt", "--data", str(source), "--out", str(target / "k.xml"), "--keys",
                   str(key_file_path), *CONTACT_ARGS, "--today", TODAY.isoformat()])
    err = capsys.readouterr().err
    assert status == 1
    assert err.startswith("IPLOS filen er for stor: den krypterte delen for TPF ville blitt over")
    assert os.listdir(target) == []  # no output file, no temporary file

    monkeypatch.setattr(ipis_core.message, "MAX_CIPHER_VALUE_CHARS", exact)
    status = main(["encrypt", "--data", str(source), "--out", str(target / "k.xml"), "--keys",
                   str(key_file_path), *CONTACT_ARGS, "--today", TODAY.isoformat()])
    assert status == 0
    assert os.listdir(target) == ["k.xml"]


def test_a_file_without_persons_warns(
    capsys: pytest.CaptureFixture[str], key_file_path: pathlib.Path, keys: Keys,
    tmp_path: pathlib.Path,
) -> None:
    _, summary = encrypt_bytes(document([]).encode(), keys)
    assert summary.persons == 0 and summary.warnings == [NO_PERSONS_WARNING]
    _, summary = encrypt_bytes(document([person()]).encode(), keys)
    assert NO_PERSONS_WARNING not in summary.warnings
    source = tmp_path / "tom.xml"
    source.write_bytes(document([]).encode())
    status = main(["encrypt", "--data", str(source), "--out", str(tmp_path / "k.xml"), "--keys",
                   str(key_file_path), *CONTACT_ARGS, "--today", TODAY.isoformat()])
    assert status == 0
    assert f"Advarsel: {NO_PERSONS_WARNING}" in capsys.readouterr().err
