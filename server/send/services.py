"""What one app instance holds (hung on ``app.extensions``; no module-level singletons)."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app

from ..db import Database
from ..storage import Storage
from .config import Config
from .validation import ServedKeyNames

EXTENSION_KEY = "ipis"


@dataclass(frozen=True)
class Services:
    config: Config
    db: Database
    storage: Storage
    key_names: ServedKeyNames  # the TPF key ids uploads may name (validation.py)


def services(app: Flask | None = None) -> Services:
    found = (app or current_app).extensions[EXTENSION_KEY]
    assert isinstance(found, Services)
    return found
