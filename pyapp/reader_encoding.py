"""What the data file's first bytes say: an XML document at all, its encoding, its declaration.

The reader hands expat UTF-8 only, so expat's own view of the XML declaration is overruled;
what the declaration says is checked here instead (formats §1 encodings: a BOM wins over the
declaration; any other declared encoding is refused by name).
"""

from __future__ import annotations

import codecs
import re

from . import faults

SNIFF_BYTES = 1024  # the start the decision is taken on (an XML declaration is far shorter)

# Codecs of formats §1 (as ``codecs.lookup`` names them); US-ASCII is a subset of them all.
SUPPORTED_CODECS = frozenset(
    {"utf-8", "utf-16", "utf-16-le", "utf-16-be", "latin-1", "iso8859-1", "cp1252", "ascii"}
)
_BOMS = (
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)
_UTF16_WITHOUT_BOM = ((b"<\x00?\x00", "utf-16-le"), (b"\x00<\x00?", "utf-16-be"))

_XML_WHITESPACE = " \t\r\n"
_DECLARATION_RE = re.compile(r"<\?xml[ \t\r\n]")  # not <?xml-stylesheet …?>, an instruction
_VERSION_RE = re.compile(
    r"<\?xml[ \t\r\n]+version[ \t\r\n]*=[ \t\r\n]*(?:\"([^\"<>]*)\"|'([^'<>]*)')"
)
_SUPPORTED_VERSION_RE = re.compile(r"1\.[0-9]+")  # XML 1.0 fifth edition: VersionNum
_ENCODING_RE = re.compile(r"[ \t\r\n]encoding[ \t\r\n]*=[ \t\r\n]*[\"']([A-Za-z0-9._-]+)[\"']")


def sniff(start: bytes) -> tuple[str, int]:
    """The document's codec and how many BOM bytes to skip; raise when it is no XML file.

    ``start`` is the file's first ``SNIFF_BYTES`` (or the whole file when shorter)."""
    codec, bom = _codec_by_marks(start)
    # Latin-1 maps every byte, so any ASCII-compatible file shows its first characters.
    text = codecs.getincrementaldecoder(codec or "latin-1")("replace").decode(start[bom:])
    content = text.lstrip(_XML_WHITESPACE)
    if content and not content.startswith("<"):
        # %PDF, PK\x03\x04 (docx, xlsx, zip), D0 CF 11 E0 (doc, xls), PNG, JPEG, GIF, a CSV …
        raise faults.not_iplos_file()
    if not _DECLARATION_RE.match(text):
        return codec or "utf-8", bom
    _check_version(text)
    if codec is not None:
        return codec, bom
    return _declared_codec(text[: text.find("?>")]), 0


def _codec_by_marks(start: bytes) -> tuple[str | None, int]:
    for bom, codec in _BOMS:
        if start.startswith(bom):
            return codec, len(bom)
    for mark, codec in _UTF16_WITHOUT_BOM:
        if start.startswith(mark):
            return codec, 0
    return None, 0


def _check_version(text: str) -> None:
    match = _VERSION_RE.match(text)
    if match is None:
        return  # no version: expat refuses the declaration itself
    version = match.group(1) if match.group(1) is not None else match.group(2)
    if not _SUPPORTED_VERSION_RE.fullmatch(version):
        raise faults.bad_xml_version(1 + text.count("\n", 0, match.end()))


def _declared_codec(declaration: str) -> str:
    match = _ENCODING_RE.search(declaration)
    if match is None:
        return "utf-8"
    declared = match.group(1)
    try:
        codec = codecs.lookup(declared).name
    except LookupError:
        raise faults.unknown_encoding(declared) from None
    if codec not in SUPPORTED_CODECS:
        raise faults.unknown_encoding(declared)
    if codec.startswith("utf-16"):  # declared UTF-16 but no BOM and ASCII bytes: contradiction
        raise faults.bad_characters(1)
    return codec


class Utf8Transcoder:
    """The document's bytes as UTF-8 for expat, counting lines so a decoding fault has one."""

    def __init__(self, codec: str) -> None:
        # UTF-8 passes through: expat checks it itself, at C speed.
        self._decoder = None if codec == "utf-8" else codecs.getincrementaldecoder(codec)("strict")
        self._line = 1

    def __call__(self, chunk: bytes, final: bool) -> bytes:
        if self._decoder is None:
            return chunk
        try:
            text = self._decoder.decode(chunk, final)
        except UnicodeDecodeError as error:
            good = error.object[: error.start].decode(error.encoding, "replace")
            raise faults.bad_characters(self._line + good.count("\n")) from None
        self._line += text.count("\n")
        return text.encode("utf-8")
