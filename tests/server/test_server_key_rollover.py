"""The send module across the yearly key rollover (issue 9.6): last year's TPF key is taken in
until the overlap ends (31 January after 1 December, as the TPF), then refused before the upload
finishes; ``ipis keys publish`` moves the served key file aside and publishes the new one."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest
from server_testlib import REPO

from ipis_core.faults import KeyOutsideOverlap
from ipis_core.keyfile import parse_key_file, render_key_file
from ipis_core.keygen import generate_keys
from ipis_server.send.validation import (
    PREVIOUS_KEY_FILE,
    RetiredKey,
    ServedKeyNames,
    UploadValidator,
)


def _key_file(folder: Path, name: str, valid_from: dt.date) -> tuple[Path, str]:
    keys = generate_keys(valid_from, bits=2048)
    path = folder / name
    path.write_bytes(render_key_file(keys.key_file))
    return path, keys.key_file.tpf.key_id


@pytest.fixture(scope="module")
def two_years(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, Path, str]:
    folder = tmp_path_factory.mktemp("nokler")
    previous, old_id = _key_file(folder, PREVIOUS_KEY_FILE, dt.date(2025, 12, 1))
    current, new_id = _key_file(folder, "nokkelfil.xml", dt.date(2026, 12, 1))
    return current, new_id, previous, old_id


def test_last_years_key_is_taken_in_until_the_overlap_ends(
    two_years: tuple[Path, str, Path, str],
) -> None:
    current, new_id, previous, old_id = two_years
    served = ServedKeyNames(current, previous, overlap_days=62)
    assert served.current(dt.date(2026, 12, 2)) == {new_id, old_id}
    assert served.current(dt.date(2027, 1, 31)) == {new_id, old_id}  # the last day
    assert served.current(dt.date(2027, 2, 1)) == {new_id}


def test_last_years_key_after_the_overlap_is_refused_by_name(
    two_years: tuple[Path, str, Path, str],
) -> None:
    """Not as an unknown key: with the TPF's message naming the key and its dates."""
    current, _, previous, old_id = two_years
    served = ServedKeyNames(current, previous, overlap_days=62)
    assert served.retired(dt.date(2027, 1, 31)) == {}
    retired = served.retired(dt.date(2027, 2, 1))
    assert retired == {old_id: RetiredKey(dt.date(2026, 11, 30), dt.date(2027, 1, 31))}
    encrypted = _encrypted_for(previous)
    for day, refused in ((dt.date(2027, 1, 31), None), (dt.date(2027, 2, 1), KeyOutsideOverlap)):
        validator = UploadValidator(served.current(day), "0301", "00", served.retired(day))
        if refused is None:
            validator.feed(encrypted)
            assert validator.finish()[1].tpf_key.key_name == old_id
            continue
        with pytest.raises(KeyOutsideOverlap) as fault:
            validator.feed(encrypted)
            validator.finish()
        assert fault.value.message == (
            f"Filen er kryptert med nøkkelen {old_id}, som gjaldt til og med 2026-11-30. Filer "
            "kryptert med den ble tatt imot til og med 2027-01-31. Hent gjeldende nøkkelfil fra "
            "SSB, og krypter IPLOS-datafilen på nytt.")


def _encrypted_for(key_file: Path) -> bytes:
    import asyncio

    from ipis_core.contact import Contact
    from ipis_core.crypto.native import NativeBackend
    from ipis_core.demo_data import document_bytes
    from ipis_core.message import MessageEncryptor

    parsed = parse_key_file(key_file.read_bytes())

    async def run() -> bytes:
        contact = Contact.validated("iplos@kommune.no", "Kari Nordmann", "912 34 567")
        encryptor = MessageEncryptor(parsed, contact, NativeBackend(), parsed.valid_from)
        return await encryptor.feed(document_bytes(3)) + await encryptor.finish()

    return asyncio.run(run())


def test_no_previous_key_file_is_no_fault(two_years: tuple[Path, str, Path, str],
                                         tmp_path: Path) -> None:
    current, new_id, _, _ = two_years
    served = ServedKeyNames(current, tmp_path / PREVIOUS_KEY_FILE)
    assert served.current(dt.date(2026, 12, 2)) == {new_id}


def test_publish_moves_the_served_key_file_aside(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    (instance / "nokler").mkdir(parents=True)
    _, old_id = _key_file(instance / "nokler", "nokkelfil.xml", dt.date(2025, 12, 1))
    new, new_id = _key_file(tmp_path, "ny-nokkelfil.xml", dt.date(2026, 12, 1))
    result = subprocess.run(
        [sys.executable, "-m", "ipis_server", "keys", "publish", "--instance", str(instance),
         str(new)], cwd=REPO, capture_output=True, text=True, check=True)
    served = parse_key_file((instance / "nokler" / "nokkelfil.xml").read_bytes())
    kept = parse_key_file((instance / "nokler" / PREVIOUS_KEY_FILE).read_bytes())
    assert served.tpf.key_id == new_id and kept.tpf.key_id == old_id
    assert "tas imot til og med 2027-01-31" in result.stdout
    # the same key file again changes nothing (and keeps last year's)
    subprocess.run([sys.executable, "-m", "ipis_server", "keys", "publish", "--instance",
                    str(instance), str(new)], cwd=REPO, capture_output=True, text=True,
                   check=True)
    again = parse_key_file((instance / "nokler" / PREVIOUS_KEY_FILE).read_bytes())
    assert again.tpf.key_id == old_id


def test_publish_refuses_a_broken_key_file_and_changes_nothing(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    (instance / "nokler").mkdir(parents=True)
    old, _ = _key_file(instance / "nokler", "nokkelfil.xml", dt.date(2025, 12, 1))
    before = old.read_bytes()
    broken = tmp_path / "ødelagt.xml"
    broken.write_bytes(before[: len(before) // 2])
    result = subprocess.run(
        [sys.executable, "-m", "ipis_server", "keys", "publish", "--instance", str(instance),
         str(broken)], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 1
    assert "Nøkkelfilen er skadet eller ufullstendig" in result.stderr
    assert old.read_bytes() == before
    assert not (instance / "nokler" / PREVIOUS_KEY_FILE).exists()
