"""The staff's delivery overview and its login, through the Flask test client on SQLite and
PostgreSQL: every kommune and bydel with its state, persons and last delivery; the chart; the
login's CSRF, lockout and sessions; the staff accounts."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from register_testlib import (
    RECEIVED,
    TODAY,
    KeySet,
    demo_input,
    encrypt,
    message,
    new_id,
    stream,
    with_options,
)
from server_testlib import csrf_token

from ipis_server.register.app import create_app
from ipis_server.register.config import RegisterConfig
from ipis_server.register.loading import load_delivery
from ipis_server.register.overview import build
from ipis_server.register.services import register_services
from ipis_server.register.staff import (
    StaffExists,
    StaffInputError,
    add_user,
    reset_password,
    set_active,
)

PASSWORD = "korrekt hest batteri stift"


@pytest.fixture
def app(config: RegisterConfig) -> Iterator[Flask]:
    application = create_app(config, today=lambda: TODAY)
    application.testing = True
    with register_services(application).db.session() as db:
        add_user(db, "kari", "Kari Statistiker", PASSWORD)
    yield application
    register_services(application).dispose()


def login(client: FlaskClient, password: str = PASSWORD, user: str = "kari") -> int:
    token = csrf_token(client.get("/logg-inn").text)
    answer = client.post("/logg-inn", data={"csrf_token": token, "brukernavn": user,
                                            "passord": password})
    return answer.status_code


def _sender(kommune: str, bydel: str = "00", persons: int = 20, seed: int = 1,
            period: tuple[str, str] | None = None) -> bytes:
    data = demo_input(persons, kommune, seed, period)
    return data.replace(b"<Bydelsnummer>00</Bydelsnummer>",
                        f"<Bydelsnummer>{bydel}</Bydelsnummer>".encode())


def _load(app: Flask, keys: KeySet, plain: bytes, refuse: bool = False,
          received: dt.datetime = RECEIVED) -> None:
    svc = register_services(app)
    submission = new_id()
    options = with_options(count=1) if refuse else None
    data = message(encrypt(plain, keys), keys, submission, options)
    outcome = load_delivery(svc.db, svc.keyring, stream(data), submission, received, TODAY)
    assert outcome.loaded != refuse, outcome.message


@pytest.fixture
def year_2025(app: Flask, keys: KeySet) -> Flask:
    _load(app, keys, _sender("0301", persons=30))
    _load(app, keys, _sender("0301", persons=12, period=("2024-01-01", "2024-12-31")))
    _load(app, keys, _sender("4601", "01", persons=15))
    _load(app, keys, _sender("1103", persons=5), refuse=True)
    _load(app, keys, _sender("9990", persons=3))
    return app


def test_the_overview_counts_each_kommune_and_bydel(year_2025: Flask) -> None:
    with register_services(year_2025).db.session() as db:
        data = build(db, 2025)
    lines = {k.line.unit.kommunenummer: k for k in data.kommuner}
    assert len(lines) == 357
    oslo = lines["0301"]
    assert (oslo.line.state, oslo.line.persons) == ("levert", 30)
    assert oslo.line.last_delivery == RECEIVED
    assert {b.state for b in oslo.bydeler} == {"dekket"} and len(oslo.bydeler) == 17
    bergen = lines["4601"]
    assert (bergen.line.state, bergen.line.persons) == ("delvis", 15)
    assert [(b.unit.bydelsnummer, b.state) for b in bergen.bydeler][:2] == [
        ("01", "levert"), ("02", "mangler")]
    stavanger = lines["1103"].line
    assert stavanger.state == "avvist"
    assert stavanger.message == (
        "Leveransen fra TPF oppgir 1 personer, men har 5. Innsendingen er avvist.")
    assert lines["5001"].line.state == "mangler"
    assert all(b.state == "mangler" for b in lines["5001"].bydeler)
    assert [(u.unit.kommunenummer, u.state, u.persons) for u in data.unknown] == [
        ("9990", "levert", 3)]
    assert data.count("levert") == 1 and data.count("avvist") == 1 and data.count("delvis") == 1
    assert data.persons_per_year == [(2024, 12), (2025, 30 + 15 + 3)]
    assert data.years == [2025, 2024]


def test_the_page_behind_the_login(year_2025: Flask) -> None:
    client = year_2025.test_client()
    assert client.get("/oversikt").status_code == 302  # to the login
    assert login(client) == 302
    page = client.get("/oversikt?aar=2025")
    assert page.status_code == 200
    html = page.text
    assert page.headers["Cache-Control"] == "no-store"
    assert "<script" not in html and " style=" not in html and "onclick" not in html
    assert re.search(r'<th scope="row">1103</th>\s*<td>Stavanger</td>\s*<td>Avvist'
                     r"<details><summary>Årsak</summary><p>Leveransen fra TPF oppgir 1 personer",
                     html)
    assert re.search(r'<th scope="row">4601 01</th>\s*<td>Arna \(bydel\)</td>\s*<td>Levert</td>'
                     r'\s*<td class="tall">15</td>\s*<td>02.06.2026</td>', html)
    assert '<svg role="img" aria-labelledby="diagram-tittel diagram-beskrivelse"' in html
    assert "2024: 12 personer. 2025: 48 personer." in html
    assert html.count("<rect ") == 2
    assert '<option value="2024">2024</option>' in html
    other_year = client.get("/oversikt?aar=2024").text
    assert re.search(r'<th scope="row">0301</th>\s*<td>Oslo - Oslove</td>\s*<td>Levert', other_year)
    assert client.get("/oversikt?aar=1066").status_code == 400
    assert client.get("/oversikt?aar=tjue").status_code == 400


def test_login_csrf_lockout_and_logout(app: Flask) -> None:
    client = app.test_client()
    no_token = client.post("/logg-inn", data={"brukernavn": "kari", "passord": PASSWORD})
    assert no_token.status_code == 400
    for _ in range(5):
        assert login(client, "feil passord") == 401
    # Locked: the right password is refused too, with the same words.
    assert login(client) == 401
    with register_services(app).db.session() as db:
        set_active(db, "kari", True)  # an administrator unlocks
    assert login(client) == 302
    assert client.get("/oversikt").status_code == 200
    token = csrf_token(client.get("/oversikt").text)
    assert client.post("/logg-ut", data={"csrf_token": token}).status_code == 302
    assert client.get("/oversikt").status_code == 302


def test_a_new_password_and_disabling_end_the_sessions(app: Flask) -> None:
    first, second = app.test_client(), app.test_client()
    assert login(first) == 302 and login(second) == 302
    with register_services(app).db.session() as db:
        new = reset_password(db, "kari")
    assert first.get("/oversikt").status_code == 302
    assert login(first, new) == 302
    with register_services(app).db.session() as db:
        set_active(db, "kari", False)
    assert first.get("/oversikt").status_code == 302
    assert login(first, new) == 401


def test_staff_accounts_are_checked(app: Flask) -> None:
    with register_services(app).db.session() as db:
        with pytest.raises(StaffExists):
            add_user(db, "Kari", "En annen Kari", "et annet langt passord")
        with pytest.raises(StaffInputError):
            add_user(db, "ola", "Ola", "kort")
        with pytest.raises(StaffInputError):
            add_user(db, "1ola", "Ola", "et langt nok passord")
        user, generated = add_user(db, "ola", "Ola")
        assert len(generated) >= 20 and user.passord_hash.startswith("$argon2id$")
        assert generated not in user.passord_hash
