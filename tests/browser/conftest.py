"""Fixtures for the browser tests: Debian's Chromium, the built page, keys and key files.

The page is built by ``make page`` (``make test`` runs it first); these tests fail with a clear
message when dist/ipis-krypt.html is missing. The browser itself is the ``browser`` fixture of
tests/conftest.py, one per test process.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import pathlib
from collections.abc import Iterator

import pytest
from krypt_testlib import PAGE, TODAY, Keys, Krypt, open_krypt
from playwright.sync_api import Browser

from ipis_core.keyfile import render_key_file
from ipis_core.keygen import generate_keys


@pytest.fixture(scope="session")
def page_url() -> str:
    if not PAGE.exists():
        pytest.fail("dist/ipis-krypt.html mangler: kjør `make page` før nettlesertestene")
    return PAGE.as_uri()


@pytest.fixture(scope="module")
def krypt(browser: Browser, page_url: str) -> Iterator[Krypt]:
    """One page for a test module, opened from file://; no request may leave it."""
    opened = open_krypt(browser, page_url)
    yield opened
    assert opened.network.outside == [], "requests left the page"
    opened.close()


@pytest.fixture(scope="session")
def keys() -> Keys:
    generated = generate_keys(TODAY - dt.timedelta(days=10), bits=2048)
    return Keys(generated.key_file, generated.tpf_private_pem, generated.iplos_private_pem)


@pytest.fixture(scope="session")
def key_files(keys: Keys, tmp_path_factory: pytest.TempPathFactory) -> dict[str, pathlib.Path]:
    """The valid key file, and the same keys expiring in 14 days, expired, and broken."""
    folder = tmp_path_factory.mktemp("keys")
    variants = {
        "valid": keys.key_file,
        "expiring": dataclasses.replace(
            keys.key_file,
            valid_from=TODAY - dt.timedelta(days=350),
            valid_to=TODAY + dt.timedelta(days=14),
        ),
        "expired": dataclasses.replace(
            keys.key_file,
            valid_from=TODAY - dt.timedelta(days=400),
            valid_to=TODAY - dt.timedelta(days=36),
        ),
    }
    paths = {}
    for name, key_file in variants.items():
        path = folder / f"nokkelfil-{name}.xml"
        path.write_bytes(render_key_file(key_file))
        paths[name] = path
    broken = folder / "nokkelfil-ugyldig.xml"
    # complete XML, but no keys in it: invalid (one cut short is "skadet", issue 10.7)
    broken.write_bytes(
        b"<IPLOSKrypteringsnokler versjon='1'>ikke en n\xc3\xb8kkel</IPLOSKrypteringsnokler>"
    )
    paths["broken"] = broken
    return paths
