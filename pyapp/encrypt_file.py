"""Encrypting a file on disk natively: the ``ipis encrypt`` command's work."""

from __future__ import annotations

import datetime as dt
import os
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
    encryptor = MessageEncryptor(key_file, contact, NativeBackend(), today)
    with source:
        try:
            with AtomicOutput(out_path) as sink:
                while chunk := _read(source):
                    sink.write(await encryptor.feed(chunk))
                sink.write(await encryptor.finish())
        except OSError:  # reading faults are IplosFaults already; this is the output side
            raise OutputNotWritable() from None
    return encryptor.summary


def _read(source: BinaryIO) -> bytes:
    try:
        return source.read(CHUNK_BYTES)
    except OSError:
        raise DataFileUnreadable() from None
