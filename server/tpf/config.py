"""Typed configuration of the TPF, read once from ``IPIS_TPF_*`` (docs/drift.md).

Everything has a default under the TPF's own instance folder (SQLite file, storage, keyring,
pseudonym secret), so ``ipis tpf serve`` runs alone with no setup; production sets the
database URL, the tokens and the register's URL.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path

from ..keyring import DEFAULT_OVERLAP_DAYS, keys_dir, overlap_days, party_instance
from ..settings import env_bool, env_float, env_int, env_text, env_tokens, private_value

DEFAULT_MAX_UPLOAD_BYTES = 1024**3 + 64 * 1024**2  # the send module's 1 GB and its margin


def load_tokens(instance_dir: Path) -> tuple[str, ...]:
    """The bearer tokens the send module may use: ``IPIS_TPF_TOKEN`` (comma-separated, so an
    old and a new token both work while the send module changes over), else one random token
    kept in ``<instance>/token`` (0600) for the demo."""
    return env_tokens("IPIS_TPF_TOKEN") or (
        private_value(instance_dir / "token", secrets.token_urlsafe(32)),
    )


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
        database_url = env_text("IPIS_TPF_DATABASE_URL") or f"sqlite:///{folder / 'tpf.db'}"
        return cls(
            instance_dir=folder,
            database_url=database_url,
            storage_dir=Path(env_text("IPIS_TPF_STORAGE_DIR") or folder / "lager").resolve(),
            keys_dir=keys_dir("tpf", folder).resolve(),
            secret_dir=Path(env_text("IPIS_TPF_SECRET_DIR") or folder / "hemmelighet").resolve(),
            tokens=load_tokens(folder),
            key_overlap_days=overlap_days("tpf"),
            max_upload_bytes=env_int("IPIS_TPF_MAX_UPLOAD_BYTES", DEFAULT_MAX_UPLOAD_BYTES),
            test_numbers=env_bool("IPIS_TPF_TEST_NUMBERS"),
            register_url=env_text("IPIS_TPF_REGISTER_URL"),
            register_token=env_text("IPIS_TPF_REGISTER_TOKEN"),
            register_inbox_dir=Path(
                env_text("IPIS_TPF_REGISTER_INBOX_DIR") or folder / "register-innboks"
            ).resolve(),
            register_ca_file=env_text("IPIS_TPF_REGISTER_CA_FILE"),
            register_client_cert=env_text("IPIS_TPF_REGISTER_CLIENT_CERT"),
            register_client_key=env_text("IPIS_TPF_REGISTER_CLIENT_KEY"),
            register_connect_timeout_seconds=env_float("IPIS_TPF_REGISTER_CONNECT_TIMEOUT", 10.0),
            register_read_timeout_seconds=env_float("IPIS_TPF_REGISTER_READ_TIMEOUT", 60.0),
            register_read_seconds_per_mb=env_float("IPIS_TPF_REGISTER_READ_SECONDS_PER_MB", 0.5),
            register_poll_seconds=env_float("IPIS_TPF_REGISTER_POLL_SECONDS", 30.0),
            worker_lease_seconds=env_float("IPIS_TPF_WORKER_LEASE_SECONDS", 60.0),
            worker_idle_seconds=env_float("IPIS_TPF_WORKER_IDLE_SECONDS", 2.0),
            retry_base_seconds=env_float("IPIS_TPF_RETRY_BASE_SECONDS", 5.0),
            retry_max_seconds=env_float("IPIS_TPF_RETRY_MAX_SECONDS", 3600.0),
        )
