"""The register down while the TPF delivers: nothing is lost, and nothing is claimed that did not
happen. The municipality's receipt says the file waits for delivery to the register (not that
it was sent on) while the TPF retries; once the register is back, the file is loaded and the
receipt says so. (Before this test, the receipt said «Sendt videre til registeret, venter på
svar» for a message the register had never received.)"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from chain_testlib import restart_register, start_chain, tpf_delivery_attempts
from municipality import Clerk, demo_data, encrypt, submission_id
from register_data import assert_rows_equal_input, export, rows_of
from register_testlib import make_keys
from server_testlib import wait_until

pytestmark = pytest.mark.xdist_group("chain")


def test_register_down_the_receipt_claims_nothing_and_nothing_is_lost(tmp_path: Path) -> None:
    keys = make_keys(tmp_path / "nokler", dt.date.today() - dt.timedelta(days=10))
    chain = start_chain(tmp_path, keys)
    try:
        chain.register.stop()
        clerk = Clerk(chain.send.url)
        plain = demo_data(tmp_path / "iplos.xml", 12, seed=81)
        encrypt(tmp_path / "iplos.xml", tmp_path / "kryptert.xml", keys.folder / "nokkelfil.xml")
        receipt = clerk.send(tmp_path / "kryptert.xml")
        identifier = submission_id(receipt)
        wait_until(lambda: tpf_delivery_attempts(chain.tpf, identifier) >= 2, 60,
                   "the TPF trying to deliver")
        wait_until(lambda: "Venter på levering til registeret" in clerk.status(receipt), 30,
                   "the receipt showing the TPF's status")
        status = clerk.status(receipt)
        assert "Behandlet av TPF: 12 personer, ingen ugyldige fødselsnumre" in status
        assert "Sendt videre til registeret" not in status and "Lastet" not in status
        answer = chain.tpf.get(identifier)
        assert answer.status_code == 202  # not final: the send module keeps asking
        assert answer.json()["register"] == {"status": "sendes"}

        restart_register(chain.register)
        assert "<li>Lastet i registeret: 12 personer</li>" in clerk.wait_final(receipt)
        rows = rows_of(export(chain.register, tmp_path / "eksport.csv"), receipt)
        assert_rows_equal_input(rows, plain, chain.secret())
    finally:
        chain.stop()
