"""``ipis register export``: the register's data as one row per person and submission.

Columns (docs/register.md): the submission (id, sender, period, whether it is current), the
person (løpenummer, ``pseudonym``, its secret's id, husstand, dødsdato), the latest Vurdering
in one column per IPLOS variable, and every Vurdering, Tjeneste and Diagnose in compact text
columns, so no part of the person's data is left out. Written as CSV (UTF-8, comma-separated,
a header row) or, with the optional ``ipis[parquet]`` extra (pyarrow), as Parquet.

Rows are read in key order from four cursors and merged (memory flat in the register's size)
and written to a temporary file renamed into place only when complete. By default only the
current submissions (``gjeldende``); ``--med-erstattede`` adds the replaced ones.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Select, select

from ipis_core.atomic import AtomicOutput

from ..db import Database
from .models import (
    LOADED,
    VARIABLE_COLUMNS,
    VARIABLES,
    Assessment,
    Diagnosis,
    Person,
    Service,
    Submission,
)

SUBMISSION_COLUMNS = (
    "innsending_id", "kommunenummer", "bydelsnummer", "organisasjonsnummer", "periode_fra",
    "periode_til", "gjeldende",
)  # fmt: skip
PERSON_COLUMNS = ("lopenummer", "pseudonym", "hemmelighet_id", "husstand", "dodsdato")
ASSESSMENT_COLUMNS = ("vurdering_dato", *VARIABLE_COLUMNS)
LIST_COLUMNS = ("vurderinger", "tjenester", "diagnoser")
COLUMNS = (*SUBMISSION_COLUMNS, *PERSON_COLUMNS, *ASSESSMENT_COLUMNS, *LIST_COLUMNS)
STREAM_ROWS = 5000


class ParquetUnavailable(Exception):
    """The ``ipis[parquet]`` extra is not installed."""

    def __init__(self) -> None:
        super().__init__(
            "Parquet krever tillegget ipis[parquet] (pyarrow): pip install 'ipis[parquet]'. "
            "Eller skriv CSV (filnavn som slutter på .csv)."
        )


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "ja" if value else "nei"
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, (Decimal, float)):
        return format(Decimal(str(value)).normalize(), "f")
    return str(value)


def _stream(connection: Connection, query: Select[Any]) -> Iterator[Any]:
    result = connection.execution_options(stream_results=True, yield_per=STREAM_ROWS).execute(
        query
    )
    yield from result


def _children(rows: Iterator[Any]) -> Iterator[tuple[tuple[int, int], list[Any]]]:
    """Child rows grouped by (innsending, lopenummer), in key order."""
    key: tuple[int, int] | None = None
    group: list[Any] = []
    for row in rows:
        row_key = (row.innsending, row.lopenummer)
        if row_key != key:
            if key is not None:
                yield key, group
            key, group = row_key, []
        group.append(row)
    if key is not None:
        yield key, group


class _Merge:
    """The next group of a child table for each person, read in the same key order."""

    def __init__(self, rows: Iterator[Any]) -> None:
        self._groups = _children(rows)
        self._next = next(self._groups, None)

    def take(self, key: tuple[int, int]) -> list[Any]:
        while self._next is not None and self._next[0] < key:
            self._next = next(self._groups, None)  # rows of a person not exported
        if self._next is not None and self._next[0] == key:
            found = self._next[1]
            self._next = next(self._groups, None)
            return found
        return []


def _assessments_text(rows: list[Any]) -> str:
    parts = []
    for row in rows:
        scores = " ".join(
            f"{code}={getattr(row, column)}"
            for code, column in zip(VARIABLES, VARIABLE_COLUMNS, strict=True)
            if getattr(row, column) is not None
        )
        parts.append(f"{row.dato.isoformat()} {scores}")
    return "; ".join(parts)


def _services_text(rows: list[Any]) -> str:
    return "; ".join(
        f"{row.kode}:{_text(row.fra)}:{_text(row.til)}:{_text(row.timer_per_uke)}" for row in rows
    )


def rows(db: Database, include_replaced: bool = False) -> Iterator[dict[str, str]]:
    """Every exported row, as text, in (submission, løpenummer) order."""
    loaded = Submission.status == LOADED
    chosen = loaded if include_replaced else (loaded & Submission.gjeldende.is_(True))
    ids = select(Submission.id).where(chosen)
    order = (Person.innsending, Person.lopenummer)
    with db.engine.connect() as connection, connection.begin():
        persons = _stream(
            connection,
            select(
                Person.innsending,
                *[getattr(Person, c) for c in PERSON_COLUMNS],
                *[getattr(Submission, c) for c in SUBMISSION_COLUMNS],
            )
            .join(Submission, Submission.id == Person.innsending)
            .where(chosen)
            .order_by(*order),
        )
        merges = {
            name: _Merge(
                _stream(
                    connection,
                    select(model)
                    .where(model.innsending.in_(ids))
                    .order_by(model.innsending, model.lopenummer, model.nr),
                )
            )
            for name, model in (
                ("vurderinger", Assessment), ("tjenester", Service), ("diagnoser", Diagnosis)
            )
        }
        for row in persons:
            key = (row.innsending, row.lopenummer)
            assessments = merges["vurderinger"].take(key)
            services = merges["tjenester"].take(key)
            diagnoses = merges["diagnoser"].take(key)
            out = {c: _text(getattr(row, c)) for c in (*SUBMISSION_COLUMNS, *PERSON_COLUMNS)}
            latest = max(assessments, key=lambda a: (a.dato, a.nr), default=None)
            out["vurdering_dato"] = _text(latest.dato) if latest is not None else ""
            for column in VARIABLE_COLUMNS:
                out[column] = _text(getattr(latest, column)) if latest is not None else ""
            out["vurderinger"] = _assessments_text(assessments)
            out["tjenester"] = _services_text(services)
            out["diagnoser"] = ";".join(d.kode for d in diagnoses)
            yield out


def export_csv(db: Database, out: Path, include_replaced: bool = False) -> int:
    """Write the CSV; returns the number of rows (the file appears only when complete)."""
    count = 0
    with AtomicOutput(str(out)) as handle:
        text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
        writer = csv.DictWriter(text, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in rows(db, include_replaced):
            writer.writerow(row)
            count += 1
        text.flush()
        text.detach()
    return count


def export_parquet(db: Database, out: Path, include_replaced: bool = False) -> int:
    """The same columns as Parquet (every column a string, as in the CSV), in row groups."""
    try:
        import pyarrow as pa  # type: ignore[import-untyped, import-not-found, unused-ignore]
        import pyarrow.parquet as pq  # type: ignore[import-untyped, import-not-found, unused-ignore]
    except ImportError:
        raise ParquetUnavailable() from None
    schema = pa.schema([(c, pa.string()) for c in COLUMNS])
    count = 0
    with AtomicOutput(str(out)) as handle:
        writer = pq.ParquetWriter(handle, schema)
        batch: list[dict[str, str]] = []
        for row in rows(db, include_replaced):
            batch.append(row)
            count += 1
            if len(batch) >= STREAM_ROWS:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                batch = []
        if batch or not count:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
        writer.close()
    return count
