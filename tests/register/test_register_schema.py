"""The register's Alembic migrations make exactly the schema its models describe, on SQLite
and PostgreSQL (a column added to a model without a migration fails here)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from ipis_server.register.models import VERSION_TABLE, Base
from ipis_server.register.services import RegisterServices


def test_migrations_match_the_models(svc: RegisterServices) -> None:
    with svc.db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "version_table": VERSION_TABLE}
        )
        differences = compare_metadata(context, Base.metadata)
    assert differences == []
