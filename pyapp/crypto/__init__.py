"""The small crypto interface the core encrypts through.

Two backends implement it: ``native`` (the ``cryptography`` package, for the CLI and the
servers) and the browser's WebCrypto (web/, through Pyodide). The methods are async because
WebCrypto is; the native backend simply never suspends. Records are sealed in batches so the
browser crosses the Python/JavaScript boundary once per batch, not once per person.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any, Protocol

from ..rsakey import RsaPublicKey


class SealingStream(Protocol):
    """AES-256-GCM over a stream: the TPF layer, which is as large as the file."""

    iv: bytes

    async def update(self, plaintext: bytes) -> bytes:
        """Ciphertext for the next plaintext bytes (may lag behind the input)."""
        ...

    async def finish(self) -> bytes:
        """The remaining ciphertext followed by the 16-byte tag."""
        ...


class PendingRecords(Protocol):
    """Records being sealed (``CryptoBackend.start_sealing``): await it for the results."""

    def __await__(self) -> Generator[Any, None, list[bytes]]: ...

    def cancel(self) -> bool:
        """Stop the work if it can still be stopped (after a fault: nothing is written)."""
        ...


class CryptoBackend(Protocol):
    async def wrap_key(self, recipient: RsaPublicKey, content_key: bytes) -> bytes:
        """RSA-OAEP (SHA-256, MGF1-SHA-256) encryption of a content key."""
        ...

    async def seal_records(self, content_key: bytes, plaintexts: Sequence[bytes]) -> list[bytes]:
        """AES-256-GCM each plaintext under a fresh random 12-byte IV: IV ‖ ciphertext ‖ tag."""
        ...

    def start_sealing(self, content_key: bytes, plaintexts: Sequence[bytes]) -> PendingRecords:
        """``seal_records`` started now and awaited later: in the browser WebCrypto seals on
        its own threads meanwhile; natively the work is done at once."""
        ...

    def open_stream(self, content_key: bytes) -> SealingStream:
        """Start a streamed AES-256-GCM encryption under a fresh random IV."""
        ...
