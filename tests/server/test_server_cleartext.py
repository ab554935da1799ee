"""Regression (issues 7.1 and 7.13): no cleartext reaches the send module's storage.

A valid encrypted file carrying a fødselsnummer in its clear part (a comment or processing
instruction inside, before or after the root; Avsender/Navn, Mottaker/Navn, Fagsystem/@navn,
an Id, the ds:KeyName) is refused with the message; nothing is stored (no file in mottak/ or
innsendinger/), there is no receipt row, nothing is forwarded, and the number is in no log
line. Through the Flask test client and through a real ``ipis serve`` process, on SQLite and
PostgreSQL. Each case was accepted, stored and forwarded before the fix. The hostile inputs
the send module already refused (XXE, external parameter entities, entity bombs, DOCTYPE,
downgrades, deep nesting, truncated, compressed files) are kept refused the same way.
"""

from __future__ import annotations

import io
import logging
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from server_testlib import (
    DEMO,
    RunningServer,
    SampleFiles,
    create_database,
    csrf_token,
    error_text,
    start_server,
)
from sqlalchemy import select

from ipis_server.send.models import OutboxItem, Submission
from ipis_server.send.services import services

FORMAT = "Ugyldig format på kryptert melding. Kjøringen avsluttes"
FNR_IN_CLEAR = (
    "Ugyldig format på kryptert melding: den ukrypterte delen av filen inneholder et tall som kan "
    "være et fødselsnummer. Filen er avvist og ikke sendt. Rett avsender- og "
    "mottakeropplysningene i fagsystemet, og krypter IPLOS-datafilen på nytt."
)

Edit = Callable[[bytes, bytes], bytes]


def _replace(old: bytes, new: bytes) -> Edit:
    def edit(data: bytes, fnr: bytes) -> bytes:
        assert data.count(old) == 1, old  # the clear copy; the others are encrypted
        return data.replace(old, new.replace(b"FNR", fnr))

    return edit


SMUGGLED: dict[str, tuple[Edit, str]] = {
    "comment-in-root": (_replace(b"</Meldingstype>", b"</Meldingstype><!-- FNR -->"), FORMAT),
    "comment-after-root": (lambda d, fnr: d + b"<!-- " + fnr + b" -->\n", FORMAT),
    "comment-before-root": (_replace(b"?>\n<IPLOSKryptert", b"?>\n<!-- FNR -->\n<IPLOSKryptert"),
                            FORMAT),
    "pi-in-root": (_replace(b"</Avsender>", b"</Avsender><?notat FNR?>"), FORMAT),
    "pi-after-root": (lambda d, fnr: d + b"<?notat " + fnr + b"?>\n", FORMAT),
    "avsender-navn": (_replace(b"<Navn>Oslo kommune,", b"<Navn>Oslo kommune FNR,"), FNR_IN_CLEAR),
    "mottaker-navn": (_replace(b"<Navn>Statistisk sentralbyr", b"<Navn>FNR Statistisk sentralbyr"),
                      FNR_IN_CLEAR),
    "fagsystem-navn": (_replace(b'navn="Gerica"', b'navn="Gerica FNR"'), FNR_IN_CLEAR),
    "id": (_replace(b'Id="tpf-lag"', b'Id="tpf-lag-FNR"'), FNR_IN_CLEAR),
    "key-name": (_replace(b"<ds:KeyName>tpf-2026</ds:KeyName>",
                          b"<ds:KeyName>tpf-2026-FNR</ds:KeyName>"), FNR_IN_CLEAR),
}


NOT_XML = "Feil ved sending av fil; Ikke gyldig XML."
DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'


def _doctype(subset: bytes, meldingstype: bytes = b"IPLOS") -> Edit:
    def edit(data: bytes, _fnr: bytes) -> bytes:
        data = data.replace(DECLARATION, DECLARATION + b"<!DOCTYPE IPLOSKryptert" + subset + b">\n")
        return data.replace(b"<Meldingstype>IPLOS", b"<Meldingstype>" + meldingstype, 1)

    return edit


def _zipped(data: bytes, _fnr: bytes) -> bytes:
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("kryptert.xml", data)
    return buffer.getvalue()


def _gzipped(data: bytes, _fnr: bytes) -> bytes:
    import gzip

    return gzip.compress(data, mtime=0)


BOMB = b" [<!ENTITY a0 \"ha\">" + b"".join(
    b"<!ENTITY a%d \"%s\">" % (i, b"&a%d;" % (i - 1) * 10) for i in range(1, 10)) + b"]"

# Hostile inputs the send module has always refused (issue 7.13), kept refused.
HOSTILE: dict[str, tuple[Edit, str]] = {
    "xxe": (_doctype(b' [<!ENTITY x SYSTEM "file:///etc/passwd">]', b"&x;"), FORMAT),
    "external-parameter-entity": (
        _doctype(b' [<!ENTITY % p SYSTEM "http://127.0.0.1:9/x.dtd"> %p;]'), FORMAT),
    "entity-bomb": (_doctype(BOMB, b"&a9;"), FORMAT),
    "doctype": (_doctype(b""), FORMAT),
    "downgrade-cbc": (_replace(b"xmlenc11#aes256-gcm", b"xmlenc#aes256-cbc"), FORMAT),
    "downgrade-rsa-1_5": (_replace(b"xmlenc11#rsa-oaep", b"xmlenc#rsa-1_5"), FORMAT),
    "downgrade-oaep-mgf1p": (_replace(b"xmlenc11#rsa-oaep", b"xmlenc#rsa-oaep-mgf1p"), FORMAT),
    "downgrade-oaep-sha1": (_replace(b"http://www.w3.org/2001/04/xmlenc#sha256",
                                     b"http://www.w3.org/2000/09/xmldsig#sha1"), FORMAT),
    "downgrade-no-mgf": (_replace(
        b'<xenc11:MGF Algorithm="http://www.w3.org/2009/xmlenc11#mgf1sha256"/>', b""), FORMAT),
    "nesting-100000-deep": (_replace(b"</Meldingstype>",
                                     b"</Meldingstype>" + b"<a>" * 100_000 + b"</a>" * 100_000),
                            "Valideringsfeil. Ukjent tag navn: a"),
    "truncated": (lambda d, _fnr: d[: len(d) // 2], NOT_XML),
    "gzip": (_gzipped, FORMAT),
    "zip": (_zipped, NOT_XML),
}


def smuggled(files: SampleFiles, case: str) -> bytes:
    edit, _ = {**SMUGGLED, **HOSTILE}[case]
    return edit(files.encrypted.read_bytes(), files.fodselsnummer.encode())


def expected_message(case: str) -> str:
    return {**SMUGGLED, **HOSTILE}[case][1]


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


# --- through the Flask test client (SQLite and PostgreSQL) -------------------------------------


def _upload_is_refused(client: FlaskClient, app: Flask, files: SampleFiles, case: str,
                       log: str) -> None:
    token = csrf_token(client.get("/send").text)
    response = client.post(
        "/send", content_type="multipart/form-data",
        data={"csrf_token": token, "fil": (io.BytesIO(smuggled(files, case)), "kryptert.xml")},
    )
    assert response.status_code == 400, case
    assert error_text(response.text) == expected_message(case), case
    storage = services(app).storage
    assert files_under(storage.root / "mottak") == []
    assert files_under(storage.root / "innsendinger") == []
    with services(app).db.session() as db:
        assert db.scalars(select(Submission)).all() == []
        assert db.scalars(select(OutboxItem)).all() == []
    number = files.fodselsnummer
    assert number not in log
    assert number not in response.text
    for path in files_under(services(app).config.instance_dir):
        assert number.encode() not in path.read_bytes(), path


@pytest.mark.parametrize("case", SMUGGLED)
def test_smuggled_cleartext_is_refused_and_leaves_no_trace(
    client: FlaskClient, app: Flask, files: SampleFiles, caplog: pytest.LogCaptureFixture,
    case: str
) -> None:
    caplog.set_level(logging.DEBUG)
    _upload_is_refused(client, app, files, case, caplog.text)


def test_hostile_inputs_stay_refused_and_leave_no_trace(
    client: FlaskClient, app: Flask, files: SampleFiles, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for case in HOSTILE:  # one login for all: the refusals, not the setup, are under test
        _upload_is_refused(client, app, files, case, caplog.text)


def test_the_unchanged_file_is_still_accepted(client: FlaskClient, files: SampleFiles) -> None:
    """The cases above differ from an accepted file only by what they smuggle."""
    token = csrf_token(client.get("/send").text)
    response = client.post(
        "/send", content_type="multipart/form-data",
        data={"csrf_token": token,
              "fil": (io.BytesIO(files.encrypted.read_bytes()), "kryptert.xml")},
    )
    assert response.status_code == 303, error_text(response.text)


# --- through a real `ipis serve` process (SQLite and PostgreSQL) ------------------------------


@pytest.fixture(scope="module",
                params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def running(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
            files: SampleFiles) -> Iterator[RunningServer]:
    env = {"IPIS_DATABASE_URL": "", "IPIS_THROTTLE_FAILURES": "1000"}
    if request.param == "postgres":
        env["IPIS_DATABASE_URL"] = create_database(
            request.getfixturevalue("postgres_server"), f"klar_{secrets.token_hex(6)}")
    server = start_server(tmp_path_factory.mktemp("klartekst") / "instance", env, keys=files.keys)
    yield server
    server.stop()


def _refused_by_server(running: RunningServer, files: SampleFiles, case: str) -> None:
    session = requests.Session()
    token = csrf_token(session.get(running.url + "/logg-inn").text)
    logged_in = session.post(running.url + "/logg-inn", data={
        "csrf_token": token, "kommunenummer": DEMO[0], "bydelsnummer": DEMO[1],
        "organisasjonsnummer": DEMO[2], "pin": running.pin})
    assert logged_in.url.endswith("/send")
    token = csrf_token(session.get(running.url + "/send").text)
    response = session.post(running.url + "/send", data={"csrf_token": token},
                            files={"fil": ("kryptert.xml", smuggled(files, case), "text/xml")})
    assert response.status_code == 400, case
    assert error_text(response.text) == expected_message(case), case
    listing = session.get(running.url + "/innsendinger").text  # also flushes the request's log
    assert "kryptert.xml" not in listing  # no receipt
    storage = running.instance / "lager"
    assert files_under(storage / "mottak") == []
    assert files_under(storage / "innsendinger") == []
    assert files_under(running.instance / "tpf-innboks") == []  # nothing forwarded
    number = files.fodselsnummer
    assert number not in running.log_text()
    for path in files_under(running.instance):
        assert number.encode() not in path.read_bytes(), path


@pytest.mark.xdist_group("server-cleartext-process")
@pytest.mark.parametrize("case", SMUGGLED)
def test_smuggled_cleartext_is_refused_by_the_running_server(
    running: RunningServer, files: SampleFiles, case: str
) -> None:
    _refused_by_server(running, files, case)


@pytest.mark.xdist_group("server-cleartext-process")
def test_hostile_inputs_stay_refused_by_the_running_server(
    running: RunningServer, files: SampleFiles
) -> None:
    for case in HOSTILE:
        _refused_by_server(running, files, case)
