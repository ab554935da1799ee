"""Typed configuration of the TPF, read once from ``IPIS_TPF_*`` (docs/drift.md).

Everything has a default under the TPF's own instance folder (SQLite file, storage, keyring,
pseudonym secret), so ``ipis tpf serve`` runs alone with no setup; production sets the
database URL, the tokens and the register's URL.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from ..keyring import DEFAULT_OVERLAP_DAYS, keys_dir, overlap_days, party_instance

DEFAULT_MAX_UPLOAD_BYTES = 1024**3 + 64 * 1024**2  # the send module's 1 GB and its margin


class TpfConfigError(Exception):
    """A setting is missing or malformed; the message names the variable."""


def _env(name: str) -> str:
    return os.environ.get(name, "").strip()


def _float(name: str, default: float) -> float:
    raw = _env(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise TpfConfigError(f"{name} må være et tall") from None
    if not value > 0:
        raise TpfConfigError(f"{name} må være større enn null")
    return value


def _int(name: str, default: int) -> int:
    raw = _env(name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise TpfConfigError(f"{name} må være et heltall") from None


def _bool(name: str) -> bool:
    return _env(name).lower() in {"1", "true", "ja", "yes", "on"}


def load_tokens(instance_dir: Path) -> tuple[str, ...]:
    """The bearer tokens the send module may use: ``IPIS_TPF_TOKEN`` (comma-separated, so an
    old and a new token both work while the send module changes over), else one random token
    kept in ``<instance>/token`` (0600) for the demo."""
    configured = tuple(t.strip() for t in _env("IPIS_TPF_TOKEN").split(",") if t.strip())
    if configured:
        return configured
    path = instance_dir / "token"
    if not path.exists():
        instance_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it first
        else:
            with os.fdopen(descriptor, "w", encoding="ascii") as handle:
                handle.write(secrets.token_urlsafe(32))
    return (path.read_text(encoding="ascii").strip(),)


@dataclass(frozen=True)
class TpfConfig:
    """All settings of one TPF instance (tests build one per test; no module globals)."""

    instance_dir: Path
    database_url: str
    storage_dir: Path
    keys_dir: Path
    secret_dir: Path
    tokens: tuple[str, ...]
    key_overlap_days: int = DEFAULT_OVERLAP_DAYS
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    # Skatteetaten's synthetic test numbers (month + 80) count as valid only in a test TPF.
    test_numbers: bool = False
    register_url: str = ""  # empty: deliver to the local folder below (demo)
    register_token: str = ""
    register_inbox_dir: Path = field(default=Path())
    register_ca_file: str = ""
    register_client_cert: str = ""
    register_client_key: str = ""
    register_connect_timeout_seconds: float = 10.0
    register_read_timeout_seconds: float = 60.0
    register_read_seconds_per_mb: float = 0.5
    register_poll_seconds: float = 30.0
    worker_lease_seconds: float = 60.0
    worker_idle_seconds: float = 2.0
    retry_base_seconds: float = 5.0
    retry_max_seconds: float = 3600.0
    database_busy_seconds: float = 10.0

    @classmethod
    def from_env(cls, instance_dir: str | Path | None = None) -> TpfConfig:
        """``instance_dir`` beats IPIS_TPF_INSTANCE beats ./instance/tpf; the folder of ``ipis
        serve`` means its ``tpf`` subfolder (keyring.party_instance)."""
        folder = party_instance("tpf", instance_dir).resolve()
        database_url = _env("IPIS_TPF_DATABASE_URL") or f"sqlite:///{folder / 'tpf.db'}"
        return cls(
            instance_dir=folder,
            database_url=database_url,
            storage_dir=Path(_env("IPIS_TPF_STORAGE_DIR") or folder / "lager").resolve(),
            keys_dir=keys_dir("tpf", folder).resolve(),
            secret_dir=Path(_env("IPIS_TPF_SECRET_DIR") or folder / "hemmelighet").resolve(),
            tokens=load_tokens(folder),
            key_overlap_days=overlap_days("tpf"),
            max_upload_bytes=_int("IPIS_TPF_MAX_UPLOAD_BYTES", DEFAULT_MAX_UPLOAD_BYTES),
            test_numbers=_bool("IPIS_TPF_TEST_NUMBERS"),
            register_url=_env("IPIS_TPF_REGISTER_URL"),
            register_token=_env("IPIS_TPF_REGISTER_TOKEN"),
            register_inbox_dir=Path(
                _env("IPIS_TPF_REGISTER_INBOX_DIR") or folder / "register-innboks"
            ).resolve(),
            register_ca_file=_env("IPIS_TPF_REGISTER_CA_FILE"),
            register_client_cert=_env("IPIS_TPF_REGISTER_CLIENT_CERT"),
            register_client_key=_env("IPIS_TPF_REGISTER_CLIENT_KEY"),
            register_connect_timeout_seconds=_float("IPIS_TPF_REGISTER_CONNECT_TIMEOUT", 10.0),
            register_read_timeout_seconds=_float("IPIS_TPF_REGISTER_READ_TIMEOUT", 60.0),
            register_read_seconds_per_mb=_float("IPIS_TPF_REGISTER_READ_SECONDS_PER_MB", 0.5),
            register_poll_seconds=_float("IPIS_TPF_REGISTER_POLL_SECONDS", 30.0),
            worker_lease_seconds=_float("IPIS_TPF_WORKER_LEASE_SECONDS", 60.0),
            worker_idle_seconds=_float("IPIS_TPF_WORKER_IDLE_SECONDS", 2.0),
            retry_base_seconds=_float("IPIS_TPF_RETRY_BASE_SECONDS", 5.0),
            retry_max_seconds=_float("IPIS_TPF_RETRY_MAX_SECONDS", 3600.0),
        )
