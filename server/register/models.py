"""The register's tables (SQLAlchemy 2.0 declarative; the schema is made by Alembic).

Two kinds of tables:

- **For statisticians** (docs/register.md): ``innsendinger`` (one row per submission received
  from the TPF, loaded or refused), ``personer`` (one row per person record of a loaded
  submission, under its pseudonym) and the person's data in ``vurderinger`` (one row per
  Vurdering, one column per IPLOS variable), ``tjenester`` and ``diagnoser``. Norwegian
  names, as in the IPLOS format, so a query reads like the data it asks about. A person row
  is identified by its submission and løpenummer (the record binding's number), so the loader
  writes rows without asking the database for ids: 300 000 rows in one transaction.
- **For the service**: ``mottak`` (deliveries received from the TPF and their loading),
  ``pseudonymbytter`` (secret-rotation mappings applied), and the staff's accounts, sessions
  and failed logins.

No table holds a fødselsnummer: the register never receives one (docs/trusselmodell.md).
Times are naive UTC in the database and aware UTC in Python (``UtcDateTime``).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ..dbtypes import UtcDateTime
from ..dbtypes import utcnow as utcnow
from ..intake import ReceivedColumns
from ..outbox import LeaseColumns
from .variables import VARIABLE_COLUMNS as VARIABLE_COLUMNS
from .variables import VARIABLES as VARIABLES

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "alembic_version_register"  # its own, should it share a database with another


LOADED = "lastet"
REFUSED = "avvist"
PROCESSING = "behandles"
# Delivery.kind: what the TPF sent (docs/formater.md §4, §6), told apart by the clear root.
MESSAGE = "melding"
MAPPING = "pseudonymbytte"


class Base(DeclarativeBase):
    pass


class Submission(Base):
    """One submission as the TPF delivered it: loaded (with its persons) or refused.

    ``gjeldende`` marks the submission that counts for its kommune, bydel and period; a newer
    one replaces it (``erstattet_av``). At most one is current per kommune, bydel and period:
    a unique index settles two loads at the same moment (loading.py)."""

    __tablename__ = "innsendinger"
    __table_args__ = (
        Index(
            "uq_innsendinger_gjeldende",
            "kommunenummer",
            "bydelsnummer",
            "periode_fra",
            "periode_til",
            unique=True,
            sqlite_where=text("gjeldende"),
            postgresql_where=text("gjeldende"),
        ),
        Index("ix_innsendinger_aar", "aar", "kommunenummer", "bydelsnummer"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    innsending_id: Mapped[str] = mapped_column(String(32), unique=True)  # the send module's id
    status: Mapped[str] = mapped_column(String(10))  # lastet | avvist
    melding: Mapped[str] = mapped_column(Text, default="")
    fil_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    kommunenummer: Mapped[str | None] = mapped_column(String(4), nullable=True)
    bydelsnummer: Mapped[str | None] = mapped_column(String(2), nullable=True)
    organisasjonsnummer: Mapped[str | None] = mapped_column(String(9), nullable=True)
    avsender_navn: Mapped[str] = mapped_column(String(150), default="")
    uttak_dato: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    periode_fra: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    periode_til: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    aar: Mapped[int] = mapped_column(Integer)  # the year of periode_til (received, if unknown)
    kontakt_epost: Mapped[str] = mapped_column(String(254), default="")
    kontakt_navn: Mapped[str] = mapped_column(String(200), default="")
    kontakt_mobil: Mapped[str] = mapped_column(String(8), default="")
    hemmelighet_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    antall_personer: Mapped[int | None] = mapped_column(Integer, nullable=True)
    ugyldige_fodselsnumre: Mapped[int | None] = mapped_column(Integer, nullable=True)
    mottatt: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    behandlet: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    gjeldende: Mapped[bool] = mapped_column(Boolean, default=False)
    erstattet_av: Mapped[int | None] = mapped_column(
        ForeignKey("innsendinger.id"), nullable=True
    )
    erstattet: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)


# The person tables are written in bulk by the loader (bulk.py), hundreds of thousands of rows
# in one transaction: no foreign keys (a per-row check would cost more than the load), one
# primary key each; the loader writes a submission's rows together or not at all. SQLite keeps
# them WITHOUT ROWID: one B-tree per table instead of two.
_BULK = {"sqlite_with_rowid": False}


class Person(Base):
    """One person record of a loaded submission: ``pseudonym`` is NULL when the TPF found the
    fødselsnummer invalid (the record is counted, it cannot be linked)."""

    __tablename__ = "personer"
    __table_args__ = (
        # Follow a person across submissions and years; rewrite a rotated secret's pseudonyms.
        # Not unique within a submission: a file that lists a person twice is loaded as it
        # is (docs/register.md shows the query that finds such persons).
        Index("ix_personer_pseudonym", "pseudonym"),
        _BULK,
    )

    innsending: Mapped[int] = mapped_column(Integer, primary_key=True)  # innsendinger.id
    lopenummer: Mapped[int] = mapped_column(Integer, primary_key=True)
    pseudonym: Mapped[str | None] = mapped_column(String(32), nullable=True)
    hemmelighet_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    husstand: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    dodsdato: Mapped[dt.date | None] = mapped_column(Date, nullable=True)


class Assessment(Base):
    """One Vurdering of a person: its date and the score of each IPLOS variable (1–5, or 9 for
    «ikke relevant»; NULL when the variable was not assessed)."""

    __tablename__ = "vurderinger"
    __table_args__ = (_BULK,)

    innsending: Mapped[int] = mapped_column(Integer, primary_key=True)
    lopenummer: Mapped[int] = mapped_column(Integer, primary_key=True)
    nr: Mapped[int] = mapped_column(SmallInteger, primary_key=True)  # order in the record
    dato: Mapped[dt.date] = mapped_column(Date)
    sosial_deltakelse: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    beslutninger: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    egen_helse: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    husarbeid: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    varer_tjenester: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    personlig_hygiene: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    pakledning: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    spise: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    lage_mat: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    bevege_innendors: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    bevege_utendors: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    toalett: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    atferd: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    hukommelse: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    kommunikasjon: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    syn: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    horsel: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)


class Service(Base):
    """One Tjeneste: the service's code (1–30), from, until (NULL: ongoing), hours per week."""

    __tablename__ = "tjenester"
    __table_args__ = (_BULK,)

    innsending: Mapped[int] = mapped_column(Integer, primary_key=True)
    lopenummer: Mapped[int] = mapped_column(Integer, primary_key=True)
    nr: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    kode: Mapped[int] = mapped_column(SmallInteger)
    fra: Mapped[dt.date] = mapped_column(Date)
    til: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    timer_per_uke: Mapped[Decimal | None] = mapped_column(Numeric(5, 2), nullable=True)


class Diagnosis(Base):
    """One Diagnose: an ICD-10 or ICPC-2 code."""

    __tablename__ = "diagnoser"
    __table_args__ = (_BULK,)

    innsending: Mapped[int] = mapped_column(Integer, primary_key=True)
    lopenummer: Mapped[int] = mapped_column(Integer, primary_key=True)
    nr: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    kode: Mapped[str] = mapped_column(String(10))


# --- the service ---------------------------------------------------------------------------


class Delivery(ReceivedColumns, LeaseColumns, Base):
    """A file received from the TPF (intake.py) and its loading: claimed by a worker with a
    lease (outbox.LeasedQueue), ``done_at`` once loaded, applied or refused. The file itself
    is deleted then: the database holds what it said."""

    __tablename__ = "mottak"

    kind: Mapped[str] = mapped_column(String(20))  # melding | pseudonymbytte
    kommunenummer: Mapped[str | None] = mapped_column(String(4), nullable=True)
    bydelsnummer: Mapped[str | None] = mapped_column(String(2), nullable=True)
    organisasjonsnummer: Mapped[str | None] = mapped_column(String(9), nullable=True)
    status: Mapped[str] = mapped_column(String(10), default=PROCESSING)
    melding: Mapped[str] = mapped_column(Text, default="")  # Norwegian, for the municipality
    personer: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The day it came in: its keys are judged by that day when it is loaded, however long it
    # waited (a delivery taken in on 31 January is not refused for last year's key on 1
    # February because the loaders were behind). None for rows from before migration 0002.
    nokkeldag: Mapped[dt.date | None] = mapped_column(Date, nullable=True)


class MappingPair(Base):
    """A mapping's pairs while it is applied: written and deleted in the same transaction, so
    the table is empty outside it (the register keeps no old-to-new list)."""

    __tablename__ = "pseudonymbytte_par"

    bytte: Mapped[int] = mapped_column(Integer, primary_key=True)  # pseudonymbytter.id
    fra: Mapped[str] = mapped_column(String(32), primary_key=True)
    til: Mapped[str] = mapped_column(String(32))


class PseudonymMapping(Base):
    """A secret-rotation mapping from the TPF, applied once (its id is unique)."""

    __tablename__ = "pseudonymbytter"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bytte_id: Mapped[str] = mapped_column(String(64), unique=True)
    fra_hemmelighet: Mapped[str] = mapped_column(String(64))
    til_hemmelighet: Mapped[str] = mapped_column(String(64))
    antall: Mapped[int] = mapped_column(Integer)
    personer_endret: Mapped[int] = mapped_column(BigInteger)
    utfort: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class StaffUser(Base):
    """A member of the register's staff who may see the delivery overview."""

    __tablename__ = "ansatte"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    brukernavn: Mapped[str] = mapped_column(String(64), unique=True)
    navn: Mapped[str] = mapped_column(String(200))
    passord_hash: Mapped[str] = mapped_column(String(200))  # argon2id, never the password
    aktiv: Mapped[bool] = mapped_column(Boolean, default=True)
    feil_pa_rad: Mapped[int] = mapped_column(Integer, default=0)
    laast_til: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    opprettet: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class StaffSession(Base):
    """A login session: the cookie holds a random id, the table its SHA-256."""

    __tablename__ = "ansatt_okter"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    ansatt_id: Mapped[int] = mapped_column(ForeignKey("ansatte.id"))
    opprettet: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    sist_sett: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class LoginFailure(Base):
    """A login attempt from a client address (throttling per address)."""

    __tablename__ = "innloggingsforsok"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    adresse: Mapped[str] = mapped_column(String(64), index=True)
    tidspunkt: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
