"""Every SQL example in docs/register.md runs on SQLite and PostgreSQL against a register
loaded with two years of two kommuner, and the first ones give the numbers they should."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from register_testlib import (
    RECEIVED,
    TODAY,
    KeySet,
    demo_input,
    encrypt,
    message,
    new_id,
    stream,
)
from sqlalchemy import text

from ipis_server.register.loading import load_delivery
from ipis_server.register.services import RegisterServices

DOC = Path(__file__).resolve().parents[2] / "docs" / "register.md"
SQL = re.compile(r"```sql\n(.*?)```", re.S)
EXAMPLES = SQL.findall(DOC.read_text(encoding="utf-8"))


@pytest.fixture
def loaded(svc: RegisterServices, keys: KeySet) -> RegisterServices:
    inputs = [
        demo_input(40, "0301", seed=2),
        demo_input(25, "0301", seed=2, period=("2024-01-01", "2024-12-31")),  # the same people
        demo_input(15, "4601", seed=3),
    ]
    for number, plain in enumerate(inputs):
        submission = new_id()
        data = message(encrypt(plain, keys), keys, submission)
        received = RECEIVED + dt.timedelta(minutes=number)
        outcome = load_delivery(svc.db, svc.keyring, stream(data), submission, received, TODAY)
        assert outcome.loaded, outcome.message
    return svc


def test_the_document_has_its_examples() -> None:
    assert len(EXAMPLES) == 8


def test_every_example_runs(loaded: RegisterServices) -> None:
    results = []
    with loaded.db.engine.connect() as connection:
        for example in EXAMPLES:
            results.append(connection.execute(text(example)).all())
    per_kommune, scores, services, both_years, diagnoses, _dead, _twice, submissions = results
    assert [tuple(r) for r in per_kommune] == [("0301", "00", 40), ("4601", "00", 15)]
    assert all(1 <= float(r.snitt_spise) <= 5 for r in scores)
    assert sum(r.personer for r in services) >= 55
    assert both_years == [(25,)]  # seed 2: the first 25 persons of 2025 are 2024's
    assert diagnoses and diagnoses[0].antall >= diagnoses[-1].antall
    assert len(submissions) == 2 and all(r.status == "lastet" for r in submissions)
