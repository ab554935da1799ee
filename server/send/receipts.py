"""The receipt of one submission, and the list of the account's submissions."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Blueprint, abort, g, render_template
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..register.sender_line import SenderYear, sender_year
from .auth import login_required
from .models import Submission
from .services import services
from .status import AWAITING_CONFIRMATION, tpf_report

bp = Blueprint("receipts", __name__)


def _oslo() -> dt.tzinfo:
    try:
        return ZoneInfo("Europe/Oslo")
    except ZoneInfoNotFoundError:
        return dt.UTC


def local_time(value: dt.datetime) -> str:
    """Norwegian local time with its offset, so a printed receipt is unambiguous."""
    local = value.astimezone(_oslo())
    offset = local.strftime("%z")
    return local.strftime("%d.%m.%Y kl. %H:%M:%S ") + offset[:3] + ":" + offset[3:]


@bp.route("/kvittering/<public_id>")
@login_required
def receipt(public_id: str) -> str:
    with services().db.session() as db:
        submission = db.scalar(
            select(Submission).where(
                Submission.public_id == public_id, Submission.account_id == g.account.id
            )
        )
        if submission is None or submission.status == AWAITING_CONFIRMATION:
            abort(404)
        return render_template("receipt.html", s=submission)


@bp.route("/innsendinger")
@login_required
def history() -> str:
    with services().db.session() as db:
        rows = db.scalars(
            select(Submission)
            .where(Submission.account_id == g.account.id)
            .order_by(Submission.id.desc())
            .limit(500)
        ).all()
        return render_template("history.html", submissions=rows,
                               year=year_line(db, g.account.id))


def year_line(db: Session, account_id: int) -> SenderYear:
    """The account's own line of the register's overview for this year (issue 9.5), from the
    TPF's status bodies kept for its submissions (with the register's answer in them). A file
    the user has not yet confirmed was not sent on, so it does not count."""
    now = dt.datetime.now(_oslo())
    start = dt.datetime(now.year, 1, 1, tzinfo=_oslo())
    rows = db.scalars(
        select(Submission).where(
            Submission.account_id == account_id,
            Submission.received_at >= start,
            Submission.status != AWAITING_CONFIRMATION,
        )
    ).all()
    return sender_year(now.year, [(s.received_at.astimezone(_oslo()), tpf_report(s)) for s in rows])
