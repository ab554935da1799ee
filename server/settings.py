"""Reading ``IPIS_*`` settings from the environment: one set of rules for the three parties.

The send module, the TPF and the register each have a typed config object (``send/config.py``,
``tpf/config.py``, ``register/config.py``) built once at start-up from these helpers, so a bad
value is refused the same way everywhere: at start, with a Norwegian message naming the variable
(never a value, which might be a secret).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from ipis_core.faults import IplosFault

T = TypeVar("T")

TRUE_WORDS = frozenset({"1", "true", "ja", "yes", "on"})


class SettingInvalid(IplosFault):
    """A setting is missing or malformed; the message names the variable."""


def env_text(name: str) -> str:
    """The variable's value without surrounding whitespace; empty when unset."""
    return os.environ.get(name, "").strip()


def env_int(name: str, default: int) -> int:
    """A whole number of at least zero (counts, sizes, minutes, days)."""
    raw = env_text(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingInvalid(f"{name} må være et heltall") from None
    if value < 0:
        raise SettingInvalid(f"{name} kan ikke være negativ")
    return value


def env_float(name: str, default: float) -> float:
    """A number above zero (timeouts and intervals: zero would mean spinning or never)."""
    raw = env_text(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingInvalid(f"{name} må være et tall") from None
    if not value > 0:  # also refuses NaN
        raise SettingInvalid(f"{name} må være større enn null")
    return value


def env_bool(name: str, default: bool = False) -> bool:
    raw = env_text(name)
    if not raw:
        return default
    return raw.lower() in TRUE_WORDS


def env_tokens(name: str) -> tuple[str, ...]:
    """Comma-separated bearer tokens: an old and a new one both work during a change-over."""
    return tuple(token.strip() for token in env_text(name).split(",") if token.strip())


def private_value(path: Path, make: str) -> str:
    """The content of a 0600 file in an instance folder, written with ``make`` if missing.

    Used for the demo's random tokens and session keys: kept in a file so they survive a
    restart and every gunicorn process agrees on them. The file is written whole under a
    temporary name and linked into place, which fails if another process starting at the same
    moment got there first: then that one's value is read, never a half-written file."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(descriptor, "w", encoding="ascii") as handle:
                handle.write(make)
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(temporary, path)
            except FileExistsError:
                pass  # another process made it first
        finally:
            temporary.unlink(missing_ok=True)
    return path.read_text(encoding="ascii").strip()


def config_or_exit(from_env: Callable[[Path | None], T], instance: Path | None) -> T:
    """A party's config for a command: a bad setting ends the command with its message."""
    try:
        return from_env(instance)
    except SettingInvalid as error:
        raise SystemExit(str(error)) from None
