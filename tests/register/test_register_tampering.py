"""Tampering, through the register's app (the TPF's PUT, the worker, the TPF's GET), on SQLite
and PostgreSQL: every altered delivery is refused with its own Norwegian message and nothing
of it is loaded. The real server process is in test_register_process.py."""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pseudonymised_writer as pw
import pytest
from flask import Flask
from register_testlib import (
    TODAY,
    KeySet,
    assert_nothing_loaded,
    count,
    deliver_and_load,
    demo_input,
    encrypt,
    get,
    message,
    new_id,
    put,
    register_config,
    sha256,
    with_options,
)

from ipis_server.register.app import create_app
from ipis_server.register.services import register_services

Persons = list[pw.OutPerson]


def test_a_good_delivery_is_loaded(app: Flask, keys: KeySet, encrypted: bytes) -> None:
    submission = new_id()
    body = deliver_and_load(app, message(encrypted, keys, submission), submission)
    assert body == {"status": "lastet", "personer": 120,
                    "melding": "Lastet i registeret: 120 personposter."}
    assert count(register_services(app).db, "personer") == 120


def _swap(persons: Persons) -> Persons:
    persons[0].encrypted, persons[1].encrypted = persons[1].encrypted, persons[0].encrypted
    return persons


def _duplicate(persons: Persons) -> Persons:
    return [*persons, copy.deepcopy(persons[2])]


def _drop(persons: Persons) -> Persons:
    return persons[:4] + persons[5:]


def _move(persons: Persons) -> Persons:
    persons[3].encrypted = persons[1].encrypted  # person 2's record under person 4
    return [p for p in persons if p.lopenummer != "2"]


def _cbc(persons: Persons) -> Persons:
    method = persons[0].encrypted.find("xenc:EncryptionMethod", pw.NS)
    method.set("Algorithm", pw.AES256_CBC)
    return persons


def _flip(blob: bytes) -> bytes:
    middle = len(blob) // 2
    return blob[:middle] + bytes([blob[middle] ^ 1]) + blob[middle + 1 :]


RECORD_CASES: dict[str, tuple[Callable[[Persons], Persons], str]] = {
    "byttet": (_swap, "Personposten med løpenummer 1 inneholder posten med løpenummer 2: "
                      "postene er byttet om eller flyttet."),
    "duplisert": (_duplicate, "Personposten med løpenummer 3 forekommer to ganger."),
    "fjernet": (_drop, "1 personposter mangler (løpenummer 5)."),
    "flyttet": (_move, "Personposten med løpenummer 4 inneholder posten med løpenummer 2: "
                       "postene er byttet om eller flyttet."),
    "cbc i en personpost": (_cbc, "Leveransen fra TPF bruker en krypteringsalgoritme "
                            "registeret ikke godtar (personposten med løpenummer 1: "
                            "xenc:EncryptionMethod/@Algorithm er ikke "
                            "http://www.w3.org/2009/xmlenc11#aes256-gcm). Innsendingen er "
                            "avvist."),
}


@pytest.mark.parametrize("case", list(RECORD_CASES))
def test_tampered_records_are_refused_with_their_own_message(
    app: Flask, keys: KeySet, encrypted: bytes, case: str
) -> None:
    change, expected = RECORD_CASES[case]
    submission = new_id()
    data = message(encrypted, keys, submission, with_options(persons=change))
    body = deliver_and_load(app, data, submission)
    assert body == {"status": "avvist", "melding": expected}
    assert_nothing_loaded(app)
    refused = register_services(app).db
    assert count(refused, "innsendinger", "status = 'avvist' AND kommunenummer = '0301'") == 1


def test_a_record_taken_from_another_file_is_refused(
    app: Flask, keys: KeySet, encrypted: bytes
) -> None:
    other_file = encrypt(demo_input(5, seed=9), keys)  # the same keys: only the file differs
    foreign = pw.open_input(other_file, keys.tpf_private).persons[0].encrypted

    def take(persons: Persons) -> Persons:
        persons[0].encrypted = copy.deepcopy(foreign)
        return persons

    body = deliver_and_load(app, message(encrypted, keys, (s := new_id()),
                                         with_options(persons=take)), s)
    assert body["melding"] == (
        "Personposten med løpenummer 1 kan ikke dekrypteres med denne filens registernøkkel: "
        "den hører til en annen fil, eller den er endret."
    )
    assert_nothing_loaded(app)


def test_the_pseudonymised_layer_altered_is_refused(app: Flask, keys: KeySet,
                                                     encrypted: bytes) -> None:
    submission = new_id()
    data = message(encrypted, keys, submission, with_options(tamper_ciphertext=_flip))
    body = deliver_and_load(app, data, submission)
    assert body["melding"] == (
        "Det pseudonymiserte laget kunne ikke dekrypteres: filen er endret eller skadet."
    )
    assert_nothing_loaded(app)


def test_wrong_private_keys_are_refused(tmp_path: Path, database_url: str, keys: KeySet,
                                         other_keys: KeySet, encrypted: bytes) -> None:
    """The register holds another iplos-2026 than the one the TPF wrapped for; and a file the
    municipality encrypted with another iplos-2026 than the register's."""
    config = register_config(tmp_path, database_url, other_keys)
    app = create_app(config, today=lambda: TODAY)
    try:
        body = deliver_and_load(app, message(encrypted, keys, (s := new_id())), s)
        assert body["melding"] == (
            "Nøkkelen til det pseudonymiserte laget kunne ikke dekrypteres: feil privat nøkkel "
            "(filen er kryptert for iplos-2026), eller filen er endret."
        )
        # The transport key is the register's own; the records' key is another's.
        foreign_input = encrypt(demo_input(10), keys)
        data = pw.write(foreign_input, keys.tpf_private, other_keys.register_private.public_key(),
                        (s := new_id()))
        body = deliver_and_load(app, data, s)
        assert body["melding"] == (
            "Nøkkelen til registerlaget kunne ikke dekrypteres: feil privat nøkkel (filen er "
            "kryptert for iplos-2026), eller filen er endret."
        )
        assert_nothing_loaded(app)
    finally:
        register_services(app).dispose()


DOOR_CASES = {
    "cbc": (with_options(layer_algorithm=pw.AES256_CBC),
            "Leveransen fra TPF bruker en krypteringsalgoritme registeret ikke godtar "
            "(xenc:EncryptionMethod/@Algorithm er ikke http://www.w3.org/2009/xmlenc11#aes256-gcm)"
            ". Innsendingen er avvist."),
    "rsa-1_5": (with_options(key_transport_algorithm=pw.RSA_1_5),
                "Leveransen fra TPF bruker en krypteringsalgoritme registeret ikke godtar "
                "(xenc:EncryptionMethod/@Algorithm er ikke http://www.w3.org/2009/xmlenc11#rsa-oaep)"
                ". Innsendingen er avvist."),
    "ukjent nøkkel": (with_options(transport_key_name="iplos-2019"),
                      "Leveransen fra TPF er kryptert for registernøkkelen iplos-2019, som "
                      "registeret ikke tar imot: registeret har ingen nøkkel med denne id-en. "
                      "TPF må kryptere leveransen for registerets gjeldende nøkkel."),
}


@pytest.mark.parametrize("case", list(DOOR_CASES))
def test_downgrades_and_unknown_keys_are_refused_at_the_door(
    app: Flask, keys: KeySet, encrypted: bytes, case: str
) -> None:
    options, expected = DOOR_CASES[case]
    submission = new_id()
    client = app.test_client()
    answer = put(client, submission, message(encrypted, keys, submission, options))
    assert answer.status_code == 400
    assert answer.get_json() == {"melding": expected}
    assert get(client, submission).status_code == 404  # nothing kept
    assert count(register_services(app).db, "mottak") == 0
    assert_nothing_loaded(app)


def _other_sender(xml: str) -> Any:
    from lxml import etree

    return etree.fromstring(xml)


OTHER = ("<Avsender><Kommunenummer>1103</Kommunenummer><Bydelsnummer>00</Bydelsnummer>"
         "<Organisasjonsnummer>964965226</Organisasjonsnummer></Avsender>")

CONTENT_CASES = {
    "avsender endret i klartekst": (
        lambda: with_options(clear_avsender=_other_sender(OTHER)),
        "Avsenderen i den ukrypterte delen av leveransen er ikke den samme som i "
        "registerkontrollen som krypteringsmodulen skrev. Innsendingen er avvist."),
    "avsender endret begge steder": (
        lambda: with_options(clear_avsender=_other_sender(OTHER),
                             inner_avsender=_other_sender(OTHER)),
        "Avsenderen i leveransen fra TPF er ikke den samme som i registerkontrollen som "
        "krypteringsmodulen skrev. Innsendingen er avvist."),
    "feil antall": (lambda: with_options(count=7),
                    "Leveransen fra TPF oppgir 7 personer, men har 120. Innsendingen er avvist."),
    "feil antall ugyldige": (
        lambda: with_options(invalid_count=2),
        "Leveransen fra TPF oppgir 2 ugyldige fødselsnumre, men har 0. Innsendingen er avvist."),
    "annen innsendings-id": (
        lambda: with_options(submission_id_inside="0" * 32),
        "Leveransen fra TPF er levert under en annen innsendings-id enn den som står i "
        "meldingen. Innsendingen er avvist."),
}


@pytest.mark.parametrize("case", list(CONTENT_CASES))
def test_senders_counts_and_ids_that_disagree_are_refused(
    app: Flask, keys: KeySet, encrypted: bytes, case: str
) -> None:
    make_options, expected = CONTENT_CASES[case]
    submission = new_id()
    body = deliver_and_load(app, message(encrypted, keys, submission, make_options()), submission)
    assert body == {"status": "avvist", "melding": expected}
    assert_nothing_loaded(app)


def test_the_token_is_required(app: Flask, keys: KeySet, encrypted: bytes) -> None:
    client = app.test_client()
    submission = new_id()
    data = message(encrypted, keys, submission)
    answer = client.put(f"/innsendinger/{submission}", data=data,
                        headers={"Authorization": "Bearer feil", "X-IPIS-SHA256": sha256(data)})
    assert answer.status_code == 401
    assert get(client, submission).status_code == 404


def test_a_cleartext_iplos_file_is_refused_at_the_door(app: Flask, plain: bytes) -> None:
    client = app.test_client()
    answer = put(client, new_id(), plain)
    assert answer.status_code == 400
    assert answer.get_json()["melding"].startswith("Registeret kunne ikke lese leveransen fra TPF")
    assert b"<Fodselsnummer>" not in base64.b64decode(base64.b64encode(answer.data))
