"""The register (SSB's receiver): intake from the TPF, loading, export, the staff's overview.

Imports are lazy: the ``ipis`` command line imports ``ipis_server.register.commands`` on every
run, and that must not pay for importing Flask, SQLAlchemy and Alembic.

Public API for the other parties and the integration (docs/register.md):

- ``create_app(RegisterConfig)``, ``RegisterConfig.from_env``;
- ``loading.load_delivery(db, keyring, source, submission_id, received_at)`` → ``LoadOutcome``
  (one stored §4 message from a stream), ``mapping.apply_mapping`` (a §6 mapping);
- ``worker.RegisterWorker`` (``drain``, ``run``), ``worker.start_thread``;
- ``export.export_csv`` / ``export_parquet``;
- ``sender_line.sender_year`` (one sender's line for a year, for the send module).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import create_app
    from .config import RegisterConfig

__all__ = ["RegisterConfig", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from .app import create_app

        return create_app
    if name == "RegisterConfig":
        from .config import RegisterConfig

        return RegisterConfig
    raise AttributeError(name)
