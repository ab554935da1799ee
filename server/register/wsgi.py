"""Production entry point: ``gunicorn 'ipis_server.register.wsgi:app'`` (docs/drift.md)."""

from .app import create_app
from .config import RegisterConfig

app = create_app(RegisterConfig.from_env())
