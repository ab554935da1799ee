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

from ..settings import env_bool, env_float, env_int, env_text, private_value

# IPLOS Krypt as package data: `make page` copies the built page here, so a wheel built after
# it carries the page; without it the download page says so (IPIS_OFFLINE_PAGE overrides).
PACKAGED_PAGE = Path(__file__).resolve().parent / "page" / "ipis-krypt.html"
DEFAULT_MAX_UPLOAD_BYTES = 1024**3  # 1 GB (issue 4)


def load_secret_key(instance_dir: Path) -> str:
    """The session signing key: IPIS_SECRET_KEY, else a random one kept in the instance folder.

    Kept in a file (mode 0600) so that sessions survive a restart and all gunicorn workers
    agree on it.
    """
    from_env = env_text("IPIS_SECRET_KEY")
    if from_env:
        return from_env
    make_instance_dir(instance_dir)
    return private_value(instance_dir / "secret_key", secrets.token_hex(32))


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
        folder = Path(instance_dir or env_text("IPIS_INSTANCE") or "instance").resolve()
        database_url = env_text("IPIS_DATABASE_URL") or f"sqlite:///{folder / 'ipis.db'}"
        storage = Path(env_text("IPIS_STORAGE_DIR") or folder / "lager")
        return cls(
            instance_dir=folder,
            secret_key=load_secret_key(folder),
            database_url=database_url,
            storage_dir=storage.resolve(),
            max_upload_bytes=env_int("IPIS_MAX_UPLOAD_BYTES", DEFAULT_MAX_UPLOAD_BYTES),
            tpf_url=env_text("IPIS_TPF_URL"),
            tpf_token=env_text("IPIS_TPF_TOKEN"),
            tpf_ca_file=env_text("IPIS_TPF_CA_FILE"),
            tpf_client_cert=env_text("IPIS_TPF_CLIENT_CERT"),
            tpf_client_key=env_text("IPIS_TPF_CLIENT_KEY"),
            tpf_connect_timeout_seconds=env_float("IPIS_TPF_CONNECT_TIMEOUT", 10.0),
            tpf_read_timeout_seconds=env_float("IPIS_TPF_READ_TIMEOUT", 60.0),
            tpf_read_seconds_per_mb=env_float("IPIS_TPF_READ_SECONDS_PER_MB", 0.5),
            tpf_poll_seconds=env_float("IPIS_TPF_POLL_SECONDS", 30.0),
            worker_lease_seconds=env_float("IPIS_WORKER_LEASE_SECONDS", 60.0),
            worker_poll_seconds=env_float("IPIS_WORKER_POLL_SECONDS", 2.0),
            inbox_dir=Path(env_text("IPIS_INBOX_DIR") or folder / "tpf-innboks"),
            key_file=Path(env_text("IPIS_KEY_FILE") or folder / "nokler" / "nokkelfil.xml"),
            previous_key_file=Path(
                env_text("IPIS_PREVIOUS_KEY_FILE")
                or folder / "nokler" / "forrige-nokkelfil.xml"
            ),
            key_overlap_days=env_int("IPIS_KEY_OVERLAP_DAYS", 62),
            offline_page=Path(env_text("IPIS_OFFLINE_PAGE") or PACKAGED_PAGE),
            session_idle_minutes=env_int("IPIS_SESSION_IDLE_MINUTES", 30),
            lockout_failures=env_int("IPIS_LOCKOUT_FAILURES", 5),
            lockout_minutes=env_int("IPIS_LOCKOUT_MINUTES", 15),
            throttle_failures=env_int("IPIS_THROTTLE_FAILURES", 20),
            throttle_window_minutes=env_int("IPIS_THROTTLE_WINDOW_MINUTES", 10),
            trust_proxy=env_bool("IPIS_TRUST_PROXY", False),
            secure_cookies=env_bool("IPIS_SECURE_COOKIES", False),
        )
