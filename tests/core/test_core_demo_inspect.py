"""``ipis demo-data`` and ``ipis inspect``."""

from __future__ import annotations

import hashlib
import os

import pytest
from ipis_testlib import VECTORS, Keys, encrypt_bytes, parse

from ipis_core.demo_data import ENCODINGS, document_bytes
from ipis_core.identifiers import FnrKind, fnr_check_digits_ok, fnr_kind
from ipis_server.cli import main


def test_demo_data_is_deterministic_for_a_seed() -> None:
    assert document_bytes(200, seed=42) == document_bytes(200, seed=42)
    assert document_bytes(200, seed=42) != document_bytes(200, seed=43)


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_demo_data_cli(tmp_path, capsys, encoding: str) -> None:
    out = tmp_path / "demo.xml"
    assert main(["demo-data", "--persons", "300", "--out", str(out), "--seed", "5",
                 "--kommune", "4601", "--encoding", encoding]) == 0
    assert capsys.readouterr().out == f"Skrev 300 personer til {out}\n"
    data = out.read_bytes()
    assert data == document_bytes(300, kommune="4601", seed=5, encoding=encoding)
    assert os.listdir(tmp_path) == ["demo.xml"]
    root = parse(data)  # lxml reads it by its own declaration and BOM
    assert root.get("versjon") == "3.0"
    assert root.findtext("Avsender/Kommunenummer") == "4601"
    assert "æ" in root.findtext("Avsender/Navn").lower()
    assert {"æ", "ø", "å"} <= set(root.findtext("Avsender/Navn").lower())
    numbers = [p.findtext("Fodselsnummer") for p in root.iterfind("Personer/Person")]
    assert len(numbers) == 300
    assert all(fnr_check_digits_ok(n) and fnr_kind(n) is FnrKind.SYNTETISK for n in numbers)
    assert int(numbers[0][2:4]) > 80


def test_demo_data_sizes_are_realistic() -> None:
    size = len(document_bytes(1000, seed=1))
    assert 300_000 < size < 700_000  # ~50 MB for 100 000 persons (formats §1)


def test_inspect_shows_the_clear_part(capsys) -> None:
    path = VECTORS / "message" / "kryptert.xml"
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "Meldingstype: IPLOS\n" in out
    assert "kommunenummer 1508, bydelsnummer 00, organisasjonsnummer 974778874" in out
    assert "Mottaker: Statistisk sentralbyrå" in out
    assert "TPF-nøkkel: tpf-vektor\n" in out
    assert f"Størrelse: {path.stat().st_size} byte" in out
    for number in ("01814011026", "41824591006"):
        assert number not in out


def test_inspect_large_file_without_keys(tmp_path, capsys, keys: Keys) -> None:
    encrypted, _ = encrypt_bytes(document_bytes(2000, seed=8), keys)
    path = tmp_path / "k.xml"
    path.write_bytes(encrypted)
    before = hashlib.sha256(encrypted).hexdigest()
    assert main(["inspect", str(path)]) == 0
    assert "Antall" not in capsys.readouterr().out  # the person count is inside the TPF layer
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


@pytest.mark.parametrize(
    "name",
    ["iplos/valid/utf-8.xml", "iplos/faults/root-empty-file.xml", "keyfiles/utf-8.txt"],
)
def test_inspect_refuses_what_is_not_an_encrypted_message(capsys, name: str) -> None:
    assert main(["inspect", str(VECTORS / name)]) == 1
    assert capsys.readouterr().err == "Ugyldig format på kryptert melding. Kjøringen avsluttes\n"


def test_inspect_missing_file(capsys, tmp_path) -> None:
    assert main(["inspect", str(tmp_path / "mangler.xml")]) == 1
    assert capsys.readouterr().err.strip() != ""
