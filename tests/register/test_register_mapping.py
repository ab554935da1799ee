"""The TPF's pseudonym mapping after a secret rotation (§6), through the app and the worker on
SQLite and PostgreSQL: the register's history rewritten, the whole mapping or nothing, once."""

from __future__ import annotations

import io

import pseudonymised_writer as pw
from flask import Flask
from register_testlib import (
    SECRET,
    TODAY,
    KeySet,
    count,
    deliver_and_load,
    input_persons,
    message,
    new_id,
)

from ipis_server.register.mapping import apply_mapping, pairs_left
from ipis_server.register.services import register_services

NEW_SECRET = b"den nye hemmeligheten"


def _mapping(keys: KeySet, mapping_id: str, pairs: list[tuple[str, str]],
             count_: int | None = None) -> bytes:
    return pw.write_mapping(keys.register_private.public_key(), "iplos-2026", mapping_id,
                            "tpf-h1", "tpf-h2", pairs, count_)


def test_the_mapping_rewrites_the_history_once(app: Flask, keys: KeySet, plain: bytes,
                                               encrypted: bytes) -> None:
    deliver_and_load(app, message(encrypted, keys, (s := new_id())), s)
    numbers = [p.fodselsnummer for p in input_persons(plain)]
    known = numbers[:100]  # the TPF can recompute 100 of the 120 (from inputs it still holds)
    pairs = [(pw.pseudonym(SECRET, n), pw.pseudonym(NEW_SECRET, n)) for n in known]
    mapping_id = new_id()
    body = deliver_and_load(app, _mapping(keys, mapping_id, pairs), mapping_id)
    assert body == {"status": "lastet", "personer": 100, "melding":
                    "Pseudonymbyttet er utført: 100 personposter fikk nytt pseudonym "
                    "(100 bytter)."}
    db = register_services(app).db
    assert count(db, "personer", "hemmelighet_id = 'tpf-h2'") == 100
    assert count(db, "personer", "hemmelighet_id = 'tpf-h1'") == 20  # kept under the old id
    for number in known[:5]:
        assert count(db, "personer", "pseudonym = :p AND hemmelighet_id = 'tpf-h2'",
                     p=pw.pseudonym(NEW_SECRET, number)) == 1
    assert count(db, "personer", "pseudonym = :p", p=pw.pseudonym(SECRET, known[0])) == 0
    assert pairs_left(db) == 0  # no old-to-new list kept
    # The same id again (by hand, newly encrypted): applied once, the first outcome returned.
    svc = register_services(app)
    again = apply_mapping(db, svc.keyring, io.BytesIO(_mapping(keys, mapping_id, pairs)),
                          mapping_id, TODAY)
    assert again.loaded and again.persons == 100
    assert count(db, "pseudonymbytter") == 1
    assert count(db, "personer", "hemmelighet_id = 'tpf-h2'") == 100


def test_a_mapping_that_does_not_add_up_changes_nothing(app: Flask, keys: KeySet,
                                                        plain: bytes, encrypted: bytes) -> None:
    deliver_and_load(app, message(encrypted, keys, (s := new_id())), s)
    numbers = [p.fodselsnummer for p in input_persons(plain)]
    pairs = [(pw.pseudonym(SECRET, n), pw.pseudonym(NEW_SECRET, n)) for n in numbers]
    body = deliver_and_load(app, _mapping(keys, (m := new_id()), pairs, count_=3), m)
    assert body == {"status": "avvist", "melding":
                    "Pseudonymbyttet fra TPF oppgir 3 bytter, men har 120. Byttet er ikke utført."}
    repeated = [*pairs, pairs[0]]
    body = deliver_and_load(app, _mapping(keys, (m := new_id()), repeated), m)
    assert body["melding"] == ("Pseudonymbyttet fra TPF har samme gamle pseudonym mer enn én "
                               "gang. Byttet er ikke utført.")
    db = register_services(app).db
    assert count(db, "personer", "hemmelighet_id = 'tpf-h1'") == 120
    assert count(db, "pseudonymbytter") == 0 and pairs_left(db) == 0
