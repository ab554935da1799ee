"""Running a party's HTTP server and worker thread in the foreground, for any of the three.

``ipis serve`` (three parties), ``ipis serve --only-send``, ``ipis tpf serve`` and
``ipis register serve`` all go through ``run_parties``: one Ctrl-C or SIGTERM stops every server
and worker and closes the databases, and a server that ends by itself ends the others (nothing
half-running). ``run_worker`` is the same for ``ipis worker``, ``ipis tpf worker`` and
``ipis register worker``. Production runs gunicorn and the worker commands (docs/drift.md).
"""

from __future__ import annotations

import contextlib
import errno
import io
import logging
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from flask import Flask
    from werkzeug.serving import BaseWSGIServer

STOP_SECONDS = 15.0  # how long a worker thread may take to finish its step at the end
WORKER_RUNNING = "Arbeideren kjører. Ctrl-C eller SIGTERM stopper den etter steget den er i."


class PartyFailed(Exception):
    """One party could not be set up or bound; the message says which and why (Norwegian)."""


class Worker(Protocol):
    """The three parties' workers: the send module's outbox, the TPF's and the register's."""

    def drain(self) -> int: ...

    def run(self, stop: threading.Event) -> None: ...


@dataclass
class Party:
    """One running party: its HTTP server, its worker and how to close it."""

    label: str
    server: BaseWSGIServer
    start_worker: Callable[[threading.Event], threading.Thread]
    dispose: Callable[[], None]
    thread: threading.Thread | None = None
    workers: list[threading.Thread] = field(default_factory=list)


def setup_logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def bind(label: str, host: str, port: int, app: Flask) -> BaseWSGIServer:
    """The party's threaded HTTP server, or PartyFailed with a Norwegian reason."""
    from werkzeug.serving import make_server

    try:
        # werkzeug prints its own English line and exits when the port is taken: say it here
        with contextlib.redirect_stderr(io.StringIO()):
            return make_server(host, port, app, threaded=True)
    except SystemExit:
        raise PartyFailed(
            f"{label} kunne ikke starte på {host}:{port}: porten er allerede i bruk."
        ) from None
    except OSError as error:
        reason = (
            "porten er allerede i bruk" if error.errno == errno.EADDRINUSE
            else error.strerror or str(error)
        )
        raise PartyFailed(f"{label} kunne ikke starte på {host}:{port}: {reason}.") from None


def stop_all(parties: list[Party], stop: threading.Event) -> None:
    stop.set()
    for party in parties:
        if party.thread is not None:
            party.server.shutdown()
        party.server.server_close()
    for party in parties:
        for worker in party.workers:
            worker.join(STOP_SECONDS)
        party.dispose()


def run_parties(parties: list[Party], no_worker: bool, lines: list[str]) -> None:
    """Serve until Ctrl-C, SIGTERM or a server ending; then stop and close everything."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        for party in parties:
            if not no_worker:
                party.workers.append(party.start_worker(stop))
            party.thread = threading.Thread(
                target=_serve, args=(party, stop), name=f"ipis-serve-{party.label}", daemon=True
            )
            party.thread.start()
        print("\n".join(lines), flush=True)
        stop.wait()
    finally:
        stop_all(parties, stop)
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def serve_one(label: str, host: str, port: int, app: Flask,
              start_worker: Callable[[threading.Event], threading.Thread],
              dispose: Callable[[], None], no_worker: bool, lines: list[str]) -> int:
    """One party in the foreground (``ipis tpf serve``, ``ipis register serve``, the send
    module alone): 1 with the Norwegian reason when its port cannot be bound."""
    try:
        server = bind(label, host, port, app)
    except PartyFailed as error:
        dispose()
        print(error, file=sys.stderr, flush=True)
        return 1
    run_parties([Party(label, server, start_worker, dispose)], no_worker, lines)
    return 0


def run_worker(worker: Worker, once: bool, done: str) -> int:
    """A worker command in the foreground: ``--once`` drains what waits and prints
    ``done`` with the count; otherwise it runs until Ctrl-C or SIGTERM."""
    if once:
        print(done.format(worker.drain()))
        return 0
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    print(WORKER_RUNNING, flush=True)
    try:
        worker.run(stop)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0


def _serve(party: Party, stop: threading.Event) -> None:
    """One HTTP server; if it ends by itself, the others end too."""
    try:
        party.server.serve_forever()
    finally:
        if not stop.is_set():
            print(f"{party.label} stoppet uventet; stopper alle.", file=sys.stderr, flush=True)
            stop.set()
