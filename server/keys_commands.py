"""``ipis keys install|list|remove``: a party's keyring from the command line (docs/drift.md).

Added to the core's ``ipis keys`` group (generate, show) by ``ipis_server.cli``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from ipis_core.cli import chosen_day, parse_date

if TYPE_CHECKING:
    from .keyring import Keyring

PARTIES = ("tpf", "register")  # keyring.PARTIES; not imported: every `ipis` run reads this file


def _keyring(args: argparse.Namespace) -> Keyring:
    from .keyring import party_instance, party_keyring

    party = args.party
    return party_keyring(party, party_instance(party, args.instance).resolve())


def cmd_install(args: argparse.Namespace) -> int:
    keyring = _keyring(args)
    if args.from_dir is not None:
        entry, new = keyring.install_from_folder(args.from_dir)
    else:
        if args.key_file is None or args.private_key is None:
            raise SystemExit("Oppgi --from MAPPE, eller både --key-file og --private-key.")
        entry, new = keyring.install(args.key_file, args.private_key)
    verb = "Installerte" if new else "Allerede installert:"
    print(
        f"{verb} {entry.key_id} i {keyring.folder} (gyldig {entry.valid_from.isoformat()} til "
        f"og med {entry.valid_to.isoformat()}; filer tas imot til og med "
        f"{entry.accepted_until(keyring.overlap).isoformat()})"
    )
    print(f"Fingeravtrykk: {entry.public_key.fingerprint()}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    keyring = _keyring(args)
    lines = keyring.describe(chosen_day(args))
    if not lines:
        print(f"Ingen nøkler i {keyring.folder}")
        return 1
    print(f"Nøkler i {keyring.folder} (overgangsperiode {keyring.overlap} dager):")
    for line in lines:
        print(line)
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    keyring = _keyring(args)
    keyring.remove(args.key_id)
    print(f"Fjernet {args.key_id} fra {keyring.folder}")
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from .send.config import Config
    from .send.key_publishing import publish

    for line in publish(Config.from_env(args.instance), args.file):
        print(line)
    return 0


def _party_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--party", required=True, choices=PARTIES, help="tpf eller register")
    parser.add_argument(
        "--instance", type=Path, default=None,
        help="partens instansmappe (standard: IPIS_TPF_INSTANCE / IPIS_REGISTER_INSTANCE, "
        "ellers ./instance/tpf eller ./instance/register)",
    )


def keys_group(commands: argparse._SubParsersAction) -> argparse._SubParsersAction:  # type: ignore[type-arg]
    """The subcommands of the core's ``ipis keys``."""
    keys = commands.choices["keys"]
    for action in keys._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    raise RuntimeError("ipis keys has no subcommands")


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    group = keys_group(commands)
    install = group.add_parser("install", help="legg en parts private nøkkel i nøkkelringen")
    _party_options(install)
    install.add_argument("--from", dest="from_dir", type=Path, default=None,
                         help="mappe fra «ipis keys generate» (nokkelfil.xml og den private "
                         "nøkkelen)")
    install.add_argument("--key-file", type=Path, default=None, help="nøkkelfilen (offentlig)")
    install.add_argument("--private-key", type=Path, default=None,
                         help="partens private nøkkel (PEM)")
    install.set_defaults(handler=cmd_install)

    listing = group.add_parser("list", help="vis nøklene en part har, og hvilke som tas imot")
    _party_options(listing)
    listing.add_argument("--today", type=parse_date, help=argparse.SUPPRESS)
    listing.set_defaults(handler=cmd_list)

    remove = group.add_parser("remove", help="fjern en gammel nøkkel fra nøkkelringen")
    _party_options(remove)
    remove.add_argument("key_id")
    remove.set_defaults(handler=cmd_remove)

    publish = group.add_parser(
        "publish", help="sendemodulen: legg ut en ny nøkkelfil (den gamle tas imot en stund til)"
    )
    publish.add_argument("file", type=Path, help="den nye nøkkelfilen fra SSB")
    publish.add_argument(
        "--instance", type=Path, default=None,
        help="sendemodulens instansmappe (standard: IPIS_INSTANCE eller ./instance)",
    )
    publish.set_defaults(handler=cmd_publish)
