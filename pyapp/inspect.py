"""``ipis inspect``: the clear header of an encrypted file, read without any private key."""

from __future__ import annotations

import os

from .envelope import Envelope, EnvelopeParser, read_envelope
from .faults import DataFileUnreadable


def inspect_file(path: str) -> Envelope:
    """Sender, receiver, message type, TPF key id, algorithms and size of an encrypted file."""
    try:
        handle = open(path, "rb")
    except OSError:
        raise DataFileUnreadable() from None
    with handle:
        # Parse up to the TPF layer's ciphertext; the parts that read the ciphertext (the send
        # module and the TPF) check the rest.
        root = EnvelopeParser(None, stop_at_cipher=True).parse(handle)
        size = os.fstat(handle.fileno()).st_size
    return read_envelope(root, size)
