"""Typed configuration of the register, read once from ``IPIS_REGISTER_*`` (docs/drift.md).

Everything has a default under the register's own instance folder (SQLite file, storage,
keyring, token, session key), so ``ipis register serve`` runs alone with no setup; production
sets the database URL, the TPF's token and the proxy settings.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from ..keyring import DEFAULT_OVERLAP_DAYS, keys_dir, overlap_days, party_instance

# The TPF's §4 message for the send module's largest file (1 GB) is about as large as it.
DEFAULT_MAX_UPLOAD_BYTES = 1024**3 + 256 * 1024**2


class RegisterConfigError(Exception):
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
        raise RegisterConfigError(f"{name} må være et tall") from None
    if not value > 0:
        raise RegisterConfigError(f"{name} må være større enn null")
    return value


def _int(name: str, default: int) -> int:
    raw = _env(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise RegisterConfigError(f"{name} må være et heltall") from None
    if value < 0:
        raise RegisterConfigError(f"{name} kan ikke være negativ")
    return value


def _bool(name: str) -> bool:
    return _env(name).lower() in {"1", "true", "ja", "yes", "on"}


def _private_file(path: Path, make: str) -> str:
    """The content of a 0600 file in the instance folder, made with ``make`` if missing."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it first
        else:
            with os.fdopen(descriptor, "w", encoding="ascii") as handle:
                handle.write(make)
    return path.read_text(encoding="ascii").strip()


def load_tokens(instance_dir: Path) -> tuple[str, ...]:
    """The bearer tokens the TPF may use: ``IPIS_REGISTER_TOKEN`` (comma-separated, so an old
    and a new token both work while the TPF changes over), else one random token kept in
    ``<instance>/token`` (0600) for the demo."""
    configured = tuple(t.strip() for t in _env("IPIS_REGISTER_TOKEN").split(",") if t.strip())
    if configured:
        return configured
    return (_private_file(instance_dir / "token", secrets.token_urlsafe(32)),)


def load_secret_key(instance_dir: Path) -> str:
    """Signs the staff's session cookie: ``IPIS_REGISTER_SECRET_KEY``, else a random key kept
    in ``<instance>/secret_key`` (0600), the same for every gunicorn process."""
    return _env("IPIS_REGISTER_SECRET_KEY") or _private_file(
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
        database_url = _env("IPIS_REGISTER_DATABASE_URL") or f"sqlite:///{folder / 'register.db'}"
        return cls(
            instance_dir=folder,
            database_url=database_url,
            storage_dir=Path(_env("IPIS_REGISTER_STORAGE_DIR") or folder / "lager").resolve(),
            keys_dir=keys_dir("register", folder).resolve(),
            tokens=load_tokens(folder),
            secret_key=load_secret_key(folder),
            key_overlap_days=overlap_days("register"),
            max_upload_bytes=_int("IPIS_REGISTER_MAX_UPLOAD_BYTES", DEFAULT_MAX_UPLOAD_BYTES),
            database_busy_seconds=_float("IPIS_REGISTER_DATABASE_BUSY_SECONDS", 120.0),
            worker_lease_seconds=_float("IPIS_REGISTER_WORKER_LEASE_SECONDS", 60.0),
            worker_idle_seconds=_float("IPIS_REGISTER_WORKER_IDLE_SECONDS", 2.0),
            retry_base_seconds=_float("IPIS_REGISTER_RETRY_BASE_SECONDS", 5.0),
            retry_max_seconds=_float("IPIS_REGISTER_RETRY_MAX_SECONDS", 3600.0),
            session_idle_minutes=_int("IPIS_REGISTER_SESSION_IDLE_MINUTES", 30),
            lockout_failures=_int("IPIS_REGISTER_LOCKOUT_FAILURES", 5),
            lockout_minutes=_int("IPIS_REGISTER_LOCKOUT_MINUTES", 15),
            throttle_failures=_int("IPIS_REGISTER_THROTTLE_FAILURES", 20),
            throttle_window_minutes=_int("IPIS_REGISTER_THROTTLE_WINDOW_MINUTES", 10),
            trust_proxy=_bool("IPIS_REGISTER_TRUST_PROXY"),
            secure_cookies=_bool("IPIS_REGISTER_SECURE_COOKIES"),
        )
