"""Typed configuration of the send module, read once from the environment.

Everything has an embedded default under one instance folder (SQLite file, storage, demo keys,
secret key), so ``ipis serve`` runs with no setup; production overrides by ``IPIS_*`` variables
(docs/drift.md).
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

# IPLOS Krypt as package data: `make page` copies the built page here, so a wheel built after
# it carries the page; without it the download page says so (IPIS_OFFLINE_PAGE overrides).
PACKAGED_PAGE = Path(__file__).resolve().parent / "page" / "ipis-krypt.html"
DEFAULT_MAX_UPLOAD_BYTES = 1024**3  # 1 GB (issue 4)


class ConfigError(Exception):
    """A setting is missing or malformed; the message names the variable."""


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} må være et heltall") from None


def _float_env(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} må være et tall") from None
    if not value > 0:
        raise ConfigError(f"{name} må være større enn null")
    return value


def _bool_env(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "ja", "yes", "on"}


def load_secret_key(instance_dir: Path) -> str:
    """The session signing key: IPIS_SECRET_KEY, else a random one kept in the instance folder.

    Kept in a file (mode 0600) so that sessions survive a restart and all gunicorn workers
    agree on it.
    """
    from_env = os.environ.get("IPIS_SECRET_KEY")
    if from_env:
        return from_env
    path = instance_dir / "secret_key"
    if path.exists():
        return path.read_text(encoding="ascii").strip()
    make_instance_dir(instance_dir)
    key = secrets.token_hex(32)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(key)
    return key


def make_instance_dir(folder: Path) -> None:
    """The instance folder holds the database, the secret key and the uploads: owner only.

    Made 0700, and tightened to 0700 when it exists with more (issue 7, point 12; drift.md).
    """
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    if folder.stat().st_mode & 0o077 and folder.stat().st_uid == os.geteuid():
        folder.chmod(0o700)


@dataclass(frozen=True)
class Config:
    """All settings of one app instance (tests build one per test; no module globals)."""

    instance_dir: Path
    secret_key: str
    database_url: str
    storage_dir: Path
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    tpf_url: str = ""  # empty: deliver to the local inbox folder (demo)
    tpf_token: str = ""
    tpf_ca_file: str = ""  # TLS trust anchor for the TPF (mutual TLS: docs/drift.md)
    tpf_client_cert: str = ""
    tpf_client_key: str = ""
    # Towards the TPF (issue 7, point 11): the read timeout is the base plus so much per MB
    # of the file, since the TPF answers a PUT only after it has taken the whole file in.
    tpf_connect_timeout_seconds: float = 10.0
    tpf_read_timeout_seconds: float = 60.0
    tpf_read_seconds_per_mb: float = 0.5
    tpf_poll_seconds: float = 30.0  # after 202: ask the TPF with GET this often until final
    worker_lease_seconds: float = 60.0  # renewed while a delivery runs (heartbeat)
    incoming_sweep_seconds: float = 60.0  # how often the worker clears dead partial uploads
    database_busy_seconds: float = 10.0  # SQLite: how long to wait for the write lock
    inbox_dir: Path = field(default=Path())
    key_file: Path = field(default=Path())
    # Last year's key file: uploads encrypted for its TPF key are taken in until its last valid
    # day plus ``key_overlap_days`` (the TPF's overlap: 31 January after 1 December).
    previous_key_file: Path | None = None
    key_overlap_days: int = 62
    offline_page: Path = field(default=PACKAGED_PAGE)
    session_idle_minutes: int = 30
    lockout_failures: int = 5
    lockout_minutes: int = 15
    throttle_failures: int = 20  # failed logins per client address per window
    throttle_window_minutes: int = 10
    retry_base_seconds: float = 5.0
    retry_max_seconds: float = 3600.0
    worker_poll_seconds: float = 2.0
    trust_proxy: bool = False  # X-Forwarded-For/-Proto from the TLS proxy in front (drift.md)
    secure_cookies: bool = False

    @classmethod
    def from_env(cls, instance_dir: str | Path | None = None) -> Config:
        """Build from IPIS_* variables; ``instance_dir`` beats IPIS_INSTANCE beats ./instance."""
        folder = Path(instance_dir or os.environ.get("IPIS_INSTANCE") or "instance").resolve()
        database_url = os.environ.get("IPIS_DATABASE_URL") or f"sqlite:///{folder / 'ipis.db'}"
        storage = Path(os.environ.get("IPIS_STORAGE_DIR") or folder / "lager")
        return cls(
            instance_dir=folder,
            secret_key=load_secret_key(folder),
            database_url=database_url,
            storage_dir=storage.resolve(),
            max_upload_bytes=_int_env("IPIS_MAX_UPLOAD_BYTES", DEFAULT_MAX_UPLOAD_BYTES),
            tpf_url=os.environ.get("IPIS_TPF_URL", ""),
            tpf_token=os.environ.get("IPIS_TPF_TOKEN", ""),
            tpf_ca_file=os.environ.get("IPIS_TPF_CA_FILE", ""),
            tpf_client_cert=os.environ.get("IPIS_TPF_CLIENT_CERT", ""),
            tpf_client_key=os.environ.get("IPIS_TPF_CLIENT_KEY", ""),
            tpf_connect_timeout_seconds=_float_env("IPIS_TPF_CONNECT_TIMEOUT", 10.0),
            tpf_read_timeout_seconds=_float_env("IPIS_TPF_READ_TIMEOUT", 60.0),
            tpf_read_seconds_per_mb=_float_env("IPIS_TPF_READ_SECONDS_PER_MB", 0.5),
            tpf_poll_seconds=_float_env("IPIS_TPF_POLL_SECONDS", 30.0),
            worker_lease_seconds=_float_env("IPIS_WORKER_LEASE_SECONDS", 60.0),
            worker_poll_seconds=_float_env("IPIS_WORKER_POLL_SECONDS", 2.0),
            inbox_dir=Path(os.environ.get("IPIS_INBOX_DIR") or folder / "tpf-innboks"),
            key_file=Path(os.environ.get("IPIS_KEY_FILE") or folder / "nokler" / "nokkelfil.xml"),
            previous_key_file=Path(
                os.environ.get("IPIS_PREVIOUS_KEY_FILE")
                or folder / "nokler" / "forrige-nokkelfil.xml"
            ),
            key_overlap_days=_int_env("IPIS_KEY_OVERLAP_DAYS", 62),
            offline_page=Path(os.environ.get("IPIS_OFFLINE_PAGE") or PACKAGED_PAGE),
            session_idle_minutes=_int_env("IPIS_SESSION_IDLE_MINUTES", 30),
            lockout_failures=_int_env("IPIS_LOCKOUT_FAILURES", 5),
            lockout_minutes=_int_env("IPIS_LOCKOUT_MINUTES", 15),
            throttle_failures=_int_env("IPIS_THROTTLE_FAILURES", 20),
            throttle_window_minutes=_int_env("IPIS_THROTTLE_WINDOW_MINUTES", 10),
            trust_proxy=_bool_env("IPIS_TRUST_PROXY", False),
            secure_cookies=_bool_env("IPIS_SECURE_COOKIES", False),
        )
