"""The staff's login: username and password, server-side sessions, lockout and throttling.

As the send module's login (server/send/auth.py): the cookie carries only a random session
id (signed by Flask), the database its SHA-256; every counter is settled by one statement the
database decides (an attempt is recorded before it is counted; a password check is reserved
on the user before the password is hashed), and no transaction is open while argon2id runs.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import secrets
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
from sqlalchemy import delete, func, or_, select, update
from werkzeug.wrappers import Response as BaseResponse
from wtforms import PasswordField, StringField, SubmitField  # type: ignore[import-untyped]

from ..dbtypes import utcnow
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
LAST_SEEN_GRANULARITY = dt.timedelta(seconds=30)

F = TypeVar("F", bound=Callable[..., Any])


class LoginForm(FlaskForm):  # type: ignore[misc]
    brukernavn = StringField("Brukernavn")
    passord = PasswordField("Passord")
    submit = SubmitField("Logg inn")


class LogoutForm(FlaskForm):  # type: ignore[misc]
    submit = SubmitField("Logg ut")


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def load_logged_in_user() -> None:
    """before_request: the session's user, ending sessions idle for too long."""
    g.account = None  # server/security.py: no-store on every page of a logged-in user
    if request.endpoint in ("static", "register_intake.put", "register_intake.get"):
        return
    session_id = session.get(SESSION_KEY)
    if not isinstance(session_id, str):
        return
    svc = register_services()
    now = utcnow()
    with svc.db.session() as db:
        row = db.get(StaffSession, _hash(session_id))
        user = db.get(StaffUser, row.ansatt_id) if row is not None else None
        idle = dt.timedelta(minutes=svc.config.session_idle_minutes)
        if row is None or user is None or now - row.sist_sett > idle or not user.aktiv:
            if row is not None:
                db.delete(row)
                db.commit()
                g.session_expired = True
            session.pop(SESSION_KEY, None)
            return
        if now - row.sist_sett > LAST_SEEN_GRANULARITY:
            row.sist_sett = now
            db.commit()
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


class Throttled(Exception):
    """Too many failed logins from this client address."""


def _count_attempt(address: str, now: dt.datetime) -> int:
    """Record this attempt for its address, then count it: the k-th of any number of parallel
    attempts sees at least k rows, so at most the limit get their password checked."""
    svc = register_services()
    since = now - dt.timedelta(minutes=svc.config.throttle_window_minutes)
    with svc.db.session() as db:
        db.execute(delete(LoginFailure).where(LoginFailure.tidspunkt < since))
        attempt = LoginFailure(adresse=address, tidspunkt=now)
        db.add(attempt)
        db.commit()
        attempt_id = attempt.id
    with svc.db.session() as db:
        count = db.scalar(
            select(func.count())
            .select_from(LoginFailure)
            .where(LoginFailure.adresse == address, LoginFailure.tidspunkt >= since)
        )
        if (count or 0) > svc.config.throttle_failures:
            db.execute(delete(LoginFailure).where(LoginFailure.id == attempt_id))
            db.commit()
            raise Throttled()
    return attempt_id


def _reserve_check(user_id: int, now: dt.datetime) -> bool:
    """Take one of the user's password checks before the password is looked at (one UPDATE
    with the limit in its WHERE clause: parallel guesses cannot share a count)."""
    svc = register_services()
    with svc.db.session() as db:
        reserved = db.execute(
            update(StaffUser)
            .where(
                StaffUser.id == user_id,
                StaffUser.aktiv.is_(True),
                or_(StaffUser.laast_til.is_(None), StaffUser.laast_til <= now),
                StaffUser.feil_pa_rad < svc.config.lockout_failures,
            )
            .values(feil_pa_rad=StaffUser.feil_pa_rad + 1)
        )
        db.commit()
        return bool(reserved.rowcount == 1)  # type: ignore[attr-defined]


def _settle(user_id: int, attempt_id: int, ok: bool, now: dt.datetime) -> None:
    svc = register_services()
    with svc.db.session() as db:
        if ok:
            db.execute(
                update(StaffUser).where(StaffUser.id == user_id)
                .values(feil_pa_rad=0, laast_til=None)
            )
            db.execute(delete(LoginFailure).where(LoginFailure.id == attempt_id))
        else:
            locked = db.execute(
                update(StaffUser)
                .where(StaffUser.id == user_id,
                       StaffUser.feil_pa_rad >= svc.config.lockout_failures)
                .values(
                    feil_pa_rad=0,
                    laast_til=now + dt.timedelta(minutes=svc.config.lockout_minutes),
                )
            )
            if locked.rowcount == 1:  # type: ignore[attr-defined]
                current_app.logger.warning("Bruker %s låst etter mislykkede innlogginger",
                                           user_id)
        db.commit()


def _attempt(form: LoginForm) -> StaffUser | None:
    username = (form.brukernavn.data or "").strip().lower()[:64]
    password = (form.passord.data or "")[:400]
    now = utcnow()
    svc = register_services()
    attempt_id = _count_attempt((request.remote_addr or "ukjent")[:64], now)
    with svc.db.session() as db:
        user = db.scalar(select(StaffUser).where(StaffUser.brukernavn == username))
    reserved = user is not None and _reserve_check(user.id, now)
    with svc.password_checks:
        ok = verify_password(user.passord_hash if user is not None and reserved else None,
                             password)
    if user is not None and reserved:
        _settle(user.id, attempt_id, ok, now)
    return user if ok and reserved else None


def _start_session(user: StaffUser) -> None:
    """Rotate: drop any old session, then a fresh random id (no session fixation)."""
    old = session.get(SESSION_KEY)
    with register_services().db.session() as db:
        if isinstance(old, str):
            db.execute(delete(StaffSession).where(StaffSession.id_hash == _hash(old)))
        session_id = secrets.token_urlsafe(32)
        db.add(StaffSession(id_hash=_hash(session_id), ansatt_id=user.id))
        db.commit()
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
        old = session.get(SESSION_KEY)
        if isinstance(old, str):
            with register_services().db.session() as db:
                db.execute(delete(StaffSession).where(StaffSession.id_hash == _hash(old)))
                db.commit()
        session.clear()
        flash("Du er logget ut.")
    return redirect(url_for("auth.login"))


def logout_form() -> LogoutForm:
    return LogoutForm()
