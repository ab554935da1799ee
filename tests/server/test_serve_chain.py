"""``ipis serve`` (``make run``) as the whole chain on loopback, in a real process (issue 9.8).

The send module, the TPF and the register answer on the three printed URLs; a file encrypted
natively with the key file downloaded from the send module and uploaded through it reaches the
register (``ipis register export --instance`` of the serve folder finds its rows, and the send
module's pages show the register's answer); SIGTERM stops all three. A party that cannot start
stops the others with a Norwegian message.
"""

from __future__ import annotations

import csv
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from server_testlib import REPO, csrf_token, free_port, ipis, wait_until

from ipis_server.keyring import SERVE_MARKER, party_instance

pytestmark = pytest.mark.xdist_group("server-process")
PERSONS = 12


@dataclass
class Chain:
    instance: Path
    ports: tuple[int, int, int]  # send, TPF, register
    log: Path
    process: subprocess.Popen[str]

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.ports[index]}"


def _env() -> dict[str, str]:
    """No IPIS_* of the caller's shell (IPIS_TPF_URL would mean «the send module alone»)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IPIS_")}
    return {**env, "PYTHONUNBUFFERED": "1"}


def _start(instance: Path, ports: tuple[int, int, int], *extra: str) -> Chain:
    instance.parent.mkdir(parents=True, exist_ok=True)
    log = instance.parent / "serve.log"
    with log.open("w", encoding="utf-8") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "ipis_server", "serve", "--instance", str(instance),
             "--port", str(ports[0]), "--tpf-port", str(ports[1]),
             "--register-port", str(ports[2]), *extra],
            stdout=handle, stderr=subprocess.STDOUT, text=True, cwd=REPO, env=_env(),
        )
    return Chain(instance, ports, log, process)


def _stop(chain: Chain) -> None:
    if chain.process.poll() is None:
        chain.process.kill()
        chain.process.wait(10)


def _port_free(port: int) -> bool:
    """Nobody listens there (a bind would trip over the closed connections' TIME_WAIT)."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    ports = (free_port(), free_port(), free_port())
    started = _start(tmp_path_factory.mktemp("kjede") / "instans", ports)
    try:
        wait_until(lambda: "Ctrl-C stopper alle tre." in started.text()
                   or started.process.poll() is not None, 90, "ipis serve's start")
        assert started.process.poll() is None, started.text()
        yield started
    finally:
        _stop(started)


def _printed(chain: Chain, label: str) -> str:
    match = re.search(rf"{label}:\s+(\S+)", chain.text())
    assert match, chain.text()
    return match.group(1)


def test_three_urls_printed_and_answering(chain: Chain) -> None:
    text = chain.text()
    assert f"IPLOS sendemodul:    {chain.url(0)}/" in text
    assert f"TPF (mottak):        {chain.url(1)}/innsendinger" in text
    assert f"Registeret (SSB):    {chain.url(2)}/" in text
    assert "TPF godtar Skatteetatens syntetiske testnumre" in text
    assert requests.get(chain.url(0) + "/logg-inn", timeout=30).status_code == 200
    assert requests.get(chain.url(2) + "/logg-inn", timeout=30).status_code == 200
    unknown = chain.url(1) + "/innsendinger/" + "0" * 32
    assert requests.get(unknown, timeout=30).status_code == 401  # the TPF wants its token
    token = (chain.instance / "tpf" / "token").read_text().strip()
    answer = requests.get(unknown, timeout=30, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 404
    # Each party its own keys: the private keys are in the TPF's and the register's keyrings,
    # none beside the key file the send module serves.
    tpf_keys = sorted(p.name for p in (chain.instance / "tpf" / "nokler").glob("*.pem"))
    register_keys = sorted(p.name for p in (chain.instance / "register" / "nokler").glob("*.pem"))
    assert len(tpf_keys) == 1 and tpf_keys[0].startswith("tpf-"), tpf_keys
    assert len(register_keys) == 1 and register_keys[0].startswith("iplos-"), register_keys
    assert not list((chain.instance / "nokler").glob("*.pem"))


def test_upload_reaches_the_register_then_sigterm_stops_all(chain: Chain,
                                                             tmp_path: Path) -> None:
    base = chain.url(0)
    key_file = tmp_path / "nokkelfil.xml"
    key_file.write_bytes(requests.get(base + "/last-ned/nokkelfil.xml", timeout=30).content)
    data, encrypted = tmp_path / "iplos.xml", tmp_path / "iplos-kryptert.xml"
    ipis("demo-data", "--persons", str(PERSONS), "--out", str(data))
    ipis("encrypt", "--data", str(data), "--out", str(encrypted), "--keys", str(key_file),
         "--email", "kari@example.no", "--name", "Kari Nordmann", "--mobile", "912 34 567")

    http = requests.Session()
    form = http.get(base + "/logg-inn", timeout=30).text
    answer = http.post(base + "/logg-inn", timeout=60, data={
        "csrf_token": csrf_token(form), "kommunenummer": "0301", "bydelsnummer": "00",
        "organisasjonsnummer": "922542570", "pin": _printed(chain, "PIN-kode")})
    assert answer.url.endswith("/send"), answer.text[:500]
    with encrypted.open("rb") as body:
        receipt = http.post(base + "/send", timeout=120, data={"csrf_token": csrf_token(
            answer.text)}, files={"fil": (encrypted.name, body, "application/xml")})
    assert receipt.status_code == 200 and "Sending utført" in receipt.text

    loaded = f"Lastet i registeret: {PERSONS} personer"
    wait_until(lambda: loaded in http.get(receipt.url, timeout=30).text, 90,
               "the register's answer on the receipt")
    history = http.get(base + "/innsendinger", timeout=30).text
    assert loaded in history
    assert f"{PERSONS} personer lastet i registeret" in history  # the year's own line

    out = tmp_path / "eksport.csv"
    exported = ipis("register", "export", "--instance", str(chain.instance), "--out", str(out))
    assert exported.stdout.startswith(f"Skrev {PERSONS} rader"), exported.stdout
    with out.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == PERSONS
    assert all(row["pseudonym"] for row in rows)
    keys = ipis("keys", "list", "--party", "tpf", "--instance", str(chain.instance)).stdout
    assert str(chain.instance / "tpf" / "nokler") in keys and "gjeldende" in keys

    password = _printed(chain, "Passord")
    staff = requests.Session()
    form = staff.get(chain.url(2) + "/logg-inn", timeout=30).text
    overview = staff.post(chain.url(2) + "/logg-inn", timeout=60, data={
        "csrf_token": csrf_token(form), "brukernavn": "demo", "passord": password})
    assert overview.url.endswith("/oversikt"), overview.text[:500]

    chain.process.send_signal(signal.SIGTERM)
    assert chain.process.wait(60) == 0, chain.text()
    for port in chain.ports:
        assert _port_free(port), port


def test_a_party_that_cannot_start_stops_the_others(tmp_path: Path) -> None:
    """The send module's port taken: the register and the TPF are up by then (they start
    first), and are closed again."""
    ports = (free_port(), free_port(), free_port())
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", ports[0]))
        taken.listen()
        failed = _start(tmp_path / "instans", ports, "--no-demo")
        try:
            assert failed.process.wait(90) == 1
        finally:
            _stop(failed)
    text = failed.text()
    assert (f"Sendemodulen kunne ikke starte på 127.0.0.1:{ports[0]}: porten er allerede i "
            "bruk. Ingen av partene kjører.") in text
    assert "Address already in use" not in text  # werkzeug's English line is not shown
    assert _port_free(ports[1]) and _port_free(ports[2])
    assert "tpf_0001" in text  # the TPF had started (its schema made) before it was stopped


def test_serve_folder_means_the_party_subfolder(tmp_path: Path) -> None:
    """``--instance DIR`` of ``ipis tpf``/``ipis register``/``ipis keys``: DIR itself, unless it
    is the folder of ``ipis serve`` (its marker file and the party's subfolder)."""
    folder = tmp_path / "instans"
    (folder / "register").mkdir(parents=True)
    assert party_instance("register", folder) == folder  # no marker: a party's own folder
    (folder / SERVE_MARKER).write_text("ipis serve", encoding="utf-8")
    assert party_instance("register", folder) == folder / "register"
    assert party_instance("tpf", folder) == folder  # no tpf/ subfolder: the folder as given


def test_only_send_keeps_the_send_module_alone(tmp_path: Path) -> None:
    ports = (free_port(), free_port(), free_port())
    alone = _start(tmp_path / "instans", ports, "--only-send", "--no-worker")
    try:
        wait_until(lambda: "Instansmappe:" in alone.text() or alone.process.poll() is not None,
                   90, "the send module's start")
        assert alone.process.poll() is None, alone.text()
        assert "Videresender til: lokal innboks" in alone.text()
        assert requests.get(f"http://127.0.0.1:{ports[0]}/logg-inn", timeout=30).ok
        assert _port_free(ports[1]) and _port_free(ports[2])
        assert not (tmp_path / "instans" / "tpf").exists()
    finally:
        alone.process.send_signal(signal.SIGTERM)
        alone.process.wait(30)
