"""The TPF's work on one submission, from a stream to a stream (issue 9.1–9.3).

One pass over the encrypted file, in memory, flat in the file's size:

    stored file → envelope reader → base64 → AES-GCM (TPF key) → TPF layer parser
        → per person: check the number, pseudonym → §4 writer → AES-GCM (register key)
        → base64 → the output sink (a temporary file)

The TPF layer's plaintext exists only in memory, a chunk at a time, and is unauthenticated
until the GCM tag at the very end has been checked: the output is therefore encrypted as it is
made and written to a temporary file that the caller discards when anything fails, the tag
included. A fødselsnummer is only ever an argument of the pseudonym function: it is not kept,
not logged, and no fault or ``repr`` carries it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import BinaryIO

from ipis_core.decrypt import (
    PrivateKeyChoice,
    TagFirst,
    TpfHeader,
    TpfLayerDecryption,
    TpfLayerParser,
    TpfPerson,
)
from ipis_core.envelope import CHUNK_BYTES, Envelope
from ipis_core.faults import SenderAltered, TpfLayerMalformed
from ipis_core.pseudonymised import (
    INVALID_NUMBER_MARK,
    PSEUDONYMISED_CONTENT_ROOT,
    PSEUDONYMISED_LAYER_ID,
    PSEUDONYMISED_ROOT,
    RegisterLayerWriter,
    Sink,
    leaf,
)
from ipis_core.rsakey import RsaPublicKey
from ipis_core.xmlenc import (
    NAMESPACE_DECLARATIONS,
    PERSON_ENCRYPTED_DATA_END,
    PERSON_ENCRYPTED_DATA_START,
    REGISTER_KEY_CARRIED_NAME,
    REGISTER_KEY_ID,
    REGISTER_RECIPIENT,
    TPF_LAYER_ROOT,
    encrypted_key_xml,
)

from .pseudonyms import Pseudonymiser

_CIPHER_START = PERSON_ENCRYPTED_DATA_START.encode()
_CIPHER_END = PERSON_ENCRYPTED_DATA_END.encode() + b"</Person>"


@dataclass(frozen=True)
class ProcessingResult:
    """What the TPF records and reports (never a number)."""

    persons: int
    invalid_numbers: int
    file_id: str
    secret_id: str
    envelope: Envelope


def clear_part(envelope: Envelope) -> str:
    """The §4 clear part, from the values the envelope reader checked (nothing else)."""
    navn = leaf("Navn", envelope.avsender_navn) if envelope.avsender_navn else ""
    mottaker_org = (
        leaf("Organisasjonsnummer", envelope.mottaker_organisasjonsnummer)
        if envelope.mottaker_organisasjonsnummer
        else ""
    )
    return (
        f"{leaf('Meldingstype', envelope.meldingstype)}\n"
        f"<Avsender>{leaf('Kommunenummer', envelope.kommunenummer)}"
        f"{leaf('Bydelsnummer', envelope.bydelsnummer)}"
        f"{leaf('Organisasjonsnummer', envelope.organisasjonsnummer)}{navn}</Avsender>\n"
        f"<Mottaker>{leaf('Navn', envelope.mottaker_navn)}{mottaker_org}</Mottaker>\n"
    )


def check_sender(envelope: Envelope, header: TpfHeader) -> None:
    """The clear Avsender must be the encrypted one (numbers and name): else it was changed
    after encryption, for instance to pass the send module's login check."""
    if envelope.sender != header.sender or envelope.avsender_navn != header.sender_navn:
        raise SenderAltered(
            f"Avsenderen i klartekst (kommunenummer {envelope.kommunenummer}, bydelsnummer "
            f"{envelope.bydelsnummer}) er ikke den samme som den krypterte avsenderen i filen: "
            "filen er endret etter krypteringen. Krypter IPLOS-datafilen på nytt og send den "
            "igjen."
        )


class _Pseudonymisation:
    """The TPF layer parser's callbacks: writes the §4 plaintext into the register layer."""

    def __init__(
        self,
        decryption: TpfLayerDecryption,
        sink: Sink,
        register_key: RsaPublicKey,
        pseudonymiser: Pseudonymiser,
        innsending_id: str,
    ) -> None:
        self._decryption = decryption
        self._sink = sink
        self._register_key = register_key
        self._pseudonymiser = pseudonymiser
        self._innsending_id = innsending_id
        self.writer: RegisterLayerWriter | None = None
        self.invalid = 0

    def on_header(self, header: TpfHeader) -> None:
        envelope = self._decryption.reader.header  # complete: the ciphertext has begun
        check_sender(envelope, header)
        if not header.file_id.isascii() or not header.file_id.isalnum() or len(header.file_id) > 32:
            raise TpfLayerMalformed("filId har feil form")
        self.writer = RegisterLayerWriter(
            self._sink,
            PSEUDONYMISED_ROOT,
            PSEUDONYMISED_LAYER_ID,
            clear_part(envelope),
            self._register_key,
        )
        register_key = header.register_key
        self.writer.write(
            (
                f'<{PSEUDONYMISED_CONTENT_ROOT} {NAMESPACE_DECLARATIONS} filId="{header.file_id}" '
                f'innsendingId="{self._innsending_id}">'
            ).encode()
            + header.contact_xml
            + header.sender_xml
            + header.uttak_xml
            + encrypted_key_xml(
                _b64(register_key.wrapped),
                register_key.key_name,
                REGISTER_KEY_ID,
                REGISTER_RECIPIENT,
                carried_name=REGISTER_KEY_CARRIED_NAME,
            ).encode()
            + b"<Personer>"
        )

    def on_person(self, person: TpfPerson) -> None:
        writer = self.writer
        if writer is None:
            raise TpfLayerMalformed("Person før Personer")
        found = self._pseudonymiser(person.fodselsnummer)  # 100 000 times: kept lean
        if found is None:
            self.invalid += 1
            head = b'<Person lopenummer="%d" ugyldigFodselsnummer="%s">' % (
                person.lopenummer,
                INVALID_NUMBER_MARK.encode(),
            )
        else:
            head = b'<Person lopenummer="%d" pseudonym="%s">' % (
                person.lopenummer,
                found.encode(),
            )
        writer.write(head + _CIPHER_START + person.cipher_text + _CIPHER_END)


def _b64(data: bytes) -> str:
    import binascii

    return binascii.b2a_base64(data, newline=False).decode()


def pseudonymise(
    source: BinaryIO,
    sink: Sink,
    *,
    private_key: PrivateKeyChoice,
    register_key: RsaPublicKey,
    pseudonymiser: Pseudonymiser,
    innsending_id: str,
    key_names: Collection[str] | None = None,
) -> ProcessingResult:
    """Read one encrypted message from ``source``; write its §4 message to ``sink``.

    Raises an ``IplosFault`` (the file's fault: its Norwegian message) or an ``OSError``; in
    both cases what ``sink`` received must be thrown away. ``private_key``: the TPF's key or
    a function from the file's key name to it (the keyring, which refuses a key it no longer
    accepts); ``key_names``: the names the envelope reader lets through at all."""
    holder: list[_Pseudonymisation] = []
    parser = TpfLayerParser(
        on_person=lambda person: holder[0].on_person(person),
        on_header=lambda header: holder[0].on_header(header),
    )
    plaintext = TagFirst(parser)
    decryption = TpfLayerDecryption(private_key, plaintext, key_names)
    work = _Pseudonymisation(decryption, sink, register_key, pseudonymiser, innsending_id)
    holder.append(work)
    while chunk := source.read(CHUNK_BYTES):
        decryption.feed(chunk)
    envelope = decryption.close()  # the GCM tag: from here the TPF layer is authentic
    plaintext.raise_held()
    layer = parser.close()
    writer = work.writer
    if writer is None:
        raise TpfLayerMalformed(f"{TPF_LAYER_ROOT} mangler")
    writer.write(
        b'</Personer><Pseudonymisering hemmelighetId="%s" antallPersoner="%d" '
        b'ugyldigeFodselsnumre="%d"/><Registerkontroll>%s%s%s</Registerkontroll></%s>'
        % (
            pseudonymiser.secret_id.encode(),
            layer.persons,
            work.invalid,
            _CIPHER_START,
            layer.register_control_text,
            PERSON_ENCRYPTED_DATA_END.encode(),
            PSEUDONYMISED_CONTENT_ROOT.encode(),
        )
    )
    writer.finish()
    return ProcessingResult(
        persons=layer.persons,
        invalid_numbers=work.invalid,
        file_id=layer.file_id,
        secret_id=pseudonymiser.secret_id,
        envelope=envelope,
    )
