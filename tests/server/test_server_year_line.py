"""The municipality's own line for the year on the history page (issue 9.5), through the app.

The line is made from the TPF's status bodies the send module keeps (``Submission.tpf_report``,
written by the outbox worker from the TPF's answers; the real chain is walked in
test_serve_chain.py). Counts only, never a number.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

from server_testlib import OTHER, SampleFiles, csrf_token, login, make_config, new_account
from sqlalchemy import update

from ipis_server.send import create_app
from ipis_server.send.models import Submission, utcnow
from ipis_server.send.services import services
from ipis_server.status_report import NextPartyReport, StatusReport


def _app(tmp_path: Path, files: SampleFiles) -> Any:
    return create_app(make_config(tmp_path, f"sqlite:///{tmp_path / 'ipis.db'}", keys=files.keys))


def _post(client: Any, files: SampleFiles) -> str:
    """Upload the file; where the answer leads (the receipt, or the confirmation page)."""
    token = csrf_token(client.get("/send").text)
    response = client.post(
        "/send",
        data={"csrf_token": token, "fil": (io.BytesIO(files.encrypted.read_bytes()), "f.xml")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 303
    return str(response.headers["Location"])


def _upload(client: Any, files: SampleFiles) -> str:
    location = _post(client, files)
    assert "/kvittering/" in location
    return location.rsplit("/", 1)[1]


def _keep_report(app: Any, public_id: str, report: StatusReport) -> None:
    """What the outbox worker keeps from the TPF's answer."""
    with services(app).db.session() as db:
        db.execute(update(Submission).where(Submission.public_id == public_id)
                   .values(tpf_report=report.dumps()))
        db.commit()


def _year_section(client: Any) -> str:
    html = client.get("/innsendinger").text
    match = re.search(r'<section class="aarslinje".*?</section>', html, re.S)
    assert match, html
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", match.group(0))).strip()


def test_no_submission_this_year_is_not_delivered(tmp_path: Path, files: SampleFiles) -> None:
    app = _app(tmp_path, files)
    new_account(app)
    client = app.test_client()
    login(client)
    year = utcnow().year
    line = _year_section(client)
    assert f"Leveransen for {year}" in line
    assert f"Ikke levert . Ingen innsending mottatt i {year}." in line
    services(app).db.dispose()


def test_line_follows_the_chain_and_counts_only(tmp_path: Path, files: SampleFiles) -> None:
    app = _app(tmp_path, files)
    new_account(app)
    client = app.test_client()
    login(client)
    first = _upload(client, files)
    assert "Under behandling . Siste innsending mottatt" in _year_section(client)

    _keep_report(app, first, StatusReport("behandles"))
    assert "Under behandling" in _year_section(client)

    _keep_report(app, first, StatusReport("levert", personer=3, ugyldige_fodselsnumre=1,
                                          register=NextPartyReport("lastet", personer=3)))
    line = _year_section(client)
    assert "Levert : 3 personer lastet i registeret. Siste innsending mottatt" in line
    assert "avvist" not in line.lower()

    # The same file again waits for the user's decision: not sent, so it does not count.
    location = _post(client, files)
    assert location.endswith("/bekreft")
    assert _year_section(client) == line
    token = csrf_token(client.get(location).text)
    assert client.post(location, data={"csrf_token": token, "send": "1"}).status_code == 303
    second = location.rsplit("/", 2)[1]
    # Sent, then refused by the register: the year stays delivered, with the reason shown.
    reason = "Posten i linje 7 er flyttet fra en annen fil."
    _keep_report(app, second, StatusReport("levert", personer=3, ugyldige_fodselsnumre=0,
                                           register=NextPartyReport("avvist", melding=reason)))
    line = _year_section(client)
    assert "Levert : 3 personer lastet i registeret." in line
    assert f"Den siste innsendingen ble avvist: {reason}" in line

    # Another account sees only its own line.
    other_pin = new_account(app, OTHER, pin="87654321")
    other = app.test_client()
    login(other, OTHER, other_pin)
    assert "Ikke levert" in _year_section(other)
    services(app).db.dispose()


def test_refused_by_the_tpf_shows_its_reason(tmp_path: Path, files: SampleFiles) -> None:
    app = _app(tmp_path, files)
    new_account(app)
    client = app.test_client()
    login(client)
    public_id = _upload(client, files)
    reason = "Filen er kryptert med en nøkkel TPF ikke lenger tar imot."
    _keep_report(app, public_id, StatusReport("avvist", melding=reason))
    line = _year_section(client)
    assert "Avvist ." in line and reason in line
    services(app).db.dispose()
