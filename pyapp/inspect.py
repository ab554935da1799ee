"""``ipis inspect``: the clear header of an encrypted file, read without any private key."""

from __future__ import annotations

from .envelope import Envelope, read_envelope
from .faults import DataFileUnreadable


def inspect_file(path: str) -> Envelope:
    """Sender, receiver, message type, TPF key id, algorithms and size of an encrypted file.

    The whole file is validated by the same reader as the send module's (any TPF key name
    that passes its rule is shown: ``ipis inspect`` does not know which keys are in use)."""
    try:
        handle = open(path, "rb")
    except OSError:
        raise DataFileUnreadable() from None
    with handle:
        try:
            return read_envelope(handle)
        except OSError:
            raise DataFileUnreadable() from None
