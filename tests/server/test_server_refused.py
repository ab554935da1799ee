"""What the send module refuses, kept refused (issue 7, points 7, 12 and 13), through Flask's
test client: an envelope re-encoded as UTF-16, a foreign Referer
over HTTPS, a CSRF token of another session, session fixation, another account's receipt and
confirmation page, path-traversal and NUL file names, and the database lock running out."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from server_testlib import (
    OTHER,
    SampleFiles,
    csrf_token,
    error_text,
    files_under,
    login,
    make_config,
    new_account,
)
from sqlalchemy import select

from ipis_server.send import create_app
from ipis_server.send.models import Submission
from ipis_server.send.services import services

FORMAT = "Ugyldig format på kryptert melding. Kjøringen avsluttes"
HTTPS = "https://ipis.example"


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: nothing here depends on the database (the races and the database's own
    failures are tested on both in test_server_races.py and test_server_faults.py)."""
    return f"sqlite:///{tmp_path / 'ipis.db'}"


def _send(client: FlaskClient, data: bytes, name: str = "kryptert.xml",
          token: str | None = None, **kwargs: object) -> object:
    if token is None:
        token = csrf_token(client.get("/send", **kwargs).text)  # type: ignore[arg-type]
    return client.post("/send", data={"csrf_token": token, "fil": (io.BytesIO(data), name)},
                       content_type="multipart/form-data", **kwargs)  # type: ignore[arg-type]


def _nothing_kept(app: Flask) -> None:
    assert files_under(services(app).storage.root) == []
    with services(app).db.session() as db:
        assert db.scalars(select(Submission)).all() == []


# --- the envelope's encoding (point 12) --------------------------------------------------------


def _declared(data: bytes, encoding: str) -> bytes:
    return data.replace(b'encoding="UTF-8"', f'encoding="{encoding}"'.encode(), 1)


@pytest.mark.parametrize(
    "recode",
    [
        lambda d: b"\xff\xfe" + _declared(d, "UTF-16").decode().encode("utf-16-le"),
        lambda d: b"\xfe\xff" + _declared(d, "UTF-16").decode().encode("utf-16-be"),
        lambda d: _declared(d, "UTF-16").decode().encode("utf-16-le"),  # no BOM
        lambda d: _declared(d, "ISO-8859-1"),  # ASCII-compatible, still not UTF-8
    ],
    ids=["utf-16le-bom", "utf-16be-bom", "utf-16le-no-bom", "declared-latin-1"],
)
def test_envelope_not_in_utf8_is_refused(client: FlaskClient, app: Flask, files: SampleFiles,
                                         recode: object) -> None:
    data = files.encrypted.read_bytes()
    assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    response = _send(client, recode(data))  # type: ignore[operator]
    assert response.status_code == 400  # type: ignore[attr-defined]
    assert error_text(response.text) == FORMAT  # type: ignore[attr-defined]
    _nothing_kept(app)


def test_envelope_in_utf8_with_bom_or_without_declaration_is_taken(
    client: FlaskClient, files: SampleFiles
) -> None:
    data = files.encrypted.read_bytes()
    without = data.split(b"?>", 1)[1].lstrip()
    for variant in (b"\xef\xbb\xbf" + data, without):
        response = _send(client, variant)
        assert response.status_code == 303, error_text(response.text)  # type: ignore[attr-defined]


# --- CSRF and Referer (points 12 and 13) -------------------------------------------------------


def _https_login(app: Flask) -> FlaskClient:
    new_account(app)
    client = app.test_client()
    token = csrf_token(client.get("/logg-inn", base_url=HTTPS).text)
    response = client.post(
        "/logg-inn", base_url=HTTPS, headers={"Referer": HTTPS + "/logg-inn"},
        data={"csrf_token": token, "kommunenummer": "0301", "bydelsnummer": "00",
              "organisasjonsnummer": "922542570", "pin": "12345678"})
    assert response.status_code == 302
    return client


@pytest.mark.parametrize("referer", ["https://angriper.example/side", "http://ipis.example/send",
                                     None], ids=["foreign", "downgraded", "missing"])
def test_upload_over_https_needs_a_same_origin_referer(app: Flask, files: SampleFiles,
                                                       referer: str | None) -> None:
    """As Flask-WTF demands of the login form (before: the upload took any Referer)."""
    client = _https_login(app)
    headers = {"Referer": referer} if referer else {}
    response = _send(client, files.encrypted.read_bytes(), base_url=HTTPS, headers=headers)
    assert response.status_code == 400  # type: ignore[attr-defined]
    assert "Skjemaet er utløpt" in error_text(response.text)  # type: ignore[attr-defined]
    _nothing_kept(app)
    login_referer = {"Referer": referer} if referer else {}
    token = csrf_token(client.get("/send", base_url=HTTPS).text)
    logout = client.post("/logg-ut", base_url=HTTPS, headers=login_referer,
                         data={"csrf_token": token})
    assert logout.status_code == 400  # the same rule for every other form


def test_csrf_token_of_another_session_is_refused(app: Flask, files: SampleFiles) -> None:
    new_account(app)
    new_account(app, OTHER)
    victim, attacker = app.test_client(), app.test_client()
    login(victim)
    login(attacker, OTHER)
    stolen = csrf_token(attacker.get("/send").text)
    response = _send(victim, files.encrypted.read_bytes(), token=stolen)
    assert response.status_code == 400  # type: ignore[attr-defined]
    _nothing_kept(app)
    fresh = app.test_client()
    login_token = csrf_token(attacker.get("/logg-inn").text)
    assert fresh.post("/logg-inn", data={
        "csrf_token": login_token, "kommunenummer": "0301", "bydelsnummer": "00",
        "organisasjonsnummer": "922542570", "pin": "12345678"}).status_code == 400


def test_session_fixation_a_cookie_planted_before_login_is_not_logged_in(app: Flask) -> None:
    """The attacker's own pre-login cookie, planted in the victim's browser, stays anonymous
    after the victim logs in with it."""
    new_account(app)
    attacker = app.test_client()
    attacker.get("/logg-inn")
    planted = attacker.get_cookie("ipis_sesjon")
    victim = app.test_client()
    if planted is not None:
        victim.set_cookie("ipis_sesjon", planted.value)
    assert login(victim).status_code == 302
    assert victim.get("/send").status_code == 200
    assert attacker.get("/send").status_code == 302  # still not logged in


def test_another_accounts_receipt_and_confirmation_are_not_shown(
    app: Flask, client: FlaskClient, files: SampleFiles
) -> None:
    data = files.encrypted.read_bytes()
    receipt = _send(client, data).headers["Location"]  # type: ignore[attr-defined]
    confirm = _send(client, data).headers["Location"]  # type: ignore[attr-defined]
    assert "/bekreft" in confirm
    new_account(app, OTHER)
    other = app.test_client()
    login(other, OTHER)
    assert other.get(receipt).status_code == 404
    assert other.get(confirm).status_code == 404
    token = csrf_token(other.get("/send").text)
    assert other.post(confirm, data={"csrf_token": token, "send": "1"}).status_code == 404


@pytest.mark.parametrize("name", ["../../../etc/passwd", "..\\..\\boot.ini", "a\x00b.xml",
                                  "/abs/path.xml", "\x00"],
                         ids=["dotdot", "backslash", "nul", "absolute", "only-nul"])
def test_hostile_file_names_are_only_shown_cleaned(client: FlaskClient, app: Flask,
                                                   files: SampleFiles, name: str) -> None:
    response = _send(client, files.encrypted.read_bytes(), name=name)
    assert response.status_code == 303, error_text(response.text)  # type: ignore[attr-defined]
    storage = services(app).storage
    with services(app).db.session() as db:
        submission = db.scalars(select(Submission)).one()
    assert "/" not in submission.file_name and "\x00" not in submission.file_name
    assert ".." not in submission.file_name.replace("...", "")
    stored = files_under(storage.root)
    assert stored == [storage.stored / submission.storage_name]
    assert submission.storage_name == f"{submission.public_id}.xml"


# --- the database refuses (point 7) ------------------------------------------------------------


def test_sqlite_lock_timeout_removes_the_file_and_says_so(tmp_path: Path,
                                                          files: SampleFiles) -> None:
    """Another writer holds SQLite's lock past the busy timeout when the record is committed:
    a Norwegian message and no file left (before: HTTP 500 and an orphan file)."""
    database = tmp_path / "ipis.db"
    app = create_app(make_config(tmp_path, f"sqlite:///{database}", keys=files.keys,
                                 database_busy_seconds=0.2))
    new_account(app)
    client = app.test_client()
    login(client)
    token = csrf_token(client.get("/send").text)
    holder = sqlite3.connect(database, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        response = _send(client, files.encrypted.read_bytes(), token=token)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert response.status_code == 503  # type: ignore[attr-defined]
    assert error_text(response.text).startswith(  # type: ignore[attr-defined]
        "Filen kunne ikke registreres fordi databasen ikke svarte.")
    assert files_under(services(app).storage.root) == []
    services(app).db.dispose()
