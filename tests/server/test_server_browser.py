"""Browser tests: Debian's Chromium through Playwright against a real ``ipis serve``.

Set IPIS_SKJERMBILDER=1 to refresh the user guide's screenshots (docs/img/sendemodul-*.png).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from server_testlib import DEMO, LOCKME, OTHER, REPO, RunningServer, SampleFiles, ipis, start_server

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("server-browser")]

playwright_sync = pytest.importorskip("playwright.sync_api")

AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"
SHOTS = REPO / "docs" / "img"
FORMAT = "Ugyldig format på kryptert melding. Kjøringen avsluttes"
LOCK_PIN = "13572468"
OTHER_PIN = "86427531"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory,
           files: SampleFiles) -> Iterator[RunningServer]:
    env = {"IPIS_DATABASE_URL": "", "IPIS_THROTTLE_FAILURES": "1000"}
    running = start_server(tmp_path_factory.mktemp("browser") / "instance", env, keys=files.keys)
    instance = ["--instance", str(running.instance)]
    for numbers, pin in ((LOCKME, LOCK_PIN), (OTHER, OTHER_PIN)):
        ipis("account", "add", "--kommunenummer", numbers[0], "--organisasjonsnummer",
             numbers[2], "--pin-stdin", *instance, stdin=pin + "\n", env=env)
    yield running
    running.stop()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(locale="nb-NO", bypass_csp=False)
    yield context.new_page()
    context.close()


def shot(page: Any, name: str) -> None:
    if os.environ.get("IPIS_SKJERMBILDER") == "1":
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"sendemodul-{name}.png"), full_page=True)


def log_in(page: Any, url: str, numbers: tuple[str, str, str], pin: str) -> None:
    page.goto(url + "/logg-inn")
    page.get_by_label("Kommunenummer").fill(numbers[0])
    page.get_by_label("Bydelsnummer").fill(numbers[1])
    page.get_by_label("Organisasjonsnummer").fill(numbers[2])
    page.get_by_label("PIN-kode").fill(pin)
    page.get_by_role("button", name="Logg inn").click()


def send(page: Any, name: str, data: bytes) -> None:
    page.get_by_label("Kryptert IPLOS-fil").set_input_files(
        {"name": name, "mimeType": "text/xml", "buffer": data}
    )
    page.get_by_role("button", name="Send kryptert IPLOS-fil").click()


def error_shown(page: Any) -> str:
    alert = page.locator("#feil")
    alert.wait_for(state="visible")
    return str(alert.inner_text()).strip()


def test_login_upload_and_receipt(page: Any, server: RunningServer, files: SampleFiles) -> None:
    page.goto(server.url + "/logg-inn")
    page.get_by_label("Kommunenummer").fill(DEMO[0])
    page.get_by_label("Organisasjonsnummer").fill(DEMO[2])
    page.get_by_label("PIN-kode").fill(server.pin)
    assert page.get_by_label("Bydelsnummer").input_value() == "00"
    shot(page, "innlogging")
    page.get_by_role("button", name="Logg inn").click()
    page.get_by_role("heading", name="Send kryptert IPLOS-fil").wait_for()
    page.get_by_label("Kryptert IPLOS-fil").set_input_files(str(files.encrypted))
    shot(page, "sending")
    held: list[Any] = []  # hold the POST so the "while sending" state can be seen
    page.route("**/send", lambda route: held.append(route)
               if route.request.method == "POST" else route.continue_())
    page.get_by_role("button", name="Send kryptert IPLOS-fil").click()
    page.get_by_text(
        "Sendingen er startet og kan ta noen minutter. Kvittering kommer når sendingen er utført"
    ).wait_for()
    assert page.locator("#fremdrift-linje").is_visible()
    assert page.get_by_role("button", name="Send kryptert IPLOS-fil").is_disabled()
    shot(page, "sender")
    page.wait_for_function("() => true")
    assert len(held) == 1
    held[0].continue_()
    page.get_by_role("heading", name="Sending utført").wait_for(timeout=30000)
    assert page.locator("#sha256").inner_text() == files.sha256
    assert "iplos-kryptert.xml" in page.content()
    shot(page, "kvittering")
    page.get_by_role("link", name="Innsendinger", exact=True).click()
    page.get_by_role("heading", name="Innsendinger").wait_for()
    shot(page, "innsendinger")


def test_upload_without_javascript(browser: Any, server: RunningServer,
                                   files: SampleFiles) -> None:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    log_in(page, server.url, DEMO, server.pin)
    send(page, "uten-js.xml", files.encrypted.read_bytes() + b"\n")  # not identical
    page.get_by_role("heading", name="Sending utført").wait_for(timeout=30000)
    context.close()


def test_wrong_pin(page: Any, server: RunningServer) -> None:
    log_in(page, server.url, DEMO, "00000000")
    assert "Innloggingen mislyktes" in error_shown(page)
    shot(page, "feil-pin")


def test_lockout(page: Any, server: RunningServer) -> None:
    for _ in range(5):
        log_in(page, server.url, LOCKME, "99999999")
        assert "Innloggingen mislyktes" in error_shown(page)
    log_in(page, server.url, LOCKME, LOCK_PIN)
    assert "Innloggingen mislyktes" in error_shown(page)
    assert "/logg-inn" in page.url


@pytest.mark.parametrize(
    ("name", "edit", "message"),
    [
        ("avkortet.xml", lambda d: d[: len(d) // 2], "Feil ved sending av fil; Ikke gyldig XML."),
        ("ukjent.xml", lambda d: d.replace(b"</Meldingstype>", b"</Meldingstype><Ekstra/>", 1),
         "Valideringsfeil. Ukjent tag navn: Ekstra"),
        ("format.xml", lambda d: d.replace(b"<Meldingstype>", b"<Meldingstype>X", 1)
         .replace(b'versjon="1"', b'versjon="7"', 1), FORMAT),
    ],
    ids=["not-xml", "unknown-tag", "format"],
)
def test_each_fault(page: Any, server: RunningServer, files: SampleFiles, name: str, edit: Any,
                    message: str) -> None:
    log_in(page, server.url, DEMO, server.pin)
    send(page, name, edit(files.encrypted.read_bytes()))
    assert error_shown(page) == message
    if name == "ukjent.xml":
        shot(page, "feilmelding")


def test_kommunenummer_mismatch(page: Any, server: RunningServer, files: SampleFiles) -> None:
    log_in(page, server.url, OTHER, OTHER_PIN)
    send(page, "feil-kommune.xml", files.encrypted.read_bytes())
    text = error_shown(page)
    assert "0301" in text and "1103" in text and "krypter filen på nytt" in text
    shot(page, "feil-kommune")


def test_cleartext_refused_and_absent(page: Any, server: RunningServer,
                                      files: SampleFiles) -> None:
    log_in(page, server.url, DEMO, server.pin)
    send(page, "iplos.xml", files.cleartext.read_bytes())
    assert error_shown(page) == FORMAT
    for path in server.instance.rglob("*"):
        if path.is_file():
            assert files.fodselsnummer.encode() not in path.read_bytes(), path
    assert files.fodselsnummer not in server.log_text()


def test_csrf_token_missing(page: Any, server: RunningServer, files: SampleFiles) -> None:
    log_in(page, server.url, DEMO, server.pin)
    page.evaluate("document.querySelector('#sendeskjema input[name=csrf_token]').remove()")
    send(page, "uten-token.xml", files.encrypted.read_bytes())
    assert "Skjemaet er utløpt" in error_shown(page)


def _axe(page: Any) -> list[dict[str, Any]]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "async () => await axe.run(document, {runOnly: {type: 'tag', values: "
        "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})"
    )
    return list(result["violations"])


def test_axe_finds_no_wcag_21_aa_violation(browser: Any, server: RunningServer,
                                           files: SampleFiles) -> None:
    context = browser.new_context(bypass_csp=True)  # to inject axe-core
    page = context.new_page()
    pages: dict[str, list[dict[str, Any]]] = {}
    page.goto(server.url + "/logg-inn")
    pages["innlogging"] = _axe(page)
    log_in(page, server.url, DEMO, "feil")
    error_shown(page)
    pages["innlogging-feil"] = _axe(page)
    log_in(page, server.url, DEMO, server.pin)
    pages["sending"] = _axe(page)
    send(page, "axe.xml", files.encrypted.read_bytes() + b"\n\n")
    page.get_by_role("heading", name="Sending utført").wait_for(timeout=30000)
    pages["kvittering"] = _axe(page)
    page.goto(server.url + "/innsendinger")
    pages["innsendinger"] = _axe(page)
    page.goto(server.url + "/last-ned")
    pages["last-ned"] = _axe(page)
    context.close()
    found = {name: [v["id"] for v in found] for name, found in pages.items() if found}
    assert not found, json.dumps(found)

