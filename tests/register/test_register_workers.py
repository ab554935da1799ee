"""Scale-out (docs/drift.md): two ``ipis register worker`` processes on one PostgreSQL load
every delivery exactly once, and the deliveries of one kommune and period leave one current."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from flask import Flask
from register_testlib import (
    KeySet,
    count,
    demo_input,
    encrypt,
    message,
    new_id,
    put,
    submissions,
)
from server_testlib import REPO, wait_until

from ipis_server.register.services import register_services

DELIVERIES = 12


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_two_workers_load_every_delivery_once(app: Flask, keys: KeySet, database_url: str,
                                              tmp_path: Path) -> None:
    svc = register_services(app)
    client = app.test_client()
    encrypted = encrypt(demo_input(10, seed=8), keys)
    ids = [new_id() for _ in range(DELIVERIES)]
    for submission in ids:  # stored by the intake, in this order
        assert put(client, submission, message(encrypted, keys, submission)).status_code == 202
    env = {k: v for k, v in os.environ.items() if not k.startswith("IPIS_")}
    env.update(IPIS_REGISTER_DATABASE_URL=database_url, IPIS_REGISTER_TOKEN="x",
               IPIS_REGISTER_WORKER_IDLE_SECONDS="0.1", PYTHONUNBUFFERED="1")
    logs = [tmp_path / f"worker-{n}.log" for n in (1, 2)]
    workers = []
    for log in logs:
        with log.open("w", encoding="utf-8") as handle:
            workers.append(subprocess.Popen(
                [sys.executable, "-m", "ipis_server", "register", "worker", "--instance",
                 str(svc.config.instance_dir)],
                stdout=handle, stderr=subprocess.STDOUT, cwd=REPO, env=env, text=True))
    try:
        wait_until(lambda: count(svc.db, "mottak", "done_at IS NOT NULL") == DELIVERIES,
                   timeout=240, what="alle leveransene lastet")
    finally:
        for worker in workers:
            worker.terminate()
            worker.wait(30)
    loaded = [m for log in logs
              for m in re.findall(r"Innsending ([0-9a-f]{32}) lastet", log.read_text())]
    assert sorted(loaded) == sorted(ids)  # each loaded once, by one worker or the other
    stored = submissions(svc.db)
    assert len(stored) == DELIVERIES and all(s["status"] == "lastet" for s in stored)
    assert [s["innsending_id"] for s in stored if s["gjeldende"]] == [ids[-1]]
    assert count(svc.db, "personer") == DELIVERIES * 10
    assert count(svc.db, "mottak", "status = 'lastet'") == DELIVERIES
    assert not list((svc.config.storage_dir / "innsendinger").iterdir())  # files removed
