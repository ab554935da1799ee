"""The refusals the threat model promises (docs/trusselmodell.md), each tested directly on the
TPF's and the register's code (pyapp/decrypt.py): the wrong private key, an altered layer (the
GCM tag), and every downgrade of an algorithm URI."""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from ipis_testlib import FNR, NS, Keys, document, encrypt_bytes, gcm_open, parse, person, unwrap
from lxml import etree

from ipis_core import decrypt
from ipis_core.faults import AlgorithmNotAllowed, IplosFault, MissingEnvelopeElement

FORMAT = "Ugyldig format på kryptert melding. Kjøringen avsluttes"
XENC = "http://www.w3.org/2001/04/xmlenc#"
XENC11 = "http://www.w3.org/2009/xmlenc11#"
DS = "http://www.w3.org/2000/09/xmldsig#"


@pytest.fixture(scope="module")
def message(keys: Keys) -> bytes:
    data = document([person(FNR[i]) for i in range(3)]).encode()
    return encrypt_bytes(data, keys)[0]


def refused(data: bytes, tpf_pem: bytes, register_pem: bytes) -> IplosFault:
    """The fault ``decrypt.open_message`` refuses ``data`` with (it must refuse it)."""
    with pytest.raises(IplosFault) as caught:
        decrypt.open_message(io.BytesIO(data), decrypt.load_private_key(tpf_pem),
                             decrypt.load_private_key(register_pem))
    return caught.value


def refusal(data: bytes, tpf_pem: bytes, register_pem: bytes) -> str:
    return refused(data, tpf_pem, register_pem).message


def other_key_pem() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


# --- the wrong private key --------------------------------------------------------------------


def test_the_intact_message_opens(message: bytes, keys: Keys) -> None:
    opened = decrypt.open_message(io.BytesIO(message), decrypt.load_private_key(keys.tpf_pem),
                                  decrypt.load_private_key(keys.iplos_pem))
    assert opened.fodselsnumre == list(FNR[:3])


@pytest.mark.parametrize("wrong", ["register-key", "unrelated-key"])
def test_tpf_layer_refuses_the_wrong_private_key(message: bytes, keys: Keys, wrong: str) -> None:
    pem = keys.iplos_pem if wrong == "register-key" else other_key_pem()
    text = refusal(message, pem, keys.iplos_pem)
    assert text.startswith("Nøkkelen til TPF-laget kunne ikke dekrypteres: feil privat nøkkel")


@pytest.mark.parametrize("wrong", ["tpf-key", "unrelated-key"])
def test_register_layer_refuses_the_wrong_private_key(message: bytes, keys: Keys,
                                                      wrong: str) -> None:
    pem = keys.tpf_pem if wrong == "tpf-key" else other_key_pem()
    text = refusal(message, keys.tpf_pem, pem)
    assert text.startswith("Nøkkelen til registerlaget kunne ikke dekrypteres: feil privat nøkkel")


# --- an altered layer: the GCM tag ----------------------------------------------------------


def _tpf_cipher_value(root: etree._Element) -> etree._Element:
    return root.find("xenc:EncryptedData/xenc:CipherData/xenc:CipherValue", NS)


@pytest.mark.parametrize("where", ["iv", "first", "middle", "last", "tag"])
def test_an_altered_tpf_layer_fails_its_gcm_tag(message: bytes, keys: Keys, where: str) -> None:
    """One bit flipped anywhere in IV ‖ ciphertext ‖ tag: the TPF refuses the file."""
    root = parse(message)
    value = _tpf_cipher_value(root)
    blob = bytearray(base64.b64decode(value.text))
    index = {"iv": 5, "first": 12, "middle": len(blob) // 2, "last": len(blob) - 17,
             "tag": len(blob) - 3}[where]
    blob[index] ^= 0x01
    value.text = base64.b64encode(bytes(blob)).decode()
    text = refusal(etree.tostring(root), keys.tpf_pem, keys.iplos_pem)
    assert text == "TPF-laget kunne ikke dekrypteres: filen er endret eller skadet."


def test_a_tpf_layer_cut_short_is_refused(message: bytes, keys: Keys) -> None:
    root = parse(message)
    value = _tpf_cipher_value(root)
    value.text = base64.b64encode(base64.b64decode(value.text)[:-3]).decode()
    assert refusal(etree.tostring(root), keys.tpf_pem, keys.iplos_pem) == (
        "TPF-laget kunne ikke dekrypteres: filen er endret eller skadet."
    )


# --- changes inside the TPF layer, made by someone holding the TPF's key ------------------------


def rewrite_tpf_layer(message: bytes, keys: Keys, edit: Callable[[bytes], bytes]) -> bytes:
    """Decrypt the TPF layer, ``edit`` its plaintext and encrypt it again under its own key:
    what the TPF itself (or a thief of its key) could do, so only the register can object."""
    root = parse(message)
    tpf_key = unwrap(root.find("xenc:EncryptedData/ds:KeyInfo/xenc:EncryptedKey", NS),
                     keys.tpf_private)
    value = _tpf_cipher_value(root)
    plaintext = edit(gcm_open(tpf_key, base64.b64decode(value.text)))
    iv = os.urandom(12)
    value.text = base64.b64encode(iv + AESGCM(tpf_key).encrypt(iv, plaintext, None)).decode()
    return etree.tostring(root)


def test_an_altered_person_record_fails_its_gcm_tag(message: bytes, keys: Keys) -> None:
    def flip_in_second_record(plaintext: bytes) -> bytes:
        tpf = parse(plaintext)
        value = tpf.findall("Personer/Person/xenc:EncryptedData/xenc:CipherData/"
                            "xenc:CipherValue", NS)[1]
        blob = bytearray(base64.b64decode(value.text))
        blob[20] ^= 0x80
        value.text = base64.b64encode(bytes(blob)).decode()
        return etree.tostring(tpf)

    text = refusal(rewrite_tpf_layer(message, keys, flip_in_second_record), keys.tpf_pem,
                   keys.iplos_pem)
    assert text == ("Personposten med løpenummer 2 kan ikke dekrypteres med denne filens "
                    "registernøkkel: den hører til en annen fil, eller den er endret.")


def test_rewriting_the_tpf_layer_unchanged_still_opens(message: bytes, keys: Keys) -> None:
    """The helper above changes nothing by itself: the refusals come from the edits."""
    same = rewrite_tpf_layer(message, keys, lambda plaintext: plaintext)
    opened = decrypt.open_message(io.BytesIO(same), decrypt.load_private_key(keys.tpf_pem),
                                  decrypt.load_private_key(keys.iplos_pem))
    assert opened.fodselsnumre == list(FNR[:3])


# --- algorithm URIs downgraded ------------------------------------------------------------------

GCM = f'Algorithm="{XENC11}aes256-gcm"'
OAEP = f'Algorithm="{XENC11}rsa-oaep"'
MGF = f'<xenc11:MGF Algorithm="{XENC11}mgf1sha256"/>'
DIGEST = f'Algorithm="{XENC}sha256"'
# downgrade: (what is replaced, by what, the fault class and the words of its detail that name
# the check that must catch it)
DOWNGRADES = {
    "aes256-cbc": (GCM, f'Algorithm="{XENC}aes256-cbc"', AlgorithmNotAllowed, "aes256-gcm"),
    "aes128-gcm": (GCM, f'Algorithm="{XENC11}aes128-gcm"', AlgorithmNotAllowed, "aes256-gcm"),
    "rsa-1_5": (OAEP, f'Algorithm="{XENC}rsa-1_5"', AlgorithmNotAllowed,
                "EncryptionMethod/@Algorithm er ikke http://www.w3.org/2009/xmlenc11#rsa-oaep"),
    "rsa-oaep-mgf1p": (OAEP, f'Algorithm="{XENC}rsa-oaep-mgf1p"', AlgorithmNotAllowed,
                       "EncryptionMethod/@Algorithm er ikke http://www.w3.org/2009/xmlenc11#rsa-oaep"),
    # MGF1 with SHA-1 by default
    "oaep-without-mgf": (MGF, "", MissingEnvelopeElement, "mangler xenc11:MGF"),
    "mgf1-sha1": (MGF, f'<xenc11:MGF Algorithm="{XENC11}mgf1sha1"/>', AlgorithmNotAllowed,
                  "MGF/@Algorithm er ikke"),
    "oaep-digest-sha1": (DIGEST, f'Algorithm="{DS}sha1"', AlgorithmNotAllowed,
                         "DigestMethod/@Algorithm er ikke"),
}


@pytest.mark.parametrize("downgrade", DOWNGRADES)
def test_a_downgraded_tpf_layer_is_refused(message: bytes, keys: Keys, downgrade: str) -> None:
    """In the clear envelope: the TPF layer's content encryption or its key transport."""
    old, new, fault_class, check = DOWNGRADES[downgrade]
    head, tail = message.split(b"<xenc:CipherValue>", 1)  # before the TPF layer's ciphertext
    assert old.encode() in head
    changed = head.replace(old.encode(), new.encode(), 1) + b"<xenc:CipherValue>" + tail
    fault = refused(changed, keys.tpf_pem, keys.iplos_pem)
    assert fault.message == FORMAT
    assert isinstance(fault, fault_class), type(fault)
    assert check in fault.detail  # type: ignore[attr-defined]


@pytest.mark.parametrize("downgrade", DOWNGRADES)
def test_a_downgraded_register_layer_is_refused(message: bytes, keys: Keys,
                                                downgrade: str) -> None:
    """Inside the TPF layer: the register key's transport, or a person's encryption."""
    old, new, fault_class, check = DOWNGRADES[downgrade]

    def downgrade_register(plaintext: bytes) -> bytes:
        assert old.encode() in plaintext
        return plaintext.replace(old.encode(), new.encode())

    changed = rewrite_tpf_layer(message, keys, downgrade_register)
    fault = refused(changed, keys.tpf_pem, keys.iplos_pem)
    assert fault.message == FORMAT
    assert isinstance(fault, fault_class), type(fault)
    assert check in fault.detail  # type: ignore[attr-defined]
