"""The app factory: one typed Config in, one Flask app with its own database handle out."""

from __future__ import annotations

from flask import Flask, g, render_template
from flask_wtf.csrf import CSRFError, CSRFProtect  # type: ignore[import-untyped]
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import NotFound, RequestEntityTooLarge
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wrappers import Response as BaseResponse

from .. import security
from ..db import open_database, upgrade_schema
from ..storage import Storage
from . import auth, downloads, receipts, upload
from .config import Config, make_instance_dir
from .models import MIGRATIONS_DIR
from .services import EXTENSION_KEY, Services
from .status import css_class, label, steps, summary
from .validation import ServedKeyNames

DATABASE_DOWN = (
    "Tjenesten er midlertidig utilgjengelig fordi databasen ikke svarer. Prøv igjen om litt."
)


def create_app(config: Config, migrate: bool = True) -> Flask:
    app = Flask(__name__, instance_path=str(config.instance_dir), instance_relative_config=False)
    app.config.update(
        SECRET_KEY=config.secret_key,
        MAX_CONTENT_LENGTH=config.max_upload_bytes + upload.MULTIPART_OVERHEAD,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=config.secure_cookies,
        SESSION_COOKIE_NAME="ipis_sesjon",
        WTF_CSRF_TIME_LIMIT=None,  # the server-side session's idle timeout bounds it instead
        WTF_CSRF_SSL_STRICT=True,
        TEMPLATES_AUTO_RELOAD=False,
    )
    if config.trust_proxy:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)  # type: ignore[method-assign]

    make_instance_dir(config.instance_dir)
    database = open_database(config.database_url, config.database_busy_seconds)
    if migrate:
        upgrade_schema(database, MIGRATIONS_DIR)
        database.engine.dispose()  # no pooled connection survives a fork (gunicorn --preload)
    storage = Storage(config.storage_dir)
    storage.clear_incoming()
    app.extensions[EXTENSION_KEY] = Services(
        config=config, db=database, storage=storage, key_names=ServedKeyNames(
            config.key_file, config.previous_key_file, config.key_overlap_days
        )
    )

    csrf = CSRFProtect(app)
    upload.register_csrf_exemption(csrf)
    for blueprint in (auth.bp, upload.bp, receipts.bp, downloads.bp):
        app.register_blueprint(blueprint)
    app.before_request(auth.load_logged_in_account)
    security.install(app)
    app.jinja_env.globals["status_label"] = label
    app.jinja_env.globals["status_steps"] = steps
    app.jinja_env.globals["status_summary"] = summary
    app.jinja_env.globals["status_class"] = css_class
    app.jinja_env.globals["logout_form"] = auth.logout_form
    app.jinja_env.filters["local_time"] = receipts.local_time
    app.jinja_env.filters["size"] = upload.format_size

    @app.errorhandler(CSRFError)
    def csrf_error(_error: CSRFError) -> tuple[str, int]:
        return render_template(
            "message.html", title="Skjemaet er utløpt", message=upload.CSRF_FAILED
        ), 400

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(_error: RequestEntityTooLarge) -> BaseResponse:
        """Never touches the request again (it is what was too large; issue 7, point 8)."""
        if g.get("account") is not None:
            return upload.refuse_unread(upload.too_large_message(), 413)
        response = app.make_response(
            (render_template("message.html", title="For stor", message="For stor forespørsel."),
             413)
        )
        response.headers["Connection"] = "close"
        return response

    @app.errorhandler(SQLAlchemyError)
    def database_down(error: SQLAlchemyError) -> BaseResponse:
        app.logger.error("Databasefeil: %s", type(error).__name__)
        response = app.make_response((render_template(
            "message.html", title="Midlertidig utilgjengelig", message=DATABASE_DOWN
        ), 503))
        response.headers["Connection"] = "close"  # the body, if any, was not read
        return response

    @app.errorhandler(NotFound)
    def not_found(_error: NotFound) -> tuple[str, int]:
        return render_template(
            "message.html", title="Finnes ikke", message="Siden finnes ikke."
        ), 404

    return app
