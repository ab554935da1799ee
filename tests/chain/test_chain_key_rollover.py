"""The yearly key rollover (1 December) through the whole chain, done as the operators do it
while the three parties run: ``ipis keys publish`` at the send module, ``ipis keys install`` at
the TPF and the register (each re-reads its keys, no restart).

The parties run on the real clock (a server process has no day to be given), so the keys are
dated from today instead: "15 January" means the new key began 45 days ago, "5 February" 66
days ago; last year's key ended the day before the new one began, and is taken in for 62 days
after that (31 January). A municipality encrypted with last year's key file on its last week;
on 15 January that file is accepted end to end; on 5 February the send module refuses it at the
door, before the upload finishes, with the message saying what to do. The new key works on
both days.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from chain_testlib import Chain, start_chain
from municipality import Clerk, demo_data, encrypt
from register_testlib import make_keys
from server_testlib import error_text, files_under, ipis

pytestmark = pytest.mark.xdist_group("chain-2")


def _roll_over(chain: Chain, new: Path) -> None:
    """The operators' part of 1 December: every party gets the new year's key."""
    published = ipis("keys", "publish", "--instance", str(chain.send.instance),
                     str(new / "nokkelfil.xml"), env=chain.send.env)
    assert "Forrige nøkkelfil" in published.stdout
    for party, running in (("tpf", chain.tpf), ("register", chain.register)):
        ipis("keys", "install", "--party", party, "--instance", str(running.instance),
             "--from", str(new), env=running.env)


@pytest.mark.parametrize(("day", "days_since_new_key", "old_key_accepted"),
                         [("15. januar", 45, True), ("5. februar", 66, False)])
def test_last_years_key_across_the_rollover(tmp_path: Path, day: str, days_since_new_key: int,
                                            old_key_accepted: bool) -> None:
    new_from = dt.date.today() - dt.timedelta(days=days_since_new_key)
    if (new_from.month, new_from.day) == (2, 29):  # no such day last year: one day earlier
        new_from -= dt.timedelta(days=1)
    old = make_keys(tmp_path / "gamle-nokler", new_from.replace(year=new_from.year - 1))
    new = make_keys(tmp_path / "nye-nokler", new_from)
    assert old.key_file.valid_to == new_from - dt.timedelta(days=1)
    chain = start_chain(tmp_path, old)  # running since before 1 December
    try:
        clerk = Clerk(chain.send.url)
        old_key_file = clerk.download_key_file(tmp_path / "fjorarets-nokkelfil.xml")
        source = tmp_path / "iplos.xml"
        demo_data(source, 15, seed=61)
        encrypted_before = tmp_path / "kryptert-i-november.xml"
        encrypt(source, encrypted_before, old_key_file,
                today=old.key_file.valid_to - dt.timedelta(days=5))
        _roll_over(chain, new.folder)

        answer = clerk.upload(encrypted_before)
        if old_key_accepted:
            assert "Sending utført" in answer.text, error_text(answer.text)
            assert "Lastet i registeret: 15 personer" in clerk.wait_final(answer.url), day
        else:
            assert answer.status_code == 400
            assert error_text(answer.text) == (  # the TPF's words: which key, until when
                f"Filen er kryptert med nøkkelen {old.key_file.tpf.key_id}, som gjaldt til og med "
                f"{old.key_file.valid_to.isoformat()}. Filer kryptert med den ble tatt imot til "
                f"og med {(old.key_file.valid_to + dt.timedelta(days=62)).isoformat()}. Hent "
                "gjeldende nøkkelfil fra SSB, og krypter IPLOS-datafilen på nytt."), day
            assert "Ingen innsendinger ennå" in clerk.history()
            assert files_under(chain.send.instance / "lager") == []
            assert files_under(chain.tpf.instance / "lager" / "innsendinger") == []

        new_key_file = clerk.download_key_file(tmp_path / "ny-nokkelfil.xml")
        assert new_key_file.read_bytes() == (new.folder / "nokkelfil.xml").read_bytes()
        encrypted_now = tmp_path / "kryptert-i-dag.xml"
        encrypt(source, encrypted_now, new_key_file)
        receipt = clerk.send(encrypted_now)
        assert "Lastet i registeret: 15 personer" in clerk.wait_final(receipt), day
    finally:
        chain.stop()
