"""Writing a submission's person rows in bulk, inside the loader's one transaction.

A 50 MB submission is about 110 000 persons and 300 000 more rows of their data. Through the
ORM, or even SQLAlchemy Core's executemany with a dict per row, that costs several times the
whole rest of the load, so rows go to the driver as tuples, on the loader's own connection (so
in its transaction): ``executemany`` on SQLite, ``COPY … FROM STDIN`` on PostgreSQL (psycopg's
COPY sends rows in its binary-free text format without a round trip per row).
"""

from __future__ import annotations

import contextlib
import sqlite3
from typing import Any, Protocol

from sqlalchemy import Connection

from .models import VARIABLE_COLUMNS

# Each bulk table and its columns, in the order of the rows person_data.py makes.
COLUMNS: dict[str, tuple[str, ...]] = {
    "personer": (
        "innsending", "lopenummer", "pseudonym", "hemmelighet_id", "husstand", "dodsdato",
    ),
    "vurderinger": ("innsending", "lopenummer", "nr", "dato", *VARIABLE_COLUMNS),
    "tjenester": (
        "innsending", "lopenummer", "nr", "kode", "fra", "til", "timer_per_uke",
    ),
    "diagnoser": ("innsending", "lopenummer", "nr", "kode"),
}  # fmt: skip
BATCH_ROWS = 5000
# SQLite's page cache for the load's connection, in KiB (its default is 2 MB). The pseudonym
# index takes rows in random order; with 2 MB its pages for a 50 MB submission (~7 MB) were
# spilled and read again, a tenth of the time spent writing. Bounded, so memory stays flat.
SQLITE_CACHE_KIB = 8192


class BulkWriter(Protocol):
    """Rows are appended to ``tables[name]``; ``write`` sends full buffers, ``flush`` all."""

    tables: dict[str, list[tuple[object, ...]]]

    def write(self) -> None: ...

    def flush(self) -> None:
        """Write every buffered row (before the transaction's last statements)."""

    def close(self) -> None:
        """The connection as it was before the load (it goes back to the pool)."""


class _Buffered:
    def __init__(self, connection: Connection) -> None:
        self._driver: Any = connection.connection.driver_connection
        self.tables: dict[str, list[tuple[object, ...]]] = {table: [] for table in COLUMNS}

    def write(self) -> None:
        for table, rows in self.tables.items():
            if len(rows) >= BATCH_ROWS:
                self._write(table, rows)
                rows.clear()

    def flush(self) -> None:
        for table, rows in self.tables.items():
            if rows:
                self._write(table, rows)
                rows.clear()

    def _write(self, table: str, rows: list[tuple[object, ...]]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class SqliteWriter(_Buffered):
    """``executemany`` on the sqlite3 connection under the SQLAlchemy one (same transaction)."""

    def __init__(self, connection: Connection) -> None:
        super().__init__(connection)
        self._cache_size = self._driver.execute("PRAGMA cache_size").fetchone()[0]
        self._driver.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB:d}")

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):  # a broken connection leaves the pool anyway
            self._driver.execute(f"PRAGMA cache_size={int(self._cache_size):d}")

    def _write(self, table: str, rows: list[tuple[object, ...]]) -> None:
        columns = COLUMNS[table]
        marks = ", ".join("?" for _ in columns)
        cursor = self._driver.cursor()
        try:
            cursor.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",  # noqa: S608 - fixed names
                rows,
            )
        finally:
            cursor.close()


class PostgresWriter(_Buffered):
    """``COPY table (columns) FROM STDIN`` through psycopg, in the loader's transaction."""

    def _write(self, table: str, rows: list[tuple[object, ...]]) -> None:
        columns = ", ".join(COLUMNS[table])
        with self._driver.cursor() as cursor, cursor.copy(
            f"COPY {table} ({columns}) FROM STDIN"
        ) as copy:
            for row in rows:
                copy.write_row(row)


def bulk_writer(connection: Connection) -> BulkWriter:
    name = connection.dialect.name
    if name == "sqlite":
        return SqliteWriter(connection)
    if name == "postgresql":
        return PostgresWriter(connection)
    raise ValueError(f"unsupported database: {name}")
