"""The TPF's tables (SQLAlchemy 2.0 declarative; schema made by its own Alembic migrations).

No column ever holds a fødselsnummer: a submission row has the clear envelope's sender, its
counts and its outcome; the stored files are the encrypted input and the encrypted output.
Pseudonym aliases are pseudonym-to-pseudonym.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from ..dbtypes import UtcDateTime, utcnow
from ..intake import ReceivedColumns
from ..outbox import LeaseColumns

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# Submission.status: the TPF's own step (formats §5)
PROCESSING = "behandles"
DELIVERED = "levert"
REFUSED = "avvist"
# RegisterOutboxItem.kind
MESSAGE = "melding"  # a pseudonymised message (§4)
MAPPING = "pseudonymbytte"  # the mapping after a secret rotation (§6)
# PseudonymSecret.state
CURRENT = "gjeldende"
ROTATING = "roterer"  # being replaced: no message is finished under it
NEW = "ny"  # made by a rotation, current once the mapping is queued
RETIRED = "avløst"


class Base(DeclarativeBase):
    pass


class Submission(ReceivedColumns, LeaseColumns, Base):
    """A file received from the send module: claimed by a processing worker like an outbox
    row (lease, heartbeat, backoff), ``done_at`` once processed or refused."""

    __tablename__ = "submissions"

    key_name: Mapped[str] = mapped_column(String(64))
    kommunenummer: Mapped[str] = mapped_column(String(4))
    bydelsnummer: Mapped[str] = mapped_column(String(2))
    organisasjonsnummer: Mapped[str] = mapped_column(String(9))
    receipt_number: Mapped[str] = mapped_column(String(40), default="")
    status: Mapped[str] = mapped_column(String(20), default=PROCESSING)
    message: Mapped[str] = mapped_column(Text, default="")  # Norwegian reason when refused
    persons: Mapped[int | None] = mapped_column(Integer, nullable=True)
    invalid_numbers: Mapped[int | None] = mapped_column(Integer, nullable=True)
    secret_id: Mapped[str | None] = mapped_column(String(20), nullable=True)
    file_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    processed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # The register's answer as JSON (server/status_report.NextPartyReport); NULL: waiting;
    # "" when delivered where nobody answers (the demo's local folder).
    register_report: Mapped[str | None] = mapped_column(Text, nullable=True)


class RegisterOutboxItem(LeaseColumns, Base):
    """A message owed to the register: a submission's §4 message or a §6 mapping."""

    __tablename__ = "register_outbox"

    kind: Mapped[str] = mapped_column(String(20))
    delivery_id: Mapped[str] = mapped_column(String(32), unique=True)  # the URL's id
    submission_id: Mapped[int | None] = mapped_column(
        ForeignKey("submissions.id"), unique=True, nullable=True
    )
    storage_name: Mapped[str] = mapped_column(String(100))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    sent: Mapped[bool] = mapped_column(default=False)  # PUT tried: ask with GET first
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)

    submission: Mapped[Submission | None] = relationship()


class PseudonymSecret(Base):
    """Which secret is current (the key itself is a 0600 file in the secret folder)."""

    __tablename__ = "pseudonym_secrets"
    __table_args__ = (
        Index("uq_pseudonym_secret_live_state", "state", unique=True,
              postgresql_where=text("state <> 'avløst'"), sqlite_where=text("state <> 'avløst'")),
    )

    id: Mapped[str] = mapped_column(String(20), primary_key=True)  # tpf-h1, tpf-h2, …
    number: Mapped[int] = mapped_column(Integer, unique=True)
    state: Mapped[str] = mapped_column(String(20))
    uses: Mapped[int] = mapped_column(Integer, default=0)  # messages finished under it
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    retired_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)


class PseudonymAlias(Base):
    """A person whose number changed keeps one pseudonym: the new number's pseudonym
    (``alias``) stands for the old one's (``target``), under one secret."""

    __tablename__ = "pseudonym_aliases"

    secret_id: Mapped[str] = mapped_column(ForeignKey("pseudonym_secrets.id"), primary_key=True)
    alias: Mapped[str] = mapped_column(String(32), primary_key=True)
    target: Mapped[str] = mapped_column(String(32), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
