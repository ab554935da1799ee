"""PINs: random generation and argon2id hashing (the PIN itself is never stored or logged)."""

from __future__ import annotations

import functools
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

PIN_DIGITS = 8
_HASHER = PasswordHasher()  # argon2id with the library's RFC 9106 low-memory profile


@functools.cache
def _dummy_hash() -> str:
    """Verified when no account matches, so an unknown account costs as much as a wrong PIN."""
    return _HASHER.hash(secrets.token_hex(8))


class PinFormatError(ValueError):
    """A chosen PIN is too short or not digits only."""


def new_pin() -> str:
    return "".join(secrets.choice("0123456789") for _ in range(PIN_DIGITS))


def check_pin_format(pin: str) -> None:
    if not (pin.isascii() and pin.isdigit() and 6 <= len(pin) <= 32):
        raise PinFormatError("PIN-koden må være 6–32 sifre")


def hash_pin(pin: str) -> str:
    return _HASHER.hash(pin)


def verify_pin(pin_hash: str | None, pin: str) -> bool:
    try:
        return _HASHER.verify(pin_hash or _dummy_hash(), pin) and pin_hash is not None
    except (VerificationError, InvalidHashError):
        return False
