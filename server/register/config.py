"""Typed configuration of the register, read once from ``IPIS_REGISTER_*`` (docs/drift.md).

Everything has a default under the register's own instance folder (SQLite file, storage,
keyring, token, session key), so ``ipis register serve`` runs alone with no setup; production
sets the database URL, the TPF's token and the proxy settings.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from ..keyring import DEFAULT_OVERLAP_DAYS, keys_dir, overlap_days, party_instance
from ..settings import env_bool, env_float, env_int, env_text, env_tokens, private_value

# The TPF's §4 message for the send module's largest file (1 GB) is about as large as it.
DEFAULT_MAX_UPLOAD_BYTES = 1024**3 + 256 * 1024**2


def load_tokens(instance_dir: Path) -> tuple[str, ...]:
    """The bearer tokens the TPF may use: ``IPIS_REGISTER_TOKEN`` (comma-separated, so an old
    and a new token both work while the TPF changes over), else one random token kept in
    ``<instance>/token`` (0600) for the demo."""
    return env_tokens("IPIS_REGISTER_TOKEN") or (
        private_value(instance_dir / "token", secrets.token_urlsafe(32)),
    )


def load_secret_key(instance_dir: Path) -> str:
    """Signs the staff's session cookie: ``IPIS_REGISTER_SECRET_KEY``, else a random key kept
    in ``<instance>/secret_key`` (0600), the same for every gunicorn process."""
    return env_text("IPIS_REGISTER_SECRET_KEY") or private_value(
        instance_dir / "secret_key", secrets.token_hex(32)
    )


@dataclass(frozen=True)
class RegisterConfig:
    """All settings of one register instance (tests build one per test; no module globals)."""

    instance_dir: Path
    database_url: str
    storage_dir: Path
    keys_dir: Path
    tokens: tuple[str, ...]
    secret_key: str
    key_overlap_days: int = DEFAULT_OVERLAP_DAYS
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    # SQLite: a load holds the write lock for seconds (a 500 MB submission for a minute); the
    # intake and the staff's logins wait for it this long.
    database_busy_seconds: float = 120.0
    worker_lease_seconds: float = 60.0
    worker_idle_seconds: float = 2.0
    retry_base_seconds: float = 5.0
    retry_max_seconds: float = 3600.0
    session_idle_minutes: int = 30
    lockout_failures: int = 5
    lockout_minutes: int = 15
    throttle_failures: int = 20  # failed logins per client address per window
    throttle_window_minutes: int = 10
    trust_proxy: bool = False  # X-Forwarded-For/-Proto from one TLS proxy in front
    secure_cookies: bool = False

    @classmethod
    def from_env(cls, instance_dir: str | Path | None = None) -> RegisterConfig:
        """``instance_dir`` beats IPIS_REGISTER_INSTANCE beats ./instance/register; the folder
        of ``ipis serve`` means its ``register`` subfolder (keyring.party_instance)."""
        folder = party_instance("register", instance_dir).resolve()
        database_url = (
            env_text("IPIS_REGISTER_DATABASE_URL") or f"sqlite:///{folder / 'register.db'}"
        )
        return cls(
            instance_dir=folder,
            database_url=database_url,
            storage_dir=Path(env_text("IPIS_REGISTER_STORAGE_DIR") or folder / "lager").resolve(),
            keys_dir=keys_dir("register", folder).resolve(),
            tokens=load_tokens(folder),
            secret_key=load_secret_key(folder),
            key_overlap_days=overlap_days("register"),
            max_upload_bytes=env_int("IPIS_REGISTER_MAX_UPLOAD_BYTES", DEFAULT_MAX_UPLOAD_BYTES),
            database_busy_seconds=env_float("IPIS_REGISTER_DATABASE_BUSY_SECONDS", 120.0),
            worker_lease_seconds=env_float("IPIS_REGISTER_WORKER_LEASE_SECONDS", 60.0),
            worker_idle_seconds=env_float("IPIS_REGISTER_WORKER_IDLE_SECONDS", 2.0),
            retry_base_seconds=env_float("IPIS_REGISTER_RETRY_BASE_SECONDS", 5.0),
            retry_max_seconds=env_float("IPIS_REGISTER_RETRY_MAX_SECONDS", 3600.0),
            session_idle_minutes=env_int("IPIS_REGISTER_SESSION_IDLE_MINUTES", 30),
            lockout_failures=env_int("IPIS_REGISTER_LOCKOUT_FAILURES", 5),
            lockout_minutes=env_int("IPIS_REGISTER_LOCKOUT_MINUTES", 15),
            throttle_failures=env_int("IPIS_REGISTER_THROTTLE_FAILURES", 20),
            throttle_window_minutes=env_int("IPIS_REGISTER_THROTTLE_WINDOW_MINUTES", 10),
            trust_proxy=env_bool("IPIS_REGISTER_TRUST_PROXY"),
            secure_cookies=env_bool("IPIS_REGISTER_SECURE_COOKIES"),
        )
