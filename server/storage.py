"""The storage folder: uploads stream into a private temporary file, then become durable.

A file counts as stored only after its bytes and its directory entry are fsynced; the
receipt is committed after that (issue 4: ``Sending utført`` only for a durable file).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import time
from pathlib import Path

# A partial upload is recognised as dead by its lock (below). A file is created under a
# dot-name, locked, then renamed; only a dot-name (a crash in that instant) waits this long.
NEW_INCOMING_GRACE_SECONDS = 60.0
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
        for folder in (root, self.incoming, self.stored):  # each 0700, the root too
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

    def clear_incoming(self, grace_seconds: float = NEW_INCOMING_GRACE_SECONDS) -> int:
        """Remove leftovers of uploads cut off by a crash; returns how many.

        Run at start and periodically by the worker (issue 7, point 12: a partial upload
        stayed an hour). A live upload, of this or another process, holds an exclusive
        ``flock`` on its file for as long as it runs, and the kernel drops the lock when that
        process dies: a file whose lock can be taken has no writer left. A file still under
        its dot-name may not be locked yet, so those wait ``grace_seconds``.
        """
        cutoff = time.time() - grace_seconds
        removed = 0
        for leftover in self.incoming.iterdir():
            try:
                descriptor = os.open(leftover, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                if leftover.name.startswith(".") and os.fstat(descriptor).st_mtime >= cutoff:
                    continue
                try:
                    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a live upload
                leftover.unlink(missing_ok=True)
                removed += 1
            finally:
                os.close(descriptor)
        return removed


class IncomingFile:
    """A temporary file (mode 0600) that is either made durable or removed, never left half."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        name = secrets.token_hex(16)
        self.path = storage.incoming / f"{name}.part"
        creating = storage.incoming / f".{name}.new"
        descriptor = os.open(creating, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(descriptor, fcntl.LOCK_EX)  # "alive" for clear_incoming, until closed
        os.rename(creating, self.path)  # visible under its real name only once locked
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
            os.replace(self.path, target)  # while still locked: never seen as a dead leftover
            self._handle.close()
            fsync_folder(target.parent)
        except OSError as error:
            self.discard()
            target.unlink(missing_ok=True)  # moved but not durable: not stored either
            raise StorageError(str(error)) from None
        return target

    def discard(self) -> None:
        """Delete at once (a refused file is never kept)."""
        self.path.unlink(missing_ok=True)  # before the close drops the lock
        with contextlib.suppress(OSError):
            self._handle.close()
