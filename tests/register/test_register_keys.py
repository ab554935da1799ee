"""The register's yearly keys (issue 9.6): the previous year's key is taken until the end of
January after the new one starts on 1 December, then refused with a message that says why —
at the door for the TPF's transport key, when loading for the municipality's register key."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pseudonymised_writer as pw
import pytest
from flask import Flask
from register_testlib import (
    KeySet,
    deliver_and_load,
    demo_input,
    encrypt,
    get,
    install,
    make_keys,
    new_id,
    put,
    register_config,
    with_options,
)

from ipis_server.register.app import create_app
from ipis_server.register.services import register_services
from ipis_server.register.worker import RegisterWorker


@pytest.fixture(scope="module")
def years(tmp_path_factory: pytest.TempPathFactory) -> dict[int, KeySet]:
    root = tmp_path_factory.mktemp("aarsnokler")
    return {year: make_keys(root / str(year), dt.date(year, 12, 1)) for year in (2025, 2026)}


@pytest.fixture
def today() -> list[dt.date]:
    return [dt.date(2027, 1, 15)]


@pytest.fixture
def app(tmp_path: Path, database_url: str, years: dict[int, KeySet],
        today: list[dt.date]) -> Iterator[Flask]:
    config = register_config(tmp_path, database_url, None)
    for keys in years.values():
        install(config.keys_dir, keys)
    application = create_app(config, today=lambda: today[0])
    yield application
    register_services(application).dispose()


def _message(inner: KeySet, transport: KeySet, submission: str) -> bytes:
    encrypted = encrypt(demo_input(10), inner, dt.date(inner.key_file.valid_from.year, 12, 20))
    return pw.write(encrypted, inner.tpf_private, transport.register_private.public_key(),
                    submission, with_options(transport_key_name=transport.key_file.iplos.key_id))


def test_last_years_keys_are_taken_until_31_january(app: Flask, years: dict[int, KeySet],
                                                    today: list[dt.date]) -> None:
    old, new = years[2025], years[2026]
    today[0] = dt.date(2027, 1, 31)
    body = deliver_and_load(app, _message(old, old, (s := new_id())), s)
    assert body["status"] == "lastet"
    body = deliver_and_load(app, _message(new, new, (s := new_id())), s)
    assert body["status"] == "lastet"


def test_after_the_overlap_the_old_transport_key_is_refused_at_the_door(
    app: Flask, years: dict[int, KeySet], today: list[dt.date]
) -> None:
    today[0] = dt.date(2027, 2, 1)
    client = app.test_client()
    submission = new_id()
    answer = put(client, submission, _message(years[2026], years[2025], submission))
    assert answer.status_code == 400
    assert answer.get_json()["melding"] == (
        "Leveransen fra TPF er kryptert for registernøkkelen iplos-2025, som registeret ikke "
        "tar imot: nøkkelen er utenfor overgangsperioden. TPF må kryptere leveransen for "
        "registerets gjeldende nøkkel.")
    assert get(client, submission).status_code == 404


def test_after_the_overlap_a_file_for_the_old_register_key_is_refused(
    app: Flask, years: dict[int, KeySet], today: list[dt.date]
) -> None:
    today[0] = dt.date(2027, 2, 1)
    body = deliver_and_load(app, _message(years[2025], years[2026], (s := new_id())), s)
    assert body == {"status": "avvist", "melding": (
        "Filen er kryptert med nøkkelen iplos-2025, som gjaldt til og med 2026-11-30. Filer "
        "kryptert med den ble tatt imot til og med 2027-01-31. Hent gjeldende nøkkelfil fra "
        "SSB, og krypter IPLOS-datafilen på nytt.")}


def test_a_delivery_taken_in_on_31_january_is_loaded_after_it(
    app: Flask, years: dict[int, KeySet], today: list[dt.date]
) -> None:
    """Keys are judged by the day the delivery came in, not the day its turn to load comes
    (before: taken in on 31 January with last year's keys, then refused on 2 February for
    those keys because the loaders were behind)."""
    old = years[2025]
    today[0] = dt.date(2027, 1, 31)
    client = app.test_client()
    submission = new_id()
    assert put(client, submission, _message(old, old, submission)).status_code == 202
    today[0] = dt.date(2027, 2, 2)
    assert RegisterWorker(register_services(app)).drain() == 1
    assert get(client, submission).get_json()["status"] == "lastet"
