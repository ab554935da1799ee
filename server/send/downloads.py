"""Downloads: the offline encryption page (IPLOS Krypt) and the current key file."""

from __future__ import annotations

from flask import Blueprint, render_template, send_file
from werkzeug.wrappers import Response as BaseResponse

from .services import services

bp = Blueprint("downloads", __name__)

PAGE_MISSING = (
    "Krypteringssiden (ipis-krypt.html) er ikke bygget på denne serveren ennå. "
    "Driftsansvarlig bygger den med «make page»."
)
KEY_FILE_MISSING = "Nøkkelfilen er ikke lagt ut på denne serveren ennå. Kontakt driftsansvarlig."


@bp.route("/last-ned")
def index() -> str:
    config = services().config
    return render_template(
        "downloads.html",
        page_ok=config.offline_page.is_file(),
        key_ok=config.key_file.is_file(),
    )


@bp.route("/last-ned/ipis-krypt.html")
def offline_page() -> BaseResponse | tuple[str, int]:
    path = services().config.offline_page
    if not path.is_file():
        return render_template("message.html", title="Ikke tilgjengelig", message=PAGE_MISSING), 404
    return send_file(
        path, mimetype="text/html", as_attachment=True, download_name="ipis-krypt.html"
    )


@bp.route("/last-ned/nokkelfil.xml")
def key_file() -> BaseResponse | tuple[str, int]:
    path = services().config.key_file
    if not path.is_file():
        return render_template(
            "message.html", title="Ikke tilgjengelig", message=KEY_FILE_MISSING
        ), 404
    return send_file(
        path, mimetype="application/xml", as_attachment=True, download_name="nokkelfil.xml"
    )
