"""The real register: ``ipis register serve`` as its own process on loopback, on SQLite and
PostgreSQL, driven as the TPF and the staff drive it (HTTP), with the command line beside it.

Loading, refusing (a swapped record, a downgrade at the door), the staff's overview behind its
login, the export; and afterwards every input fødselsnummer searched for, as text, in every
file of the instance folder (database, storage), in the server's log and in every table: none.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pseudonymised_writer as pw
import pytest
import requests
from register_testlib import (
    KeySet,
    RunningRegister,
    all_text,
    demo_input,
    encrypt,
    files_text,
    input_persons,
    make_keys,
    message,
    new_id,
    start_register,
    with_options,
)
from server_testlib import csrf_token, ipis

from ipis_server.db import open_database

PASSWORD = "et langt passord for testen"


@pytest.fixture(scope="module")
def today_keys(tmp_path_factory: pytest.TempPathFactory) -> KeySet:
    """Keys valid today: the server checks the date it runs on."""
    return make_keys(tmp_path_factory.mktemp("dagens-nokler"), dt.date.today())


@pytest.fixture
def register(tmp_path: Path, database_url: str, today_keys: KeySet) -> Iterator[RunningRegister]:
    running = start_register(tmp_path / "register", today_keys, database_url)
    try:
        yield running
    finally:
        running.stop()


def test_the_real_register(register: RunningRegister, today_keys: KeySet, database_url: str,
                           tmp_path: Path) -> None:
    plain = demo_input(80, seed=3)
    encrypted = encrypt(plain, today_keys, dt.date.today())
    numbers = [p.fodselsnummer for p in input_persons(plain)]

    good = new_id()
    data = message(encrypted, today_keys, good)
    stored = register.put(good, data)
    assert stored.status_code == 202 and stored.json() == {"status": "behandles"}
    assert register.put(good, data).status_code == 202  # the same again: a no-op
    assert register.final(good) == {"status": "lastet", "personer": 80,
                                    "melding": "Lastet i registeret: 80 personposter."}

    def swap(persons: list[pw.OutPerson]) -> list[pw.OutPerson]:
        persons[0].encrypted, persons[1].encrypted = persons[1].encrypted, persons[0].encrypted
        return persons

    swapped = new_id()
    assert register.put(swapped, message(encrypted, today_keys, swapped,
                                         with_options(persons=swap))).status_code == 202
    assert register.final(swapped)["melding"] == (
        "Personposten med løpenummer 1 inneholder posten med løpenummer 2: postene er byttet "
        "om eller flyttet.")
    def flip(blob: bytes) -> bytes:
        return blob[:100] + bytes([blob[100] ^ 1]) + blob[101:]

    altered = new_id()
    assert register.put(altered, message(encrypted, today_keys, altered,
                                         with_options(tamper_ciphertext=flip))).status_code == 202
    assert register.final(altered) == {"status": "avvist", "melding": (
        "Det pseudonymiserte laget kunne ikke dekrypteres: filen er endret eller skadet.")}
    downgraded = new_id()
    refused = register.put(downgraded, message(encrypted, today_keys, downgraded,
                                               with_options(layer_algorithm=pw.AES256_CBC)))
    assert refused.status_code == 400 and "krypteringsalgoritme" in refused.json()["melding"]

    # The staff's overview, behind its own login.
    ipis("register", "user", "add", "--brukernavn", "kari", "--navn", "Kari Statistiker",
         "--passord-stdin", "--instance", str(register.instance), stdin=PASSWORD + "\n",
         env=register.env)
    session = requests.Session()
    assert session.get(register.url + "/oversikt", allow_redirects=False).status_code == 302
    login_page = session.get(register.url + "/logg-inn")
    headers = login_page.headers
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY" and headers["X-Content-Type-Options"] == "nosniff"
    wrong = session.post(register.url + "/logg-inn", data={
        "csrf_token": csrf_token(login_page.text), "brukernavn": "kari", "passord": "feil"})
    assert wrong.status_code == 401
    no_csrf = session.post(register.url + "/logg-inn",
                           data={"brukernavn": "kari", "passord": PASSWORD})
    assert no_csrf.status_code == 400
    token = csrf_token(session.get(register.url + "/logg-inn").text)
    logged_in = session.post(register.url + "/logg-inn", data={
        "csrf_token": token, "brukernavn": "kari", "passord": PASSWORD})
    assert logged_in.status_code == 200 and logged_in.url.endswith("/oversikt")
    page = session.get(register.url + "/oversikt?aar=2025")
    assert page.headers["Cache-Control"] == "no-store"
    text = page.text
    assert "<script" not in text and "style=" not in text
    oslo = re.search(r'<tr class="status-levert">\s*<th scope="row">0301</th>\s*'
                     r"<td>Oslo - Oslove</td>\s*<td>Levert", text)
    assert oslo, text[:3000]
    assert re.search(r"<th scope=\"row\">1103</th>\s*<td>Stavanger</td>\s*<td>Mangler", text)
    assert ">80<" in text  # persons counted

    export = tmp_path / "eksport.csv"
    out = ipis("register", "export", "--instance", str(register.instance), "--out",
               str(export), env=register.env)
    assert out.stdout.strip() == f"Skrev 80 rader til {export}"
    assert len(export.read_text(encoding="utf-8").splitlines()) == 81

    # Privacy: not one input number anywhere the register keeps anything.
    register.stop()
    found_in_files = files_text(register.instance) + register.log.read_bytes()
    database = open_database(database_url if not database_url.startswith("sqlite")
                             else f"sqlite:///{register.instance / 'register.db'}")
    try:
        tables = all_text(database)
    finally:
        database.dispose()
    assert numbers and len(tables) > 10_000
    for number in numbers:
        assert number.encode() not in found_in_files
        assert number not in tables
        assert number.encode() not in export.read_bytes()


def test_file_based_load(tmp_path: Path, keys: KeySet, encrypted: bytes) -> None:
    """``ipis register load`` with a §4 file (as ``ipis tpf process`` writes it) and a §6
    mapping file; each loaded once; a refused file says why, exit status 1."""
    instance = tmp_path / "register"
    env = {k: v for k, v in os.environ.items() if not k.startswith("IPIS_")}
    ipis("keys", "install", "--party", "register", "--instance", str(instance), "--from",
         str(keys.folder), env=env)
    submission = new_id()
    good = tmp_path / "pseudonymisert.xml"
    good.write_bytes(message(encrypted, keys, submission))
    bad = tmp_path / "byttet.xml"
    bad.write_bytes(message(encrypted, keys, new_id(), with_options(count=3)))
    day = "--today", "2026-06-02"
    first = ipis("register", "load", str(good), "--instance", str(instance), *day, env=env)
    assert first.stdout.strip() == (
        f"{good} (innsending {submission}): Lastet i registeret: 120 personposter.")
    again = ipis("register", "load", str(good), "--instance", str(instance), *day, env=env)
    assert again.stdout == first.stdout  # loaded once: the first outcome
    refused = ipis("register", "load", str(bad), "--instance", str(instance), *day, env=env,
                   check=False)
    assert refused.returncode == 1
    assert "avvist. Leveransen fra TPF oppgir 3 personer, men har 120." in refused.stderr
    mapping = tmp_path / "bytte.xml"
    mapping.write_bytes(pw.write_mapping(keys.register_private.public_key(), "iplos-2026",
                                         new_id(), "tpf-h1", "tpf-h2", []))
    applied = ipis("register", "load", str(mapping), "--instance", str(instance), *day,
                   env=env)
    assert "Pseudonymbyttet er utført: 0 personposter" in applied.stdout
    listing = ipis("register", "export", "--instance", str(instance), "--out",
                   str(tmp_path / "ut.parquet"), env=env)
    assert listing.stdout.startswith("Skrev 120 rader")
