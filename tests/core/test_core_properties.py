"""Property-based tests (hypothesis): arbitrary well-formed and malformed IPLOS documents give
either a correct result or one of the documented fault messages, never a traceback.

The IPLOS reader's and the key file reader's properties are the fuzzing of issue 7.15: bounded
here (``IPIS_FUZZ_EXAMPLES``), run longer by ``scripts/fuzz.py iplos|keyfile``, and an input
that broke one is kept in tests/vectors/iplos/fuzz-corpus/ or .../keyfiles/fuzz-corpus/ and
replayed by every run (tests/fuzz_corpus.py)."""

from __future__ import annotations

import re

import pytest
from fuzz_corpus import corpus, examples, keep_if_final
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ipis_testlib import (
    FNR,
    VECTORS,
    Keys,
    canonical,
    encrypt_bytes,
    input_persons,
    open_message,
)
from lxml import etree

from ipis_core.faults import IplosFault

SETTINGS = settings(max_examples=examples(120), deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])

_L = r"\d+"
DOCUMENTED = [re.compile(p) for p in (
    r'Feltet ”IPLOS” mangler',
    rf"Feil i innholdet i IPLOS filen: Starten på feltet \S+ på linje {_L} stemmer ikke med "
    rf"avslutningen \S+ på linje {_L}\.",
    r"IPLOS filen er mangelfull: Følgende felt mangler IPLOS(\\[A-Za-z]+)+",
    r"Ugyldig versjonsnummer for IPLOS meldingen\. Kontakt leverandøren av fagsystemet som "
    r"genererte IPLOS meldingen",
    r"IPLOS filen kunne ikke åpnes\.",
    r"Filen er ikke en IPLOS XML-fil\. Velg IPLOS-filen som fagsystemet eksporterte\.",
    rf"Feil i innholdet i IPLOS filen: XML-deklarasjonen på linje {_L} har et ugyldig "
    r"versjonsnummer \(det skal være 1\.0\)\. Kontakt leverandøren av fagsystemet som "
    r"genererte IPLOS meldingen\.",
    rf"IPLOS filen er ufullstendig: Feltet \S+ som starter på linje {_L} blir aldri avsluttet\. "
    r"Filen kan være avkortet; eksporter den på nytt fra fagsystemet\.",
    rf"Feil i innholdet i IPLOS filen: Ugyldig XML på linje {_L}, kolonne {_L}\. Kontroller at "
    r"filen er en IPLOS-fil i IPLOS eksportformat\.",
    rf"Feil i innholdet i IPLOS filen: Ugyldige tegn på linje {_L}\. Kontroller at filen er "
    r"lagret med tegnsettet som står i XML-deklarasjonen\.",
    r"Feil i innholdet i IPLOS filen: Tegnsettet \S+ støttes ikke\. Bruk UTF-8, UTF-16, "
    r"ISO-8859-1 eller windows-1252\.",
    rf"Feil i innholdet i IPLOS filen: Filen har en dokumenttypedefinisjon \(DOCTYPE\) på linje "
    rf"{_L}\. Det er ikke tillatt i IPLOS eksportformat; kontakt leverandøren av fagsystemet\.",
    rf"Feil i innholdet i IPLOS filen: Ukjent felt \S+ på linje {_L}\. Kontakt leverandøren av "
    r"fagsystemet som genererte IPLOS meldingen\.",
    rf"Feil i innholdet i IPLOS filen: Feltet \S+ på linje {_L} står på feil sted eller "
    r"forekommer flere ganger\.",
    rf"Feil i innholdet i IPLOS filen: Uventet tekst i feltet \S+ på linje {_L}\.",
    rf"Feil i innholdet i IPLOS filen: Feltet \S+ på linje {_L} har attributter som ikke hører "
    r"til IPLOS eksportformat\.",
    rf"Feil i innholdet i IPLOS filen: Feltet \S+ på linje {_L} [^.\n]+\.",
)]


def documented(message: str) -> bool:
    return "\n" not in message and any(p.fullmatch(message) for p in DOCUMENTED)


# --- well-formed documents with arbitrary person data ---------------------------------------

NAMES = st.sampled_from(["Husstand", "Vurdering", "Variabel", "Tjeneste", "Diagnose",
                         "Dodsdato", "Merknad", "X_1", "Æøå", "a.b-c"])
TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"])
               | st.sampled_from("æøåÆØÅ&<>\"'\t\n "), max_size=12)
# What a name in the clear part may hold (docs/formater.md: letters, spaces, punctuation and at
# most ten digits); anything else in Avsender/Navn is refused, see test_core_clear_part.py.
NAME_TEXT = st.text(alphabet=st.sampled_from("abzÆØÅæøåÀÿĀſƀɏ .,;:'’\"()&/+-–—0123"), max_size=10)
ATTR = st.dictionaries(st.sampled_from(["kode", "skar", "dato", "fra", "til", "timerPerUke"]),
                       TEXT, max_size=3)


def esc(text: str, quote: bool = False) -> str:
    """Escaped as XML requires: a '>' may stand as it is (the reader's fast path must notice
    it), except after ']]', where it would end a CDATA section that never began."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace("]]>", "]]&gt;")
    return text.replace('"', "&quot;") if quote else text


@st.composite
def element(draw, depth: int = 0) -> str:
    name = draw(NAMES)
    attrs = "".join(f' {k}="{esc(v, True)}"' for k, v in draw(ATTR).items())
    kind = draw(st.sampled_from(["empty", "text", "children", "cdata", "comment"]))
    if kind == "empty":
        return f"<{name}{attrs}/>"
    if kind == "children" and depth < 2:
        inner = "\n".join(draw(st.lists(element(depth + 1), max_size=3)))
    elif kind == "cdata":
        tricky = st.sampled_from(["<!-- x -->", "<?pi?>", ">  <", "&amp;", "<Person>", ""])
        inner = "<![CDATA[" + (draw(TEXT) + draw(tricky)).replace("]]>", "") + "]]>"
    elif kind == "comment":
        inner = "<!--" + draw(TEXT).replace("-", "") + "-->" + esc(draw(TEXT))
    else:
        inner = esc(draw(TEXT))
    return f"<{name}{attrs}>{inner}</{name}>"


@st.composite
def iplos_document(draw) -> tuple[str, str]:
    persons = []
    for _ in range(draw(st.integers(0, 5))):
        children = draw(st.lists(element(), max_size=4))
        position = draw(st.integers(0, len(children)))
        children.insert(position, f"<Fodselsnummer> {draw(st.sampled_from(FNR))} </Fodselsnummer>")
        sep = draw(st.sampled_from(["", "\n", "\n      ", "\r\n  "]))
        persons.append(f"<Person>{sep}{sep.join(children)}{sep}</Person>")
    optional_navn = draw(st.booleans())
    navn = f"<Navn>{esc(draw(NAME_TEXT))}Ærø</Navn>" if optional_navn else ""
    encoding = draw(st.sampled_from(["UTF-8", "UTF-8-BOM", "UTF-16LE", "UTF-16BE",
                                     "ISO-8859-1", "windows-1252"]))
    labels = {"UTF-8-BOM": "UTF-8", "UTF-16LE": "UTF-16", "UTF-16BE": "UTF-16"}
    label = labels.get(encoding, encoding)
    text = (
        f'<?xml version="1.0" encoding="{label}"?>\n<IPLOS versjon="3.0">\n'
        "<Meldingstype>IPLOS</Meldingstype>\n"
        "<Avsender><Kommunenummer>0301</Kommunenummer><Bydelsnummer>00</Bydelsnummer>"
        f"<Organisasjonsnummer>974778874</Organisasjonsnummer>{navn}</Avsender>\n"
        "<Mottaker><Navn>Statistisk sentralbyrå</Navn></Mottaker>\n"
        "<Uttak><Dato>2026-01-15</Dato><PeriodeFra>2025-01-01</PeriodeFra>"
        "<PeriodeTil>2025-12-31</PeriodeTil></Uttak>\n<Personer>\n"
        + "\n".join(persons) + "\n</Personer>\n</IPLOS>\n"
    )
    return text, encoding


def encode(text: str, encoding: str) -> bytes:
    codec, bom = {
        "UTF-8": ("utf-8", b""), "UTF-8-BOM": ("utf-8", b"\xef\xbb\xbf"),
        "UTF-16LE": ("utf-16-le", b"\xff\xfe"), "UTF-16BE": ("utf-16-be", b"\xfe\xff"),
        "ISO-8859-1": ("latin-1", b""), "windows-1252": ("cp1252", b""),
    }[encoding]
    # characters the encoding lacks become character references (in text and attributes only,
    # since element names are ASCII here)
    return bom + text.encode(codec, errors="xmlcharrefreplace")


def check_correct(data: bytes, encrypted: bytes, keys: Keys) -> None:
    opened = open_message(encrypted, keys)
    expected = input_persons(data)
    assert [p[0].strip() for p in opened.persons] == [fnr for fnr, _ in expected]
    for (_, _, root), (_, children) in zip(opened.persons, expected, strict=True):
        assert [canonical(c) for c in root if isinstance(c.tag, str)] == children


@SETTINGS
@given(document=iplos_document(), chunk=st.sampled_from([1, 2, 5, 64, 1 << 16]))
def test_well_formed_documents_round_trip(
    keys: Keys, document: tuple[str, str], chunk: int
) -> None:
    text, encoding = document
    data = encode(text, encoding)
    try:
        encrypted, summary = encrypt_bytes(data, keys, chunk=chunk)
    except IplosFault as fault:
        raise AssertionError(f"a valid document was refused: {fault.message}") from None
    check_correct(data, encrypted, keys)
    assert summary.persons == len(input_persons(data))


# --- malformed documents: mutations of valid ones -----------------------------------------------

@st.composite
def mutated(draw) -> bytes:
    text, encoding = draw(iplos_document())
    data = bytearray(encode(text, encoding))
    for _ in range(draw(st.integers(1, 3))):
        if not data:
            break
        start = draw(st.integers(0, len(data) - 1))
        end = draw(st.integers(start, min(len(data), start + 40)))
        action = draw(st.sampled_from(["delete", "insert", "replace", "truncate", "duplicate"]))
        if action == "delete":
            del data[start:end]
        elif action == "insert":
            data[start:start] = draw(st.sampled_from(
                [b"<", b">", b"</", b"&", b"\xff", b"\x00", b"<X>", b"</Person>", b"<Person>",
                 b"<!DOCTYPE IPLOS>", b"<!--", b"]]>", b"\xc3", b"&x;", b"\n"]))
        elif action == "replace":
            data[start:end] = draw(st.binary(max_size=end - start + 2))
        elif action == "truncate":
            del data[start:]
        else:
            data[start:start] = data[start:end]
    return bytes(data)


IPLOS_CORPUS = VECTORS / "iplos" / "fuzz-corpus"
KEY_FILE_CORPUS = VECTORS / "keyfiles" / "fuzz-corpus"


def check_reader(data: bytes, keys: Keys, chunk: int) -> None:
    """A documented fault with no fødselsnummer in it, or an input lxml agrees is XML that
    round-trips."""
    try:
        try:
            encrypted, _ = encrypt_bytes(data, keys, chunk=chunk)
        except IplosFault as fault:
            assert documented(fault.message), fault.message
            for number in FNR:
                assert number not in fault.message
            return
        # accepted: then it must be an XML document lxml agrees is well-formed, and round-trip
        try:
            input_persons(data)
        except etree.XMLSyntaxError as error:
            raise AssertionError(f"accepted a document lxml refuses: {error}") from None
        check_correct(data, encrypted, keys)
    except BaseException:
        keep_if_final(IPLOS_CORPUS, data)
        raise


@SETTINGS
@given(data=mutated(), chunk=st.sampled_from([1, 3, 64, 1 << 16]))
def test_malformed_documents_give_a_documented_fault_or_a_correct_result(
    keys: Keys, data: bytes, chunk: int
) -> None:
    check_reader(data, keys, chunk)


@pytest.mark.parametrize("path", corpus(IPLOS_CORPUS), ids=lambda p: p.name)
def test_iplos_fuzz_corpus_is_handled(keys: Keys, path: object) -> None:
    """Inputs that once broke the reader's properties, replayed in several cuts."""
    data = path.read_bytes()  # type: ignore[attr-defined]
    for chunk in (1, 7, 1 << 16):
        check_reader(data, keys, chunk)


@SETTINGS
@given(data=st.binary(max_size=300))
def test_arbitrary_bytes_never_give_a_traceback(keys: Keys, data: bytes) -> None:
    # accepted (it cannot be, at 300 bytes: the smallest IPLOS file is longer), it must be XML
    # lxml agrees is well-formed, and it must round-trip
    check_reader(data, keys, 7)


# --- key files and encrypted messages: any bytes give a fault of ours, never a traceback --------


KEY_FILE = (VECTORS / "keyfiles" / "utf-8.txt").read_bytes()


def check_key_file_as_lxml_reads_it(raw: bytes, key_file: object) -> None:
    """An accepted key file holds what an independent reader (lxml) finds in it."""
    import base64

    text = raw.decode("utf-8-sig") if not raw.startswith((b"\xff\xfe", b"\xfe\xff")) else (
        raw.decode("utf-16"))
    if text.startswith("<?xml"):
        text = text[text.index("?>") + 2 :]
    root = etree.fromstring(text.strip().encode("utf-8"))
    assert root.tag == "IPLOSKrypteringsnokler" and root.get("versjon") == "1"
    assert key_file.valid_from.isoformat() == root.get("gyldigFra")  # type: ignore[attr-defined]
    assert key_file.valid_to.isoformat() == root.get("gyldigTil")  # type: ignore[attr-defined]
    keys = {n.get("mottaker"): n for n in root.iterfind("Nokkel")}
    assert sorted(keys) == ["IPLOS", "TPF"] and len(root) == 2
    for recipient, key in (("TPF", key_file.tpf), ("IPLOS", key_file.iplos)):  # type: ignore[attr-defined]
        element = keys[recipient]
        assert key.key_id == element.get("id").strip()
        modulus = "".join(element.findtext("RSAKeyValue/Modulus").split())
        assert key.modulus == int.from_bytes(base64.b64decode(modulus, validate=True), "big")


@SETTINGS
@given(data=st.binary(max_size=400) | st.builds(
    lambda good, cut, junk: good[:cut] + junk + good[cut + len(junk):],
    st.just(KEY_FILE), st.integers(0, 2300), st.binary(min_size=1, max_size=8)))
def test_key_file_parser_never_tracebacks(data: bytes) -> None:
    check_key_file(data)


def check_key_file(data: bytes) -> None:
    """A key file fault of ours, or a key file that holds what lxml reads in it."""
    from ipis_core.faults import KeyFileFault
    from ipis_core.keyfile import parse_key_file

    try:
        try:
            key_file = parse_key_file(data)
        except KeyFileFault as fault:
            assert fault.message.startswith("Nøkkelfilen ") and "\n" not in fault.message
            return
        check_key_file_as_lxml_reads_it(data, key_file)  # accepted: then not garbage
    except BaseException:
        keep_if_final(KEY_FILE_CORPUS, data)
        raise


@pytest.mark.parametrize("path", corpus(KEY_FILE_CORPUS), ids=lambda p: p.name)
def test_key_file_fuzz_corpus_is_handled(path: object) -> None:
    """Inputs that once broke the key file reader's property."""
    check_key_file(path.read_bytes())  # type: ignore[attr-defined]


MESSAGE = VECTORS / "message"
GOLDEN = (MESSAGE / "kryptert.xml").read_bytes()


def open_golden(data: bytes) -> object:
    import io

    from ipis_core import decrypt

    tpf = decrypt.load_private_key((MESSAGE / "tpf-privat.pem").read_bytes())
    register = decrypt.load_private_key((MESSAGE / "iplos-privat.pem").read_bytes())
    return decrypt.open_message(io.BytesIO(data), tpf, register)


def opened_content(opened: object) -> tuple[object, ...]:
    return (opened.fodselsnumre, [(r.lopenummer, r.person_xml) for r in opened.records],  # type: ignore[attr-defined]
            opened.tpf.contact, opened.tpf.sender)  # type: ignore[attr-defined]


INTACT = opened_content(open_golden(GOLDEN))


@st.composite
def damaged_message(draw) -> bytes:  # type: ignore[no-untyped-def]
    data = bytearray(GOLDEN)
    for _ in range(draw(st.integers(1, 3))):
        start = draw(st.integers(0, len(data) - 1))
        end = draw(st.integers(start, min(len(data), start + 30)))
        replacement = draw(st.binary(max_size=6) | st.sampled_from(
            [b"", b"<", b"A", b"=", b"</xenc:CipherValue>", b"<!DOCTYPE x>", b"\xff"]))
        data[start:end] = replacement
    return bytes(data)


@SETTINGS
@given(data=damaged_message())
def test_decrypting_a_damaged_message_gives_a_fault_never_a_traceback(data: bytes) -> None:
    try:
        opened = open_golden(data)
    except IplosFault as fault:
        assert fault.message and "\n" not in fault.message
        for number in ("01814011026", "41824591006"):
            assert number not in fault.message
        return
    # accepted: the damage hit nothing that matters, so the content is the intact one
    assert opened_content(opened) == INTACT


_TPF_VALUE_START = GOLDEN.rindex(b"<xenc:CipherValue>") + len(b"<xenc:CipherValue>")
_TPF_VALUE_END = GOLDEN.rindex(b"</xenc:CipherValue>")
_BASE64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


@st.composite
def altered_tpf_ciphertext(draw) -> bytes:  # type: ignore[no-untyped-def]
    """The TPF layer's base64 with 1-3 characters changed into other base64 characters (the
    last 4 characters hold the padding and are left alone): still valid base64, so only the
    GCM tag can tell."""
    data = bytearray(GOLDEN)
    places = st.integers(_TPF_VALUE_START, _TPF_VALUE_END - 5)
    for at in draw(st.lists(places, min_size=1, max_size=3, unique=True)):
        data[at] = draw(st.sampled_from([c for c in _BASE64 if c != GOLDEN[at]]))
    return bytes(data)


@settings(SETTINGS, max_examples=40)
@given(data=altered_tpf_ciphertext())
def test_an_altered_tpf_ciphertext_is_refused_by_its_gcm_tag(data: bytes) -> None:
    import pytest

    from ipis_core.faults import DecryptionFailed

    assert data != GOLDEN
    with pytest.raises(DecryptionFailed) as caught:
        open_golden(data)
    assert caught.value.message == "TPF-laget kunne ikke dekrypteres: filen er endret eller skadet."
