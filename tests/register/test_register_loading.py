"""Loading through ``load_delivery`` on SQLite and PostgreSQL: the exported dataset equals the
input's person data under the right pseudonyms; invalid numbers counted, never linked; each
submission loaded once; a newer submission replaces the older one, settled by the database."""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor

import pseudonymised_writer as pw
import pytest
from register_testlib import (
    RECEIVED,
    SECRET,
    TODAY,
    KeySet,
    count,
    demo_input,
    encrypt,
    input_persons,
    message,
    new_id,
    stream,
    submissions,
    with_options,
)

from ipis_server.register.bulk import SQLITE_CACHE_KIB
from ipis_server.register.export import rows
from ipis_server.register.helper import PIPE_BYTES, Helper
from ipis_server.register.loading import load_delivery
from ipis_server.register.services import RegisterServices


def _load(svc: RegisterServices, data: bytes, submission_id: str,
          received: dt.datetime = RECEIVED):
    return load_delivery(svc.db, svc.keyring, stream(data), submission_id, received, TODAY)


def test_exported_dataset_equals_the_input_field_by_field(
    svc: RegisterServices, keys: KeySet, plain: bytes, encrypted: bytes
) -> None:
    submission = new_id()
    outcome = _load(svc, message(encrypted, keys, submission), submission)
    assert outcome.loaded, outcome.message
    assert outcome.persons == 120 and outcome.invalid_fodselsnumre == 0
    assert outcome.message == "Lastet i registeret: 120 personposter."
    expected = input_persons(plain)
    exported = list(rows(svc.db))
    assert len(exported) == len(expected) == 120
    for number, (person, row) in enumerate(zip(expected, exported, strict=True), start=1):
        assert row["innsending_id"] == submission
        assert row["lopenummer"] == str(number)
        assert row["pseudonym"] == pw.pseudonym(SECRET, person.fodselsnummer)
        assert row["hemmelighet_id"] == "tpf-h1"
        assert row["husstand"] == person.husstand
        assert row["dodsdato"] == person.dodsdato
        assert row["vurderinger"] == person.vurderinger
        assert row["tjenester"] == person.tjenester
        assert row["diagnoser"] == person.diagnoser
        assert (row["kommunenummer"], row["bydelsnummer"]) == ("0301", "00")
        assert (row["periode_fra"], row["periode_til"]) == ("2025-01-01", "2025-12-31")
        assert row["gjeldende"] == "ja"
    [stored] = submissions(svc.db)
    assert stored["status"] == "lastet" and stored["antall_personer"] == 120
    assert stored["kontakt_epost"] == "iplos@kommune.no" and stored["kontakt_mobil"] == "91234567"
    assert stored["aar"] == 2025 and stored["ugyldige_fodselsnumre"] == 0


def test_loaded_once(svc: RegisterServices, keys: KeySet, encrypted: bytes) -> None:
    submission = new_id()
    data = message(encrypted, keys, submission)
    first = _load(svc, data, submission)
    again = _load(svc, data, submission)
    assert first.loaded and again.loaded and again.persons == 120
    assert count(svc.db, "personer") == 120 and count(svc.db, "innsendinger") == 1


def test_invalid_numbers_are_counted_and_never_linked(svc: RegisterServices,
                                                       keys: KeySet) -> None:
    plain = demo_input(30, seed=5)
    numbers = [p.fodselsnummer for p in input_persons(plain)]
    for bad in numbers[3:6]:  # wrong check digits: the TPF marks them, passes no number
        plain = plain.replace(bad.encode(), (bad[:10] + str((int(bad[10]) + 1) % 10)).encode())
    submission = new_id()
    outcome = _load(svc, message(encrypt(plain, keys), keys, submission), submission)
    assert outcome.loaded and outcome.invalid_fodselsnumre == 3
    assert "3 av dem uten pseudonym" in outcome.message
    assert count(svc.db, "personer", "pseudonym IS NULL AND hemmelighet_id IS NULL") == 3
    assert count(svc.db, "personer") == 30


def test_a_newer_submission_replaces_the_older_for_its_sender_and_period(
    svc: RegisterServices, keys: KeySet, encrypted: bytes
) -> None:
    first, second, third = new_id(), new_id(), new_id()
    assert _load(svc, message(encrypted, keys, first), first).loaded
    later = RECEIVED + dt.timedelta(hours=1)
    outcome = _load(svc, message(encrypted, keys, second), second, later)
    assert outcome.replaced == first
    assert "Erstatter en tidligere innsending" in outcome.message
    # Arriving last but received before the current one: loaded, and stays replaced.
    earlier = RECEIVED - dt.timedelta(hours=1)
    late = _load(svc, message(encrypted, keys, third), third, earlier)
    assert late.loaded and late.superseded_by == second
    by_id = {s["innsending_id"]: s for s in submissions(svc.db)}
    current = [s for s in by_id.values() if s["gjeldende"]]
    assert [s["innsending_id"] for s in current] == [second]
    assert by_id[first]["erstattet_av"] == by_id[second]["id"]
    assert by_id[third]["erstattet_av"] == by_id[second]["id"]
    # Another period or another bydel is another current submission.
    other = new_id()
    half = encrypt(demo_input(20, period=("2025-01-01", "2025-06-30")), keys)
    assert _load(svc, message(half, keys, other), other).replaced is None
    assert count(svc.db, "innsendinger", "gjeldende") == 2
    assert len(list(rows(svc.db))) == 120 + 20
    assert len(list(rows(svc.db, include_replaced=True))) == 3 * 120 + 20


def test_a_refused_submission_replaces_nothing(svc: RegisterServices, keys: KeySet,
                                                encrypted: bytes) -> None:
    good, bad = new_id(), new_id()
    assert _load(svc, message(encrypted, keys, good), good).loaded
    refused = _load(svc, message(encrypted, keys, bad, with_options(count=7)), bad,
                    RECEIVED + dt.timedelta(hours=1))
    assert not refused.loaded
    assert count(svc.db, "innsendinger", "gjeldende") == 1
    assert count(svc.db, "personer") == 120


def test_rows_are_written_under_the_secret_the_tpf_names_after_the_persons(
    svc: RegisterServices, keys: KeySet, encrypted: bytes
) -> None:
    first, second = new_id(), new_id()
    assert _load(svc, message(encrypted, keys, first), first).loaded
    options = with_options(secret=b"en annen hemmelighet", secret_id="tpf-h2")
    assert _load(svc, message(encrypted, keys, second, options), second).loaded
    assert count(svc.db, "personer", "hemmelighet_id = 'tpf-h1'") == 120
    assert count(svc.db, "personer", "hemmelighet_id = 'tpf-h2'") == 120


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_parallel_loads_for_one_period_leave_one_current(svc: RegisterServices, keys: KeySet,
                                                          encrypted: bytes) -> None:
    """Eight loads of the same sender and period at once, on PostgreSQL: the unique index on
    the current submission settles it; the newest received is current, every other one
    replaced, every person loaded."""
    ids = [new_id() for _ in range(8)]
    messages = {i: message(encrypted, keys, i) for i in ids}
    received = {i: RECEIVED + dt.timedelta(minutes=n) for n, i in enumerate(ids)}
    barrier = threading.Barrier(len(ids))

    def load(submission: str):
        barrier.wait(timeout=60)
        return _load(svc, messages[submission], submission, received[submission])

    with ThreadPoolExecutor(len(ids)) as pool:
        outcomes = list(pool.map(load, ids))
    assert all(o.loaded for o in outcomes), [o.message for o in outcomes]
    stored = {s["innsending_id"]: s for s in submissions(svc.db)}
    current = [s for s in stored.values() if s["gjeldende"]]
    assert [s["innsending_id"] for s in current] == [ids[-1]]
    assert all(stored[i]["erstattet_av"] is not None for i in ids[:-1])
    assert count(svc.db, "personer") == 8 * 120


def test_records_written_another_way_are_read_as_trees(svc: RegisterServices,
                                                       keys: KeySet) -> None:
    """A character reference and single quotes send their batch the tree's way: the same
    rows as the input says."""
    plain = demo_input(40, seed=6)
    plain = plain.replace(b"<Husstand>1</Husstand>", b"<Husstand>&#x31;</Husstand>", 1)
    plain = plain.replace(b'<Diagnose kode="', b"<Diagnose  kode=\"", 1)
    submission = new_id()
    assert _load(svc, message(encrypt(plain, keys), keys, submission), submission).loaded
    expected = input_persons(plain)
    exported = list(rows(svc.db))
    assert [(r["husstand"], r["diagnoser"], r["tjenester"], r["vurderinger"]) for r in exported] \
        == [(p.husstand, p.diagnoser, p.tjenester, p.vurderinger) for p in expected]


def test_the_helper_process_reads_the_same_and_refuses_the_same(svc: RegisterServices,
                                                                 keys: KeySet) -> None:
    """A large delivery's persons are read in a helper process (helper.py), forced here on a
    small one: the same rows; a swapped record in the second batch and a foreign one in the
    third are refused with the same messages as without the helper (the first in file order)."""
    plain = demo_input(700, seed=12)
    encrypted = encrypt(plain, keys)
    submission = new_id()
    data = message(encrypted, keys, submission)
    outcome = load_delivery(svc.db, svc.keyring, stream(data), submission, RECEIVED, TODAY,
                            helper=True)
    assert outcome.loaded and outcome.persons == 700
    expected = input_persons(plain)
    exported = list(rows(svc.db))
    assert [(r["pseudonym"], r["husstand"], r["dodsdato"], r["vurderinger"], r["tjenester"],
             r["diagnoser"]) for r in exported] == [
        (pw.pseudonym(SECRET, p.fodselsnummer), p.husstand, p.dodsdato, p.vurderinger,
         p.tjenester, p.diagnoser) for p in expected]
    other = encrypt(demo_input(3, seed=13), keys)
    foreign = pw.open_input(other, keys.tpf_private).persons[0].encrypted

    def tamper(persons: list[pw.OutPerson]) -> list[pw.OutPerson]:
        persons[299].encrypted, persons[300].encrypted = (persons[300].encrypted,
                                                          persons[299].encrypted)
        persons[600].encrypted = foreign
        return persons

    for helper in (False, True):
        submission = new_id()
        refused = load_delivery(svc.db, svc.keyring,
                                stream(message(encrypted, keys, submission,
                                               with_options(persons=tamper))),
                                submission, RECEIVED, TODAY, helper=helper)
        assert refused.message == ("Personposten med løpenummer 300 inneholder posten med "
                                   "løpenummer 301: postene er byttet om eller flyttet."), helper
    assert count(svc.db, "personer") == 700


def test_the_helpers_pipes_hold_a_window_of_batches() -> None:
    """A batch (~90 kB) is more than a default pipe (64 kB): the loader's write would wait for
    the helper to finish the batch before. Where the system allows, both pipes are widened."""
    fcntl = pytest.importorskip("fcntl")
    if not hasattr(fcntl, "F_GETPIPE_SZ"):
        pytest.skip("no F_GETPIPE_SZ here")
    with open("/proc/sys/fs/pipe-max-size") as limit:
        if int(limit.read()) < PIPE_BYTES:
            pytest.skip("pipe-max-size below PIPE_BYTES")
    reader = Helper()
    try:
        pipes = (reader._process.stdin, reader._process.stdout)
        assert [fcntl.fcntl(p.fileno(), fcntl.F_GETPIPE_SZ) for p in pipes] == [PIPE_BYTES] * 2
    finally:
        reader.close()


def test_the_loads_page_cache_is_given_back(svc: RegisterServices, keys: KeySet,
                                             encrypted: bytes) -> None:
    """SQLite: the load's larger page cache (bulk.py) ends with the load, loaded or refused;
    the pooled connection is as it was."""
    if svc.db.engine.dialect.name != "sqlite":
        pytest.skip("a setting of SQLite's")

    def cache_size() -> int:
        with svc.db.engine.connect() as connection:
            return int(connection.exec_driver_sql("PRAGMA cache_size").scalar_one())

    before = cache_size()
    assert before != -SQLITE_CACHE_KIB
    submission = new_id()
    assert _load(svc, message(encrypted, keys, submission), submission).loaded
    assert cache_size() == before
    assert not _load(svc, message(encrypted, keys, submission)[:-200] + b"x" * 200,
                     new_id()).loaded
    assert cache_size() == before
