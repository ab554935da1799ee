"""``ipis tpf …``: serve, worker, migrate, process, import-changes, rotate-secret.

``ipis_server.cli`` adds them to the composed command line; nothing here imports Flask or
SQLAlchemy until a command runs.
"""

from __future__ import annotations

import argparse
import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING

from ipis_core.cli import chosen_day, parse_date

if TYPE_CHECKING:
    from .config import TpfConfig


def _config(args: argparse.Namespace) -> TpfConfig:
    # Imported here: every ``ipis`` run reads this module (the keyring under the config pulls
    # in the decryption code and cryptography, which ``ipis encrypt --help`` has no use for).
    from ..settings import config_or_exit
    from .config import TpfConfig

    return config_or_exit(TpfConfig.from_env, args.instance)


def cmd_serve(args: argparse.Namespace) -> int:
    from ..running import serve_one, setup_logging
    from .app import INTAKE_PREFIX, create_app
    from .services import tpf_services
    from .worker import start_thread

    setup_logging()
    config = _config(args)
    app = create_app(config)
    svc = tpf_services(app)
    lines = [
        f"IPIS TPF: http://{args.host}:{args.port}{INTAKE_PREFIX}",
        f"Instansmappe: {config.instance_dir}",
        f"Nøkler: {config.keys_dir} ({', '.join(sorted(svc.keyring.known_names())) or 'ingen'})",
        "Videresender til: "
        + (config.register_url or f"lokal mappe {config.register_inbox_dir}"),
    ]
    if not os.environ.get("IPIS_TPF_TOKEN"):
        lines.append(f"Token (for sendemodulens IPIS_TPF_TOKEN): i {config.instance_dir / 'token'}")
    if not svc.keyring.known_names():
        lines.append("Advarsel: ingen nøkler; installer med «ipis keys install --party tpf».")
    return serve_one("TPF", args.host, args.port, app, functools.partial(start_thread, svc),
                     svc.dispose, args.no_worker, lines)


def cmd_worker(args: argparse.Namespace) -> int:
    from ..running import run_worker, setup_logging
    from .services import open_services
    from .worker import TpfWorker

    setup_logging()
    svc = open_services(_config(args))
    try:
        return run_worker(TpfWorker(svc), args.once, "Behandlet {} oppgaver")
    finally:
        svc.dispose()


def cmd_migrate(args: argparse.Namespace) -> int:
    from ..db import schema_revision
    from .services import open_services

    svc = open_services(_config(args))
    try:
        revision = schema_revision(svc.db)
    finally:
        svc.dispose()
    print(f"TPF-databasen er oppdatert (revisjon {revision})")
    return 0


def cmd_process(args: argparse.Namespace) -> int:
    from .offline import process_file

    summary = process_file(
        args.input,
        args.output,
        instance=args.instance,
        keys_dir=args.keys_dir,
        secret_file=args.secret,
        register_key_file=args.register_key_file,
        innsending_id=args.innsending_id,
        test_numbers=args.test_numbers,
        today=chosen_day(args),
    )
    for line in summary:
        print(line)
    return 0


def cmd_import_changes(args: argparse.Namespace) -> int:
    from .changes import import_changes
    from .services import open_services

    svc = open_services(_config(args))
    try:
        for line in import_changes(svc, args.file):
            print(line)
    finally:
        svc.dispose()
    return 0


def cmd_rotate_secret(args: argparse.Namespace) -> int:
    from ..running import setup_logging
    from .rotation import rotate_secret
    from .services import open_services

    setup_logging()
    svc = open_services(_config(args))
    try:
        for line in rotate_secret(svc):
            print(line)
    finally:
        svc.dispose()
    return 0


def _instance_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--instance", type=Path, default=None,
        help="TPF-ens instansmappe (standard: IPIS_TPF_INSTANCE eller ./instance/tpf)",
    )


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    tpf = commands.add_parser(
        "tpf", help="TPF: pseudonymisering (tjeneste, arbeider og filbasert)"
    ).add_subparsers(dest="tpf_command", required=True)

    serve = tpf.add_parser("serve", help="kjør TPF-tjenesten (mottak og arbeider i én prosess)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8100)
    serve.add_argument("--no-worker", action="store_true", help="ingen arbeidertråd")
    _instance_option(serve)
    serve.set_defaults(handler=cmd_serve)

    worker = tpf.add_parser("worker", help="behandle mottatte filer og lever til registeret")
    worker.add_argument("--once", action="store_true", help="gjør det som venter, og avslutt")
    _instance_option(worker)
    worker.set_defaults(handler=cmd_worker)

    migrate = tpf.add_parser("migrate", help="opprett eller oppgrader TPF-databasen")
    _instance_option(migrate)
    migrate.set_defaults(handler=cmd_migrate)

    process = tpf.add_parser(
        "process", help="pseudonymiser én kryptert fil til en fil til registeret (uten tjeneste)"
    )
    process.add_argument("input", type=Path, help="den krypterte IPLOS-filen")
    process.add_argument("output", type=Path, help="den pseudonymiserte meldingen (skrives hel)")
    _instance_option(process)
    process.add_argument("--keys-dir", type=Path, default=None,
                         help="TPF-ens nøkkelring (standard: instansens)")
    process.add_argument("--secret", type=Path, default=None,
                         help="hemmelighetsfilen, f.eks. hemmelighet/tpf-h1 (standard: "
                         "instansens gjeldende)")
    process.add_argument("--register-key-file", type=Path, default=None,
                         help="nøkkelfilen med registerets nøkkel (standard: instansens "
                         "gjeldende)")
    process.add_argument("--innsending-id", default=None,
                         help="32 heksadesimale tegn (standard: en ny tilfeldig)")
    process.add_argument("--test-numbers", action="store_true",
                         help="godta Skatteetatens syntetiske testnumre (bare for test)")
    process.add_argument("--today", type=parse_date, help=argparse.SUPPRESS)
    process.set_defaults(handler=cmd_process)

    changes = tpf.add_parser(
        "import-changes", help="les Folkeregisterets endringsliste (gammelt og nytt nummer)"
    )
    changes.add_argument("file", type=Path, help="CSV: gammelt_nummer;nytt_nummer")
    _instance_option(changes)
    changes.set_defaults(handler=cmd_import_changes)

    rotate = tpf.add_parser(
        "rotate-secret", help="bytt pseudonymhemmeligheten og send registeret omkodingen"
    )
    _instance_option(rotate)
    rotate.set_defaults(handler=cmd_rotate_secret)

