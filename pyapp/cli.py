"""The core's commands of the ``ipis`` command line tool: encrypt, keys, inspect, demo-data.

The whole command line is composed in ``ipis_server.cli``, which adds these to the servers'
commands; the core never imports the servers. Faults are printed as their Norwegian message
on standard error with exit status 1 (``run``); a missing option of ``ipis encrypt`` gives
the seed's message for that form field rather than an argparse usage error.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Callable, Sequence

from . import __version__
from .faults import IplosFault

Handler = Callable[[argparse.Namespace], int]


def parse_date(value: str) -> dt.date:
    """An argparse type: an ISO date, with the error in Norwegian."""
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError("dato på formen ÅÅÅÅ-MM-DD") from None


def chosen_day(args: argparse.Namespace) -> dt.date:
    """``--today`` where a command has it (tests and rehearsals of a key change), else today."""
    day: dt.date | None = getattr(args, "today", None)
    return day or dt.date.today()


def cmd_encrypt(args: argparse.Namespace) -> int:
    from .encrypt_file import check_form, encrypt_file_now

    contact = check_form(args.data, args.out, args.keys, args.email, args.name, args.mobile)
    summary = encrypt_file_now(args.data, args.out, args.keys, contact, args.today)
    sender = summary.sender
    assert sender is not None
    print(f"Antall personer: {summary.persons}")
    print(
        f"Avsender: kommunenummer {sender.kommunenummer}, bydelsnummer {sender.bydelsnummer}, "
        f"organisasjonsnummer {sender.organisasjonsnummer}"
    )
    print(f"Kryptert fil: {args.out} ({summary.output_bytes} byte)")
    print(f"SHA-256: {summary.sha256}")
    for line in summary.key_file_lines:
        print(f"Nøkkelfil: {line}")
    for warning in summary.warnings:
        print(f"Advarsel: {warning}", file=sys.stderr)
    return 0


def cmd_keys_generate(args: argparse.Namespace) -> int:
    from .keygen import generate_keys, write_keys

    keys = generate_keys(args.valid_from, bits=args.bits)
    for path in write_keys(keys, args.out_dir):
        print(f"Skrev {path}")
    from .keyfile import describe_key_file

    for line in describe_key_file(keys.key_file):
        print(line)
    return 0


def cmd_keys_show(args: argparse.Namespace) -> int:
    from .faults import KeyFileUnreadable
    from .keyfile import describe_key_file, parse_key_file

    try:
        with open(args.file, "rb") as handle:
            raw = handle.read()
    except OSError:
        raise KeyFileUnreadable() from None
    key_file = parse_key_file(raw)
    for line in describe_key_file(key_file):
        print(line)
    today = chosen_day(args)
    try:
        key_file.check_dates(today)
    except IplosFault as fault:
        print(f"Advarsel: {fault.message}")
    warning = key_file.expiry_warning(today)
    if warning:
        print(f"Advarsel: {warning}")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from .inspect import inspect_file

    for label, value in inspect_file(args.file).lines():
        print(f"{label}: {value}")
    return 0


def cmd_demo_data(args: argparse.Namespace) -> int:
    from .atomic import AtomicOutput
    from .demo_data import write_document

    with AtomicOutput(args.out) as handle:
        write_document(handle, args.persons, args.kommune, args.seed, args.encoding)
    print(f"Skrev {args.persons} personer til {args.out}")
    return 0


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the core's commands to the composed ``ipis`` parser."""
    from .demo_data import ENCODINGS

    encrypt = commands.add_parser("encrypt", help="krypter en IPLOS-datafil")
    for option in ("--data", "--out", "--keys", "--email", "--name", "--mobile"):
        encrypt.add_argument(option)
    encrypt.add_argument("--today", type=parse_date, help=argparse.SUPPRESS)  # tests: fixed date
    encrypt.set_defaults(handler=cmd_encrypt)

    keys = commands.add_parser("keys", help="krypteringsnøkler").add_subparsers(
        dest="keys_command", required=True
    )
    generate = keys.add_parser("generate", help="lag nøkkelpar og nøkkelfil")
    generate.add_argument("--out-dir", required=True)
    generate.add_argument("--valid-from", type=parse_date, required=True)
    generate.add_argument("--bits", type=int, default=3072, choices=(2048, 3072, 4096))
    generate.set_defaults(handler=cmd_keys_generate)
    show = keys.add_parser("show", help="vis fingeravtrykk og datoer i en nøkkelfil")
    show.add_argument("file")
    show.add_argument("--today", type=parse_date, help=argparse.SUPPRESS)
    show.set_defaults(handler=cmd_keys_show)

    inspect = commands.add_parser("inspect", help="vis klartekstdelen av en kryptert fil")
    inspect.add_argument("file")
    inspect.set_defaults(handler=cmd_inspect)

    demo = commands.add_parser("demo-data", help="lag en syntetisk IPLOS-fil")
    demo.add_argument("--persons", type=int, required=True)
    demo.add_argument("--out", required=True)
    demo.add_argument("--kommune", default="0301")
    demo.add_argument("--seed", type=int, default=1)
    demo.add_argument("--encoding", default="UTF-8", choices=ENCODINGS)
    demo.set_defaults(handler=cmd_demo_data)


def new_parser() -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:  # type: ignore[type-arg]
    """The top-level parser, without commands: the composition adds them."""
    parser = argparse.ArgumentParser(prog="ipis", description="IPLOS innsendingssystem")
    parser.add_argument("--version", action="version", version=f"ipis {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    return parser, commands


def run(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> int:
    """Parse and run one command; a fault is its message on standard error, status 1."""
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    handler: Handler = args.handler
    try:
        return handler(args)
    except IplosFault as fault:
        print(fault.message, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Avbrutt.", file=sys.stderr)
        return 130
