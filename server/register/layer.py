"""The one layer of a message the TPF sends the register (§4 and §6), decrypted as it streams.

Both messages are a clear part read by the one envelope reader (with their own grammar) and
one ``xenc:EncryptedData`` whose key is wrapped for the register's key. ``read_layer`` reads
the file once: the clear part is checked as it passes, the layer's base64 is decoded and
AES-256-GCM-decrypted piece by piece, and the plaintext goes to the message's parser as it is
decrypted, so memory stays flat in the file's size.

The layer's GCM tag is checked at the end. Until then the plaintext is unauthenticated, so the
parser's consumer writes into one transaction that is rolled back on any fault. And the tag
decides what went wrong (the core's ``TagFirst``): once the parser refuses something, the rest
is still decrypted (no longer parsed), and a failing tag reports ``LayerAltered`` — the altered
layer, not the garbage it decrypted to.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from cryptography.hazmat.primitives.asymmetric import rsa

# The core's streamed base64 and GCM opener (the TPF's decryption uses them too).
from ipis_core.decrypt import TagFirst, _Base64Decoder, _GcmOpener, unwrap_key
from ipis_core.envelope import CHUNK_BYTES, ClearPartReader, WrappedKey, wrapped_key
from ipis_core.envelope_grammar import MAPPING_ROOT
from ipis_core.faults import (
    AlgorithmNotAllowed,
    CipherValueInvalid,
    DeliveryAlgorithmNotAllowed,
    DeliveryUnreadable,
    FodselsnummerInClearPart,
    IplosFault,
    NotEncryptedFormat,
    NotWellFormed,
    UnknownEnvelopeElement,
)

from .models import MAPPING, MESSAGE

# The clear root's name, after an optional BOM, XML declaration and whitespace.
_ROOT = re.compile(rb"(?:\xef\xbb\xbf)?(?:<\?xml[^>]{0,200}\?>)?[ \t\r\n]*<([A-Za-z_][\w.\-]*)")
HEAD_LIMIT = 512


def kind_of(head: bytes) -> str | None:
    """Which message a file's first bytes begin: the pseudonym mapping (§6) by its root, a
    submission (§4) otherwise (its reader refuses anything else, saying why); None while
    fewer than ``HEAD_LIMIT`` bytes do not show the root yet."""
    found = _ROOT.match(head)
    if found is None:
        return None if len(head) < HEAD_LIMIT else MESSAGE
    return MAPPING if found.group(1) == MAPPING_ROOT.encode() else MESSAGE


class LayerParser(Protocol):
    """Reads a layer's plaintext as it is decrypted."""

    def feed(self, data: bytes) -> None: ...

    def close(self) -> None:
        """The layer's end (its tag was good): refuse what is incomplete, hand on the rest."""


def transport_key(reader: ClearPartReader) -> WrappedKey:
    """The layer's wrapped key (``register_key`` in both grammars)."""
    return wrapped_key(reader.values, "register_key")


class _Writes:
    """A layer parser as the sink ``TagFirst`` writes to."""

    def __init__(self, parser: LayerParser) -> None:
        self.write = parser.feed


class _Decryption:
    def __init__(
        self,
        make_reader: Callable[[Callable[[bytes], None]], ClearPartReader],
        private_key_for: Callable[[ClearPartReader], rsa.RSAPrivateKey],
        make_parser: Callable[[ClearPartReader], LayerParser],
        layer_name: str,
    ) -> None:
        self._private_key_for = private_key_for
        self._make_parser = make_parser
        self._layer_name = layer_name
        self.reader = make_reader(self.on_cipher_text)
        self._decoder = _Base64Decoder()
        self._opener: _GcmOpener | None = None
        self._sink: TagFirst | None = None
        self._parser: LayerParser | None = None

    def on_cipher_text(self, text: bytes) -> None:
        if self._opener is None:
            # The clear part is complete and checked once the layer's ciphertext begins.
            private_key = self._private_key_for(self.reader)
            # "Nøkkelen til det pseudonymiserte laget …" (faults.WrongPrivateKey)
            name = self._layer_name[:1].lower() + self._layer_name[1:]
            content_key = unwrap_key(private_key, transport_key(self.reader), name)
            self._parser = self._make_parser(self.reader)
            self._sink = TagFirst(_Writes(self._parser))
            self._opener = _GcmOpener(content_key, self._sink)
        self._opener.feed(self._decoder.feed(text))

    def finish(self) -> None:
        if self._opener is None or self._sink is None or self._parser is None:
            raise CipherValueInvalid(f"{self._layer_name} er tomt")
        self._decoder.finish()
        self._opener.finish(self._layer_name)  # LayerAltered if the tag fails: that decides
        self._sink.raise_held()
        self._parser.close()


@dataclass(frozen=True)
class Wording:
    """How a message's format faults are worded (a submission, or a pseudonym mapping)."""

    unreadable: Callable[[str], IplosFault] = DeliveryUnreadable
    algorithm: Callable[[str], IplosFault] = DeliveryAlgorithmNotAllowed


def translated(fault: IplosFault, wording: Wording) -> IplosFault:
    """The envelope reader's format faults (worded for the send module's users) as faults of
    the delivery from the TPF; any other fault as it is."""
    if isinstance(fault, AlgorithmNotAllowed):
        return wording.algorithm(fault.detail)
    if isinstance(fault, (NotEncryptedFormat, NotWellFormed)):
        return wording.unreadable(fault.detail or "ugyldig format")
    if isinstance(fault, UnknownEnvelopeElement):
        return wording.unreadable(f"ukjent element {fault.tag}")
    if isinstance(fault, FodselsnummerInClearPart):
        return wording.unreadable("den ukrypterte delen har et mulig fødselsnummer")
    return fault


def read_layer(
    source: BinaryIO,
    make_reader: Callable[[Callable[[bytes], None]], ClearPartReader],
    private_key_for: Callable[[ClearPartReader], rsa.RSAPrivateKey],
    make_parser: Callable[[ClearPartReader], LayerParser],
    layer_name: str,
    wording: Wording = Wording(),  # frozen: one default shared on purpose
) -> ClearPartReader:
    """Read one message from ``source``; returns its (closed) clear-part reader.

    Faults: the reader's format faults, ``translated``; the parser's own faults;
    ``DecryptionFailed`` (wrong key, altered layer); whatever ``private_key_for`` raises for a
    key the register does not take."""
    decryption = _Decryption(make_reader, private_key_for, make_parser, layer_name)
    try:
        while chunk := source.read(CHUNK_BYTES):
            decryption.reader.feed(chunk)
        decryption.reader.close()
        decryption.finish()
    except IplosFault as fault:
        changed = translated(fault, wording)
        if changed is fault:
            raise
        raise changed from None
    return decryption.reader
