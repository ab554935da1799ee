"""``ipis tpf rotate-secret``: a new pseudonym secret, and the register's old-to-new mapping.

The TPF stores no fødselsnummer, so it cannot turn an old pseudonym into a new one by itself.
It can recompute both from the encrypted inputs it retains, which it can open with its
keyring (docs/trusselmodell.md weighs what keeping them costs): every valid number in every
submission it has passed on gives its pseudonym under the old secret (through the old
aliases: the pseudonym the register knows the person by) and under the new one. The numbers
live in memory, one file at a time, and are never written anywhere.

Steps, each safe to run again after a crash (the states are in the database):
1. Refused while the register still waits for messages under the old secret (the mapping
   must reach the register after every message it rewrites).
2. The new secret ``tpf-h<n+1>`` is made (state ``ny``) and the old one set ``roterer``: from
   here no worker finishes a message, and processing waits (server/tpf/worker.py).
3. The mapping is computed from the retained inputs and written as a §6 message encrypted to
   the register's current key, then, in one transaction: queued to the register, the aliases
   carried over to the new secret, the new secret ``gjeldende``, the old ``avløst``.
4. The old secret's file is overwritten and removed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass, field

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from ipis_core.decrypt import TagFirst, TpfLayerDecryption, TpfLayerParser, TpfPerson
from ipis_core.envelope import CHUNK_BYTES
from ipis_core.faults import IplosFault
from ipis_core.identifiers import fnr_valid
from ipis_core.pseudonymised import (
    MAPPING_CONTENT_ROOT,
    MAPPING_LAYER_ID,
    MAPPING_ROOT,
    RegisterLayerWriter,
)
from ipis_core.xmlenc import NAMESPACE_DECLARATIONS

from ..dbtypes import utcnow
from .models import (
    CURRENT,
    DELIVERED,
    MAPPING,
    MESSAGE,
    NEW,
    RETIRED,
    ROTATING,
    PseudonymAlias,
    PseudonymSecret,
    RegisterOutboxItem,
    Submission,
)
from .pseudonyms import secret_id
from .secret_state import load_aliases
from .services import TpfServices

log = logging.getLogger("ipis.tpf")


class RotationRefused(IplosFault):
    field = "hemmelighet"


@dataclass
class _Person:
    """The pseudonyms one person has under the new secret: ``own`` is that of the number
    whose old pseudonym the register knows the person by."""

    own: str | None = None
    others: set[str] = field(default_factory=set)

    def chosen(self) -> str:
        return self.own or min(self.others)


@dataclass
class Mapping:
    people: dict[str, _Person] = field(default_factory=dict)  # old pseudonym -> new
    files_read: int = 0
    files_skipped: int = 0

    def add(self, old_key: bytes, new_key: bytes, aliases: dict[str, str], number: str) -> None:
        encoded = number.encode("ascii")
        old_own = hmac.digest(old_key, encoded, "sha256")[:16].hex()
        known_as = aliases.get(old_own, old_own)
        new_own = hmac.digest(new_key, encoded, "sha256")[:16].hex()
        person = self.people.setdefault(known_as, _Person())
        if old_own == known_as:
            person.own = new_own
        else:
            person.others.add(new_own)

    def pairs(self) -> list[tuple[str, str]]:
        return sorted((old, person.chosen()) for old, person in self.people.items())

    def new_aliases(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for person in self.people.values():
            chosen = person.chosen()
            for other in person.others:
                if other != chosen:
                    found[other] = chosen
        return found


def _secrets_of_rotation(svc: TpfServices) -> tuple[str, str]:
    """(old, new): a rotation begun before, or a new one begun now."""
    with svc.db.session() as db:
        waiting = db.scalar(
            select(func.count())
            .select_from(RegisterOutboxItem)
            .where(RegisterOutboxItem.kind == MESSAGE, RegisterOutboxItem.done_at.is_(None))
        )
        rotating = db.scalar(select(PseudonymSecret).where(PseudonymSecret.state == ROTATING))
        new = db.scalar(select(PseudonymSecret).where(PseudonymSecret.state == NEW))
        if rotating is not None and new is not None:
            return rotating.id, new.id
        if waiting:
            raise RotationRefused(
                f"Registeret har ikke fått {waiting} meldinger ennå. Vent til utboksen til "
                "registeret er tom (ipis tpf worker), og prøv igjen."
            )
        current = db.scalar(select(PseudonymSecret).where(PseudonymSecret.state == CURRENT))
        if current is None:
            raise RotationRefused("TPF har ingen gjeldende pseudonymhemmelighet å bytte ut.")
        number = (db.scalar(select(func.max(PseudonymSecret.number))) or 0) + 1
        db.add(PseudonymSecret(id=secret_id(number), number=number, state=NEW))
        begun = db.execute(
            update(PseudonymSecret)
            .where(PseudonymSecret.id == current.id, PseudonymSecret.state == CURRENT)
            .values(state=ROTATING)
        )
        if begun.rowcount != 1:  # type: ignore[attr-defined]
            raise RotationRefused("Et annet bytte av hemmeligheten pågår.")
        db.commit()  # the unique live state refuses a second rotation begun at the same time
        return current.id, secret_id(number)


def _read_inputs(svc: TpfServices, mapping: Mapping, old_key: bytes, new_key: bytes,
                 aliases: dict[str, str]) -> None:
    allow_synthetic = svc.config.test_numbers

    def on_person(person: TpfPerson) -> None:
        if fnr_valid(person.fodselsnummer, allow_synthetic):
            mapping.add(old_key, new_key, aliases, person.fodselsnummer)

    with svc.db.session() as db:
        stored = db.execute(
            select(Submission.storage_name, Submission.key_name)
            .where(Submission.status == DELIVERED)
            .order_by(Submission.id)
        ).all()
    for storage_name, key_name in stored:
        parser = TpfLayerParser(on_person)
        try:
            plaintext = TagFirst(parser)
            decryption = TpfLayerDecryption(svc.keyring.private_key(key_name), plaintext)
            with svc.inputs.path_of(storage_name).open("rb") as source:
                while chunk := source.read(CHUNK_BYTES):
                    decryption.feed(chunk)
            decryption.close()
            plaintext.raise_held()
            parser.close()
        except (IplosFault, OSError) as problem:
            mapping.files_skipped += 1
            log.warning("Lagret innsending kunne ikke åpnes for omkodingen: %s",
                        type(problem).__name__)
            continue
        mapping.files_read += 1


def _write_mapping(svc: TpfServices, old: str, new: str, mapping: Mapping,
                   delivery_id: str) -> tuple[str, int, str]:
    register_key = svc.keyring.current(svc.today()).key_file.iplos
    target = svc.outputs.open_incoming()
    digest = hashlib.sha256()

    class Sink:
        def write(self, data: bytes) -> None:
            digest.update(data)
            target.write(data)

    pairs = mapping.pairs()
    try:
        writer = RegisterLayerWriter(Sink(), MAPPING_ROOT, MAPPING_LAYER_ID, "", register_key)
        writer.write(
            (
                f'<{MAPPING_CONTENT_ROOT} {NAMESPACE_DECLARATIONS} byttId="{delivery_id}" '
                f'fraHemmelighetId="{old}" tilHemmelighetId="{new}">'
            ).encode()
        )
        for before, after in pairs:
            writer.write(b'<Bytte fra="%s" til="%s"/>' % (before.encode(), after.encode()))
        writer.write(
            f'<Opptelling antallBytter="{len(pairs)}"/></{MAPPING_CONTENT_ROOT}>'.encode()
        )
        writer.finish()
        name = f"{delivery_id}-bytte.xml"
        target.commit(name)
    except BaseException:
        target.discard()
        raise
    return name, target.size, digest.hexdigest()


def _finish(db: Session, old: str, new: str, mapping: Mapping, delivery_id: str,
            output: tuple[str, int, str]) -> None:
    now = utcnow()
    db.execute(delete(PseudonymAlias).where(PseudonymAlias.secret_id == old))
    db.add_all(
        PseudonymAlias(secret_id=new, alias=alias, target=target)
        for alias, target in mapping.new_aliases().items()
    )
    name, size, sha256 = output
    db.add(
        RegisterOutboxItem(
            kind=MAPPING, delivery_id=delivery_id, submission_id=None, storage_name=name,
            size_bytes=size, sha256=sha256, sent=False, attempts=0, last_error="",
            next_attempt_at=now,
        )
    )
    db.execute(
        update(PseudonymSecret)
        .where(PseudonymSecret.id == old)
        .values(state=RETIRED, retired_at=now)
    )
    db.execute(update(PseudonymSecret).where(PseudonymSecret.id == new).values(state=CURRENT))
    db.commit()


def rotate_secret(svc: TpfServices) -> list[str]:
    """Rotate; the lines to print (counts only)."""
    with svc.db.session() as db:  # leftovers of an earlier rotation that stopped at step 4
        retired = db.scalars(select(PseudonymSecret.id).where(PseudonymSecret.state == RETIRED))
        for identifier in list(retired):
            svc.secrets.destroy(identifier)
    old, new = _secrets_of_rotation(svc)
    svc.secrets.create(new)
    old_key, new_key = svc.secrets.load(old), svc.secrets.load(new)
    with svc.db.session() as db:
        old_aliases = load_aliases(db, old)
    mapping = Mapping()
    _read_inputs(svc, mapping, old_key, new_key, old_aliases)
    delivery_id = secrets.token_hex(16)
    output = _write_mapping(svc, old, new, mapping, delivery_id)
    try:
        with svc.db.session() as db:
            _finish(db, old, new, mapping, delivery_id, output)
    except BaseException:
        svc.outputs.remove(output[0])
        raise
    svc.secrets.destroy(old)
    carried = len(mapping.new_aliases())
    lost = max(0, len(old_aliases) - carried)
    log.info("Pseudonymhemmeligheten %s er byttet med %s (%d pseudonymer)", old, new,
             len(mapping.people))
    return [
        f"Ny pseudonymhemmelighet: {new} (erstatter {old}, som er slettet).",
        f"Lagrede innsendinger lest: {mapping.files_read}"
        + (f" ({mapping.files_skipped} kunne ikke åpnes)" if mapping.files_skipped else "")
        + ".",
        f"Omkoding av {len(mapping.people)} pseudonymer lagt i utboksen til registeret "
        f"(bytte-id {delivery_id}).",
        f"Aliaser videreført: {carried}"
        + (f"; {lost} kunne ikke regnes om: les endringslistene inn på nytt" if lost else "")
        + ".",
        f"Fullført {dt.datetime.now().astimezone():%Y-%m-%d %H:%M}.",
    ]
