"""gunicorn entry point of the TPF: ``gunicorn 'ipis_server.tpf.wsgi:app'`` (docs/drift.md)."""

from .app import create_app
from .config import TpfConfig

app = create_app(TpfConfig.from_env())
