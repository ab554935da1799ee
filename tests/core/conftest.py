"""Fixtures for the core tests: one key set per test session (per xdist worker)."""

from __future__ import annotations

import pathlib

import pytest
from ipis_testlib import VALID_FROM, Keys

from ipis_core.keyfile import render_key_file
from ipis_core.keygen import generate_keys


@pytest.fixture(scope="session")
def keys() -> Keys:
    generated = generate_keys(VALID_FROM, bits=2048)
    return Keys(generated.key_file, generated.tpf_private_pem, generated.iplos_private_pem)


@pytest.fixture(scope="session")
def key_file_path(keys: Keys, tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    path = tmp_path_factory.mktemp("keys") / "nokkelfil.xml"
    path.write_bytes(render_key_file(keys.key_file))
    return path
