"""Writing what the TPF sends the register (docs/formater.md §4 and §6), as a stream (native).

Both messages are a small clear part and one ``xenc:EncryptedData`` encrypted to the register's
current key with the profile of §3: a fresh AES-256-GCM content key per message, wrapped with
RSA-OAEP (SHA-256, MGF1-SHA-256). The plaintext is encrypted as it is produced and only the
ciphertext, base64 on one line, reaches the sink (the TPF's temporary file): memory stays flat
and no plaintext is ever written anywhere.
"""

from __future__ import annotations

import binascii
import os
from typing import Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from .crypto.native import OAEP_SHA256
from .message import Base64Stream
from .reader import escape_text
from .rsakey import RsaPublicKey
from .xmlenc import (
    AES256_GCM,
    CONTENT_KEY_BYTES,
    FORMAT_VERSION,
    GCM_IV_BYTES,
    NAMESPACE_DECLARATIONS,
    REGISTER_RECIPIENT,
    TYPE_ELEMENT,
    encrypted_key_xml,
)

PSEUDONYMISED_ROOT = "IPLOSPseudonymisert"
PSEUDONYMISED_CONTENT_ROOT = "IPLOSPseudonymisertInnhold"
PSEUDONYMISED_LAYER_ID = "pseudonymisert-lag"
MAPPING_ROOT = "IPLOSPseudonymbytte"
MAPPING_CONTENT_ROOT = "IPLOSPseudonymbytteInnhold"
MAPPING_LAYER_ID = "pseudonymbytte-lag"
REGISTER_TRANSPORT_KEY_ID = "register-transportnokkel"  # the EncryptedKey of both messages
INVALID_NUMBER_MARK = "ja"  # Person/@ugyldigFodselsnummer
FLUSH_BYTES = 256 * 1024  # plaintext gathered before it is encrypted (fewer, larger calls)


class Sink(Protocol):
    def write(self, data: bytes, /) -> object: ...


def leaf(name: str, value: str) -> str:
    return f"<{name}>{escape_text(value)}</{name}>"


class RegisterLayerWriter:
    """``<root versjon="1">clear…<xenc:EncryptedData Id=layer_id>…</xenc:EncryptedData></root>``
    with the encrypted layer's plaintext fed by ``write`` and sealed by ``finish``."""

    def __init__(
        self,
        sink: Sink,
        root: str,
        layer_id: str,
        clear_xml: str,
        register_key: RsaPublicKey,
    ) -> None:
        self._sink = sink
        self._root = root
        content_key = os.urandom(CONTENT_KEY_BYTES)  # fresh per message (formats §3, §4)
        public = serialization.load_der_public_key(register_key.spki_der())
        assert isinstance(public, rsa.RSAPublicKey)
        wrapped = public.encrypt(content_key, OAEP_SHA256)
        iv = os.urandom(GCM_IV_BYTES)  # random 96-bit IV: one message per key
        self._encryptor = Cipher(algorithms.AES(content_key), modes.GCM(iv)).encryptor()
        self._base64 = Base64Stream()
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        head = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<{root} versjon="{FORMAT_VERSION}" {NAMESPACE_DECLARATIONS}>\n'
            f"{clear_xml}"
            f'<xenc:EncryptedData Id="{layer_id}" Type="{TYPE_ELEMENT}">'
            f'<xenc:EncryptionMethod Algorithm="{AES256_GCM}"/>'
            "<ds:KeyInfo>"
            + encrypted_key_xml(
                binascii.b2a_base64(wrapped, newline=False).decode(),
                register_key.key_id,
                REGISTER_TRANSPORT_KEY_ID,
                REGISTER_RECIPIENT,
            )
            + "</ds:KeyInfo><xenc:CipherData><xenc:CipherValue>"
        )
        self._sink.write(head.encode() + self._base64.update(iv))

    def write(self, plaintext: bytes) -> None:
        self._pending.append(plaintext)
        self._pending_bytes += len(plaintext)
        if self._pending_bytes >= FLUSH_BYTES:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            self._pending_bytes = 0
            self._sink.write(self._base64.update(self._encryptor.update(data)))

    def finish(self) -> None:
        self._flush()
        tail = self._encryptor.finalize() + self._encryptor.tag
        self._sink.write(
            self._base64.update(tail)
            + self._base64.finish()
            + f"</xenc:CipherValue></xenc:CipherData></xenc:EncryptedData>\n</{self._root}>\n"
            .encode()
        )
