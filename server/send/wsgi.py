"""Production entry point: ``gunicorn 'server.wsgi:app'`` (docs/drift.md)."""

from .app import create_app
from .config import Config

app = create_app(Config.from_env())
