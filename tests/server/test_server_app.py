"""The send module through Flask's test client, on SQLite and on PostgreSQL."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from server_testlib import (
    LOCKME,
    OTHER,
    SampleFiles,
    csrf_token,
    error_text,
    login,
    make_config,
    new_account,
)
from sqlalchemy import select

from ipis_server.send import create_app
from ipis_server.send.models import AuditEntry, OutboxItem, Submission
from ipis_server.send.services import services

FORMAT = "Ugyldig format på kryptert melding. Kjøringen avsluttes"
GENERIC = "Innloggingen mislyktes"


def upload(client: FlaskClient, data: bytes, name: str = "kryptert.xml",
           token: str | None = None) -> object:
    if token is None:
        token = csrf_token(client.get("/send").text)
    form: dict[str, object] = {"fil": (io.BytesIO(data), name)}
    if token:
        form["csrf_token"] = token
    return client.post("/send", data=form, content_type="multipart/form-data")


def all_bytes_under(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())


# --- login ------------------------------------------------------------------------------------


def test_login_page_has_the_fields_of_formats_4(app: Flask) -> None:
    html = app.test_client().get("/logg-inn").text
    for label in ("Kommunenummer", "Bydelsnummer", "Organisasjonsnummer", "PIN-kode"):
        assert f">{label}</label>" in html
    assert ">Logg inn</button>" in html
    assert 'value="00"' in html  # bydelsnummer default


def test_wrong_pin_and_unknown_account_give_the_same_message(app: Flask) -> None:
    new_account(app)
    client = app.test_client()
    wrong_pin = login(client, pin="99999999")
    unknown = login(client, numbers=OTHER)
    assert wrong_pin.status_code == unknown.status_code == 401
    assert error_text(wrong_pin.text) == error_text(unknown.text)
    assert GENERIC in error_text(wrong_pin.text)


def test_lockout_after_repeated_failures(app: Flask) -> None:
    pin = new_account(app, LOCKME, pin="55555555")
    client = app.test_client()
    for _ in range(5):
        assert login(client, LOCKME, "11111111").status_code == 401
    locked = login(client, LOCKME, pin)  # right PIN, but locked
    assert locked.status_code == 401
    assert GENERIC in error_text(locked.text)
    with services(app).db.session() as db:
        actions = db.scalars(select(AuditEntry.action)).all()
    assert "låst" in actions


def test_throttling_per_client_address(tmp_path: Path, database_url: str) -> None:
    app = create_app(make_config(tmp_path, database_url, throttle_failures=3))
    new_account(app)
    client = app.test_client()
    codes = [login(client, OTHER, "00000000").status_code for _ in range(4)]
    assert codes == [401, 401, 401, 429]
    assert login(client).status_code == 429  # even the right PIN waits
    services(app).db.dispose()


def _with_cookie(app: Flask, value: str) -> FlaskClient:
    """Another browser presenting a copied session cookie."""
    other = app.test_client()
    other.set_cookie("ipis_sesjon", value)
    return other


def test_session_rotated_at_login_and_ended_by_logout(app: Flask) -> None:
    new_account(app)
    client = app.test_client()
    client.get("/logg-inn")
    before = client.get_cookie("ipis_sesjon")
    assert before is not None  # the login form's CSRF token lives in the session
    assert login(client).status_code == 302
    first = client.get_cookie("ipis_sesjon")
    assert first is not None and first.value != before.value
    assert client.get("/send").status_code == 200
    # the cookie from before the login does not carry the login (no session fixation)
    assert _with_cookie(app, before.value).get("/send").status_code == 302
    # a second login starts a new session and ends the first one
    assert login(client).status_code == 302
    second = client.get_cookie("ipis_sesjon")
    assert second is not None and second.value != first.value
    assert _with_cookie(app, first.value).get("/send").status_code == 302
    assert client.get("/send").status_code == 200
    token = csrf_token(client.get("/send").text)
    assert client.post("/logg-ut", data={"csrf_token": token}).status_code == 302
    assert client.get("/send").status_code == 302
    # logged out: the session is ended on the server, not only forgotten by this browser
    assert _with_cookie(app, second.value).get("/send").status_code == 302


def test_session_expires_after_inactivity(tmp_path: Path, database_url: str) -> None:
    app = create_app(make_config(tmp_path, database_url, session_idle_minutes=0))
    new_account(app)
    client = app.test_client()
    login(client)
    response = client.get("/send")
    assert response.status_code == 302 and "/logg-inn" in response.headers["Location"]
    services(app).db.dispose()


def test_login_without_csrf_token_is_refused(app: Flask) -> None:
    new_account(app)
    response = app.test_client().post(
        "/logg-inn",
        data={"kommunenummer": "0301", "bydelsnummer": "00",
              "organisasjonsnummer": "922542570", "pin": "12345678"},
    )
    assert response.status_code == 400


def test_security_headers(client: FlaskClient, app: Flask) -> None:
    page = client.get("/send")
    csp = page.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Referrer-Policy"] == "same-origin"
    assert page.headers["Cache-Control"] == "no-store"
    assert "Strict-Transport-Security" not in page.headers
    secure = app.test_client().get("/logg-inn", base_url="https://localhost")
    assert "max-age" in secure.headers["Strict-Transport-Security"]


# --- upload and receipt -----------------------------------------------------------------------


def test_upload_gives_durable_receipt(client: FlaskClient, app: Flask, files: SampleFiles) -> None:
    data = files.encrypted.read_bytes()
    response = upload(client, data, "iplos-kryptert.xml")
    assert response.status_code == 303, error_text(response.text)
    receipt = client.get(response.headers["Location"]).text
    assert "Sending utført" in receipt
    assert files.sha256 in receipt
    assert "iplos-kryptert.xml" in receipt
    assert f"{len(data)} byte" in receipt
    assert "Kommunenummer 0301" in receipt
    with services(app).db.session() as db:
        submission = db.scalars(select(Submission)).one()
        assert db.scalars(select(OutboxItem)).one().submission_id == submission.id
    stored = services(app).storage.path_of(submission.storage_name)
    assert stored.read_bytes() == data
    assert list(services(app).storage.incoming.iterdir()) == []
    listing = client.get("/innsendinger").text
    assert submission.receipt_number in listing and "mottatt" in listing


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d[:-200], "Feil ved sending av fil; Ikke gyldig XML."),
        (lambda d: d.replace(b"</Meldingstype>", b"</Meldingstype><Tull/>", 1),
         "Valideringsfeil. Ukjent tag navn: Tull"),
        (lambda d: d.replace(b'versjon="1"', b'versjon="2"', 1), FORMAT),
    ],
    ids=["not-xml", "unknown-tag", "format"],
)
def test_faults_are_shown_and_nothing_is_kept(client: FlaskClient, app: Flask, files: SampleFiles,
                                              edit: object, message: str) -> None:
    response = upload(client, edit(files.encrypted.read_bytes()))  # type: ignore[operator]
    assert response.status_code == 400
    assert error_text(response.text) == message
    storage = services(app).storage
    assert all_bytes_under(storage.root) == b""
    with services(app).db.session() as db:
        assert db.scalars(select(Submission)).all() == []


def test_kommunenummer_mismatch(app: Flask, files: SampleFiles) -> None:
    new_account(app, OTHER)
    client = app.test_client()
    login(client, OTHER)
    response = upload(client, files.encrypted.read_bytes())
    text = error_text(response.text)
    assert response.status_code == 400
    assert "0301" in text and "1103" in text and "krypter filen på nytt" in text


def test_cleartext_file_refused_and_absent_from_disk_and_log(
    client: FlaskClient, app: Flask, files: SampleFiles, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    cleartext = files.cleartext.read_bytes()
    response = upload(client, cleartext, "iplos.xml")
    assert response.status_code == 422
    assert error_text(response.text) == FORMAT
    instance = services(app).config.instance_dir
    assert files.fodselsnummer.encode() not in all_bytes_under(instance)
    assert all_bytes_under(services(app).storage.root) == b""
    assert files.fodselsnummer not in caplog.text
    assert files.fodselsnummer not in response.text


def test_upload_without_csrf_token_is_refused_before_storing(
    client: FlaskClient, app: Flask, files: SampleFiles
) -> None:
    response = upload(client, files.encrypted.read_bytes(), token="")
    assert response.status_code == 400
    assert "Skjemaet er utløpt" in error_text(response.text)
    assert all_bytes_under(services(app).storage.root) == b""


def test_upload_requires_login(app: Flask, files: SampleFiles) -> None:
    response = app.test_client().post(
        "/send", data={"fil": (io.BytesIO(b"<x/>"), "x.xml")}, content_type="multipart/form-data"
    )
    assert response.status_code == 302
    assert all_bytes_under(services(app).storage.root) == b""


def test_upload_over_the_limit(tmp_path: Path, database_url: str, files: SampleFiles) -> None:
    app = create_app(make_config(tmp_path, database_url, keys=files.keys, max_upload_bytes=4000))
    new_account(app)
    client = app.test_client()
    login(client)
    response = upload(client, files.encrypted.read_bytes())
    assert response.status_code == 413
    assert "for stor" in error_text(response.text)
    assert all_bytes_under(services(app).storage.root) == b""
    services(app).db.dispose()


def test_identical_file_is_flagged_before_it_is_sent_again(
    client: FlaskClient, app: Flask, files: SampleFiles
) -> None:
    data = files.encrypted.read_bytes()
    first = upload(client, data)
    assert first.status_code == 303
    second = upload(client, data)
    assert "/bekreft" in second.headers["Location"]
    page = client.get(second.headers["Location"]).text
    assert "sendt før" in page
    with services(app).db.session() as db:
        assert len(db.scalars(select(OutboxItem)).all()) == 1  # not queued yet
    token = csrf_token(page)
    sent = client.post(second.headers["Location"], data={"csrf_token": token, "send": "1"})
    assert "/kvittering/" in sent.headers["Location"]
    assert "Sending utført" in client.get(sent.headers["Location"]).text
    with services(app).db.session() as db:
        assert len(db.scalars(select(OutboxItem)).all()) == 2
    third = upload(client, data)
    page = client.get(third.headers["Location"]).text
    cancelled = client.post(third.headers["Location"],
                            data={"csrf_token": csrf_token(page), "cancel": "1"})
    assert cancelled.status_code == 303
    with services(app).db.session() as db:
        assert len(db.scalars(select(Submission)).all()) == 2


def test_receipt_of_another_account_is_not_shown(app: Flask, client: FlaskClient,
                                                 files: SampleFiles) -> None:
    location = upload(client, files.encrypted.read_bytes()).headers["Location"]
    new_account(app, OTHER)
    other = app.test_client()
    login(other, OTHER)
    assert other.get(location).status_code == 404


def test_downloads(app: Flask, tmp_path: Path) -> None:
    client = app.test_client()
    missing = client.get("/last-ned/ipis-krypt.html")
    assert missing.status_code == 404
    assert "make page" in missing.text
    config = services(app).config
    config.key_file.parent.mkdir(parents=True, exist_ok=True)
    config.key_file.write_bytes(b"<IPLOSKrypteringsnokler/>")
    assert client.get("/last-ned/nokkelfil.xml").data == b"<IPLOSKrypteringsnokler/>"


def test_login_and_upload_over_https(app: Flask, files: SampleFiles) -> None:
    """Behind the TLS proxy: Flask-WTF's strict HTTPS check passes for our own forms."""
    new_account(app)
    client = app.test_client()
    base = "https://ipis.example"
    token = csrf_token(client.get("/logg-inn", base_url=base).text)
    response = client.post(
        "/logg-inn", base_url=base, headers={"Referer": base + "/logg-inn"},
        data={"csrf_token": token, "kommunenummer": "0301", "bydelsnummer": "00",
              "organisasjonsnummer": "922542570", "pin": "12345678"},
    )
    assert response.status_code == 302
    token = csrf_token(client.get("/send", base_url=base).text)
    sent = client.post(
        "/send", base_url=base, headers={"Referer": base + "/send"},
        data={"csrf_token": token, "fil": (io.BytesIO(files.encrypted.read_bytes()), "f.xml")},
        content_type="multipart/form-data",
    )
    assert sent.status_code == 303
    assert "Strict-Transport-Security" in sent.headers


def test_body_cut_off_inside_the_file_keeps_nothing(client: FlaskClient, app: Flask,
                                                    files: SampleFiles) -> None:
    token = csrf_token(client.get("/send").text)
    data = files.encrypted.read_bytes()
    body = (
        b"--b\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n"
        + token.encode()
        + b"\r\n--b\r\nContent-Disposition: form-data; name=\"fil\"; filename=\"f.xml\"\r\n"
        b"Content-Type: text/xml\r\n\r\n"
        + data[: len(data) // 2]
    )
    response = client.post("/send", data=body, content_type="multipart/form-data; boundary=b")
    assert response.status_code == 400
    assert "avbrutt" in error_text(response.text)
    assert all_bytes_under(services(app).storage.root) == b""


def test_stale_incoming_leftovers_are_removed_live_ones_kept(app: Flask) -> None:
    """Dead leftovers go at once, whatever their age; a live upload (it holds the lock of its
    file) stays, however old; a file still being created (dot-name) gets its grace."""
    import fcntl
    import os
    import time

    storage = services(app).storage
    stale = storage.incoming / "gammel.part"
    live = storage.incoming / "levende.part"
    fresh_dead = storage.incoming / "fersk.part"
    creating = storage.incoming / ".ny.new"
    for path in (stale, live, fresh_dead, creating):
        path.write_bytes(b"x")
    old = time.time() - 7200
    os.utime(stale, (old, old))
    os.utime(live, (old, old))
    with live.open("rb") as holder:
        fcntl.flock(holder.fileno(), fcntl.LOCK_EX)
        assert storage.clear_incoming() == 2
        assert not stale.exists() and live.exists()
        assert not fresh_dead.exists() and creating.exists()
    assert storage.clear_incoming() == 1 and not live.exists()


def test_worker_clears_dead_partial_uploads_periodically(tmp_path: Path,
                                                         database_url: str) -> None:
    import threading

    from server_testlib import wait_until

    from ipis_server.send.outbox import Worker

    app = create_app(make_config(tmp_path, database_url, incoming_sweep_seconds=0.05,
                                 worker_poll_seconds=0.05))
    storage = services(app).storage
    stop = threading.Event()
    thread = threading.Thread(target=Worker(services(app)).run, args=(stop,))
    thread.start()
    try:
        dead = storage.incoming / "krasjet.part"
        dead.write_bytes(b"x")
        wait_until(lambda: not dead.exists(), 30, "the worker's sweep")
    finally:
        stop.set()
        thread.join(10)
        services(app).db.dispose()


def test_old_session_cookie_dies_when_the_browser_logs_in_again(app: Flask) -> None:
    new_account(app)
    client = app.test_client()
    login(client)
    first = client.get_cookie("ipis_sesjon")
    assert first is not None
    login(client)  # a second login in the same browser: a new session id
    replay = app.test_client()
    replay.set_cookie("ipis_sesjon", first.value)
    assert replay.get("/send").status_code == 302
    assert client.get("/send").status_code == 200
