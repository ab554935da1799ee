"""The built file itself (no browser needed): size, no self-fingerprint, the SHA-256 the build
prints, CSP, nothing external, and the embedded Python trimmed to what the core needs."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import pathlib
import re
import sys
import zipfile

import pytest
from krypt_testlib import PAGE, ROOT

sys.path.insert(0, str(ROOT / "web"))
import build

# Part of the page's suite (make test builds the page first; make test-fast does not).
pytestmark = pytest.mark.browser

# 12 MB until the page embedded Pyodide's memory snapshot (web/make_snapshot.js: 31 MB, 4.8 MB
# gzipped, 6.4 MB as base64), which took about a third off the time to ready.
MAX_MB = 15.0


@pytest.fixture(scope="module")
def html() -> bytes:
    if not PAGE.exists():
        pytest.fail("dist/ipis-krypt.html mangler: kjør `make page`")
    return PAGE.read_bytes()


def test_size_and_no_fingerprint_of_itself(html: bytes) -> None:
    """A file cannot vouch for itself: a changed copy would show whatever it was changed to
    show. The check is the SHA-256 of the whole file, published beside the download."""
    assert len(html) <= MAX_MB * 1_000_000
    assert b"data-fingerprint" not in html
    assert b"Fingeravtrykk for denne filen" not in html


def test_the_build_prints_the_files_sha256(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """What the build prints is the SHA-256 of the file it wrote (rendering stubbed: the real
    one is the 20 s ``make page``)."""
    monkeypatch.setattr(build, "pinned_pyodide_version", lambda: "0")
    monkeypatch.setattr(build, "render", lambda *_: (b"<!DOCTYPE html>sider", {"x": 1}))
    out = tmp_path / "ipis-krypt.html"
    assert build.main(["--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"SHA-256 (hele filen): {hashlib.sha256(out.read_bytes()).hexdigest()}\n" in printed


def test_one_strict_csp_and_no_external_reference(html: bytes) -> None:
    text = html.decode("utf-8")
    policies = re.findall(r'http-equiv="Content-Security-Policy" content="([^"]+)"', text)
    assert len(policies) == 1
    directives = dict(d.strip().split(" ", 1) for d in policies[0].split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["connect-src"] == "'none'"
    assert directives["worker-src"] == "blob:"
    assert "'unsafe-eval'" not in policies[0]
    assert not re.search(r"""(src|href|action)\s*=\s*["']?(https?:)?//""", text)
    assert "<link" not in text and "@import" not in text


def embedded_zip(html: bytes) -> zipfile.ZipFile:
    match = re.search(rb'id="asset-python">([^<]+)<', html)
    assert match
    return zipfile.ZipFile(io.BytesIO(gzip.decompress(base64.b64decode(match.group(1)))))


def test_the_page_embeds_a_pyodide_memory_snapshot(html: bytes) -> None:
    """The page restores Pyodide from a snapshot made at build time (Pyodide's format: its
    magic, then the wasm memory), placed after the wasm and the zip it was made with."""
    match = re.search(rb'id="asset-snapshot">([^<]+)<', html)
    assert match
    image = gzip.decompress(base64.b64decode(match.group(1)))
    assert image.startswith(b"\x00snp") and len(image) > 16 << 20
    assert str(ROOT).encode() not in image  # the build machine's paths stay there
    order = [html.index(f'id="asset-{name}"'.encode()) for name in ("wasm", "python", "snapshot")]
    assert order == sorted(order)


def test_python_is_trimmed_and_compiled(html: bytes) -> None:
    names = set(embedded_zip(html).namelist())
    for needed in (
        "ipis_core/reader.pyc", "ipis_core/message.pyc", "ipis_core/crypto/webcrypto.pyc",
        "krypt_worker.pyc", "xml/parsers/expat.pyc", "encodings/utf_16.pyc",
        "encodings/cp1252.pyc", "encodings/latin_1.pyc", "encodings/utf_8_sig.pyc",
        "hashlib.pyc", "hmac.pyc", "base64.pyc", "secrets.pyc", "dataclasses.pyc",
        "datetime.pyc", "asyncio/__init__.pyc",
    ):  # fmt: skip
        assert needed in names, needed
    for left_out in ("ipis_core/crypto/native.pyc", "ipis_core/keygen.pyc", "ipis_core/cli.pyc",
                     "unittest/__init__.pyc", "email/__init__.pyc", "http/client.pyc",
                     "encodings/big5.pyc", "sqlite3/__init__.pyc", "pydoc.pyc"):
        assert left_out not in names, left_out
    assert not any(name.endswith(".py") for name in names)
