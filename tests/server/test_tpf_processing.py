"""The TPF's processing, in process, on SQLite and PostgreSQL: invalid numbers counted and not
passed on, the records passing through unchanged, a changed sender refused, an altered TPF
layer refused with no output kept, keys outside the overlap refused at the door, and no
fødselsnummer at rest anywhere in the instance, its database or its log."""

from __future__ import annotations

import base64
import io
import logging
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from server_testlib import files_under, ipis
from sqlalchemy import select, text
from tpf_testlib import (
    DAY,
    cleartext,
    delivered_to_register,
    encrypt,
    hmac_pseudonym,
    impossible_date,
    install_keys,
    new_id,
    numbers_of,
    open_pseudonymised,
    put_client,
    tpf_app,
    tpf_config,
    wrong_check_digits,
    yearly_keys,
)

from ipis_core import decrypt
from ipis_core.decrypt import RegisterOpener, TpfPerson
from ipis_core.envelope import WrappedKey
from ipis_core.faults import LayerAltered, SenderAltered
from ipis_server.tpf import create_app
from ipis_server.tpf.models import PseudonymSecret, Submission
from ipis_server.tpf.services import tpf_services
from ipis_server.tpf.worker import TpfWorker

PERSONS = 10
INVALID_AT = {2: "check digits", 5: "date"}


@pytest.fixture
def tpf(tmp_path: Path, database_url: str) -> Iterator[Flask]:
    app = tpf_app(tmp_path, database_url)
    yield app
    tpf_services(app).dispose()


def _with_invalid_numbers() -> bytes:
    plain = cleartext(PERSONS, seed=21)
    numbers = numbers_of(plain)
    return cleartext(PERSONS, seed=21, replace={2: wrong_check_digits(numbers[2]),
                                                5: impossible_date()})


def _status(app: Flask, submission_id: str) -> tuple[int, dict[str, object]]:
    response = app.test_client().get(f"/innsendinger/{submission_id}",
                                      headers={"Authorization": "Bearer " + _token(app)})
    return response.status_code, response.get_json()


def _token(app: Flask) -> str:
    return tpf_services(app).config.tokens[0]


def _secret(app: Flask) -> bytes:
    return tpf_services(app).secrets.load("tpf-h1")


def test_invalid_numbers_counted_and_not_passed_on(tpf: Flask) -> None:
    keys = yearly_keys()
    plain = _with_invalid_numbers()
    numbers = numbers_of(plain)
    encrypted = encrypt(plain, keys[2026].key_file)
    submission_id = new_id()
    client = tpf.test_client()
    assert put_client(client, submission_id, encrypted).status_code == 202
    assert _status(tpf, submission_id) == (202, {"status": "behandles"})
    assert TpfWorker(tpf_services(tpf)).drain() >= 1  # processed, delivered to the folder
    assert _status(tpf, submission_id) == (200, {
        "status": "levert", "personer": PERSONS, "ugyldigeFodselsnumre": 2})
    [delivered] = delivered_to_register(tpf_services(tpf).config.instance_dir)
    assert delivered.name == f"{submission_id}.xml"
    opened = open_pseudonymised(delivered.read_bytes(), keys[2026].private("register"))
    assert opened.key_name == "iplos-2026"
    assert opened.clear.findtext("Avsender/Kommunenummer") == "0301"
    assert opened.clear.find("Avsender/Fagsystem") is None
    content = opened.content
    assert content.get("innsendingId") == submission_id
    assert b"<Fodselsnummer" not in opened.content_xml
    for number in numbers:
        assert number.encode() not in opened.content_xml
    marker = content.find("Pseudonymisering")
    assert marker is not None
    assert marker.attrib == {"hemmelighetId": "tpf-h1", "antallPersoner": str(PERSONS),
                             "ugyldigeFodselsnumre": "2"}
    secret = _secret(tpf)
    persons = opened.persons()
    assert [p.get("lopenummer") for p in persons] == [str(n) for n in range(1, PERSONS + 1)]
    for index, person in enumerate(persons):
        if index in INVALID_AT:
            assert person.attrib == {"lopenummer": str(index + 1), "ugyldigFodselsnummer": "ja"}
        else:
            assert person.get("pseudonym") == hmac_pseudonym(secret, numbers[index])
    # The register can open every record and the binding holds across the TPF.
    ns = {"xenc": "http://www.w3.org/2001/04/xmlenc#", "ds": "http://www.w3.org/2000/09/xmldsig#"}
    key = content.find("xenc:EncryptedKey", ns)
    assert key is not None and key.get("Id") == "registernokkel"
    wrapped = WrappedKey(
        key.findtext("ds:KeyInfo/ds:KeyName", "", ns), "registerlag",
        base64.b64decode(key.findtext("xenc:CipherData/xenc:CipherValue", "", ns)))
    control = base64.b64decode(content.findtext(
        "Registerkontroll/xenc:EncryptedData/xenc:CipherData/xenc:CipherValue", "", ns))
    opener = RegisterOpener(keys[2026].private("register"), wrapped, control)
    original = decrypt.open_message(io.BytesIO(encrypted), keys[2026].private("tpf"),
                                    keys[2026].private("register"))
    for person, record in zip(persons, original.records, strict=True):
        cipher = base64.b64decode(person.findtext(
            "xenc:EncryptedData/xenc:CipherData/xenc:CipherValue", "", ns))
        assert opener.open(int(person.get("lopenummer", "0")), cipher).person_xml \
            == record.person_xml
    opener.finish()


def test_changed_sender_is_refused_and_nothing_kept(tpf: Flask) -> None:
    keys = yearly_keys()
    encrypted = encrypt(cleartext(3, seed=5), keys[2026].key_file)
    changed = encrypted.replace(b"<Kommunenummer>0301</Kommunenummer>",
                                b"<Kommunenummer>1103</Kommunenummer>", 1)
    assert changed != encrypted
    submission_id = new_id()
    assert put_client(tpf.test_client(), submission_id, changed).status_code == 202
    TpfWorker(tpf_services(tpf)).drain()
    code, body = _status(tpf, submission_id)
    assert code == 200 and body["status"] == "avvist"
    assert str(body["melding"]).startswith(
        "Avsenderen i klartekst (kommunenummer 1103, bydelsnummer 00) er ikke den samme som den "
        "krypterte avsenderen i filen")
    _assert_no_output(tpf)


def test_altered_tpf_layer_is_refused_and_no_output_kept(tpf: Flask) -> None:
    keys = yearly_keys()
    encrypted = encrypt(cleartext(40, seed=6), keys[2026].key_file)
    start = encrypted.rindex(b"<xenc:CipherValue>") + len(b"<xenc:CipherValue>")
    end = encrypted.index(b"</xenc:CipherValue>", start)
    at = start + (end - start) * 3 // 4  # deep in the persons: the output was well under way
    altered = encrypted[:at] + (b"A" if encrypted[at:at + 1] != b"A" else b"B") + encrypted[at + 1:]
    submission_id = new_id()
    assert put_client(tpf.test_client(), submission_id, altered).status_code == 202
    TpfWorker(tpf_services(tpf)).drain()
    code, body = _status(tpf, submission_id)
    assert (code, body["status"]) == (200, "avvist")
    assert body["melding"] == LayerAltered("TPF-laget").message
    _assert_no_output(tpf)


def _assert_no_output(app: Flask) -> None:
    svc = tpf_services(app)
    assert delivered_to_register(svc.config.instance_dir) == []
    assert files_under(svc.outputs.root) == []  # not even a temporary file


def test_keys_at_the_door(tmp_path: Path, database_url: str) -> None:
    """Outside the overlap: refused before the upload finishes, with the message naming the
    key and the date; a key the TPF never held: the format message for an unknown key."""
    import datetime as dt

    keys = yearly_keys()
    instance = tmp_path / "tpf"
    install_keys(instance, keys[2024], keys[2025], keys[2026])
    day = dt.date(2027, 2, 1)
    app = create_app(tpf_config(instance, database_url), today=lambda: day)
    client = app.test_client()
    old = put_client(client, new_id(), encrypt(cleartext(3), keys[2025].key_file))
    assert old.status_code == 400
    assert old.get_json() == {"melding": (
        "Filen er kryptert med nøkkelen tpf-2025, som gjaldt til og med 2026-11-30. Filer "
        "kryptert med den ble tatt imot til og med 2027-01-31. Hent gjeldende nøkkelfil fra "
        "SSB, og krypter IPLOS-datafilen på nytt.")}
    assert put_client(client, new_id(), encrypt(cleartext(3), keys[2026].key_file)).status_code \
        == 202
    from tpf_testlib import make_key_set

    unknown = make_key_set(tmp_path / "ukjent", dt.date(2023, 12, 1))  # tpf-2023: never held
    refused = put_client(client, new_id(), encrypt(cleartext(3), unknown.key_file))
    assert refused.status_code == 400
    assert "filen er kryptert med en nøkkel som ikke er i bruk" in refused.get_json()["melding"]
    impostor = make_key_set(tmp_path / "falsk", dt.date(2026, 12, 1))  # tpf-2026, another key
    wrong = put_client(client, new_id(), encrypt(cleartext(3), impostor.key_file))
    assert wrong.status_code == 400
    assert wrong.get_json()["melding"].startswith("Nøkkelen til TPF-laget kunne ikke dekrypteres")
    svc = tpf_services(app)
    with svc.db.session() as db:
        assert len(db.scalars(select(Submission)).all()) == 1
    assert len(files_under(svc.inputs.stored)) == 1 and files_under(svc.inputs.incoming) == []
    svc.dispose()
    # The previous year's key during the overlap: taken in.
    during = create_app(tpf_config(tmp_path / "tpf2", database_url), today=lambda: DAY)
    install_keys(tmp_path / "tpf2", keys[2025], keys[2026])
    assert put_client(during.test_client(), new_id(),
                      encrypt(cleartext(3), keys[2025].key_file)).status_code == 202
    tpf_services(during).dispose()


def test_no_fodselsnummer_at_rest_in_instance_database_or_log(
        tpf: Flask, caplog: pytest.LogCaptureFixture) -> None:
    keys = yearly_keys()
    caplog.set_level(logging.DEBUG)
    plain = _with_invalid_numbers()
    numbers = numbers_of(plain)
    client = tpf.test_client()
    encrypted = encrypt(plain, keys[2025].key_file)
    assert put_client(client, new_id(), encrypted).status_code == 202
    altered = encrypted.replace(b"<Kommunenummer>0301</Kommunenummer>",
                                b"<Kommunenummer>1103</Kommunenummer>", 1)
    assert put_client(client, new_id(), altered).status_code == 202
    svc = tpf_services(tpf)
    TpfWorker(svc).drain()
    _assert_nowhere(tpf, numbers, caplog.text)


def _assert_nowhere(app: Flask, numbers: list[str], log_text: str) -> None:
    svc = tpf_services(app)
    found = [(path, n) for path in files_under(svc.config.instance_dir) for n in numbers
             if n.encode() in path.read_bytes()]
    assert found == []
    with svc.db.session() as db:
        for table in ("submissions", "register_outbox", "pseudonym_secrets",
                      "pseudonym_aliases"):
            dump = repr(db.execute(text(f"SELECT * FROM {table}")).all())
            for number in numbers:
                assert number not in dump, table
    for number in numbers:
        assert number not in log_text


def test_an_unexpected_error_logs_its_type_only(tpf: Flask,
                                                caplog: pytest.LogCaptureFixture,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug whose message quotes a number must not put it in the log or the database."""
    keys = yearly_keys()
    caplog.set_level(logging.DEBUG)
    plain = cleartext(4, seed=8)
    numbers = numbers_of(plain)

    from ipis_server.tpf import pseudonyms

    def broken(self: object, number: str) -> str:
        raise ValueError(f"klarte ikke {number}")

    monkeypatch.setattr(pseudonyms.Pseudonymiser, "__call__", broken)
    submission_id = new_id()
    assert put_client(tpf.test_client(), submission_id, encrypt(plain, keys[2026].key_file)) \
        .status_code == 202
    TpfWorker(tpf_services(tpf)).processing.process_one()
    svc = tpf_services(tpf)
    with svc.db.session() as db:
        row = db.scalar(select(Submission).where(Submission.innsending_id == submission_id))
        assert row is not None and row.last_error == "ValueError" and row.done_at is None
    assert "ValueError" in caplog.text
    _assert_nowhere(tpf, numbers, caplog.text)
    assert files_under(svc.outputs.root) == []
    assert "12345678901" not in repr(TpfPerson(1, "12345678901", b""))


def test_a_rotation_during_processing_is_retried_not_refused(
        tpf: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """The secret changed state while a file was processed: its output is dropped and the
    file processed again (under the new secret), never sent under a retired one."""
    from sqlalchemy import update

    from ipis_server.tpf import worker as worker_module

    keys = yearly_keys()
    submission_id = new_id()
    put_client(tpf.test_client(), submission_id, encrypt(cleartext(2), keys[2026].key_file))
    svc = tpf_services(tpf)
    real = worker_module.pseudonymise

    def rotated_meanwhile(*args: object, **kwargs: object) -> object:
        result = real(*args, **kwargs)  # type: ignore[arg-type]
        with svc.db.session() as db:
            db.execute(update(PseudonymSecret).values(state="roterer"))
            db.commit()
        return result

    monkeypatch.setattr(worker_module, "pseudonymise", rotated_meanwhile)
    TpfWorker(svc).processing.process_one()
    with svc.db.session() as db:
        row = db.scalar(select(Submission).where(Submission.innsending_id == submission_id))
        assert row is not None
        assert (row.status, row.done_at) == ("behandles", None)
        assert row.last_error == "pseudonymhemmeligheten ble byttet under behandlingen"
    assert files_under(svc.outputs.root) == []


def test_process_command_writes_whole_or_nothing(tmp_path: Path) -> None:
    keys = yearly_keys()
    instance = tmp_path / "tpf"
    install_keys(instance, keys[2026])
    from ipis_server.tpf.pseudonyms import SecretStore

    store = SecretStore(tmp_path / "hemmelighet")
    store.create("tpf-h3")
    plain = _with_invalid_numbers()
    numbers = numbers_of(plain)
    source = tmp_path / "inn.xml"
    source.write_bytes(encrypt(plain, keys[2026].key_file))
    out = tmp_path / "ut" / "pseudonymisert.xml"
    out.parent.mkdir()
    options = ["--keys-dir", str(instance / "nokler"), "--secret", str(store.path("tpf-h3")),
               "--register-key-file", str(keys[2026].folder / "nokkelfil.xml"), "--today",
               "2026-12-10", "--test-numbers"]
    done = ipis("tpf", "process", str(source), str(out), *options)
    assert "Antall personer: 10" in done.stdout
    assert "Ugyldige fødselsnumre (ikke sendt videre): 2" in done.stdout
    assert "Pseudonymhemmelighet: tpf-h3" in done.stdout
    for number in numbers:
        assert number not in done.stdout + done.stderr
    opened = open_pseudonymised(out.read_bytes(), keys[2026].private("register"))
    sha = re.search(r"SHA-256: ([0-9a-f]{64})", done.stdout)
    import hashlib

    assert sha and sha.group(1) == hashlib.sha256(out.read_bytes()).hexdigest()
    assert opened.persons()[0].get("pseudonym") == hmac_pseudonym(store.load("tpf-h3"),
                                                                   numbers[0])
    # An altered file: refused, no output, no temporary file left beside it.
    damaged = bytearray(source.read_bytes())
    damaged[-200] = ord("A") if damaged[-200] != ord("A") else ord("B")
    source.write_bytes(bytes(damaged))
    out.unlink()
    refused = ipis("tpf", "process", str(source), str(out), *options, check=False)
    assert refused.returncode == 1
    assert refused.stderr.strip() == LayerAltered("TPF-laget").message
    assert list(out.parent.iterdir()) == []
    # Without keys or secret: a Norwegian message, not a traceback.
    missing = ipis("tpf", "process", str(source), str(out), check=False,
                   env={"IPIS_TPF_INSTANCE": ""})
    assert missing.returncode == 1 and "Oppgi --keys-dir" in missing.stderr
    assert isinstance(SenderAltered, type) and subprocess  # imported for the tests above
