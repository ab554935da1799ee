"""Database tables of the send module (SQLAlchemy 2.0 declarative; schema made by Alembic).

Times are stored as naive UTC and read back as aware UTC, so SQLite and PostgreSQL behave
the same.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Shared with the TPF and the register; re-exported for the send module's code and tests.
from ..dbtypes import UtcDateTime as UtcDateTime
from ..dbtypes import utcnow as utcnow
from ..outbox import LeaseColumns

# The send module's Alembic migrations (its own database; the TPF and the register have theirs).
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


class Base(DeclarativeBase):
    pass


class Account(Base):
    """One sender: a municipality (or city district) and its organisation, with a PIN hash."""

    __tablename__ = "accounts"
    __table_args__ = (
        UniqueConstraint(
            "kommunenummer", "bydelsnummer", "organisasjonsnummer", name="uq_account_identity"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kommunenummer: Mapped[str] = mapped_column(String(4))
    bydelsnummer: Mapped[str] = mapped_column(String(2))
    organisasjonsnummer: Mapped[str] = mapped_column(String(9))
    pin_hash: Mapped[str] = mapped_column(String(200))  # argon2id, never the PIN
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)

    def label(self) -> str:
        return (
            f"kommunenummer {self.kommunenummer}, bydelsnummer {self.bydelsnummer}, "
            f"organisasjonsnummer {self.organisasjonsnummer}"
        )


class AuditEntry(Base):
    """Append-only record of every change to an account (and of lockouts)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), nullable=True)
    action: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(100))
    detail: Mapped[str] = mapped_column(Text, default="")


class LoginFailure(Base):
    """A failed login from a client address (throttling per address)."""

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    address: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)


class WebSession(Base):
    """A server-side login session: the cookie holds a random id, the table its SHA-256."""

    __tablename__ = "web_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_seen: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)

    account: Mapped[Account] = relationship()


class Submission(Base):
    """An encrypted file received and stored; the receipt is made from this row."""

    __tablename__ = "submissions"
    __table_args__ = (
        # One forwarded first copy per content and account, settled by the database: two
        # uploads of the same file at the same moment cannot both become it (issue 7, point 6).
        # Later copies (the user confirmed «Send likevel», or not yet) leave it NULL, and
        # NULLs never collide.
        Index("uq_submission_first_copy", "account_id", "first_sha256", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)  # TPF idempotency key
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    received_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    file_name: Mapped[str] = mapped_column(String(255))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    storage_name: Mapped[str] = mapped_column(String(100))
    kommunenummer: Mapped[str] = mapped_column(String(4))
    bydelsnummer: Mapped[str] = mapped_column(String(2))
    organisasjonsnummer: Mapped[str] = mapped_column(String(9))
    tpf_key_name: Mapped[str] = mapped_column(String(100), default="")
    status: Mapped[str] = mapped_column(String(30))
    status_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    duplicate_of: Mapped[int | None] = mapped_column(Integer, nullable=True)
    first_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The TPF's last JSON status (docs/formater.md §5), checked before it is kept: processed,
    # persons, invalid numbers counted, the register's answer. Never a number.
    tpf_report: Mapped[str | None] = mapped_column(Text, nullable=True)

    account: Mapped[Account] = relationship()

    @property
    def receipt_number(self) -> str:
        return f"IPIS-{self.received_at:%Y%m%d}-{self.id:06d}"


class OutboxItem(LeaseColumns, Base):
    """A delivery still owed to the TPF (transactional outbox; server/outbox.py drains it)."""

    __tablename__ = "outbox"

    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"), unique=True)

    submission: Mapped[Submission] = relationship()
