"""Generating a key pair set and its public key file (SSB's yearly job; demo keys here)."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .atomic import AtomicOutput
from .keyfile import KeyFile, render_key_file
from .rsakey import RsaPublicKey

NEW_KEY_BITS = 3072  # formats §2; ~128-bit security, NIST SP 800-57 beyond 2030
TPF_PRIVATE_FILE = "tpf-privat.pem"
IPLOS_PRIVATE_FILE = "iplos-privat.pem"
KEY_FILE = "nokkelfil.xml"


@dataclass(frozen=True)
class GeneratedKeys:
    key_file: KeyFile
    tpf_private_pem: bytes
    iplos_private_pem: bytes


def one_year_from(valid_from: dt.date) -> dt.date:
    """The last valid day: the day before the same date next year (1 Dec -> 30 Nov)."""
    try:
        next_year = valid_from.replace(year=valid_from.year + 1)
    except ValueError:  # 29 February
        next_year = valid_from.replace(year=valid_from.year + 1, day=28)
    return next_year - dt.timedelta(days=1)


def _pair(key_id: str, bits: int) -> tuple[RsaPublicKey, bytes]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    numbers = private.public_key().public_numbers()
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return RsaPublicKey(key_id, numbers.n, numbers.e), pem


def generate_keys(valid_from: dt.date, bits: int = NEW_KEY_BITS) -> GeneratedKeys:
    year = valid_from.year
    tpf, tpf_pem = _pair(f"tpf-{year}", bits)
    iplos, iplos_pem = _pair(f"iplos-{year}", bits)
    key_file = KeyFile("1", valid_from, one_year_from(valid_from), tpf, iplos)
    return GeneratedKeys(key_file, tpf_pem, iplos_pem)


def write_keys(keys: GeneratedKeys, out_dir: str) -> list[str]:
    """Private keys as PKCS#8 PEM with mode 0600, the public key file as UTF-16 with BOM."""
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for name, data, mode in (
        (TPF_PRIVATE_FILE, keys.tpf_private_pem, 0o600),
        (IPLOS_PRIVATE_FILE, keys.iplos_private_pem, 0o600),
        (KEY_FILE, render_key_file(keys.key_file), 0o644),
    ):
        path = os.path.join(out_dir, name)
        with AtomicOutput(path) as handle:
            os.fchmod(handle.fileno(), mode)  # before any key byte is written
            handle.write(data)
        written.append(path)
    return written
