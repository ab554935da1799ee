"""Opening the two layers: the TPF's side and the register's side of the format (native only).

- ``open_tpf_layer`` streams the TPF layer's plaintext into a sink (the TPF's temp file)
  and verifies its GCM tag at the end. Until it returns, the plaintext is unauthenticated:
  on ``DecryptionFailed`` the caller must discard what the sink received.
- ``parse_tpf_layer`` reads that plaintext: contact person, Uttak, the register's wrapped
  key, and per person the fødselsnummer with the register layer's ciphertext, untouched.
- ``RegisterOpener`` is the register's side: it unwraps the register key and opens each
  person record, checking the record binding (docs/formater.md, "Postbinding"): every record
  decrypts under this file's key, carries the løpenummer its envelope says, appears once,
  and the count equals the encrypted Registerkontroll's.
"""

from __future__ import annotations

import binascii
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import BinaryIO, NamedTuple, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import AEADDecryptionContext, Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .contact import Contact
from .crypto.native import OAEP_SHA256
from .envelope import CHUNK_BYTES, Envelope, EnvelopeReader, SenderNumbers, WrappedKey, wrapped_key
from .envelope_grammar import REGISTER_KEY, check_element_tree
from .faults import (
    AlgorithmNotAllowed,
    CipherValueInvalid,
    IplosFault,
    LayerAltered,
    PrivateKeyNotRsa,
    RecordDuplicated,
    RecordFromAnotherFile,
    RecordOutOfRange,
    RecordsMissing,
    RecordSwapped,
    RecordTooShort,
    SenderAltered,
    TpfLayerMalformed,
    WrongPrivateKey,
)
from .xmlenc import (
    AES256_GCM,
    DS_NS,
    GCM_IV_BYTES,
    GCM_TAG_BYTES,
    NAMESPACE_DECLARATIONS,
    PERSON_ENCRYPTED_DATA_END,
    PERSON_ENCRYPTED_DATA_START,
    TPF_LAYER_ROOT,
    XENC11_NS,
    XENC_NS,
)

_NS = {"xenc": XENC_NS, "ds": DS_NS, "xenc11": XENC11_NS}
# The most persons a file may count: ten times Oslo's 100 000 per 500 MB (formats §1), so a
# count or a løpenummer cannot make the register reserve memory without bound.
MAX_PERSONS = 10_000_000


def load_private_key(pem: bytes) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise PrivateKeyNotRsa()
    return key


def unwrap_key(private_key: rsa.RSAPrivateKey, wrapped: WrappedKey, layer: str) -> bytes:
    try:
        content_key = private_key.decrypt(wrapped.wrapped, OAEP_SHA256)
    except ValueError:
        raise WrongPrivateKey(layer, wrapped.key_name) from None
    if len(content_key) != 32:
        raise TpfLayerMalformed("innholdsnøkkelen er ikke 256 biter")
    return content_key


_WHITESPACE = b" \t\r\n"


class Sink(Protocol):
    def write(self, data: bytes, /) -> object: ...


class _Base64Decoder:
    def __init__(self) -> None:
        self._rest = b""

    def feed(self, text: bytes) -> bytes:
        # One pass that copies only to drop whitespace (the writer puts none in a CipherValue).
        compact = text.translate(None, _WHITESPACE)
        data = self._rest + compact if self._rest else compact
        cut = len(data) - len(data) % 4
        self._rest = data[cut:]
        try:
            return binascii.a2b_base64(data[:cut]) if cut else b""
        except ValueError:  # binascii.Error
            raise CipherValueInvalid("CipherValue er ikke base64") from None

    def finish(self) -> None:
        if self._rest:
            raise CipherValueInvalid("CipherValue er avkortet")


class _GcmOpener:
    """IV ‖ ciphertext ‖ tag in, plaintext out; the last 16 bytes are held back as the tag."""

    def __init__(self, content_key: bytes, sink: Sink) -> None:
        self._key = content_key
        self._sink = sink
        self._head = b""
        self._held = b""
        self._decryptor: AEADDecryptionContext | None = None

    def feed(self, data: bytes) -> None:
        if self._decryptor is None:
            self._head += data
            if len(self._head) < GCM_IV_BYTES:
                return
            iv, data = self._head[:GCM_IV_BYTES], self._head[GCM_IV_BYTES:]
            self._decryptor = Cipher(algorithms.AES(self._key), modes.GCM(iv)).decryptor()
        data = self._held + data
        cut = max(0, len(data) - GCM_TAG_BYTES)
        self._held = data[cut:]
        if cut:
            self._sink.write(self._decryptor.update(data[:cut]))

    def finish(self, layer: str) -> None:
        if self._decryptor is None or len(self._held) != GCM_TAG_BYTES:
            raise CipherValueInvalid(f"{layer} er for kort")
        try:
            self._sink.write(self._decryptor.finalize_with_tag(self._held))
        except InvalidTag:
            raise LayerAltered(layer) from None


PrivateKeyChoice = rsa.RSAPrivateKey | Callable[[str], rsa.RSAPrivateKey]


class TpfLayerDecryption:
    """Receives an encrypted message's bytes and writes the TPF layer's plaintext to a sink
    as it is decrypted; ``feed``/``close`` as the envelope reader's.

    ``private_key``: the TPF's key, or a function from the file's ``ds:KeyName`` to it (the
    TPF's keyring, which may refuse a key it no longer accepts). It is asked when the first
    ciphertext arrives: the EncryptedKey comes before it, so the reader has checked it by then.
    Until ``close`` returns, everything the sink received is unauthenticated: on any fault the
    caller must discard what it made of it."""

    def __init__(
        self,
        private_key: PrivateKeyChoice,
        sink: Sink,
        key_names: Collection[str] | None = None,
    ) -> None:
        self._private_key = private_key
        self._sink = sink
        self.reader = EnvelopeReader(key_names, on_cipher_text=self.on_cipher_text)
        self._decoder = _Base64Decoder()
        self._opener: _GcmOpener | None = None

    def on_cipher_text(self, text: bytes) -> None:
        if self._opener is None:
            wrapped = self.reader.header.tpf_key
            choice = self._private_key
            private = choice if isinstance(choice, rsa.RSAPrivateKey) else choice(wrapped.key_name)
            self._opener = _GcmOpener(unwrap_key(private, wrapped, "TPF-laget"), self._sink)
        self._opener.feed(self._decoder.feed(text))

    def feed(self, chunk: bytes) -> None:
        self.reader.feed(chunk)

    def close(self) -> Envelope:
        """The end of the file: the GCM tag is checked here; returns the clear envelope."""
        self.reader.close()
        if self._opener is None:
            raise CipherValueInvalid("TPF-laget er tomt")
        self._decoder.finish()
        self._opener.finish("TPF-laget")
        return self.reader.envelope


class TagFirst:
    """A plaintext consumer behind the GCM opener whose faults wait for the tag.

    Until the tag has been checked the plaintext is unauthenticated: a TPF layer altered in
    transit decrypts to garbage, which the parser would report as a format fault. Held back
    until ``close`` has checked the tag, the fault is reported as what it is: ``LayerAltered``
    when the tag fails, the parser's own fault when the layer is authentic."""

    def __init__(self, inner: Sink) -> None:
        self._inner = inner
        self.fault: IplosFault | None = None

    def write(self, data: bytes) -> None:
        if self.fault is None:
            try:
                self._inner.write(data)
            except IplosFault as fault:
                self.fault = fault

    def raise_held(self) -> None:
        if self.fault is not None:
            raise self.fault


def open_tpf_layer(
    source: BinaryIO,
    tpf_private_key: PrivateKeyChoice,
    sink: Sink,
    key_names: Collection[str] | None = None,
) -> Envelope:
    """Decrypt the TPF layer into ``sink`` as a stream; return the clear envelope.

    ``key_names``: the TPF's key ids the envelope's ds:KeyName may name (None: any)."""
    decryption = TpfLayerDecryption(tpf_private_key, sink, key_names)
    while chunk := source.read(CHUNK_BYTES):
        decryption.feed(chunk)
    return decryption.close()


class TpfPerson(NamedTuple):
    """One person of the TPF layer (a NamedTuple: made 100 000 times per file)."""

    lopenummer: int
    fodselsnummer: str  # as it stood in the input, stripped; checked by the TPF
    cipher_text: bytes  # base64 of the register layer (IV ‖ ciphertext ‖ tag), no whitespace

    def __repr__(self) -> str:  # never a fødselsnummer in a log or a traceback
        return f"TpfPerson(lopenummer={self.lopenummer})"

    @property
    def register_cipher_value(self) -> bytes:
        try:
            return binascii.a2b_base64(self.cipher_text, strict_mode=True)
        except ValueError:  # binascii.Error
            raise CipherValueInvalid("CipherValue er ikke base64") from None


@dataclass(frozen=True)
class TpfHeader:
    """The TPF layer before ``Personer``, as the TPF passes it on (canonical XML)."""

    file_id: str
    contact: Contact
    sender: SenderNumbers  # the encrypted copy of Avsender
    sender_navn: str
    register_key: WrappedKey
    contact_xml: bytes
    sender_xml: bytes
    uttak_xml: bytes

    def __repr__(self) -> str:
        return f"TpfHeader(file_id={self.file_id!r})"


@dataclass(frozen=True)
class TpfLayer:
    file_id: str
    contact: Contact
    sender: SenderNumbers  # the encrypted copy of Avsender
    uttak_xml: bytes
    register_key: WrappedKey
    register_control: bytes  # cipher value of the encrypted Registerkontroll
    persons: int
    header: TpfHeader | None = None
    register_control_text: bytes = b""  # its base64, as it stood (no whitespace)


_HEAD_LIMIT = 256 * 1024  # everything before <Personer>: contact, sender, Uttak, one key
_PERSON_LIMIT = 1024 * 1024  # one person record (a few hundred bytes normally)
_TAIL_LIMIT = 64 * 1024  # </Personer>, the Registerkontroll and the end
_PERSONER_START = b"<Personer>"
_PERSONER_END = b"</Personer>"
_PERSON_END = b"</Person>"
_FAST_PERSON = re.compile(
    rb'<Person lopenummer="([1-9][0-9]{0,8})"><Fodselsnummer>\s*([^<\s]*)\s*</Fodselsnummer>'
    + re.escape(PERSON_ENCRYPTED_DATA_START.encode())
    + rb"([A-Za-z0-9+/]*={0,2})"
    + re.escape(PERSON_ENCRYPTED_DATA_END.encode())
    + rb"</Person>"
)
_BASE64 = re.compile(rb"[A-Za-z0-9+/]*={0,2}")
_WRAPPER_START = f"<w {NAMESPACE_DECLARATIONS}>".encode()
_WRAPPER_END = b"</w>"


def _parse_fragment(fragment: bytes) -> ET.Element:
    """A piece of the decrypted TPF layer as elements: no markup but elements and text (no
    DOCTYPE, so no entity can be declared; no comment, no processing instruction)."""
    if b"<!" in fragment or b"<?" in fragment:
        raise TpfLayerMalformed("TPF-laget har markering som ikke er elementer")
    try:
        return ET.fromstring(_WRAPPER_START + fragment + _WRAPPER_END)  # noqa: S314 - see above
    except ET.ParseError:
        raise TpfLayerMalformed("TPF-laget er ikke gyldig XML") from None


def _canonical(element: ET.Element) -> bytes:
    """An element without namespaces as the TPF writes it on: no indentation, no tails."""
    copy = ET.Element(element.tag, dict(element.attrib))
    copy.text = element.text.strip() if element.text and not len(element) else None
    for child in element:
        if not isinstance(child.tag, str) or child.tag.startswith("{"):
            raise TpfLayerMalformed(f"uventet element i {element.tag}")
        copy.append(ET.fromstring(_canonical(child)))  # noqa: S314 - our own output
    serialised: bytes = ET.tostring(copy, encoding="utf-8", xml_declaration=False)
    return serialised


def _cipher_text_of(encrypted_data: ET.Element, what: str) -> bytes:
    """The base64 CipherValue of a register-layer EncryptedData in the canonical form."""
    children = list(encrypted_data)
    if (
        encrypted_data.attrib
        or len(children) != 2
        or children[0].tag != f"{{{XENC_NS}}}EncryptionMethod"
        or children[1].tag != f"{{{XENC_NS}}}CipherData"
    ):
        raise TpfLayerMalformed(f"{what} har feil form")
    if children[0].get("Algorithm") != AES256_GCM or len(children[0].attrib) != 1:
        raise AlgorithmNotAllowed(f"{what} er ikke aes256-gcm")
    values = list(children[1])
    if len(values) != 1 or values[0].tag != f"{{{XENC_NS}}}CipherValue" or len(values[0]):
        raise TpfLayerMalformed(f"{what} mangler CipherValue")
    text = "".join((values[0].text or "").split()).encode("ascii", "replace")
    if not _BASE64.fullmatch(text) or len(text) % 4:
        raise CipherValueInvalid(f"CipherValue i {what} er ikke base64")
    return text


class TpfLayerParser:
    """The decrypted TPF layer as a push parser: ``write`` plaintext as it is decrypted (it is
    the GCM opener's sink), ``close`` at the end. Memory stays flat: the header, one person and
    the tail are each bounded, and nothing before the current person is kept.

    The encryption module writes every person in one form (message.py), which a regular
    expression takes whole, 100 000 times a file, at C speed; anything else (indentation,
    another writer) goes through ElementTree one person at a time. Until the GCM tag has been
    checked this is unauthenticated input: it is parsed safely, and the caller discards its
    output if the tag fails.
    """

    def __init__(
        self,
        on_person: Callable[[TpfPerson], None],
        on_header: Callable[[TpfHeader], None] | None = None,
    ) -> None:
        self._on_person = on_person
        self._on_header = on_header
        self._buffer = b""
        self._state = "head"
        self.header: TpfHeader | None = None
        self.persons = 0

    def write(self, data: bytes) -> None:
        self._buffer = self._buffer + data if self._buffer else data
        if self._state == "head":
            self._head()
        if self._state == "persons":
            self._persons()
        if self._state == "tail" and len(self._buffer) > _TAIL_LIMIT:
            raise TpfLayerMalformed("TPF-laget har for mye etter personene")

    def close(self) -> TpfLayer:
        if self._state != "tail" or self.header is None:
            raise TpfLayerMalformed("TPF-laget er ufullstendig")
        rest = self._buffer.strip()
        end = f"</{TPF_LAYER_ROOT}>".encode()
        if not rest.endswith(end):
            raise TpfLayerMalformed("TPF-laget slutter ikke med rotelementet")
        wrapper = _parse_fragment(rest[: -len(end)])
        children = list(wrapper)
        if len(children) != 1 or children[0].tag != "Registerkontroll":
            raise TpfLayerMalformed("TPF-laget mangler Registerkontroll")
        encrypted = list(children[0])
        if len(encrypted) != 1 or encrypted[0].tag != f"{{{XENC_NS}}}EncryptedData":
            raise TpfLayerMalformed("Registerkontroll mangler EncryptedData")
        control_text = _cipher_text_of(encrypted[0], "Registerkontroll")
        header = self.header
        return TpfLayer(
            file_id=header.file_id,
            contact=header.contact,
            sender=header.sender,
            uttak_xml=header.uttak_xml,
            register_key=header.register_key,
            register_control=binascii.a2b_base64(control_text),
            persons=self.persons,
            header=header,
            register_control_text=control_text,
        )

    # --- the three parts ------------------------------------------------------------------------

    def _head(self) -> None:
        buffer = self._buffer
        at = buffer.find(_PERSONER_START)
        if at < 0:
            if len(buffer) > _HEAD_LIMIT:
                raise TpfLayerMalformed("TPF-laget mangler Personer")
            return
        self._buffer = buffer[at + len(_PERSONER_START) :]
        self._state = "persons"
        self.header = _parse_head(buffer[:at])
        if self._on_header is not None:
            self._on_header(self.header)

    def _persons(self) -> None:
        buffer = self._buffer
        pos = 0
        fast = _FAST_PERSON.match
        on_person = self._on_person
        count = 0
        try:
            while True:
                match = fast(buffer, pos)
                if match is not None:
                    number, fnr, cipher_text = match.groups()
                    on_person(TpfPerson(int(number), fnr.decode("ascii", "replace"), cipher_text))
                    count += 1
                    pos = match.end()
                    continue
                while pos < len(buffer) and buffer[pos] in b" \t\r\n":
                    pos += 1
                if buffer.startswith(_PERSONER_END, pos):
                    self._state = "tail"
                    pos += len(_PERSONER_END)
                    break
                end = buffer.find(_PERSON_END, pos, pos + _PERSON_LIMIT)
                if end < 0:
                    if len(buffer) - pos > _PERSON_LIMIT:
                        raise TpfLayerMalformed("en person i TPF-laget er for stor")
                    break  # the rest of this person is still to come
                end += len(_PERSON_END)
                on_person(_slow_person(buffer[pos:end]))
                count += 1
                pos = end
        finally:
            self.persons += count
            self._buffer = buffer[pos:]


def _parse_head(head: bytes) -> TpfHeader:
    """``<IPLOSInnhold …>`` up to ``<Personer>``: contact, the sender's copy, Uttak and the
    register layer's EncryptedKey, in that order."""
    start = f"<{TPF_LAYER_ROOT} ".encode()
    if not head.startswith(start):
        raise TpfLayerMalformed("TPF-laget starter ikke med rotelementet")
    if b"<!" in head or b"<?" in head:
        raise TpfLayerMalformed("TPF-laget har markering som ikke er elementer")
    try:
        root = ET.fromstring(head + f"</{TPF_LAYER_ROOT}>".encode())  # noqa: S314 - no DOCTYPE
    except ET.ParseError:
        raise TpfLayerMalformed("TPF-laget er ikke gyldig XML") from None
    children = list(root)
    names = [child.tag for child in children]
    if names != ["Kontaktperson", "Avsender", "Uttak", f"{{{XENC_NS}}}EncryptedKey"]:
        raise TpfLayerMalformed("TPF-laget har ikke feltene Kontaktperson, Avsender, Uttak og "
                                "registernøkkelen i den rekkefølgen")
    contact_node, sender_node, uttak_node, key_node = children
    register_key = wrapped_key(check_element_tree(key_node, REGISTER_KEY), "register_key")
    return TpfHeader(
        file_id=root.get("filId", ""),
        contact=Contact(
            email=contact_node.findtext("Epost", "").strip(),
            name=contact_node.findtext("Navn", "").strip(),
            mobile=contact_node.findtext("Mobiltelefon", "").strip(),
        ),
        sender=SenderNumbers(
            kommunenummer=sender_node.findtext("Kommunenummer", "").strip(),
            bydelsnummer=sender_node.findtext("Bydelsnummer", "").strip(),
            organisasjonsnummer=sender_node.findtext("Organisasjonsnummer", "").strip(),
        ),
        sender_navn=sender_node.findtext("Navn", "").strip(),
        register_key=register_key,
        contact_xml=_canonical(contact_node),
        sender_xml=_canonical(sender_node),
        uttak_xml=_canonical(uttak_node),
    )


def _slow_person(segment: bytes) -> TpfPerson:
    """A person not in the encryption module's own form: checked element by element."""
    wrapper = _parse_fragment(segment)
    nodes = list(wrapper)
    if len(nodes) != 1 or nodes[0].tag != "Person" or (nodes[0].tail or "").strip():
        raise TpfLayerMalformed("Personer har noe annet enn Person")
    node = nodes[0]
    children = list(node)
    if (
        set(node.attrib) != {"lopenummer"}
        or len(children) != 2
        or children[0].tag != "Fodselsnummer"
        or children[1].tag != f"{{{XENC_NS}}}EncryptedData"
        or len(children[0])
    ):
        raise TpfLayerMalformed("Person mangler Fodselsnummer eller EncryptedData")
    number = node.get("lopenummer", "")
    if not number.isascii() or not number.isdigit() or len(number) > 9 or number.startswith("0"):
        raise TpfLayerMalformed("Person har ugyldig løpenummer")
    return TpfPerson(
        int(number),
        (children[0].text or "").strip(),
        _cipher_text_of(children[1], "registerlaget"),
    )


def parse_tpf_layer(plaintext: BinaryIO, on_person: Callable[[TpfPerson], None]) -> TpfLayer:
    """Read a decrypted TPF layer from a stream, one person at a time."""
    parser = TpfLayerParser(on_person)
    while chunk := plaintext.read(CHUNK_BYTES):
        parser.write(chunk)
    return parser.close()


def check_sender(envelope: Envelope, sender: SenderNumbers) -> None:
    """The clear Avsender must equal the encrypted one: otherwise it was changed in transit."""
    clear = envelope.sender
    if clear != sender:
        raise SenderAltered(
            f"Avsenderen i klartekst ({clear.kommunenummer}/{clear.bydelsnummer}/"
            f"{clear.organisasjonsnummer}) er ikke den samme som den krypterte "
            f"({sender.kommunenummer}/{sender.bydelsnummer}/{sender.organisasjonsnummer}): "
            "filen er endret etter krypteringen."
        )


@dataclass(frozen=True)
class RegisterRecord:
    lopenummer: int
    person_xml: bytes  # <Person lopenummer="n">…the person's data…</Person>
    element: ET.Element  # the same, parsed (the register reads the person's data from it)


class RegisterOpener:
    """The register's side: open person records and check the record binding.

    ``control`` is the encrypted Registerkontroll. The register reads the pseudonymised message
    as a stream and meets the Registerkontroll after the persons (docs/formater.md §4), so it
    may come later through ``read_control``: until then a record's number is checked against
    the count at ``finish``, which refuses the message all the same."""

    def __init__(
        self,
        register_private_key: rsa.RSAPrivateKey,
        register_key: WrappedKey,
        control: bytes | None = None,
    ) -> None:
        self._aead = AESGCM(unwrap_key(register_private_key, register_key, "registerlaget"))
        self.file_id = ""
        self.expected: int | None = None
        self.sender: SenderNumbers | None = None
        # One byte per løpenummer: 110 kB for 110 000 persons, where a set of ints takes MBs.
        self._seen = bytearray()
        if control is not None:
            self.read_control(control)

    def read_control(self, control: bytes) -> None:
        """Open the Registerkontroll: the file's id, its number of persons and its sender."""
        control_xml = self._open(control, "Registerkontrollen")
        element = _parse_plaintext(control_xml)
        if element.tag != "Registerkontroll":
            raise TpfLayerMalformed("Registerkontroll har feil innhold")
        self.file_id = element.get("filId", "")
        try:
            self.expected = int(element.get("antallPersoner", "-1"))
        except ValueError:
            raise TpfLayerMalformed("Registerkontroll har feil antall") from None
        if not 0 <= self.expected <= MAX_PERSONS:
            raise TpfLayerMalformed("Registerkontroll har feil antall")
        # The sender as the encryption module read it: the register can trust it.
        self.sender = SenderNumbers(
            kommunenummer=element.get("kommunenummer", ""),
            bydelsnummer=element.get("bydelsnummer", ""),
            organisasjonsnummer=element.get("organisasjonsnummer", ""),
        )

    def _open(self, cipher_value: bytes, what: str) -> bytes:
        if len(cipher_value) < GCM_IV_BYTES + GCM_TAG_BYTES:
            raise RecordTooShort(what)
        iv, body = cipher_value[:GCM_IV_BYTES], cipher_value[GCM_IV_BYTES:]
        try:
            return self._aead.decrypt(iv, body, None)
        except InvalidTag:
            raise RecordFromAnotherFile(what) from None

    def open(self, lopenummer: int, cipher_value: bytes) -> RegisterRecord:
        """Decrypt one person record that its envelope says has ``lopenummer``."""
        plaintext = self._open(cipher_value, f"Personposten med løpenummer {lopenummer}")
        element = _parse_plaintext(plaintext)
        try:
            inside = int(element.get("lopenummer", "0"))
        except ValueError:
            inside = 0
        if element.tag != "Person" or inside != lopenummer:
            raise RecordSwapped(lopenummer, inside)
        self._mark(inside)
        return RegisterRecord(inside, plaintext, element)

    def decrypt_batch(self, batch: list[tuple[int, bytes]]) -> list[bytes]:
        """The plaintexts of a batch of records, each authenticated under this file's key (a
        record of another file, or altered, is refused by its number). Their binding is the
        caller's to check, with ``bind`` (``open_batch`` does both)."""
        return [
            self._open(cipher_value, f"Personposten med løpenummer {lopenummer}")
            for lopenummer, cipher_value in batch
        ]

    def bind(self, lopenummer: int, inside: int) -> None:
        """The record binding of one record whose envelope says ``lopenummer`` and whose
        plaintext's ``Person`` says ``inside``: the same number, seen once, within the count."""
        if inside != lopenummer:
            raise RecordSwapped(lopenummer, inside)
        self._mark(inside)

    def open_batch(self, batch: list[tuple[int, bytes]]) -> list[RegisterRecord]:
        """``open`` for many records, parsed together (one parser for the batch, not one per
        record: a third of the time for 100 000 persons).

        The batch parse yields exactly one ``Person`` per record, in order, each with its
        envelope's løpenummer — or every record is opened alone, so a fault names its record
        just as ``open`` does. Records are authenticated one by one, so only their author (the
        encryption module, holding this file's key) could write two that parse together but
        not apart, and only about its own data; swaps, duplicates, drops and moves by anyone
        else are refused as by ``open``."""
        plaintexts = self.decrypt_batch(batch)
        joined = b"".join(plaintexts)
        if b"<!" in joined or b"<?" in joined:
            return [self.open(n, c) for n, c in batch]  # refused there, with its record
        try:
            elements = list(ET.fromstring(b"<r>" + joined + b"</r>"))  # noqa: S314 - no DOCTYPE
        except ET.ParseError:
            return [self.open(n, c) for n, c in batch]
        if len(elements) != len(batch):
            return [self.open(n, c) for n, c in batch]
        records = []
        for (lopenummer, _), plaintext, element in zip(batch, plaintexts, elements, strict=True):
            try:
                inside = int(element.get("lopenummer", "0"))
            except ValueError:
                inside = 0
            if element.tag != "Person":
                raise RecordSwapped(lopenummer, inside)
            self.bind(lopenummer, inside)
            records.append(RegisterRecord(inside, plaintext, element))
        return records

    def _mark(self, inside: int) -> None:
        seen = self._seen
        if inside < len(seen) and seen[inside]:
            raise RecordDuplicated(inside)
        limit = self.expected if self.expected is not None else MAX_PERSONS
        if not 1 <= inside <= limit:
            raise RecordOutOfRange(inside, limit)
        if inside >= len(seen):
            seen.extend(bytes(max(inside + 1 - len(seen), len(seen))))
        seen[inside] = 1

    def finish(self) -> None:
        """All records were opened: none outside the count, none missing."""
        if self.expected is None:
            raise TpfLayerMalformed("Registerkontroll mangler")
        seen = self._seen
        beyond = seen.find(1, self.expected + 1)
        if beyond >= 0:
            raise RecordOutOfRange(beyond, self.expected)
        missing = [n for n in range(1, self.expected + 1) if n >= len(seen) or not seen[n]]
        if missing:
            raise RecordsMissing(missing)


def _parse_plaintext(xml: bytes) -> ET.Element:
    if b"<!DOCTYPE" in xml:
        raise TpfLayerMalformed("DOCTYPE i dekryptert innhold")
    try:
        return ET.fromstring(xml)  # noqa: S314 - DOCTYPE refused above, so no entities
    except ET.ParseError:
        raise TpfLayerMalformed("dekryptert innhold er ikke gyldig XML") from None


@dataclass(frozen=True)
class OpenedMessage:
    """Both layers opened: only tests and the single-machine demo hold both private keys."""

    envelope: Envelope
    tpf: TpfLayer
    fodselsnumre: list[str]
    records: list[RegisterRecord]
    tpf_plaintext: bytes


def open_message(
    source: BinaryIO, tpf_private_key: rsa.RSAPrivateKey, register_private_key: rsa.RSAPrivateKey
) -> OpenedMessage:
    import io

    plaintext = io.BytesIO()
    envelope = open_tpf_layer(source, tpf_private_key, plaintext)
    people: list[TpfPerson] = []
    plaintext.seek(0)
    layer = parse_tpf_layer(plaintext, people.append)
    check_sender(envelope, layer.sender)
    opener = RegisterOpener(register_private_key, layer.register_key, layer.register_control)
    if opener.sender != layer.sender:
        raise SenderAltered("Avsenderen i registerkontrollen er ikke den samme som i TPF-laget.")
    records = [opener.open(p.lopenummer, p.register_cipher_value) for p in people]
    opener.finish()
    return OpenedMessage(
        envelope=envelope,
        tpf=layer,
        fodselsnumre=[p.fodselsnummer for p in people],
        records=records,
        tpf_plaintext=plaintext.getvalue(),
    )
