"""Pseudonyms: HMAC-SHA-256 under the TPF's own secret (docs/formater.md §4).

- The **secret** is 32 random bytes, not a transport key: the yearly RSA keys change every
  December, the pseudonyms must not. It lives in a file of its own (mode 0600) in the TPF's
  secret folder, named by its id (``tpf-h1``, ``tpf-h2`` …); the database records only which
  id is current. It never leaves the TPF.
- A **pseudonym** is the first 128 bits of HMAC-SHA-256(secret, the 11 digits), 32 lower-case
  hex digits: a keyed one-way function, so neither the register nor anyone without the secret
  can test a guessed number against it (11 digits with a date are few enough to enumerate, so
  an unkeyed hash would hide nothing). 128 bits leave collisions out of reach for any
  population.
- An **alias** keeps a person's pseudonym when the number changes (a D-number replaced by a
  fødselsnummer): the new number's pseudonym stands for the old one's.

No database here (secret_state.py has the states and aliases), so file-based processing
(``ipis tpf process``) starts without SQLAlchemy or Flask.
"""

from __future__ import annotations

import hmac
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ipis_core.faults import IplosFault
from ipis_core.identifiers import fnr_valid

from ..storage import fsync_folder

SECRET_BYTES = 32
PSEUDONYM_HEX = 32  # 128 bits
SECRET_ID_PREFIX = "tpf-h"  # noqa: S105 - the prefix of an id, not a secret
_SECRET_ID = re.compile(r"tpf-h[1-9][0-9]{0,5}")


class SecretUnavailable(IplosFault):
    """The pseudonym secret cannot be used (missing file, no current secret): an operator's
    fault, not the file's; processing waits and tries again."""

    field = "hemmelighet"


def secret_id(number: int) -> str:
    return f"{SECRET_ID_PREFIX}{number}"


class SecretStore:
    """The secret files: one per id, 0600, written once with O_EXCL and fsynced."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, identifier: str) -> Path:
        if not _SECRET_ID.fullmatch(identifier):
            raise ValueError("bad secret id")
        return self.folder / identifier

    def create(self, identifier: str) -> bool:
        """A new random secret under this id; False when its file exists already (kept: the
        pseudonyms of a TPF whose database was rebuilt stay the same)."""
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.path(identifier)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return False
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(os.urandom(SECRET_BYTES).hex())
            handle.flush()
            os.fsync(handle.fileno())
        fsync_folder(self.folder)
        return True

    def load(self, identifier: str) -> bytes:
        try:
            text = self.path(identifier).read_text(encoding="ascii").strip()
            key = bytes.fromhex(text)
        except (OSError, ValueError):
            raise SecretUnavailable(
                f"Pseudonymhemmeligheten {identifier} mangler eller er skadet i {self.folder}. "
                "Kopier hemmelighetsmappen fra den første TPF-verten (docs/drift.md)."
            ) from None
        if len(key) != SECRET_BYTES:
            raise SecretUnavailable(f"Pseudonymhemmeligheten {identifier} har feil lengde.")
        return key

    def destroy(self, identifier: str) -> None:
        """After a rotation: overwrite, then remove (best effort on copy-on-write disks)."""
        path = self.path(identifier)
        try:
            with path.open("r+b") as handle:
                size = handle.seek(0, os.SEEK_END)
                handle.seek(0)
                handle.write(b"0" * size)
                handle.flush()
                os.fsync(handle.fileno())
        except FileNotFoundError:
            return
        path.unlink(missing_ok=True)
        fsync_folder(self.folder)


def pseudonym(key: bytes, number: str) -> str:
    """The pseudonym of a valid number under one secret (formats §4)."""
    return hmac.digest(key, number.encode("ascii"), "sha256")[: PSEUDONYM_HEX // 2].hex()


@dataclass(frozen=True)
class Pseudonymiser:
    """One secret, its aliases, and whether synthetic test numbers count as valid."""

    secret_id: str
    key: bytes = field(repr=False)
    aliases: Mapping[str, str] = field(default_factory=dict, repr=False)
    allow_synthetic: bool = False

    def __call__(self, number: str) -> str | None:
        """The person's pseudonym, or None for an invalid number (never passed on)."""
        if not fnr_valid(number, self.allow_synthetic):
            return None
        own = hmac.digest(self.key, number.encode("ascii"), "sha256")[:16].hex()
        return self.aliases.get(own, own)
