"""The staff's pages in Debian's Chromium (Playwright) against a real ``ipis register serve``:
the login by its labels, the overview, and axe-core finding no WCAG 2.1 AA violation."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from register_testlib import (
    RunningRegister,
    demo_input,
    make_keys,
    message,
    new_id,
    start_register,
    with_options,
)
from server_testlib import REPO, ipis

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("register-browser")]
pytest.importorskip("playwright.sync_api")

AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"
PASSWORD = "et langt passord for nettleseren"


@pytest.fixture(scope="module")
def register(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegister]:
    """A register with one loaded and one refused submission, and one staff user."""
    root = tmp_path_factory.mktemp("register-nettleser")
    keys = make_keys(root / "nokler", dt.date.today())
    running = start_register(root / "register", keys)
    # Encrypted by the command (Playwright's event loop runs in this process).
    (root / "iplos.xml").write_bytes(demo_input(25, seed=4))
    ipis("encrypt", "--data", str(root / "iplos.xml"), "--out", str(root / "kryptert.xml"),
         "--keys", str(keys.folder / "nokkelfil.xml"), "--email", "iplos@kommune.no",
         "--name", "Kari Nordmann", "--mobile", "91234567", env=running.env)
    encrypted = (root / "kryptert.xml").read_bytes()
    for name, options in (("god.xml", None), ("feil.xml", with_options(count=2))):
        path: Path = root / name
        path.write_bytes(message(encrypted, keys, new_id(), options))
        ipis("register", "load", str(path), "--instance", str(running.instance),
             env=running.env, check=False)
    ipis("register", "user", "add", "--brukernavn", "kari", "--navn", "Kari Statistiker",
         "--passord-stdin", "--instance", str(running.instance), stdin=PASSWORD + "\n",
         env=running.env)
    yield running
    running.stop()


def _log_in(page: Any, url: str, password: str = PASSWORD) -> None:
    page.goto(url + "/logg-inn")
    page.get_by_label("Brukernavn").fill("kari")
    page.get_by_label("Passord").fill(password)
    page.get_by_role("button", name="Logg inn").click()


def _axe(page: Any) -> list[dict[str, Any]]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "async () => await axe.run(document, {runOnly: {type: 'tag', values: "
        "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})"
    )
    return list(result["violations"])


def test_the_overview_in_a_browser(browser: Any, register: RunningRegister) -> None:
    context = browser.new_context(locale="nb-NO")  # the page's own CSP in force
    page = context.new_page()
    refused: list[str] = []  # the browser's own reports of what the page's CSP blocked
    page.on("console", lambda m: refused.append(m.text) if "Refused to" in m.text else None)
    _log_in(page, register.url, "feil passord")
    assert "Innloggingen mislyktes" in page.get_by_role("alert").text_content()
    _log_in(page, register.url)
    page.get_by_role("heading", name="Leveranser for").first.wait_for(timeout=30000)
    page.get_by_label("År", exact=True).select_option("2025")
    page.get_by_role("button", name="Vis").click()
    page.get_by_role("heading", name="Leveranser for 2025").wait_for(timeout=30000)
    table = page.get_by_role("table", name="Leveranser for 2025 per kommune og bydel")
    oslo = table.get_by_role("row").filter(has_text="Oslo - Oslove").first
    assert "Levert" in oslo.text_content() and "25" in oslo.text_content()
    assert page.get_by_role("img", name="Personer i gjeldende innsendinger per år").is_visible()
    assert refused == []
    context.close()


def test_axe_finds_no_wcag_21_aa_violation(browser: Any, register: RunningRegister) -> None:
    context = browser.new_context(bypass_csp=True)  # to inject axe-core
    page = context.new_page()
    pages: dict[str, list[dict[str, Any]]] = {}
    page.goto(register.url + "/logg-inn")
    pages["innlogging"] = _axe(page)
    _log_in(page, register.url, "feil passord")
    pages["innlogging-feil"] = _axe(page)
    _log_in(page, register.url)
    page.goto(register.url + "/oversikt?aar=2025")
    pages["oversikt"] = _axe(page)
    page.goto(register.url + "/oversikt?aar=2024")
    pages["oversikt-tom"] = _axe(page)
    context.close()
    found = {name: [v["id"] for v in found] for name, found in pages.items() if found}
    assert not found, json.dumps(found)
