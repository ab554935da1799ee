"""Privacy across the whole chain: after two files (UTF-8 and UTF-16, with invalid numbers and
one diagnosis code that occurs once in the input) have gone through the send module, the TPF
and the register, every input fødselsnummer is searched for, in every form leaks.py knows, in
every file (database dumps too), temp file and log of each party: none in the send module's or
the register's, none at rest in the TPF's. The unique diagnosis code is found nowhere outside
the register's database, and in it (so the search would have found it)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from chain_testlib import Chain, start_chain
from leaks import gather, occurs
from municipality import Clerk, add_diagnosis, demo_data, encrypt
from register_testlib import make_keys
from tpf_testlib import impossible_date, numbers_of, replace_numbers, wrong_check_digits

pytestmark = pytest.mark.xdist_group("chain")
UNIQUE_DIAGNOSIS = "Y36.QZ7X"  # ICD-10-shaped, in no generated file; "." is not base64


def _run(chain: Chain, tmp_path: Path) -> list[tuple[str, bytes]]:
    """Two files through the chain; returns (name, cleartext) of each."""
    clerk = Clerk(chain.send.url)
    key_file = clerk.download_key_file(tmp_path / "nokkelfil.xml")
    first = demo_data(tmp_path / "a-generert.xml", 40, seed=31)
    numbers = numbers_of(first)
    first = replace_numbers(first, {2: wrong_check_digits(numbers[2]), 5: impossible_date()})
    first = add_diagnosis(first, 7, UNIQUE_DIAGNOSIS)
    (tmp_path / "a.xml").write_bytes(first)
    second = demo_data(tmp_path / "b.xml", 30, seed=32, encoding="UTF-16LE")
    receipts = []
    for name in ("a", "b"):
        encrypt(tmp_path / f"{name}.xml", tmp_path / f"{name}-kryptert.xml", key_file)
        receipts.append(clerk.send(tmp_path / f"{name}-kryptert.xml"))
    for receipt in receipts:
        assert "Lastet i registeret" in clerk.wait_final(receipt)
    return [("a", first), ("b", second)]


def test_no_number_and_no_person_data_outside_their_place(tmp_path: Path) -> None:
    keys = make_keys(tmp_path / "nokler", dt.date.today() - dt.timedelta(days=10))
    chain = start_chain(tmp_path, keys)
    try:
        inputs = _run(chain, tmp_path)
    finally:
        chain.stop()  # logs flushed, databases closed: what is at rest
    (_, first), (_, second) = inputs
    utf16_numbers = numbers_of(second.decode("utf-16").encode())
    numbers = numbers_of(first) + utf16_numbers
    assert len(set(numbers)) == 70
    # The search finds what is there: each number in its input, as written there.
    assert all(occurs(number, first) for number in numbers_of(first))
    assert all(occurs(n, second) and n.encode() not in second for n in utf16_numbers)
    assert first.count(UNIQUE_DIAGNOSIS.encode()) == 1

    logs = chain.logs()
    register_db = [chain.register.instance / f"register.db{end}" for end in ("", "-wal", "-shm",
                                                                             "-journal")]
    places = {
        party: gather([folder, tmp_path / f"{party}-tmp"], {f"{party} log": logs[party]},
                      skip=register_db if party == "register" else ())
        for party, folder in chain.instances().items()
    }
    for party, stored in (("send", "lager/innsendinger/"), ("tpf", "lager/innsendinger/")):
        assert any(stored in name for name in places[party].parts), party  # files at rest
    assert all(any(name.endswith("(dump)") for name in p.parts) for p in places.values()
               if p is not places["register"])
    for party, place in places.items():
        for number in numbers:
            assert place.where(number) == [], (party, number)
        assert place.where(UNIQUE_DIAGNOSIS) == [], party
    # The register's database itself: the value is there, and no number.
    database = gather([chain.register.instance], {},
                      skip=[p for p in chain.register.instance.rglob("*")
                            if p.is_file() and p not in register_db])
    assert database.where(UNIQUE_DIAGNOSIS), "the search must find it where it is"
    for number in numbers:
        assert database.where(number) == [], number
