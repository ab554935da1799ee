"""End to end through the three real parties: ``ipis demo-data`` → ``ipis encrypt`` with the key
file downloaded from the send module → uploaded (login, CSRF, receipt) → TPF → register →
``ipis register export`` equal to the input, field by field, with each fødselsnummer replaced
by its pseudonym; invalid numbers counted at the TPF, shown as a count on the receipt and the
history page, not passed on (their records marked by an empty pseudonym), never on screen."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from chain_testlib import start_chain
from municipality import Clerk, demo_data, encrypt, submission_id
from register_data import assert_rows_equal_input, export, rows_of
from register_testlib import make_keys
from tpf_testlib import impossible_date, numbers_of, replace_numbers, wrong_check_digits

pytestmark = pytest.mark.xdist_group("chain")
PERSONS = 60


def test_native_file_through_the_whole_chain(tmp_path: Path) -> None:
    keys = make_keys(tmp_path / "nokler", dt.date.today() - dt.timedelta(days=10))
    chain = start_chain(tmp_path, keys)
    try:
        clerk = Clerk(chain.send.url)
        key_file = clerk.download_key_file(tmp_path / "nedlastet-nokkelfil.xml")
        generated = demo_data(tmp_path / "generert.xml", PERSONS, seed=21)
        numbers = numbers_of(generated)
        invalid = {4: wrong_check_digits(numbers[4]), 9: impossible_date()}
        plain = replace_numbers(generated, invalid)
        source = tmp_path / "iplos.xml"
        source.write_bytes(plain)
        encrypt(source, tmp_path / "iplos-kryptert.xml", key_file)

        receipt = clerk.send(tmp_path / "iplos-kryptert.xml")
        status = clerk.wait_final(receipt)
        for step in ("Mottatt", "Videresendt til TPF",
                     f"Behandlet av TPF: {PERSONS} personer, 2 ugyldige fødselsnumre "
                     "(ikke sendt videre)",
                     f"Lastet i registeret: {PERSONS} personer"):
            assert f"<li>{step}</li>" in status, (step, status)
        history = clerk.history()
        assert f"Lastet i registeret: {PERSONS} personer" in history
        receipt_page = clerk.session.get(receipt).text
        for number in numbers_of(plain):  # never a number on screen
            assert number not in receipt_page + history

        # The TPF counted them, and says so to the send module (the §5 status).
        tpf_status = chain.tpf.get(submission_id(receipt)).json()
        assert tpf_status["personer"] == PERSONS and tpf_status["ugyldigeFodselsnumre"] == 2
        assert tpf_status["register"]["status"] == "lastet"

        rows = rows_of(export(chain.register, tmp_path / "eksport.csv"), receipt)
        assert_rows_equal_input(rows, plain, chain.secret(), invalid=list(invalid.values()))
        assert len({r["pseudonym"] for r in rows}) == PERSONS - 2 + 1  # distinct, and ""
    finally:
        chain.stop()
