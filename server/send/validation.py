"""Streaming validation of an uploaded encrypted message (formats §3), in one pass.

The upload may be 1 GB, nearly all of it one base64 text node (the TPF layer's CipherValue),
so no full tree is ever built: lxml parses the bytes as they arrive, feeding a parser target
that rebuilds a small skeleton of the document (elements, attributes, short texts). The
CipherValue text is checked piece by piece for base64 and replaced by a placeholder; the
skeleton is then validated against the project's XSD. Memory stays flat whatever the size.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree  # type: ignore[import-untyped]

from ipis_core.xmlenc import DS_NS, XENC11_NS, XENC_NS

ROOT = "IPLOSKryptert"
CLEARTEXT_ROOT = "IPLOS"
MAX_ELEMENTS = 500  # the envelope has about 20
MAX_TEXT_CHARS = 64 * 1024  # any text but the TPF layer's CipherValue
_PLACEHOLDER = "AAAA"  # stands in for the CipherValue in the skeleton (valid base64)

# Every element the encrypted format knows (namespace, local name); anything else is reported
# by name before the XSD is consulted, as the seed's send module did.
KNOWN_ELEMENTS = frozenset(
    {
        ("", ROOT),
        ("", "Meldingstype"),
        ("", "Avsender"),
        ("", "Kommunenummer"),
        ("", "Bydelsnummer"),
        ("", "Organisasjonsnummer"),
        ("", "Navn"),
        ("", "Fagsystem"),
        ("", "Mottaker"),
        (XENC_NS, "EncryptedData"),
        (XENC_NS, "EncryptionMethod"),
        (XENC_NS, "EncryptedKey"),
        (XENC_NS, "CipherData"),
        (XENC_NS, "CipherValue"),
        (XENC_NS, "CarriedKeyName"),
        (DS_NS, "KeyInfo"),
        (DS_NS, "KeyName"),
        (DS_NS, "DigestMethod"),
        (XENC11_NS, "MGF"),
    }
)
_PREFIXES = {XENC_NS: "xenc", XENC11_NS: "xenc11", DS_NS: "ds"}
_STREAMED_PATH = (
    ROOT,
    f"{{{XENC_NS}}}EncryptedData",
    f"{{{XENC_NS}}}CipherData",
    f"{{{XENC_NS}}}CipherValue",
)
_NOT_BASE64 = re.compile(r"[^A-Za-z0-9+/=\s]")
_AFTER_PADDING = re.compile(r"[^=\s]")
_WHITESPACE = re.compile(r"\s+")


class UploadFault(Exception):
    """The upload is refused; ``message`` is shown to the user exactly as it is."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotWellFormed(UploadFault):
    def __init__(self) -> None:
        super().__init__("Feil ved sending av fil; Ikke gyldig XML.")


class UnknownElement(UploadFault):
    def __init__(self, tag: str) -> None:
        super().__init__(f"Valideringsfeil. Ukjent tag navn: {tag}")
        self.tag = tag


class NotEncryptedFormat(UploadFault):
    """Not the encrypted format; ``cleartext`` when it is an unencrypted IPLOS file."""

    def __init__(self, cleartext: bool = False) -> None:
        super().__init__("Ugyldig format på kryptert melding. Kjøringen avsluttes")
        self.cleartext = cleartext


class SenderMismatch(UploadFault):
    def __init__(self, file_k: str, file_b: str, login_k: str, login_b: str) -> None:
        super().__init__(
            f"Kommunenummer {file_k} (bydelsnummer {file_b}) i den krypterte filen stemmer ikke "
            f"med kommunenummer {login_k} (bydelsnummer {login_b}) som du logget inn med. "
            "Filen er ikke sendt. Endre kommunenummeret i IPLOS-datafilen og krypter filen på "
            "nytt."
        )


def display_name(tag: str) -> str:
    """``{ns}local`` as the file most likely spelled it (xenc:…, ds:…, or the bare name)."""
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        prefix = _PREFIXES.get(namespace)
        return f"{prefix}:{local}" if prefix else local
    return tag


def _split(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return namespace, local
    return "", tag


@dataclass(frozen=True)
class EnvelopeSummary:
    kommunenummer: str
    bydelsnummer: str
    organisasjonsnummer: str
    tpf_key_name: str


class _SkeletonTarget:
    """lxml parser target: builds the skeleton and checks the one large text as it streams."""

    def __init__(self, login_kommunenummer: str, login_bydelsnummer: str) -> None:
        self._login = (login_kommunenummer, login_bydelsnummer)
        self._stack: list[Any] = []
        self._path: list[str] = []
        self._text: list[str] = []
        self._text_len = 0
        self._streaming = False
        self._padding_seen = False
        self._base64_chars = 0
        self._elements = 0
        self.root: Any = None

    # lxml calls these -------------------------------------------------------------------

    def doctype(self, *_args: object) -> None:
        raise NotEncryptedFormat()

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        if not self._stack:
            if tag != ROOT:
                raise NotEncryptedFormat(cleartext=tag == CLEARTEXT_ROOT)
        elif _split(tag) not in KNOWN_ELEMENTS:
            raise UnknownElement(display_name(tag))
        self._elements += 1
        if self._elements > MAX_ELEMENTS:
            raise NotEncryptedFormat()
        self._flush_text()
        if self._stack:
            element = etree.SubElement(self._stack[-1], tag, dict(attrib))
        else:
            element = etree.Element(tag, dict(attrib))
            self.root = element
        self._stack.append(element)
        self._path.append(tag)
        self._streaming = tuple(self._path) == _STREAMED_PATH

    def data(self, text: str) -> None:
        if self._streaming:
            self._check_base64(text)
            return
        self._text_len += len(text)
        if self._text_len > MAX_TEXT_CHARS:
            raise NotEncryptedFormat()
        self._text.append(text)

    def end(self, tag: str) -> None:
        if self._streaming:
            if self._base64_chars % 4 != 0 or self._base64_chars == 0:
                raise NotEncryptedFormat()
            self._stack[-1].text = _PLACEHOLDER
            self._streaming = False
        else:
            self._flush_text()
        element = self._stack.pop()
        self._path.pop()
        if tag == "Avsender" and len(self._stack) == 1:
            self._check_sender(element)

    def comment(self, _text: str) -> None:
        pass

    def pi(self, _target: str, _data: str | None = None) -> None:
        pass

    def close(self) -> Any:
        return self.root

    # helpers ----------------------------------------------------------------------------

    def _flush_text(self) -> None:
        if not self._text:
            return
        text = "".join(self._text)
        self._text = []
        self._text_len = 0
        if not self._stack:
            return
        parent = self._stack[-1]
        if len(parent):
            last = parent[-1]
            last.tail = (last.tail or "") + text
        else:
            parent.text = (parent.text or "") + text

    def _check_base64(self, text: str) -> None:
        if _NOT_BASE64.search(text):
            raise NotEncryptedFormat()
        if self._padding_seen:
            if _AFTER_PADDING.search(text):
                raise NotEncryptedFormat()
        elif "=" in text:
            self._padding_seen = True
            if _AFTER_PADDING.search(text, text.index("=")):
                raise NotEncryptedFormat()
        if _WHITESPACE.search(text):
            text = _WHITESPACE.sub("", text)
        self._base64_chars += len(text)

    def _check_sender(self, avsender: Any) -> None:
        kommune = (avsender.findtext("Kommunenummer") or "").strip()
        bydel = (avsender.findtext("Bydelsnummer") or "").strip()
        if not kommune or not bydel:
            return  # the XSD reports the missing element
        if (kommune, bydel) != self._login:
            raise SenderMismatch(kommune, bydel, *self._login)


class EnvelopeSchema:
    """The XSD of the clear envelope, loaded once per app; validation is serialised."""

    def __init__(self, xsd_path: Path) -> None:
        self.path = xsd_path
        self._schema = etree.XMLSchema(etree.parse(str(xsd_path)))
        self._lock = threading.Lock()

    def is_valid(self, skeleton: Any) -> bool:
        with self._lock:
            return bool(self._schema.validate(skeleton))


class StreamingValidator:
    """Feed the upload's bytes as they arrive; ``finish()`` returns the envelope or raises."""

    def __init__(
        self, schema: EnvelopeSchema, login_kommunenummer: str, login_bydelsnummer: str
    ) -> None:
        self._schema = schema
        self._target = _SkeletonTarget(login_kommunenummer, login_bydelsnummer)
        self._parser = etree.XMLParser(
            target=self._target,
            huge_tree=True,
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            remove_comments=True,
            remove_pis=True,
        )
        self._fed = False

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        self._fed = True
        try:
            self._parser.feed(chunk)
        except etree.XMLSyntaxError:
            raise NotWellFormed() from None

    def finish(self) -> EnvelopeSummary:
        if not self._fed:
            raise NotEncryptedFormat()
        try:
            root = self._parser.close()
        except etree.XMLSyntaxError:
            raise NotWellFormed() from None
        if root is None:
            raise NotWellFormed()
        if not self._schema.is_valid(root):
            raise NotEncryptedFormat()
        key_name = root.findtext(
            f"{{{XENC_NS}}}EncryptedData/{{{DS_NS}}}KeyInfo/{{{XENC_NS}}}EncryptedKey/"
            f"{{{DS_NS}}}KeyInfo/{{{DS_NS}}}KeyName"
        )
        return EnvelopeSummary(
            kommunenummer=(root.findtext("Avsender/Kommunenummer") or "").strip(),
            bydelsnummer=(root.findtext("Avsender/Bydelsnummer") or "").strip(),
            organisasjonsnummer=(root.findtext("Avsender/Organisasjonsnummer") or "").strip(),
            tpf_key_name=(key_name or "").strip(),
        )
