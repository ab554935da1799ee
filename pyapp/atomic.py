"""Output files that appear whole or not at all (seed §4: no partial encrypted file)."""

from __future__ import annotations

import os
import tempfile
from types import TracebackType
from typing import BinaryIO


class AtomicOutput:
    """A temporary file in the target folder, fsynced and renamed into place on success.

    On any exception the temporary file is removed, so a failed run leaves nothing behind.
    """

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        self._handle: BinaryIO | None = None
        self._temp_path = ""

    def __enter__(self) -> BinaryIO:
        folder = os.path.dirname(self.path)
        descriptor, self._temp_path = tempfile.mkstemp(
            prefix=".ipis-", suffix=".tmp", dir=folder
        )
        self._handle = os.fdopen(descriptor, "wb")
        return self._handle

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._handle is not None
        try:
            if exc_type is None:
                self._handle.flush()
                os.fsync(self._handle.fileno())
            self._handle.close()
            if exc_type is None:
                os.replace(self._temp_path, self.path)
                _fsync_folder(os.path.dirname(self.path))
        finally:
            if os.path.exists(self._temp_path):
                os.unlink(self._temp_path)


def _fsync_folder(folder: str) -> None:
    """Make the rename itself durable."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
