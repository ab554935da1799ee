"""The register's app factory: one typed config in, one Flask app with its own services out.

Deployable alone (docs/drift.md): ``ipis register serve`` for a demo, gunicorn with
``ipis_server.register.wsgi:app`` and ``ipis register worker`` processes in production. Two
parts: the delivery contract with the TPF (formats §5) under ``/innsendinger``, bearer token,
no session, no CSRF (it is not a browser's form); and the staff's pages behind their own login,
with CSRF on every form and the security headers of server/security.py.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from flask import Flask, Response, jsonify, render_template, request
from flask_wtf.csrf import CSRFError, CSRFProtect  # type: ignore[import-untyped]
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wrappers import Response as BaseResponse

from .. import security
from . import auth, receiving, views
from .config import RegisterConfig
from .services import EXTENSION_KEY, open_services

INTAKE_PREFIX = "/innsendinger"
DATABASE_DOWN = "Databasen svarer ikke. Prøv igjen om litt."
CSRF_FAILED = "Skjemaet er utløpt. Last siden på nytt og prøv igjen."


def create_app(
    config: RegisterConfig, migrate: bool = True, today: Callable[[], dt.date] = dt.date.today
) -> Flask:
    app = Flask(__name__, instance_path=str(config.instance_dir))
    app.config.update(
        SECRET_KEY=config.secret_key,
        MAX_CONTENT_LENGTH=None,  # the intake bounds the TPF's file itself, as it streams
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=config.secure_cookies,
        SESSION_COOKIE_NAME="ipis_register_okt",
        WTF_CSRF_TIME_LIMIT=None,  # the server-side session's idle timeout bounds it instead
        WTF_CSRF_SSL_STRICT=True,
        TEMPLATES_AUTO_RELOAD=False,
    )
    if config.trust_proxy:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)  # type: ignore[method-assign]
    app.extensions[EXTENSION_KEY] = open_services(config, migrate=migrate, today=today)

    csrf = CSRFProtect(app)
    intake = receiving.blueprint()
    csrf.exempt(intake)  # the TPF's PUT carries a bearer token, not a form
    app.register_blueprint(intake, url_prefix=INTAKE_PREFIX)
    app.register_blueprint(auth.bp)
    app.register_blueprint(views.bp)
    app.before_request(auth.load_logged_in_user)
    security.install(app)
    app.jinja_env.globals["logout_form"] = auth.logout_form
    app.jinja_env.filters["local_date"] = views.local_date
    app.jinja_env.filters["number"] = views.number

    def is_intake() -> bool:
        return request.path.startswith(INTAKE_PREFIX + "/")

    @app.errorhandler(CSRFError)
    def csrf_error(_error: CSRFError) -> tuple[str, int]:
        return render_template(
            "register/message.html", title="Skjemaet er utløpt", message=CSRF_FAILED
        ), 400

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> BaseResponse | tuple[Response | str, int]:
        if is_intake():
            return jsonify({"melding": error.description or error.name}), error.code or 500
        titles = {404: ("Finnes ikke", "Siden finnes ikke."),
                  400: ("Ugyldig forespørsel", "Forespørselen kunne ikke brukes.")}
        title, message = titles.get(error.code or 500, (error.name, error.name))
        return render_template("register/message.html", title=title, message=message), (
            error.code or 500
        )

    @app.errorhandler(SQLAlchemyError)
    def database_down(error: SQLAlchemyError) -> tuple[Response | str, int]:
        app.logger.error("Databasefeil: %s", type(error).__name__)
        if is_intake():
            return jsonify({"melding": DATABASE_DOWN}), 503
        return render_template(
            "register/message.html", title="Midlertidig utilgjengelig", message=DATABASE_DOWN
        ), 503

    return app
