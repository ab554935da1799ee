"""``ipis register …``: serve, worker, migrate, load, export, user.

``ipis_server.cli`` adds them to the composed command line; nothing here imports Flask or
SQLAlchemy until a command runs.
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ipis_core.cli import chosen_day, parse_date

if TYPE_CHECKING:
    from .config import RegisterConfig


def _config(args: argparse.Namespace) -> RegisterConfig:
    # Imported here: every ``ipis`` run reads this module (the keyring under the config pulls
    # in the decryption code and cryptography, which ``ipis encrypt --help`` has no use for).
    from ..settings import config_or_exit
    from .config import RegisterConfig

    return config_or_exit(RegisterConfig.from_env, args.instance)


def cmd_serve(args: argparse.Namespace) -> int:
    from ..running import serve_one, setup_logging
    from .app import INTAKE_PREFIX, create_app
    from .services import register_services
    from .worker import start_thread

    setup_logging()
    config = _config(args)
    app = create_app(config)
    svc = register_services(app)
    keys = sorted(svc.keyring.known_names())
    lines = [
        f"IPLOS-registeret: http://{args.host}:{args.port}/ (oversikt for de ansatte)",
        f"Mottak fra TPF: http://{args.host}:{args.port}{INTAKE_PREFIX}",
        f"Instansmappe: {config.instance_dir}",
        f"Nøkler: {config.keys_dir} ({', '.join(keys) or 'ingen'})",
    ]
    if not keys:
        lines.append(
            "Advarsel: ingen nøkler; installer med «ipis keys install --party register»."
        )
    return serve_one("Registeret", args.host, args.port, app,
                     functools.partial(start_thread, svc), svc.dispose, args.no_worker, lines)


def cmd_worker(args: argparse.Namespace) -> int:
    from ..running import run_worker, setup_logging
    from .services import open_services
    from .worker import RegisterWorker

    setup_logging()
    svc = open_services(_config(args))
    try:
        return run_worker(RegisterWorker(svc), args.once, "Behandlet {} leveranser")
    finally:
        svc.dispose()


def cmd_migrate(args: argparse.Namespace) -> int:
    from ..db import schema_revision
    from .models import VERSION_TABLE
    from .services import open_services

    svc = open_services(_config(args))
    try:
        revision = schema_revision(svc.db, VERSION_TABLE)
    finally:
        svc.dispose()
    print(f"Registerets database er oppdatert (revisjon {revision})")
    return 0


def cmd_load(args: argparse.Namespace) -> int:
    """File-based operation: §4 messages (``ipis tpf process``) and §6 mappings, by hand."""
    from ..dbtypes import utcnow
    from .files import load_file
    from .services import open_services

    svc = open_services(_config(args), today=lambda: chosen_day(args))
    refused = 0
    try:
        for path in args.files:
            try:
                outcome = load_file(svc, Path(path), utcnow())
            except OSError:
                print(f"{path}: filen kunne ikke åpnes.", file=sys.stderr)
                refused += 1
                continue
            ident = f" (innsending {outcome.submission_id})" if outcome.submission_id else ""
            if outcome.loaded:
                print(f"{path}{ident}: {outcome.message}")
            else:
                print(f"{path}{ident}: avvist. {outcome.message}", file=sys.stderr)
                refused += 1
    finally:
        svc.dispose()
    return 1 if refused else 0


def cmd_export(args: argparse.Namespace) -> int:
    from .export import ParquetUnavailable, export_csv, export_parquet
    from .services import open_services

    out = Path(args.out)
    parquet = (args.format or out.suffix.lstrip(".").lower()) == "parquet"
    svc = open_services(_config(args))
    try:
        write = export_parquet if parquet else export_csv
        count = write(svc.db, out, args.med_erstattede)
    except ParquetUnavailable as error:
        print(str(error), file=sys.stderr)
        return 1
    finally:
        svc.dispose()
    print(f"Skrev {count} rader til {out}")
    return 0


# --- staff accounts ---------------------------------------------------------------------------


def _password(args: argparse.Namespace) -> str | None:
    return sys.stdin.readline().rstrip("\n") if args.passord_stdin else None


def cmd_user_add(args: argparse.Namespace) -> int:
    from .services import open_services
    from .staff import StaffExists, StaffInputError, add_user

    password = _password(args)
    svc = open_services(_config(args))
    try:
        with svc.db.session() as db:
            user, password = add_user(db, args.brukernavn, args.navn, password)
    except (StaffExists, StaffInputError) as error:
        print(str(error), file=sys.stderr)
        return 1
    finally:
        svc.dispose()
    print(f"Bruker opprettet: {user.brukernavn} ({user.navn})")
    if not args.passord_stdin:
        print(f"Passord: {password}")
        print("Passordet vises bare denne ene gangen.")
    return 0


def cmd_user_list(args: argparse.Namespace) -> int:
    from ..dbtypes import utcnow
    from .services import open_services
    from .staff import list_users

    svc = open_services(_config(args))
    try:
        with svc.db.session() as db:
            now = utcnow()
            for user in list_users(db):
                state = "aktiv" if user.aktiv else "deaktivert"
                if user.laast_til and user.laast_til > now:
                    state += f", låst til {user.laast_til.isoformat(timespec='minutes')}"
                print(f"{user.brukernavn}  {user.navn}  {state}")
    finally:
        svc.dispose()
    return 0


def _user_change(args: argparse.Namespace, action: str) -> int:
    from .services import open_services
    from .staff import StaffInputError, StaffNotFound, reset_password, set_active

    chosen = _password(args) if action == "reset" else None
    svc = open_services(_config(args))
    try:
        with svc.db.session() as db:
            if action == "reset":
                password = reset_password(db, args.brukernavn, chosen)
                print(f"Nytt passord for {args.brukernavn}")
                if not args.passord_stdin:
                    print(f"Passord: {password}")
            else:
                set_active(db, args.brukernavn, action == "enable")
                print(("Aktivert: " if action == "enable" else "Deaktivert: ") + args.brukernavn)
    except (StaffNotFound, StaffInputError) as error:
        print(str(error), file=sys.stderr)
        return 1
    finally:
        svc.dispose()
    return 0


# --- registration -----------------------------------------------------------------------------


def _instance_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--instance", type=Path, default=None,
        help="registerets instansmappe (standard: IPIS_REGISTER_INSTANCE eller "
        "./instance/register)",
    )


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    register = commands.add_parser("register", help="registeret hos SSB").add_subparsers(
        dest="register_command", required=True
    )
    serve = register.add_parser("serve", help="kjør registeret (mottak, lasting, oversikt)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8002)
    serve.add_argument("--no-worker", action="store_true", help="ingen lastetråd")
    _instance_option(serve)
    serve.set_defaults(handler=cmd_serve)

    worker = register.add_parser("worker", help="last leveransene fra TPF inn i databasen")
    worker.add_argument("--once", action="store_true", help="last det som venter, og avslutt")
    _instance_option(worker)
    worker.set_defaults(handler=cmd_worker)

    migrate = register.add_parser("migrate", help="opprett eller oppgrader databaseskjemaet")
    _instance_option(migrate)
    migrate.set_defaults(handler=cmd_migrate)

    load = register.add_parser(
        "load", help="last pseudonymiserte filer fra «ipis tpf process» (og pseudonymbytter)"
    )
    load.add_argument("files", nargs="+", metavar="IN")
    load.add_argument("--today", type=parse_date, help=argparse.SUPPRESS)  # tests: key dates
    _instance_option(load)
    load.set_defaults(handler=cmd_load)

    export = register.add_parser(
        "export", help="skriv ut registerets data: én rad per person og innsending"
    )
    export.add_argument("--out", required=True, help="FIL.csv eller FIL.parquet")
    export.add_argument("--format", choices=("csv", "parquet"), default=None,
                        help="standard: etter filnavnet")
    export.add_argument("--med-erstattede", action="store_true",
                        help="ta med innsendinger som er erstattet av nyere")
    _instance_option(export)
    export.set_defaults(handler=cmd_export)

    user = register.add_parser("user", help="registerets ansatte").add_subparsers(
        dest="user_command", required=True
    )
    add = user.add_parser("add", help="opprett en bruker og skriv ut passordet")
    add.add_argument("--brukernavn", required=True)
    add.add_argument("--navn", required=True)
    add.add_argument("--passord-stdin", action="store_true", help="les passordet fra standard inn")
    _instance_option(add)
    add.set_defaults(handler=cmd_user_add)
    listing = user.add_parser("list", help="vis brukerne")
    _instance_option(listing)
    listing.set_defaults(handler=cmd_user_list)
    for name, action, text in (
        ("disable", "disable", "deaktiver en bruker (avslutter øktene)"),
        ("enable", "enable", "aktiver en bruker igjen (opphever også låsing)"),
        ("reset-password", "reset", "nytt passord (opphever låsing, avslutter øktene)"),
    ):
        sub = user.add_parser(name, help=text)
        sub.add_argument("--brukernavn", required=True)
        if action == "reset":
            sub.add_argument("--passord-stdin", action="store_true",
                             help="les passordet fra standard inn")
        _instance_option(sub)
        sub.set_defaults(handler=lambda a, act=action: _user_change(a, act))
