"""Fixtures of the whole-chain tests: the send module's, the TPF's and the register's test
helpers are imported from their folders (one copy of each), and a PostgreSQL cluster for the
scale-out test.

Each test starts its own three parties. The tests are in two xdist groups (``chain``,
``chain-2``), so at most two chains run at once (one per worker on the 2-core machine)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent.parent
for folder in ("server", "register", "browser"):
    if str(TESTS / folder) not in sys.path:
        sys.path.insert(0, str(TESTS / folder))

from server_testlib import PostgresCluster  # noqa: E402


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    cluster = PostgresCluster()
    try:
        yield cluster.start()
    finally:
        cluster.stop()
