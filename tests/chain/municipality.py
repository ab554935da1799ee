"""The municipality's side of the chain: its IPLOS export (``ipis demo-data``), encrypted with
``ipis encrypt``, and the clerk at the send module, through HTTP as a browser would (login,
CSRF, upload, receipt, history)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from chain_testlib import PIN
from server_testlib import DEMO, csrf_token, error_text, ipis, login_session, wait_until

CONTACT = ("--email", "iplos@kommune.no", "--name", "Kari Nordmann", "--mobile", "912 34 567")
FINAL_STEPS = ("Lastet i registeret", "Avvist av")


def demo_data(path: Path, persons: int, seed: int, encoding: str = "UTF-8") -> bytes:
    """``ipis demo-data``: synthetic numbers (a TPF for test takes them), Oslo, period 2025."""
    ipis("demo-data", "--persons", str(persons), "--seed", str(seed), "--encoding", encoding,
         "--out", str(path))
    return path.read_bytes()


def encrypt(data: Path, out: Path, key_file: Path, today: dt.date | None = None) -> bytes:
    """``ipis encrypt`` (``today``: the day the municipality encrypted, for key dates)."""
    day = ("--today", today.isoformat()) if today else ()
    ipis("encrypt", "--data", str(data), "--out", str(out), "--keys", str(key_file), *CONTACT,
         *day)
    return out.read_bytes()


def add_diagnosis(data: bytes, person: int, code: str) -> bytes:
    """``data`` with one more Diagnose (the person's last element) for the ``person``-th."""
    ends = [m.start() for m in re.finditer(rb"    </Person>\n", data)]
    at = ends[person]
    return data[:at] + f'      <Diagnose kode="{code}"/>\n'.encode() + data[at:]


@dataclass
class Clerk:
    """The municipality's clerk at the send module, through HTTP as a browser would."""

    url: str
    session: Any = None

    def __post_init__(self) -> None:
        self.session, response = login_session(self.url, DEMO, PIN)
        assert response.status_code in (200, 302), response.text[:500]
        assert response.url.endswith("/send"), response.url

    def download_key_file(self, target: Path) -> Path:
        """The key file from the downloads page, by the link the page shows."""
        page = self.session.get(self.url + "/last-ned")
        assert page.status_code == 200
        assert 'href="/last-ned/nokkelfil.xml"' in page.text
        answer = self.session.get(self.url + "/last-ned/nokkelfil.xml")
        assert answer.status_code == 200
        target.write_bytes(answer.content)
        return target

    def upload(self, path: Path) -> requests.Response:
        token = csrf_token(self.session.get(self.url + "/send").text)
        with path.open("rb") as handle:
            return self.session.post(self.url + "/send", data={"csrf_token": token},
                                     files={"fil": (path.name, handle, "text/xml")},
                                     timeout=300)

    def send(self, path: Path) -> str:
        """Upload; returns the receipt's URL (asserting «Sending utført»)."""
        receipt = self.upload(path)
        assert "Sending utført" in receipt.text, error_text(receipt.text) or receipt.text[:500]
        assert "/kvittering/" in receipt.url
        return str(receipt.url)

    def status(self, receipt_url: str) -> str:
        html = self.session.get(receipt_url).text
        found = re.search(r'<dd id="status">(.*?)</dd>', html, re.S)
        assert found, html[:1000]
        return found.group(1)

    def wait_final(self, receipt_url: str, timeout: float = 120) -> str:
        """The receipt's status once the register has answered (loaded or refused)."""
        wait_until(lambda: any(s in self.status(receipt_url) for s in FINAL_STEPS), timeout,
                   f"the register's answer on {receipt_url}")
        return self.status(receipt_url)

    def history(self) -> str:
        return str(self.session.get(self.url + "/innsendinger").text)


def submission_id(receipt_url: str) -> str:
    """The send module's public id (the id the TPF and the register know it by)."""
    return receipt_url.rstrip("/").rsplit("/", 1)[1]
