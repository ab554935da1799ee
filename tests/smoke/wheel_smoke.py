"""Smoke test of a plain install, run by ``make test`` (issue 8, point 1).

The suite runs from an editable install inside the checkout, so it cannot see what a plain
``pip install`` lacks (a runtime dependency declared only for tests, a file looked up under the
repository root). This script builds the wheel, installs it with its pinned dependencies into a
fresh venv in a temporary folder outside the checkout, and walks the operator's path there:
keys, demo data, encrypt, ``ipis serve`` with the three parties (log in, upload, receipt, the
rows in ``ipis register export`` of the serve folder, SIGTERM), ``ipis serve --only-send`` with
``ipis worker``, and the gunicorn commands of docs/drift.md. Nothing of the checkout is on the path.

Usage: python tests/smoke/wheel_smoke.py [--keep]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]
CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
DEMO = {"kommunenummer": "0301", "bydelsnummer": "00", "organisasjonsnummer": "922542570"}
START_TIMEOUT = 90.0
PERSONS = 200


class SmokeFailure(Exception):
    pass


def step(text: str) -> None:
    print(f"[røyktest] {text}", flush=True)


def run(command: list[str], cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SmokeFailure(
            f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_environment(venv: Path, home: Path) -> dict[str, str]:
    """The operator's shell: the new venv first on PATH, nothing of the checkout anywhere."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("IPIS_", "PYTHON", "VIRTUAL_ENV"))
    }
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}/usr/local/bin:/usr/bin:/bin"
    env["HOME"] = str(home)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def build_and_install(work: Path) -> Path:
    wheel_dir = work / "wheel"
    step("bygger hjulet (pip wheel .)")
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheel_dir),
         str(REPO)], cwd=work, env=dict(os.environ))
    [wheel] = wheel_dir.glob("ipis-*.whl")
    venv = work / "venv"
    step(f"installerer {wheel.name} i en ny venv utenfor sjekkouten")
    base_python = getattr(sys, "_base_executable", sys.executable)
    run([base_python, "-m", "venv", str(venv)], cwd=work, env=dict(os.environ))
    run([str(venv / "bin" / "pip"), "install", "-q", "-c", str(REPO / "requirements.lock"),
         str(wheel)], cwd=work, env=dict(os.environ))
    return venv


def check_installed_not_checkout(venv: Path, env: dict[str, str], work: Path) -> None:
    code = (
        "import ipis_core, ipis_server, sys\n"
        "for module in (ipis_core, ipis_server):\n"
        "    assert 'site-packages' in module.__file__, module.__file__\n"
        "print(ipis_core.__file__)\n"
    )
    where = run([str(venv / "bin" / "python"), "-c", code], cwd=work, env=env)
    if str(REPO) in where:
        raise SmokeFailure(f"the installed package comes from the checkout: {where}")


@contextmanager
def process(command: list[str], cwd: Path, env: dict[str, str], log: Path) -> Iterator[
    subprocess.Popen[str]
]:
    with log.open("w", encoding="utf-8") as handle:
        child = subprocess.Popen(command, cwd=cwd, env=env, stdout=handle,
                                 stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        yield child
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGTERM)
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait(5)


def wait_for(url: str, child: subprocess.Popen[str], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise SmokeFailure(f"{url}: the server stopped:\n{log.read_text()}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise SmokeFailure(f"{url} did not answer within {START_TIMEOUT} s:\n{log.read_text()}")


def printed_pin(log: Path) -> str:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        match = re.search(r"PIN-kode:\s+(\d+)", log.read_text())
        if match:
            return match.group(1)
        time.sleep(0.1)
    raise SmokeFailure(f"ipis serve printed no PIN:\n{log.read_text()}")


def wait_for_register_rows(ipis: str, instance: Path, out: Path, home: Path,
                           env: dict[str, str]) -> int:
    """``ipis register export --instance`` of the serve folder until it finds rows."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        written = run([ipis, "register", "export", "--instance", str(instance), "--out",
                       str(out)], cwd=home, env=env)
        match = re.match(r"Skrev (\d+) rader", written)
        if match is None:
            raise SmokeFailure(f"ipis register export: {written}")
        if int(match.group(1)):
            return int(match.group(1))
        time.sleep(1)
    raise SmokeFailure(f"no rows in the register within {START_TIMEOUT} s")


def csrf(html: str) -> str:
    match = CSRF.search(html)
    if not match:
        raise SmokeFailure(f"no CSRF token in:\n{html[:800]}")
    return match.group(1)


def send_file(base: str, pin: str, encrypted: Path) -> requests.Session:
    """Log in and upload until the receipt; returns the logged-in session."""
    http = requests.Session()
    form = http.get(f"{base}/logg-inn", timeout=30).text
    answer = http.post(f"{base}/logg-inn", timeout=60,
                       data={"csrf_token": csrf(form), **DEMO, "pin": pin})
    if "/send" not in answer.url:
        raise SmokeFailure(f"login failed: {answer.status_code}\n{answer.text[:800]}")
    with encrypted.open("rb") as body:
        receipt = http.post(f"{base}/send", timeout=120,
                            data={"csrf_token": csrf(answer.text)},
                            files={"fil": (encrypted.name, body, "application/xml")})
    if receipt.status_code != 200 or "Sending utført" not in receipt.text:
        raise SmokeFailure(f"no receipt: {receipt.status_code}\n{receipt.text[:1500]}")
    return http


def smoke(work: Path) -> None:
    venv = build_and_install(work)
    home = work / "home"
    home.mkdir()
    env = clean_environment(venv, home)
    check_installed_not_checkout(venv, env, work)
    ipis = str(venv / "bin" / "ipis")
    instance = work / "instans"

    step("ipis serve: sendemodulen, TPF og registeret (demokonto, demobruker, demonøkler)")
    ports = {"--port": free_port(), "--tpf-port": free_port(), "--register-port": free_port()}
    base = f"http://127.0.0.1:{ports['--port']}"
    serve_log = work / "serve.log"
    serve = [ipis, "serve", "--host", "127.0.0.1", "--instance", str(instance),
             *(str(part) for option, port in ports.items() for part in (option, port))]
    with process(serve, home, env, serve_log) as server:
        wait_for(f"{base}/logg-inn", server, serve_log)
        wait_for(f"http://127.0.0.1:{ports['--register-port']}/logg-inn", server, serve_log)
        pin = printed_pin(serve_log)

        step("henter nøkkelfilen og krypteringssiden fra nedlastingssiden")
        key_file = home / "nokkelfil.xml"
        key_file.write_bytes(requests.get(f"{base}/last-ned/nokkelfil.xml", timeout=30).content)
        page = requests.get(f"{base}/last-ned/ipis-krypt.html", timeout=60)
        built = REPO / "dist" / "ipis-krypt.html"
        if built.is_file():  # `make page` ran before the wheel was built: the wheel carries it
            if page.status_code != 200 or page.content != built.read_bytes():
                raise SmokeFailure(f"the packaged page is not served: {page.status_code}")

        step("ipis demo-data, ipis encrypt, ipis inspect")
        run([ipis, "keys", "show", str(key_file)], cwd=home, env=env)
        run([ipis, "demo-data", "--persons", str(PERSONS), "--out", "iplos.xml"], cwd=home,
            env=env)
        run([ipis, "encrypt", "--data", "iplos.xml", "--out", "iplos-kryptert.xml", "--keys",
             str(key_file), "--email", "kari.nordmann@kommune.no", "--name", "Kari Nordmann",
             "--mobile", "912 34 567"], cwd=home, env=env)
        run([ipis, "inspect", "iplos-kryptert.xml"], cwd=home, env=env)

        step("logger inn og sender filen; TPF og registeret tar den videre")
        http = send_file(base, pin, home / "iplos-kryptert.xml")
        rows = wait_for_register_rows(ipis, instance, work / "kjede.csv", home, env)
        if rows != PERSONS:
            raise SmokeFailure(f"the register exported {rows} rows, not {PERSONS}")
        loaded = f"Lastet i registeret: {PERSONS} personer"
        deadline = time.monotonic() + START_TIMEOUT  # the send module asks the TPF every 2 s
        while loaded not in (history := http.get(f"{base}/innsendinger", timeout=30)).text:
            if time.monotonic() > deadline:
                raise SmokeFailure(f"not shown as loaded:\n{history.text[:1500]}")
            time.sleep(0.5)

        step("SIGTERM stopper alle tre")
        server.send_signal(signal.SIGTERM)
        if server.wait(60) != 0:
            raise SmokeFailure(f"ipis serve ended with {server.returncode}:\n"
                               f"{serve_log.read_text()}")

    step("ipis serve --only-send (uten videresendingstråd), ipis worker --once")
    alone = work / "bare-sendemodul"
    (alone / "nokler").mkdir(parents=True)
    shutil.copyfile(key_file, alone / "nokler" / "nokkelfil.xml")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    alone_log = work / "serve-alene.log"
    serve = [ipis, "serve", "--only-send", "--host", "127.0.0.1", "--port", str(port),
             "--instance", str(alone), "--no-worker"]
    with process(serve, home, env, alone_log) as server:
        wait_for(f"{base}/logg-inn", server, alone_log)
        http = send_file(base, printed_pin(alone_log), home / "iplos-kryptert.xml")

        step("ipis worker --once videresender")
        delivered = run([ipis, "worker", "--once", "--instance", str(alone)], cwd=home,
                        env=env)
        if "Behandlet 1 " not in delivered:
            raise SmokeFailure(f"the worker delivered nothing: {delivered}")
        history = http.get(f"{base}/innsendinger", timeout=30)
        if "videresendt" not in history.text:
            raise SmokeFailure(f"not shown as forwarded:\n{history.text[:1500]}")
        inbox = list((alone / "tpf-innboks").glob("*.xml"))
        if len(inbox) != 1:
            raise SmokeFailure(f"expected one delivered file, found {inbox}")

    step("gunicorn-kommandoen fra docs/drift.md")
    port = free_port()
    gunicorn_log = work / "gunicorn.log"
    gunicorn = [str(venv / "bin" / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--worker-class",
                "gthread", "--workers", "2", "--threads", "8", "--timeout", "120", "--preload",
                "ipis_server.send.wsgi:app"]
    with process(gunicorn, home, {**env, "IPIS_INSTANCE": str(alone)}, gunicorn_log) as web:
        wait_for(f"http://127.0.0.1:{port}/logg-inn", web, gunicorn_log)
    register_smoke(work, venv, home, env)
    step("alt i orden")


def register_smoke(work: Path, venv: Path, home: Path, env: dict[str, str]) -> None:
    """The register from the wheel: keys, a staff user, gunicorn (docs/drift.md), the login and
    the overview (its templates, style sheet and Klass data are package data), the export."""
    ipis = str(venv / "bin" / "ipis")
    register = work / "register"
    step("registeret: nøkler, bruker, gunicorn, innlogging, oversikt, eksport")
    run([ipis, "keys", "generate", "--out-dir", str(work / "nye-nokler"), "--valid-from",
         time.strftime("%Y-%m-%d"), "--bits", "2048"], cwd=home, env=env)
    run([ipis, "keys", "install", "--party", "register", "--instance", str(register), "--from",
         str(work / "nye-nokler")], cwd=home, env=env)
    password = "et langt passord for røyktesten"
    added = subprocess.run(
        [ipis, "register", "user", "add", "--brukernavn", "kari", "--navn", "Kari",
         "--passord-stdin", "--instance", str(register)],
        cwd=home, env=env, input=password + "\n", capture_output=True, text=True,
    )
    if added.returncode != 0:
        raise SmokeFailure(f"ipis register user add: {added.stderr}")
    port = free_port()
    log = work / "register-gunicorn.log"
    command = [str(venv / "bin" / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--worker-class",
               "gthread", "--workers", "2", "--threads", "4", "--timeout", "120", "--preload",
               "ipis_server.register.wsgi:app"]
    base = f"http://127.0.0.1:{port}"
    with process(command, home, {**env, "IPIS_REGISTER_INSTANCE": str(register)}, log) as web:
        wait_for(f"{base}/logg-inn", web, log)
        http = requests.Session()
        form = http.get(f"{base}/logg-inn", timeout=30).text
        answer = http.post(f"{base}/logg-inn", timeout=60, data={
            "csrf_token": csrf(form), "brukernavn": "kari", "passord": password})
        if not answer.url.endswith("/oversikt") or "Oslo - Oslove" not in answer.text:
            raise SmokeFailure(f"the overview: {answer.status_code}\n{answer.text[:1500]}")
        css = http.get(f"{base}/static/register.css", timeout=30)
        if css.status_code != 200:
            raise SmokeFailure(f"the register's style sheet: {css.status_code}")
    exported = run([ipis, "register", "export", "--instance", str(register), "--out",
                    str(work / "eksport.csv")], cwd=home, env=env)
    if not exported.startswith("Skrev 0 rader"):
        raise SmokeFailure(f"ipis register export: {exported}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="ipis-hjul-"))
    try:
        smoke(work)
    except SmokeFailure as failure:
        print(f"[røyktest] FEIL: {failure}", file=sys.stderr)
        print(f"[røyktest] mappen er beholdt: {work}", file=sys.stderr)
        return 1
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
