"""When IPLOS Krypt cannot run, it says so (issue 10, point 6): without JavaScript, in a browser
without what the page needs (Internet Explorer, Edge in IE mode), and when the start never
finishes; leaving during a run asks first. And the page does not vouch for itself (point 2)."""

from __future__ import annotations

import pathlib
import re
from collections.abc import Iterator
from typing import Any

import pytest
from krypt_testlib import (
    HOLD_CLOSE,
    RELEASE_CLOSE,
    SAVE_DIALOG,
    Krypt,
    axe_violations,
    chosen_file,
    open_krypt,
    wait_until,
)
from playwright.sync_api import Browser, BrowserContext, Page

from ipis_core.demo_data import document_bytes

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("page")]

BROWSERS = (
    "IPLOS Krypt virker i en oppdatert Microsoft Edge eller Google Chrome, ikke i Internet "
    "Explorer og ikke i Edge i Internet Explorer-modus."
)


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    opened = browser.new_context()
    yield opened
    opened.close()


def status(page: Page) -> str:
    return page.text_content("#status") or ""


def test_the_page_does_not_vouch_for_itself(browser: Browser, page_url: str) -> None:
    """A fingerprint computed into the page proves nothing (a changed copy shows the same);
    the footer points to the check that can fail."""
    krypt = open_krypt(browser, page_url)
    try:
        footer = krypt.page.text_content("footer") or ""
        assert krypt.page.locator("#fingerprint").count() == 0
        assert not re.search(r"([0-9a-f]{4} ){15}[0-9a-f]{4}|[0-9a-f]{64}", footer)
        assert "sammenlign SHA-256 av hele filen med verdien på nedlastingssiden" in footer
    finally:
        krypt.close()


def test_without_javascript_the_page_says_what_to_do(browser: Browser, page_url: str) -> None:
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(page_url)
        notice = page.locator("#noscript")
        assert notice.is_visible()
        text = notice.text_content() or ""
        assert text.startswith("IPLOS Krypt trenger JavaScript, og det er slått av")
        assert "Microsoft Edge eller Google Chrome" in text
        assert "ikke i Edge i Internet Explorer-modus" in text
        assert page.locator("#status").is_hidden()  # no «Starter krypteringsmodulen …»
        assert page.locator("#form").is_hidden()
    finally:
        context.close()


def test_a_browser_without_what_the_page_needs_is_told_at_once(
    context: BrowserContext, page_url: str
) -> None:
    """As Internet Explorer (also Edge in IE mode), which runs no module script: the page's own
    code would never run. Simulated by taking away what such a browser lacks."""
    page = context.new_page()
    page.add_init_script("delete HTMLScriptElement.prototype.noModule;")
    page.goto(page_url)
    assert page.get_attribute("html", "data-state") == "unsupported"
    assert status(page) == (
        f"Denne nettleseren kan ikke kjøre IPLOS Krypt. {BROWSERS} Åpne filen på nytt i en av dem."
    )
    assert axe_violations(page) == []


def test_a_page_served_without_https_says_how_to_open_it(
    context: BrowserContext, page_url: str
) -> None:
    """Over plain http from another host the browser gives the page no WebCrypto."""
    from krypt_testlib import PAGE

    page = context.new_page()
    page.route(
        "http://ipis-krypt.test/**",
        lambda route: route.fulfill(body=PAGE.read_bytes(), content_type="text/html"),
    )
    page.goto("http://ipis-krypt.test/ipis-krypt.html")
    assert page.get_attribute("html", "data-state") == "unsupported"
    assert status(page) == (
        "IPLOS Krypt må åpnes fra disken (dobbeltklikk filen ipis-krypt.html) eller over https. "
        "Lagre filen og åpne den derfra."
    )


def test_a_start_that_never_finishes_is_told(context: BrowserContext, page_url: str) -> None:
    """A worker that never answers (as a policy that blocks it might): after the start-up
    timeout (shortened for the test) the user is told which browsers work."""
    page = context.new_page()
    page.add_init_script(
        """window.ipisStartTimeoutMs = 1000;
           window.Worker = function () { return { postMessage() {}, terminate() {} }; };"""
    )
    page.goto(page_url)
    wait_until(lambda: page.get_attribute("html", "data-state") == "stalled", "the timeout")
    assert status(page) == (
        f"IPLOS Krypt har ikke startet etter 1 sekund. {BROWSERS} Lukk fanen og åpne filen på "
        "nytt; kontakt IT hvis det gjentar seg."
    )
    assert axe_violations(page) == []


def test_leaving_during_a_run_asks_first(
    browser: Browser, page_url: str, tmp_path: pathlib.Path, key_files: dict[str, pathlib.Path]
) -> None:
    """Held deterministically in the run: the chosen file's close() waits for the test."""
    krypt = open_krypt(browser, page_url)
    page = krypt.page
    page.add_init_script(SAVE_DIALOG)
    page.reload()
    krypt.wait_state("ready")
    dialogs: list[Any] = []

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.type)
        dialog.dismiss()  # stay on the page

    page.on("dialog", on_dialog)
    try:
        source = tmp_path / "iplos.xml"
        source.write_bytes(document_bytes(50, seed=60))
        krypt.fill(data=source, out="", keys=key_files["valid"])
        page.get_by_role("button", name="Søk…").click()
        wait_until(lambda: page.input_value("#out") == "valgt-av-bruker.xml", "the chosen name")
        page.evaluate(HOLD_CLOSE)
        page.get_by_role("button", name="Utfør kryptering").click()
        wait_until(
            lambda: (chosen_file(page, "valgt-av-bruker.xml") or {}).get("closing"), "the close"
        )
        page.close(run_before_unload=True)
        wait_until(lambda: dialogs, "the question before leaving", pump=krypt.context.cookies)
        assert dialogs == ["beforeunload"]
        assert not page.is_closed()
        page.evaluate(RELEASE_CLOSE)
        krypt.wait_state("ready")
        assert page.get_attribute("html", "data-outcome") == "done"
    finally:
        krypt.close()


def test_no_question_when_nothing_runs(browser: Browser, page_url: str) -> None:
    krypt: Krypt = open_krypt(browser, page_url)
    dialogs: list[str] = []
    krypt.page.on("dialog", lambda dialog: (dialogs.append(dialog.type), dialog.dismiss()))
    krypt.page.click("#email")  # a user gesture: the browser would ask if the page wanted it
    krypt.page.close(run_before_unload=True)
    wait_until(krypt.page.is_closed, "the page to close", pump=krypt.context.cookies)
    assert dialogs == []
    krypt.context.close()
