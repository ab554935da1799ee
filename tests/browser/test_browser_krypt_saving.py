"""What IPLOS Krypt says about the file it made (issue 10, point 1) and the size limit in the
page (point 4): «lagret» only when the page closed the file itself; a download is reported as
asked for, under the safe name the browser really gets; a failed run leaves no file behind."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest
from krypt_testlib import (
    HOLD_CLOSE,
    HOLD_WRITES,
    RELEASE_CLOSE,
    RELEASE_WRITES,
    SAVE_DIALOG,
    TODAY,
    Keys,
    Krypt,
    axe_violations,
    chosen_file,
    decrypt,
    native_encrypt,
    open_krypt,
    wait_until,
)
from playwright.sync_api import Browser

from ipis_core.demo_data import document_bytes

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("page")]

PICKED = "valgt-av-bruker.xml"


@pytest.fixture
def dialog(browser: Browser, page_url: str) -> Iterator[Krypt]:
    """A fresh page whose «Søk…» opens the stubbed save dialog (krypt_testlib.SAVE_DIALOG)."""
    opened = open_krypt(browser, page_url)
    opened.page.add_init_script(SAVE_DIALOG)
    opened.page.reload()
    opened.wait_state("ready")
    yield opened
    assert opened.network.outside == []
    opened.close()


def pick_in_dialog(krypt: Krypt) -> None:
    krypt.page.get_by_role("button", name="Søk…").click()
    wait_until(lambda: krypt.page.input_value("#out") == PICKED, "the chosen name in the field")


def status(krypt: Krypt) -> str:
    return krypt.page.text_content("#status") or ""


# --- without the save dialog: a download -----------------------------------------------------


@pytest.mark.parametrize(
    "typed,saved",
    [
        ("iplos:0301*2026?", "iplos_0301_2026_.xml"),  # characters Windows forbids
        ("rapport", "rapport.xml"),  # .xml added
        ('kryptert "ny" <a|b>.xml', "kryptert _ny_ _a_b_.xml"),
        ("CON", "_CON.xml"),  # a reserved name on Windows
        ("lpt1.xml", "_lpt1.xml"),
        ("  iplos.  ", "iplos.xml"),  # Windows drops trailing dots and spaces
        ("C:\\Users\\kari\\iplos.xml", "iplos.xml"),  # a whole path: its last part
    ],
)
def test_a_download_is_reported_as_asked_for_under_the_name_it_gets(
    krypt: Krypt, tmp_path: pathlib.Path, keys: Keys, key_files: dict[str, pathlib.Path],
    typed: str, saved: str,
) -> None:
    source = tmp_path / "iplos.xml"
    source.write_bytes(document_bytes(4, seed=40))
    krypt.fill(data=source, out=typed, keys=key_files["valid"])
    with krypt.page.expect_download() as download_info:
        assert krypt.run() == "done"
    download = download_info.value
    # The name shown is the name handed to the browser, and the browser keeps it.
    assert krypt.page.input_value("#out") == saved
    assert download.suggested_filename == saved
    shown = krypt.page.text_content("#r-file") or ""
    assert shown.startswith(f"{saved} – nettleseren er bedt om å lagre den i nedlastingsmappen")
    assert "lagret i nedlastingsmappen" not in shown
    # The page cannot know the download was written: no «utført», no «lagret».
    assert "utført" not in status(krypt) and "lagret" not in status(krypt)
    assert f"bedt om å lagre den som «{saved}»" in status(krypt)
    assert "utført" not in (krypt.page.text_content("#result") or "")
    download.save_as(tmp_path / "ut.xml")
    assert len(decrypt((tmp_path / "ut.xml").read_bytes(), keys).records) == 4


def test_the_name_is_made_safe_as_soon_as_it_is_typed(krypt: Krypt) -> None:
    krypt.page.fill("#out", "ut/data:2026")
    krypt.page.dispatch_event("#out", "change")
    assert krypt.page.input_value("#out") == "data_2026.xml"


# --- with the save dialog: the page writes the file itself ---------------------------------


def test_saved_is_said_only_after_the_file_is_closed(
    dialog: Krypt, tmp_path: pathlib.Path, keys: Keys, key_files: dict[str, pathlib.Path]
) -> None:
    page = dialog.page
    source = tmp_path / "iplos.xml"
    source.write_bytes(document_bytes(3000, seed=41))
    dialog.fill(data=source, out="", keys=key_files["valid"])
    pick_in_dialog(dialog)
    page.evaluate(HOLD_CLOSE)
    page.get_by_role("button", name="Utfør kryptering").click()
    wait_until(lambda: (chosen_file(page, PICKED) or {}).get("closing"), "close() of the file")
    # Everything is encrypted and written, but the file is not closed: not saved yet.
    assert chosen_file(page, PICKED)["writes"] >= 1
    assert dialog.state() == "running"
    assert page.locator("#result").is_hidden()
    assert "utført" not in status(dialog) and "lagret" not in status(dialog)
    assert axe_violations(page) == []  # the running state, with its progress and «Avbryt»
    page.evaluate(RELEASE_CLOSE)
    dialog.wait_state("ready")
    assert page.get_attribute("html", "data-outcome") == "done"
    assert chosen_file(page, PICKED)["closed"]
    assert status(dialog).startswith("Krypteringen er utført: 3\u00a0000 personer i filen.")
    assert f"lagret som «{PICKED}»" in status(dialog)
    assert (page.text_content("#r-file") or "").startswith(f"{PICKED} – lagret der du valgte")
    saved = bytes(page.evaluate("(name) => window.__saved(name)", PICKED))
    assert len(decrypt(saved, keys).records) == 3000
    assert dialog.downloads == []
    assert axe_violations(page) == []


def test_a_failed_run_leaves_no_file_behind(
    dialog: Krypt, tmp_path: pathlib.Path, key_files: dict[str, pathlib.Path]
) -> None:
    """A fault after megabytes were written: what was written is dropped, the empty file the
    dialog made is removed, and the page says nothing was saved."""
    page = dialog.page
    data = document_bytes(12000, seed=42)
    cut = data.rindex(b"</Vurdering>")
    source = tmp_path / "feil.xml"
    source.write_bytes(data[:cut] + b"</Vurd>" + data[cut + len(b"</Vurdering>") :])
    dialog.fill(data=source, out="", keys=key_files["valid"])
    pick_in_dialog(dialog)
    assert dialog.run() == "fault"
    file = chosen_file(page, PICKED)
    assert file["writes"] >= 1, "the fault came after output was written"
    assert file["aborted"] and file["removed"] and not file["closed"]
    assert status(dialog) == "Krypteringen ble stoppet. Ingen fil er lagret."
    assert "avslutningen Vurd" in (dialog.error("data") or "")


def test_a_cancelled_run_leaves_no_file_behind(
    dialog: Krypt, tmp_path: pathlib.Path, key_files: dict[str, pathlib.Path]
) -> None:
    page = dialog.page
    source = tmp_path / "stor.xml"
    source.write_bytes(document_bytes(60_000, seed=43))
    dialog.fill(data=source, out="", keys=key_files["valid"])
    pick_in_dialog(dialog)
    # Writing held: the worker stops 32 MB ahead of the file, so the run cannot end first.
    page.evaluate(HOLD_WRITES)
    page.get_by_role("button", name="Utfør kryptering").click()
    wait_until(lambda: (chosen_file(page, PICKED) or {}).get("writes"), "the first part written")
    page.get_by_role("button", name="Avbryt").click()
    page.evaluate(RELEASE_WRITES)
    dialog.wait_state("ready")
    assert page.get_attribute("html", "data-outcome") == "cancelled"
    file = chosen_file(page, PICKED)
    assert file["aborted"] and file["removed"] and not file["closed"]
    # That file is gone: the next run is a download, and says so, unless «Søk…» is used again.
    small = tmp_path / "liten.xml"
    small.write_bytes(document_bytes(2, seed=46))
    page.set_input_files("#data", str(small))
    with page.expect_download():
        assert dialog.run() == "done"
    assert "nettleseren er bedt om å lagre" in (page.text_content("#r-file") or "")


def test_a_disk_full_is_reported_and_leaves_no_file(
    dialog: Krypt, tmp_path: pathlib.Path, key_files: dict[str, pathlib.Path]
) -> None:
    page = dialog.page
    source = tmp_path / "iplos.xml"
    source.write_bytes(document_bytes(2000, seed=44))
    dialog.fill(data=source, out="", keys=key_files["valid"])
    pick_in_dialog(dialog)
    page.evaluate("() => { window.__failWrites = true; }")
    assert dialog.run() == "fault"
    assert (dialog.error("out") or "").startswith("Den krypterte filen kunne ikke lagres.")
    assert chosen_file(page, PICKED)["removed"]
    assert page.locator("#result").is_hidden()


# --- the size limit of the TPF layer, in the page (docs/formater.md) ---------------------------


def test_the_size_limit_refuses_in_the_page_with_nothing_saved(
    krypt: Krypt, tmp_path: pathlib.Path, keys: Keys, key_files: dict[str, pathlib.Path]
) -> None:
    """The limit lowered to this file's exact TPF CipherValue length: accepted at it, refused
    one character below it (the same MessageEncryptor as ``ipis encrypt``)."""
    import re

    data = document_bytes(200, seed=45)
    natively = native_encrypt(data, keys.key_file, TODAY)
    match = re.search(
        rb"</xenc:EncryptedKey></ds:KeyInfo><xenc:CipherData><xenc:CipherValue>([^<]*)<", natively
    )
    assert match
    exact = len(match.group(1))
    source = tmp_path / "iplos.xml"
    source.write_bytes(data)
    page = krypt.page
    page.evaluate("(n) => window.ipisKrypt.lowerCipherValueLimitForTests(n)", exact)
    krypt.fill(data=source, out="grense.xml", keys=key_files["valid"])
    with page.expect_download():
        assert krypt.run() == "done"
    page.evaluate("(n) => window.ipisKrypt.lowerCipherValueLimitForTests(n)", exact - 1)
    downloads = len(krypt.downloads)
    try:
        assert krypt.run() == "fault"
    finally:
        page.evaluate("() => window.ipisKrypt.lowerCipherValueLimitForTests(null)")
    limit = f"{exact - 1:,}".replace(",", "\u00a0")
    assert krypt.visible_errors() == {
        "data": f"IPLOS filen er for stor: den krypterte delen for TPF ville blitt over {limit} "
        "tegn, som er grensen for hva standard XML-programmer kan lese. Del uttrekket i flere "
        "filer i fagsystemet, eller kontakt SSB."
    }
    assert len(krypt.downloads) == downloads
    assert status(krypt) == "Krypteringen ble stoppet. Ingen fil er lagret."
