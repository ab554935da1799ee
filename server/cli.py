"""The ``ipis`` command line, composed in this one place from the core's and the servers' commands.

The core (``ipis_core``) never imports the servers; this module imports both. Handlers import
Flask, SQLAlchemy and the rest only when they run, so ``ipis encrypt`` starts fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ipis_core import cli as core_cli

from . import keys_commands, serve
from .register import commands as register_commands
from .send import commands as send_commands
from .tpf import commands as tpf_commands


def build_parser() -> argparse.ArgumentParser:
    parser, commands = core_cli.new_parser()
    core_cli.add_commands(commands)
    keys_commands.add_commands(commands)
    serve.add_commands(commands)
    send_commands.add_commands(commands)
    tpf_commands.add_commands(commands)
    register_commands.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return core_cli.run(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
