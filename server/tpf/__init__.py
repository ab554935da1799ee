"""The TPF (trusted pseudonymisation party): intake, processing, delivery to the register.

Imports are lazy, as in the send module: the ``ipis`` command line imports
``ipis_server.tpf.commands`` on every run, and that must not pay for Flask and SQLAlchemy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import create_app
    from .config import TpfConfig

__all__ = ["TpfConfig", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from .app import create_app

        return create_app
    if name == "TpfConfig":
        from .config import TpfConfig

        return TpfConfig
    raise AttributeError(name)
