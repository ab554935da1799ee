"""Login, logout and server-side sessions (formats §4 fields; lockout and throttling).

The cookie carries only a random session id (signed by Flask); the database keeps its
SHA-256, so logout and expiry really end a session, and a login always starts a new one.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import (
    Blueprint,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_wtf import FlaskForm  # type: ignore[import-untyped]
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse
from wtforms import PasswordField, StringField, SubmitField  # type: ignore[import-untyped]

from ..login import LoginGuard, LoginRules, LoginTables, Throttled
from .accounts import audit, find_account
from .models import Account, LoginFailure, WebSession, utcnow
from .pins import verify_pin
from .services import services

bp = Blueprint("auth", __name__)

LOGIN_FAILED = (
    "Innloggingen mislyktes. Kontroller kommunenummer, bydelsnummer, organisasjonsnummer og "
    "PIN-kode og prøv igjen. Etter flere mislykkede forsøk stenges kontoen en stund."
)
THROTTLED = (
    "For mange mislykkede innlogginger fra denne maskinen. Vent noen minutter og prøv igjen."
)
SESSION_KEY = "sid"

F = TypeVar("F", bound=Callable[..., Any])

TABLES = LoginTables(
    user=Account, user_id=Account.id, active=Account.active, failures=Account.failed_logins,
    locked_until=Account.locked_until,
    session=WebSession, session_hash=WebSession.id_hash, session_user=WebSession.account_id,
    last_seen=WebSession.last_seen,
    attempt=LoginFailure, attempt_id=LoginFailure.id, attempt_address=LoginFailure.address,
    attempt_at=LoginFailure.at,
)


class LoginForm(FlaskForm):  # type: ignore[misc]
    kommunenummer = StringField("Kommunenummer")
    bydelsnummer = StringField("Bydelsnummer", default="00")
    organisasjonsnummer = StringField("Organisasjonsnummer")
    pin = PasswordField("PIN-kode")
    submit = SubmitField("Logg inn")


class LogoutForm(FlaskForm):  # type: ignore[misc]
    submit = SubmitField("Logg ut")


def _guard() -> LoginGuard:
    svc = services()
    return LoginGuard(svc.db, TABLES, LoginRules.of(svc.config))


def load_logged_in_account() -> None:
    """before_request: find the session's account, ending sessions idle for too long."""
    g.account = None
    if request.endpoint == "static":
        return
    account, expired = _guard().session_user(session.get(SESSION_KEY), utcnow())
    if account is None:
        g.session_expired = expired
        session.pop(SESSION_KEY, None)
        return
    g.account = account


def login_required(view: F) -> F:
    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if g.get("account") is None:
            if g.get("session_expired"):
                flash("Økten er utløpt fordi den var ubrukt en stund. Logg inn på nytt.")
            return redirect(url_for("auth.login"))
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def _client_address() -> str:
    return (request.remote_addr or "ukjent")[:64]


def _attempt(form: LoginForm) -> Account | None:
    """The account when the numbers and PIN are right and it is usable, else None.

    Order (server/login.py): count the attempt for the address, reserve a check on the
    account, then hash the PIN with no transaction open.
    """
    k = (form.kommunenummer.data or "").strip()
    b = (form.bydelsnummer.data or "").strip() or "00"
    o = (form.organisasjonsnummer.data or "").strip().replace(" ", "")
    pin = form.pin.data or ""
    now = utcnow()
    svc = services()
    guard = _guard()
    attempt_id = guard.count_attempt(_client_address(), now)
    with svc.db.session() as db:
        account = find_account(db, k, b, o)
    reserved = account is not None and guard.reserve_check(account.id, now)
    pin_hash = account.pin_hash if account is not None and reserved else None
    with svc.pin_checks:
        pin_ok = verify_pin(pin_hash, pin)
    if account is None or not reserved:
        return None
    if not pin_ok:
        current_app.logger.warning("Feil PIN-kode for konto %s", account.id)

    def record_lock(db: Session) -> None:
        locked = db.get(Account, account.id)
        audit(db, locked, "låst", "innlogging",
              f"{svc.config.lockout_failures} feil PIN-koder")
        current_app.logger.warning("Konto %s låst etter mislykkede innlogginger", account.id)

    guard.settle(account.id, attempt_id, pin_ok, now, on_locked=record_lock)
    return account if pin_ok else None


def _start_session(account: Account) -> None:
    """Rotate: drop any old session, then a fresh random id (no session fixation)."""
    session_id = _guard().start_session(account.id, session.get(SESSION_KEY))
    session.clear()  # also renews the CSRF token
    session[SESSION_KEY] = session_id
    session.permanent = False


@bp.route("/", methods=["GET"])
def index() -> BaseResponse:
    if g.get("account") is not None:
        return redirect(url_for("upload.form"))
    return redirect(url_for("auth.login"))


@bp.route("/logg-inn", methods=["GET", "POST"])
def login() -> BaseResponse | tuple[str, int] | str:
    form = LoginForm()
    if request.method == "POST":
        if not form.validate_on_submit():  # only the CSRF token can fail here
            return render_template("login.html", form=form, error=LOGIN_FAILED), 400
        try:
            account = _attempt(form)
        except Throttled:
            return render_template("login.html", form=form, error=THROTTLED), 429
        if account is None:
            form.pin.data = ""
            return render_template("login.html", form=form, error=LOGIN_FAILED), 401
        _start_session(account)
        current_app.logger.info("Innlogging: konto %s", account.id)
        return redirect(url_for("upload.form"))
    return render_template("login.html", form=form, error=None)


@bp.route("/logg-ut", methods=["POST"])
def logout() -> BaseResponse:
    form = LogoutForm()
    if form.validate_on_submit():
        _guard().end_session(session.get(SESSION_KEY))
        session.clear()
        flash("Du er logget ut.")
    return redirect(url_for("auth.login"))


def logout_form() -> LogoutForm:
    """For the header of every authenticated page (its CSRF token). Never reads the request:
    an error page for a body too large must not parse that body (issue 7, point 8)."""
    return LogoutForm(formdata=None)
