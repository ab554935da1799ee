"""The database handle of one app: engine and session factory, never a module global.

Shared by the send module, the TPF and the register: each has its own database and its own
Alembic migrations folder, handed to ``upgrade_schema``.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

DEFAULT_BUSY_SECONDS = 10.0


@dataclass(frozen=True)
class Database:
    engine: Engine
    sessions: sessionmaker[Session]

    def session(self) -> Session:
        return self.sessions()

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(busy_ms: int, dbapi_connection: Any, _record: Any) -> None:
    """WAL and a busy timeout: the web threads and the worker thread share one file."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={busy_ms:d}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=FULL")  # a committed receipt survives a power cut
    cursor.close()


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///`` URL (None for other databases and in-memory SQLite)."""
    if not url.startswith("sqlite:///") or url == "sqlite:///:memory:":
        return None
    return Path(url.removeprefix("sqlite:///"))


def make_private(path: Path) -> None:
    """Create ``path`` as an empty file only its owner can read (0600), or tighten it.

    SQLite gives its -wal and -shm files the mode of the database file, so this decides all
    three (issue 7, point 12: ``ipis.db`` was created 0644).
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(descriptor)
    for candidate in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(FileNotFoundError):
            if candidate.stat().st_mode & 0o077:
                candidate.chmod(0o600)


def open_database(url: str, busy_seconds: float = DEFAULT_BUSY_SECONDS) -> Database:
    path = sqlite_path(url)
    if path is not None:
        make_private(path)
    engine = create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        pragmas = functools.partial(_sqlite_pragmas, int(busy_seconds * 1000))
        event.listen(engine, "connect", pragmas)
    return Database(engine, sessionmaker(engine, expire_on_commit=False))


def _lock_key(migrations_dir: Path) -> int:
    """A stable 64-bit advisory lock key per migrations folder (send module, TPF, register)."""
    digest = hashlib.sha256(b"ipis-migrate:" + migrations_dir.parent.name.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextlib.contextmanager
def _migration_lock(database: Database, migrations_dir: Path) -> Iterator[Connection]:
    """One migration at a time, across processes (issue 7, point 10: gunicorn and
    ``ipis worker`` started together on an empty PostgreSQL crashed on ``alembic_version``).

    PostgreSQL: a transaction-scoped advisory lock, taken in the migration's own transaction
    (DDL is transactional there), so the next process waits and then finds the schema at head.
    SQLite: an exclusive ``flock`` on a file beside the database.
    """
    url = database.engine.url.render_as_string(hide_password=False)
    path = sqlite_path(url)
    if path is not None:
        lock_path = path.with_name(path.name + ".migrate-lock")
        descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            with database.engine.begin() as connection:
                yield connection
        finally:
            os.close(descriptor)  # also releases the lock
        return
    with database.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key(migrations_dir)}
            )
        yield connection


def upgrade_schema(database: Database, migrations_dir: Path) -> None:
    """``alembic upgrade head`` on this database, once at a time (startup, ``ipis migrate``)."""
    config = AlembicConfig()
    config.set_main_option("script_location", str(migrations_dir))
    with _migration_lock(database, migrations_dir) as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def schema_revision(database: Database, version_table: str = "alembic_version") -> str | None:
    """The Alembic revision the database is at (what ``ipis … migrate`` reports)."""
    from sqlalchemy import text

    with database.engine.connect() as connection:
        revision = connection.execute(
            text(f"SELECT version_num FROM {version_table}")  # noqa: S608 - a constant
        ).scalar()
    return None if revision is None else str(revision)
