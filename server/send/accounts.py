"""Account administration (``ipis account``): every change goes to the audit log."""

from __future__ import annotations

import getpass
import re
from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ipis_core.identifiers import orgnr_ok

from .models import Account, AuditEntry, WebSession
from .pins import check_pin_format, hash_pin, new_pin


class AccountInputError(ValueError):
    """A kommunenummer, bydelsnummer or organisasjonsnummer is malformed."""


class AccountExists(Exception):
    """An account with the same three numbers is already registered."""


class AccountNotFound(LookupError):
    """No account has these numbers."""


def check_identity(kommunenummer: str, bydelsnummer: str, organisasjonsnummer: str) -> None:
    if not re.fullmatch(r"[0-9]{4}", kommunenummer):
        raise AccountInputError("Kommunenummer må være fire sifre")
    if not re.fullmatch(r"[0-9]{2}", bydelsnummer):
        raise AccountInputError("Bydelsnummer må være to sifre")
    if not orgnr_ok(organisasjonsnummer):
        raise AccountInputError("Organisasjonsnummer må være ni sifre med riktig kontrollsiffer")


def default_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def audit(
    session: Session, account: Account | None, action: str, actor: str, detail: str = ""
) -> None:
    session.add(
        AuditEntry(
            account_id=account.id if account else None, action=action, actor=actor, detail=detail
        )
    )


def find_account(
    session: Session, kommunenummer: str, bydelsnummer: str, organisasjonsnummer: str
) -> Account | None:
    return session.scalar(
        select(Account).where(
            Account.kommunenummer == kommunenummer,
            Account.bydelsnummer == bydelsnummer,
            Account.organisasjonsnummer == organisasjonsnummer,
        )
    )


def _require(session: Session, k: str, b: str, o: str) -> Account:
    account = find_account(session, k, b, o)
    if account is None:
        raise AccountNotFound("Fant ingen konto med disse numrene")
    return account


def add_account(
    session: Session,
    kommunenummer: str,
    bydelsnummer: str,
    organisasjonsnummer: str,
    pin: str | None = None,
    actor: str = "",
) -> tuple[Account, str]:
    """Create an account; returns it and its PIN (random unless given). Commits."""
    check_identity(kommunenummer, bydelsnummer, organisasjonsnummer)
    if pin is None:
        pin = new_pin()
    check_pin_format(pin)
    if find_account(session, kommunenummer, bydelsnummer, organisasjonsnummer) is not None:
        raise AccountExists("Kontoen finnes allerede")
    account = Account(
        kommunenummer=kommunenummer,
        bydelsnummer=bydelsnummer,
        organisasjonsnummer=organisasjonsnummer,
        pin_hash=hash_pin(pin),
        active=True,
        failed_logins=0,
    )
    session.add(account)
    session.flush()
    audit(session, account, "opprettet", actor or default_actor(), account.label())
    session.commit()
    return account, pin


def list_accounts(session: Session) -> Sequence[Account]:
    return session.scalars(
        select(Account).order_by(
            Account.kommunenummer, Account.bydelsnummer, Account.organisasjonsnummer
        )
    ).all()


def end_sessions(session: Session, account: Account) -> None:
    """Log the account out everywhere (a new PIN or a disabled account ends every session)."""
    session.execute(delete(WebSession).where(WebSession.account_id == account.id))


def disable_account(session: Session, k: str, b: str, o: str, actor: str = "") -> Account:
    account = _require(session, k, b, o)
    account.active = False
    end_sessions(session, account)
    audit(session, account, "deaktivert", actor or default_actor())
    session.commit()
    return account


def enable_account(session: Session, k: str, b: str, o: str, actor: str = "") -> Account:
    account = _require(session, k, b, o)
    account.active = True
    account.failed_logins = 0
    account.locked_until = None
    audit(session, account, "aktivert", actor or default_actor())
    session.commit()
    return account


def reset_pin(
    session: Session, k: str, b: str, o: str, pin: str | None = None, actor: str = ""
) -> tuple[Account, str]:
    """New PIN (random unless given); lifts a lockout and ends the account's sessions. Commits.

    Whoever knew the old PIN may be logged in right now: a reset is often why (issue 7,
    point 5).
    """
    account = _require(session, k, b, o)
    if pin is None:
        pin = new_pin()
    check_pin_format(pin)
    account.pin_hash = hash_pin(pin)
    account.failed_logins = 0
    account.locked_until = None
    end_sessions(session, account)
    audit(session, account, "ny PIN-kode", actor or default_actor())
    session.commit()
    return account, pin
