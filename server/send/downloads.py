"""Downloads: the offline encryption page (IPLOS Krypt) and the current key file.

Beside each download the page shows the SHA-256 of the file this server serves, computed here
from that file (not copied from the build), so a user can check the copy that reaches the
secure zone with Get-FileHash, certutil or sha256sum (docs/brukerveiledning.md, section 3).
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from stat import S_ISREG

from flask import Blueprint, render_template, send_file
from werkzeug.wrappers import Response as BaseResponse

from .services import services

bp = Blueprint("downloads", __name__)

PAGE_MISSING = (
    "Krypteringssiden (ipis-krypt.html) er ikke bygget på denne serveren ennå. "
    "Driftsansvarlig bygger den med «make page»."
)
KEY_FILE_MISSING = "Nøkkelfilen er ikke lagt ut på denne serveren ennå. Kontakt driftsansvarlig."
HASH_CHUNK = 1 << 20


def published_sha256(path: Path) -> str | None:
    """SHA-256 of the file as it is now; None when there is no such file."""
    try:
        stat = path.stat()
    except OSError:
        return None
    if not S_ISREG(stat.st_mode):
        return None
    return _sha256_of(str(path), stat.st_ino, stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _sha256_of(path: str, inode: int, size: int, mtime_ns: int) -> str | None:
    """Keyed by the file's inode, size and change time too: a file replaced (``mv``,
    docs/drift.md) or changed is hashed again; an unchanged one is not, page view after view."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(HASH_CHUNK):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


@bp.route("/last-ned")
def index() -> str:
    config = services().config
    page_sha256 = published_sha256(config.offline_page)
    key_sha256 = published_sha256(config.key_file)
    return render_template(
        "downloads.html",
        page_ok=page_sha256 is not None,
        page_sha256=page_sha256,
        key_ok=key_sha256 is not None,
        key_sha256=key_sha256,
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
