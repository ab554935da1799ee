"""What one TPF instance holds (hung on ``app.extensions``; no module-level singletons)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import Flask, current_app

from ..db import Database, open_database, upgrade_schema
from ..keyring import Keyring
from ..storage import Storage
from .config import TpfConfig
from .models import MIGRATIONS_DIR
from .pseudonyms import SecretStore
from .secret_state import ensure_secret

EXTENSION_KEY = "ipis_tpf"
OUTPUTS = "utdata"  # the encrypted §4 and §6 messages, until the register has them


@dataclass(frozen=True)
class TpfServices:
    config: TpfConfig
    db: Database
    inputs: Storage  # the encrypted files as received (kept: docs/drift.md, rotate-secret)
    outputs: Storage  # the encrypted messages to the register; temporary ones under mottak/
    keyring: Keyring
    secrets: SecretStore
    today: Callable[[], dt.date] = field(default=dt.date.today)  # tests fix the day

    def dispose(self) -> None:
        self.db.dispose()


def open_services(
    config: TpfConfig, migrate: bool = True, today: Callable[[], dt.date] = dt.date.today
) -> TpfServices:
    for folder in (config.instance_dir, config.storage_dir, config.storage_dir / OUTPUTS):
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)  # owner only, every level
    database = open_database(config.database_url, config.database_busy_seconds)
    if migrate:
        upgrade_schema(database, MIGRATIONS_DIR)
    store = SecretStore(config.secret_dir)
    ensure_secret(database, store)
    database.engine.dispose()  # no pooled connection survives a fork (gunicorn --preload)
    inputs = Storage(config.storage_dir)
    outputs = Storage(config.storage_dir / OUTPUTS)
    for storage in (inputs, outputs):
        storage.clear_incoming()
    return TpfServices(
        config=config,
        db=database,
        inputs=inputs,
        outputs=outputs,
        keyring=Keyring(config.keys_dir, "tpf", config.key_overlap_days),
        secrets=store,
        today=today,
    )


def tpf_services(app: Flask | None = None) -> TpfServices:
    found = (app or current_app).extensions[EXTENSION_KEY]
    assert isinstance(found, TpfServices)
    return found
