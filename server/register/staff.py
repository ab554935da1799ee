"""The register's staff accounts: who may see the delivery overview (``ipis register user``).

Passwords are hashed with argon2id (argon2-cffi's RFC 9106 low-memory profile, as the send
module's PINs) and never stored or logged. Every change is made by one statement the database
settles, so two administrators (or a login and an administrator) never act on a stale row.
"""

from __future__ import annotations

import functools
import re
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .models import StaffSession, StaffUser

_HASHER = PasswordHasher()
USERNAME = re.compile(r"[a-z][a-z0-9._-]{1,63}")
MIN_PASSWORD = 12
MAX_PASSWORD = 200
GENERATED_PASSWORD_BYTES = 15  # 20 characters of base64url


class StaffInputError(ValueError):
    """A username, name or password of the wrong form (the message says which)."""


class StaffExists(ValueError):
    def __init__(self, username: str) -> None:
        super().__init__(f"Brukeren {username} finnes allerede.")


class StaffNotFound(ValueError):
    def __init__(self, username: str) -> None:
        super().__init__(f"Brukeren {username} finnes ikke.")


@functools.cache
def _dummy_hash() -> str:
    """Verified when no user matches, so an unknown user costs as much as a wrong password."""
    return _HASHER.hash(secrets.token_hex(8))


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        verified = _HASHER.verify(password_hash or _dummy_hash(), password)
        return verified and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def check_username(username: str) -> str:
    username = username.strip().lower()
    if not USERNAME.fullmatch(username):
        raise StaffInputError(
            "Brukernavnet må være 2–64 tegn: små bokstaver a–z, sifre, punktum, bindestrek "
            "og understrek, og begynne med en bokstav."
        )
    return username


def check_password(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise StaffInputError(f"Passordet må ha {MIN_PASSWORD}–{MAX_PASSWORD} tegn.")


def new_password() -> str:
    return secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)


def add_user(db: Session, username: str, name: str, password: str | None = None
             ) -> tuple[StaffUser, str]:
    """Create a user; returns it with its password (generated when none is given)."""
    username = check_username(username)
    name = name.strip()
    if not 1 <= len(name) <= 200 or any(ord(c) < 32 for c in name):
        raise StaffInputError("Navnet må ha 1–200 tegn.")
    password = new_password() if password is None else password
    check_password(password)
    user = StaffUser(brukernavn=username, navn=name, passord_hash=_HASHER.hash(password),
                     aktiv=True, feil_pa_rad=0)
    db.add(user)
    try:
        db.commit()  # the unique username settles two adds of the same name
    except IntegrityError:
        db.rollback()
        raise StaffExists(username) from None
    return user, password


def find_user(db: Session, username: str) -> StaffUser | None:
    return db.scalar(select(StaffUser).where(StaffUser.brukernavn == username.strip().lower()))


def list_users(db: Session) -> list[StaffUser]:
    return list(db.scalars(select(StaffUser).order_by(StaffUser.brukernavn)))


def set_active(db: Session, username: str, active: bool) -> None:
    """Disable (every session ends at its next request) or enable (and unlock) a user."""
    values: dict[str, object] = {"aktiv": active}
    if active:
        values.update(feil_pa_rad=0, laast_til=None)
    changed = db.execute(
        update(StaffUser).where(StaffUser.brukernavn == check_username(username)).values(**values)
    )
    if changed.rowcount != 1:  # type: ignore[attr-defined]
        db.rollback()
        raise StaffNotFound(username)
    if not active:
        _end_sessions(db, username)
    db.commit()


def _end_sessions(db: Session, username: str) -> None:
    user_id = select(StaffUser.id).where(StaffUser.brukernavn == check_username(username))
    db.execute(delete(StaffSession).where(StaffSession.ansatt_id.in_(user_id.scalar_subquery())))


def reset_password(db: Session, username: str, password: str | None = None) -> str:
    """A new password (generated when none is given); unlocks the user and ends its sessions."""
    password = new_password() if password is None else password
    check_password(password)
    changed = db.execute(
        update(StaffUser)
        .where(StaffUser.brukernavn == check_username(username))
        .values(passord_hash=_HASHER.hash(password), feil_pa_rad=0, laast_til=None)
    )
    if changed.rowcount != 1:  # type: ignore[attr-defined]
        db.rollback()
        raise StaffNotFound(username)
    _end_sessions(db, username)  # whoever knew the old password is logged out
    db.commit()
    return password
