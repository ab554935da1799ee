"""Fixtures of the register's tests: every database test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# The send module's test helpers (the throwaway PostgreSQL cluster, a free port, …).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "server"))

from flask import Flask
from register_testlib import (
    TODAY,
    KeySet,
    demo_input,
    encrypt,
    make_keys,
    register_config,
)
from server_testlib import PostgresCluster, create_database

from ipis_server.register.app import create_app
from ipis_server.register.config import RegisterConfig
from ipis_server.register.services import RegisterServices, open_services, register_services


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    cluster = PostgresCluster()
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'register.db'}"
    server = request.getfixturevalue("postgres_server")
    return create_database(server, f"r_{secrets.token_hex(6)}")


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> KeySet:
    return make_keys(tmp_path_factory.mktemp("nokler"))


@pytest.fixture(scope="session")
def other_keys(tmp_path_factory: pytest.TempPathFactory) -> KeySet:
    """Another key set with the same key ids (another file's, or a wrong private key)."""
    return make_keys(tmp_path_factory.mktemp("andre-nokler"))


@pytest.fixture(scope="session")
def plain() -> bytes:
    """A realistic IPLOS export: 120 persons of the demo generator."""
    return demo_input(120)


@pytest.fixture(scope="session")
def encrypted(plain: bytes, keys: KeySet) -> bytes:
    return encrypt(plain, keys)


@pytest.fixture
def config(tmp_path: Path, database_url: str, keys: KeySet) -> RegisterConfig:
    return register_config(tmp_path, database_url, keys)


@pytest.fixture
def svc(config: RegisterConfig) -> Iterator[RegisterServices]:
    services = open_services(config, today=lambda: TODAY)
    yield services
    services.dispose()


@pytest.fixture
def app(config: RegisterConfig) -> Iterator[Flask]:
    """The register's app on this test's database, with the test keys, on a fixed day."""
    application = create_app(config, today=lambda: TODAY)
    application.testing = True
    yield application
    register_services(application).dispose()
