"""The send module's worker delivering to a real TPF process, the TPF's outbox delivering to a
register (a stand-in speaking the §5 contract through server/intake.py), and the outcome
reaching the send module's receipt and history pages, in Norwegian, counts only."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from flask import Flask
from server_testlib import csrf_token, error_text, files_under, start_server, wait_until
from sqlalchemy.orm import Session
from tpf_testlib import (
    TOKEN,
    cleartext,
    encrypt,
    impossible_date,
    install_keys,
    make_key_set,
    numbers_of,
    start_tpf,
    wrong_check_digits,
)
from werkzeug.serving import make_server

from ipis_server.intake import Arrival, Intake, Known, make_blueprint
from ipis_server.status_report import StatusReport
from ipis_server.storage import Storage

pytestmark = pytest.mark.xdist_group("tpf-process")
REGISTER_TOKEN = "register-token-" + "r" * 20


@dataclass
class Register:
    """Takes the TPF's messages and answers as a register that loaded them would."""

    url: str = ""
    received: dict[str, str] = field(default_factory=dict)  # id -> sha256
    persons: int = 0

    def new_check(self) -> _Pass:
        return _Pass()

    def record(self, db: Session, arrival: Arrival) -> StatusReport:
        self.received[arrival.innsending_id] = arrival.sha256
        return StatusReport("behandles")

    def find(self, db: Session, innsending_id: str) -> Known | None:
        if innsending_id not in self.received:
            return None
        return Known(self.received[innsending_id], StatusReport("lastet", personer=self.persons))


class _Pass:
    def feed(self, chunk: bytes) -> bytes:
        return chunk

    def finish(self) -> bytes:
        return b""


class _NoDatabase:
    """The stand-in keeps its rows in a dict: a session that commits nothing."""

    def session(self) -> Session:
        return Session()


@pytest.fixture
def register(tmp_path: Path) -> Iterator[Register]:
    state = Register()
    intake = Intake(tokens=(REGISTER_TOKEN,), db=_NoDatabase(),  # type: ignore[arg-type]
                    storage=Storage(tmp_path / "register"), max_bytes=1 << 30, party=state)
    app = Flask("register")
    app.register_blueprint(make_blueprint("register", lambda: intake), url_prefix="/mottak")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_port}/mottak"
    yield state
    server.shutdown()


def test_send_module_to_tpf_to_register_and_back_to_the_history_page(
        tmp_path: Path, register: Register) -> None:
    keys = make_key_set(tmp_path / "nokler", dt.date.today() - dt.timedelta(days=3))
    plain = cleartext(10, seed=51)
    numbers = numbers_of(plain)
    plain = cleartext(10, seed=51, replace={3: wrong_check_digits(numbers[3]),
                                             7: impossible_date()})
    numbers = numbers_of(plain)
    encrypted_path = tmp_path / "iplos-kryptert.xml"
    encrypted_path.write_bytes(encrypt(plain, keys.key_file))
    register.persons = 8
    tpf_instance = tmp_path / "tpf"
    install_keys(tpf_instance, keys)
    tpf = start_tpf(tpf_instance, {"IPIS_TPF_REGISTER_URL": register.url,
                                   "IPIS_TPF_REGISTER_TOKEN": REGISTER_TOKEN,
                                   "IPIS_TPF_REGISTER_POLL_SECONDS": "0.3"})
    send = None
    try:
        send = start_server(tmp_path / "send", {"IPIS_TPF_URL": tpf.url, "IPIS_TPF_TOKEN": TOKEN,
                                                "IPIS_TPF_POLL_SECONDS": "0.3",
                                                "IPIS_DATABASE_URL": ""},
                            keys=keys.folder)
        session = requests.Session()
        token = csrf_token(session.get(send.url + "/logg-inn").text)
        session.post(send.url + "/logg-inn", data={
            "csrf_token": token, "kommunenummer": "0301", "bydelsnummer": "00",
            "organisasjonsnummer": "922542570", "pin": send.pin})
        token = csrf_token(session.get(send.url + "/send").text)
        with encrypted_path.open("rb") as handle:
            receipt = session.post(send.url + "/send", data={"csrf_token": token},
                                   files={"fil": ("iplos-kryptert.xml", handle, "text/xml")})
        assert "Sending utført" in receipt.text, error_text(receipt.text)

        def history() -> str:
            return session.get(send.url + "/innsendinger").text

        wait_until(lambda: "Lastet i registeret" in history(), 180, "the register's answer")
        page = history()
        assert "Lastet i registeret: 8 personer" in page
        receipt_page = session.get(receipt.url).text
        for step in ("Mottatt", "Videresendt til TPF",
                     "Behandlet av TPF: 10 personer, 2 ugyldige fødselsnumre (ikke sendt videre)",
                     "Lastet i registeret: 8 personer"):
            assert f"<li>{step}</li>" in receipt_page, step
        assert len(register.received) == 1
        for number in numbers:
            assert number not in page + receipt_page
            assert number not in send.log_text() + tpf.log_text()
            for path in files_under(send.instance) + files_under(tpf.instance):
                assert number.encode() not in path.read_bytes(), path
    finally:
        if send is not None:
            send.stop()
        tpf.stop()
