"""End to end with the page: the IPLOS export encrypted in the real built page
(dist/ipis-krypt.html from file://, no request may leave it) with the key file downloaded from
the send module, the page's output uploaded, processed by the TPF, loaded by the register, and
the export equal to the input with pseudonyms in place of fødselsnumre."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from chain_testlib import start_chain
from krypt_testlib import PAGE, open_krypt
from municipality import Clerk, demo_data
from register_data import assert_rows_equal_input, export, rows_of
from register_testlib import make_keys
from tpf_testlib import numbers_of, replace_numbers, wrong_check_digits

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("chain-browser")]
PERSONS = 40


def test_page_output_through_the_whole_chain(browser: Any, tmp_path: Path) -> None:
    if not PAGE.exists():
        pytest.fail("dist/ipis-krypt.html mangler: kjør `make page` før nettlesertestene")
    keys = make_keys(tmp_path / "nokler", dt.date.today() - dt.timedelta(days=10))
    chain = start_chain(tmp_path, keys)
    krypt = None
    try:
        clerk = Clerk(chain.send.url)
        key_file = clerk.download_key_file(tmp_path / "nokkelfil.xml")
        generated = demo_data(tmp_path / "generert.xml", PERSONS, seed=51, encoding="UTF-16LE")
        text = generated.decode("utf-16-le")
        numbers = numbers_of(text.encode())
        plain = replace_numbers(text.encode(), {6: wrong_check_digits(numbers[6])})
        source = tmp_path / "iplos.xml"
        source.write_bytes(plain.decode().encode("utf-16-le"))  # UTF-16, as the EPJ wrote it

        krypt = open_krypt(browser, PAGE.as_uri())
        krypt.fill(data=source, out="iplos-kryptert.xml", keys=key_file)
        with krypt.page.expect_download() as download_info:
            outcome = krypt.run()
        assert outcome == "done", krypt.visible_errors()
        encrypted = tmp_path / "iplos-kryptert.xml"
        download_info.value.save_as(encrypted)
        assert krypt.network.outside == [], "requests left the page"

        receipt = clerk.send(encrypted)
        status = clerk.wait_final(receipt)
        assert (f"<li>Behandlet av TPF: {PERSONS} personer, 1 ugyldig fødselsnummer "
                "(ikke sendt videre)</li>") in status
        assert f"<li>Lastet i registeret: {PERSONS} personer</li>" in status
        rows = rows_of(export(chain.register, tmp_path / "eksport.csv"), receipt)
        assert_rows_equal_input(rows, source.read_bytes(), chain.secret(),
                                invalid=[wrong_check_digits(numbers[6])])
    finally:
        if krypt is not None:
            krypt.close()
        chain.stop()
