"""The storage folder: uploads stream into a private temporary file, then become durable.

A file counts as stored only after its bytes and its directory entry are fsynced; the
receipt is committed after that (issue 4: ``Sending utført`` only for a durable file).
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

STALE_INCOMING_SECONDS = 3600.0
INCOMING = "mottak"
STORED = "innsendinger"


class StorageError(OSError):
    """The storage folder could not take the file (disk full, permissions)."""


def fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class Storage:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.incoming = root / INCOMING
        self.stored = root / STORED
        for folder in (self.incoming, self.stored):
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)

    def path_of(self, storage_name: str) -> Path:
        if "/" in storage_name or storage_name.startswith("."):
            raise ValueError("bad storage name")
        return self.stored / storage_name

    def open_incoming(self) -> IncomingFile:
        return IncomingFile(self)

    def remove(self, storage_name: str) -> None:
        try:
            self.path_of(storage_name).unlink()
        except FileNotFoundError:
            pass

    def clear_incoming(self, older_than_seconds: float = STALE_INCOMING_SECONDS) -> None:
        """Leftovers of uploads cut off by a crash are never a submission: remove them.

        Only files untouched for a while: another process (a gunicorn worker) may be writing
        a live upload there right now, and a live upload's file changes every second.
        """
        cutoff = time.time() - older_than_seconds
        for leftover in self.incoming.iterdir():
            try:
                if leftover.stat().st_mtime < cutoff:
                    leftover.unlink(missing_ok=True)
            except FileNotFoundError:
                pass


class IncomingFile:
    """A temporary file (mode 0600) that is either made durable or removed, never left half."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self.path = storage.incoming / f"{secrets.token_hex(16)}.part"
        descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self._handle = os.fdopen(descriptor, "wb", buffering=1 << 20)
        self.size = 0

    def write(self, data: bytes) -> None:
        try:
            self._handle.write(data)
        except OSError as error:
            self.discard()
            raise StorageError(str(error)) from None
        self.size += len(data)

    def commit(self, storage_name: str) -> Path:
        """fsync the bytes, move into the stored folder, fsync the folder."""
        target = self._storage.path_of(storage_name)
        try:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
            os.replace(self.path, target)
            fsync_folder(target.parent)
        except OSError as error:
            self.discard()
            raise StorageError(str(error)) from None
        return target

    def discard(self) -> None:
        """Delete at once (a refused file is never kept)."""
        try:
            self._handle.close()
        except OSError:
            pass
        self.path.unlink(missing_ok=True)
