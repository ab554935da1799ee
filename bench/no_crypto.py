"""The core's encryption with the crypto taken out: what bench/explore_page_python.py times,
natively and in Pyodide alike (it is copied into Pyodide's file system there).

Standard library and ipis_core only, as the page's Python is. The backend returns bytes of the
lengths AES-256-GCM and RSA-OAEP-3072 would give, without encrypting, so only the core's own
work (reading, checking, formatting, base64, the output's SHA-256) is timed.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Generator, Sequence
from typing import Any

from ipis_core.contact import Contact
from ipis_core.keyfile import parse_key_file
from ipis_core.message import MessageEncryptor
from ipis_core.rsakey import RsaPublicKey

SLICE_BYTES = 1 << 20  # as the page reads the data file (web/krypt_worker.py)


class _NoStream:
    iv = bytes(12)

    async def update(self, plaintext: bytes) -> bytes:
        return plaintext

    async def finish(self) -> bytes:
        return bytes(16)


class _Done:
    def __init__(self, sealed: list[bytes]) -> None:
        self._sealed = sealed

    def __await__(self) -> Generator[Any, None, list[bytes]]:
        return self._sealed
        yield  # a generator that returns at once

    def cancel(self) -> bool:
        return False


def _sealed_lengths(plaintexts: Sequence[bytes]) -> list[bytes]:
    return [bytes(12) + p + bytes(16) for p in plaintexts]


class NoCryptoBackend:
    """The crypto interface (ipis_core.crypto.CryptoBackend) without encryption."""

    async def wrap_key(self, recipient: RsaPublicKey, content_key: bytes) -> bytes:
        return bytes(384)

    async def seal_records(self, content_key: bytes, plaintexts: Sequence[bytes]) -> list[bytes]:
        return _sealed_lengths(plaintexts)

    def start_sealing(self, content_key: bytes, plaintexts: Sequence[bytes]) -> _Done:
        return _Done(_sealed_lengths(plaintexts))

    def open_stream(self, content_key: bytes) -> _NoStream:
        return _NoStream()


async def encrypt_without_crypto(data: bytes, raw_keys: bytes, today: dt.date) -> int:
    """The file fed slice by slice, as the page does; the output's length."""
    keys = parse_key_file(raw_keys)
    contact = Contact.validated("kontakt@kommune.no", "Kari Nordmann", "91234567")
    encryptor = MessageEncryptor(keys, contact, NoCryptoBackend(), today)
    written = 0
    for offset in range(0, len(data), SLICE_BYTES):
        written += len(await encryptor.feed(data[offset : offset + SLICE_BYTES]))
    written += len(await encryptor.finish())
    return written


def timed_without_crypto(data: bytes, raw_keys: bytes, today: dt.date) -> tuple[float, int]:
    """CPU seconds and the output's length. Driven without an event loop, as ``ipis encrypt``
    does: nothing here suspends."""
    started = time.process_time()
    try:
        encrypt_without_crypto(data, raw_keys, today).send(None)
    except StopIteration as done:
        return time.process_time() - started, int(done.value)
    raise RuntimeError("the encryption suspended")
