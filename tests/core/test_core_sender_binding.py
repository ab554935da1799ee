"""Regression: the clear Avsender is bound to its encrypted copies (found in review).

Without the binding, whoever handles the file between the municipality and the TPF could
change the clear Kommunenummer (the one the send module compares with the login) unnoticed.
"""

from __future__ import annotations

import io

import pytest
from ipis_testlib import FNR, Keys, document, encrypt_bytes, person

from ipis_core import decrypt
from ipis_core.faults import SenderAltered


def _open(encrypted: bytes, keys: Keys) -> decrypt.OpenedMessage:
    return decrypt.open_message(io.BytesIO(encrypted), keys.tpf_private, keys.iplos_private)


def test_unchanged_sender_opens_and_the_register_learns_it(keys: Keys) -> None:
    encrypted, summary = encrypt_bytes(document([person(FNR[0])]).encode(), keys)
    opened = _open(encrypted, keys)
    assert summary.sender is not None
    assert opened.tpf.sender.kommunenummer == summary.sender.kommunenummer
    layer_sender = opened.tpf.sender
    opener_control = decrypt.RegisterOpener(
        keys.iplos_private, opened.tpf.register_key, opened.tpf.register_control
    )
    assert opener_control.sender == layer_sender


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("<Kommunenummer>0301</Kommunenummer>", "<Kommunenummer>4601</Kommunenummer>"),
        ("<Bydelsnummer>00</Bydelsnummer>", "<Bydelsnummer>01</Bydelsnummer>"),
    ],
)
def test_changed_clear_sender_is_refused(keys: Keys, old: str, new: str) -> None:
    encrypted, _ = encrypt_bytes(document([person(FNR[0])]).encode(), keys)
    text = encrypted.decode()
    assert text.count(old) == 1  # only the clear copy is readable
    with pytest.raises(SenderAltered) as raised:
        _open(text.replace(old, new).encode(), keys)
    assert "filen er endret etter krypteringen" in raised.value.message
