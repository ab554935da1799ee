"""Reading the clear envelope of an encrypted message, as a stream.

The envelope is small except for one text node: the TPF layer's CipherValue, as large as the
file. The parser keeps every other element in a small tree and hands that one text node to a
callback piece by piece (or drops it, for ``ipis inspect``). Standard library only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO
from xml.parsers import expat

from .faults import EncryptedFormatFault
from .message import FORMAT_VERSION, ROOT
from .xmlenc import (
    AES256_GCM,
    DS_NS,
    MGF1_SHA256,
    RSA_OAEP,
    SHA256,
    TYPE_ELEMENT,
    XENC11_NS,
    XENC_NS,
)

CHUNK_BYTES = 1 << 20
_SEPARATOR = " "  # expat joins namespace URI and local name with this


def qname(namespace: str, local: str) -> str:
    return f"{namespace}{_SEPARATOR}{local}"


ENCRYPTED_DATA = qname(XENC_NS, "EncryptedData")
ENCRYPTED_KEY = qname(XENC_NS, "EncryptedKey")
ENCRYPTION_METHOD = qname(XENC_NS, "EncryptionMethod")
CIPHER_DATA = qname(XENC_NS, "CipherData")
CIPHER_VALUE = qname(XENC_NS, "CipherValue")
CARRIED_KEY_NAME = qname(XENC_NS, "CarriedKeyName")
KEY_INFO = qname(DS_NS, "KeyInfo")
KEY_NAME = qname(DS_NS, "KeyName")
DIGEST_METHOD = qname(DS_NS, "DigestMethod")
MGF = qname(XENC11_NS, "MGF")

# Path of the one streamed text node: root / EncryptedData / CipherData / CipherValue.
_STREAMED_PATH = (ROOT, ENCRYPTED_DATA, CIPHER_DATA, CIPHER_VALUE)


@dataclass
class Element:
    name: str
    attributes: dict[str, str]
    children: list[Element] = field(default_factory=list)
    text_parts: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.text_parts).strip()

    def find(self, *names: str) -> Element | None:
        node: Element | None = self
        for name in names:
            assert node is not None
            node = next((c for c in node.children if c.name == name), None)
            if node is None:
                return None
        return node

    def require(self, *names: str) -> Element:
        node = self.find(*names)
        if node is None:
            local_names = "/".join(n.split(_SEPARATOR)[-1] for n in names)
            raise EncryptedFormatFault(f"mangler {local_names}")
        return node

    def findtext(self, *names: str) -> str:
        node = self.find(*names)
        return node.text if node is not None else ""


@dataclass(frozen=True)
class WrappedKey:
    """An xenc:EncryptedKey after the algorithm checks: only RSA-OAEP SHA-256/MGF1-SHA-256."""

    key_name: str
    carried_name: str
    wrapped: bytes


def check_encrypted_key(element: Element) -> WrappedKey:
    """Refuse any EncryptedKey that is not exactly the profile's (no downgrade)."""
    import binascii

    method = element.require(ENCRYPTION_METHOD)
    if method.attributes.get("Algorithm") != RSA_OAEP:
        raise EncryptedFormatFault("nøkkeltransport er ikke rsa-oaep")
    digest = method.require(DIGEST_METHOD)
    if digest.attributes.get("Algorithm") != SHA256:
        raise EncryptedFormatFault("OAEP-sammendrag er ikke sha256")
    mgf = method.require(MGF)  # absent would mean MGF1 with SHA-1
    if mgf.attributes.get("Algorithm") != MGF1_SHA256:
        raise EncryptedFormatFault("MGF er ikke mgf1sha256")
    try:
        wrapped = binascii.a2b_base64(element.require(CIPHER_DATA, CIPHER_VALUE).text)
    except ValueError:  # binascii.Error, or a non-ASCII character
        raise EncryptedFormatFault("CipherValue er ikke base64") from None
    return WrappedKey(
        key_name=element.findtext(KEY_INFO, KEY_NAME),
        carried_name=element.findtext(CARRIED_KEY_NAME),
        wrapped=wrapped,
    )


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


class _StopParsing(Exception):
    pass


class EnvelopeParser:
    """Parses an encrypted message; ``on_cipher_text`` gets the TPF layer's base64 text."""

    def __init__(self, on_cipher_text: Callable[[str], None] | None, stop_at_cipher: bool = False):
        self._on_cipher_text = on_cipher_text
        self._stop_at_cipher = stop_at_cipher
        self._parser = expat.ParserCreate(namespace_separator=_SEPARATOR)
        self._parser.buffer_text = True
        self._parser.buffer_size = 1 << 16
        self._parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        self._parser.StartDoctypeDeclHandler = self._refuse_doctype
        self._parser.StartElementHandler = self._start
        self._parser.EndElementHandler = self._end
        self._parser.CharacterDataHandler = self._text
        self._stack: list[Element] = []
        self._path: list[str] = []
        self.root: Element | None = None
        self._streaming = False

    def _refuse_doctype(self, *_: object) -> None:
        raise EncryptedFormatFault("DOCTYPE er ikke tillatt")

    def _start(self, name: str, attributes: dict[str, str]) -> None:
        element = Element(name, attributes)
        if self._stack:
            self._stack[-1].children.append(element)
        elif name != ROOT:
            raise EncryptedFormatFault(f"rotelementet er {name.split(_SEPARATOR)[-1]}")
        else:
            self.root = element
        self._stack.append(element)
        self._path.append(name)
        if tuple(self._path) == _STREAMED_PATH:
            if self._stop_at_cipher:
                raise _StopParsing()
            self._streaming = True

    def _end(self, _name: str) -> None:
        self._stack.pop()
        self._path.pop()
        self._streaming = False

    def _text(self, text: str) -> None:
        if self._streaming:
            if self._on_cipher_text is not None:
                self._on_cipher_text(text)
        elif self._stack:
            element = self._stack[-1]
            if sum(len(t) for t in element.text_parts) + len(text) > 1 << 20:
                raise EncryptedFormatFault("uventet stor tekst i konvolutten")
            element.text_parts.append(text)

    def parse(self, source: BinaryIO) -> Element:
        try:
            while chunk := source.read(CHUNK_BYTES):
                self._parser.Parse(chunk, False)
            self._parser.Parse(b"", True)
        except _StopParsing:
            pass
        except expat.ExpatError as error:
            raise EncryptedFormatFault(f"ikke gyldig XML ({error.code})") from None
        except LookupError:  # an encoding declaration expat does not know
            raise EncryptedFormatFault("ukjent tegnsett") from None
        if self.root is None:
            raise EncryptedFormatFault("tom fil")
        return self.root


def read_envelope(root: Element, size: int = 0) -> Envelope:
    """Check the clear envelope's structure and algorithms; refuse anything else."""
    if root.attributes.get("versjon") != FORMAT_VERSION:
        raise EncryptedFormatFault("ukjent versjon")
    names = [c.name for c in root.children]
    if names != ["Meldingstype", "Avsender", "Mottaker", ENCRYPTED_DATA]:
        raise EncryptedFormatFault("feil elementer i klartekst")
    encrypted = root.require(ENCRYPTED_DATA)
    if encrypted.attributes.get("Type") != TYPE_ELEMENT:
        raise EncryptedFormatFault("TPF-laget har feil Type")
    if encrypted.require(ENCRYPTION_METHOD).attributes.get("Algorithm") != AES256_GCM:
        raise EncryptedFormatFault("TPF-laget er ikke aes256-gcm")
    tpf_key = check_encrypted_key(encrypted.require(KEY_INFO, ENCRYPTED_KEY))
    encrypted.require(CIPHER_DATA, CIPHER_VALUE)
    return Envelope(
        meldingstype=root.findtext("Meldingstype"),
        kommunenummer=root.findtext("Avsender", "Kommunenummer"),
        bydelsnummer=root.findtext("Avsender", "Bydelsnummer"),
        organisasjonsnummer=root.findtext("Avsender", "Organisasjonsnummer"),
        avsender_navn=root.findtext("Avsender", "Navn"),
        mottaker_navn=root.findtext("Mottaker", "Navn"),
        mottaker_organisasjonsnummer=root.findtext("Mottaker", "Organisasjonsnummer"),
        tpf_key=tpf_key,
        size=size,
    )
