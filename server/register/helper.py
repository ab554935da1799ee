"""A helper process that reads the persons' data while the loader writes rows.

On a machine with two cores a load is two jobs: decrypting and reading the stream, binding the
records and writing their rows (the loader), and reading each person's data into rows
(``read_plain_batch`` and ``plain_rows``: the loader only extends its buffers with them). The
loader authenticates every record itself (the helper gets plaintexts, never a key), sends
batches to one helper process, at most ``WINDOW`` ahead, and takes the results back in order.
The helper returns a batch's rows read the common way, or None; None,
a fault or a helper that stopped all lead the loader to read that batch itself, which refuses a
bad record with the same fault and message as without a helper.

The helper is its own program (``python -m ipis_server.register.helper``) talking over its
standard input and output, so nothing of the loader's process (threads, database connections,
its main module) is copied into it. The batches travel as pickles between two processes of the
same installation, over pipes only, never through a file. Small deliveries are read in the
loader: starting the helper costs more than it saves.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
from collections import deque
from typing import IO

from ipis_core.faults import IplosFault

from .person_data import PlainRows, plain_rows, read_plain_batch

log = logging.getLogger("ipis.register")
WINDOW = 8  # batches in flight: enough to keep the helper busy, little memory
MIN_BYTES = 8 * 1024 * 1024  # a delivery smaller than this is read without a helper
# Linux's default pipe-max-size. A batch of plaintexts (~90 kB) is more than the default 64 kB
# pipe: the loader's write waited for the helper to finish the batch before, a sixth of the
# load's time; with 1 MB the whole window fits and neither side waits on the other.
PIPE_BYTES = 1 << 20
_LENGTH = struct.Struct(">I")

Batch = tuple[list[int], list[bytes]]
Result = PlainRows | None
Done = tuple[object, list[int], list[bytes], Result]


def _read(submission: int, numbers: list[int], plaintexts: list[bytes]) -> Result:
    """In the helper: the batch's rows read the common way, or None for the loader to read it."""
    try:
        people = read_plain_batch(numbers, plaintexts)
    except IplosFault:
        return None  # the loader reads the batch itself and refuses it with its record
    return None if people is None else plain_rows(submission, numbers, people)


def _frame(stream: IO[bytes]) -> bytes | None:
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        return None
    (size,) = _LENGTH.unpack(head)
    body = stream.read(size)
    return body if len(body) == size else None


def _send(stream: IO[bytes], data: bytes) -> None:
    stream.write(_LENGTH.pack(len(data)) + data)
    stream.flush()


def serve(source: IO[bytes], sink: IO[bytes]) -> None:
    """The helper's loop: a batch in, its result out, until its input ends."""
    gc.disable()  # reading makes no reference cycles; the collector only costs time here
    while (frame := _frame(source)) is not None:
        batch = pickle.loads(frame)  # noqa: S301 - from the loader that started us
        _send(sink, pickle.dumps(_read(*batch), protocol=pickle.HIGHEST_PROTOCOL))


def _widen(pipe: IO[bytes] | None) -> None:
    """The pipe at ``PIPE_BYTES`` where the system allows (a smaller pipe only costs time)."""
    if pipe is None:
        return
    with contextlib.suppress(OSError, AttributeError):
        import fcntl

        fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)


class Helper:
    """Batches out to the helper process, results back in the order they were sent."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "ipis_server.register.helper"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env={**os.environ},
        )
        for pipe in (self._process.stdin, self._process.stdout):
            _widen(pipe)
        self._results: queue.Queue[Result | BaseException] = queue.Queue()
        self._reader = threading.Thread(target=self._receive, name="ipis-register-hjelper",
                                        daemon=True)
        self._reader.start()
        self._pending: deque[tuple[object, list[int], list[bytes]]] = deque()
        self._broken = False

    def _receive(self) -> None:
        """Drains the helper's output (so neither side ever waits on a full pipe)."""
        stream = self._process.stdout
        assert stream is not None
        try:
            while (frame := _frame(stream)) is not None:
                self._results.put(pickle.loads(frame))  # noqa: S301 - our own helper
        except (OSError, pickle.UnpicklingError) as error:
            self._results.put(error)
        self._results.put(EOFError())

    def send(self, tag: object, submission: int, numbers: list[int],
             plaintexts: list[bytes]) -> list[Done]:
        """Queue one batch (its rows are made for the ``submission`` row); returns the batches
        now done (in order), keeping ``WINDOW`` out."""
        if not self._broken:
            try:
                assert self._process.stdin is not None
                _send(self._process.stdin, pickle.dumps((submission, numbers, plaintexts),
                                                        protocol=pickle.HIGHEST_PROTOCOL))
            except OSError:
                self._stopped()
        if self._broken:
            return [*self.drain(), (tag, numbers, plaintexts, None)]
        self._pending.append((tag, numbers, plaintexts))
        done = []
        while len(self._pending) > WINDOW:
            done.append(self._take())
        return done

    def drain(self) -> list[Done]:
        return [self._take() for _ in range(len(self._pending))]

    def _take(self) -> Done:
        tag, numbers, plaintexts = self._pending.popleft()
        if self._broken:
            return tag, numbers, plaintexts, None
        result = self._results.get()
        if isinstance(result, BaseException):
            self._stopped()
            return tag, numbers, plaintexts, None
        return tag, numbers, plaintexts, result

    def _stopped(self) -> None:
        if not self._broken:
            log.warning("Hjelpeprosessen for lasting stoppet; laster videre uten den")
        self._broken = True

    def close(self) -> None:
        stdin = self._process.stdin
        if stdin is not None:
            try:
                stdin.close()  # the helper's input ends: it stops
            except OSError:
                pass
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._reader.join(timeout=30)
        if self._process.stdout is not None:
            self._process.stdout.close()


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
