"""Helpers for the register's tests: keys, inputs, §4 messages, a register, what it stored.

Inputs are made by the core (``ipis demo-data`` in memory, the native encryptor), §4 messages
by the independent test writer (pseudonymised_writer.py), and what the register stored is
read back with plain SQL, so the tests do not check the register against itself.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import io
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pseudonymised_writer as pw
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree
from sqlalchemy import text

from ipis_core.contact import Contact
from ipis_core.crypto.native import NativeBackend
from ipis_core.demo_data import document_bytes
from ipis_core.keygen import generate_keys, write_keys
from ipis_core.message import MessageEncryptor
from ipis_server.db import Database
from ipis_server.keyring import Keyring
from ipis_server.register.config import RegisterConfig
from ipis_server.register.services import register_services
from ipis_server.register.worker import RegisterWorker

TODAY = dt.date(2026, 6, 2)
VALID_FROM = dt.date(2026, 1, 1)
RECEIVED = dt.datetime(2026, 6, 2, 10, 0, tzinfo=dt.UTC)
CONTACT = Contact.validated("iplos@kommune.no", "Åse Ødegård", "912 34 567")
TOKEN = "registertoken-" + "y" * 24
SECRET = pw.Options().secret


@dataclass(frozen=True)
class KeySet:
    """One year's keys as ``ipis keys generate`` writes them (the folder), and in memory."""

    folder: Path
    key_file: Any  # ipis_core.keyfile.KeyFile

    @property
    def tpf_private(self) -> rsa.RSAPrivateKey:
        return pw.private_key((self.folder / "tpf-privat.pem").read_bytes())

    @property
    def register_private(self) -> rsa.RSAPrivateKey:
        return pw.private_key((self.folder / "iplos-privat.pem").read_bytes())


def make_keys(folder: Path, valid_from: dt.date = VALID_FROM) -> KeySet:
    generated = generate_keys(valid_from, bits=2048)
    write_keys(generated, str(folder))
    return KeySet(folder, generated.key_file)


def install(keyring_folder: Path, keys: KeySet) -> Keyring:
    keyring = Keyring(keyring_folder, "register")
    keyring.install_from_folder(keys.folder)
    return keyring


def encrypt(data: bytes, keys: KeySet, today: dt.date = TODAY) -> bytes:
    async def run() -> bytes:
        encryptor = MessageEncryptor(keys.key_file, CONTACT, NativeBackend(), today)
        out = [await encryptor.feed(data[i : i + (1 << 16)]) for i in range(0, len(data), 1 << 16)]
        out.append(await encryptor.finish())
        return b"".join(out)

    return asyncio.run(run())


def demo_input(persons: int, kommune: str = "0301", seed: int = 1,
               period: tuple[str, str] | None = None) -> bytes:
    data = document_bytes(persons, kommune, seed)
    return with_period(data, period) if period is not None else data


def with_period(data: bytes, period: tuple[str, str]) -> bytes:
    """A demo export (period 2025, UTF-8) for another period."""
    data = data.replace(b"<PeriodeFra>2025-01-01</PeriodeFra>",
                        f"<PeriodeFra>{period[0]}</PeriodeFra>".encode())
    return data.replace(b"<PeriodeTil>2025-12-31</PeriodeTil>",
                        f"<PeriodeTil>{period[1]}</PeriodeTil>".encode())


def new_id() -> str:
    return secrets.token_hex(16)


def message(encrypted: bytes, keys: KeySet, submission_id: str,
            options: pw.Options | None = None) -> bytes:
    """The §4 message the TPF would send for ``encrypted`` (options: how to tamper)."""
    return pw.write(encrypted, keys.tpf_private, keys.register_private.public_key(),
                    submission_id, options)


def with_options(**changes: Any) -> pw.Options:
    return dataclasses.replace(pw.Options(), **changes)


def stream(data: bytes) -> io.BytesIO:
    return io.BytesIO(data)


# --- the register's app, driven as the TPF drives it -----------------------------------------


def register_config(folder: Path, database_url: str, keys: KeySet | None) -> RegisterConfig:
    instance = folder / "register"
    config = RegisterConfig(
        instance_dir=instance,
        database_url=database_url,
        storage_dir=instance / "lager",
        keys_dir=instance / "nokler",
        tokens=(TOKEN,),
        secret_key=secrets.token_hex(16),
        database_busy_seconds=30.0,
        retry_base_seconds=0.05,
        retry_max_seconds=0.2,
    )
    if keys is not None:
        install(config.keys_dir, keys)
    return config




def put(client: Any, submission_id: str, data: bytes) -> Any:
    return client.put(
        f"/innsendinger/{submission_id}", data=data,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/xml",
                 "X-IPIS-SHA256": sha256(data)},
    )


def get(client: Any, submission_id: str) -> Any:
    return client.get(f"/innsendinger/{submission_id}",
                      headers={"Authorization": f"Bearer {TOKEN}"})


def deliver_and_load(app: Any, data: bytes, submission_id: str | None = None) -> dict[str, Any]:
    """PUT, load, GET: the register's final answer (the §5 body)."""
    submission_id = submission_id or new_id()
    client = app.test_client()
    stored = put(client, submission_id, data)
    assert stored.status_code == 202, stored.get_json()
    assert stored.get_json() == {"status": "behandles"}
    assert get(client, submission_id).status_code == 202
    assert RegisterWorker(register_services(app)).drain() == 1
    answer = get(client, submission_id)
    assert answer.status_code == 200  # final
    body: dict[str, Any] = answer.get_json()
    return body


def assert_nothing_loaded(app: Any) -> None:
    db = register_services(app).db
    for table in ("personer", "vurderinger", "tjenester", "diagnoser"):
        assert count(db, table) == 0, table
    assert count(db, "innsendinger", "status = 'lastet'") == 0
    assert not list((register_services(app).config.storage_dir / "innsendinger").iterdir())


# --- the real register: ``ipis register serve`` as a process --------------------------------


@dataclass
class RunningRegister:
    url: str
    instance: Path
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[str]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def put(self, submission_id: str, data: bytes) -> requests.Response:
        return requests.put(
            f"{self.url}/innsendinger/{submission_id}", data=data, timeout=60,
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/xml",
                     "X-IPIS-SHA256": sha256(data)},
        )

    def final(self, submission_id: str) -> dict[str, object]:
        """Polls as the TPF's outbox does until the answer is final (200)."""
        answers: list[requests.Response] = []

        def done() -> bool:
            answers.append(requests.get(f"{self.url}/innsendinger/{submission_id}", timeout=30,
                                        headers={"Authorization": f"Bearer {TOKEN}"}))
            return answers[-1].status_code == 200

        from server_testlib import wait_until

        wait_until(done, timeout=120, what=f"endelig svar for {submission_id}")
        body: dict[str, object] = answers[-1].json()
        return body


def start_register(instance: Path, keys: KeySet, database_url: str = "",
                   env_extra: dict[str, str] | None = None) -> RunningRegister:
    """``ipis register serve`` on a free loopback port with ``keys`` installed; waits until it
    answers. SQLite in the instance folder unless ``database_url`` is PostgreSQL's;
    ``env_extra``: more settings for the process."""
    from server_testlib import REPO, free_port, ipis, wait_for_http

    env = {k: v for k, v in os.environ.items() if not k.startswith("IPIS_")}
    env.update(IPIS_REGISTER_TOKEN=TOKEN, IPIS_REGISTER_WORKER_IDLE_SECONDS="0.2",
               PYTHONUNBUFFERED="1", **(env_extra or {}))
    if database_url and not database_url.startswith("sqlite"):
        env["IPIS_REGISTER_DATABASE_URL"] = database_url
    ipis("keys", "install", "--party", "register", "--instance", str(instance), "--from",
         str(keys.folder), env=env)
    port = free_port()
    log = instance.parent / f"{instance.name}-serve.log"
    with log.open("w", encoding="utf-8") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "ipis_server", "register", "serve", "--host", "127.0.0.1",
             "--port", str(port), "--instance", str(instance)],
            stdout=handle, stderr=subprocess.STDOUT, text=True, cwd=REPO, env=env,
        )
    running = RunningRegister(f"http://127.0.0.1:{port}", instance, env, log, process)
    try:
        wait_for_http(running.url + "/logg-inn", process, timeout=60)
    except BaseException:
        running.stop()
        raise
    return running


# --- what the input said ----------------------------------------------------------------------

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)


@dataclass(frozen=True)
class InputPerson:
    fodselsnummer: str
    husstand: str
    dodsdato: str
    vurderinger: str  # as the export writes them
    tjenester: str
    diagnoser: str


def _hours(value: str | None) -> str:
    if value is None:
        return ""
    from decimal import Decimal

    return format(Decimal(value).normalize(), "f")


def input_persons(data: bytes) -> list[InputPerson]:
    """Each Person of an IPLOS export, in the export's compact text form (export.py's)."""
    root = etree.fromstring(data, _PARSER)
    result = []
    for person in root.iterfind("Personer/Person"):
        assessments = []
        for vurdering in person.iterfind("Vurdering"):
            scores = {v.get("kode"): v.get("skar") for v in vurdering.iterfind("Variabel")}
            from ipis_server.register.models import VARIABLES

            ordered = " ".join(f"{code}={scores[code]}" for code in VARIABLES if code in scores)
            assessments.append(f"{vurdering.get('dato')} {ordered}")
        services = [
            f"{t.get('kode')}:{t.get('fra')}:{t.get('til') or ''}:{_hours(t.get('timerPerUke'))}"
            for t in person.iterfind("Tjeneste")
        ]
        result.append(InputPerson(
            fodselsnummer=person.findtext("Fodselsnummer").strip(),
            husstand=person.findtext("Husstand") or "",
            dodsdato=person.findtext("Dodsdato") or "",
            vurderinger="; ".join(assessments),
            tjenester="; ".join(services),
            diagnoser=";".join(d.get("kode") for d in person.iterfind("Diagnose")),
        ))
    return result


# --- what the register stored ---------------------------------------------------------------

TABLES = ("innsendinger", "personer", "vurderinger", "tjenester", "diagnoser", "mottak",
          "pseudonymbytter", "pseudonymbytte_par", "ansatte", "ansatt_okter",
          "innloggingsforsok")


def count(db: Database, table: str, where: str = "", **params: Any) -> int:
    with db.engine.connect() as connection:
        sql = f"SELECT COUNT(*) FROM {table}" + (f" WHERE {where}" if where else "")
        return int(connection.execute(text(sql), params).scalar_one())


def submissions(db: Database) -> list[dict[str, Any]]:
    with db.engine.connect() as connection:
        rows = connection.execute(text("SELECT * FROM innsendinger ORDER BY id")).mappings()
        return [dict(r) for r in rows]


def all_text(db: Database) -> str:
    """Every value of every table as text: what a search for a number would look through."""
    parts = []
    with db.engine.connect() as connection:
        for table in TABLES:
            for row in connection.execute(text(f"SELECT * FROM {table}")):
                parts.append(" ".join(str(v) for v in row))
    return "\n".join(parts)


def files_text(folder: Path) -> bytes:
    """Every file under ``folder`` (database files, logs, storage), as bytes."""
    return b"\n".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
