"""One person, one pseudonym, through the real chain: a person in two files of different years
(Uttak periods 2025 and 2026) has one pseudonym in the register; a person whose D-number was
replaced by a fødselsnummer (the change list imported with ``ipis tpf import-changes`` between
the two files) keeps the pseudonym the D-number had."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from chain_testlib import start_chain
from municipality import Clerk, demo_data, encrypt
from register_data import assert_rows_equal_input, export, rows_of
from register_testlib import make_keys, with_period
from server_testlib import ipis
from tpf_testlib import replace_numbers, synthetic

pytestmark = pytest.mark.xdist_group("chain")


def test_same_person_across_years_and_a_d_number_change(tmp_path: Path) -> None:
    keys = make_keys(tmp_path / "nokler", dt.date.today() - dt.timedelta(days=10))
    chain = start_chain(tmp_path, keys)
    d_number = synthetic(45, 3, 1980, 200)  # day + 40: a (synthetic) D-number
    new_number = synthetic(5, 3, 1980, 300)  # the fødselsnummer the person got
    person = synthetic(12, 5, 1931, 123)  # in both years under the same number
    try:
        clerk = Clerk(chain.send.url)
        key_file = clerk.download_key_file(tmp_path / "nokkelfil.xml")
        first = replace_numbers(demo_data(tmp_path / "2025-generert.xml", 20, seed=41),
                                {0: d_number, 1: person})
        second = with_period(
            replace_numbers(demo_data(tmp_path / "2026-generert.xml", 25, seed=42),
                            {3: new_number, 4: person}),
            ("2026-01-01", "2026-12-31"))
        receipts = {}
        for year, plain in (("2025", first), ("2026", second)):
            if year == "2026":  # the population register's change list, before this file
                changes = tmp_path / "endringer.csv"
                changes.write_text(f"gammelt_nummer;nytt_nummer;dato\n{d_number};{new_number};"
                                   "2026-05-02\n", encoding="utf-8")
                imported = ipis("tpf", "import-changes", "--instance", str(chain.tpf.instance),
                                str(changes), env=chain.tpf.env)
                assert "Nye aliaser: 1" in imported.stdout
                assert d_number not in imported.stdout + imported.stderr
                changes.unlink()
            source = tmp_path / f"iplos-{year}.xml"
            source.write_bytes(plain)
            encrypt(source, tmp_path / f"iplos-{year}-kryptert.xml", key_file)
            receipts[year] = clerk.send(tmp_path / f"iplos-{year}-kryptert.xml")
            assert "Lastet i registeret" in clerk.wait_final(receipts[year])

        rows = export(chain.register, tmp_path / "eksport.csv")
        secret = chain.secret()
        old_rows = rows_of(rows, receipts["2025"])
        new_rows = rows_of(rows, receipts["2026"])
        assert_rows_equal_input(old_rows, first, secret)
        assert_rows_equal_input(new_rows, second, secret, known_as={new_number: d_number})
        assert {r["periode_fra"] for r in old_rows + new_rows} == {"2025-01-01", "2026-01-01"}
        assert old_rows[0]["pseudonym"] == new_rows[3]["pseudonym"]  # the D-number's person
        assert old_rows[1]["pseudonym"] == new_rows[4]["pseudonym"]  # the same person
        # Everyone else is someone else: 45 records, 43 persons.
        assert len({r["pseudonym"] for r in old_rows + new_rows}) == 43
    finally:
        chain.stop()
