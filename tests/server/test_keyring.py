"""The parties' keyrings: yearly keys, the overlap after 1 December, install/list/remove."""

from __future__ import annotations

import datetime as dt
import os
import stat
from pathlib import Path

import pytest
from server_testlib import ipis

from ipis_core.faults import KeyNotYetInUse, KeyOutsideOverlap, UnknownKeyName
from ipis_core.keygen import GeneratedKeys, generate_keys, write_keys
from ipis_server.keyring import (
    DEFAULT_OVERLAP_DAYS,
    KeyIdTaken,
    Keyring,
    NoCurrentKey,
    PrivateKeyDoesNotMatch,
    overlap_days,
)

YEARS = (2024, 2025, 2026)


@pytest.fixture(scope="module")
def yearly(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """Key folders as SSB's yearly job makes them: valid from 1 December of each year."""
    root = tmp_path_factory.mktemp("aarsnokler")
    folders = {}
    for year in YEARS:
        keys: GeneratedKeys = generate_keys(dt.date(year, 12, 1), bits=2048)
        write_keys(keys, str(root / str(year)))
        folders[year] = root / str(year)
    return folders


def _ring(tmp_path: Path, yearly: dict[int, Path], *years: int, party: str = "tpf") -> Keyring:
    ring = Keyring(tmp_path / "nokler", party)  # type: ignore[arg-type]
    for year in years:
        ring.install_from_folder(yearly[year])
    return ring


def test_default_overlap_ends_31_january() -> None:
    assert dt.date(2026, 11, 30) + dt.timedelta(days=DEFAULT_OVERLAP_DAYS) == dt.date(2027, 1, 31)


def test_previous_year_accepted_until_31_january_then_refused(tmp_path: Path,
                                                             yearly: dict[int, Path]) -> None:
    ring = _ring(tmp_path, yearly, 2025, 2026)
    assert ring.known_names() == {"tpf-2025", "tpf-2026"}
    # 30 November 2026: the 2025 key is the current one; the 2026 key is not valid yet.
    assert ring.current(dt.date(2026, 11, 30)).key_id == "tpf-2025"
    assert ring.accepted_names(dt.date(2026, 11, 30)) == {"tpf-2025"}
    with pytest.raises(KeyNotYetInUse) as early:
        ring.accept("tpf-2026", dt.date(2026, 11, 30))
    assert early.value.message == (
        "Filen er kryptert med nøkkelen tpf-2026, som ikke gjelder før 2026-12-01. Bruk "
        "nøkkelfilen som gjelder i dag, og krypter IPLOS-datafilen på nytt.")
    # 1 December: the new key is current, the old one still accepted (overlap).
    assert ring.current(dt.date(2026, 12, 1)).key_id == "tpf-2026"
    assert ring.accepted_names(dt.date(2026, 12, 1)) == {"tpf-2025", "tpf-2026"}
    assert ring.accept("tpf-2025", dt.date(2027, 1, 31)).key_id == "tpf-2025"
    # 1 February: refused, with a message that says which key, until when, and what to do.
    with pytest.raises(KeyOutsideOverlap) as late:
        ring.accept("tpf-2025", dt.date(2027, 2, 1))
    assert late.value.message == (
        "Filen er kryptert med nøkkelen tpf-2025, som gjaldt til og med 2026-11-30. Filer "
        "kryptert med den ble tatt imot til og med 2027-01-31. Hent gjeldende nøkkelfil fra "
        "SSB, og krypter IPLOS-datafilen på nytt.")
    assert ring.accepted_names(dt.date(2027, 2, 1)) == {"tpf-2026"}
    # Still installed: the TPF can open the inputs it retains.
    assert ring.private_key("tpf-2025").key_size == 2048


def test_two_years_old_refused_and_unknown_refused(tmp_path: Path,
                                                   yearly: dict[int, Path]) -> None:
    ring = _ring(tmp_path, yearly, 2024, 2025, 2026)
    with pytest.raises(KeyOutsideOverlap):
        ring.accept("tpf-2024", dt.date(2026, 12, 15))
    assert ring.accepted_names(dt.date(2026, 12, 15)) == {"tpf-2025", "tpf-2026"}
    with pytest.raises(UnknownKeyName):
        ring.accept("tpf-2019", dt.date(2026, 12, 15))
    with pytest.raises(NoCurrentKey):
        ring.current(dt.date(2030, 1, 1))


def test_register_party_holds_the_iplos_key(tmp_path: Path, yearly: dict[int, Path]) -> None:
    ring = _ring(tmp_path, yearly, 2026, party="register")
    assert ring.known_names() == {"iplos-2026"}
    entry = ring.current(dt.date(2027, 3, 1))
    numbers = ring.private_key("iplos-2026").public_key().public_numbers()
    assert numbers.n == entry.key_file.iplos.modulus


def test_install_is_private_idempotent_and_checks_the_pair(tmp_path: Path,
                                                         yearly: dict[int, Path]) -> None:
    ring = _ring(tmp_path, yearly)
    entry, new = ring.install_from_folder(yearly[2026])
    assert new and entry.key_id == "tpf-2026"
    for path in ring.folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(ring.folder.stat().st_mode) == 0o700
    assert ring.install_from_folder(yearly[2026]) == (entry, False)
    # Another year's private key with this year's key file: refused, nothing written.
    other = Keyring(tmp_path / "andre", "tpf")
    with pytest.raises(PrivateKeyDoesNotMatch):
        other.install(yearly[2025] / "nokkelfil.xml", yearly[2026] / "tpf-privat.pem")
    assert not other.folder.exists() or not list(other.folder.iterdir())
    # A different key under an id already installed: refused.
    impostor = tmp_path / "impostor"
    write_keys(generate_keys(dt.date(2026, 12, 1), bits=2048), str(impostor))
    with pytest.raises(KeyIdTaken):
        ring.install_from_folder(impostor)


def test_keyring_sees_a_rollover_without_restart(tmp_path: Path, yearly: dict[int, Path]) -> None:
    ring = _ring(tmp_path, yearly, 2025)
    assert ring.accepted_names(dt.date(2026, 12, 2)) == {"tpf-2025"}
    Keyring(ring.folder, "tpf").install_from_folder(yearly[2026])  # another process installs
    assert ring.accepted_names(dt.date(2026, 12, 2)) == {"tpf-2025", "tpf-2026"}
    ring.remove("tpf-2025")
    assert ring.known_names() == {"tpf-2026"}


def test_overlap_is_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert overlap_days("tpf") == DEFAULT_OVERLAP_DAYS
    monkeypatch.setenv("IPIS_TPF_KEY_OVERLAP_DAYS", "10")
    assert overlap_days("tpf") == 10
    assert overlap_days("register") == DEFAULT_OVERLAP_DAYS


def test_keys_commands(tmp_path: Path, yearly: dict[int, Path]) -> None:
    instance = tmp_path / "tpf"
    env = {k: v for k, v in os.environ.items() if not k.startswith("IPIS_")}
    first = ipis("keys", "install", "--instance", str(instance), "--party", "tpf", "--from",
                 str(yearly[2025]), env=env)
    assert "Installerte tpf-2025" in first.stdout
    assert "filer tas imot til og med 2027-01-31" in first.stdout
    ipis("keys", "install", "--instance", str(instance), "--party", "tpf", "--key-file",
         str(yearly[2026] / "nokkelfil.xml"), "--private-key", str(yearly[2026] / "tpf-privat.pem"),
         env=env)
    listing = ipis("keys", "list", "--instance", str(instance), "--party", "tpf", "--today",
                   "2026-12-24", env=env).stdout
    assert "tpf-2026  gyldig 2026-12-01 til og med 2027-11-30  gjeldende" in listing
    assert "tpf-2025  gyldig 2025-12-01 til og med 2026-11-30  forrige, tas imot til og med " \
        "2027-01-31" in listing
    later = ipis("keys", "list", "--instance", str(instance), "--party", "tpf", "--today",
                 "2027-02-01", env=env).stdout
    assert "tas ikke imot lenger (sluttet 2027-01-31)" in later
    wrong = ipis("keys", "install", "--instance", str(instance), "--party", "register",
                 "--key-file", str(yearly[2026] / "nokkelfil.xml"), "--private-key",
                 str(yearly[2026] / "tpf-privat.pem"), env=env, check=False)
    assert wrong.returncode == 1
    assert "Den private nøkkelen hører ikke til nøkkelen iplos-2026" in wrong.stderr
    ipis("keys", "remove", "--instance", str(instance), "--party", "tpf", "tpf-2025", env=env)
    assert "tpf-2025" not in ipis("keys", "list", "--instance", str(instance), "--party", "tpf",
                                  env=env).stdout
