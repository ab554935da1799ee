"""Alembic environment of the send module's database."""

from __future__ import annotations

from ipis_server.migrations_env import run_migrations
from ipis_server.send.models import Base

run_migrations(Base.metadata)
