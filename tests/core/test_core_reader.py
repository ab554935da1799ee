"""The IPLOS reader (formats §1): fault messages from tests/vectors/iplos, encodings, safety."""

from __future__ import annotations

import http.server
import json
import re
import sys
import threading
import urllib.request
from collections.abc import Iterator
from typing import ClassVar

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
@pytest.mark.parametrize("case", FAULTS, ids=[c["file"] for c in FAULTS])
def test_fault_message_does_not_depend_on_chunking(case: dict[str, object], chunk: int) -> None:
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


def test_entity_bomb_is_refused_at_its_doctype() -> None:
    """Refused at the DOCTYPE (line 2): the entities are never declared, so never expanded
    (a billion 'lol's would take minutes and gigabytes: the test would not end)."""
    lol = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 20))
    data = ('<?xml version="1.0"?>\n<!DOCTYPE IPLOS [<!ENTITY l0 "lol">' + lol + ']>\n'
            '<IPLOS versjon="3.0"><Meldingstype>&l19;</Meldingstype></IPLOS>').encode()
    for chunk in (7, 1 << 16):
        assert fault_of(data, chunk) == (
            "Feil i innholdet i IPLOS filen: Filen har en dokumenttypedefinisjon (DOCTYPE) på "
            "linje 2. Det er ikke tillatt i IPLOS eksportformat; kontakt leverandøren av "
            "fagsystemet."
        )


class _CountingServer(http.server.BaseHTTPRequestHandler):
    requests: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        _CountingServer.requests.append(self.path)
        body = b'<!ENTITY x "HEMMELIG">'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def counting_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _CountingServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _CountingServer.requests = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join()


_WATCHED_EVENTS = ("open", "socket.connect", "urllib.Request", "os.system", "subprocess.Popen")


def test_no_external_resource_is_ever_fetched(tmp_path, counting_server: str) -> None:
    """A DOCTYPE naming a file or a URL, an external entity, a parameter entity: refused, and
    nothing named is ever opened or fetched. Watched two ways: Python's audit events (every
    file opened, socket connected, URL requested from Python) while the reader runs, and a
    server on 127.0.0.1 that counts what is asked of it (a fetch from C as well)."""
    secret = tmp_path / "hemmelig.txt"
    secret.write_text("HEMMELIG")
    events: list[tuple[str, str]] = []
    watching = threading.Event()

    def audit(event: str, args: tuple[object, ...]) -> None:
        if watching.is_set() and event in _WATCHED_EVENTS:
            events.append((event, repr(args)[:200]))

    sys.addaudithook(audit)  # cannot be removed again: it watches only while the flag is set
    for target in (secret.as_uri(), f"{counting_server}/iplos.dtd"):
        for doctype in (
            f'<!DOCTYPE IPLOS SYSTEM "{target}">',
            f'<!DOCTYPE IPLOS [<!ENTITY x SYSTEM "{target}">]>',
            f'<!DOCTYPE IPLOS [<!ENTITY % p SYSTEM "{target}"> %p;]>',
        ):
            data = document().replace('<IPLOS versjon', doctype + '\n<IPLOS versjon')
            data = data.replace("Oslo kommune", "&x;")
            watching.set()
            try:
                message = fault_of(data.encode())
            finally:
                watching.clear()
            assert message is not None and "DOCTYPE" in message and "linje 2" in message
            assert "HEMMELIG" not in message
    assert events == []
    assert _CountingServer.requests == []
    # the watchers do see what they watch for
    watching.set()
    try:
        secret.read_text()
        no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        no_proxy.open(f"{counting_server}/sjekk", timeout=10).read()
    finally:
        watching.clear()
    assert {"open", "urllib.Request", "socket.connect"} <= {e for e, _ in events}
    assert _CountingServer.requests == ["/sjekk"]


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
        # after a tag over two lines (a '>' inside a value cannot pass the clear-part rule)
        ('<Fagsystem navn="a / b"\n versjon="1"/> x', 10),
        ("<Bydelsnummer>00</Bydelsnummer><![CDATA[\nx]]>", 6),  # CDATA is text too
    ],
    ids=["same-line", "lines-below", "after-comment", "after-two-line-tag", "cdata"],
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


# --- the three ways a person is read give the same record ----------------------------------------


def records_of(text: str, chunk: int) -> list[PersonRecord]:
    return [e for e in read_all(text.encode(), chunk)[1] if isinstance(e, PersonRecord)]


@pytest.mark.parametrize("chunk", [7, 300, 4096, 1 << 16])
def test_bulk_one_by_one_and_exact_paths_agree(chunk: int) -> None:
    """Runs of plain persons are taken in bulk; a run holding a '>' in an attribute value is
    taken one by one; a person with a comment goes through the exact parser. Same records."""
    persons = [person(FNR[i % 4]) for i in range(60)]
    bulk = records_of(document(persons), chunk)
    odd = persons.copy()
    odd[30] = odd[30].replace('kode="SPISE"', 'kode="a>b"')  # this run: one by one
    one_by_one = records_of(document(odd), chunk)
    exact = records_of(document([p.replace("<Person>", "<Person><!-- k -->") for p in persons]),
                       chunk)
    assert len(bulk) == len(one_by_one) == len(exact) == 60
    lines = [21 + 8 * i for i in range(60)]
    for records in (bulk, one_by_one, exact):
        assert [r.line for r in records] == lines
        assert [r.fodselsnummer for r in records] == [FNR[i % 4] for i in range(60)]
    for i in range(60):
        assert exact[i] == bulk[i]
        if i != 30:
            assert one_by_one[i] == bulk[i]
    assert one_by_one[30].data_xml == bulk[30].data_xml.replace(b'"SPISE"', b'"a>b"')
    assert bulk[0].data_xml == (b'<Husstand>1</Husstand><Vurdering dato="2025-03-01">'
                                b'<Variabel kode="SPISE" skar="2"/></Vurdering>'
                                b'<Tjeneste kode="12" fra="2024-01-01" timerPerUke="7.5"/>')


@pytest.mark.parametrize(
    "odd",
    [
        "    <Person>\n      <Fodselsnummer>{fnr}</Fodselsnummer>\n      <Merknad>a >\n  <b/>"
        "</Merknad>\n    </Person>\n",  # '>' in text before indentation-like whitespace
        "    <Person>\n      <Husstand>1</Husstand>\n      <Fodselsnummer>{fnr}</Fodselsnummer>\n"
        "    </Person>\n",  # Fodselsnummer not first
        "    <Person >\n      <Fodselsnummer>{fnr}</Fodselsnummer>\n    </Person >\n",
        "    <Person>\n      <Fodselsnummer>{fnr}</Fodselsnummer>\n      <Merknad><![CDATA[\n"
        "  </Person> ]]></Merknad>\n    </Person>\n",  # </Person> inside CDATA
        "    <Person>\n      <Fodselsnummer>{fnr}</Fodselsnummer>\n      <Personer/>\n"
        "      <Merknad>Fodselsnummer</Merknad>\n    </Person>\n",  # names that count
        "    <Person>\n      <Fodselsnummer>\n        {fnr}\n      </Fodselsnummer>\n"
        "      <?pi x?>\n    </Person>\n",
    ],
    ids=["gt-in-text", "fnr-second", "space-in-tags", "end-tag-in-cdata", "names-in-data",
         "multiline-fnr-and-pi"],
)
@pytest.mark.parametrize("chunk", [5, 1 << 16])
def test_a_person_of_another_shape_among_plain_ones_is_read_as_lxml_reads_it(
    odd: str, chunk: int
) -> None:
    persons = [person(FNR[i % 4]) for i in range(20)]
    persons[10] = odd.format(fnr=FNR[1])
    text = document(persons)
    records = records_of(text, chunk)
    expected = input_persons(text.encode())
    assert [r.fodselsnummer for r in records] == [fnr for fnr, _ in expected]
    for record, (_, children) in zip(records, expected, strict=True):
        got = parse(b"<Person>" + record.data_xml + b"</Person>")
        assert [canonical(c) for c in got if isinstance(c.tag, str)] == children
        assert b"Fodselsnummer>" not in record.data_xml and b"<!--" not in record.data_xml
    starts = [m.start() for m in re.finditer(r"<Person[ >]", text)]
    assert [r.line for r in records] == [text.count("\n", 0, s) + 1 for s in starts]


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_without_bom_is_read_by_its_first_characters(codec: str) -> None:
    """'<?' in UTF-16 without a BOM (formats §1 asks for a BOM; this much is recognised)."""
    data = document([person(FNR[0]), person(FNR[1])], encoding="UTF-16").encode(codec)
    _, events = read_all(data, chunk=3)
    assert [e.fodselsnummer for e in events if isinstance(e, PersonRecord)] == list(FNR[:2])


@pytest.mark.parametrize("chunk", [3, 1 << 16])
def test_comments_between_persons_and_other_shapes_keep_lines_and_warnings(chunk: int) -> None:
    """Comments between persons (split across chunks), a person of another shape with wrong
    check digits, and a single space of data kept on every path."""
    bad = FNR[0][:10] + str((int(FNR[0][10]) + 1) % 10)
    persons = [person(FNR[i % 4], "      <Navn> </Navn>\n") for i in range(12)]
    persons[5] = "    <!-- neste -->\n" + person(bad, "      <!-- k -->\n      <Navn> </Navn>\n")
    persons[8] = person(bad, "      <Navn> </Navn>\n")
    text = document(persons)
    reader, events = read_all(text.encode(), chunk)
    records = [e for e in events if isinstance(e, PersonRecord)]
    starts = [m.start() for m in re.finditer(r"<Person>", text)]
    assert [r.line for r in records] == [text.count("\n", 0, s) + 1 for s in starts]
    assert reader.bad_check_digit_lines == [records[5].line, records[8].line]
    assert {r.data_xml for r in records} == {b"<Navn> </Navn>"}
