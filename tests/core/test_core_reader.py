"""The IPLOS reader (formats §1): fault messages from tests/vectors/iplos, encodings, safety."""

from __future__ import annotations

import json
import re
import time

import pytest
from ipis_testlib import FNR, VECTORS, canonical, document, input_persons, parse, person

from ipis_core import faults
from ipis_core.reader import Header, IplosReader, PersonRecord

FAULTS = json.loads((VECTORS / "iplos" / "faults.json").read_text(encoding="utf-8"))
VALID = json.loads((VECTORS / "iplos" / "valid.json").read_text(encoding="utf-8"))


def read_all(data: bytes, chunk: int = 1 << 16) -> tuple[IplosReader, list[object]]:
    reader = IplosReader()
    events: list[object] = []
    for start in range(0, len(data), chunk):
        events += reader.feed(data[start : start + chunk])
    events += reader.close()
    return reader, events


def fault_of(data: bytes, chunk: int = 1 << 16) -> str | None:
    try:
        read_all(data, chunk)
    except faults.IplosFault as fault:
        return fault.message
    return None


@pytest.mark.parametrize("case", FAULTS, ids=[c["file"] for c in FAULTS])
def test_fault_vector_gives_exact_message(case: dict[str, object]) -> None:
    data = (VECTORS / "iplos" / "faults" / str(case["file"])).read_bytes()
    assert fault_of(data) == case["message"]


@pytest.mark.parametrize("chunk", [1, 7, 64, 4096])
@pytest.mark.parametrize(
    "case", [c for c in FAULTS if c["seed"]], ids=[c["file"] for c in FAULTS if c["seed"]]
)
def test_seed_fault_message_does_not_depend_on_chunking(
    case: dict[str, object], chunk: int
) -> None:
    data = (VECTORS / "iplos" / "faults" / str(case["file"])).read_bytes()
    assert fault_of(data, chunk) == case["message"]


def test_every_seed_message_of_formats_1_has_a_vector() -> None:
    messages = {c["message"] for c in FAULTS if c["seed"]}
    assert 'Feltet ”IPLOS” mangler' in messages
    starts = ("Feil i innholdet i IPLOS filen: Starten på feltet ",
              "IPLOS filen er mangelfull: Følgende felt mangler IPLOS\\")
    for start in starts:
        assert any(str(m).startswith(start) for m in messages)
    assert any(str(m).startswith("Ugyldig versjonsnummer for IPLOS meldingen.") for m in messages)


def test_messages_never_contain_a_fodselsnummer() -> None:
    for case in FAULTS:
        for number in FNR:
            assert number not in str(case["message"])


@pytest.mark.parametrize("case", VALID, ids=[c["file"] for c in VALID])
@pytest.mark.parametrize("chunk", [1, 3, 1 << 16])
def test_every_encoding_reads_the_same_persons(case: dict[str, object], chunk: int) -> None:
    data = (VECTORS / "iplos" / "valid" / str(case["file"])).read_bytes()
    reader, events = read_all(data, chunk)
    header = events[0]
    assert isinstance(header, Header)
    assert header.avsender.child_text("Navn") == case["avsender_navn"]
    assert header.mottaker.child_text("Navn") == "Statistisk sentralbyrå"
    records = [e for e in events[1:] if isinstance(e, PersonRecord)]
    assert [r.fodselsnummer for r in records] == case["fodselsnumre"]
    assert all(r.check_digits_ok for r in records)
    assert reader.persons == case["persons"]
    # the person data, as UTF-8, equals what an independent parser (lxml) reads from the file
    expected = input_persons(data)
    for record, (fnr, children) in zip(records, expected, strict=True):
        assert record.fodselsnummer == fnr
        assert fnr.encode() not in record.data_xml
        got = parse(b"<Person>" + record.data_xml + b"</Person>")
        assert [canonical(c) for c in got if isinstance(c.tag, str)] == children
        assert b"<!--" not in record.data_xml
    assert "Ærøy" in records[0].data_xml.decode("utf-8")


def test_bom_is_not_part_of_the_document() -> None:
    text = document()
    for bom, codec in ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"),
                       (b"\xfe\xff", "utf-16-be")):
        data = bom + text.replace("UTF-8", "UTF-16" if "16" in codec else "UTF-8").encode(codec)
        assert fault_of(data) is None


def test_line_numbers_count_crlf_and_utf16() -> None:
    text = document([person(FNR[0]), person(FNR[1])]).replace("</Vurdering>", "</Vurd>", 1)
    expected = ("Feil i innholdet i IPLOS filen: Starten på feltet Vurdering på linje 24 stemmer "
                "ikke med avslutningen Vurd på linje 26.")
    assert fault_of(text.encode()) == expected
    assert fault_of(text.replace("\n", "\r\n").encode()) == expected
    utf16 = b"\xff\xfe" + text.replace("UTF-8", "UTF-16").replace("\n", "\r\n").encode("utf-16-le")
    assert fault_of(utf16, chunk=5) == expected


def test_first_fault_in_file_order_across_a_large_file() -> None:
    persons = [person(FNR[i % 4]) for i in range(3000)]
    persons[2500] = persons[2500].replace("</Vurdering>", "</Vurd>")
    persons[2900] = persons[2900].replace(f"<Fodselsnummer>{FNR[0]}</Fodselsnummer>", "")
    line = 21 + 2500 * 8 + 3
    assert fault_of(document(persons).encode(), chunk=4096) == (
        f"Feil i innholdet i IPLOS filen: Starten på feltet Vurdering på linje {line} stemmer "
        f"ikke med avslutningen Vurd på linje {line + 2}."
    )


def test_entity_bomb_is_refused_at_once() -> None:
    lol = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 20))
    data = ('<?xml version="1.0"?>\n<!DOCTYPE IPLOS [<!ENTITY l0 "lol">' + lol + ']>\n'
            '<IPLOS versjon="3.0"><Meldingstype>&l19;</Meldingstype></IPLOS>').encode()
    started = time.perf_counter()
    message = fault_of(data)
    assert time.perf_counter() - started < 1.0
    assert message is not None and "DOCTYPE" in message


def test_no_external_resource_is_ever_opened(tmp_path, monkeypatch) -> None:
    secret = tmp_path / "hemmelig.txt"
    secret.write_text("HEMMELIG")
    opened: list[str] = []
    import builtins

    real_open = builtins.open

    def spy(file, *args, **kwargs):
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", spy)
    for doctype in (
        f'<!DOCTYPE IPLOS SYSTEM "{secret.as_uri()}">',
        f'<!DOCTYPE IPLOS [<!ENTITY x SYSTEM "{secret.as_uri()}">]>',
        f'<!DOCTYPE IPLOS [<!ENTITY % p SYSTEM "{secret.as_uri()}"> %p;]>',
    ):
        data = document().replace('<IPLOS versjon', doctype + '\n<IPLOS versjon')
        data = data.replace("Oslo kommune", "&x;")
        message = fault_of(data.encode())
        assert message is not None and "HEMMELIG" not in message
    assert not [f for f in opened if "hemmelig" in f]


def test_check_digit_lines_are_collected_not_numbers() -> None:
    bad = FNR[0][:10] + str((int(FNR[0][10]) + 1) % 10)
    reader, _ = read_all(document([person(FNR[1]), person(bad), person(bad)]).encode())
    assert reader.bad_check_digit_lines == [29, 37]
    assert reader.persons == 3


# --- line numbers of faults found late (issue 8.5) ---------------------------------------------


@pytest.mark.parametrize("chunk", [1, 5, 1 << 16])
def test_reversed_period_is_reported_on_periodefra_line(chunk: int) -> None:
    """The fault names PeriodeFra, so its line is PeriodeFra's (17), not Uttak's (15)."""
    text = document().replace("<PeriodeFra>2025-01-01", "<PeriodeFra>2026-01-01")
    assert fault_of(text.encode(), chunk) == (
        "Feil i innholdet i IPLOS filen: Feltet PeriodeFra på linje 17 er etter PeriodeTil."
    )
    # found as soon as PeriodeTil ends: before a later fault inside Uttak
    later = text.replace("</PeriodeTil>", "</PeriodeTil><Ukjent/>")
    assert fault_of(later.encode(), chunk) == (
        "Feil i innholdet i IPLOS filen: Feltet PeriodeFra på linje 17 er etter PeriodeTil."
    )


@pytest.mark.parametrize("chunk", [1, 5, 1 << 16])
@pytest.mark.parametrize(
    ("stray", "line"),
    [
        ("<Bydelsnummer>00</Bydelsnummer> Oslo", 6),  # text on the line of the tag before it
        ("<Bydelsnummer>00</Bydelsnummer>\n\n   Oslo", 8),  # text lines below it
        ("<Bydelsnummer>00</Bydelsnummer><!-- c\n -->\n x", 8),  # after a comment
        ('<Fagsystem navn="a>b"\n versjon="1"/> x', 10),  # after a '>' in a value
        ("<Bydelsnummer>00</Bydelsnummer><![CDATA[\nx]]>", 6),  # CDATA is text too
    ],
    ids=["same-line", "lines-below", "after-comment", "after-quoted-gt", "cdata"],
)
def test_stray_text_in_the_header_is_reported_on_its_own_line(
    stray: str, line: int, chunk: int
) -> None:
    """expat hands buffered text over at the next tag, lines later; the line is the text's."""
    target = '<Fagsystem navn="Gerica" versjon="2026.2"/>' if "Fagsystem" in stray else (
        "<Bydelsnummer>00</Bydelsnummer>")
    text = document().replace(target, stray)
    assert fault_of(text.encode(), chunk) == (
        f"Feil i innholdet i IPLOS filen: Uventet tekst i feltet Avsender på linje {line}."
    )


# --- the XML declaration (hypothesis found a UTF-16 file with version=".0" accepted) -----------

ENCODED = {
    "UTF-8": lambda text: text.encode("utf-8"),
    "UTF-8 BOM": lambda text: b"\xef\xbb\xbf" + text.encode("utf-8"),
    "UTF-16 LE BOM": lambda text: b"\xff\xfe" + text.replace("UTF-8", "UTF-16").encode("utf-16-le"),
    "UTF-16 BE BOM": lambda text: b"\xfe\xff" + text.replace("UTF-8", "UTF-16").encode("utf-16-be"),
    "ISO-8859-1": lambda text: text.replace("UTF-8", "ISO-8859-1").encode("latin-1"),
}


@pytest.mark.parametrize("encoding", ENCODED)
@pytest.mark.parametrize("version", ["1.0", "1.1", "1.10", ".0", "2.0", "1.x", "1.", "", "01.0"])
def test_xml_declaration_version_is_checked_in_every_encoding(encoding: str, version: str) -> None:
    """expat does not check the version number (libxml2 does), and the reader hands expat
    re-encoded UTF-8, so the reader checks it: XML 1.0's VersionNum, 1.[0-9]+."""
    data = ENCODED[encoding](document().replace('version="1.0"', f'version="{version}"'))
    message = fault_of(data, chunk=3)
    if re.fullmatch(r"1\.[0-9]+", version):
        assert message is None
        parse(data)  # and lxml agrees the file is XML
    else:
        assert message == (
            "Feil i innholdet i IPLOS filen: XML-deklarasjonen på linje 1 har et ugyldig "
            "versjonsnummer (det skal være 1.0). Kontakt leverandøren av fagsystemet som "
            "genererte IPLOS meldingen."
        )


# --- files that are no XML at all (issue 10.7) ------------------------------------------------

NOT_IPLOS_FILE = "Filen er ikke en IPLOS XML-fil. Velg IPLOS-filen som fagsystemet eksporterte."


@pytest.mark.parametrize(
    "start",
    [b"%PDF-1.4", b"PK\x03\x04", bytes.fromhex("d0cf11e0a1b11ae1"), b"\x89PNG\r\n\x1a\n",
     b"\xff\xd8\xff\xe0", b"GIF87a", b"{\"a\": 1}", b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff",
     b"  \r\n\tFodselsnummer;Husstand", b"\xef\xbb\xbf%PDF", b"\xfe\xff\x00x"],
    ids=["pdf", "zip-docx-xlsx", "ole-doc-xls", "png", "jpeg", "gif87", "json", "utf32le",
         "utf32be", "csv-after-space", "pdf-after-bom", "utf16-letter"],
)
@pytest.mark.parametrize("chunk", [1, 1 << 16])
def test_a_file_that_cannot_start_xml_is_named_as_such(start: bytes, chunk: int) -> None:
    """Before any message about characters or XML: the user picked the wrong file."""
    assert fault_of(start + bytes(range(256)) * 8, chunk) == NOT_IPLOS_FILE


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", 'Feltet ”IPLOS” mangler'),
        (b" \r\n\t ", 'Feltet ”IPLOS” mangler'),
        (b"\xff\xfe", 'Feltet ”IPLOS” mangler'),
        (b"\n\n  " + document().split("?>\n", 1)[1].encode(), None),  # no declaration: fine
    ],
    ids=["empty", "whitespace", "bom-only", "leading-whitespace"],
)
def test_what_is_not_refused_as_a_non_xml_file(data: bytes, message: str | None) -> None:
    assert fault_of(data) == message
