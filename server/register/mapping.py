"""Applying the TPF's pseudonym mapping after a secret rotation (docs/formater.md §6).

When the TPF replaces its secret, every pseudonym it can recompute changes; the mapping
(old pseudonym under ``fraHemmelighetId`` → new under ``tilHemmelighetId``) lets the register
rewrite its history so a person keeps one pseudonym across the rotation. Pseudonyms the mapping
does not name stay as they are, under the old secret id (``personer.hemmelighet_id``).

The message is read as a stream like a submission (layer.py); its pairs go into
``pseudonymbytte_par`` in the transaction that applies them, one ``UPDATE … FROM`` rewrites
every matching person, and the pairs are deleted before the commit: the whole mapping or
nothing, and no old-to-new list kept. Each mapping is applied once (its id is unique).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable
from typing import BinaryIO
from xml.parsers import expat

from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from ipis_core import clear_part
from ipis_core.envelope import ClearPartReader
from ipis_core.envelope_grammar import MAPPING_ENVELOPE
from ipis_core.faults import (
    IplosFault,
    MappingAlgorithmNotAllowed,
    MappingCountDiffers,
    MappingPseudonymRepeated,
    MappingUnreadable,
)

from ..db import Database
from ..keyring import Keyring
from .layer import Wording, read_layer, transport_key
from .loading import AlreadyLoaded, LoadOutcome, accept_transport_key
from .models import LOADED, REFUSED, MappingPair, Person, PseudonymMapping, utcnow

log = logging.getLogger("ipis.register")
LAYER_ROOT = "IPLOSPseudonymbytteInnhold"
LAYER_NAME = "Pseudonymbyttet"
WORDING = Wording(unreadable=MappingUnreadable, algorithm=MappingAlgorithmNotAllowed)
_HEX32 = re.compile(r"[0-9a-f]{32}")
_COUNT = re.compile(r"0|[1-9][0-9]{0,9}")
_NAMESPACES = {
    "xenc": "http://www.w3.org/2001/04/xmlenc#",
    "xenc11": "http://www.w3.org/2009/xmlenc11#",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
}
PAIRS_PER_BATCH = 5000


class MappingReader(ClearPartReader):
    """The §6 message's clear part: the layer and its key, nothing else."""

    def __init__(self, on_cipher_text: Callable[[bytes], None] | None = None) -> None:
        super().__init__(MAPPING_ENVELOPE, None, on_cipher_text)


class _Application:
    """Parses the mapping's plaintext and writes its pairs into the open transaction."""

    def __init__(self, connection: Connection, mapping_id: str | None) -> None:
        self._connection = connection
        self._mapping_id = mapping_id
        self.row_id: int | None = None
        self.from_secret = ""
        self.to_secret = ""
        self.pairs = 0
        self.stated: int | None = None
        self._batch: list[dict[str, object]] = []
        parser = expat.ParserCreate(encoding="UTF-8", namespace_separator=" ")
        parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        if hasattr(parser, "SetReparseDeferralEnabled"):
            parser.SetReparseDeferralEnabled(False)
        parser.StartDoctypeDeclHandler = self._refuse
        parser.ProcessingInstructionHandler = self._refuse
        parser.CommentHandler = self._refuse
        parser.StartNamespaceDeclHandler = self._namespace
        parser.StartElementHandler = self._start
        parser.EndElementHandler = self._end
        parser.CharacterDataHandler = self._text
        self._parser = parser
        self._depth = 0
        self._ended = False

    @property
    def mapping_id(self) -> str | None:
        return self._mapping_id

    # --- LayerParser ----------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        try:
            self._parser.Parse(data, False)
        except expat.ExpatError as error:
            raise MappingUnreadable(f"laget er ikke gyldig XML (expat-feil {error.code})") from None

    def close(self) -> None:
        try:
            self._parser.Parse(b"", True)
        except expat.ExpatError as error:
            raise MappingUnreadable(f"laget er ikke gyldig XML (expat-feil {error.code})") from None
        if not self._ended or self.stated is None:
            raise MappingUnreadable("laget mangler Opptelling")
        self._write()
        if self.stated != self.pairs:
            raise MappingCountDiffers(self.stated, self.pairs)

    # --- handlers ---------------------------------------------------------------------------

    def _refuse(self, *_: object) -> None:
        raise MappingUnreadable("laget har markering som ikke er et felt")

    def _namespace(self, prefix: str | None, uri: str) -> None:
        if self._depth or prefix is None or _NAMESPACES.get(prefix) != uri:
            raise MappingUnreadable("ukjent eller feilplassert navneromsdeklarasjon")

    def _text(self, data: str) -> None:
        if data.strip(" \t\r\n"):
            raise MappingUnreadable("tekst mellom feltene")

    def _start(self, name: str, attributes: dict[str, str]) -> None:
        depth = self._depth
        self._depth += 1
        if depth == 0:
            self._root(name, attributes)
        elif depth == 1 and name == "Bytte" and self.stated is None:
            before, after = attributes.get("fra", ""), attributes.get("til", "")
            if len(attributes) != 2 or not _HEX32.fullmatch(before) or not _HEX32.fullmatch(after):
                raise MappingUnreadable("Bytte skal ha fra og til (32 heksadesimale)")
            self._batch.append({"bytte": self.row_id, "fra": before, "til": after})
            self.pairs += 1
            if len(self._batch) >= PAIRS_PER_BATCH:
                self._write()
        elif depth == 1 and name == "Opptelling" and self.stated is None:
            count = attributes.get("antallBytter", "")
            if len(attributes) != 1 or not _COUNT.fullmatch(count):
                raise MappingUnreadable("Opptelling skal ha antallBytter")
            self.stated = int(count)
        else:
            raise MappingUnreadable(f"{name[:40]} står på feil sted")

    def _end(self, _name: str) -> None:
        self._depth -= 1
        if self._depth == 0:
            self._ended = True

    def _root(self, name: str, attributes: dict[str, str]) -> None:
        if name != LAYER_ROOT:
            raise MappingUnreadable("laget har feil rotelement")
        if set(attributes) != {"byttId", "fraHemmelighetId", "tilHemmelighetId"}:
            raise MappingUnreadable(
                f"{LAYER_ROOT} skal ha byttId, fraHemmelighetId og tilHemmelighetId"
            )
        if not _HEX32.fullmatch(attributes["byttId"]):
            raise MappingUnreadable("byttId er ikke 32 heksadesimale")
        if self._mapping_id is None:  # a file applied by hand: the id inside is the id
            self._mapping_id = attributes["byttId"]
            if _stored(self._connection, self._mapping_id) is not None:
                raise AlreadyLoaded(self._mapping_id)
        if attributes["byttId"] != self._mapping_id:
            raise MappingUnreadable("byttId er ikke id-en byttet ble levert under")
        for key in ("fraHemmelighetId", "tilHemmelighetId"):
            if not clear_part.KEY_NAME.accepts(attributes[key]):
                raise MappingUnreadable(f"{key} {clear_part.KEY_NAME.expected}")
        self.from_secret = attributes["fraHemmelighetId"]
        self.to_secret = attributes["tilHemmelighetId"]
        if self.from_secret == self.to_secret:
            raise MappingUnreadable("fraHemmelighetId og tilHemmelighetId er like")
        self.row_id = self._connection.execute(
            insert(PseudonymMapping)
            .values(
                bytte_id=self._mapping_id,
                fra_hemmelighet=self.from_secret,
                til_hemmelighet=self.to_secret,
                antall=0,
                personer_endret=0,
                utfort=utcnow(),
            )
            .returning(PseudonymMapping.id)
        ).scalar_one()

    def _write(self) -> None:
        if not self._batch:
            return
        try:
            with self._connection.begin_nested():
                self._connection.execute(insert(MappingPair), self._batch)
        except IntegrityError:
            raise MappingPseudonymRepeated() from None
        self._batch = []


def _stored(connection: Connection, mapping_id: str) -> LoadOutcome | None:
    row = connection.execute(
        select(PseudonymMapping.personer_endret, PseudonymMapping.antall).where(
            PseudonymMapping.bytte_id == mapping_id
        )
    ).first()
    if row is None:
        return None
    return LoadOutcome(mapping_id, LOADED, _applied_message(row.personer_endret, row.antall),
                       persons=row.personer_endret)


def _applied_message(persons: int, pairs: int) -> str:
    return (
        f"Pseudonymbyttet er utført: {persons} personposter fikk nytt pseudonym "
        f"({pairs} bytter)."
    )


def apply_mapping(
    db: Database,
    keyring: Keyring,
    source: BinaryIO,
    mapping_id: str | None,
    today: dt.date | None = None,
) -> LoadOutcome:
    """Apply one §6 message once (``mapping_id``: the id it was delivered under, or None for
    a file applied by hand: then the id inside it)."""
    if mapping_id is not None:
        with db.engine.connect() as connection:
            known = _stored(connection, mapping_id)
        if known is not None:
            return known
    day = today or dt.date.today()
    with db.engine.connect() as connection:
        transaction = connection.begin()
        application = _Application(connection, mapping_id)

        def key_for(reader: ClearPartReader) -> rsa.RSAPrivateKey:
            return accept_transport_key(keyring, transport_key(reader).key_name, day)

        try:
            read_layer(source, MappingReader, key_for, lambda _r: application, LAYER_NAME,
                       WORDING)
            assert application.row_id is not None
            changed = connection.execute(
                update(Person)
                .where(
                    Person.pseudonym == MappingPair.fra,
                    Person.hemmelighet_id == application.from_secret,
                    MappingPair.bytte == application.row_id,
                )
                .values(pseudonym=MappingPair.til, hemmelighet_id=application.to_secret)
            ).rowcount
            connection.execute(delete(MappingPair).where(MappingPair.bytte == application.row_id))
            connection.execute(
                update(PseudonymMapping)
                .where(PseudonymMapping.id == application.row_id)
                .values(antall=application.pairs, personer_endret=changed)
            )
            transaction.commit()
        except AlreadyLoaded as applied:
            transaction.rollback()
            with db.engine.connect() as again:
                found = _stored(again, applied.submission_id)
            assert found is not None
            return found
        except IplosFault as fault:
            transaction.rollback()
            log.info("Pseudonymbytte %s avvist: %s", mapping_id, type(fault).__name__)
            return LoadOutcome(application.mapping_id or "", REFUSED, fault.message)
        except BaseException:
            transaction.rollback()
            raise
    log.info("Pseudonymbytte %s utført: %d personposter", application.mapping_id, changed)
    return LoadOutcome(application.mapping_id or "", LOADED,
                       _applied_message(changed, application.pairs), persons=changed)


def pairs_left(db: Database) -> int:
    """Pairs in the table outside a transaction (always 0; the tests check it)."""
    with db.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(MappingPair)).scalar_one())
