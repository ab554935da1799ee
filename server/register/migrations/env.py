"""Alembic environment of the register's database: runs on the connection handed over by
``ipis_server.db.upgrade_schema`` (or a URL), with its own version table."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from ipis_server.register.models import VERSION_TABLE, Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(
            connection=connection, target_metadata=target_metadata, version_table=VERSION_TABLE
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as conn:
        context.configure(
            connection=conn, target_metadata=target_metadata, version_table=VERSION_TABLE
        )
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
