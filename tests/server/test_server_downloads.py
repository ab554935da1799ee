"""The download page publishes the SHA-256 of the files it serves (issue 10, point 2): computed
by the server from the very file it serves, so the check the user guide gives (sha256sum,
Get-FileHash, certutil) passes for a true copy and fails for a changed one."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from server_testlib import make_config

from ipis_server.send import create_app
from ipis_server.send.services import services

SHOWN = re.compile(r'id="sha256-(side|nokkelfil)">([0-9a-f]{64})<')


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    config = make_config(
        tmp_path, f"sqlite:///{tmp_path / 'ipis.db'}", offline_page=tmp_path / "ipis-krypt.html"
    )
    page = b"<!DOCTYPE html><title>IPLOS Krypt</title>" + os.urandom(300_000)
    config.offline_page.write_bytes(page)
    config.key_file.parent.mkdir(parents=True)
    config.key_file.write_bytes(b"<IPLOSKrypteringsnokler/>")
    application = create_app(config)
    application.testing = True
    yield application
    services(application).db.dispose()


def shown(app: Flask) -> dict[str, str]:
    page = app.test_client().get("/last-ned")
    assert page.status_code == 200
    return dict(SHOWN.findall(page.text))


def sha256sum(path: Path) -> str:
    """As the user guide says to check it on Linux (coreutils)."""
    command = shutil.which("sha256sum")
    assert command, "sha256sum (coreutils) is missing"
    output = subprocess.run([command, str(path)], check=True, capture_output=True, text=True)
    return output.stdout.split()[0]


def test_the_published_sha256_checks_the_served_file(app: Flask, tmp_path: Path) -> None:
    published = shown(app)
    client = app.test_client()
    copy = tmp_path / "kopi" / "ipis-krypt.html"
    copy.parent.mkdir()
    copy.write_bytes(client.get("/last-ned/ipis-krypt.html").data)
    assert sha256sum(copy) == published["side"]
    key_copy = copy.parent / "nokkelfil.xml"
    key_copy.write_bytes(client.get("/last-ned/nokkelfil.xml").data)
    assert sha256sum(key_copy) == published["nokkelfil"]

    # A copy changed on the way (one byte) fails the same check.
    changed = bytearray(copy.read_bytes())
    changed[len(changed) // 2] ^= 0x01
    copy.write_bytes(bytes(changed))
    assert sha256sum(copy) != published["side"]


def test_a_replaced_file_is_published_anew(app: Flask, tmp_path: Path) -> None:
    before = shown(app)["side"]
    assert shown(app)["side"] == before  # the same file: the same figure
    page = services(app).config.offline_page
    replacement = tmp_path / "ny.html"
    replacement.write_bytes(b"<!DOCTYPE html><title>IPLOS Krypt 2</title>")
    os.replace(replacement, page)  # as docs/drift.md replaces files
    after = shown(app)["side"]
    assert after != before
    assert after == sha256sum(page)


def test_nothing_published_without_the_file(app: Flask) -> None:
    services(app).config.offline_page.unlink()
    page = app.test_client().get("/last-ned").text
    assert "sha256-side" not in page
    assert "make page" in page
