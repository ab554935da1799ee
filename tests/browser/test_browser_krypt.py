"""IPLOS Krypt in Chromium from file://, network off: encrypt, faults, cancel, no requests."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import pathlib
import time

import pytest
from krypt_testlib import TODAY, Keys, Krypt, decrypt, input_records, person_data

from ipis_core.demo_data import document_bytes

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("page")]


def encrypt_in_page(
    krypt: Krypt, tmp_path: pathlib.Path, data: bytes, key_file: pathlib.Path, name: str
) -> bytes:
    source = tmp_path / "iplos.xml"
    source.write_bytes(data)
    krypt.fill(data=source, out=name, keys=key_file)
    with krypt.page.expect_download() as download_info:
        outcome = krypt.run()
    assert outcome == "done", krypt.visible_errors()
    download = download_info.value
    assert download.suggested_filename == name
    target = tmp_path / name
    download.save_as(target)
    return target.read_bytes()


@pytest.mark.parametrize(
    "persons,encoding",
    [(0, "UTF-8"), (1, "UTF-16LE"), (250, "windows-1252"), (40, "UTF-16BE"),
     (120, "ISO-8859-1"), (2500, "UTF-8-BOM")],
)  # fmt: skip
def test_encrypts_and_decrypts_to_the_input(
    krypt: Krypt, tmp_path: pathlib.Path, keys: Keys, key_files: dict[str, pathlib.Path],
    persons: int, encoding: str,
) -> None:
    data = document_bytes(persons, seed=persons + 3, encoding=encoding)
    encrypted = encrypt_in_page(krypt, tmp_path, data, key_files["valid"], "kryptert.xml")
    opened = decrypt(encrypted, keys)
    expected = [(r.fodselsnummer, r.data_xml) for r in input_records(data)]
    assert person_data(opened) == expected
    page = krypt.page
    assert page.text_content("#r-persons") == f"{persons:,}".replace(",", "\u00a0")
    assert page.text_content("#r-kommune") == "0301"
    assert page.text_content("#r-bydel") == "00"
    assert page.text_content("#r-sha256") == hashlib.sha256(encrypted).hexdigest()


# --- every fault message of formats §1, next to its field, and nothing saved ----------------

SEED_FAULTS = {
    "no data file": ("data", "IPLOS datafil mangler"),
    "no output file": ("out", "Kryptert IPLOS fil mangler"),
    "no key file": ("keys", "Nøkkelfil mangler"),
    "contact": ("contact", "E-post adresse/Navn/MobilTelefonnr mangler"),
    "unreadable": ("data", "IPLOS filen kunne ikke åpnes."),
    "not IPLOS": ("data", "Feltet \u201dIPLOS\u201d mangler"),  # the seed's quotation marks
    "mismatch": (
        "data",
        "Feil i innholdet i IPLOS filen: Starten på feltet Husstand på linje 23 stemmer ikke "
        "med avslutningen Husstnd på linje 23.",
    ),
    "missing element": (
        "data",
        "IPLOS filen er mangelfull: Følgende felt mangler IPLOS\\Avsender\\Kommunenummer",
    ),
    "version": (
        "data",
        "Ugyldig versjonsnummer for IPLOS meldingen. Kontakt leverandøren av fagsystemet som "
        "genererte IPLOS meldingen",
    ),
}


def faulty_document(case: str) -> bytes:
    text = document_bytes(3, seed=11).decode()
    if case == "not IPLOS":
        return b'<?xml version="1.0" encoding="UTF-8"?>\n<Melding versjon="3.0"></Melding>\n'
    if case == "mismatch":
        first = text.index("</Husstand>")
        return (text[:first] + "</Husstnd>" + text[first + len("</Husstand>") :]).encode()
    if case == "missing element":
        start = text.index("    <Kommunenummer>")
        end = text.index("\n", start) + 1
        return (text[:start] + text[end:]).encode()
    if case == "version":
        return text.replace('versjon="3.0"', 'versjon="2.0"').encode()
    return text.encode()


@pytest.mark.parametrize("case", list(SEED_FAULTS))
def test_seed_fault_message_next_to_its_field(
    krypt: Krypt, tmp_path: pathlib.Path, key_files: dict[str, pathlib.Path], case: str
) -> None:
    source = tmp_path / "iplos.xml"
    source.write_bytes(faulty_document(case))
    contact = {"email": "iplos@kommune.no", "name": "", "mobile": "91234567"}
    krypt.fill(
        data=None if case == "no data file" else source,
        out="" if case == "no output file" else "kryptert.xml",
        keys=None if case == "no key file" else key_files["valid"],
        contact=contact if case == "contact" else None,
    )
    if case == "unreadable":
        source.unlink()  # chosen, then gone (a USB stick pulled out)
    downloads = len(krypt.downloads)
    assert krypt.run() == "fault"
    field, message = SEED_FAULTS[case]
    assert krypt.visible_errors() == {field: message}
    assert krypt.page.locator("#result").is_hidden()
    assert len(krypt.downloads) == downloads, "nothing may be saved on a fault"
    # Announced as a fault once: «Feil: …», or the message as it is when it says «Feil …».
    announced = message if message.startswith("Feil") else f"Feil: {message}"
    assert krypt.page.text_content("#announce") == announced
    first_input = {"data": "data", "out": "out", "keys": "keys", "contact": "name"}[field]
    assert krypt.page.get_attribute(f"#{first_input}", "aria-invalid") == "true"


def test_fault_messages_match_the_native_core(
    krypt: Krypt, tmp_path: pathlib.Path, key_files: dict[str, pathlib.Path]
) -> None:
    """Other faults of the data file: the page shows what the same Python says natively."""
    from ipis_core.faults import IplosFault

    text = document_bytes(2, seed=12).decode()
    cases = [
        text[: len(text) // 2].encode(),  # truncated
        text.replace("<Husstand>", "<Husstand><Ukjent/>", 1).replace("<Uttak>", "<Utak>"),
        text.replace("<Dato>2026-01-15</Dato>", "<Dato>15.01.2026</Dato>").encode(),
        text.replace('encoding="UTF-8"', 'encoding="EBCDIC-CP-US"').encode(),
        # issue 7.1: a fødselsnummer in a field that travels in clear is never written
        text.replace("<Navn>Oslo kommune", "<Navn>Oslo kommune 15857010032", 1).encode(),
    ]
    for index, data in enumerate(cases):
        data = data.encode() if isinstance(data, str) else data
        try:
            input_records(data)
        except IplosFault as fault:
            expected = fault.message
        else:
            raise AssertionError(f"case {index} is not a fault natively")
        source = tmp_path / f"feil{index}.xml"
        source.write_bytes(data)
        krypt.fill(data=source, out="kryptert.xml", keys=key_files["valid"])
        assert krypt.run() == "fault"
        assert krypt.visible_errors() == {"data": expected}


def test_invalid_contact_and_key_file(
    krypt: Krypt, tmp_path: pathlib.Path, key_files: dict[str, pathlib.Path]
) -> None:
    source = tmp_path / "iplos.xml"
    source.write_bytes(document_bytes(2, seed=13))
    krypt.fill(data=source, out="k.xml", keys=key_files["valid"],
               contact={"email": "ikke-en-adresse", "name": "Navn", "mobile": "91234567"})
    assert krypt.run() == "fault"
    errors = krypt.visible_errors()
    assert list(errors) == ["contact"] and errors["contact"].startswith("E-postadressen")
    assert krypt.page.get_attribute("#email", "aria-invalid") == "true"
    krypt.fill(data=source, out="k.xml", keys=key_files["broken"])
    assert krypt.run() == "fault"
    assert krypt.visible_errors()["keys"].startswith("Nøkkelfilen er ikke gyldig:")


def test_expired_key_file_is_refused(
    krypt: Krypt, tmp_path: pathlib.Path, key_files: dict[str, pathlib.Path]
) -> None:
    source = tmp_path / "iplos.xml"
    source.write_bytes(document_bytes(2, seed=14))
    krypt.fill(data=source, out="k.xml", keys=key_files["expired"])
    # shown as soon as the key file is chosen ...
    expired_on = (TODAY - dt.timedelta(days=36)).isoformat()
    message = (
        f"Nøkkelfilen er utløpt (gyldig til og med {expired_on}). Hent den nye nøkkelfilen som "
        "SSB publiserer 1. desember hvert år."
    )
    deadline = time.monotonic() + 10
    while krypt.error("keys") != message and time.monotonic() < deadline:
        time.sleep(0.05)
    assert krypt.error("keys") == message
    # ... and refused when the operator runs anyway
    downloads = len(krypt.downloads)
    assert krypt.run() == "fault"
    assert krypt.visible_errors() == {"keys": message}
    assert len(krypt.downloads) == downloads


def test_key_file_expiring_soon_warns(
    krypt: Krypt, tmp_path: pathlib.Path, keys: Keys, key_files: dict[str, pathlib.Path]
) -> None:
    data = document_bytes(5, seed=15)
    encrypted = encrypt_in_page(krypt, tmp_path, data, key_files["expiring"], "snart.xml")
    assert len(decrypt(encrypted, keys).records) == 5
    warnings = krypt.page.locator("#r-warning-list li").all_text_contents()
    expires = (TODAY + dt.timedelta(days=14)).isoformat()
    assert warnings == [
        f"Nøkkelfilen utløper {expires} (om 14 dager). Hent den nye nøkkelfilen fra SSB før "
        "neste innsending."
    ]
    assert "utløper" in (krypt.page.text_content("#keys-info") or "")
    fingerprint = keys.key_file.tpf.fingerprint()
    assert fingerprint in (krypt.page.text_content("#r-keys") or "")
    assert fingerprint in (krypt.page.text_content("#keys-info") or "")


def test_wrong_check_digits_warn_with_lines_not_numbers(
    krypt: Krypt, tmp_path: pathlib.Path, keys: Keys, key_files: dict[str, pathlib.Path]
) -> None:
    text = document_bytes(4, seed=16).decode()
    records = input_records(text.encode())
    bad = records[1].fodselsnummer
    wrong = bad[:10] + str((int(bad[10]) + 1) % 10)
    data = text.replace(bad, wrong).encode()
    encrypt_in_page(krypt, tmp_path, data, key_files["valid"], "k.xml")
    warnings = krypt.page.locator("#r-warning-list li").all_text_contents()
    assert len(warnings) == 1
    line = records[1].line
    expected = f"1 fødselsnummer har feil kontrollsiffer (Person på linje {line})"
    assert warnings[0].startswith(expected)
    body = krypt.page.text_content("body") or ""
    assert wrong not in body and bad not in body


def test_cancel_saves_nothing(
    krypt: Krypt, tmp_path: pathlib.Path, key_files: dict[str, pathlib.Path]
) -> None:
    source = tmp_path / "stor.xml"
    source.write_bytes(document_bytes(60_000, seed=17))  # about 30 MB
    krypt.fill(data=source, out="avbrutt.xml", keys=key_files["valid"])
    downloads = len(krypt.downloads)
    krypt.page.get_by_role("button", name="Utfør kryptering").click()
    krypt.wait_state("running")
    progress = krypt.page.locator("#progress-text")
    deadline = time.monotonic() + 30
    while (progress.text_content() or "0,0").startswith(("0,0", "Starter")):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    krypt.page.get_by_role("button", name="Avbryt").click()
    krypt.wait_state("ready")
    assert krypt.page.get_attribute("html", "data-outcome") == "cancelled"
    assert "avbrutt. Ingen fil er lagret" in (krypt.page.text_content("#status") or "")
    assert len(krypt.downloads) == downloads
    assert krypt.page.locator("#result").is_hidden()


# --- the crypto: GCM stream against OpenSSL, the native core, libxmlsec1 ---------------------


def test_gcm_stream_matches_openssl_byte_for_byte(krypt: Krypt) -> None:
    """web/gcm.js (AES-CTR through WebCrypto + GHASH in JavaScript) against AESGCM."""
    import os
    import random

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    rng = random.Random(7)
    sizes = [0, 1, 15, 16, 17, 31, 32, 33, 255, 4096, 65541] + [
        rng.randrange(0, 120_000) for _ in range(6)
    ]
    for size in sizes:
        key, iv, data = os.urandom(32), os.urandom(12), os.urandom(size)
        cuts = sorted(rng.randrange(0, size + 1) for _ in range(rng.randrange(0, 7)))
        bounds = [0, *cuts, size]
        chunks = [list(data[a:b]) for a, b in itertools.pairwise(bounds)]
        out = krypt.page.evaluate(
            "async ([key, iv, chunks]) => "
            "Array.from((await window.ipisKrypt.gcmSelfTest(key, iv, chunks)).out)",
            [list(key), list(iv), chunks],
        )
        assert bytes(out) == AESGCM(key).encrypt(iv, data, None), (size, cuts)


def _structure(encrypted: bytes) -> bytes:
    """The file without what is random: cipher values and the file id."""
    import re

    without = re.sub(rb"<xenc:CipherValue>[^<]*</xenc:CipherValue>", b"<CV/>", encrypted)
    return re.sub(rb'filId="[0-9a-f]+"', b'filId=""', without)


def test_browser_and_native_outputs_decrypt_to_the_same(
    krypt: Krypt, tmp_path: pathlib.Path, keys: Keys, key_files: dict[str, pathlib.Path]
) -> None:
    from krypt_testlib import native_encrypt

    data = document_bytes(300, seed=21, encoding="UTF-16LE")
    in_browser = encrypt_in_page(krypt, tmp_path, data, key_files["valid"], "nettleser.xml")
    natively = native_encrypt(data, keys.key_file, TODAY)
    assert in_browser != natively  # fresh keys and IVs
    assert _structure(in_browser) == _structure(natively)
    browser_opened, native_opened = decrypt(in_browser, keys), decrypt(natively, keys)
    assert person_data(browser_opened) == person_data(native_opened)
    assert browser_opened.tpf.contact == native_opened.tpf.contact
    assert browser_opened.tpf.uttak_xml == native_opened.tpf.uttak_xml
    assert _structure(browser_opened.tpf_plaintext) == _structure(native_opened.tpf_plaintext)


def test_libxmlsec_decrypts_the_browser_output(
    krypt: Krypt, tmp_path: pathlib.Path, keys: Keys, key_files: dict[str, pathlib.Path]
) -> None:
    import xmlsec  # a pinned test dependency: missing, this test fails (never a silent skip)
    from lxml import etree

    ns = {"xenc": "http://www.w3.org/2001/04/xmlenc#"}
    data = document_bytes(60, seed=22, encoding="ISO-8859-1")
    encrypted = encrypt_in_page(krypt, tmp_path, data, key_files["valid"], "xmlsec.xml")
    manager = xmlsec.KeysManager()
    for pem, key in ((keys.tpf_pem, keys.key_file.tpf), (keys.iplos_pem, keys.key_file.iplos)):
        loaded = xmlsec.Key.from_memory(pem, xmlsec.constants.KeyDataFormatPem)
        loaded.name = key.key_id
        manager.add_key(loaded)
    root = etree.fromstring(encrypted, etree.XMLParser(resolve_entities=False))
    tpf = xmlsec.EncryptionContext(manager).decrypt(root.find("xenc:EncryptedData", ns))
    assert tpf.tag == "IPLOSInnhold"
    aes_key = xmlsec.EncryptionContext(manager).decrypt(tpf.find("xenc:EncryptedKey", ns))
    persons = []
    for element in tpf.iterfind("Personer/Person", ns):
        context = xmlsec.EncryptionContext()
        context.key = xmlsec.Key.from_binary_data(xmlsec.constants.KeyDataAes, aes_key)
        plaintext = context.decrypt(element.find("xenc:EncryptedData", ns))
        inner = plaintext[plaintext.index(b">") + 1 : plaintext.rindex(b"</Person>")]
        persons.append((element.findtext("Fodselsnummer").strip(), inner))
    assert persons == [(r.fodselsnummer, r.data_xml) for r in input_records(data)]


# --- no way out -----------------------------------------------------------------------------


def test_nothing_can_leave_the_page(krypt: Krypt) -> None:
    """The CSP refuses connections from the page and from a worker; none reached the network."""
    page = krypt.page
    csp = page.get_attribute('meta[http-equiv="Content-Security-Policy"]', "content") or ""
    assert "default-src 'none'" in csp and "connect-src 'none'" in csp
    html = PAGE_BYTES()
    for reference in (b'src="http', b"src='http", b'href="http', b"url(http", b"@import"):
        assert reference not in html
    attempts = page.evaluate(
        """async () => {
          const results = [];
          try { await fetch('https://example.invalid/a'); results.push('fetch'); } catch (e) {}
          try { await fetch('data:text/plain,x'); results.push('fetch data'); } catch (e) {}
          await new Promise((resolve) => {
            const image = new Image();
            image.onload = () => { results.push('img'); resolve(); };
            image.onerror = () => resolve();
            image.src = 'https://example.invalid/b.png';
          });
          try { new WebSocket('wss://example.invalid/c'); } catch (e) {}
          navigator.sendBeacon && navigator.sendBeacon('https://example.invalid/d', 'x');
          return results;
        }"""
    )
    assert attempts == []
    urls = ("example.invalid/a", "example.invalid/b.png", "example.invalid/c")

    def refused() -> list[str]:
        return [line for line in krypt.console if "Content Security Policy" in line]

    deadline = time.monotonic() + 10  # wait for the refusals (no fixed sleep), then check
    while not all(any(url in line for line in refused()) for url in urls):
        assert time.monotonic() < deadline, refused()
        time.sleep(0.05)
    assert krypt.network.outside == []


def PAGE_BYTES() -> bytes:
    from krypt_testlib import PAGE

    return PAGE.read_bytes()
