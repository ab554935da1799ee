"""The crypto interface on the ``cryptography`` package (OpenSSL): CLI, TPF, register, tests."""

from __future__ import annotations

import os
from collections.abc import Generator, Sequence
from itertools import repeat
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..rsakey import RsaPublicKey
from ..xmlenc import GCM_IV_BYTES

# OAEP with SHA-256 as both the digest and the MGF1 hash: matches the xmlenc11 rsa-oaep +
# mgf1sha256 URIs and WebCrypto's RSA-OAEP/SHA-256.
OAEP_SHA256 = padding.OAEP(
    mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None
)


def seal_records_now(content_key: bytes, plaintexts: Sequence[bytes]) -> list[bytes]:
    """``CryptoBackend.seal_records`` without a coroutine (``ipis encrypt``'s segments)."""
    aead = AESGCM(content_key)
    # Random 96-bit IVs, drawn for the whole batch at once: 100 000 records per key (1 100 000
    # in a 500 MB file) is far below the 2^32 messages NIST SP 800-38D allows with random IVs.
    ivs = os.urandom(GCM_IV_BYTES * len(plaintexts))
    iv_list = [ivs[i : i + GCM_IV_BYTES] for i in range(0, len(ivs), GCM_IV_BYTES)]
    # C-level maps: no Python step per record (100 000 of them).
    ciphertexts = map(aead.encrypt, iv_list, plaintexts, repeat(None))
    return list(map(bytes.__add__, iv_list, ciphertexts))


class SealedNow:
    """Records already sealed, as ``start_sealing``'s awaitable: awaiting it never suspends,
    so ``ipis encrypt`` runs its coroutines without an event loop (and without importing
    asyncio, about 30 ms of every run)."""

    def __init__(self, sealed: list[bytes]) -> None:
        self._sealed = sealed

    def __await__(self) -> Generator[Any, None, list[bytes]]:
        return self._sealed
        yield  # a generator that returns at once: the await never suspends

    def cancel(self) -> bool:
        return False  # nothing left to stop


class NativeSealingStream:
    def __init__(self, content_key: bytes) -> None:
        self.iv = os.urandom(GCM_IV_BYTES)
        self._encryptor = Cipher(algorithms.AES(content_key), modes.GCM(self.iv)).encryptor()

    async def update(self, plaintext: bytes) -> bytes:
        return self._encryptor.update(plaintext)

    async def finish(self) -> bytes:
        tail = self._encryptor.finalize()
        return tail + self._encryptor.tag


class NativeBackend:
    async def wrap_key(self, recipient: RsaPublicKey, content_key: bytes) -> bytes:
        public_key = serialization.load_der_public_key(recipient.spki_der())
        assert isinstance(public_key, rsa.RSAPublicKey)
        return public_key.encrypt(content_key, OAEP_SHA256)

    async def seal_records(self, content_key: bytes, plaintexts: Sequence[bytes]) -> list[bytes]:
        return seal_records_now(content_key, plaintexts)

    def start_sealing(self, content_key: bytes, plaintexts: Sequence[bytes]) -> SealedNow:
        return SealedNow(seal_records_now(content_key, plaintexts))

    def open_stream(self, content_key: bytes) -> NativeSealingStream:
        return NativeSealingStream(content_key)
