"""The production deployment of docs/drift.md, for real: nginx (docs/nginx-ipis.conf, as
written) in front of gunicorn (the documented command), against slow clients (issue 7,
point 9: 12–16 slow POST /logg-inn at 1 byte/s took gunicorn off the air for everyone)."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from server_testlib import (
    DEMO,
    REPO,
    SampleFiles,
    csrf_token,
    error_text,
    free_port,
    install_key_file,
    ipis,
    wait_for_http,
    wait_until,
)

pytestmark = pytest.mark.xdist_group("server-deploy")

NGINX_SITE = REPO / "docs" / "nginx-ipis.conf"
SLOW_CLIENTS = 32  # twice gunicorn's 2 workers x 8 threads
PIN = "27182818"


def _self_signed(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert, private = folder / "cert.pem", folder / "key.pem"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return cert, private


def _nginx_config(folder: Path, port: int, upstream: int, cert: Path, key: Path) -> Path:
    """docs/nginx-ipis.conf with this test's port, certificate and upstream, in a minimal
    main configuration of its own (no system paths, no daemon)."""
    site = NGINX_SITE.read_text()
    for old, new in ((r"listen 443 ssl;", f"listen 127.0.0.1:{port} ssl;"),
                     (r"ssl_certificate     \S+;", f"ssl_certificate     {cert};"),
                     (r"ssl_certificate_key \S+;", f"ssl_certificate_key {key};"),
                     (r"proxy_pass http://127\.0\.0\.1:8000;",
                      f"proxy_pass http://127.0.0.1:{upstream};")):
        site, count = re.subn(old, new, site)
        assert count >= 1, old
    temp = folder / "temp"
    temp.mkdir()
    temp.chmod(0o777)  # nginx's worker may run as nobody
    main = folder / "nginx.conf"
    main.write_text(
        f"daemon off;\nworker_processes 1;\npid {folder / 'nginx.pid'};\n"
        f"error_log {folder / 'error.log'} warn;\n"
        "events { worker_connections 1024; }\n"
        "http {\n  access_log off;\n"
        + "".join(f"  {kind}_temp_path {temp / kind};\n"
                  for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        + site + "\n}\n"
    )
    return main


@dataclass
class Deployment:
    url: str
    port: int
    instance: Path
    gunicorn_log: Path
    cert: Path


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory,
               files: SampleFiles) -> Iterator[Deployment]:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        pytest.fail("nginx mangler: kjør `make setup-system` (Debian-pakken nginx)")
    folder = tmp_path_factory.mktemp("drift")
    instance = folder / "instance"
    install_key_file(instance, files.keys)  # the key file the test files were encrypted with
    env = {**os.environ, "IPIS_INSTANCE": str(instance), "IPIS_DATABASE_URL": "",
           "IPIS_TRUST_PROXY": "1", "IPIS_SECURE_COOKIES": "1"}
    ipis("account", "add", "--kommunenummer", DEMO[0], "--organisasjonsnummer", DEMO[2],
         "--pin-stdin", stdin=PIN + "\n", env=env)
    upstream, port = free_port(), free_port()
    cert, key = _self_signed(folder)
    config = _nginx_config(folder, port, upstream, cert, key)
    log = folder / "gunicorn.log"
    with log.open("w") as handle:
        web = subprocess.Popen(  # docs/drift.md's command, on a free port
            [str(Path(sys.executable).parent / "gunicorn"), "--bind", f"127.0.0.1:{upstream}",
             "--worker-class", "gthread", "--workers", "2", "--threads", "8", "--timeout",
             "120", "--preload", "--access-logfile", "-", "ipis_server.send.wsgi:app"],
            cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT)
    proxy = subprocess.Popen([nginx, "-c", str(config), "-p", str(folder)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"https://localhost:{port}"
    try:
        wait_for_http(f"http://127.0.0.1:{upstream}/logg-inn", web, timeout=60)
        wait_until(lambda: _answers(url, cert), 30, "nginx")
        yield Deployment(url, port, instance, log, cert)
    finally:
        proxy.terminate()
        web.terminate()
        proxy.wait(15)
        web.wait(30)


def _client(cert: Path) -> requests.Session:
    """Trusts only the test's certificate (REQUESTS_CA_BUNDLE would win over verify=...)."""
    session = requests.Session()
    session.trust_env = False
    session.verify = str(cert)
    return session


def _answers(url: str, cert: Path) -> bool:
    try:
        return _client(cert).get(url + "/logg-inn", timeout=5).status_code == 200
    except requests.RequestException:
        return False


class SlowClient(threading.Thread):
    """A POST /logg-inn whose body trickles in at one byte a second, over TLS."""

    def __init__(self, port: int, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.stop = stop
        self.sent = 0
        self.running = threading.Event()  # set once the thread runs its own code

    def run(self) -> None:
        self.running.set()
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # an attacker's client checks nothing
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=30) as raw, \
                    context.wrap_socket(raw, server_hostname="localhost") as sock:
                sock.sendall(
                    b"POST /logg-inn HTTP/1.1\r\nHost: localhost\r\n"
                    b"Content-Type: application/x-www-form-urlencoded\r\n"
                    b"Content-Length: 1000\r\n\r\n")
                while self.sent < 1000 and not self.stop.is_set():
                    sock.sendall(b"a")
                    self.sent += 1
                    self.stop.wait(1.0)
        except OSError:
            pass  # nginx may drop a client this slow; that is its right


def test_slow_clients_do_not_take_the_service_off_the_air(
    deployment: Deployment, files: SampleFiles
) -> None:
    """32 slow logins hold their connections while a clerk logs in and sends a file through
    the same proxy: the clerk gets the receipt."""
    stop = threading.Event()
    slow = [SlowClient(deployment.port, stop) for _ in range(SLOW_CLIENTS)]
    for client in slow:
        # One at a time: under coverage on Python 3.11 every new thread installs a trace
        # function, and two threads doing so at once make one die at its start ("Cannot install
        # a trace function while another trace function is being installed", a process-wide
        # guard: python/cpython#98257). Once a thread runs its own code, its trace is in place.
        client.start()
        assert client.running.wait(30), "a slow client did not start"
    try:
        wait_until(lambda: all(c.sent >= 2 for c in slow), 60, "every slow client under way")
        session = _client(deployment.cert)
        url = deployment.url
        token = csrf_token(session.get(url + "/logg-inn", timeout=30).text)
        login = session.post(url + "/logg-inn", headers={"Referer": url + "/logg-inn"},
                             timeout=30, data={
                                 "csrf_token": token, "kommunenummer": DEMO[0],
                                 "bydelsnummer": DEMO[1], "organisasjonsnummer": DEMO[2],
                                 "pin": PIN})
        assert login.url.endswith("/send"), error_text(login.text)
        assert all(c.is_alive() for c in slow)  # still holding their connections
        token = csrf_token(session.get(url + "/send", timeout=30).text)
        with files.encrypted.open("rb") as handle:
            sent = session.post(url + "/send", headers={"Referer": url + "/send"}, timeout=60,
                                data={"csrf_token": token},
                                files={"fil": ("f.xml", handle, "text/xml")})
        assert "Sending utført" in sent.text, error_text(sent.text)
        assert "Strict-Transport-Security" in sent.headers  # https seen through the proxy
    finally:
        stop.set()
        for client in slow:
            client.join(30)
    assert PIN not in deployment.gunicorn_log.read_text()
