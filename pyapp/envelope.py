"""The one reader of an encrypted message's clear envelope, as a stream (formats §3).

Used by ``ipis inspect``, the decryption (the TPF's side), the send module's upload and the
TPF's intake. Push parser: ``feed`` bytes as they arrive; it returns the bytes it has
validated so far, so a caller that stores the file writes only validated bytes; ``close``
checks the end and returns the rest. Memory stays flat whatever the input:

- A byte-level guard stands in front of expat. It cuts the stream into tokens (a text run and
  the tag after it) and bounds each at ``MAX_TOKEN_BYTES`` before anything is buffered, so a
  100 MB attribute, comment or name costs no more than a normal envelope: the parser only ever
  sees complete, small tokens. ``<!`` (comment, CDATA, DOCTYPE) and ``<?`` (processing
  instruction) after the XML declaration are refused at their second byte: nothing but fields.
- The one large text, the TPF layer's CipherValue (~1 GB at most), never reaches expat: the
  guard checks it as base64 piece by piece and hands it to ``on_cipher_text`` (the TPF's
  decryption) or drops it.
- Everything else is checked by ``envelope_grammar.ClearPartChecker``: structure, fixed
  algorithms (no downgrade), fixed Ids, the caller's key names, and each value's rule.

Standard library only (it runs in Pyodide too).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from enum import Enum
from typing import BinaryIO
from xml.parsers import expat

from .envelope_grammar import (
    ENVELOPE,
    SEPARATOR,
    ClearPartChecker,
    Element,
    decode_wrapped_key,
)
from .faults import (
    CipherValueInvalid,
    EmptyMessage,
    MarkupNotAllowed,
    NotUtf8,
    NotWellFormed,
    TokenTooLarge,
)
from .xmlenc import GCM_IV_BYTES, GCM_TAG_BYTES

CHUNK_BYTES = 1 << 20
# The longest token the envelope has: a base64 wrapped key of an 8192-bit RSA key is 1368
# bytes; a name of 150 characters written as character references about 1200.
MAX_TOKEN_BYTES = 2048

_WHITESPACE = b" \t\r\n"
_BASE64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
_PADDING_AND_WHITESPACE = b"=" + _WHITESPACE
_UTF8_BOM = b"\xef\xbb\xbf"
_DECLARATION = re.compile(
    rb"<\?xml\s+version\s*=\s*([\"'])1\.0\1"
    rb"(?:\s+encoding\s*=\s*([\"'])(?:[Uu][Tt][Ff]-8)\2)?"
    rb"(?:\s+standalone\s*=\s*([\"'])(?:yes|no)\3)?\s*\?>"
)
_ENCODING = re.compile(rb"\sencoding\s*=\s*[\"']([^\"']*)")
_TAG_SPECIAL = re.compile(rb"[>\"']")


@dataclass(frozen=True)
class WrappedKey:
    """An xenc:EncryptedKey after its checks: only RSA-OAEP SHA-256/MGF1-SHA-256."""

    key_name: str
    carried_name: str
    wrapped: bytes


@dataclass(frozen=True)
class SenderNumbers:
    kommunenummer: str
    bydelsnummer: str
    organisasjonsnummer: str


@dataclass(frozen=True)
class Envelope:
    """The clear part of an encrypted message: what the send module and the TPF may read."""

    meldingstype: str
    kommunenummer: str
    bydelsnummer: str
    organisasjonsnummer: str
    avsender_navn: str
    mottaker_navn: str
    mottaker_organisasjonsnummer: str
    tpf_key: WrappedKey
    size: int = 0

    @property
    def sender(self) -> SenderNumbers:
        return SenderNumbers(self.kommunenummer, self.bydelsnummer, self.organisasjonsnummer)

    def lines(self) -> list[tuple[str, str]]:
        return [
            ("Meldingstype", self.meldingstype),
            ("Avsender", f"kommunenummer {self.kommunenummer}, bydelsnummer "
             f"{self.bydelsnummer}, organisasjonsnummer {self.organisasjonsnummer}"
             + (f" ({self.avsender_navn})" if self.avsender_navn else "")),
            ("Mottaker", self.mottaker_navn
             + (f" ({self.mottaker_organisasjonsnummer})"
                if self.mottaker_organisasjonsnummer else "")),
            ("TPF-nøkkel", self.tpf_key.key_name),
            ("Innholdskryptering", "AES-256-GCM (xmlenc11#aes256-gcm)"),
            ("Nøkkeltransport", "RSA-OAEP med SHA-256 og MGF1-SHA-256 (xmlenc11#rsa-oaep)"),
            ("Størrelse", f"{self.size} byte"),
        ]


def wrapped_key(values: dict[str, str], key: str) -> WrappedKey:
    """The WrappedKey of a checked EncryptedKey from the checker's values (``key`` prefix)."""
    return WrappedKey(
        key_name=values[f"{key}.key_name"],
        carried_name=values.get(f"{key}.carried_name", ""),
        wrapped=decode_wrapped_key(values[f"{key}.wrapped"], "CipherValue"),
    )


def _sender(values: dict[str, str]) -> SenderNumbers:
    return SenderNumbers(
        values["kommunenummer"], values["bydelsnummer"], values["organisasjonsnummer"]
    )


class _State(Enum):
    """Where the guard is in the file."""

    START = "before the XML declaration (optional)"
    PROLOG = "before the root element: whitespace only"
    CONTENT = "inside the root element"
    STREAM = "inside the TPF layer's CipherValue"
    EPILOG = "after the root element: whitespace only"


class ClearPartReader:
    """Validates a message with a clear part and one streamed layer as its bytes arrive, by
    ``grammar``; see the module docstring. Two grammars: the encrypted message (formats §3,
    ``EnvelopeReader``) and the pseudonymised message the TPF sends the register (§4).

    ``key_names``: the key names accepted in the layer key's ``ds:KeyName`` (None: any that
    passes the rule, for ``ipis inspect``). ``on_cipher_text``: receives the layer's base64
    text. ``on_sender``: called with the clear Avsender as soon as it has been read.
    """

    def __init__(
        self,
        grammar: Element,
        key_names: Collection[str] | None = None,
        on_cipher_text: Callable[[bytes], None] | None = None,
        on_sender: Callable[[SenderNumbers], None] | None = None,
    ) -> None:
        self._on_cipher_text = on_cipher_text
        self._checker = ClearPartChecker(
            grammar,
            key_names,
            (lambda values: on_sender(_sender(values))) if on_sender is not None else None,
        )
        parser = expat.ParserCreate(encoding="UTF-8", namespace_separator=SEPARATOR)
        parser.buffer_text = True
        parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        if hasattr(parser, "SetReparseDeferralEnabled"):  # expat >= 2.6: parse what we feed
            parser.SetReparseDeferralEnabled(False)
        # The guard refuses all of these first; the handlers are the second line.
        parser.StartDoctypeDeclHandler = self._refuse_markup
        parser.CommentHandler = self._refuse_markup
        parser.ProcessingInstructionHandler = self._refuse_markup
        parser.StartCdataSectionHandler = self._refuse_markup
        parser.StartNamespaceDeclHandler = self._checker.namespace
        parser.StartElementHandler = self._checker.start
        parser.EndElementHandler = self._checker.end
        parser.CharacterDataHandler = self._checker.text
        self._parser = parser
        self._state = _State.START
        self._hold = b""  # received, not yet validated: at most one token (bounded)
        self._failed = False
        self._closed = False
        self._cipher_chars = 0
        self._cipher_padding = 0
        self._padding_seen = False
        self.bytes_read = 0

    # --- public API -------------------------------------------------------------------------

    def feed(self, chunk: bytes) -> bytes:
        """Read the next bytes; return those now validated (a prefix of what is unreturned)."""
        if self._failed or self._closed:
            raise RuntimeError("the reader has stopped")
        self.bytes_read += len(chunk)
        data = self._hold + chunk if self._hold else chunk
        try:
            done = self._scan(data, final=False)
        except BaseException:
            self._failed = True
            raise
        self._hold = data[done:]
        return data[:done]

    def close(self) -> bytes:
        """The end of the file: check what is left; return the last validated bytes."""
        if self._failed or self._closed:
            raise RuntimeError("the reader has stopped")
        data, self._hold = self._hold, b""
        try:
            done = self._scan(data, final=True)
            assert done == len(data)
            if not self._checker.started:
                raise EmptyMessage()
            self._parse(b"", final=True)
            if not self._checker.done:
                raise NotWellFormed("filen slutter inne i et element")
        except BaseException:
            self._failed = True
            raise
        self._closed = True
        return data

    @property
    def values(self) -> dict[str, str]:
        """The clear part's values read so far, by the grammar's keys."""
        return self._checker.values

    @property
    def closed(self) -> bool:
        return self._closed

    # --- the guard --------------------------------------------------------------------------

    def _scan(self, data: bytes, final: bool) -> int:
        """Validate whole tokens of ``data``; return how many bytes are done."""
        pos = 0
        while True:
            state = self._state
            if state is _State.STREAM:
                pos = self._stream(data, pos)
                if pos == len(data):
                    return pos
                continue  # at the '<' that ends the CipherValue
            if state is _State.START:
                step = self._declaration(data, final)
                if step < 0:
                    return 0
                pos = step
                continue
            if pos == len(data):
                return pos
            step = self._token(data, pos, final)
            if step < 0:
                return pos
            pos = step

    def _declaration(self, data: bytes, final: bool) -> int:
        """The start: a UTF-8 BOM and the XML declaration, both optional. -1: need more."""
        if len(data) < 8 and not final:  # enough to tell a BOM, a declaration, NUL bytes
            return -1
        if data.startswith((b"\xff\xfe", b"\xfe\xff")) or data[:4].count(b"\x00"):
            raise NotUtf8("UTF-16 eller UTF-32")
        start = len(_UTF8_BOM) if data.startswith(_UTF8_BOM) else 0
        if data[start : start + 5] != b"<?xml":
            self._parse(data[:start])
            self._state = _State.PROLOG
            return start
        end = data.find(b"?>", start, start + MAX_TOKEN_BYTES)
        if end < 0:
            if len(data) - start > MAX_TOKEN_BYTES:
                raise TokenTooLarge("XML-deklarasjonen")
            if final:
                raise NotWellFormed("XML-deklarasjonen slutter ikke")
            return -1
        end += 2
        declaration = data[start:end]
        if not _DECLARATION.fullmatch(declaration):
            encoding = _ENCODING.search(declaration)
            if encoding and encoding.group(1).lower() != b"utf-8":
                raise NotUtf8("en annen tegnkoding enn UTF-8 er deklarert")
            raise NotWellFormed("XML-deklarasjonen er ikke gyldig")
        self._parse(data[:end])
        self._state = _State.PROLOG
        return end

    def _token(self, data: bytes, pos: int, final: bool) -> int:
        """One text run and the tag after it; -1 when it is not all here yet."""
        limit = pos + MAX_TOKEN_BYTES
        lt = data.find(b"<", pos, limit + 1)
        text_end = lt if lt >= 0 else min(len(data), limit + 1)
        if self._state is not _State.CONTENT and data[pos:text_end].strip(_WHITESPACE):
            raise NotWellFormed("tekst utenfor rotelementet")
        if lt < 0:
            if len(data) - pos > MAX_TOKEN_BYTES:
                raise TokenTooLarge("tekst")
            if final:
                if self._state is _State.CONTENT:
                    raise NotWellFormed("filen slutter inne i et element")
                self._parse(data[pos:])  # whitespace before or after the root
                return len(data)
            return -1
        if lt + 1 >= len(data):
            if final:
                raise NotWellFormed("filen slutter med '<'")
            return -1
        if data[lt + 1] in b"!?":
            bang = data[lt + 1] == 0x21  # '!'
            raise MarkupNotAllowed("DOCTYPE, kommentar eller CDATA" if bang else "instruksjon")
        if self._state is _State.EPILOG:
            raise NotWellFormed("et element etter rotelementet")
        gt = _tag_end(data, lt, min(len(data), lt + MAX_TOKEN_BYTES))
        if gt < 0:
            if len(data) - lt > MAX_TOKEN_BYTES:
                raise TokenTooLarge("tagg")
            if final:
                raise NotWellFormed("filen slutter inne i en tagg")
            return -1
        self._parse(data[pos : gt + 1])
        if self._checker.streaming:
            self._state = _State.STREAM
        elif self._checker.done:
            self._state = _State.EPILOG
        else:
            self._state = _State.CONTENT
        return gt + 1

    def _stream(self, data: bytes, pos: int) -> int:
        """The TPF layer's CipherValue: base64 checked as it passes, then dropped or handed on."""
        lt = data.find(b"<", pos)
        end = len(data) if lt < 0 else lt
        if end > pos:
            piece = data[pos:end]
            # One C pass: what is not base64 must be whitespace, and is counted as such.
            rest = piece.translate(None, _BASE64)
            if rest.translate(None, _WHITESPACE):
                raise CipherValueInvalid("CipherValue er ikke base64")
            equals = 0 if self._padding_seen else piece.find(b"=")
            if equals >= 0:
                if piece[equals:].translate(None, _PADDING_AND_WHITESPACE):
                    raise CipherValueInvalid("tegn etter utfyllingen i CipherValue")
                self._padding_seen = True
                self._cipher_padding += piece.count(b"=")
            self._cipher_chars += len(piece) - len(rest)
            if self._on_cipher_text is not None:
                self._on_cipher_text(piece)
        if lt >= 0:
            self._end_stream()
        return end

    def _end_stream(self) -> None:
        chars, padding = self._cipher_chars, self._cipher_padding
        if chars % 4 or padding > 2:
            raise CipherValueInvalid("CipherValue er avkortet")
        if chars // 4 * 3 - padding < GCM_IV_BYTES + GCM_TAG_BYTES:
            raise CipherValueInvalid("CipherValue er for kort")
        self._checker.streamed_text_checked()
        self._state = _State.CONTENT

    def _parse(self, data: bytes, final: bool = False) -> None:
        try:
            self._parser.Parse(data, final)
        except expat.ExpatError as error:
            raise NotWellFormed(f"expat-feil {error.code}") from None

    def _refuse_markup(self, *_: object) -> None:
        raise MarkupNotAllowed("markering som ikke er et felt")


class EnvelopeReader(ClearPartReader):
    """The encrypted message's clear envelope (formats §3): ``key_names`` are the TPF's."""

    def __init__(
        self,
        key_names: Collection[str] | None = None,
        on_cipher_text: Callable[[bytes], None] | None = None,
        on_sender: Callable[[SenderNumbers], None] | None = None,
    ) -> None:
        super().__init__(ENVELOPE, key_names, on_cipher_text, on_sender)

    @property
    def header(self) -> Envelope:
        """The clear part read so far: complete once the TPF layer's CipherValue has begun."""
        values = self.values
        return Envelope(
            meldingstype=values["meldingstype"],
            kommunenummer=values["kommunenummer"],
            bydelsnummer=values["bydelsnummer"],
            organisasjonsnummer=values["organisasjonsnummer"],
            avsender_navn=values.get("avsender_navn", ""),
            mottaker_navn=values["mottaker_navn"],
            mottaker_organisasjonsnummer=values.get("mottaker_organisasjonsnummer", ""),
            tpf_key=wrapped_key(values, "tpf_key"),
            size=self.bytes_read,
        )

    @property
    def envelope(self) -> Envelope:
        """The whole clear part, after ``close``."""
        assert self.closed, "close() first"
        return self.header


def _tag_end(data: bytes, lt: int, limit: int) -> int:
    """Index of the '>' that ends the tag starting at ``lt`` (quotes skipped), or -1."""
    index = lt + 1
    while True:
        found = _TAG_SPECIAL.search(data, index, limit)
        if found is None:
            return -1
        at = found.start()
        if data[at] == 0x3E:  # '>'
            return at
        close = data.find(data[at : at + 1], at + 1, limit)
        if close < 0:
            return -1
        index = close + 1


def read_envelope(
    source: BinaryIO,
    key_names: Collection[str] | None = None,
    on_cipher_text: Callable[[bytes], None] | None = None,
) -> Envelope:
    """Read and validate a whole encrypted message from a binary stream."""
    reader = EnvelopeReader(key_names, on_cipher_text)
    while chunk := source.read(CHUNK_BYTES):
        reader.feed(chunk)
    reader.close()
    return reader.envelope
