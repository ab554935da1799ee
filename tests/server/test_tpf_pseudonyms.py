"""Pseudonyms: the vectors, which numbers count, stable across files and years, the secret id,
aliases after a D-number change, and the mapping after a secret rotation."""

from __future__ import annotations

import io
import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select
from tpf_testlib import (
    cleartext,
    delivered_to_register,
    encrypt,
    hmac_pseudonym,
    new_id,
    numbers_of,
    open_pseudonymised,
    put_client,
    synthetic,
    tpf_app,
    yearly_keys,
)

from ipis_core.identifiers import fnr_valid
from ipis_server.tpf.changes import ChangeListHeader, ChangeListRows, import_changes
from ipis_server.tpf.models import CURRENT, MAPPING, RETIRED, PseudonymSecret, RegisterOutboxItem
from ipis_server.tpf.processing import pseudonymise
from ipis_server.tpf.pseudonyms import Pseudonymiser, SecretStore, pseudonym
from ipis_server.tpf.rotation import RotationRefused, rotate_secret
from ipis_server.tpf.secret_state import current_pseudonymiser
from ipis_server.tpf.services import tpf_services
from ipis_server.tpf.worker import TpfWorker

VECTORS = json.loads(
    (Path(__file__).resolve().parents[1] / "vectors" / "tpf" / "pseudonymer.json").read_text()
)


@pytest.mark.parametrize("case", VECTORS["pseudonyms"], ids=lambda c: c["number"])
def test_pseudonym_vectors(case: dict[str, str]) -> None:
    secret = bytes.fromhex(case["secret"])
    assert pseudonym(secret, case["number"]) == case["pseudonym"]
    assert Pseudonymiser("tpf-h1", secret, {}, True)(case["number"]) == case["pseudonym"]


@pytest.mark.parametrize("case", VECTORS["numbers"], ids=lambda c: c["why"])
def test_which_numbers_are_pseudonymised(case: dict[str, object]) -> None:
    number, test_mode = str(case["number"]), bool(case["test_mode"])
    assert fnr_valid(number, test_mode) is case["valid"]
    result = Pseudonymiser("tpf-h1", b"s" * 32, {}, test_mode)(number)
    assert (result is not None) is case["valid"]


def test_pseudonymiser_never_shows_its_secret_or_aliases() -> None:
    shown = repr(Pseudonymiser("tpf-h7", b"\x01" * 32, {"a" * 32: "b" * 32}))
    assert "tpf-h7" in shown and "01" * 8 not in shown and "a" * 32 not in shown


def _process(data: bytes, year: int, pseudonymiser: Pseudonymiser) -> list[tuple[str, str]]:
    keys = yearly_keys()
    sink = io.BytesIO()
    pseudonymise(io.BytesIO(data), sink, private_key=keys[year].private("tpf"),
                 register_key=keys[2026].key_file.iplos, pseudonymiser=pseudonymiser,
                 innsending_id=new_id())
    opened = open_pseudonymised(sink.getvalue(), keys[2026].private("register"))
    marker = opened.content.find("Pseudonymisering")
    assert marker is not None and marker.get("hemmelighetId") == pseudonymiser.secret_id
    return [(p.get("lopenummer", ""), p.get("pseudonym", "")) for p in opened.persons()]


def test_same_person_same_pseudonym_across_files_and_years() -> None:
    keys = yearly_keys()
    secret = b"\x42" * 32
    person = synthetic(12, 5, 1931, 123)
    first = cleartext(5, seed=3, replace={0: person})
    second = cleartext(7, seed=9, replace={6: person})
    a = _process(encrypt(first, keys[2025].key_file), 2025, Pseudonymiser("tpf-h1", secret))
    b = _process(encrypt(second, keys[2026].key_file), 2026, Pseudonymiser("tpf-h1", secret,
                                                                              allow_synthetic=True))
    # Not in test mode, the synthetic numbers of the demo data are invalid: no pseudonyms.
    assert all(p == "" for _, p in a)
    a = _process(encrypt(first, keys[2025].key_file), 2025,
                 Pseudonymiser("tpf-h1", secret, allow_synthetic=True))
    assert a[0][1] == b[6][1] == hmac_pseudonym(secret, person)
    assert len({p for _, p in a + b}) == len(a) + len(b) - 1  # the others all differ
    other = _process(encrypt(first, keys[2025].key_file), 2025,
                     Pseudonymiser("tpf-h2", b"\x43" * 32, allow_synthetic=True))
    assert other[0][1] != a[0][1]


# --- with a TPF instance -----------------------------------------------------------------------


@pytest.fixture
def tpf(tmp_path: Path, database_url: str) -> Iterator[Flask]:
    app = tpf_app(tmp_path, database_url)
    yield app
    tpf_services(app).dispose()


def _secret(app: Flask) -> bytes:
    svc = tpf_services(app)
    with svc.db.session() as db:
        identifier = db.scalar(select(PseudonymSecret.id).where(PseudonymSecret.state == CURRENT))
    assert identifier is not None
    return svc.secrets.load(identifier)


def test_secret_file_is_private_and_stable(tpf: Flask) -> None:
    svc = tpf_services(tpf)
    path = svc.secrets.path("tpf-h1")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(bytes.fromhex(path.read_text())) == 32
    assert not SecretStore(svc.secrets.folder).create("tpf-h1")  # never replaced
    assert current_pseudonymiser(svc.db, svc.secrets, True).secret_id == "tpf-h1"


def test_d_number_change_keeps_the_pseudonym(tpf: Flask, tmp_path: Path) -> None:
    svc = tpf_services(tpf)
    d_number = synthetic(45, 3, 1980, 200)  # day + 40: a synthetic D-number
    assert d_number.startswith("45")
    new_number = synthetic(5, 3, 1980, 300)
    later_number = synthetic(6, 3, 1980, 400)
    listing = tmp_path / "endringer.csv"
    listing.write_text(f"\ufeffgammelt_nummer;nytt_nummer;dato\n{d_number};{new_number};2026-05-02\n"
                       f"\n{new_number};{later_number};2026-09-01\n", encoding="utf-8")
    lines = import_changes(svc, listing)
    assert "Nye aliaser: 2" in "\n".join(lines)
    for line in lines:
        assert d_number not in line and new_number not in line
    secret = _secret(tpf)
    pseudonymiser = current_pseudonymiser(svc.db, svc.secrets, True)
    expected = hmac_pseudonym(secret, d_number)
    assert pseudonymiser(d_number) == pseudonymiser(new_number) == pseudonymiser(later_number) \
        == expected
    assert "Allerede kjent: 2" in "\n".join(import_changes(svc, listing))  # idempotent
    # Nothing of the numbers is stored: only pseudonyms.
    for path in tpf_services(tpf).config.instance_dir.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            for number in (d_number, new_number, later_number):
                assert number.encode() not in content, path


def test_change_list_faults_name_lines_not_numbers(tpf: Flask, tmp_path: Path) -> None:
    svc = tpf_services(tpf)
    good = synthetic(5, 3, 1980, 300)
    bad = good[:10] + str((int(good[10]) + 1) % 10)
    listing = tmp_path / "feil.csv"
    listing.write_text(f"gammelt_nummer,nytt_nummer\n{good},{bad}\n{good},{good}\n",
                       encoding="utf-8")
    with pytest.raises(ChangeListRows) as refused:
        import_changes(svc, listing)
    assert "(linje 2, 3)" in refused.value.message
    assert good not in refused.value.message and bad not in refused.value.message
    (tmp_path / "uten.csv").write_text(f"{good};{good}\n", encoding="utf-8")
    with pytest.raises(ChangeListHeader):
        import_changes(svc, tmp_path / "uten.csv")


def test_rotation_maps_every_retained_person_and_keeps_aliases(tpf: Flask,
                                                               tmp_path: Path) -> None:
    keys = yearly_keys()
    svc = tpf_services(tpf)
    client = tpf.test_client()
    d_number, new_number = synthetic(45, 3, 1980, 200), synthetic(5, 3, 1980, 300)
    first = cleartext(6, seed=11, replace={0: d_number})
    second = cleartext(4, seed=12, replace={1: new_number})
    listing = tmp_path / "endringer.csv"
    listing.write_text(f"gammelt_nummer;nytt_nummer\n{d_number};{new_number}\n")
    import_changes(svc, listing)
    for data, year in ((first, 2025), (second, 2026)):
        assert put_client(client, new_id(), encrypt(data, keys[year].key_file)).status_code == 202
    worker = TpfWorker(svc)
    worker.drain()
    old_secret = _secret(tpf)
    lines = rotate_secret(svc)
    assert "Ny pseudonymhemmelighet: tpf-h2" in lines[0]
    assert not svc.secrets.path("tpf-h1").exists()
    with svc.db.session() as db:
        states = dict(db.execute(select(PseudonymSecret.id, PseudonymSecret.state)).all())
        assert states == {"tpf-h1": RETIRED, "tpf-h2": CURRENT}
        [mapping_row] = db.scalars(select(RegisterOutboxItem).where(
            RegisterOutboxItem.kind == MAPPING)).all()
    worker.drain()  # delivers the mapping
    delivered = [p for p in delivered_to_register(svc.config.instance_dir)
                 if p.name == f"{mapping_row.delivery_id}.xml"]
    [path] = delivered
    opened = _open_mapping(path.read_bytes(), keys[2026].private("register"))
    new_secret = _secret(tpf)
    numbers = numbers_of(first) + numbers_of(second)
    expected = {hmac_pseudonym(old_secret, n): hmac_pseudonym(new_secret, n) for n in numbers
                if n != new_number}
    assert opened == expected  # the D-number's person: one entry, under its D-number
    pseudonymiser = current_pseudonymiser(svc.db, svc.secrets, True)
    assert pseudonymiser(new_number) == pseudonymiser(d_number) == hmac_pseudonym(new_secret,
                                                                                  d_number)
    # Messages after the rotation use the new secret.
    again = cleartext(3, seed=11)
    assert put_client(client, new_id(), encrypt(again, keys[2026].key_file)).status_code == 202
    worker.drain()
    assert "tpf-h2" in "".join(lines)


def _open_mapping(data: bytes, register: object) -> dict[str, str]:
    import base64
    import xml.etree.ElementTree as ET

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    ns = {"xenc": "http://www.w3.org/2001/04/xmlenc#", "ds": "http://www.w3.org/2000/09/xmldsig#"}
    clear = ET.fromstring(data)
    assert clear.tag == "IPLOSPseudonymbytte" and len(clear) == 1
    encrypted = clear.find("xenc:EncryptedData", ns)
    assert encrypted is not None and encrypted.get("Id") == "pseudonymbytte-lag"
    wrapped = base64.b64decode(encrypted.findtext(
        "ds:KeyInfo/xenc:EncryptedKey/xenc:CipherData/xenc:CipherValue", "", ns))
    key = register.decrypt(wrapped, padding.OAEP(  # type: ignore[attr-defined]
        mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None))
    body = base64.b64decode(encrypted.findtext("xenc:CipherData/xenc:CipherValue", "", ns))
    content = ET.fromstring(AESGCM(key).decrypt(body[:12], body[12:], None))
    assert content.get("fraHemmelighetId") == "tpf-h1"
    assert content.get("tilHemmelighetId") == "tpf-h2"
    pairs = {b.get("fra", ""): b.get("til", "") for b in content.findall("Bytte")}
    counted = content.find("Opptelling")
    assert counted is not None and counted.get("antallBytter") == str(len(pairs))
    return pairs


def test_rotation_waits_for_the_register_outbox(tpf: Flask) -> None:
    keys = yearly_keys()
    svc = tpf_services(tpf)
    put_client(tpf.test_client(), new_id(), encrypt(cleartext(2), keys[2026].key_file))
    TpfWorker(svc).processing.process_one()  # processed, not yet delivered to the register
    with pytest.raises(RotationRefused) as refused:
        rotate_secret(svc)
    assert "Vent til utboksen til registeret er tom" in refused.value.message
    with svc.db.session() as db:
        assert db.scalar(select(PseudonymSecret.state).where(PseudonymSecret.id == "tpf-h1")) \
            == CURRENT


def test_secret_ids_are_checked(tmp_path: Path) -> None:
    store = SecretStore(tmp_path)
    for bad in ("../x", "tpf-h0", "h1", "tpf-h1/"):
        with pytest.raises(ValueError):
            store.path(bad)
