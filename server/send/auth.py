"""Login, logout and server-side sessions (formats §4 fields; lockout and throttling).

The cookie carries only a random session id (signed by Flask); the database keeps its
SHA-256, so logout and expiry really end a session, and a login always starts a new one.
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
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse
from wtforms import PasswordField, StringField, SubmitField  # type: ignore[import-untyped]

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
LAST_SEEN_GRANULARITY = dt.timedelta(seconds=30)

F = TypeVar("F", bound=Callable[..., Any])


class LoginForm(FlaskForm):  # type: ignore[misc]
    kommunenummer = StringField("Kommunenummer")
    bydelsnummer = StringField("Bydelsnummer", default="00")
    organisasjonsnummer = StringField("Organisasjonsnummer")
    pin = PasswordField("PIN-kode")
    submit = SubmitField("Logg inn")


class LogoutForm(FlaskForm):  # type: ignore[misc]
    submit = SubmitField("Logg ut")


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def load_logged_in_account() -> None:
    """before_request: find the session's account, ending sessions idle for too long."""
    g.account = None
    if request.endpoint == "static":
        return
    session_id = session.get(SESSION_KEY)
    if not isinstance(session_id, str):
        return
    svc = services()
    now = utcnow()
    with svc.db.session() as db:
        row = db.get(WebSession, _hash(session_id))
        idle = dt.timedelta(minutes=svc.config.session_idle_minutes)
        if row is None or now - row.last_seen > idle or not row.account.active:
            if row is not None:
                db.delete(row)
                db.commit()
                g.session_expired = True
            session.pop(SESSION_KEY, None)
            return
        if now - row.last_seen > LAST_SEEN_GRANULARITY:
            row.last_seen = now
            db.commit()
        g.account = row.account
        g.session_id_hash = row.id_hash


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


class Throttled(Exception):
    """Too many failed logins from this client address."""


def _count_attempt(address: str, now: dt.datetime) -> int:
    """Record this attempt for its address, then count: refused beyond the limit.

    The row is committed before the count, so of any number of parallel attempts the k-th to
    commit sees at least k rows: at most ``throttle_failures`` of them get their PIN checked
    (issue 7, point 3; a count before the insert let 35 of 60 through). Every step is its own
    short transaction: no lock is held while a PIN is hashed (point 4).
    """
    svc = services()
    since = now - dt.timedelta(minutes=svc.config.throttle_window_minutes)
    with svc.db.session() as db:
        db.execute(delete(LoginFailure).where(LoginFailure.at < since))
        attempt = LoginFailure(address=address, at=now)
        db.add(attempt)
        db.commit()
        attempt_id = attempt.id
    with svc.db.session() as db:
        count = db.scalar(
            select(func.count())
            .select_from(LoginFailure)
            .where(LoginFailure.address == address, LoginFailure.at >= since)
        )
        if (count or 0) > svc.config.throttle_failures:
            _forget_attempt(db, attempt_id)  # a refused attempt is not a failure
            raise Throttled()
    return attempt_id


def _forget_attempt(db: Session, attempt_id: int) -> None:
    db.execute(delete(LoginFailure).where(LoginFailure.id == attempt_id))
    db.commit()


def _reserve_check(db: Session, account_id: int, now: dt.datetime) -> bool:
    """Take one of the account's PIN checks, atomically, before the PIN is looked at.

    ``failed_logins`` counts failures in a row plus checks in progress; one UPDATE with the
    limit in its WHERE clause, so parallel guesses cannot all read the same count (issue 7,
    point 3: 39 wrong PINs and the right one in parallel logged in every time).
    """
    limit = services().config.lockout_failures
    reserved = db.execute(
        update(Account)
        .where(
            Account.id == account_id,
            Account.active.is_(True),
            or_(Account.locked_until.is_(None), Account.locked_until <= now),
            Account.failed_logins < limit,
        )
        .values(failed_logins=Account.failed_logins + 1)
    )
    db.commit()
    return bool(reserved.rowcount == 1)  # type: ignore[attr-defined]


def _lock_if_spent(db: Session, account_id: int, now: dt.datetime) -> None:
    """After a wrong PIN: lock once every check of the series is spent (one UPDATE decides)."""
    config = services().config
    locked = db.execute(
        update(Account)
        .where(Account.id == account_id, Account.failed_logins >= config.lockout_failures)
        .values(
            failed_logins=0, locked_until=now + dt.timedelta(minutes=config.lockout_minutes)
        )
    )
    if locked.rowcount == 1:  # type: ignore[attr-defined]
        account = db.get(Account, account_id)
        audit(db, account, "låst", "innlogging", f"{config.lockout_failures} feil PIN-koder")
        current_app.logger.warning("Konto %s låst etter mislykkede innlogginger", account_id)
    db.commit()


def _attempt(form: LoginForm) -> Account | None:
    """The account when the numbers and PIN are right and it is usable, else None.

    Order: count the attempt for the address, reserve a check on the account, then hash the
    PIN with no transaction open (argon2id takes 64 MB and a good fraction of a second; on
    SQLite an open write transaction would stop every upload meanwhile).
    """
    k = (form.kommunenummer.data or "").strip()
    b = (form.bydelsnummer.data or "").strip() or "00"
    o = (form.organisasjonsnummer.data or "").strip().replace(" ", "")
    pin = form.pin.data or ""
    now = utcnow()
    svc = services()
    attempt_id = _count_attempt(_client_address(), now)
    with svc.db.session() as db:
        account = find_account(db, k, b, o)
        reserved = account is not None and _reserve_check(db, account.id, now)
    pin_hash = account.pin_hash if account is not None and reserved else None
    with svc.pin_checks:
        pin_ok = verify_pin(pin_hash, pin)
    with svc.db.session() as db:
        if account is not None and reserved and pin_ok:
            db.execute(
                update(Account)
                .where(Account.id == account.id)
                .values(failed_logins=0, locked_until=None)
            )
            _forget_attempt(db, attempt_id)
            return account
        if account is not None and reserved:
            current_app.logger.warning("Feil PIN-kode for konto %s", account.id)
            _lock_if_spent(db, account.id, now)
    return None


def _start_session(account: Account) -> None:
    """Rotate: drop any old session, then a fresh random id (no session fixation)."""
    old = session.get(SESSION_KEY)
    with services().db.session() as db:
        if isinstance(old, str):
            db.execute(delete(WebSession).where(WebSession.id_hash == _hash(old)))
        session_id = secrets.token_urlsafe(32)
        db.add(WebSession(id_hash=_hash(session_id), account_id=account.id))
        db.commit()
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
        old = session.get(SESSION_KEY)
        if isinstance(old, str):
            with services().db.session() as db:
                db.execute(delete(WebSession).where(WebSession.id_hash == _hash(old)))
                db.commit()
        session.clear()
        flash("Du er logget ut.")
    return redirect(url_for("auth.login"))


def logout_form() -> LogoutForm:
    """For the header of every authenticated page (its CSRF token). Never reads the request:
    an error page for a body too large must not parse that body (issue 7, point 8)."""
    return LogoutForm(formdata=None)
