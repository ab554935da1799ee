"""The send module's commands: ``ipis worker``, ``ipis migrate``, ``ipis account``, and the
send module alone for ``ipis serve --only-send`` (``ipis_server.serve`` registers ``serve``).

``ipis_server.cli`` adds them to the composed command line; nothing here runs on import.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used: not at every start of ``ipis encrypt``
    from .config import Config

DEMO_KOMMUNENUMMER = "0301"
DEMO_BYDELSNUMMER = "00"
DEMO_ORGANISASJONSNUMMER = "922542570"  # `ipis demo-data`'s sender
DEMO_KEY_BITS = 2048  # demo only: 3072-bit generation takes many seconds at every first start


def _config(args: argparse.Namespace) -> Config:
    from ..settings import config_or_exit
    from .config import Config

    return config_or_exit(Config.from_env, args.instance)


def _open(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from ..db import open_database, upgrade_schema
    from .models import MIGRATIONS_DIR

    database = open_database(_config(args).database_url)
    upgrade_schema(database, MIGRATIONS_DIR)
    return database


# --- account ------------------------------------------------------------------------------


def _numbers(args: argparse.Namespace) -> tuple[str, str, str]:
    return args.kommunenummer, args.bydelsnummer, args.organisasjonsnummer


def cmd_account_add(args: argparse.Namespace) -> int:
    from .accounts import AccountExists, AccountInputError, add_account
    from .pins import PinFormatError

    pin = sys.stdin.readline().strip() if args.pin_stdin else None
    database = _open(args)
    try:
        with database.session() as db:
            account, pin = add_account(db, *_numbers(args), pin=pin)
    except (AccountInputError, AccountExists, PinFormatError) as error:
        print(str(error), file=sys.stderr)
        return 1
    finally:
        database.dispose()
    print(f"Konto opprettet: {account.label()}")
    if not args.pin_stdin:
        print(f"PIN-kode: {pin}")
        print("PIN-koden vises bare denne ene gangen; send den til kommunen i eget brev.")
    return 0


def cmd_account_list(args: argparse.Namespace) -> int:
    from .accounts import list_accounts
    from .models import utcnow

    database = _open(args)
    with database.session() as db:
        now = utcnow()
        for account in list_accounts(db):
            state = "aktiv" if account.active else "deaktivert"
            if account.locked_until and account.locked_until > now:
                state += f", låst til {account.locked_until.isoformat(timespec='minutes')}"
            print(
                f"{account.kommunenummer} {account.bydelsnummer} {account.organisasjonsnummer}"
                f"  {state}"
            )
    database.dispose()
    return 0


def _change(args: argparse.Namespace, action: str) -> int:
    from .accounts import AccountNotFound, disable_account, enable_account, reset_pin
    from .pins import PinFormatError

    database = _open(args)
    try:
        with database.session() as db:
            if action == "disable":
                account = disable_account(db, *_numbers(args))
                print(f"Deaktivert: {account.label()}")
            elif action == "enable":
                account = enable_account(db, *_numbers(args))
                print(f"Aktivert: {account.label()}")
            else:
                chosen = sys.stdin.readline().strip() if args.pin_stdin else None
                account, pin = reset_pin(db, *_numbers(args), pin=chosen)
                print(f"Ny PIN-kode for {account.label()}")
                if not args.pin_stdin:
                    print(f"PIN-kode: {pin}")
    except (AccountNotFound, PinFormatError) as error:
        print(str(error), file=sys.stderr)
        return 1
    finally:
        database.dispose()
    return 0


# --- migrate, serve and worker ---------------------------------------------------------------


def cmd_migrate(args: argparse.Namespace) -> int:
    """The schema to the newest revision (every start does it too, under the same lock)."""
    from ..db import schema_revision

    database = _open(args)
    try:
        revision = schema_revision(database)
    finally:
        database.dispose()
    print(f"Databasen er oppdatert (revisjon {revision})")
    return 0



def ensure_demo_keys(config: Config) -> None:
    """Demo keys under the instance folder, made once (never for a key file set by env)."""
    from ipis_core.keygen import generate_keys, write_keys

    if config.key_file.exists():
        return
    print(f"Lager demonøkler ({DEMO_KEY_BITS} biter) i {config.key_file.parent} …", flush=True)
    keys = generate_keys(dt.date.today(), bits=DEMO_KEY_BITS)
    write_keys(keys, str(config.key_file.parent))


def ensure_demo_account(config: Config) -> str:
    """The demo account, with a new PIN at every start (only its hash is kept)."""
    from ..db import open_database
    from .accounts import add_account, find_account, reset_pin

    database = open_database(config.database_url)
    try:
        with database.session() as db:
            numbers = (DEMO_KOMMUNENUMMER, DEMO_BYDELSNUMMER, DEMO_ORGANISASJONSNUMMER)
            if find_account(db, *numbers) is None:
                _, pin = add_account(db, *numbers, actor="serve:demo")
            else:
                _, pin = reset_pin(db, *numbers, actor="serve:demo")
    finally:
        database.dispose()
    return pin


def cmd_serve(args: argparse.Namespace) -> int:
    """The send module alone (``ipis serve --only-send``, or a real TPF in IPIS_TPF_URL)."""
    from ..running import serve_one, setup_logging
    from .app import create_app
    from .outbox import start_thread
    from .services import services

    setup_logging()
    config = _config(args)
    app = create_app(config)
    lines = [f"IPLOS sendemodul: http://{args.host}:{args.port}/"]
    if not args.no_demo:
        ensure_demo_keys(config)
        pin = ensure_demo_account(config)
        lines += [
            "Demokonto:",
            f"  Kommunenummer:       {DEMO_KOMMUNENUMMER}",
            f"  Bydelsnummer:        {DEMO_BYDELSNUMMER}",
            f"  Organisasjonsnummer: {DEMO_ORGANISASJONSNUMMER}",
            f"  PIN-kode:            {pin}",
            f"Demonøkler: {config.key_file}",
        ]
    target = config.tpf_url or f"lokal innboks {config.inbox_dir}"
    lines.append(f"Videresender til: {target}")
    lines.append(f"Instansmappe: {config.instance_dir}")
    svc = services(app)
    return serve_one("Sendemodulen", args.host, args.port, app,
                     functools.partial(start_thread, svc), svc.db.dispose, args.no_worker, lines)


def cmd_worker(args: argparse.Namespace) -> int:
    from ..running import run_worker, setup_logging
    from .app import create_app
    from .outbox import Worker
    from .services import services

    setup_logging()
    svc = services(create_app(_config(args)))
    try:
        return run_worker(Worker(svc), args.once, "Behandlet {} innsendinger")
    finally:
        svc.db.dispose()


# --- registration ---------------------------------------------------------------------------


def _instance_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--instance",
        type=Path,
        default=None,
        help="instansmappe (standard: IPIS_INSTANCE eller ./instance)",
    )


def _identity_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kommunenummer", required=True)
    parser.add_argument("--bydelsnummer", default="00")
    parser.add_argument("--organisasjonsnummer", required=True)
    _instance_option(parser)


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    migrate = commands.add_parser("migrate", help="opprett eller oppgrader databaseskjemaet")
    _instance_option(migrate)
    migrate.set_defaults(handler=cmd_migrate)

    worker = commands.add_parser("worker", help="videresend mottatte filer til TPF")
    worker.add_argument("--once", action="store_true", help="behandle det som venter, og avslutt")
    _instance_option(worker)
    worker.set_defaults(handler=cmd_worker)

    account = commands.add_parser("account", help="kontoer for sendemodulen").add_subparsers(
        dest="account_command", required=True
    )
    add = account.add_parser("add", help="opprett konto og skriv ut PIN-koden")
    _identity_options(add)
    add.add_argument("--pin-stdin", action="store_true", help="les PIN-koden fra standard inn")
    add.set_defaults(handler=cmd_account_add)
    listing = account.add_parser("list", help="vis kontoene")
    _instance_option(listing)
    listing.set_defaults(handler=cmd_account_list)
    disable = account.add_parser("disable", help="deaktiver en konto")
    _identity_options(disable)
    disable.set_defaults(handler=lambda a: _change(a, "disable"))
    enable = account.add_parser("enable", help="aktiver en konto igjen (opphever også låsing)")
    _identity_options(enable)
    enable.set_defaults(handler=lambda a: _change(a, "enable"))
    reset = account.add_parser("reset-pin", help="ny PIN-kode (opphever også låsing)")
    _identity_options(reset)
    reset.add_argument("--pin-stdin", action="store_true", help="les PIN-koden fra standard inn")
    reset.set_defaults(handler=lambda a: _change(a, "reset"))

