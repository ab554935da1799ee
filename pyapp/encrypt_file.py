"""Encrypting a file on disk natively: the ``ipis encrypt`` command's work.

The one place the core uses a second thread (the browser has none, so ``MessageEncryptor``
stays single-threaded): the output is hashed and written by ``HashingWriter`` on a thread of
its own. hashlib and file writes release the GIL on large buffers, so that work runs on the
machine's second core while the main thread reads, parses and encrypts.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import queue
import threading
from typing import BinaryIO

from .atomic import AtomicOutput
from .contact import Contact
from .crypto.native import NativeBackend
from .faults import (
    DataFileUnreadable,
    MissingDataFile,
    MissingKeyFile,
    MissingOutputFile,
    OutputNotWritable,
    OutputSameAsInput,
)
from .keyfile import load_key_file
from .message import EncryptionSummary, MessageEncryptor

CHUNK_BYTES = 1 << 20
# Output pieces (about 2 MB each: the output of one input chunk) queued for the writer at
# most: enough to ride out a slow write, small enough to keep memory flat.
QUEUED_PIECES = 4


class HashingWriter:
    """Writes pieces to ``sink`` and hashes them (SHA-256), in order, on its own thread."""

    def __init__(self, sink: BinaryIO) -> None:
        self._sink = sink
        self._sha256 = hashlib.sha256()
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=QUEUED_PIECES)
        self._error: Exception | None = None  # raised in the main thread at its next call
        self._thread = threading.Thread(target=self._run, name="ipis-writer", daemon=True)
        self._thread.start()

    def write(self, piece: bytes) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(piece)

    def finish(self) -> str:
        """Wait until everything is written; the SHA-256 (hex) of all of it."""
        self.stop()
        if self._error is not None:
            raise self._error
        return self._sha256.hexdigest()

    def stop(self) -> None:
        """End the thread (also after a fault): nothing is written after this returns."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def _run(self) -> None:
        while (piece := self._queue.get()) is not None:
            if self._error is not None:
                continue  # drain: the main thread raises at its next call
            try:
                self._sink.write(piece)
                self._sha256.update(piece)
            except Exception as error:  # an OSError becomes OutputNotWritable there
                self._error = error


def check_form(
    data: str | None,
    out: str | None,
    keys: str | None,
    email: str | None,
    name: str | None,
    mobile: str | None,
) -> Contact:
    """The seed's checks in the seed's order, before anything is read."""
    if not data:
        raise MissingDataFile()
    if not out:
        raise MissingOutputFile()
    if not keys:
        raise MissingKeyFile()
    return Contact.validated(email, name, mobile)


async def encrypt_file(
    data_path: str,
    out_path: str,
    keys_path: str,
    contact: Contact,
    today: dt.date | None = None,
) -> EncryptionSummary:
    """Encrypt ``data_path`` to ``out_path`` atomically; raise an IplosFault on any fault."""
    today = today or dt.date.today()
    key_file = load_key_file(keys_path, today)
    if os.path.exists(out_path) and os.path.exists(data_path):
        if os.path.samefile(out_path, data_path):
            raise OutputSameAsInput()
    try:
        source = open(data_path, "rb")
    except OSError:
        raise DataFileUnreadable() from None
    encryptor = MessageEncryptor(key_file, contact, NativeBackend(), today, hash_output=False)
    with source:
        try:
            with AtomicOutput(out_path) as sink:
                writer = HashingWriter(sink)
                try:
                    while chunk := _read(source):
                        writer.write(await encryptor.feed(chunk))
                    writer.write(await encryptor.finish())
                    encryptor.summary.sha256 = writer.finish()
                finally:
                    writer.stop()  # before AtomicOutput closes (or removes) the file
        except OSError:  # reading faults are IplosFaults already; this is the output side
            raise OutputNotWritable() from None
    return encryptor.summary


def _read(source: BinaryIO) -> bytes:
    try:
        return source.read(CHUNK_BYTES)
    except OSError:
        raise DataFileUnreadable() from None
