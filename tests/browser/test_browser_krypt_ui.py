"""IPLOS Krypt's form: keyboard only, labels, announced errors, axe-core (WCAG 2.1 AA), the
contact person remembered with consent, saving through the File System Access API; and the
screenshots of docs/brukerveiledning.md (docs/img/)."""

from __future__ import annotations

import pathlib
import time
from collections.abc import Iterator

import pytest
from krypt_testlib import (
    CONTACT,
    PAGE,
    SAVE_DIALOG,
    Keys,
    Krypt,
    axe_violations,
    chosen_file,
    decrypt,
    open_krypt,
    screenshot,
)
from playwright.sync_api import Browser, Page

from ipis_core.demo_data import document_bytes

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("page")]

VIEWPORT = {"width": 860, "height": 1100}


def focus_order(page: Page, presses: int) -> list[str]:
    page.focus("#data")
    order = ["data"]
    for _ in range(presses):
        page.keyboard.press("Tab")
        order.append(page.evaluate("() => document.activeElement && document.activeElement.id"))
    return order


@pytest.fixture(scope="module")
def ui(browser: Browser, page_url: str) -> Iterator[Krypt]:
    opened = open_krypt(browser, page_url, viewport=VIEWPORT)
    yield opened
    assert opened.network.outside == []
    opened.close()


def test_every_field_has_its_label(ui: Krypt) -> None:
    page = ui.page
    for label, kind in (
        ("IPLOS-datafil", "file"),
        ("Kryptert IPLOS-fil", "text"),
        ("Fil med krypteringsnøkler", "file"),
        ("E-postadresse", "email"),
        ("Navn", "text"),
        ("Mobiltelefonnummer", "tel"),
    ):
        assert page.get_by_label(label, exact=True).get_attribute("type") == kind
    assert page.get_by_role("button", name="Utfør kryptering").is_enabled()
    version = page.text_content("#version")
    assert version and version[0].isdigit()
    assert page.get_by_label("Husk kontaktpersonen i denne nettleseren").get_attribute(
        "type"
    ) == "checkbox"


def test_axe_finds_no_wcag_violations_and_keyboard_alone_works(
    ui: Krypt, tmp_path: pathlib.Path, keys: Keys, key_files: dict[str, pathlib.Path]
) -> None:
    page = ui.page
    page.evaluate("() => localStorage.clear()")
    ui.fill(contact={})
    screenshot(page, "01-skjema.png")
    assert axe_violations(page) == []

    # Tab order follows the seed's form; the file pickers are reachable by keyboard.
    order = focus_order(page, 8)
    assert order == [
        "data", "out", "out-browse", "keys", "email", "name", "mobile", "remember", "run"
    ]

    # Enter on the button with nothing filled in: the first seed message, announced.
    page.focus("#run")
    page.keyboard.press("Enter")
    deadline = time.monotonic() + 10
    while ui.error("data") is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ui.error("data") == "IPLOS datafil mangler"
    assert page.text_content("#announce") == "Feil: IPLOS datafil mangler"
    # The form was refused before anything was read: nothing was "stopped".
    assert "ikke startet" in (page.text_content("#status") or "")
    assert "stoppet" not in (page.text_content("#status") or "")
    assert page.get_attribute("#announce", "aria-live") == "assertive"
    assert page.evaluate("() => document.activeElement.id") == "data"
    assert "data-error" in (page.get_attribute("#data", "aria-describedby") or "")
    screenshot(page, "04-feilmelding.png")
    assert axe_violations(page) == []

    # Typing by keyboard only; the files are set as the file dialog would.
    source = tmp_path / "iplos-0301.xml"
    source.write_bytes(document_bytes(180, seed=31))
    page.set_input_files("#data", str(source))
    page.focus("#out")
    page.keyboard.type("iplos-0301-kryptert.xml")
    page.set_input_files("#keys", str(key_files["valid"]))
    deadline = time.monotonic() + 10
    while "TPF-nøkkel" not in (page.text_content("#keys-info") or ""):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    for name in ("email", "name", "mobile"):
        page.focus(f"#{name}")
        page.keyboard.type(CONTACT[name])
    screenshot(page, "02-utfylt.png")
    with page.expect_download() as download_info:
        page.keyboard.press("Enter")  # submits the form from the mobile field
        ui.wait_state("running", "ready")
        ui.wait_state("ready")
    download_info.value.save_as(tmp_path / "ut.xml")
    assert len(decrypt((tmp_path / "ut.xml").read_bytes(), keys).records) == 180
    assert page.evaluate("() => document.activeElement.id") == "result"
    assert page.text_content("#r-persons") == "180"
    assert "Filen er kryptert: 180 personer" in (page.text_content("#announce") or "")
    # The stale fault of 04 is gone since the data file was chosen (issue 10, point 3).
    assert ui.visible_errors() == {}
    screenshot(page, "03-resultat.png")
    assert axe_violations(page) == []


def test_contact_person_is_remembered(
    ui: Krypt, tmp_path: pathlib.Path, key_files: dict[str, pathlib.Path]
) -> None:
    """With «Husk» ticked, after a run, a reloaded page has the contact person filled in."""
    page = ui.page
    source = tmp_path / "iplos.xml"
    source.write_bytes(document_bytes(3, seed=35))
    contact = {"email": "kari@kommune.no", "name": "Kari Ås", "mobile": "+47 412 34 567"}
    ui.fill(data=source, out="husk.xml", keys=key_files["valid"], contact=contact)
    page.check("#remember")
    with page.expect_download():
        assert ui.run() == "done"
    page.reload()
    ui.wait_state("ready")
    for name in ("email", "name", "mobile"):
        assert page.input_value(f"#{name}") == contact[name]
    assert page.is_checked("#remember")
    page.get_by_role("button", name="Glem kontaktpersonen").click()  # leave nothing stored
    assert page.evaluate("() => localStorage.length") == 0


def test_progress_is_shown_while_running(
    ui: Krypt, tmp_path: pathlib.Path, key_files: dict[str, pathlib.Path]
) -> None:
    page = ui.page
    source = tmp_path / "stor.xml"
    source.write_bytes(document_bytes(40_000, seed=32))
    ui.fill(data=source, out="stor-kryptert.xml", keys=key_files["valid"])
    page.get_by_role("button", name="Utfør kryptering").click()
    ui.wait_state("running")
    text = page.locator("#progress-text")
    deadline = time.monotonic() + 30
    while (text.text_content() or "0,0").startswith(("0,0", "Starter")):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert "MB lest" in (text.text_content() or "") and "personer" in (text.text_content() or "")
    assert page.get_by_role("button", name="Avbryt").is_visible()
    screenshot(page, "05-fremdrift.png")
    page.get_by_role("button", name="Avbryt").click()
    ui.wait_state("ready")
    assert page.get_attribute("html", "data-outcome") == "cancelled"


def test_save_dialog_of_the_file_system_access_api(
    browser: Browser, page_url: str, tmp_path: pathlib.Path, keys: Keys,
    key_files: dict[str, pathlib.Path],
) -> None:
    """«Søk…» opens the save dialog (stubbed: a test cannot click a native dialog)."""
    krypt = open_krypt(browser, page_url, bypass_csp=False)
    try:
        krypt.page.add_init_script(SAVE_DIALOG)
        krypt.page.reload()
        krypt.wait_state("ready")
        source = tmp_path / "iplos.xml"
        source.write_bytes(document_bytes(25, seed=33, encoding="UTF-16LE"))
        krypt.fill(data=source, out="", keys=key_files["valid"])
        krypt.page.get_by_role("button", name="Søk…").click()
        deadline = time.monotonic() + 5
        while krypt.page.input_value("#out") != "valgt-av-bruker.xml":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert krypt.run() == "done"
        assert krypt.downloads == []
        saved = krypt.page.evaluate("(name) => window.__saved(name)", "valgt-av-bruker.xml")
        assert len(decrypt(bytes(saved), keys).records) == 25
        assert "valgt-av-bruker.xml" in (krypt.page.text_content("#r-file") or "")
        assert chosen_file(krypt.page, "valgt-av-bruker.xml")["closed"]
        assert krypt.network.outside == []
    finally:
        krypt.close()


def test_the_same_file_works_served_over_http(
    browser: Browser, tmp_path: pathlib.Path, keys: Keys, key_files: dict[str, pathlib.Path]
) -> None:
    """As the send module serves it: the same bytes over HTTP, and still no other request."""
    import functools
    import http.server
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *_: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(PAGE.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/{PAGE.name}"
    krypt = open_krypt(browser, url, served=True)
    try:
        source = tmp_path / "iplos.xml"
        source.write_bytes(document_bytes(12, seed=34))
        krypt.fill(data=source, out="http.xml", keys=key_files["valid"])
        with krypt.page.expect_download() as download_info:
            assert krypt.run() == "done"
        download_info.value.save_as(tmp_path / "http.xml")
        assert len(decrypt((tmp_path / "http.xml").read_bytes(), keys).records) == 12
        assert krypt.network.outside == []
    finally:
        krypt.close()
        server.shutdown()
        server.server_close()
