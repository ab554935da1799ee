"""Key files (formats §2), ``ipis keys generate`` and ``ipis keys show``."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import stat

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from ipis_testlib import VECTORS, Keys

from ipis_core.faults import (
    KeyFileDamaged,
    KeyFileExpired,
    KeyFileInvalid,
    KeyFileNotYetValid,
    KeyFileUnreadable,
)
from ipis_core.keyfile import describe_key_file, load_key_file, parse_key_file, render_key_file
from ipis_core.rsakey import RsaPublicKey
from ipis_server.cli import main

EXPECTED = json.loads((VECTORS / "keyfiles" / "expected.json").read_text(encoding="utf-8"))


def spki_sha256(public_key: rsa.RSAPublicKey) -> str:
    der = public_key.public_bytes(serialization.Encoding.DER,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    digest = hashlib.sha256(der).hexdigest()
    return " ".join(digest[i : i + 4] for i in range(0, 64, 4))


@pytest.mark.parametrize("name", EXPECTED["files"])
def test_key_file_vectors_in_every_encoding(name: str) -> None:
    key_file = parse_key_file((VECTORS / "keyfiles" / name).read_bytes())
    assert key_file.valid_from == dt.date.fromisoformat(EXPECTED["gyldigFra"])
    assert key_file.valid_to == dt.date.fromisoformat(EXPECTED["gyldigTil"])
    for key, expected in ((key_file.tpf, EXPECTED["tpf"]), (key_file.iplos, EXPECTED["iplos"])):
        assert key.key_id == expected["id"]
        assert key.bits == expected["bits"]
        assert key.fingerprint() == expected["fingerprint"]  # computed by openssl
    assert describe_key_file(key_file) == [
        "Gyldig fra 2026-01-01 til og med 2026-12-31",
        f"TPF-nøkkel tpf-vektor (2048 biter): {EXPECTED['tpf']['fingerprint']}",
        f"IPLOS-nøkkel iplos-vektor (2048 biter): {EXPECTED['iplos']['fingerprint']}",
    ]


@pytest.mark.parametrize("case", EXPECTED["invalid"], ids=[c["file"] for c in EXPECTED["invalid"]])
def test_invalid_key_file_vectors(case: dict[str, str]) -> None:
    with pytest.raises(KeyFileInvalid) as caught:
        parse_key_file((VECTORS / "keyfiles" / case["file"]).read_bytes())
    assert caught.value.message == case["message"]


def test_validity_dates_inclusive() -> None:
    key_file = parse_key_file((VECTORS / "keyfiles" / "utf-8.txt").read_bytes())
    key_file.check_dates(dt.date(2026, 1, 1))
    key_file.check_dates(dt.date(2026, 12, 31))
    with pytest.raises(KeyFileExpired) as expired:
        key_file.check_dates(dt.date.fromisoformat(EXPECTED["expired"]["today"]))
    assert expired.value.message == EXPECTED["expired"]["message"]
    with pytest.raises(KeyFileNotYetValid) as early:
        key_file.check_dates(dt.date.fromisoformat(EXPECTED["not_yet_valid"]["today"]))
    assert early.value.message == EXPECTED["not_yet_valid"]["message"]


def test_expiry_warning_within_30_days() -> None:
    key_file = parse_key_file((VECTORS / "keyfiles" / "utf-8.txt").read_bytes())
    assert key_file.expiry_warning(dt.date(2026, 11, 30)) is None
    assert key_file.expiry_warning(dt.date(2026, 12, 21)) == (
        "Nøkkelfilen utløper 2026-12-31 (om 10 dager). Hent den nye nøkkelfilen fra SSB før "
        "neste innsending."
    )


def test_fingerprint_is_sha256_of_cryptographys_own_der(keys: Keys) -> None:
    for key, pem in ((keys.key_file.tpf, keys.tpf_pem), (keys.key_file.iplos, keys.iplos_pem)):
        private = serialization.load_pem_private_key(pem, password=None)
        assert key.fingerprint() == spki_sha256(private.public_key())
        der = private.public_key().public_bytes(serialization.Encoding.DER,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
        assert key.spki_der() == der


@pytest.mark.parametrize("modulus_bits", [2048, 2049, 3072, 4096])
def test_spki_der_for_awkward_moduli(modulus_bits: int) -> None:
    """Leading-zero/sign-bit cases of the DER INTEGER, checked against cryptography."""
    modulus = (1 << (modulus_bits - 1)) | 0xF1  # odd, top bit set
    key = RsaPublicKey("x", modulus, 65537)
    public = rsa.RSAPublicNumbers(65537, modulus).public_key()
    assert key.fingerprint() == spki_sha256(public)


def test_render_then_parse_is_identity(keys: Keys) -> None:
    raw = render_key_file(keys.key_file)
    assert raw.startswith(b"\xff\xfe")
    assert raw[2:].decode("utf-16-le").startswith('<?xml version="1.0" encoding="utf-16"?>')
    assert parse_key_file(raw) == keys.key_file
    text = raw[2:].decode("utf-16-le")
    assert parse_key_file(text.encode("utf-8")) == keys.key_file
    assert parse_key_file(b"\xef\xbb\xbf" + text.encode("utf-8")) == keys.key_file


def test_keys_generate(tmp_path, capsys) -> None:
    folder = tmp_path / "nokler"
    assert main(["keys", "generate", "--out-dir", str(folder), "--valid-from", "2026-12-01",
                 "--bits", "2048"]) == 0
    out = capsys.readouterr().out
    names = sorted(os.listdir(folder))
    assert names == ["iplos-privat.pem", "nokkelfil.xml", "tpf-privat.pem"]
    raw = (folder / "nokkelfil.xml").read_bytes()
    assert raw.startswith(b"\xff\xfe")  # UTF-16 LE with BOM
    key_file = parse_key_file(raw)
    assert (key_file.valid_from, key_file.valid_to) == (dt.date(2026, 12, 1), dt.date(2027, 11, 30))
    for name, key in (("tpf-privat.pem", key_file.tpf), ("iplos-privat.pem", key_file.iplos)):
        path = folder / name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        pem = path.read_bytes()
        assert pem.startswith(b"-----BEGIN PRIVATE KEY-----\n")  # PKCS#8, unencrypted
        private = serialization.load_pem_private_key(pem, password=None)
        assert isinstance(private, rsa.RSAPrivateKey) and private.key_size == 2048
        assert private.public_key().public_numbers().n == key.modulus
        assert key.fingerprint() in out
    assert "Gyldig fra 2026-12-01 til og med 2027-11-30" in out
    assert not [n for n in os.listdir(folder) if n.endswith(".tmp")]


def test_keys_generate_default_is_3072_bits(tmp_path, capsys) -> None:
    assert main(["keys", "generate", "--out-dir", str(tmp_path), "--valid-from", "2028-02-29"]) == 0
    key_file = parse_key_file((tmp_path / "nokkelfil.xml").read_bytes())
    assert key_file.tpf.bits == key_file.iplos.bits == 3072
    assert key_file.valid_to == dt.date(2029, 2, 27)  # one year: the day before 28 Feb 2029


@pytest.mark.parametrize("name", EXPECTED["files"])
def test_keys_show(name: str, capsys) -> None:
    assert main(["keys", "show", str(VECTORS / "keyfiles" / name), "--today", "2026-06-01"]) == 0
    out = capsys.readouterr().out
    assert out == (
        "Gyldig fra 2026-01-01 til og med 2026-12-31\n"
        f"TPF-nøkkel tpf-vektor (2048 biter): {EXPECTED['tpf']['fingerprint']}\n"
        f"IPLOS-nøkkel iplos-vektor (2048 biter): {EXPECTED['iplos']['fingerprint']}\n"
    )


def test_keys_show_expired_and_invalid(capsys) -> None:
    path = VECTORS / "keyfiles" / "utf-16le-bom.xml"
    assert main(["keys", "show", str(path), "--today", "2027-01-01"]) == 0
    assert "Advarsel: " + EXPECTED["expired"]["message"] in capsys.readouterr().out
    bad = EXPECTED["invalid"][0]
    assert main(["keys", "show", str(VECTORS / "keyfiles" / bad["file"])]) == 1
    assert capsys.readouterr().err == bad["message"] + "\n"
    assert main(["keys", "show", str(VECTORS / "keyfiles" / "finnes-ikke.xml")]) == 1
    assert capsys.readouterr().err == "Nøkkelfilen kunne ikke åpnes.\n"


# --- every way a key file is refused (issue 8.6) ----------------------------------------------

GOOD = (VECTORS / "keyfiles" / "utf-8.txt").read_text(encoding="utf-8")
_TPF_KEY = GOOD[GOOD.index('  <Nokkel mottaker="TPF"') : GOOD.index('  <Nokkel mottaker="IPLOS"')]
_IPLOS_KEY = GOOD[GOOD.index('  <Nokkel mottaker="IPLOS"') : GOOD.index("</IPLOSKrypt")]
_TPF_MODULUS = _TPF_KEY.split("<Modulus>")[1].split("</Modulus>")[0]


def _invalid(detail: str) -> str:
    return f"Nøkkelfilen er ikke gyldig: {detail}. Hent nøkkelfilen på nytt fra SSB."


@pytest.mark.parametrize(
    ("edit", "detail"),
    [
        (lambda t: t + " " * 1_000_000, "filen er altfor stor til å være en nøkkelfil"),
        (lambda t: t.replace("?>", '?><!ENTITY x "y">', 1),
         "filen har en dokumenttypedefinisjon (DOCTYPE)"),
        (lambda t: t.replace("</Nokkel>", "</Nokel>", 1), "filen er ikke gyldig XML"),
        (lambda t: t.replace("IPLOSKrypteringsnokler", "Nokler"),
         "rotelementet er ikke IPLOSKrypteringsnokler"),
        (lambda t: t.replace(' gyldigFra="2026-01-01"', ""),
         "datoen gyldigFra mangler eller er ikke på formen ÅÅÅÅ-MM-DD"),
        (lambda t: t.replace('gyldigTil="2026-12-31"', 'gyldigTil="31.12.2026"'),
         "datoen gyldigTil mangler eller er ikke på formen ÅÅÅÅ-MM-DD"),
        (lambda t: t.replace("  <Nokkel", "  <Nøkkel/>\n  <Nokkel", 1), "ukjent element Nøkkel"),
        (lambda t: t.replace('mottaker="TPF"', 'mottaker="SSB"'), "ukjent mottaker «SSB»"),
        (lambda t: t.replace('mottaker="IPLOS"', 'mottaker="TPF"'),
         "den har mer enn én nøkkel for TPF"),
        (lambda t: t.replace('id="tpf-vektor"', 'id=" "'), "nøkkelen for TPF mangler id"),
        (lambda t: t.replace(_TPF_KEY, '  <Nokkel mottaker="TPF" id="t"/>\n'),
         "nøkkelen for TPF mangler RSAKeyValue"),
        (lambda t: t.replace(f"<Modulus>{_TPF_MODULUS}</Modulus>", "<Modulus> </Modulus>"),
         "nøkkelen for TPF mangler Modulus"),
        (lambda t: t.replace("<Exponent>AQAB</Exponent>", "", 1),
         "nøkkelen for TPF mangler Exponent"),
        (lambda t: t.replace(_TPF_MODULUS, "ikke%base64"),
         "Modulus i nøkkelen for TPF er ikke gyldig base64"),
        (lambda t: t.replace("<Exponent>AQAB</Exponent>", "<Exponent>AQAC</Exponent>", 1),
         "eksponenten i nøkkelen for TPF er ikke gyldig"),
        (lambda t: t.replace("<Exponent>AQAB</Exponent>", "<Exponent>Ag==</Exponent>", 1),
         "eksponenten i nøkkelen for TPF er ikke gyldig"),
        (lambda t: t.replace(_TPF_KEY, ""), "den mangler nøkkelen for TPF"),
    ],
    ids=["too-large", "entity", "not-xml", "root", "no-valid-from", "valid-to-form",
         "unknown-element", "unknown-recipient", "two-tpf-keys", "no-id", "no-rsakeyvalue",
         "no-modulus", "no-exponent", "bad-base64", "even-exponent", "exponent-2", "no-tpf-key"],
)
def test_every_invalid_key_file_path_has_its_message(edit: object, detail: str) -> None:
    raw = edit(GOOD).encode("utf-8")  # type: ignore[operator]
    with pytest.raises(KeyFileInvalid) as caught:
        parse_key_file(raw)
    assert caught.value.message == _invalid(detail)
    assert caught.value.field == "keys"


DAMAGED = EXPECTED["damaged"]


@pytest.mark.parametrize("case", DAMAGED["files"], ids=[c["file"] for c in DAMAGED["files"]])
def test_key_file_cut_short_is_damaged_not_the_wrong_charset(case: dict[str, str]) -> None:
    """Issue 10.7: a download cut short is reported as damaged."""
    with pytest.raises(KeyFileDamaged) as caught:
        parse_key_file((VECTORS / "keyfiles" / case["file"]).read_bytes())
    assert caught.value.message == DAMAGED["message"]


@pytest.mark.parametrize("name", ["utf-16le-bom.xml", "utf-16be-bom.xml", "utf-8-bom.xml",
                                  "utf-8.txt"])
def test_a_key_file_cut_anywhere_is_damaged(name: str) -> None:
    raw = (VECTORS / "keyfiles" / name).read_bytes()
    for cut in range(0, len(raw) - 30, 7):  # short of the end tag, in either encoding
        with pytest.raises(KeyFileDamaged):
            parse_key_file(raw[:cut])


def test_key_file_that_cannot_be_read(tmp_path) -> None:
    for path in (tmp_path / "finnes-ikke.xml", tmp_path):  # missing; a folder
        with pytest.raises(KeyFileUnreadable) as caught:
            load_key_file(str(path), dt.date(2026, 6, 1))
        assert caught.value.message == "Nøkkelfilen kunne ikke åpnes."


def test_load_key_file_checks_the_dates(tmp_path) -> None:
    path = tmp_path / "nokkelfil.xml"
    path.write_bytes((VECTORS / "keyfiles" / "utf-16le-bom.xml").read_bytes())
    assert load_key_file(str(path), dt.date(2026, 6, 1)).tpf.key_id == "tpf-vektor"
    with pytest.raises(KeyFileExpired):
        load_key_file(str(path), dt.date(2027, 1, 1))
    with pytest.raises(KeyFileNotYetValid):
        load_key_file(str(path), dt.date(2025, 12, 31))
