"""Helpers for the TPF's tests: yearly keys, files with chosen numbers, a running ``ipis tpf
serve``, and an independent reader of the §4 message (cryptography + ElementTree, written
from docs/formater.md §4, not from the TPF's code)."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime as dt
import functools
import hashlib
import os
import re
import secrets
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from server_testlib import REPO, free_port, wait_for_http

from ipis_core.contact import Contact
from ipis_core.crypto.native import NativeBackend
from ipis_core.demo_data import document_bytes
from ipis_core.identifiers import fnr_check_digits
from ipis_core.keyfile import KeyFile
from ipis_core.keygen import generate_keys, write_keys
from ipis_core.message import MessageEncryptor

TOKEN = "tpf-test-token-" + "k" * 24
XENC = "http://www.w3.org/2001/04/xmlenc#"
DS = "http://www.w3.org/2000/09/xmldsig#"
NS = {"xenc": XENC, "ds": DS}
FNR_RE = re.compile(rb"<Fodselsnummer>(\d{11})</Fodselsnummer>")
CONTACT = Contact.validated("iplos@kommune.no", "Kari Nordmann", "912 34 567")


@dataclass(frozen=True)
class KeySet:
    """One year's keys as ``ipis keys generate`` writes them."""

    folder: Path
    key_file: KeyFile

    @property
    def tpf_key_id(self) -> str:
        return self.key_file.tpf.key_id

    def private(self, party: str) -> rsa.RSAPrivateKey:
        name = "tpf-privat.pem" if party == "tpf" else "iplos-privat.pem"
        key = serialization.load_pem_private_key((self.folder / name).read_bytes(), None)
        assert isinstance(key, rsa.RSAPrivateKey)
        return key


def make_key_set(folder: Path, valid_from: dt.date) -> KeySet:
    keys = generate_keys(valid_from, bits=2048)
    write_keys(keys, str(folder))
    return KeySet(folder, keys.key_file)


def numbers_of(cleartext: bytes) -> list[str]:
    return [m.decode() for m in FNR_RE.findall(cleartext)]


def cleartext(persons: int, seed: int = 1, replace: dict[int, str] | None = None) -> bytes:
    """A demo IPLOS file (synthetic numbers); ``replace``: person index -> number to use."""
    data = document_bytes(persons, seed=seed)
    return replace_numbers(data, replace) if replace else data


def replace_numbers(data: bytes, replace: dict[int, str]) -> bytes:
    """An IPLOS file with the fødselsnummer of each person index in ``replace`` changed."""
    index = iter(range(len(FNR_RE.findall(data))))

    def swap(match: re.Match[bytes]) -> bytes:
        at = next(index)
        if at in replace:
            return b"<Fodselsnummer>" + replace[at].encode() + b"</Fodselsnummer>"
        return match.group(0)

    return FNR_RE.sub(swap, data)


def encrypt(data: bytes, key_file: KeyFile, today: dt.date | None = None) -> bytes:
    async def run() -> bytes:
        day = today or key_file.valid_from
        encryptor = MessageEncryptor(key_file, CONTACT, NativeBackend(), day)
        return await encryptor.feed(data) + await encryptor.finish()

    return asyncio.run(run())


def wrong_check_digits(number: str) -> str:
    """The same number with its last digit changed: fails the check."""
    return number[:10] + str((int(number[10]) + 1) % 10)


def impossible_date(month_offset: int = 80) -> str:
    """31 February (synthetic month) with right check digits: passes the check, not the date."""
    for individual in range(100, 500):
        stem = f"31{2 + month_offset:02d}70{individual:03d}"
        digits = fnr_check_digits(stem)
        if digits is not None:
            return stem + digits
    raise AssertionError("no stem")


def synthetic(day: int, month: int, year: int, individual: int) -> str:
    """A valid synthetic number (month + 80) with right check digits."""
    for candidate in range(individual, individual + 200):
        stem = f"{day:02d}{month + 80:02d}{year % 100:02d}{candidate:03d}"
        digits = fnr_check_digits(stem)
        if digits is not None:
            return stem + digits
    raise AssertionError("no stem")


# --- the §4 message, read independently ----------------------------------------------------


@dataclass(frozen=True)
class Pseudonymised:
    clear: ET.Element
    content_xml: bytes
    content: ET.Element
    key_name: str

    def persons(self) -> list[ET.Element]:
        return self.content.findall("Personer/Person")


def _gcm_open(key: bytes, cipher_value: bytes) -> bytes:
    return AESGCM(key).decrypt(cipher_value[:12], cipher_value[12:], None)


def open_pseudonymised(data: bytes, register: rsa.RSAPrivateKey) -> Pseudonymised:
    clear = ET.fromstring(data)
    encrypted = clear.find("xenc:EncryptedData", NS)
    assert encrypted is not None and encrypted.get("Id") == "pseudonymisert-lag"
    key = encrypted.find("ds:KeyInfo/xenc:EncryptedKey", NS)
    assert key is not None
    wrapped = base64.b64decode(key.findtext("xenc:CipherData/xenc:CipherValue", "", NS))
    content_key = register.decrypt(wrapped, padding.OAEP(
        mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None))
    body = base64.b64decode(encrypted.findtext("xenc:CipherData/xenc:CipherValue", "", NS))
    content_xml = _gcm_open(content_key, body)
    return Pseudonymised(clear, content_xml, ET.fromstring(content_xml),
                         key.findtext("ds:KeyInfo/ds:KeyName", "", NS))


def hmac_pseudonym(secret: bytes, number: str) -> str:
    import hmac

    return hmac.new(secret, number.encode(), hashlib.sha256).hexdigest()[:32]


# --- a TPF instance and a running `ipis tpf serve` ------------------------------------------


def install_keys(instance: Path, *key_sets: KeySet) -> None:
    from ipis_server.keyring import Keyring

    ring = Keyring(instance / "nokler", "tpf")
    for key_set in key_sets:
        ring.install_from_folder(key_set.folder)


def tpf_config(instance: Path, database_url: str, **changes: Any) -> Any:
    from ipis_server.tpf.config import TpfConfig

    instance.mkdir(parents=True, exist_ok=True)
    config = TpfConfig(
        instance_dir=instance,
        database_url=database_url,
        storage_dir=instance / "lager",
        keys_dir=instance / "nokler",
        secret_dir=instance / "hemmelighet",
        tokens=(TOKEN,),
        test_numbers=True,
        register_inbox_dir=instance / "register-innboks",
        worker_idle_seconds=0.05,
        retry_base_seconds=0.2,
    )
    return dataclasses.replace(config, **changes)


@dataclass
class RunningTpf:
    url: str  # the intake: PUT/GET {url}/{id}
    instance: Path
    log: Path
    process: subprocess.Popen[str]
    env: dict[str, str]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def put(self, submission_id: str, body: bytes, token: str = TOKEN,
            sha256: str | None = None) -> requests.Response:
        return requests.put(f"{self.url}/{submission_id}", data=body, timeout=120, headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/xml",
            "X-IPIS-SHA256": sha256 or hashlib.sha256(body).hexdigest()})

    def get(self, submission_id: str, token: str = TOKEN) -> requests.Response:
        return requests.get(f"{self.url}/{submission_id}", timeout=30,
                            headers={"Authorization": f"Bearer {token}"})


def start_tpf(instance: Path, env: dict[str, str] | None = None,
              worker: bool = True) -> RunningTpf:
    """``ipis tpf serve`` on a free loopback port; waits until it answers."""
    instance.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = instance.parent / f"{instance.name}-tpf.log"
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "IPIS_TPF_TOKEN": TOKEN,
                "IPIS_TPF_TEST_NUMBERS": "1", "IPIS_TPF_WORKER_IDLE_SECONDS": "0.1",
                "IPIS_TPF_RETRY_BASE_SECONDS": "0.2", **(env or {})}
    with log.open("w", encoding="utf-8") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "ipis_server", "tpf", "serve", "--host", "127.0.0.1",
             "--port", str(port), "--instance", str(instance),
             *([] if worker else ["--no-worker"])],
            stdout=handle, stderr=subprocess.STDOUT, text=True, cwd=REPO, env=full_env,
        )
    running = RunningTpf(f"http://127.0.0.1:{port}/innsendinger", instance, log, process,
                         full_env)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/", process, timeout=60)
    except BaseException:
        running.stop()
        raise
    return running


def new_id() -> str:
    return secrets.token_hex(16)


# --- yearly keys and a TPF app for in-process tests -------------------------------------------

DAY = dt.date(2026, 12, 10)  # in the overlap: tpf-2026 current, tpf-2025 still accepted


@functools.lru_cache(maxsize=1)
def yearly_keys() -> dict[int, KeySet]:
    """Key sets valid from 1 December 2024, 2025 and 2026: made once per test process."""
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="ipis-tpf-keys-"))
    return {year: make_key_set(root / str(year), dt.date(year, 12, 1)) for year in (2024, 2025,
                                                                                   2026)}


def put_client(client: Any, submission_id: str, body: bytes, token: str = TOKEN) -> Any:
    """PUT through a Flask test client."""
    return client.put(f"/innsendinger/{submission_id}", data=body, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/xml",
        "X-IPIS-SHA256": hashlib.sha256(body).hexdigest()})


def delivered_to_register(instance: Path) -> list[Path]:
    folder = instance / "register-innboks"
    return sorted(folder.glob("*.xml")) if folder.exists() else []


def tpf_app(tmp_path: Path, database_url: str, years: tuple[int, ...] = (2025, 2026),
            day: dt.date = DAY) -> Any:
    """A TPF app whose keyring holds these years' keys, on a fixed day."""
    from ipis_server.tpf import create_app

    keys = yearly_keys()
    instance = tmp_path / "tpf"
    install_keys(instance, *(keys[year] for year in years))
    return create_app(tpf_config(instance, database_url), today=lambda: day)
