"""The crypto interface on the browser's WebCrypto, for the core running in Pyodide (web/).

Only imported inside the page's worker: ``js`` is the worker's global scope, where
web/worker.js defines ``ipisCrypto``, which hands the AES-256-GCM work to a second worker
(web/sealer.js) running on the other core. Keys and data cross the Python/JavaScript boundary
as copies (``to_js`` / ``to_bytes``); per-person records cross once per batch.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence
from typing import Any

import js  # type: ignore[import-not-found]
from pyodide.ffi import to_js  # type: ignore[import-not-found]

from ..rsakey import RsaPublicKey
from ..xmlenc import CONTENT_KEY_BYTES, GCM_IV_BYTES, GCM_TAG_BYTES

_SEAL_OVERHEAD = GCM_IV_BYTES + GCM_TAG_BYTES


def _bytes(value: Any) -> bytes:
    """A JavaScript Uint8Array as Python bytes."""
    return bytes(value.to_bytes())


class WebCryptoSealingStream:
    """AES-256-GCM over a stream: AES-CTR through WebCrypto plus GHASH in web/gcm.js.

    ``update`` starts encrypting its plaintext in the sealer worker and returns the ciphertext
    of the previous call: one piece lags behind (the interface allows it), so the sealer works
    on this piece while Python makes the next one. ``finish`` returns what is still owed.
    """

    def __init__(self, content_key: bytes) -> None:
        if len(content_key) != CONTENT_KEY_BYTES:
            raise ValueError("AES-256 needs a 32-byte key")
        self.iv = secrets.token_bytes(GCM_IV_BYTES)
        self._content_key = content_key
        self._stream: Any = None
        self._pending: Any = None  # the JavaScript promise of the last piece's ciphertext

    async def _opened(self) -> Any:
        if self._stream is None:
            self._stream = await js.ipisCrypto.openStream(
                to_js(self._content_key), to_js(self.iv)
            )
        return self._stream

    async def _owed(self) -> bytes:
        pending, self._pending = self._pending, None
        return _bytes(await pending) if pending is not None else b""

    async def update(self, plaintext: bytes) -> bytes:
        stream = await self._opened()
        owed = self._pending
        self._pending = stream.update(to_js(plaintext))  # starts now, in the sealer
        return _bytes(await owed) if owed is not None else b""

    async def finish(self) -> bytes:
        stream = await self._opened()
        owed = await self._owed()
        return owed + _bytes(await stream.finish())


class WebCryptoBackend:
    def __init__(self) -> None:
        self._aes_keys: dict[bytes, Any] = {}  # content key -> imported CryptoKey

    async def wrap_key(self, recipient: RsaPublicKey, content_key: bytes) -> bytes:
        wrapped = await js.ipisCrypto.wrapKey(to_js(recipient.spki_der()), to_js(content_key))
        return _bytes(wrapped)

    async def seal_records(self, content_key: bytes, plaintexts: Sequence[bytes]) -> list[bytes]:
        if not plaintexts:
            return []
        key = self._aes_keys.get(content_key)
        if key is None:
            key = await js.ipisCrypto.importAesKey(to_js(content_key))
            self._aes_keys[content_key] = key
        lengths = [len(p) for p in plaintexts]
        joined = _bytes(
            await js.ipisCrypto.sealRecords(key, to_js(b"".join(plaintexts)), to_js(lengths))
        )
        sealed = []
        offset = 0
        for length in lengths:
            end = offset + length + _SEAL_OVERHEAD
            sealed.append(joined[offset:end])
            offset = end
        if offset != len(joined):
            raise RuntimeError("WebCrypto returned an unexpected length")
        return sealed

    def start_sealing(
        self, content_key: bytes, plaintexts: Sequence[bytes]
    ) -> asyncio.Task[list[bytes]]:
        """A task on Pyodide's event loop: Python reads and formats the next batch while the
        sealer worker encrypts this one."""
        return asyncio.ensure_future(self.seal_records(content_key, plaintexts))

    def open_stream(self, content_key: bytes) -> WebCryptoSealingStream:
        return WebCryptoSealingStream(content_key)
