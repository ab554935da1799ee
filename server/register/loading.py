"""Loading one delivery from the TPF into the register: all of it in one transaction, or nothing.

``load_delivery(db, keyring, source, …)`` reads a stored pseudonymised message (message.py) as a
stream, opens every person record with the register's private key and checks the record
binding (``RegisterOpener``: swapped, duplicated, dropped, moved and foreign records), checks
each person's data (person_data.py) and writes the rows in bulk (bulk.py) in one transaction,
then settles which submission is current for its kommune, bydel and period, and commits. Any
fault rolls the transaction back and records the submission as refused, with the fault's
Norwegian message: nothing of it is loaded. Database errors are not faults of the file: they
propagate, nothing is recorded, and the worker tries again later.

A newer submission replaces the older one for the same kommune, bydel and period. "Newer" is
the order the register received them in (``mottatt``, then id): the TPF delivers in the order
it processed them. The database settles it: a unique index admits one current submission per
kommune, bydel and period, so of two loads at the same moment one commits first and the other
meets the index, rolls back to its savepoint and replaces the one that won (or stays replaced,
if the winner is the newer).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import io
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from ipis_core.decrypt import RegisterOpener
from ipis_core.faults import (
    DeliveryCountDiffers,
    DeliverySenderDiffers,
    DeliverySubmissionIdDiffers,
    IplosFault,
    KeyNotYetInUse,
    KeyOutsideOverlap,
    LayerAltered,
    TransportKeyNotAccepted,
    UnknownKeyName,
)

from ..db import Database
from ..keyring import Keyring
from .bulk import BulkWriter, bulk_writer
from .helper import MIN_BYTES, Helper
from .message import ClearPart, DeliveryHeader, Pseudonymisation, read_delivery
from .models import LOADED, REFUSED, Person, Submission, utcnow
from .person_data import PersonReader, PlainRows, plain_rows, read_plain_batch

log = logging.getLogger("ipis.register")
SETTLE_ATTEMPTS = 5
RECORDS_PER_BATCH = 256


@dataclass(frozen=True)
class LoadOutcome:
    """What became of one delivery: the register's answer in the §5 status (never a value
    from the file beyond the counts)."""

    submission_id: str
    status: str  # lastet | avvist
    message: str
    persons: int | None = None
    invalid_fodselsnumre: int | None = None
    replaced: str | None = None  # the submission this one replaced
    superseded_by: str | None = None  # loaded, but a newer one for the period was there first

    @property
    def loaded(self) -> bool:
        return self.status == LOADED


class _CollectorPause:
    """The cyclic garbage collector paused while loads run (the collector is per process, so
    this is too: the last load to finish turns it on again).

    A load makes some 2 million short-lived objects and no reference cycles; with the
    collector on, the batches of parsed records that survive a young collection are promoted
    and set off full collections over the whole heap, over and over: a third of the load's
    time. Off, they are freed by reference counting as soon as their batch is written."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loads = 0
        self._was_enabled = True

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        with self._lock:
            if self._loads == 0:
                self._was_enabled = gc.isenabled()
                gc.disable()
            self._loads += 1
        try:
            yield
        finally:
            with self._lock:
                self._loads -= 1
                if self._loads == 0 and self._was_enabled:
                    gc.enable()


_COLLECTOR = _CollectorPause()


def _transport_key_reason(fault: IplosFault) -> str:
    if isinstance(fault, KeyOutsideOverlap):
        return "nøkkelen er utenfor overgangsperioden."
    if isinstance(fault, KeyNotYetInUse):
        return "nøkkelen gjelder ikke ennå."
    return "registeret har ingen nøkkel med denne id-en."


class AlreadyLoaded(Exception):
    """A file loaded by hand whose submission the register has (it is loaded once)."""

    def __init__(self, submission_id: str) -> None:
        super().__init__(submission_id)
        self.submission_id = submission_id


def accept_transport_key(keyring: Keyring, name: str, day: dt.date) -> rsa.RSAPrivateKey:
    """The private key the TPF wrapped a message for: the register's current key, or the
    previous one during the overlap; any other is refused with the reason."""
    try:
        keyring.accept(name, day)
    except (UnknownKeyName, KeyOutsideOverlap, KeyNotYetInUse) as fault:
        raise TransportKeyNotAccepted(name, _transport_key_reason(fault)) from None
    return keyring.private_key(name)


class _Load:
    """The DeliveryHandler of one load: writes into ``connection``'s open transaction."""

    def __init__(
        self,
        connection: Connection,
        keyring: Keyring,
        today: dt.date,
        submission_id: str | None,
        received_at: dt.datetime,
        helper: Helper | None = None,
    ) -> None:
        self._connection = connection
        self._helper = helper
        self._keyring = keyring
        self._today = today
        self._submission_id = submission_id
        self._received_at = received_at
        self.clear: ClearPart | None = None
        self.header: DeliveryHeader | None = None
        self.row_id: int | None = None
        self._opener: RegisterOpener | None = None
        self._writer: BulkWriter = bulk_writer(connection)
        self._reader = PersonReader(self._writer.tables)
        self._batch: list[tuple[int, str | None, bytes]] = []
        self._secret_id: str | None = None
        self.counts: Pseudonymisation | None = None
        self.records = 0
        self.invalid = 0

    @property
    def submission_id(self) -> str | None:
        return self._submission_id

    # --- keys ---------------------------------------------------------------------------------

    def transport_key(self, clear: ClearPart) -> rsa.RSAPrivateKey:
        self.clear = clear
        return accept_transport_key(self._keyring, clear.transport_key.key_name, self._today)

    # --- DeliveryHandler ------------------------------------------------------------------------

    def begin(self, clear: ClearPart, header: DeliveryHeader) -> None:
        if self._submission_id is None:  # a file loaded by hand: the id inside is the id
            self._submission_id = header.submission_id
            if stored_outcome(self._connection, header.submission_id) is not None:
                raise AlreadyLoaded(header.submission_id)
        if header.submission_id != self._submission_id:
            raise DeliverySubmissionIdDiffers()
        if clear.sender != header.sender:
            raise DeliverySenderDiffers("den ukrypterte delen av leveransen")
        # The municipality's key for the register layer: the keyring's faults speak to it.
        name = header.register_key.key_name
        self._keyring.accept(name, self._today)
        self._opener = RegisterOpener(self._keyring.private_key(name), header.register_key)
        self.header = header
        # The TPF names its secret after the persons (it writes in one pass); rows are written
        # under the secret of the last load, and set right at the end if it has changed.
        self._secret_id = self._connection.execute(
            select(Submission.hemmelighet_id)
            .where(Submission.status == LOADED)
            .order_by(Submission.id.desc())
            .limit(1)
        ).scalar()
        contact = header.contact
        self.row_id = self._connection.execute(
            insert(Submission)
            .values(
                innsending_id=header.submission_id,
                status=LOADED,
                melding="",
                fil_id=header.file_id,
                kommunenummer=header.sender.kommunenummer,
                bydelsnummer=header.sender.bydelsnummer,
                organisasjonsnummer=header.sender.organisasjonsnummer,
                avsender_navn=header.sender_name,
                uttak_dato=header.uttak.dato,
                periode_fra=header.uttak.periode_fra,
                periode_til=header.uttak.periode_til,
                aar=header.uttak.periode_til.year,
                kontakt_epost=contact.email,
                kontakt_navn=contact.name,
                kontakt_mobil=contact.mobile,
                mottatt=self._received_at,
                behandlet=utcnow(),
                gjeldende=False,
            )
            .returning(Submission.id)
        ).scalar_one()

    def person(self, lopenummer: int, pseudonym: str | None, cipher_value: bytes) -> None:
        self._batch.append((lopenummer, pseudonym, cipher_value))
        if len(self._batch) >= RECORDS_PER_BATCH:
            self._open_batch()

    def _open_batch(self) -> None:
        """Authenticate a batch of records (here, always), then read it: in the helper process
        when there is one, the results taken back in order (``_read``)."""
        assert self._opener is not None and self.row_id is not None
        batch, self._batch = self._batch, []
        numbers = [number for number, _, _ in batch]
        try:
            plaintexts = self._opener.decrypt_batch([(n, v) for n, _, v in batch])
        except IplosFault:
            self._drain()  # the batches before it first: the first fault in file order
            raise
        if self._helper is None:
            self._read(batch, numbers, plaintexts, None)
            return
        for done in self._helper.send(batch, self.row_id, numbers, plaintexts):
            self._read(*done)  # type: ignore[arg-type]

    def _drain(self) -> None:
        if self._helper is not None:
            for done in self._helper.drain():
                self._read(*done)  # type: ignore[arg-type]

    def _read(self, batch: list[tuple[int, str | None, bytes]], numbers: list[int],
              plaintexts: list[bytes], rows: PlainRows | None) -> None:
        """Bind and write one batch: read the common way (by the helper, or here, which also
        refuses a bad record), else as trees (``RegisterOpener.open_batch``)."""
        assert self._opener is not None and self.row_id is not None
        opener, row_id, secret_id = self._opener, self.row_id, self._secret_id
        if rows is None:
            plain = read_plain_batch(numbers, plaintexts)
            if plain is not None:
                rows = plain_rows(row_id, numbers, plain)
        if rows is not None:
            bind = opener.bind
            for lopenummer in numbers:
                bind(lopenummer, lopenummer)  # read_plain_batch checked the inner number
            persons = [(lopenummer, pseudonym) for lopenummer, pseudonym, _ in batch]
            self.invalid += sum(1 for _, pseudonym in persons if pseudonym is None)
            self._reader.emit_rows(row_id, persons, secret_id, rows)
        else:
            read = self._reader.read
            pairs = [(number, value) for number, _, value in batch]
            for (lopenummer, pseudonym, _), record in zip(
                batch, opener.open_batch(pairs), strict=True
            ):
                if pseudonym is None:
                    self.invalid += 1
                    read(row_id, lopenummer, None, None, record.element)
                else:
                    read(row_id, lopenummer, pseudonym, secret_id, record.element)
        self.records += len(batch)
        self._writer.write()

    def close(self) -> None:
        """The connection's settings as before the load (committed or rolled back)."""
        self._writer.close()

    def end(self, counts: Pseudonymisation, control: bytes) -> None:
        assert self._opener is not None and self.header is not None and self.row_id is not None
        if self._batch:
            self._open_batch()
        self._drain()
        self.counts = counts
        opener = self._opener
        opener.read_control(control)
        opener.finish()
        # The sender as the encryption module wrote it, against both copies on the way.
        if opener.sender != self.header.sender:
            raise DeliverySenderDiffers("leveransen fra TPF")
        if self.clear is not None and opener.sender != self.clear.sender:
            raise DeliverySenderDiffers("den ukrypterte delen av leveransen")
        if counts.persons != self.records:
            raise DeliveryCountDiffers("personer", counts.persons, self.records)
        if counts.invalid != self.invalid:
            raise DeliveryCountDiffers("ugyldige fødselsnumre", counts.invalid, self.invalid)
        self._writer.flush()
        connection = self._connection
        if counts.secret_id != self._secret_id:
            connection.execute(
                update(Person)
                .where(Person.innsending == self.row_id, Person.pseudonym.is_not(None))
                .values(hemmelighet_id=counts.secret_id)
            )
        connection.execute(
            update(Submission)
            .where(Submission.id == self.row_id)
            .values(hemmelighet_id=counts.secret_id)
        )


def _settle_current(connection: Connection, row_id: int, header: DeliveryHeader,
                    received_at: dt.datetime) -> tuple[str | None, str | None]:
    """Make this submission the current one for its kommune, bydel and period, unless a newer
    one is; returns (the submission it replaced, the submission that supersedes it)."""
    key = (
        Submission.kommunenummer == header.sender.kommunenummer,
        Submission.bydelsnummer == header.sender.bydelsnummer,
        Submission.periode_fra == header.uttak.periode_fra,
        Submission.periode_til == header.uttak.periode_til,
        Submission.gjeldende.is_(True),
    )
    for attempt in range(1, SETTLE_ATTEMPTS + 1):
        savepoint = connection.begin_nested()
        try:
            current = connection.execute(
                select(Submission.id, Submission.innsending_id, Submission.mottatt)
                .where(*key)
                .with_for_update()
            ).first()
            now = utcnow()
            if current is not None and (current.mottatt, current.id) > (received_at, row_id):
                connection.execute(
                    update(Submission)
                    .where(Submission.id == row_id)
                    .values(erstattet_av=current.id, erstattet=now)
                )
                savepoint.commit()
                return None, str(current.innsending_id)
            if current is not None:
                connection.execute(
                    update(Submission)
                    .where(Submission.id == current.id)
                    .values(gjeldende=False, erstattet_av=row_id, erstattet=now)
                )
            connection.execute(
                update(Submission).where(Submission.id == row_id).values(gjeldende=True)
            )
            savepoint.commit()
            return (str(current.innsending_id) if current is not None else None), None
        except IntegrityError:
            # Another load made itself current after our look-up and committed first.
            savepoint.rollback()
            if attempt == SETTLE_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def stored_outcome(connection: Connection, submission_id: str) -> LoadOutcome | None:
    """The outcome of a submission loaded or refused before (each is loaded once)."""
    submission = connection.execute(
        select(
            Submission.status,
            Submission.melding,
            Submission.antall_personer,
            Submission.ugyldige_fodselsnumre,
            Submission.erstattet_av,
        ).where(Submission.innsending_id == submission_id)
    ).first()
    if submission is None:
        return None
    replaced_by = None
    if submission.erstattet_av is not None:
        replaced_by = connection.execute(
            select(Submission.innsending_id).where(Submission.id == submission.erstattet_av)
        ).scalar_one()
    return LoadOutcome(
        submission_id=submission_id,
        status=submission.status,
        message=submission.melding,
        persons=submission.antall_personer,
        invalid_fodselsnumre=submission.ugyldige_fodselsnumre,
        superseded_by=replaced_by,
    )


def _loaded_message(persons: int, invalid: int, replaced: str | None,
                    superseded_by: str | None) -> str:
    text = f"Lastet i registeret: {persons} personposter"
    if invalid:
        text += f", {invalid} av dem uten pseudonym (ugyldig fødselsnummer)"
    text += "."
    if replaced is not None:
        text += " Erstatter en tidligere innsending for samme periode."
    if superseded_by is not None:
        text += (
            " Registeret hadde allerede en nyere innsending for samme periode; den gjelder."
        )
    return text


def load_delivery(
    db: Database,
    keyring: Keyring,
    source: BinaryIO,
    submission_id: str | None,
    received_at: dt.datetime,
    today: dt.date | None = None,
    helper: bool | None = None,
) -> LoadOutcome:
    """Load one delivery (``source``: the pseudonymised message as the TPF sent it) and
    return what became of it; each submission is loaded once (a second time returns the first
    outcome). ``submission_id``: the id it was delivered under, or None for a file loaded by
    hand (``ipis register load``): then the id inside it. ``helper``: read the persons' data
    in a helper process (helper.py); None: when the file is large enough to gain from it."""
    if submission_id is not None:
        with db.engine.connect() as connection:
            known = stored_outcome(connection, submission_id)
        if known is not None:
            return known
    day = today or dt.date.today()
    use_helper = helper if helper is not None else _size(source) >= MIN_BYTES
    with contextlib.ExitStack() as stack:
        reader = Helper() if use_helper else None
        if reader is not None:
            stack.callback(reader.close)
        return _load(db, keyring, source, submission_id, received_at, day, reader)


def _size(source: BinaryIO) -> int:
    try:
        return os.fstat(source.fileno()).st_size
    except (OSError, ValueError, io.UnsupportedOperation):
        return 0


def _load(db: Database, keyring: Keyring, source: BinaryIO, submission_id: str | None,
          received_at: dt.datetime, day: dt.date, reader: Helper | None) -> LoadOutcome:
    with _COLLECTOR.paused(), db.engine.connect() as connection:
        transaction = connection.begin()
        load = _Load(connection, keyring, day, submission_id, received_at, reader)
        try:
            read_delivery(source, load.transport_key, load)
            assert load.header is not None and load.row_id is not None
            replaced, superseded_by = _settle_current(
                connection, load.row_id, load.header, received_at
            )
            message = _loaded_message(load.records, load.invalid, replaced, superseded_by)
            connection.execute(
                update(Submission)
                .where(Submission.id == load.row_id)
                .values(
                    antall_personer=load.records,
                    ugyldige_fodselsnumre=load.invalid,
                    melding=message,
                    behandlet=utcnow(),
                )
            )
            transaction.commit()
        except AlreadyLoaded as loaded:
            transaction.rollback()
            with db.engine.connect() as again:
                found = stored_outcome(again, loaded.submission_id)
            assert found is not None
            return found
        except IplosFault as fault:
            transaction.rollback()
            if load.submission_id is None:  # refused before its id could be read
                return LoadOutcome("", REFUSED, fault.message)
            return _refuse(db, load.submission_id, received_at, load, fault)
        except BaseException:
            transaction.rollback()
            raise
        finally:
            load.close()
    assert load.submission_id is not None
    log.info("Innsending %s lastet: %d personposter", load.submission_id, load.records)
    return LoadOutcome(
        submission_id=load.submission_id,
        status=LOADED,
        message=message,
        persons=load.records,
        invalid_fodselsnumre=load.invalid,
        replaced=replaced,
        superseded_by=superseded_by,
    )


def _refuse(db: Database, submission_id: str, received_at: dt.datetime, load: _Load,
            fault: IplosFault) -> LoadOutcome:
    """Record the refusal (its own transaction; the load's was rolled back)."""
    clear = load.clear
    # The header is authentic unless the layer's tag failed (message.py: the tag decides).
    header = load.header if not isinstance(fault, LayerAltered) else None
    sender = header.sender if header is not None else (clear.sender if clear else None)
    values: dict[str, object] = {
        "innsending_id": submission_id,
        "status": REFUSED,
        "melding": fault.message,
        "kommunenummer": sender.kommunenummer if sender else None,
        "bydelsnummer": sender.bydelsnummer if sender else None,
        "organisasjonsnummer": sender.organisasjonsnummer if sender else None,
        "avsender_navn": (clear.sender_name if clear else "")[:150],
        "aar": header.uttak.periode_til.year if header else received_at.year,
        "mottatt": received_at,
        "behandlet": utcnow(),
        "gjeldende": False,
    }
    if header is not None:
        values.update(
            uttak_dato=header.uttak.dato,
            periode_fra=header.uttak.periode_fra,
            periode_til=header.uttak.periode_til,
            fil_id=header.file_id,
        )
    with db.engine.begin() as connection:
        try:
            with connection.begin_nested():
                connection.execute(insert(Submission).values(**values))
        except IntegrityError:
            pass  # recorded already (a second worker on the same delivery)
    log.info("Innsending %s avvist: %s", submission_id, type(fault).__name__)
    return LoadOutcome(submission_id=submission_id, status=REFUSED, message=fault.message)
