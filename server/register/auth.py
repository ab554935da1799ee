"""The staff's login: username and password, server-side sessions, lockout and throttling.

As the send module's login (server/send/auth.py): the cookie carries only a random session
id (signed by Flask), the database its SHA-256; every counter is settled by one statement the
database decides (an attempt is recorded before it is counted; a password check is reserved
on the user before the password is hashed), and no transaction is open while argon2id runs.
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
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse
from wtforms import PasswordField, StringField, SubmitField  # type: ignore[import-untyped]

from ..dbtypes import utcnow
from ..login import LoginGuard, LoginRules, LoginTables, Throttled
from .models import LoginFailure, StaffSession, StaffUser
from .services import register_services
from .staff import verify_password

bp = Blueprint("auth", __name__)

LOGIN_FAILED = (
    "Innloggingen mislyktes. Kontroller brukernavn og passord og prøv igjen. Etter flere "
    "mislykkede forsøk stenges brukeren en stund."
)
THROTTLED = "For mange mislykkede innlogginger fra denne maskinen. Vent noen minutter."
SESSION_KEY = "ansatt_okt"

F = TypeVar("F", bound=Callable[..., Any])

TABLES = LoginTables(
    user=StaffUser, user_id=StaffUser.id, active=StaffUser.aktiv,
    failures=StaffUser.feil_pa_rad, locked_until=StaffUser.laast_til,
    session=StaffSession, session_hash=StaffSession.id_hash, session_user=StaffSession.ansatt_id,
    last_seen=StaffSession.sist_sett,
    attempt=LoginFailure, attempt_id=LoginFailure.id, attempt_address=LoginFailure.adresse,
    attempt_at=LoginFailure.tidspunkt,
)


class LoginForm(FlaskForm):  # type: ignore[misc]
    brukernavn = StringField("Brukernavn")
    passord = PasswordField("Passord")
    submit = SubmitField("Logg inn")


class LogoutForm(FlaskForm):  # type: ignore[misc]
    submit = SubmitField("Logg ut")


def _guard() -> LoginGuard:
    svc = register_services()
    return LoginGuard(svc.db, TABLES, LoginRules.of(svc.config))


def load_logged_in_user() -> None:
    """before_request: the session's user, ending sessions idle for too long."""
    g.account = None  # server/security.py: no-store on every page of a logged-in user
    if request.endpoint in ("static", "register_intake.put", "register_intake.get"):
        return
    user, expired = _guard().session_user(session.get(SESSION_KEY), utcnow())
    if user is None:
        g.session_expired = expired
        session.pop(SESSION_KEY, None)
        return
    g.account = user


def login_required(view: F) -> F:
    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if g.get("account") is None:
            if g.get("session_expired"):
                flash("Økten er utløpt fordi den var ubrukt en stund. Logg inn på nytt.")
            return redirect(url_for("auth.login"))
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def _attempt(form: LoginForm) -> StaffUser | None:
    """The user when the name and password are right and the user is usable, else None
    (the order and its reasons: server/login.py)."""
    username = (form.brukernavn.data or "").strip().lower()[:64]
    password = (form.passord.data or "")[:400]
    now = utcnow()
    svc = register_services()
    guard = _guard()
    attempt_id = guard.count_attempt((request.remote_addr or "ukjent")[:64], now)
    with svc.db.session() as db:
        user = db.scalar(select(StaffUser).where(StaffUser.brukernavn == username))
    reserved = user is not None and guard.reserve_check(user.id, now)
    with svc.password_checks:
        ok = verify_password(user.passord_hash if user is not None and reserved else None,
                             password)
    if user is None or not reserved:
        return None

    def log_lock(_db: Session) -> None:
        current_app.logger.warning("Bruker %s låst etter mislykkede innlogginger", user.id)

    guard.settle(user.id, attempt_id, ok, now, on_locked=log_lock)
    return user if ok else None


def _start_session(user: StaffUser) -> None:
    """Rotate: drop any old session, then a fresh random id (no session fixation)."""
    session_id = _guard().start_session(user.id, session.get(SESSION_KEY))
    session.clear()  # also renews the CSRF token
    session[SESSION_KEY] = session_id
    session.permanent = False


@bp.route("/", methods=["GET"])
def index() -> BaseResponse:
    if g.get("account") is not None:
        return redirect(url_for("overview.overview"))
    return redirect(url_for("auth.login"))


@bp.route("/logg-inn", methods=["GET", "POST"])
def login() -> BaseResponse | tuple[str, int] | str:
    form = LoginForm()
    if request.method == "POST":
        if not form.validate_on_submit():  # only the CSRF token can fail here
            return render_template("register/login.html", form=form, error=LOGIN_FAILED), 400
        try:
            user = _attempt(form)
        except Throttled:
            return render_template("register/login.html", form=form, error=THROTTLED), 429
        if user is None:
            return render_template("register/login.html", form=form, error=LOGIN_FAILED), 401
        _start_session(user)
        current_app.logger.info("Innlogging: ansatt %s", user.id)
        return redirect(url_for("overview.overview"))
    return render_template("register/login.html", form=form, error=None)


@bp.route("/logg-ut", methods=["POST"])
def logout() -> BaseResponse:
    form = LogoutForm()
    if form.validate_on_submit():
        _guard().end_session(session.get(SESSION_KEY))
        session.clear()
        flash("Du er logget ut.")
    return redirect(url_for("auth.login"))


def logout_form() -> LogoutForm:
    return LogoutForm()
