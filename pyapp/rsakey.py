"""RSA public keys as the key file carries them, and their SubjectPublicKeyInfo fingerprint.

Pure standard library so that the browser (Pyodide) can show the same fingerprints and hand
WebCrypto an SPKI to import; the native backend imports the same DER.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

# rsaEncryption, 1.2.840.113549.1.1.1, with its NULL parameters (RFC 8017 A.1).
_RSA_ALGORITHM_IDENTIFIER = bytes.fromhex("300d06092a864886f70d0101010500")


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _der(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + _der_length(len(body)) + body


def _der_integer(value: int) -> bytes:
    body = value.to_bytes(value.bit_length() // 8 + 1, "big")  # leading 0 keeps it positive
    return _der(0x02, body)


@dataclass(frozen=True)
class RsaPublicKey:
    """One recipient's key: ``key_id`` is the key file's ``id`` and becomes ds:KeyName."""

    key_id: str
    modulus: int
    exponent: int

    @property
    def bits(self) -> int:
        return self.modulus.bit_length()

    def spki_der(self) -> bytes:
        rsa_public_key = _der(0x30, _der_integer(self.modulus) + _der_integer(self.exponent))
        bit_string = _der(0x03, b"\x00" + rsa_public_key)
        return _der(0x30, _RSA_ALGORITHM_IDENTIFIER + bit_string)

    def fingerprint(self) -> str:
        """SHA-256 of the DER SubjectPublicKeyInfo, hex in groups of four (formats §2)."""
        digest = hashlib.sha256(self.spki_der()).hexdigest()
        return " ".join(digest[i : i + 4] for i in range(0, len(digest), 4))
