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
import xml.etree.ElementTree as ET
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import BinaryIO

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
    TPF_LAYER_ROOT,
    XENC11_NS,
    XENC_NS,
)

_NS = {"xenc": XENC_NS, "ds": DS_NS, "xenc11": XENC11_NS}


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


class _Base64Decoder:
    def __init__(self) -> None:
        self._rest = b""

    def feed(self, text: bytes) -> bytes:
        data = self._rest + b"".join(text.split())
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

    def __init__(self, content_key: bytes, sink: BinaryIO) -> None:
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


class _TpfLayerDecryption:
    """Receives the TPF layer's base64 text from the envelope reader and decrypts it.

    The content key is unwrapped when the first text arrives: the EncryptedKey comes before
    the ciphertext, so the reader has checked it by then."""

    def __init__(
        self, private_key: rsa.RSAPrivateKey, sink: BinaryIO, key_names: Collection[str] | None
    ) -> None:
        self._private_key = private_key
        self._sink = sink
        self.reader = EnvelopeReader(key_names, on_cipher_text=self.on_cipher_text)
        self._decoder = _Base64Decoder()
        self._opener: _GcmOpener | None = None

    def on_cipher_text(self, text: bytes) -> None:
        if self._opener is None:
            key = unwrap_key(self._private_key, self.reader.header.tpf_key, "TPF-laget")
            self._opener = _GcmOpener(key, self._sink)
        self._opener.feed(self._decoder.feed(text))

    def finish(self) -> None:
        if self._opener is None:
            raise CipherValueInvalid("TPF-laget er tomt")
        self._decoder.finish()
        self._opener.finish("TPF-laget")


def open_tpf_layer(
    source: BinaryIO,
    tpf_private_key: rsa.RSAPrivateKey,
    sink: BinaryIO,
    key_names: Collection[str] | None = None,
) -> Envelope:
    """Decrypt the TPF layer into ``sink`` as a stream; return the clear envelope.

    ``key_names``: the TPF's key ids the envelope's ds:KeyName may name (None: any)."""
    decryption = _TpfLayerDecryption(tpf_private_key, sink, key_names)
    while chunk := source.read(CHUNK_BYTES):
        decryption.reader.feed(chunk)
    decryption.reader.close()
    decryption.finish()
    return decryption.reader.envelope


@dataclass(frozen=True)
class TpfPerson:
    lopenummer: int
    fodselsnummer: str
    register_cipher_value: bytes  # IV ‖ ciphertext ‖ tag of the person's register layer


@dataclass(frozen=True)
class TpfLayer:
    file_id: str
    contact: Contact
    sender: SenderNumbers  # the encrypted copy of Avsender
    uttak_xml: bytes
    register_key: WrappedKey
    register_control: bytes  # cipher value of the encrypted Registerkontroll
    persons: int


def _cipher_value_of(encrypted_data: ET.Element) -> bytes:
    method = encrypted_data.find("xenc:EncryptionMethod", _NS)
    if method is None:
        raise TpfLayerMalformed("registerlaget mangler EncryptionMethod")
    if method.get("Algorithm") != AES256_GCM:
        raise AlgorithmNotAllowed("registerlaget er ikke aes256-gcm")
    text = encrypted_data.findtext("xenc:CipherData/xenc:CipherValue", None, _NS)
    if text is None:
        raise TpfLayerMalformed("registerlaget mangler CipherValue")
    try:
        return binascii.a2b_base64(text)
    except ValueError:  # binascii.Error, or a non-ASCII character
        raise CipherValueInvalid("CipherValue er ikke base64") from None


def _refuse_prolog(plaintext: BinaryIO) -> None:
    """The TPF layer starts with its root element: no XML declaration, no DOCTYPE, so no
    entity can be declared (a DOCTYPE may only stand before the root element)."""
    start = plaintext.read(len(TPF_LAYER_ROOT) + 2)
    plaintext.seek(-len(start), 1)
    if not start.startswith(f"<{TPF_LAYER_ROOT} ".encode()):
        raise TpfLayerMalformed("TPF-laget starter ikke med rotelementet")


def parse_tpf_layer(plaintext: BinaryIO, on_person: Callable[[TpfPerson], None]) -> TpfLayer:
    """Read the TPF layer's plaintext as a stream, one person at a time."""
    root: ET.Element | None = None
    contact: Contact | None = None
    sender: SenderNumbers | None = None
    uttak = b""
    register_key: WrappedKey | None = None
    control = b""
    persons = 0
    personer: ET.Element | None = None
    _refuse_prolog(plaintext)
    events = ET.iterparse(plaintext, events=("start", "end"))  # noqa: S314 - no prolog, see above
    for event, node in events:
        if event == "start":
            if root is None:
                root = node
                if node.tag != TPF_LAYER_ROOT:
                    raise TpfLayerMalformed("TPF-laget har feil rotelement")
            elif node.tag == "Personer":
                personer = node
            continue
        tag = node.tag
        if tag == "Kontaktperson":
            contact = Contact(
                email=node.findtext("Epost", ""),
                name=node.findtext("Navn", ""),
                mobile=node.findtext("Mobiltelefon", ""),
            )
        elif tag == "Avsender" and sender is None:
            sender = SenderNumbers(
                kommunenummer=node.findtext("Kommunenummer", ""),
                bydelsnummer=node.findtext("Bydelsnummer", ""),
                organisasjonsnummer=node.findtext("Organisasjonsnummer", ""),
            )
        elif tag == "Uttak":
            uttak = ET.tostring(node, encoding="utf-8", xml_declaration=False)
        elif tag == f"{{{XENC_NS}}}EncryptedKey" and register_key is None:
            register_key = wrapped_key(check_element_tree(node, REGISTER_KEY), "register_key")
        elif tag == "Person":
            fnr = node.findtext("Fodselsnummer")
            encrypted = node.find("xenc:EncryptedData", _NS)
            if fnr is None or encrypted is None:
                raise TpfLayerMalformed("Person mangler Fodselsnummer eller EncryptedData")
            on_person(
                TpfPerson(
                    lopenummer=int(node.get("lopenummer", "0")),
                    fodselsnummer=fnr.strip(),
                    register_cipher_value=_cipher_value_of(encrypted),
                )
            )
            persons += 1
            if personer is not None:
                personer.clear()  # keep memory flat on 100 000 persons
        elif tag == "Registerkontroll":
            encrypted = node.find("xenc:EncryptedData", _NS)
            if encrypted is None:
                raise TpfLayerMalformed("Registerkontroll mangler EncryptedData")
            control = _cipher_value_of(encrypted)
    if root is None or contact is None or sender is None or register_key is None or not control:
        raise TpfLayerMalformed("TPF-laget er ufullstendig")
    return TpfLayer(
        file_id=root.get("filId", ""),
        contact=contact,
        sender=sender,
        uttak_xml=uttak,
        register_key=register_key,
        register_control=control,
        persons=persons,
    )


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


class RegisterOpener:
    """The register's side: open person records and check the record binding."""

    def __init__(
        self, register_private_key: rsa.RSAPrivateKey, register_key: WrappedKey, control: bytes
    ) -> None:
        self._aead = AESGCM(unwrap_key(register_private_key, register_key, "registerlaget"))
        control_xml = self._open(control, "Registerkontrollen")
        element = _parse_plaintext(control_xml)
        if element.tag != "Registerkontroll":
            raise TpfLayerMalformed("Registerkontroll har feil innhold")
        self.file_id = element.get("filId", "")
        self.expected = int(element.get("antallPersoner", "-1"))
        # The sender as the encryption module read it: the register can trust it.
        self.sender = SenderNumbers(
            kommunenummer=element.get("kommunenummer", ""),
            bydelsnummer=element.get("bydelsnummer", ""),
            organisasjonsnummer=element.get("organisasjonsnummer", ""),
        )
        self._seen: set[int] = set()

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
        inside = int(element.get("lopenummer", "0"))
        if element.tag != "Person" or inside != lopenummer:
            raise RecordSwapped(lopenummer, inside)
        if inside in self._seen:
            raise RecordDuplicated(inside)
        if not 1 <= inside <= self.expected:
            raise RecordOutOfRange(inside, self.expected)
        self._seen.add(inside)
        return RegisterRecord(inside, plaintext)

    def finish(self) -> None:
        """All records were opened: none missing."""
        missing = [n for n in range(1, self.expected + 1) if n not in self._seen]
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
