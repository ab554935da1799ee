"""What IPLOS Krypt's screen shows (issue 10): nothing stale (point 3), the keyboard and a
320 px wide window (point 5), messages that name the real problem (point 7), and the contact
person remembered only with consent (point 8). axe-core is run in the states shown."""

from __future__ import annotations

import io
import pathlib
import zipfile

import pytest
from krypt_testlib import (
    CONTACT,
    Krypt,
    axe_violations,
    drop_files,
    open_krypt,
    wait_until,
)
from playwright.sync_api import Browser

from ipis_core.demo_data import document_bytes

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("page")]

READY = "Klar. Fyll ut skjemaet og velg «Utfør kryptering»."
NOT_XML = "Filen er ikke en IPLOS XML-fil. Velg IPLOS-filen som fagsystemet eksporterte."
KEY_FILE_DAMAGED = "Nøkkelfilen er skadet eller ufullstendig. Hent nøkkelfilen på nytt fra SSB."
NO_PERSONS = (
    "IPLOS filen inneholder ingen personer. Filen er kryptert likevel; kontroller uttrekket i "
    "fagsystemet før du sender den."
)


@pytest.fixture
def small(tmp_path: pathlib.Path) -> pathlib.Path:
    source = tmp_path / "iplos-0301.xml"
    source.write_bytes(document_bytes(3, seed=50))
    return source


def status(krypt: Krypt) -> str:
    return krypt.page.text_content("#status") or ""


def run_to_result(krypt: Krypt, source: pathlib.Path, keys: pathlib.Path) -> None:
    krypt.fill(data=source, out="kryptert.xml", keys=keys)
    with krypt.page.expect_download():
        assert krypt.run() == "done"
    assert krypt.page.locator("#result").is_visible()
    assert status(krypt).startswith("Filen er kryptert: 3 personer")


# --- point 3: nothing stale on screen ---------------------------------------------------------


def test_another_data_file_key_file_or_name_clears_the_last_result(
    krypt: Krypt, small: pathlib.Path, tmp_path: pathlib.Path,
    key_files: dict[str, pathlib.Path],
) -> None:
    page = krypt.page
    other = tmp_path / "annen.xml"
    other.write_bytes(document_bytes(5, seed=51))
    changes = {
        "data file": lambda: page.set_input_files("#data", str(other)),
        "key file": lambda: page.set_input_files("#keys", str(key_files["expiring"])),
        "name": lambda: page.fill("#out", "nytt-navn.xml"),
    }
    for what, change in changes.items():
        run_to_result(krypt, small, key_files["valid"])
        change()
        assert page.locator("#result").is_hidden(), what
        assert status(krypt) == READY, what
    assert axe_violations(page) == []


def test_a_fixed_field_loses_its_fault_at_once(
    krypt: Krypt, small: pathlib.Path, key_files: dict[str, pathlib.Path]
) -> None:
    page = krypt.page
    krypt.fill(data=None, out="k.xml", keys=key_files["valid"])
    assert krypt.run() == "fault"
    assert krypt.visible_errors() == {"data": "IPLOS datafil mangler"}
    page.set_input_files("#data", str(small))
    assert krypt.visible_errors() == {}
    assert page.get_attribute("#data", "aria-invalid") is None

    page.fill("#out", "")
    assert krypt.run() == "fault"
    assert krypt.visible_errors() == {"out": "Kryptert IPLOS fil mangler"}
    page.fill("#out", "k.xml")
    assert krypt.visible_errors() == {}

    page.fill("#email", "kari(at)kommune.no")
    assert krypt.run() == "fault"
    assert list(krypt.visible_errors()) == ["contact"]
    page.fill("#email", "kari@kommune.no")
    wait_until(lambda: krypt.error("contact") is None, "the contact fault to go")
    assert page.get_attribute("#email", "aria-invalid") is None

    page.set_input_files("#keys", str(key_files["expired"]))
    wait_until(lambda: krypt.error("keys") is not None, "the expired key file's fault")
    page.set_input_files("#keys", str(key_files["valid"]))
    wait_until(lambda: "TPF-nøkkel" in (page.text_content("#keys-info") or ""), "key info")
    assert krypt.visible_errors() == {}


def test_nothing_was_stopped_when_nothing_started(
    krypt: Krypt, small: pathlib.Path, key_files: dict[str, pathlib.Path]
) -> None:
    """Form faults and key file faults come before the data is read: «ikke startet»."""
    for keys in (None, key_files["expired"]):
        krypt.fill(data=small, out="k.xml", keys=keys)
        assert krypt.run() == "fault"
        assert status(krypt) == (
            "Krypteringen ble ikke startet. Rett feilen som er merket, og velg «Utfør "
            "kryptering» igjen."
        )
    truncated = small.with_name("avkortet.xml")
    truncated.write_bytes(small.read_bytes()[:-40])
    krypt.fill(data=truncated, out="k.xml", keys=key_files["valid"])
    assert krypt.run() == "fault"
    assert status(krypt) == "Krypteringen ble stoppet. Ingen fil er lagret."


# --- point 5: keyboard and reflow ----------------------------------------------------------


def test_the_focus_ring_stays_3px_on_a_field_marked_invalid(
    krypt: Krypt, small: pathlib.Path, key_files: dict[str, pathlib.Path]
) -> None:
    page = krypt.page
    krypt.fill(data=small, out="", keys=key_files["valid"])
    assert krypt.run() == "fault"
    assert page.get_attribute("#out", "aria-invalid") == "true"
    page.focus("#data")
    page.keyboard.press("Tab")  # by keyboard into the invalid field
    assert page.evaluate("() => document.activeElement.id") == "out"
    ring = page.evaluate(
        "() => { const s = getComputedStyle(document.activeElement);"
        " return [s.outlineStyle, s.outlineWidth]; }"
    )
    assert ring == ["solid", "3px"]


# Every number in the result (digits with their separators) must sit on one line; the SHA-256
# may break only between its groups of eight; nothing may scroll sideways.
REFLOW_PROBLEMS = """() => {
  const problems = [];
  const number = /\\d(?:[\\d\\u00a0\\u202f.,:-]*\\d)?/g;
  const tops = (range) => new Set(Array.from(range.getClientRects(), (r) => Math.round(r.top)));
  const sha = document.getElementById('r-sha256');
  for (const element of document.querySelectorAll('#result dd, #result li')) {
    if (element === sha) continue;
    const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (const match of node.data.matchAll(number)) {
        const range = document.createRange();
        range.setStart(node, match.index);
        range.setEnd(node, match.index + match[0].length);
        if (tops(range).size > 1) problems.push(`${element.id || 'li'}: ${match[0]}`);
      }
    }
  }
  let index = 0;
  let lastTop = null;
  const walker = document.createTreeWalker(sha, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    for (let i = 0; i < node.data.length; i++, index++) {
      const range = document.createRange();
      range.setStart(node, i);
      range.setEnd(node, i + 1);
      const top = Math.round(range.getBoundingClientRect().top);
      if (lastTop !== null && top !== lastTop && index % 8) problems.push(`sha256 at ${index}`);
      lastTop = top;
    }
  }
  if (document.documentElement.scrollWidth > window.innerWidth) {
    problems.push(`scrolls sideways: ${document.documentElement.scrollWidth}`);
  }
  return problems;
}"""


def test_the_result_reflows_at_320px_without_breaking_numbers(
    browser: Browser, page_url: str, tmp_path: pathlib.Path, key_files: dict[str, pathlib.Path]
) -> None:
    """WCAG 1.4.10: 1280 px at 400 % zoom is 320 CSS pixels."""
    narrow = open_krypt(browser, page_url, viewport={"width": 320, "height": 800})
    try:
        data = document_bytes(1200, seed=52)
        text = data.decode()
        first = text.index("<Fodselsnummer>") + len("<Fodselsnummer>")
        wrong = str((int(text[first + 10]) + 1) % 10)
        source = tmp_path / "iplos-bydel-0301-2026.xml"
        source.write_bytes((text[: first + 10] + wrong + text[first + 11 :]).encode())
        narrow.fill(data=source, out="iplos-0301-2026-kryptert.xml", keys=key_files["expiring"])
        with narrow.page.expect_download():
            assert narrow.run() == "done"
        assert narrow.page.locator("#r-warning-list li").count() == 2  # text with numbers
        assert narrow.page.evaluate(REFLOW_PROBLEMS) == []
        assert axe_violations(narrow.page) == []
    finally:
        narrow.close()


def test_a_key_file_dropped_on_its_field_is_taken(
    krypt: Krypt, small: pathlib.Path, key_files: dict[str, pathlib.Path]
) -> None:
    page = krypt.page
    krypt.fill(data=small, out="k.xml", keys=None)
    drop_files(page, "#keys", [key_files["valid"]])
    wait_until(lambda: "TPF-nøkkel" in (page.text_content("#keys-info") or ""), "key info")
    with page.expect_download():
        assert krypt.run() == "done"
    # and the data file's frame still takes its own file
    page.set_input_files("#data", [])
    drop_files(page, "#drop", [small])
    size = f"{small.stat().st_size:,}".replace(",", "\u00a0")
    assert page.text_content("#data-chosen") == f"Valgt: {small.name}, {size} byte"


# --- point 7: messages that name the real problem ----------------------------------------------


def _zip(names: list[str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            archive.writestr(name, "<?xml version='1.0'?><x/>")
    return buffer.getvalue()


OLE2 = bytes.fromhex("d0cf11e0a1b11ae1") + bytes(504)  # the old .doc and .xls
NOT_XML_FILES = {
    "brev.docx": _zip(["[Content_Types].xml", "word/document.xml"]),
    "tall.xlsx": _zip(["[Content_Types].xml", "xl/workbook.xml"]),
    "brev.doc": OLE2,
    "tall.xls": OLE2,
    "skjema.pdf": b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n",
    "bilde.png": bytes.fromhex("89504e470d0a1a0a0000000d49484452") + bytes(40),
    "bilde.jpg": bytes.fromhex("ffd8ffe000104a46494600010100") + bytes(40),
    "arkiv.zip": _zip(["iplos.xml"]),
}


@pytest.mark.parametrize("name", list(NOT_XML_FILES))
def test_a_document_or_picture_is_not_an_iplos_file(
    krypt: Krypt, tmp_path: pathlib.Path, key_files: dict[str, pathlib.Path], name: str
) -> None:
    """Core part (pyapp/reader.py): the non-XML file is named as such, not as a character set
    fault of its XML declaration."""
    source = tmp_path / name
    source.write_bytes(NOT_XML_FILES[name])
    krypt.fill(data=source, out="k.xml", keys=key_files["valid"])
    assert krypt.run() == "fault"
    assert krypt.visible_errors() == {"data": NOT_XML}


def test_a_key_file_cut_short_is_damaged(
    krypt: Krypt, tmp_path: pathlib.Path, key_files: dict[str, pathlib.Path]
) -> None:
    """Core part (pyapp/keyfile.py): cut short, not «the wrong character set»."""
    whole = key_files["valid"].read_bytes()
    cut = tmp_path / "nokkelfil-avkortet.xml"
    cut.write_bytes(whole[: len(whole) // 2])
    krypt.page.set_input_files("#keys", str(cut))
    wait_until(lambda: krypt.error("keys") is not None, "the key file's fault")
    assert krypt.error("keys") == KEY_FILE_DAMAGED


def test_a_fault_is_called_a_fault_once(
    krypt: Krypt, small: pathlib.Path, key_files: dict[str, pathlib.Path]
) -> None:
    """The error's visible «Feil: » prefix, and the announcement, never say «Feil: Feil …»."""
    rendered = """(id) => {
      const element = document.getElementById(id);
      const before = getComputedStyle(element, '::before').content;
      const prefix = before && before !== 'none' ? JSON.parse(before) : '';
      return prefix + element.textContent;
    }"""
    text = small.read_text()
    broken = small.with_name("brutt.xml")
    broken.write_text(text.replace("</Husstand>", "</Husstnd>", 1))
    krypt.fill(data=broken, out="k.xml", keys=key_files["valid"])
    assert krypt.run() == "fault"
    shown = krypt.page.evaluate(rendered, "data-error")
    assert shown.startswith("Feil i innholdet i IPLOS filen: Starten på feltet Husstand")
    assert not (krypt.page.text_content("#announce") or "").startswith("Feil: Feil")
    krypt.fill(data=None, out="k.xml", keys=key_files["valid"])
    assert krypt.run() == "fault"
    assert krypt.page.evaluate(rendered, "data-error") == "Feil: IPLOS datafil mangler"
    assert axe_violations(krypt.page) == []


def test_a_file_without_persons_warns(
    krypt: Krypt, tmp_path: pathlib.Path, key_files: dict[str, pathlib.Path]
) -> None:
    source = tmp_path / "tom.xml"
    source.write_bytes(document_bytes(0, seed=53))
    krypt.fill(data=source, out="tom-kryptert.xml", keys=key_files["valid"])
    with krypt.page.expect_download():
        assert krypt.run() == "done"
    assert krypt.page.locator("#r-warning-list li").all_text_contents() == [NO_PERSONS]
    assert status(krypt).startswith("Filen er kryptert: 0 personer i filen.")
    assert "1 advarsel" in status(krypt)


def test_a_folder_is_refused(
    krypt: Krypt, tmp_path: pathlib.Path, key_files: dict[str, pathlib.Path]
) -> None:
    page = krypt.page
    folder = tmp_path / "IPLOS-filer"
    folder.mkdir()
    (folder / "iplos.xml").write_bytes(document_bytes(1, seed=54))
    krypt.fill(data=None, out="k.xml", keys=key_files["valid"])
    drop_files(page, "#drop", [folder])
    wait_until(lambda: krypt.error("data") is not None, "the folder refused")
    assert krypt.error("data") == (
        "«IPLOS-filer» er en mappe, ikke en fil. Velg IPLOS-datafilen i mappen."
    )
    assert page.text_content("#data-chosen") == ""
    drop_files(page, "#keys", [folder])
    wait_until(lambda: krypt.error("keys") is not None, "the folder refused")
    assert krypt.error("keys") == (
        "«IPLOS-filer» er en mappe, ikke en fil. Velg filen med krypteringsnøkler i mappen."
    )
    assert axe_violations(page) == []


# --- point 8: the contact person, remembered only with consent --------------------------------


def stored(krypt: Krypt) -> str | None:
    return krypt.page.evaluate("() => localStorage.getItem('ipis-krypt-kontaktperson')")


def test_the_contact_person_is_not_remembered_without_consent(
    krypt: Krypt, small: pathlib.Path, key_files: dict[str, pathlib.Path]
) -> None:
    page = krypt.page
    page.evaluate("() => localStorage.clear()")
    page.reload()
    krypt.wait_state("ready")
    assert not page.is_checked("#remember")  # off until the user ticks it
    run_to_result(krypt, small, key_files["valid"])
    assert stored(krypt) is None
    page.reload()
    krypt.wait_state("ready")
    assert [page.input_value(f"#{n}") for n in ("email", "name", "mobile")] == ["", "", ""]


def test_remembered_only_after_a_run_that_succeeded(
    krypt: Krypt, small: pathlib.Path, key_files: dict[str, pathlib.Path]
) -> None:
    page = krypt.page
    page.evaluate("() => localStorage.clear()")
    krypt.fill(data=None, out="k.xml", keys=key_files["valid"])
    page.check("#remember")
    assert krypt.run() == "fault"
    assert stored(krypt) is None  # typed and ticked, but no run has succeeded
    assert page.locator("#remembered").is_hidden()
    page.set_input_files("#data", str(small))
    with page.expect_download():
        assert krypt.run() == "done"
    assert stored(krypt) is not None
    assert page.locator("#remembered").is_visible()
    assert axe_violations(page) == []

    # Unticking forgets at once; «Glem kontaktpersonen» forgets and empties the fields.
    page.uncheck("#remember")
    assert stored(krypt) is None
    page.check("#remember")
    with page.expect_download():
        assert krypt.run() == "done"
    assert stored(krypt) is not None
    page.get_by_role("button", name="Glem kontaktpersonen").click()
    assert stored(krypt) is None
    assert not page.is_checked("#remember")
    assert [page.input_value(f"#{n}") for n in ("email", "name", "mobile")] == ["", "", ""]
    page.reload()
    krypt.wait_state("ready")
    assert page.input_value("#email") == ""
    for name, value in CONTACT.items():  # leave the form as the other tests expect it
        page.fill(f"#{name}", value)


def test_the_consent_explains_the_shared_storage(krypt: Krypt) -> None:
    hint = krypt.page.text_content("#remember-hint") or ""
    assert "først når en kryptering er fullført" in hint
    assert "Alle HTML-filer som åpnes fra disken i denne nettleseren, deler dette lageret" in hint
    described = krypt.page.get_attribute("#remember", "aria-describedby") or ""
    assert "remember-hint" in described
