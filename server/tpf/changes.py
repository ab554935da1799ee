"""``ipis tpf import-changes FILE.csv``: the population register's change list (issue 9.2).

When a person's D-number is replaced by a fødselsnummer (or a number is corrected), the
person must keep one pseudonym. The TPF reads the list, computes both numbers' pseudonyms
under its current secret, and stores only that the new number's pseudonym stands for the old
one's (an alias). The numbers themselves are never stored, logged or printed; the operator
deletes the file once it is read (docs/drift.md).

The file (docs/drift.md): text, UTF-8 (a BOM is allowed) or any ASCII-compatible encoding, a
header line naming the columns ``gammelt_nummer`` and ``nytt_nummer`` (other columns, such as a
date, are ignored), ``;`` or ``,`` between the columns, one change per line, oldest first. A
line whose numbers are not both valid 11-digit person numbers, or are the same, refuses the
whole file, naming its line numbers only.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ipis_core.faults import IplosFault
from ipis_core.identifiers import fnr_valid

from .models import CURRENT, PseudonymAlias, PseudonymSecret
from .pseudonyms import SecretUnavailable, pseudonym
from .secret_state import current_secret_id
from .services import TpfServices

OLD = "gammelt_nummer"
NEW = "nytt_nummer"
MAX_LISTED = 20
MAX_LINE_BYTES = 4096


class ChangeListFault(IplosFault):
    field = "endringsliste"


class ChangeListUnreadable(ChangeListFault):
    def __init__(self) -> None:
        super().__init__("Endringslisten kunne ikke åpnes.")


class ChangeListHeader(ChangeListFault):
    def __init__(self) -> None:
        super().__init__(
            f"Endringslisten må ha en overskriftslinje med kolonnene {OLD} og {NEW}, skilt med "
            "semikolon eller komma."
        )


class ChangeListRows(ChangeListFault):
    def __init__(self, lines: list[int]) -> None:
        shown = ", ".join(str(n) for n in lines[:MAX_LISTED]) + (
            " …" if len(lines) > MAX_LISTED else ""
        )
        super().__init__(
            f"Endringslisten er ikke lest inn: {len(lines)} linjer har ikke to gyldige og "
            f"forskjellige personnumre med 11 siffer (linje {shown}). Rett listen og prøv igjen."
        )


@dataclass(frozen=True)
class Change:
    line: int
    old: str
    new: str

    def __repr__(self) -> str:  # never a number in a log or a traceback
        return f"Change(line={self.line})"


def read_changes(path: Path, allow_synthetic: bool) -> list[Change]:
    """All changes of the file, or the fault naming the bad lines (never their content)."""
    try:
        raw = path.read_bytes()
    except OSError:
        raise ChangeListUnreadable() from None
    text = raw.decode("latin-1").removeprefix("\xef\xbb\xbf")  # digits and separators only
    lines = text.splitlines()
    if not lines:
        raise ChangeListHeader()
    delimiter = ";" if lines[0].count(";") >= lines[0].count(",") else ","
    rows = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = [name.strip().lower() for name in next(rows, [])]
    if OLD not in header or NEW not in header:
        raise ChangeListHeader()
    old_at, new_at = header.index(OLD), header.index(NEW)
    changes: list[Change] = []
    bad: list[int] = []
    for number, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue
        try:
            old, new = row[old_at].strip(), row[new_at].strip()
        except IndexError:
            bad.append(number)
            continue
        if old == new or not (fnr_valid(old, allow_synthetic) and fnr_valid(new, allow_synthetic)):
            bad.append(number)
            continue
        changes.append(Change(number, old, new))
    if bad:
        raise ChangeListRows(bad)
    return changes


def _alias_of(db: Session, secret: str, value: str) -> str | None:
    return db.scalar(
        select(PseudonymAlias.target).where(
            PseudonymAlias.secret_id == secret, PseudonymAlias.alias == value
        )
    )


def import_changes(svc: TpfServices, path: Path) -> list[str]:
    """Store the aliases of a change list under the current secret; the lines to print."""
    changes = read_changes(path, svc.config.test_numbers)
    added = known = conflicts = 0
    with svc.db.session() as db:
        secret = current_secret_id(db)
        key = svc.secrets.load(secret)
        for change in changes:
            old_own, new_own = pseudonym(key, change.old), pseudonym(key, change.new)
            target = _alias_of(db, secret, old_own) or old_own  # an earlier change of the old
            if new_own == target:
                known += 1
                continue
            existing = _alias_of(db, secret, new_own)
            if existing is not None:
                if existing == target:
                    known += 1
                else:
                    conflicts += 1
                continue
            db.add(PseudonymAlias(secret_id=secret, alias=new_own, target=target))
            # Whoever stood for the new number's pseudonym now stands for the person's.
            db.execute(
                update(PseudonymAlias)
                .where(PseudonymAlias.secret_id == secret, PseudonymAlias.target == new_own)
                .values(target=target)
            )
            db.flush()
            added += 1
        still_current = db.execute(  # settles a race with rotate-secret (row lock)
            update(PseudonymSecret)
            .where(PseudonymSecret.id == secret, PseudonymSecret.state == CURRENT)
            .values(uses=PseudonymSecret.uses)
        )
        if still_current.rowcount != 1:  # type: ignore[attr-defined]
            db.rollback()
            raise SecretUnavailable(
                "Pseudonymhemmeligheten ble byttet mens listen ble lest inn. Les den inn på nytt."
            )
        db.commit()
    return [
        f"Leste {len(changes)} endringer fra {path.name} (hemmelighet {secret}).",
        f"Nye aliaser: {added} (personen beholder pseudonymet fra det gamle nummeret).",
        f"Allerede kjent: {known}.",
        f"I strid med en tidligere endring, ikke brukt: {conflicts}.",
        "Filen inneholder fødselsnumre: slett den nå som den er lest inn.",
    ]
