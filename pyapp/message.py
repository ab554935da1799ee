"""Builds the encrypted IPLOS message (formats §3, docs/formater.md) as a stream.

Feed it the IPLOS file's bytes as they are read; it gives back the encrypted message's bytes
as they are made. Nothing waits for the end of the file except the TPF layer's GCM tag, so
memory stays flat whatever the file's size. The same code runs natively and in the browser;
only the crypto backend differs.

Layers (threat model in docs/trusselmodell.md):
- register layer: each person's data (all of ``Person`` but ``Fodselsnummer``), AES-256-GCM
  under one content key per file, wrapped for the register's key;
- TPF layer: everything else except Meldingstype, Avsender and Mottaker, AES-256-GCM under a
  second content key per file, wrapped for the TPF's key.
"""

from __future__ import annotations

import binascii
import datetime as dt
import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from operator import attrgetter
from typing import cast

from .clear_part import KEY_NAME, holds_fodselsnummer
from .contact import Contact
from .crypto import CryptoBackend, PendingRecords, SealingStream
from .faults import DataFileTooLarge, DataFileUnreadable, KeyFileInvalid
from .keyfile import KeyFile, describe_key_file
from .reader import Header, IplosReader, PersonRecord, Sender, escape_attribute
from .xmlenc import (
    AES256_GCM,
    CONTENT_KEY_BYTES,
    ENVELOPE_ROOT,
    FORMAT_VERSION,
    GCM_IV_BYTES,
    GCM_TAG_BYTES,
    NAMESPACE_DECLARATIONS,
    PERSON_ENCRYPTED_DATA_END,
    PERSON_ENCRYPTED_DATA_START,
    REGISTER_KEY_CARRIED_NAME,
    REGISTER_KEY_ID,
    REGISTER_RECIPIENT,
    TPF_KEY_ID,
    TPF_LAYER_ID,
    TPF_LAYER_ROOT,
    TPF_RECIPIENT,
    TYPE_ELEMENT,
    encrypted_key_xml,
)

RECORDS_PER_BATCH = 512
MAX_LISTED_LINES = 20
# libxml2, under lxml and libxmlsec1, refuses a text node longer than 1 000 000 000 bytes even
# with XML_PARSE_HUGE. The TPF layer's CipherValue is one text node (formats invariant 1: one
# EncryptedData, nothing else in clear), so a file whose CipherValue would be longer is refused
# rather than written unreadable for a standard XML Encryption 1.1 implementation
# (docs/formater.md, "Size limit"). Read when an encryptor is made, so tests can lower it.
MAX_CIPHER_VALUE_CHARS = 1_000_000_000
NO_PERSONS_WARNING = (
    "IPLOS filen inneholder ingen personer. Filen er kryptert likevel; kontroller uttrekket i "
    "fagsystemet før du sender den."
)

# Per person, work is done by C-level ``map`` over a batch, not a Python loop: these are the
# person's pieces of the TPF layer and the register's record, as bytes formats.
_base64_bytes = partial(binascii.b2a_base64, newline=False)
_TPF_PERSON = (
    b'<Person lopenummer="%d">%s'
    + PERSON_ENCRYPTED_DATA_START.encode()
    + b"%s"
    + PERSON_ENCRYPTED_DATA_END.encode()
    + b"</Person>"
)
_data_xml = attrgetter("data_xml")
_fodselsnummer_xml = attrgetter("fodselsnummer_xml")


@dataclass(frozen=True)
class RecordSealing:
    """What numbering and sealing persons' records needs, known once the header is read: the
    register layer's content key, and the record's start tag (it repeats the input root's
    namespace declarations, as the register parses each record on its own)."""

    register_key: bytes = field(repr=False)
    record_format: bytes


def register_plaintexts(
    record_format: bytes, first: int, batch: Sequence[PersonRecord]
) -> list[bytes]:
    """The register's record of each person, numbered from ``first`` (formats §3)."""
    numbers = range(first, first + len(batch))
    return list(map(record_format.__mod__, zip(numbers, map(_data_xml, batch), strict=True)))


def tpf_persons(first: int, batch: Sequence[PersonRecord], sealed: Sequence[bytes]) -> bytes:
    """The persons' elements of the TPF layer: løpenummer, Fodselsnummer, sealed record."""
    numbers = range(first, first + len(batch))
    pieces = map(
        _TPF_PERSON.__mod__,
        zip(numbers, map(_fodselsnummer_xml, batch), map(_base64_bytes, sealed), strict=True),
    )
    return b"".join(pieces)


class Base64Stream:
    """Base64 of a byte stream, in pieces, without line breaks."""

    def __init__(self) -> None:
        self._rest = b""

    def update(self, data: bytes) -> bytes:
        if self._rest:  # at most two bytes left over from the last piece
            data = self._rest + data
        cut = len(data) - len(data) % 3
        self._rest = data[cut:]
        # a view, not a copy: the TPF layer passes through here whole (about 2.2x the file)
        return binascii.b2a_base64(memoryview(data)[:cut], newline=False) if cut else b""

    def finish(self) -> bytes:
        rest, self._rest = self._rest, b""
        return binascii.b2a_base64(rest, newline=False) if rest else b""


@dataclass
class EncryptionSummary:
    """What the user is shown at the end (seed: the number of persons, and more)."""

    persons: int = 0
    sender: Sender | None = None
    warnings: list[str] = field(default_factory=list)
    output_bytes: int = 0
    sha256: str = ""
    file_id: str = ""
    key_file_lines: list[str] = field(default_factory=list)


def cipher_value_chars(plaintext_bytes: int) -> int:
    """Length of the base64 CipherValue holding IV ‖ ciphertext ‖ tag of this plaintext."""
    return 4 * -(-(GCM_IV_BYTES + plaintext_bytes + GCM_TAG_BYTES) // 3)


def check_digit_warning(lines: list[int]) -> str | None:
    """Wrong check digits: count and lines, never the numbers themselves."""
    if not lines:
        return None
    shown = ", ".join(str(n) for n in lines[:MAX_LISTED_LINES])
    more = " …" if len(lines) > MAX_LISTED_LINES else ""
    noun = "fødselsnummer" if len(lines) == 1 else "fødselsnumre"
    return (
        f"{len(lines)} {noun} har feil kontrollsiffer (Person på linje {shown}{more}). Filen er "
        "kryptert likevel; rett numrene i fagsystemet før neste uttrekk."
    )


class MessageEncryptor:
    """Push-style encryptor: ``await feed(chunk)`` and ``await finish()`` return output bytes."""

    def __init__(
        self,
        keys: KeyFile,
        contact: Contact,
        backend: CryptoBackend,
        today: dt.date | None = None,
        *,
        hash_output: bool = True,
        max_cipher_value_chars: int | None = None,
    ) -> None:
        """``hash_output=False``: the caller computes ``summary.sha256`` from what it writes
        (``ipis encrypt`` does, on its writer thread)."""
        _check_key_ids(keys)
        self._keys = keys
        self._contact = contact
        self._backend = backend
        self._reader = IplosReader()
        self._tpf_key = secrets.token_bytes(CONTENT_KEY_BYTES)  # one fresh key per layer per file
        self._register_key = secrets.token_bytes(CONTENT_KEY_BYTES)
        self._tpf_stream: SealingStream | None = None
        self._tpf_plaintext_bytes = 0
        self._max_cipher_value_chars = (
            MAX_CIPHER_VALUE_CHARS if max_cipher_value_chars is None else max_cipher_value_chars
        )
        self._base64 = Base64Stream()
        self._batch: list[PersonRecord] = []
        self._numbered = 0  # persons already given a lopenummer
        self._sealing: tuple[int, list[PersonRecord], PendingRecords] | None = None
        self._record_format = b'<Person lopenummer="%d">%s</Person>'
        self._appended_lines: list[int] = []  # check digit lines of appended persons
        self._sha256 = hashlib.sha256() if hash_output else None
        self.summary = EncryptionSummary(
            file_id=secrets.token_hex(16), key_file_lines=describe_key_file(keys)
        )
        warning = keys.expiry_warning(today or dt.date.today())
        if warning:
            self.summary.warnings.append(warning)

    @property
    def bytes_read(self) -> int:
        return self._reader.bytes_read

    @property
    def persons(self) -> int:
        return self._reader.persons

    def between_persons(self) -> bool:
        """Whether the bytes fed so far end between two persons: where persons read elsewhere
        may be appended (``IplosReader.between_persons``)."""
        return self._reader.between_persons()

    @property
    def next_lopenummer(self) -> int:
        """The number the next person gets: one more than the persons read or appended."""
        return self._numbered + len(self._batch) + 1

    @property
    def record_sealing(self) -> RecordSealing | None:
        """For sealing persons elsewhere (``append_sealed_persons``); None before the header."""
        if self._tpf_stream is None:
            return None
        return RecordSealing(self._register_key, self._record_format)

    async def append_sealed_persons(
        self, tpf_xml: bytes, count: int, bad_check_digit_lines: Sequence[int]
    ) -> bytes:
        """Persons numbered and sealed elsewhere, from ``next_lopenummer`` on, with
        ``record_sealing`` (``ipis encrypt``'s segments): their elements of the TPF layer
        (``tpf_persons``), their number, and the lines of those with wrong check digits. They
        follow the persons read so far, in file order; only where the reader stands between
        persons (``between_persons``)."""
        out: list[bytes] = []
        try:
            while self._batch:
                await self._flush_batch(out)
            await self._write_sealed(out)
            self._numbered += count
            self._appended_lines += bad_check_digit_lines
            await self._tpf_write_bytes(tpf_xml, out)
        except BaseException:
            self.abandon()
            raise
        return self._emit(out)

    async def feed(self, chunk: bytes) -> bytes:
        out: list[bytes] = []
        try:
            await self._handle_all(self._reader.feed(chunk), out)
        except BaseException:
            self.abandon()
            raise
        return self._emit(out)

    async def finish(self) -> bytes:
        try:
            return await self._finish()
        except BaseException:
            self.abandon()
            raise

    async def _finish(self) -> bytes:
        out: list[bytes] = []
        await self._handle_all(self._reader.close(), out)
        if self._tpf_stream is None:  # close() raises unless the header was read
            raise DataFileUnreadable()
        await self._flush_batch(out)  # the last batch, shorter than the others
        await self._write_sealed(out)
        count = self._numbered
        sender = self.summary.sender
        assert sender is not None
        control = (
            f'<Registerkontroll filId="{self.summary.file_id}" antallPersoner="{count}" '
            f'kommunenummer="{sender.kommunenummer}" bydelsnummer="{sender.bydelsnummer}" '
            f'organisasjonsnummer="{sender.organisasjonsnummer}"/>'
        )
        [sealed_control] = await self._backend.seal_records(self._register_key, [control.encode()])
        await self._tpf_write(
            "</Personer><Registerkontroll>"
            + _person_encrypted_data(sealed_control)
            + f"</Registerkontroll></{TPF_LAYER_ROOT}>",
            out,
        )
        tail = await self._tpf_stream.finish()
        out.append(self._base64.update(tail) + self._base64.finish())
        out.append(
            f"</xenc:CipherValue></xenc:CipherData></xenc:EncryptedData>\n</{ENVELOPE_ROOT}>\n".encode()
        )
        self.summary.persons = count
        if count == 0:
            self.summary.warnings.append(NO_PERSONS_WARNING)
        warning = check_digit_warning(self._reader.bad_check_digit_lines + self._appended_lines)
        if warning:
            self.summary.warnings.append(warning)
        result = self._emit(out)
        if self._sha256 is not None:
            self.summary.sha256 = self._sha256.hexdigest()
        return result

    # --- internals --------------------------------------------------------------------------

    def _emit(self, out: list[bytes]) -> bytes:
        data = b"".join(out)
        if self._sha256 is not None:
            self._sha256.update(data)
        self.summary.output_bytes += len(data)
        return data

    async def _handle_all(self, events: list[Header | PersonRecord], out: list[bytes]) -> None:
        """Persons go into batches without a coroutine or a Python step each (100 000)."""
        if events and isinstance(events[0], Header):  # the reader gives it first, and once
            await self._begin(events[0], out)
            events = events[1:]
        self._batch += cast(list[PersonRecord], events)
        while len(self._batch) >= RECORDS_PER_BATCH:
            await self._flush_batch(out)

    async def _begin(self, header: Header, out: list[bytes]) -> None:
        self.summary.sender = header.sender
        namespaces = "".join(
            f' {name}="{escape_attribute(value)}"' for name, value in header.namespace_declarations
        ).encode()
        self._record_format = b'<Person lopenummer="%d"' + namespaces + b">%s</Person>"
        tpf_wrapped = await self._backend.wrap_key(self._keys.tpf, self._tpf_key)
        register_wrapped = await self._backend.wrap_key(self._keys.iplos, self._register_key)
        self._tpf_stream = self._backend.open_stream(self._tpf_key)
        clear = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<{ENVELOPE_ROOT} versjon="{FORMAT_VERSION}" {NAMESPACE_DECLARATIONS}>\n'
            f"{header.meldingstype.to_xml()}\n{header.avsender.to_xml()}\n"
            f"{header.mottaker.to_xml()}\n"
            f'<xenc:EncryptedData Id="{TPF_LAYER_ID}" Type="{TYPE_ELEMENT}">'
            f'<xenc:EncryptionMethod Algorithm="{AES256_GCM}"/>'
            "<ds:KeyInfo>"
            + encrypted_key_xml(
                _b64(tpf_wrapped), self._keys.tpf.key_id, TPF_KEY_ID, TPF_RECIPIENT
            )
            + "</ds:KeyInfo><xenc:CipherData><xenc:CipherValue>"
        )
        out.append(clear.encode() + self._base64.update(self._tpf_stream.iv))
        register_key = encrypted_key_xml(
            _b64(register_wrapped),
            self._keys.iplos.key_id,
            REGISTER_KEY_ID,
            REGISTER_RECIPIENT,
            carried_name=REGISTER_KEY_CARRIED_NAME,
        )
        await self._tpf_write(
            f'<{TPF_LAYER_ROOT} {NAMESPACE_DECLARATIONS} filId="{self.summary.file_id}">'
            + self._contact.to_xml()
            # The sender again, encrypted: the TPF checks that the clear copy was not changed.
            + header.avsender.to_xml()
            + header.uttak.to_xml()
            + register_key
            + "<Personer>",
            out,
        )

    async def _flush_batch(self, out: list[bytes]) -> None:
        """Start sealing the next batch; write the previous one, sealed meanwhile.

        In the browser WebCrypto seals on its own threads, so Python reads and formats the
        next batch while this one is encrypted; natively nothing suspends and the order of
        work is unchanged. The output order is always the file order.
        """
        if not self._batch:
            return
        batch = self._batch[:RECORDS_PER_BATCH]
        del self._batch[:RECORDS_PER_BATCH]
        first = self._numbered + 1
        self._numbered += len(batch)
        plaintexts = register_plaintexts(self._record_format, first, batch)
        sealing = self._backend.start_sealing(self._register_key, plaintexts)
        await self._write_sealed(out)
        self._sealing = (first, batch, sealing)

    async def _write_sealed(self, out: list[bytes]) -> None:
        """Write the batch whose sealing was started last, if any."""
        if self._sealing is None:
            return
        first, batch, sealing = self._sealing
        self._sealing = None
        sealed = await sealing
        await self._tpf_write_bytes(tpf_persons(first, batch, sealed), out)

    def abandon(self) -> None:
        """After a fault or a cancel: stop a sealing still under way (nothing is written)."""
        if self._sealing is not None:
            self._sealing[2].cancel()
            self._sealing = None

    async def _tpf_write(self, text: str, out: list[bytes]) -> None:
        await self._tpf_write_bytes(text.encode(), out)

    async def _tpf_write_bytes(self, data: bytes, out: list[bytes]) -> None:
        assert self._tpf_stream is not None
        self._tpf_plaintext_bytes += len(data)
        if cipher_value_chars(self._tpf_plaintext_bytes) > self._max_cipher_value_chars:
            raise DataFileTooLarge(self._max_cipher_value_chars)
        out.append(self._base64.update(await self._tpf_stream.update(data)))


def _check_key_ids(keys: KeyFile) -> None:
    """The key ids go into ds:KeyName, the TPF's in clear: the clear part's rule for it."""
    for key in (keys.tpf, keys.iplos):
        if holds_fodselsnummer(key.key_id) or not KEY_NAME.accepts(key.key_id):
            raise KeyFileInvalid(
                "id-en til en nøkkel kan ha høyst 64 tegn: bokstaver, punktum, bindestrek, "
                "understrek og høyst ti siffer"
            )


def _b64(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode()


def _person_encrypted_data(cipher_value: bytes) -> str:
    return PERSON_ENCRYPTED_DATA_START + _b64(cipher_value) + PERSON_ENCRYPTED_DATA_END

