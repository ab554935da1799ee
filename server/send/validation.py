"""The send module's use of the one envelope reader (ipis_core.envelope) for an upload.

The upload may be 1 GB, nearly all of it the TPF layer's CipherValue. Its bytes go through the
core's streaming reader as they arrive, and only the bytes the reader has validated are hashed
and written (upload._Pipeline): a refused file never had an unchecked byte on disk, and its
partial file is deleted. Memory stays flat whatever the input (the reader bounds every token).

What the send module adds: the login's Kommunenummer, compared as soon as the clear Avsender
has been read, and the TPF key names it accepts in ``ds:KeyName``: the key id of the key file
it serves and, during the overlap after 1 December, last year's (``ServedKeyNames``), read
again whenever a file changes, so a key rotation needs no restart.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ipis_core.envelope import Envelope, EnvelopeReader, SenderNumbers
from ipis_core.faults import (
    CleartextIplosFile,
    EncryptedMessageFault,
    KeyOutsideOverlap,
    SenderDiffersFromLogin,
)
from ipis_core.keyfile import MAX_KEY_FILE_BYTES, parse_key_file

_log = logging.getLogger(__name__)
CURRENT_KEY_FILE = "nokkelfil.xml"  # served under /last-ned
PREVIOUS_KEY_FILE = "forrige-nokkelfil.xml"  # last year's, accepted during the overlap


def refusal_status(fault: EncryptedMessageFault) -> int:
    """HTTP status of a refused upload: 422 for a cleartext IPLOS file, else 400."""
    return 422 if isinstance(fault, CleartextIplosFile) else 400


@dataclass(frozen=True)
class RetiredKey:
    """Last year's TPF key after its overlap: named in the refusal, with its dates."""

    valid_to: dt.date
    accepted_until: dt.date


class UploadValidator:
    """Feed the upload's bytes as they arrive; write only what ``feed``/``finish`` return.

    ``retired``: last year's key once its overlap has ended. A file encrypted for it is refused
    as soon as its ciphertext begins, with the TPF's message saying which key and until when
    (``KeyOutsideOverlap``), rather than as an unknown key."""

    def __init__(
        self,
        key_names: frozenset[str],
        login_kommunenummer: str,
        login_bydelsnummer: str,
        retired: Mapping[str, RetiredKey] | None = None,
    ) -> None:
        self._login = (login_kommunenummer, login_bydelsnummer)
        self._retired = dict(retired or {})
        self._reader = EnvelopeReader(
            key_names | self._retired.keys(),
            on_cipher_text=self._check_key if self._retired else None,
            on_sender=self._check_sender,
        )

    def _check_key(self, _text: bytes) -> None:
        name = self._reader.header.tpf_key.key_name
        retired = self._retired.get(name)
        if retired is not None:
            raise KeyOutsideOverlap(
                name, retired.valid_to.isoformat(), retired.accepted_until.isoformat()
            )

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
    """The TPF key ids uploads may name: the key file the send module serves, and last year's
    during the overlap the TPF keeps (issue 9.6), re-read when a file changes.

    The current key file's key is always accepted (the TPF's keyring has the last word on it).
    The previous one's only until its last valid day plus ``overlap_days`` (31 January after a
    1 December rollover, as the TPF): after that a file encrypted for it is refused before the
    upload finishes, with the key-name message, instead of travelling to a TPF that refuses it.
    A key file that is missing or invalid contributes no name (and is logged for the operator):
    uploads for its key are then refused rather than accepted unchecked."""

    def __init__(
        self, current: Path, previous: Path | None = None, overlap_days: int = 62
    ) -> None:
        self._paths = (current,) if previous is None else (current, previous)
        self._overlap = dt.timedelta(days=overlap_days)
        self._lock = threading.Lock()
        self._seen: tuple[tuple[int, int] | None, ...] = ()
        self._keys: tuple[tuple[str, dt.date] | None, ...] = ()

    def current(self, today: dt.date | None = None) -> frozenset[str]:
        day = today or dt.date.today()
        stamps = tuple(_stamp(path) for path in self._paths)
        with self._lock:
            if stamps != self._seen:
                self._keys = tuple(_tpf_key(path) for path in self._paths)
                self._seen = stamps
            keys = self._keys
        names = set()
        for index, key in enumerate(keys):
            if key is None:
                continue
            name, valid_to = key
            if index == 0 or day <= valid_to + self._overlap:
                names.add(name)
        return frozenset(names)

    def retired(self, today: dt.date | None = None) -> dict[str, RetiredKey]:
        """Last year's key once its overlap has ended (none before that, or without one)."""
        day = today or dt.date.today()
        found = {}
        accepted = self.current(day)  # also reads the files again when they changed
        with self._lock:
            keys = self._keys
        for key in keys[1:]:
            if key is not None and key[0] not in accepted:
                name, valid_to = key
                found[name] = RetiredKey(valid_to, valid_to + self._overlap)
        return found


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_mtime_ns, status.st_size


def _tpf_key(path: Path) -> tuple[str, dt.date] | None:
    """The TPF key id of a key file and its last valid day, or None (logged)."""
    from ipis_core.faults import KeyFileFault

    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_KEY_FILE_BYTES + 1)
        key_file = parse_key_file(raw)
        return key_file.tpf.key_id, key_file.valid_to
    except FileNotFoundError:
        if path.name != PREVIOUS_KEY_FILE:  # no previous key file is normal
            _log.warning("Nøkkelfilen %s finnes ikke; opplastinger avvises til den finnes", path)
    except OSError:
        _log.warning("Nøkkelfilen %s kan ikke leses; opplastinger avvises til den finnes", path)
    except KeyFileFault as fault:
        _log.warning("Nøkkelfilen %s er ikke gyldig (%s); opplastinger avvises", path,
                     fault.message)
    return None
