"""What one app instance holds (hung on ``app.extensions``; no module-level singletons)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from flask import Flask, current_app

from ..db import Database
from ..storage import Storage
from .config import Config
from .validation import ServedKeyNames

EXTENSION_KEY = "ipis"
PARALLEL_PIN_CHECKS = 4


@dataclass(frozen=True)
class Services:
    config: Config
    db: Database
    storage: Storage
    key_names: ServedKeyNames  # the TPF key ids uploads may name (validation.py)
    # At most this many argon2id checks at once in one process (64 MB each): a login flood
    # queues here instead of taking the machine's memory.
    pin_checks: threading.BoundedSemaphore = field(
        default_factory=lambda: threading.BoundedSemaphore(PARALLEL_PIN_CHECKS)
    )


def services(app: Flask | None = None) -> Services:
    found = (app or current_app).extensions[EXTENSION_KEY]
    assert isinstance(found, Services)
    return found
