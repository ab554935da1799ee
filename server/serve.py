"""``ipis serve`` (``make run``): the demo of the whole chain on one machine (issue 9.8).

The send module, the TPF and the register run in one process, each with its own config, keys,
database and storage in its own folder (the send module in the instance folder itself, the TPF
in ``tpf/``, the register in ``register/``) and its own HTTP server and worker thread; they
talk HTTP on loopback with bearer tokens exactly as they do on separate hosts (docs/drift.md).
One process rather than three children: one Ctrl-C or SIGTERM stops everything, and a party
that cannot start stops the others before any of them has answered a request.

``--only-send`` (or ``IPIS_TPF_URL`` set: a real TPF exists) runs the send module alone, as
before the TPF and the register existed.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask

    from .register.config import RegisterConfig
    from .running import Party
    from .send.config import Config
    from .tpf.config import TpfConfig

# What only running the servers needs (.running: logging, signals, threads; .settings) is
# imported where it is used: the ``ipis`` command line composes this module's parser for every
# command, ``ipis encrypt`` included, whose start-up should not pay for it.

DEMO_FOLDER = "demonokler"  # the demo's stand-in for SSB's key generation: both private keys
DEMO_STAFF_USER = "demo"
DEMO_STAFF_NAME = "Demobruker"
# On loopback an answer is near: ask for the next party's result every 2 s, not every 30 s
# (unless IPIS_TPF_POLL_SECONDS / IPIS_TPF_REGISTER_POLL_SECONDS say otherwise).
DEMO_POLL_SECONDS = 2.0
MARKER_TEXT = (
    "Instansmappe laget av «ipis serve»: sendemodulen her, TPF i tpf/, registeret i "
    "register/.\n«ipis tpf … --instance» og «ipis register … --instance» med denne mappen "
    "bruker undermappen.\n"
)


def _write_marker(instance: Path) -> None:
    from .keyring import SERVE_MARKER

    marker = instance / SERVE_MARKER
    if not marker.exists():
        marker.write_text(MARKER_TEXT, encoding="utf-8")


# --- configuration ----------------------------------------------------------------------------


def _configs(args: argparse.Namespace) -> tuple[Config, TpfConfig, RegisterConfig]:
    from .register.app import INTAKE_PREFIX as REGISTER_INTAKE
    from .register.config import RegisterConfig
    from .running import PartyFailed
    from .send.config import Config, make_instance_dir
    from .settings import SettingInvalid
    from .tpf.app import INTAKE_PREFIX as TPF_INTAKE
    from .tpf.config import TpfConfig

    try:
        send = Config.from_env(args.instance)
        make_instance_dir(send.instance_dir)
        tpf = TpfConfig.from_env(send.instance_dir / "tpf")
        register = RegisterConfig.from_env(send.instance_dir / "register")
    except SettingInvalid as error:
        raise PartyFailed(str(error)) from None
    near = _loopback(args.host)
    register_url = f"http://{near}:{args.register_port}{REGISTER_INTAKE}"
    tpf = dataclasses.replace(
        tpf,
        register_url=register_url,
        register_token=register.tokens[0],
        test_numbers=True,  # the demo data are synthetic numbers (said on screen)
        register_poll_seconds=_poll("IPIS_TPF_REGISTER_POLL_SECONDS", tpf.register_poll_seconds),
    )
    send = dataclasses.replace(
        send,
        tpf_url=f"http://{near}:{args.tpf_port}{TPF_INTAKE}",
        tpf_token=tpf.tokens[0],
        tpf_poll_seconds=_poll("IPIS_TPF_POLL_SECONDS", send.tpf_poll_seconds),
    )
    return send, tpf, register


def _loopback(host: str) -> str:
    """Where one party reaches another: the host served on, or loopback for «every address»."""
    return "127.0.0.1" if host in {"", "0.0.0.0", "::"} else host  # noqa: S104 - compared


def _poll(variable: str, configured: float) -> float:
    from .settings import env_text

    return configured if env_text(variable) else DEMO_POLL_SECONDS


# --- demo keys, account and staff user ---------------------------------------------------------


def ensure_chain_keys(send: Config, tpf: TpfConfig, register: RegisterConfig) -> list[str]:
    """Demo keys made once in ``<instance>/demonokler``; the send module serves their key
    file, the TPF's keyring holds the TPF's private key and the register's the register's.
    Returns the lines to print."""
    import datetime as dt
    import shutil

    from ipis_core.faults import IplosFault
    from ipis_core.keygen import KEY_FILE, generate_keys, write_keys

    from .keyring import party_keyring
    from .send.commands import DEMO_KEY_BITS

    source = send.instance_dir / DEMO_FOLDER
    if not (source / KEY_FILE).exists():
        if send.key_file.exists():
            source = send.key_file.parent  # an instance from before: demo keys made there
        else:
            print(f"Lager demonøkler ({DEMO_KEY_BITS} biter) i {source} …", flush=True)
            write_keys(generate_keys(dt.date.today(), bits=DEMO_KEY_BITS), str(source))
    if not send.key_file.exists():
        send.key_file.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / KEY_FILE, send.key_file)
    lines = [f"Demonøkler: {send.key_file} (de private i {source})"]
    for party, instance in (("tpf", tpf.instance_dir), ("register", register.instance_dir)):
        keyring = party_keyring(party, instance)  # type: ignore[arg-type]
        try:
            keyring.install_from_folder(source)
        except (OSError, IplosFault) as error:
            lines.append(f"Advarsel: nøkkelen til {party} ble ikke installert: {error}")
    return lines


def missing_keys(tpf: TpfConfig, register: RegisterConfig) -> list[str]:
    """A warning for each party whose keyring is empty (``--no-demo``: the operator's keys)."""
    from .keyring import party_keyring

    lines = []
    for party, instance in (("tpf", tpf.instance_dir), ("register", register.instance_dir)):
        if not party_keyring(party, instance).known_names():  # type: ignore[arg-type]
            lines.append(
                f"Advarsel: {party} har ingen nøkler; installer med «ipis keys install "
                f"--party {party} --instance {instance}»."
            )
    return lines


def ensure_staff_user(app: Flask) -> str:
    """The register's demo staff user, with a new password at every start (like the PIN)."""
    from .register.services import register_services
    from .register.staff import add_user, find_user, reset_password

    with register_services(app).db.session() as db:
        if find_user(db, DEMO_STAFF_USER) is None:
            return add_user(db, DEMO_STAFF_USER, DEMO_STAFF_NAME)[1]
        return reset_password(db, DEMO_STAFF_USER)


# --- the three parties -------------------------------------------------------------------------


def _parties(args: argparse.Namespace, send_config: Config, tpf_config: TpfConfig,
             register_config: RegisterConfig, started: list[Party]) -> dict[str, Any]:
    """Create the apps and bind the three servers (appending each to ``started`` as soon as
    it exists, so the caller closes what was made if a later one fails)."""
    from .register.app import create_app as register_app
    from .register.services import register_services
    from .register.worker import start_thread as register_worker
    from .running import Party, PartyFailed, bind
    from .send.app import create_app as send_app
    from .send.outbox import start_thread as send_worker
    from .send.services import services
    from .tpf.app import create_app as tpf_app
    from .tpf.services import tpf_services
    from .tpf.worker import start_thread as tpf_worker

    apps: dict[str, Any] = {}
    made: list[tuple[str, int, Callable[[], Flask], Callable[..., Any], Callable[..., Any]]] = [
        ("Registeret", args.register_port, lambda: register_app(register_config),
         register_services, register_worker),
        ("TPF", args.tpf_port, lambda: tpf_app(tpf_config), tpf_services, tpf_worker),
        ("Sendemodulen", args.port, lambda: send_app(send_config), services, send_worker),
    ]
    for label, port, create, svc_of, worker in made:
        try:
            app = create()
        except Exception as error:
            raise PartyFailed(f"{label} kunne ikke starte: {error}") from error
        svc = svc_of(app)
        try:
            server = bind(label, args.host, port, app)
        except PartyFailed:
            svc.db.dispose()
            raise
        dispose = getattr(svc, "dispose", svc.db.dispose)  # the send module's: db only
        started.append(Party(label, server, functools.partial(worker, svc), dispose))
        apps[label] = app
    return apps


def serve_chain(args: argparse.Namespace) -> int:
    """All three parties until Ctrl-C or SIGTERM; 1 with a message when one cannot start."""
    import threading

    from .running import PartyFailed, run_parties, setup_logging, stop_all
    from .send.commands import (
        DEMO_BYDELSNUMMER,
        DEMO_KOMMUNENUMMER,
        DEMO_ORGANISASJONSNUMMER,
        ensure_demo_account,
    )

    setup_logging()
    stop = threading.Event()
    parties: list[Party] = []
    try:
        send_config, tpf_config, register_config = _configs(args)
        _write_marker(send_config.instance_dir)
        key_lines = (
            missing_keys(tpf_config, register_config) if args.no_demo
            else ensure_chain_keys(send_config, tpf_config, register_config)
        )
        apps = _parties(args, send_config, tpf_config, register_config, parties)
        pin = "" if args.no_demo else ensure_demo_account(send_config)
        password = "" if args.no_demo else ensure_staff_user(apps["Registeret"])
    except PartyFailed as error:
        stop_all(parties, stop)
        print(f"{error} Ingen av partene kjører.", file=sys.stderr, flush=True)
        return 1
    except BaseException:
        stop_all(parties, stop)
        raise

    host = args.host
    lines = [
        f"IPLOS sendemodul:    http://{host}:{args.port}/",
        f"TPF (mottak):        {send_config.tpf_url}",
        f"Registeret (SSB):    http://{host}:{args.register_port}/",
    ]
    if not args.no_demo:
        lines += [
            "Demokonto for sendemodulen:",
            f"  Kommunenummer:       {DEMO_KOMMUNENUMMER}",
            f"  Bydelsnummer:        {DEMO_BYDELSNUMMER}",
            f"  Organisasjonsnummer: {DEMO_ORGANISASJONSNUMMER}",
            f"  PIN-kode:            {pin}",
            "Registerets ansatte (oversikten):",
            f"  Brukernavn:          {DEMO_STAFF_USER}",
            f"  Passord:             {password}",
        ]
    lines += key_lines
    lines += [
        "TPF godtar Skatteetatens syntetiske testnumre (bare for demo og test).",
        f"Instansmappe: {send_config.instance_dir} (TPF i tpf/, registeret i register/)",
        "Bare for demo: i drift kjører hver part på sin egen maskin (docs/drift.md).",
        "Ctrl-C stopper alle tre.",
    ]
    if args.no_worker:
        lines.append("Uten arbeidertråder: innsendingene blir liggende der de er mottatt.")
    run_parties(parties, args.no_worker, lines)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from .send.commands import cmd_serve as serve_send_only
    from .settings import env_text

    if args.only_send or env_text("IPIS_TPF_URL"):
        return serve_send_only(args)
    return serve_chain(args)


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    serve = commands.add_parser(
        "serve", help="demo: kjør sendemodulen, TPF og registeret (med demokonto og demonøkler)"
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000, help="sendemodulens port")
    serve.add_argument("--tpf-port", type=int, default=8100, help="TPF-ens port")
    serve.add_argument("--register-port", type=int, default=8002, help="registerets port")
    serve.add_argument(
        "--only-send", action="store_true",
        help="bare sendemodulen (som når IPIS_TPF_URL er satt): leverer til IPIS_TPF_URL "
        "eller til en lokal mappe",
    )
    serve.add_argument("--no-demo", action="store_true",
                       help="ingen demokonto, demobruker eller demonøkler")
    serve.add_argument("--no-worker", action="store_true", help="ingen arbeidertråder")
    serve.add_argument(
        "--instance", type=Path, default=None,
        help="instansmappe (standard: IPIS_INSTANCE eller ./instance)",
    )
    serve.set_defaults(handler=cmd_serve)
