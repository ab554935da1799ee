"""The staff's pages: the delivery overview for a chosen year."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from flask import Blueprint, abort, render_template, request

from .auth import login_required
from .chart import bar_chart
from .overview import COVERED, DELIVERED, MISSING, PARTLY, REFUSED_STATE, build
from .services import register_services

bp = Blueprint("overview", __name__)
OSLO = zoneinfo.ZoneInfo("Europe/Oslo")
FIRST_YEAR = 2000


def local_date(value: dt.datetime | None) -> str:
    """A day in Norwegian form, in Norwegian time (the staff reads the day it arrived)."""
    return value.astimezone(OSLO).strftime("%d.%m.%Y") if value is not None else ""


def number(value: int | None) -> str:
    """Thousands grouped with a no-break space, as Norwegian writes numbers."""
    return f"{value:,}".replace(",", "\u00a0") if value is not None else ""


def _year() -> int:
    raw = request.args.get("aar", "")
    today = register_services().today()
    if not raw:
        # In January and February the municipalities deliver last year's data.
        return today.year - 1 if today.month <= 2 else today.year
    if not raw.isdigit() or not FIRST_YEAR <= int(raw) <= today.year + 1:
        abort(400)
    return int(raw)


@bp.route("/oversikt", methods=["GET"])
@login_required
def overview() -> str:
    year = _year()
    with register_services().db.session() as db:
        data = build(db, year)
    return render_template(
        "register/overview.html",
        data=data,
        chart=bar_chart(data.persons_per_year),
        states={"DELIVERED": DELIVERED, "MISSING": MISSING, "REFUSED": REFUSED_STATE,
                "PARTLY": PARTLY, "COVERED": COVERED},
    )
