"""The rules of a login, for the send module's municipalities and the register's staff alike:
per-address throttling, per-user lockout, server-side sessions (issue 7, points 3–5).

One implementation so that a fix reaches both doors. Each party names its own tables and
columns (``LoginTables``) and keeps its forms, texts and views; this module settles every
counter in the database, in short transactions, and never while a secret is hashed:

- an attempt is recorded *before* it is counted, so of any number of parallel attempts the
  k-th to commit sees at least k rows: at most ``throttle_failures`` are checked (a count before
  the insert let 35 of 60 through);
- a check is reserved on the user by one UPDATE with the limit in its WHERE clause, so parallel
  guesses cannot all read the same count (39 wrong PINs and the right one logged in every time);
- no transaction is open while argon2id runs (on SQLite an open write transaction stopped every
  upload meanwhile);
- the cookie carries only a random session id; the database keeps its SHA-256, so logout,
  idle time and a disabled user really end a session, and a login always starts a new one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from .db import Database

LAST_SEEN_GRANULARITY = dt.timedelta(seconds=30)  # a session's last use, written this often

Column = InstrumentedAttribute[Any]


class Throttled(Exception):
    """Too many failed logins from this client address."""


@dataclass(frozen=True)
class LoginTables:
    """Where one party keeps its login state: users, their sessions, recent attempts."""

    user: type[Any]
    user_id: Column
    active: Column
    failures: Column  # failures in a row plus checks in progress
    locked_until: Column
    session: type[Any]
    session_hash: Column
    session_user: Column  # the session's user id
    last_seen: Column
    attempt: type[Any]
    attempt_id: Column
    attempt_address: Column
    attempt_at: Column


@dataclass(frozen=True)
class LoginRules:
    throttle_failures: int
    throttle_window_minutes: int
    lockout_failures: int
    lockout_minutes: int
    session_idle_minutes: int

    @classmethod
    def of(cls, config: Any) -> LoginRules:
        """From a party's config (the send module's and the register's use the same names)."""
        return cls(
            throttle_failures=config.throttle_failures,
            throttle_window_minutes=config.throttle_window_minutes,
            lockout_failures=config.lockout_failures,
            lockout_minutes=config.lockout_minutes,
            session_idle_minutes=config.session_idle_minutes,
        )


def session_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


@dataclass(frozen=True)
class LoginGuard:
    db: Database
    tables: LoginTables
    rules: LoginRules

    # --- attempts and lockout --------------------------------------------------------------

    def count_attempt(self, address: str, now: dt.datetime) -> int:
        """Record this attempt for its address, then count it; Throttled beyond the limit (a
        refused attempt is removed again: it is not a failure)."""
        t = self.tables
        since = now - dt.timedelta(minutes=self.rules.throttle_window_minutes)
        with self.db.session() as db:
            db.execute(delete(t.attempt).where(t.attempt_at < since))
            attempt = t.attempt(**{t.attempt_address.key: address, t.attempt_at.key: now})
            db.add(attempt)
            db.commit()
            attempt_id: int = getattr(attempt, t.attempt_id.key)
        with self.db.session() as db:
            count = db.scalar(
                select(func.count())
                .select_from(t.attempt)
                .where(t.attempt_address == address, t.attempt_at >= since)
            )
            if (count or 0) > self.rules.throttle_failures:
                db.execute(delete(t.attempt).where(t.attempt_id == attempt_id))
                db.commit()
                raise Throttled()
        return attempt_id

    def reserve_check(self, user_id: int, now: dt.datetime) -> bool:
        """Take one of the user's checks before the secret is looked at: False when the user
        is disabled, locked, or every check of the series is taken."""
        t = self.tables
        with self.db.session() as db:
            reserved = db.execute(
                update(t.user)
                .where(
                    t.user_id == user_id,
                    t.active.is_(True),
                    or_(t.locked_until.is_(None), t.locked_until <= now),
                    t.failures < self.rules.lockout_failures,
                )
                .values({t.failures.key: t.failures + 1})
            )
            db.commit()
            return bool(reserved.rowcount == 1)  # type: ignore[attr-defined]

    def settle(self, user_id: int, attempt_id: int, ok: bool, now: dt.datetime,
               on_locked: Callable[[Session], None] | None = None) -> bool:
        """After the check: a right secret clears the series and the attempt; a wrong one locks
        the user once every check of the series is spent (one UPDATE decides; ``on_locked``
        runs in the same transaction). True when this call locked the user."""
        t = self.tables
        with self.db.session() as db:
            if ok:
                db.execute(
                    update(t.user).where(t.user_id == user_id)
                    .values({t.failures.key: 0, t.locked_until.key: None})
                )
                db.execute(delete(t.attempt).where(t.attempt_id == attempt_id))
                db.commit()
                return False
            locked = db.execute(
                update(t.user)
                .where(t.user_id == user_id, t.failures >= self.rules.lockout_failures)
                .values({
                    t.failures.key: 0,
                    t.locked_until.key: now + dt.timedelta(minutes=self.rules.lockout_minutes),
                })
            )
            was_locked = bool(locked.rowcount == 1)  # type: ignore[attr-defined]
            if was_locked and on_locked is not None:
                on_locked(db)
            db.commit()
            return was_locked

    # --- sessions ----------------------------------------------------------------------------

    def start_session(self, user_id: int, old_session_id: object) -> str:
        """Rotate: drop the old session, if any, and make a fresh random id (no fixation)."""
        t = self.tables
        session_id = secrets.token_urlsafe(32)
        with self.db.session() as db:
            if isinstance(old_session_id, str):
                db.execute(delete(t.session).where(t.session_hash == session_hash(old_session_id)))
            db.add(t.session(**{t.session_hash.key: session_hash(session_id),
                                t.session_user.key: user_id}))
            db.commit()
        return session_id

    def end_session(self, session_id: object) -> None:
        if isinstance(session_id, str):
            t = self.tables
            with self.db.session() as db:
                db.execute(delete(t.session).where(t.session_hash == session_hash(session_id)))
                db.commit()

    def session_user(self, session_id: object, now: dt.datetime) -> tuple[Any | None, bool]:
        """The session's user, and whether a session was just ended for being idle too long,
        its user disabled or gone. The last use is written at most every 30 s."""
        if not isinstance(session_id, str):
            return None, False
        t = self.tables
        idle = dt.timedelta(minutes=self.rules.session_idle_minutes)
        with self.db.session() as db:
            row = db.get(t.session, session_hash(session_id))
            if row is None:
                return None, False
            user = db.get(t.user, getattr(row, t.session_user.key))
            last_seen: dt.datetime = getattr(row, t.last_seen.key)
            if user is None or now - last_seen > idle or not getattr(user, t.active.key):
                db.delete(row)
                db.commit()
                return None, True
            if now - last_seen > LAST_SEEN_GRANULARITY:
                setattr(row, t.last_seen.key, now)
                db.commit()
            return user, False
