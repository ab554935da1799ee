"""Fixtures of the send module's tests: each database test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from server_testlib import (
    PostgresCluster,
    SampleFiles,
    create_database,
    login,
    make_big_file,
    make_config,
    make_test_files,
    new_account,
)

from ipis_server.send import Config, create_app
from ipis_server.send.services import services


@pytest.fixture(scope="session")
def files(tmp_path_factory: pytest.TempPathFactory) -> SampleFiles:
    return make_test_files(tmp_path_factory.mktemp("filer"))


@pytest.fixture(scope="session")
def big_file(files: SampleFiles, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An encrypted file over the upload's 1 MB read size, so that a test holding its last
    bytes back sees the upload under way at the server (its partial file exists)."""
    return make_big_file(files, tmp_path_factory.mktemp("stor"))


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
        return f"sqlite:///{tmp_path / 'ipis.db'}"
    server = request.getfixturevalue("postgres_server")
    return create_database(server, f"t_{secrets.token_hex(6)}")


@pytest.fixture
def config(tmp_path: Path, database_url: str, files: SampleFiles) -> Config:
    return make_config(tmp_path, database_url, keys=files.keys)


@pytest.fixture
def app(config: Config) -> Iterator[Flask]:
    application = create_app(config)
    application.testing = True
    yield application
    services(application).db.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A client logged in to the demo account."""
    new_account(app)
    test_client = app.test_client()
    response = login(test_client)
    assert response.status_code == 302, response.text
    return test_client
