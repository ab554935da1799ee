"""Migration 0002 on a database made by 0001 that already holds submissions, on SQLite and
PostgreSQL: each account's oldest copy of a content becomes its first copy; copies forwarded
twice by the old race, and copies awaiting confirmation, do not."""

from __future__ import annotations

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import text

from ipis_server.db import open_database
from ipis_server.send.models import MIGRATIONS_DIR


def _alembic(connection: object, revision: str) -> None:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


def test_0002_marks_the_oldest_copy_of_each_content(database_url: str) -> None:
    database = open_database(database_url)
    with database.engine.begin() as connection:
        _alembic(connection, "0001")
        connection.execute(text(
            "INSERT INTO accounts (id, kommunenummer, bydelsnummer, organisasjonsnummer, "
            "pin_hash, active, failed_logins, created_at) VALUES "
            "(1, '0301', '00', '922542570', 'x', true, 0, '2026-01-01'), "
            "(2, '4601', '00', '964338531', 'x', true, 0, '2026-01-01')"))
        rows = [  # id, account, sha, status, duplicate_of
            (1, 1, "a" * 64, "bekreftet", None),
            (2, 1, "a" * 64, "bekreftet", None),  # forwarded twice by the old race
            (3, 1, "a" * 64, "venter", 1),
            (4, 1, "b" * 64, "mottatt", None),
            (5, 2, "a" * 64, "mottatt", None),  # another account, same bytes
        ]
        for row_id, account, sha, status, duplicate_of in rows:
            connection.execute(text(
                "INSERT INTO submissions (id, public_id, account_id, received_at, file_name, "
                "size_bytes, sha256, storage_name, kommunenummer, bydelsnummer, "
                "organisasjonsnummer, tpf_key_name, status, status_at, duplicate_of) VALUES "
                "(:id, :public, :account, '2026-01-01', 'f.xml', 1, :sha, :storage, '0301', "
                "'00', '922542570', '', :status, '2026-01-01', :duplicate)"),
                {"id": row_id, "public": f"p{row_id}", "account": account, "sha": sha,
                 "storage": f"p{row_id}.xml", "status": status, "duplicate": duplicate_of})
    with database.engine.begin() as connection:
        _alembic(connection, "head")
        first = dict(connection.execute(
            text("SELECT id, first_sha256 FROM submissions ORDER BY id")).all())
    assert first == {1: "a" * 64, 2: None, 3: None, 4: "b" * 64, 5: "a" * 64}
    database.dispose()
