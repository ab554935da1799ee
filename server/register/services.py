"""What one register instance holds (hung on ``app.extensions``; no module-level singletons)."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import Flask, current_app

from ..db import Database, open_database, upgrade_schema
from ..keyring import Keyring
from ..storage import Storage
from .config import RegisterConfig
from .models import MIGRATIONS_DIR

EXTENSION_KEY = "ipis_register"
PARALLEL_PASSWORD_CHECKS = 4


@dataclass(frozen=True)
class RegisterServices:
    config: RegisterConfig
    db: Database
    storage: Storage  # the deliveries as received, until loaded
    keyring: Keyring
    today: Callable[[], dt.date] = field(default=dt.date.today)  # tests fix the day
    # At most this many argon2id checks at once in one process (64 MB each).
    password_checks: threading.BoundedSemaphore = field(
        default_factory=lambda: threading.BoundedSemaphore(PARALLEL_PASSWORD_CHECKS)
    )

    def dispose(self) -> None:
        self.db.dispose()


def open_services(
    config: RegisterConfig, migrate: bool = True, today: Callable[[], dt.date] = dt.date.today
) -> RegisterServices:
    for folder in (config.instance_dir, config.storage_dir):
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)  # owner only
    database = open_database(config.database_url, config.database_busy_seconds)
    if migrate:
        upgrade_schema(database, MIGRATIONS_DIR)
        database.engine.dispose()  # no pooled connection survives a fork (gunicorn --preload)
    storage = Storage(config.storage_dir)
    storage.clear_incoming()
    return RegisterServices(
        config=config,
        db=database,
        storage=storage,
        keyring=Keyring(config.keys_dir, "register", config.key_overlap_days),
        today=today,
    )


def register_services(app: Flask | None = None) -> RegisterServices:
    found = (app or current_app).extensions[EXTENSION_KEY]
    assert isinstance(found, RegisterServices)
    return found
