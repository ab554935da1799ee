"""The send module (sendemodul): Flask app, account administration and the TPF outbox.

Imports are lazy: the ``ipis`` command line imports ``ipis_server.send.commands`` on every
run (also ``ipis encrypt``), and that must not pay for importing Flask, SQLAlchemy and Alembic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import create_app
    from .config import Config

__all__ = ["Config", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from .app import create_app

        return create_app
    if name == "Config":
        from .config import Config

        return Config
    raise AttributeError(name)
