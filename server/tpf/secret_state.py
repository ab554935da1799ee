"""Which pseudonym secret is current, and its aliases: the database side of pseudonyms.py."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..db import Database
from .models import CURRENT, PseudonymAlias, PseudonymSecret
from .pseudonyms import Pseudonymiser, SecretStore, SecretUnavailable, secret_id


def ensure_secret(database: Database, store: SecretStore) -> None:
    """A TPF's first start: secret ``tpf-h1`` recorded as current and its file made.

    The database settles a race between two first starts (primary key). On several hosts,
    only the first host makes the file; copy the secret folder to the others (docs/drift.md)."""
    with database.session() as db:
        if db.scalar(select(func.count()).select_from(PseudonymSecret)):
            return
        db.add(PseudonymSecret(id=secret_id(1), number=1, state=CURRENT))
        try:
            db.commit()
        except IntegrityError:
            db.rollback()
            return
    store.create(secret_id(1))


def current_secret_id(db: Session) -> str:
    found = db.scalar(select(PseudonymSecret.id).where(PseudonymSecret.state == CURRENT))
    if found is None:
        raise SecretUnavailable(
            "TPF har ingen gjeldende pseudonymhemmelighet (et bytte av hemmeligheten pågår, "
            "eller den er ikke laget). Behandlingen venter."
        )
    return found


def load_aliases(db: Session, identifier: str) -> dict[str, str]:
    rows = db.execute(
        select(PseudonymAlias.alias, PseudonymAlias.target).where(
            PseudonymAlias.secret_id == identifier
        )
    )
    return {alias: target for alias, target in rows}


def current_pseudonymiser(
    database: Database, store: SecretStore, allow_synthetic: bool
) -> Pseudonymiser:
    with database.session() as db:
        identifier = current_secret_id(db)
        aliases = load_aliases(db, identifier)
    return Pseudonymiser(identifier, store.load(identifier), aliases, allow_synthetic)
