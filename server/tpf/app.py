"""The TPF's app factory: one typed config in, one Flask app with its own services out.

Deployable alone (docs/drift.md): ``ipis tpf serve`` for a demo, gunicorn with
``ipis_server.tpf.wsgi:app`` and ``ipis tpf worker`` processes in production. The app speaks
only the delivery contract (formats §5) under ``/innsendinger``; it has no pages.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from flask import Flask, Response, jsonify
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException

from .. import security
from . import receiving
from .config import TpfConfig
from .services import EXTENSION_KEY, open_services

INTAKE_PREFIX = "/innsendinger"


def create_app(
    config: TpfConfig, migrate: bool = True, today: Callable[[], dt.date] = dt.date.today
) -> Flask:
    app = Flask(__name__, instance_path=str(config.instance_dir))
    app.config.update(MAX_CONTENT_LENGTH=None, TEMPLATES_AUTO_RELOAD=False)
    app.extensions[EXTENSION_KEY] = open_services(config, migrate=migrate, today=today)
    app.register_blueprint(receiving.blueprint(), url_prefix=INTAKE_PREFIX)
    security.install(app)

    @app.get("/")
    def health() -> Response:
        """For load balancers and tests: answers without a token, says nothing else."""
        return jsonify({"tjeneste": "IPIS TPF"})

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> tuple[Response, int]:
        return jsonify({"melding": error.description or error.name}), error.code or 500

    @app.errorhandler(SQLAlchemyError)
    def database_down(error: SQLAlchemyError) -> tuple[Response, int]:
        app.logger.error("Databasefeil: %s", type(error).__name__)
        return jsonify({"melding": "Databasen svarer ikke. Prøv igjen senere."}), 503

    return app
