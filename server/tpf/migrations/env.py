"""Alembic environment of the TPF's database."""

from __future__ import annotations

from ipis_server.migrations_env import run_migrations
from ipis_server.tpf.models import Base

run_migrations(Base.metadata)
