"""docs/drift.md's scale-out, for the whole chain: each party as gunicorn (two processes) and two
worker processes, each party with its own database on one PostgreSQL server. Several
submissions uploaded at once; every one is received once, forwarded once, processed once at
the TPF, delivered once to the register and loaded once there, counted in each party's
database, access log (PUTs) and worker logs; nothing is lost."""

from __future__ import annotations

import datetime as dt
import re
import secrets
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from chain_testlib import POLL, REGISTER_TOKEN, TPF_TOKEN, Deployment, clean_env, deploy, start_send
from municipality import Clerk, demo_data, encrypt, submission_id
from register_testlib import count, make_keys
from server_testlib import create_database, ipis
from tpf_testlib import install_keys

from ipis_server.db import open_database

pytestmark = [pytest.mark.postgres, pytest.mark.xdist_group("chain-2")]
SUBMISSIONS = 6
PERSONS = 8


def _puts(log: str, ids: list[str]) -> dict[str, int]:
    return {i: len(re.findall(rf'"PUT /innsendinger/{i} HTTP', log)) for i in ids}


def _logged_once(log: str, pattern: str, ids: list[str]) -> None:
    found = re.findall(pattern, log)
    assert sorted(found) == sorted(ids), pattern


def test_two_workers_of_each_party_on_one_postgresql(
        tmp_path: Path, postgres_server: str) -> None:
    keys = make_keys(tmp_path / "nokler", dt.date.today() - dt.timedelta(days=10))
    urls = {party: create_database(postgres_server, f"{party}_{secrets.token_hex(5)}")
            for party in ("send", "tpf", "register")}
    register_instance, tpf_instance = tmp_path / "register", tmp_path / "tpf"
    register_env = clean_env(IPIS_REGISTER_INSTANCE=str(register_instance),
                             IPIS_REGISTER_DATABASE_URL=urls["register"],
                             IPIS_REGISTER_TOKEN=REGISTER_TOKEN,
                             IPIS_REGISTER_WORKER_IDLE_SECONDS="0.2")
    ipis("keys", "install", "--party", "register", "--instance", str(register_instance),
         "--from", str(keys.folder), env=register_env)
    install_keys(tpf_instance, keys)  # type: ignore[arg-type]
    parties: list[Deployment] = []
    try:
        parties.append(deploy("register", register_instance, register_env, workers=2,
                              web_workers=2))
        tpf = deploy("tpf", tpf_instance, clean_env(
            IPIS_TPF_INSTANCE=str(tpf_instance), IPIS_TPF_DATABASE_URL=urls["tpf"],
            IPIS_TPF_TOKEN=TPF_TOKEN, IPIS_TPF_TEST_NUMBERS="1",
            IPIS_TPF_WORKER_IDLE_SECONDS="0.1", IPIS_TPF_REGISTER_URL=parties[0].url
            + "/innsendinger", IPIS_TPF_REGISTER_TOKEN=REGISTER_TOKEN,
            IPIS_TPF_REGISTER_POLL_SECONDS=POLL), workers=2, web_workers=2)
        parties.append(tpf)
        parties.append(start_send(tmp_path / "send", keys.folder, tpf.url + "/innsendinger",
                                  urls["send"], workers=2, web_workers=2))
        register, send = parties[0], parties[2]

        files = []
        for n in range(SUBMISSIONS):
            demo_data(tmp_path / f"iplos-{n}.xml", PERSONS, seed=70 + n)
            files.append(tmp_path / f"kryptert-{n}.xml")
            encrypt(tmp_path / f"iplos-{n}.xml", files[-1], keys.folder / "nokkelfil.xml")
        clerks = [Clerk(send.url) for _ in range(3)]
        with ThreadPoolExecutor(3) as pool:  # three clerks upload at once
            receipts = list(pool.map(lambda n: clerks[n % 3].send(files[n]), range(SUBMISSIONS)))
        for receipt in receipts:
            assert f"Lastet i registeret: {PERSONS} personer" in clerks[0].wait_final(receipt)
    finally:
        for party in reversed(parties):
            party.stop()
    ids = [submission_id(r) for r in receipts]
    assert len(set(ids)) == SUBMISSIONS

    # Each party's database: every submission once, all done.
    send_db, tpf_db, register_db = (open_database(urls[p]) for p in ("send", "tpf", "register"))
    try:
        assert count(send_db, "submissions") == SUBMISSIONS
        assert count(send_db, "outbox", "done_at IS NOT NULL") == SUBMISSIONS  # all settled
        assert count(send_db, "outbox") == SUBMISSIONS
        assert count(tpf_db, "submissions", "status = 'levert'") == SUBMISSIONS
        assert count(tpf_db, "submissions") == SUBMISSIONS
        assert count(tpf_db, "register_outbox", "kind = 'melding' AND done_at IS NOT NULL") \
            == count(tpf_db, "register_outbox") == SUBMISSIONS
        assert count(register_db, "innsendinger", "status = 'lastet'") == SUBMISSIONS
        assert count(register_db, "mottak") == SUBMISSIONS
        assert count(register_db, "personer") == SUBMISSIONS * PERSONS
    finally:
        for database in (send_db, tpf_db, register_db):
            database.dispose()
    # Each delivery PUT once, and each piece of work done by one worker of the two.
    assert _puts(tpf.log_text(), ids) == dict.fromkeys(ids, 1)
    assert _puts(register.log_text(), ids) == dict.fromkeys(ids, 1)
    _logged_once(tpf.log_text(), r"Innsending ([0-9a-f]{32}) behandlet", ids)
    _logged_once(register.log_text(), r"Innsending ([0-9a-f]{32}) lastet", ids)
    # Both workers of each party took part (the work was shared, not serialised).
    for party in (tpf, register):
        worker_logs = [log.read_text() for log in party.logs[1:]]
        assert all(re.search(r"Innsending [0-9a-f]{32}", text) for text in worker_logs), party
