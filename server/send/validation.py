"""The send module's use of the one envelope reader (ipis_core.envelope) for an upload.

The upload may be 1 GB, nearly all of it the TPF layer's CipherValue. Its bytes go through the
core's streaming reader as they arrive, and only the bytes the reader has validated are hashed
and written (upload._Pipeline): a refused file never had an unchecked byte on disk, and its
partial file is deleted. Memory stays flat whatever the input (the reader bounds every token).

What the send module adds: the login's Kommunenummer, compared as soon as the clear Avsender
has been read, and the TPF key names it accepts in ``ds:KeyName``: the key ids of the key
files it serves (``ServedKeyNames``), read again whenever a file changes, so a key rotation
needs no restart.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

from ipis_core.envelope import Envelope, EnvelopeReader, SenderNumbers
from ipis_core.faults import CleartextIplosFile, EncryptedMessageFault, SenderDiffersFromLogin
from ipis_core.keyfile import MAX_KEY_FILE_BYTES, parse_key_file

_log = logging.getLogger(__name__)


def refusal_status(fault: EncryptedMessageFault) -> int:
    """HTTP status of a refused upload: 422 for a cleartext IPLOS file, else 400."""
    return 422 if isinstance(fault, CleartextIplosFile) else 400


class UploadValidator:
    """Feed the upload's bytes as they arrive; write only what ``feed``/``finish`` return."""

    def __init__(
        self, key_names: frozenset[str], login_kommunenummer: str, login_bydelsnummer: str
    ) -> None:
        self._login = (login_kommunenummer, login_bydelsnummer)
        self._reader = EnvelopeReader(key_names, on_sender=self._check_sender)

    def feed(self, chunk: bytes) -> bytes:
        return self._reader.feed(chunk)

    def finish(self) -> tuple[bytes, Envelope]:
        """The last validated bytes and the envelope; raises EncryptedMessageFault."""
        rest = self._reader.close()
        return rest, self._reader.envelope

    def _check_sender(self, sender: SenderNumbers) -> None:
        if (sender.kommunenummer, sender.bydelsnummer) != self._login:
            raise SenderDiffersFromLogin(sender.kommunenummer, sender.bydelsnummer, *self._login)


class ServedKeyNames:
    """The TPF key ids of the key files the send module serves, re-read when one changes.

    A key file that is missing or invalid contributes no name (and is logged for the
    operator): uploads for its key are then refused rather than accepted unchecked."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self._paths = tuple(paths)
        self._lock = threading.Lock()
        self._seen: tuple[tuple[int, int] | None, ...] = ()
        self._names: frozenset[str] = frozenset()

    def current(self) -> frozenset[str]:
        stamps = tuple(_stamp(path) for path in self._paths)
        with self._lock:
            if stamps != self._seen:
                self._names = frozenset(
                    name for path in self._paths if (name := _tpf_key_id(path)) is not None
                )
                self._seen = stamps
            return self._names


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_mtime_ns, status.st_size


def _tpf_key_id(path: Path) -> str | None:
    from ipis_core.faults import KeyFileFault

    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_KEY_FILE_BYTES + 1)
        return parse_key_file(raw).tpf.key_id
    except OSError:
        _log.warning("Nøkkelfilen %s kan ikke leses; opplastinger avvises til den finnes", path)
    except KeyFileFault as fault:
        _log.warning("Nøkkelfilen %s er ikke gyldig (%s); opplastinger avvises", path,
                     fault.message)
    return None
