"""Reading the pseudonymised message the TPF delivers to the register (docs/formater.md §4).

The clear part goes through the one envelope reader with the §4 grammar
(``PSEUDONYMISED_ENVELOPE``); the layer is decrypted as it streams (layer.py) into
``PseudonymisedParser``, which hands its parts to a ``DeliveryHandler`` in the order the TPF
writes them, in one pass: the header (contact, sender, Uttak, the register layer's key), each
person (løpenummer, pseudonym, the person's still encrypted register layer), then the TPF's
counts (``Pseudonymisering``) and the encrypted Registerkontroll.

Expat reads everything but the persons written in the format's canonical form, which a regular
expression takes without a Python call per element (100 000 persons a file); a person in any
other form goes through expat too, so only the speed differs.
"""

from __future__ import annotations

import binascii
import datetime as dt
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO, Protocol
from xml.parsers import expat

from cryptography.hazmat.primitives.asymmetric import rsa

from ipis_core import clear_part
from ipis_core.clear_part import holds_fodselsnummer
from ipis_core.contact import Contact
from ipis_core.envelope import ClearPartReader, SenderNumbers, WrappedKey, wrapped_key
from ipis_core.envelope_grammar import PSEUDONYMISED_ENVELOPE, REGISTER_KEY, check_element_tree
from ipis_core.faults import (
    AlgorithmNotAllowed,
    DeliveryAlgorithmNotAllowed,
    DeliveryUnreadable,
    EncryptedMessageFault,
    IplosFault,
)
from ipis_core.xmlenc import AES256_GCM, DS_NS, XENC11_NS, XENC_NS

from .layer import read_layer, transport_key

LAYER_ROOT = "IPLOSPseudonymisertInnhold"
LAYER_NAME = "Det pseudonymiserte laget"
_SEP = " "  # expat's namespace separator
_ENCRYPTED_DATA = f"{XENC_NS}{_SEP}EncryptedData"
_ENCRYPTION_METHOD = f"{XENC_NS}{_SEP}EncryptionMethod"
_CIPHER_DATA = f"{XENC_NS}{_SEP}CipherData"
_CIPHER_VALUE = f"{XENC_NS}{_SEP}CipherValue"
_ENCRYPTED_KEY = f"{XENC_NS}{_SEP}EncryptedKey"
_NAMESPACES = {"xenc": XENC_NS, "xenc11": XENC11_NS, "ds": DS_NS}
_HEX32 = re.compile(r"[0-9a-f]{32}")
_NUMBER = re.compile(r"[1-9][0-9]{0,8}")
_COUNT = re.compile(r"0|[1-9][0-9]{0,8}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# A register record's ciphertext: ~500 bytes for a person; far more is not a record.
MAX_RECORD_BASE64 = 1 << 20
_HEADER_ORDER = ("Kontaktperson", "Avsender", "Uttak", _ENCRYPTED_KEY)
_TAIL_ORDER = ("Pseudonymisering", "Registerkontroll")
_PERSONER_START = b"<Personer>"
_PERSONER_END = b"</Personer>"
_PERSON_END = b"</Person>"
_WS = rb"[ \t\r\n]*"  # XML's whitespace (\s would let \f and \v through)
# One person exactly as docs/formater.md §4 writes it (whitespace between elements allowed).
# ``xenc`` is bound to the XML Encryption namespace by the root (checked before this is used),
# the values' character classes hold no markup and no entity, so a match means what expat
# would read from the same bytes.
_PERSON = re.compile(
    _WS
    + rb'<Person lopenummer="([1-9][0-9]{0,8})" '
    + rb'(?:pseudonym="([0-9a-f]{32})"|ugyldigFodselsnummer="ja")>'
    + _WS + rb"<xenc:EncryptedData>"
    + _WS + b'<xenc:EncryptionMethod Algorithm="' + re.escape(AES256_GCM.encode()) + b'"/>'
    + _WS + rb"<xenc:CipherData>"
    + _WS + rb"<xenc:CipherValue>([A-Za-z0-9+/=]{1,%d})</xenc:CipherValue>" % MAX_RECORD_BASE64
    + _WS + rb"</xenc:CipherData>"
    + _WS + rb"</xenc:EncryptedData>"
    + _WS + rb"</Person>"
)


class _Mode:
    HEAD = 0  # through expat, watching for <Personer>
    PERSONS = 1  # the fast path, with expat for persons it does not match
    EXPAT = 2  # everything through expat (after the persons, or no fast path)


@dataclass(frozen=True)
class ClearPart:
    """The message's clear part: who sent the submission, and the key the layer is wrapped for."""

    meldingstype: str
    sender: SenderNumbers
    sender_name: str
    transport_key: WrappedKey


class PseudonymisedReader(ClearPartReader):
    """The §4 message's clear part, as a stream (the same guard and checker as §3's)."""

    def __init__(self, on_cipher_text: Callable[[bytes], None] | None = None) -> None:
        # Any key name that passes the rule: the keyring says which it takes (and why not).
        super().__init__(PSEUDONYMISED_ENVELOPE, None, on_cipher_text)

    @property
    def clear(self) -> ClearPart:
        values = self.values
        return ClearPart(
            meldingstype=values["meldingstype"],
            sender=SenderNumbers(
                values["kommunenummer"], values["bydelsnummer"], values["organisasjonsnummer"]
            ),
            sender_name=values.get("avsender_navn", ""),
            transport_key=transport_key(self),
        )


@dataclass(frozen=True)
class Uttak:
    dato: dt.date
    periode_fra: dt.date
    periode_til: dt.date


@dataclass(frozen=True)
class DeliveryHeader:
    """Everything the layer holds before the persons."""

    file_id: str
    submission_id: str  # the send module's id (innsendingId)
    contact: Contact
    sender: SenderNumbers  # the encrypted copy of Avsender
    sender_name: str
    uttak: Uttak
    register_key: WrappedKey  # the register layer's key, from the encryption module


@dataclass(frozen=True)
class Pseudonymisation:
    """The TPF's counts, after the persons."""

    secret_id: str  # the TPF secret the pseudonyms were made under (hemmelighetId)
    persons: int  # antallPersoner: Person elements, valid or not
    invalid: int  # ugyldigeFodselsnumre


class DeliveryHandler(Protocol):
    def begin(self, clear: ClearPart, header: DeliveryHeader) -> None:
        """The header has been read; persons follow."""

    def person(self, lopenummer: int, pseudonym: str | None, cipher_value: bytes) -> None:
        """One person record: its number, its pseudonym (None: invalid fødselsnummer) and its
        register layer (IV ‖ ciphertext ‖ tag)."""

    def end(self, counts: Pseudonymisation, control: bytes) -> None:
        """The TPF's counts and the encrypted Registerkontroll; the layer ends here."""


def _unreadable(detail: str) -> DeliveryUnreadable:
    return DeliveryUnreadable(detail)


def _date(text: str, where: str) -> dt.date:
    if not _DATE.fullmatch(text):
        raise _unreadable(f"{where} er ikke en dato (ÅÅÅÅ-MM-DD)")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise _unreadable(f"{where} er ikke en gyldig dato") from None


def _leaf_texts(element: ET.Element, names: tuple[str, ...], optional: tuple[str, ...] = ()
                ) -> dict[str, str]:
    """The texts of ``element``'s children, exactly ``names`` (and ``optional``) in order."""
    if element.attrib or (element.text or "").strip():
        raise _unreadable(f"{element.tag} har attributter eller tekst")
    found: dict[str, str] = {}
    allowed = [*names, *optional]
    position = 0
    for child in element:
        if (child.tail or "").strip():
            raise _unreadable(f"tekst mellom feltene i {element.tag}")
        while position < len(allowed) and allowed[position] != child.tag:
            if allowed[position] in names:
                raise _unreadable(f"{element.tag} mangler {allowed[position]}")
            position += 1
        if position == len(allowed):
            raise _unreadable(f"ukjent eller feilplassert felt {child.tag} i {element.tag}")
        position += 1
        if child.tag != "Fagsystem" and (len(child) or child.attrib):
            raise _unreadable(f"{element.tag}/{child.tag} har underfelt eller attributter")
        text = child.text or ""
        if holds_fodselsnummer(text) or any(holds_fodselsnummer(v) for v in child.attrib.values()):
            # Nothing the register stores may hold a fødselsnummer, not even by mistake.
            raise _unreadable(f"{element.tag}/{child.tag} inneholder et mulig fødselsnummer")
        found[child.tag] = text
    for name in allowed[position:]:
        if name in names:
            raise _unreadable(f"{element.tag} mangler {name}")
    return found


def _contact(element: ET.Element) -> Contact:
    texts = _leaf_texts(element, ("Epost", "Navn", "Mobiltelefon"))
    try:
        return Contact.validated(texts["Epost"], texts["Navn"], texts["Mobiltelefon"])
    except IplosFault:
        raise _unreadable("Kontaktperson har en ugyldig verdi") from None


def _sender(element: ET.Element) -> tuple[SenderNumbers, str]:
    texts = _leaf_texts(
        element,
        ("Kommunenummer", "Bydelsnummer", "Organisasjonsnummer"),
        ("Navn", "Fagsystem"),
    )
    rules: tuple[tuple[str, clear_part.Rule], ...] = (
        ("Kommunenummer", clear_part.KOMMUNENUMMER),
        ("Bydelsnummer", clear_part.BYDELSNUMMER),
        ("Organisasjonsnummer", clear_part.ORGANISASJONSNUMMER),
        ("Navn", clear_part.AVSENDER_NAVN),
    )
    for name, rule in rules:
        if name in texts and not rule.accepts(texts[name]):
            raise _unreadable(f"Avsender/{name} {rule.explain(texts[name])}")
    numbers = SenderNumbers(
        texts["Kommunenummer"], texts["Bydelsnummer"], texts["Organisasjonsnummer"]
    )
    return numbers, texts.get("Navn", "")


def _uttak(element: ET.Element) -> Uttak:
    texts = _leaf_texts(element, ("Dato", "PeriodeFra", "PeriodeTil"))
    uttak = Uttak(
        dato=_date(texts["Dato"], "Uttak/Dato"),
        periode_fra=_date(texts["PeriodeFra"], "Uttak/PeriodeFra"),
        periode_til=_date(texts["PeriodeTil"], "Uttak/PeriodeTil"),
    )
    if uttak.periode_fra > uttak.periode_til:
        raise _unreadable("Uttak/PeriodeFra er etter PeriodeTil")
    return uttak


def _pseudonymisation(element: ET.Element) -> Pseudonymisation:
    attributes = dict(element.attrib)
    if set(attributes) != {"hemmelighetId", "antallPersoner", "ugyldigeFodselsnumre"} or len(
        element
    ) or (element.text or "").strip():
        raise _unreadable(
            "Pseudonymisering skal ha nøyaktig hemmelighetId, antallPersoner og "
            "ugyldigeFodselsnumre"
        )
    secret_id = attributes["hemmelighetId"]
    if not clear_part.KEY_NAME.accepts(secret_id):
        raise _unreadable("Pseudonymisering/@hemmelighetId " + clear_part.KEY_NAME.expected)
    for name in ("antallPersoner", "ugyldigeFodselsnumre"):
        if not _COUNT.fullmatch(attributes[name]):
            raise _unreadable(f"Pseudonymisering/@{name} er ikke et antall")
    return Pseudonymisation(
        secret_id, int(attributes["antallPersoner"]), int(attributes["ugyldigeFodselsnumre"])
    )


def _et_name(name: str) -> str:
    """An expat name (``uri local``) as ElementTree spells it (``{uri}local``)."""
    uri, _, local = name.rpartition(_SEP)
    return f"{{{uri}}}{local}" if uri else local


def _shown(name: str) -> str:
    uri, _, local = name.rpartition(_SEP)
    prefix = {v: k for k, v in _NAMESPACES.items()}.get(uri)
    shown = f"{prefix}:{local}" if prefix else local
    return shown[:40]


class PseudonymisedParser:
    """The pseudonymised layer's plaintext, pushed in pieces (``feed``, then ``close``)."""

    def __init__(self, clear: ClearPart, handler: DeliveryHandler) -> None:
        self._clear = clear
        self._handler = handler
        parser = expat.ParserCreate(encoding="UTF-8", namespace_separator=_SEP)
        parser.buffer_text = True
        parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        if hasattr(parser, "SetReparseDeferralEnabled"):  # expat >= 2.6: parse what we feed
            parser.SetReparseDeferralEnabled(False)
        parser.StartDoctypeDeclHandler = self._refuse_markup
        parser.ProcessingInstructionHandler = self._refuse_markup
        parser.CommentHandler = self._refuse_markup
        parser.StartNamespaceDeclHandler = self._namespace
        parser.StartElementHandler = self._root_start
        parser.EndElementHandler = self._end_outside
        parser.CharacterDataHandler = self._whitespace_only
        self._parser = parser
        self._started = False
        self._mode = _Mode.HEAD
        self._pending = b""
        self._xenc_declared = False
        self._in_persons = False
        self._depth = 0
        self._ended = False
        self._header_seen: list[str] = []
        self._root_attributes: dict[str, str] = {}
        self._header_parts: dict[str, ET.Element] = {}
        self._builder: ET.TreeBuilder | None = None
        self._builder_depth = 0
        # the persons' part
        self._step = 0
        self._lopenummer = 0
        self._pseudonym: str | None = None
        self._text: list[str] = []
        self._text_size = 0
        self._tail: dict[str, ET.Element] = {}

    # --- feeding --------------------------------------------------------------------------
    #
    # Everything goes through expat except the persons written in the format's own form
    # (``_PERSON``), which a regular expression takes without a Python call per element: a
    # tenth of the time, for 100 000 persons. Whatever does not match it exactly (other
    # whitespace, attribute order or quotes, a comment …) goes through expat as well, person by
    # person, so the outcome is the same either way; only the speed differs.

    def feed(self, data: bytes) -> None:
        if self._mode == _Mode.EXPAT:
            self._expat(data)
            return
        buffer = self._pending + data if self._pending else data
        self._pending = b""
        if self._mode == _Mode.HEAD:
            buffer = self._head(buffer)
        if self._mode == _Mode.PERSONS:
            buffer = self._persons(buffer)
        if self._mode == _Mode.EXPAT:
            self._expat(buffer)
        else:
            self._pending = buffer

    def close(self) -> None:
        if self._pending:
            rest, self._pending = self._pending, b""
            self._expat(rest)
        try:
            self._parser.Parse(b"", True)
        except expat.ExpatError as error:
            raise _unreadable(f"laget er ikke gyldig XML (expat-feil {error.code})") from None
        if not self._ended:
            raise _unreadable("laget slutter for tidlig")

    def _expat(self, data: bytes) -> None:
        try:
            self._parser.Parse(data, False)
        except expat.ExpatError as error:
            raise _unreadable(f"laget er ikke gyldig XML (expat-feil {error.code})") from None

    def _head(self, buffer: bytes) -> bytes:
        """Up to and with ``<Personer>`` through expat; what follows is held back."""
        found = buffer.find(_PERSONER_START)
        if found < 0:
            keep = len(_PERSONER_START) - 1  # the start tag may be split between two pieces
            self._expat(buffer[:-keep])
            return buffer[-keep:]
        end = found + len(_PERSONER_START)
        self._expat(buffer[:end])
        # Expat has begun the persons (``_begin_persons``), or met something else and failed.
        self._mode = _Mode.PERSONS if self._fast_path_ok() else _Mode.EXPAT
        return buffer[end:]

    def _fast_path_ok(self) -> bool:
        """Only where ``xenc:`` is the root's own binding and expat is between persons."""
        return self._xenc_declared and self._step == 0 and self._in_persons

    def _persons(self, buffer: bytes) -> bytes:
        """The persons: matched ones handed on, others through expat; returns what is left."""
        position = 0
        match = _PERSON.match
        handler_person = self._handler.person
        a2b_base64 = binascii.a2b_base64
        while True:
            found = match(buffer, position)
            if found is not None:
                number, pseudonym, text = found.groups()
                lopenummer = int(number)
                self._lopenummer = lopenummer
                try:  # the expression's class has no whitespace: the text is base64 as it is
                    cipher_value = a2b_base64(text, strict_mode=True)
                except (ValueError, binascii.Error):
                    raise _unreadable(f"personposten med løpenummer {lopenummer}: CipherValue "
                                      "er ikke base64") from None
                handler_person(
                    lopenummer, pseudonym.decode() if pseudonym is not None else None,
                    cipher_value,
                )
                position = found.end()
                continue
            rest = buffer[position:].lstrip(b" \t\r\n")
            if len(rest) < len(_PERSONER_END):
                return rest
            if rest.startswith(_PERSONER_END):
                self._mode = _Mode.EXPAT
                return rest
            end = rest.find(_PERSON_END)
            if end < 0:
                if len(rest) > MAX_RECORD_BASE64 + 4096:
                    raise _unreadable("en personpost er for stor eller slutter aldri")
                return rest  # wait for the rest of this person
            end += len(_PERSON_END)
            self._expat(rest[:end])  # the slow path: the same checks, element by element
            buffer, position = rest[end:], 0

    # --- shared handlers --------------------------------------------------------------------

    def _refuse_markup(self, *_: object) -> None:
        raise _unreadable("laget har markering som ikke er et felt")

    def _namespace(self, prefix: str | None, uri: str) -> None:
        """Only the root declares namespaces, and only the three the format uses."""
        if self._started or prefix is None or _NAMESPACES.get(prefix) != uri:
            raise _unreadable("ukjent eller feilplassert navneromsdeklarasjon")
        if prefix == "xenc":
            self._xenc_declared = True

    def _whitespace_only(self, data: str) -> None:
        if data.strip(" \t\r\n"):
            raise _unreadable("tekst mellom feltene")

    def _end_outside(self, name: str) -> None:
        raise _unreadable(f"{_shown(name)} slutter på feil sted")

    # --- the root and the header --------------------------------------------------------------

    def _root_start(self, name: str, attributes: dict[str, str]) -> None:
        if self._started:
            raise _unreadable("mer enn ett rotelement")
        if name != LAYER_ROOT:
            raise _unreadable("laget har feil rotelement")
        if set(attributes) != {"filId", "innsendingId"} or not all(
            _HEX32.fullmatch(v) for v in attributes.values()
        ):
            raise _unreadable(f"{LAYER_ROOT} skal ha filId og innsendingId (32 heksadesimale)")
        self._started = True
        self._root_attributes = attributes
        self._parser.StartElementHandler = self._header_start
        self._parser.EndElementHandler = self._root_end

    def _header_start(self, name: str, attributes: dict[str, str]) -> None:
        """A top-level element before the persons: built as a small tree, checked at its end."""
        if name == "Personer":
            self._begin_persons(attributes)
            return
        if name not in _HEADER_ORDER:
            raise _unreadable(f"ukjent felt {_shown(name)}")
        expected = _HEADER_ORDER[len(self._header_seen)] if len(self._header_seen) < len(
            _HEADER_ORDER
        ) else None
        if name != expected:
            raise _unreadable(f"{_shown(name)} står på feil sted")
        self._header_seen.append(name)
        self._builder = ET.TreeBuilder()
        self._builder.start(_et_name(name), {_et_name(k): v for k, v in attributes.items()})
        self._builder_depth = 1
        parser = self._parser
        parser.StartElementHandler = self._build_start
        parser.EndElementHandler = self._build_end
        parser.CharacterDataHandler = self._build_text

    def _build_start(self, name: str, attributes: dict[str, str]) -> None:
        assert self._builder is not None
        self._builder_depth += 1
        if self._builder_depth > 6:
            raise _unreadable("for mange nivåer i hodet")
        self._builder.start(_et_name(name), {_et_name(k): v for k, v in attributes.items()})

    def _build_text(self, data: str) -> None:
        assert self._builder is not None
        self._builder.data(data)

    def _build_end(self, name: str) -> None:
        assert self._builder is not None
        self._builder.end(_et_name(name))
        self._builder_depth -= 1
        if self._builder_depth:
            return
        element = self._builder.close()
        self._builder = None
        self._header_parts[element.tag] = element
        parser = self._parser
        parser.StartElementHandler = self._header_start
        parser.EndElementHandler = self._root_end
        parser.CharacterDataHandler = self._whitespace_only

    def _header(self) -> DeliveryHeader:
        parts = self._header_parts
        if len(self._header_seen) != len(_HEADER_ORDER):
            missing = _HEADER_ORDER[len(self._header_seen)]
            raise _unreadable(f"laget mangler {_shown(missing)} før Personer")
        sender, sender_name = _sender(parts["Avsender"])
        try:
            values = check_element_tree(parts[_et_name(_ENCRYPTED_KEY)], REGISTER_KEY)
        except AlgorithmNotAllowed as fault:
            raise DeliveryAlgorithmNotAllowed(f"registernøkkelen: {fault.detail}") from None
        except EncryptedMessageFault as fault:
            raise _unreadable(f"registernøkkelen: {fault.detail or fault.message}") from None
        return DeliveryHeader(
            file_id=self._root_attributes["filId"],
            submission_id=self._root_attributes["innsendingId"],
            contact=_contact(parts["Kontaktperson"]),
            sender=sender,
            sender_name=sender_name,
            uttak=_uttak(parts["Uttak"]),
            register_key=wrapped_key(values, "register_key"),
        )

    def _root_end(self, name: str) -> None:
        if name != LAYER_ROOT or len(self._tail) != len(_TAIL_ORDER):
            raise _unreadable("laget mangler Personer, Pseudonymisering eller Registerkontroll")
        self._handler.end(
            _pseudonymisation(self._tail["Pseudonymisering"]),
            _control_cipher_value(self._tail["Registerkontroll"]),
        )
        self._ended = True
        self._parser.StartElementHandler = self._after_root
        self._parser.EndElementHandler = self._end_outside

    def _after_root(self, name: str, _attributes: dict[str, str]) -> None:
        raise _unreadable("et felt etter rotelementet")

    # --- the persons: the hot loop, one small state machine ------------------------------------
    #
    # Person > xenc:EncryptedData > (xenc:EncryptionMethod, xenc:CipherData > xenc:CipherValue),
    # nothing else; whitespace between elements is allowed.

    def _begin_persons(self, attributes: dict[str, str]) -> None:
        if attributes:
            raise _unreadable("Personer har attributter")
        self._handler.begin(self._clear, self._header())
        self._step = 0
        self._in_persons = True
        parser = self._parser
        parser.StartElementHandler = self._person_start
        parser.EndElementHandler = self._person_end

    def _person_start(self, name: str, attributes: dict[str, str]) -> None:
        step = self._step
        if step == 0 and name == "Person":
            self._person_attributes(attributes)
        elif step == 1 and name == _ENCRYPTED_DATA and not attributes:
            pass
        elif step == 2 and name == _ENCRYPTION_METHOD:
            if list(attributes) != ["Algorithm"]:
                raise _unreadable(f"personposten med løpenummer {self._lopenummer}: "
                                  "EncryptionMethod skal ha bare Algorithm")
            if attributes["Algorithm"] != AES256_GCM:
                raise DeliveryAlgorithmNotAllowed(
                    f"personposten med løpenummer {self._lopenummer}: xenc:EncryptionMethod/"
                    f"@Algorithm er ikke {AES256_GCM}"
                )
        elif step == 4 and name == _CIPHER_DATA and not attributes:
            pass
        elif step == 5 and name == _CIPHER_VALUE and not attributes:
            self._text = []
            self._text_size = 0
            self._parser.CharacterDataHandler = self._cipher_text
        else:
            where = f"personposten med løpenummer {self._lopenummer}" if step else "Personer"
            raise _unreadable(f"{where}: {_shown(name)} står på feil sted eller har attributter")
        self._step = step + 1

    def _person_attributes(self, attributes: dict[str, str]) -> None:
        number = attributes.get("lopenummer", "")
        if not _NUMBER.fullmatch(number):
            raise _unreadable("Person/@lopenummer er ikke et løpenummer")
        self._lopenummer = int(number)
        if len(attributes) != 2:
            raise _unreadable(f"personposten med løpenummer {number} skal ha enten pseudonym "
                              "eller ugyldigFodselsnummer")
        pseudonym = attributes.get("pseudonym")
        if pseudonym is not None:
            if not _HEX32.fullmatch(pseudonym):
                raise _unreadable(f"personposten med løpenummer {number}: pseudonym er ikke 32 "
                                  "heksadesimale")
            self._pseudonym = pseudonym
        elif attributes.get("ugyldigFodselsnummer") == "ja":
            self._pseudonym = None
        else:
            raise _unreadable(f"personposten med løpenummer {number} skal ha enten pseudonym "
                              "eller ugyldigFodselsnummer=\"ja\"")

    def _cipher_text(self, data: str) -> None:
        self._text_size += len(data)
        if self._text_size > MAX_RECORD_BASE64:
            raise _unreadable(f"personposten med løpenummer {self._lopenummer} er for stor")
        self._text.append(data)

    def _person_end(self, name: str) -> None:
        step = self._step
        if step == 0 and name == "Personer":
            self._end_persons()
            return
        expected = {3: _ENCRYPTION_METHOD, 6: _CIPHER_VALUE, 7: _CIPHER_DATA,
                    8: _ENCRYPTED_DATA, 9: "Person"}.get(step)
        if name != expected:
            raise _unreadable(
                f"personposten med løpenummer {self._lopenummer} er ufullstendig eller har "
                "feil struktur"
            )
        if step == 6:
            self._parser.CharacterDataHandler = self._whitespace_only
        if step == 9:
            cipher_value = _base64(
                "".join(self._text), f"personposten med løpenummer {self._lopenummer}"
            )
            self._handler.person(self._lopenummer, self._pseudonym, cipher_value)
            self._step = 0
            return
        self._step = step + 1

    def _end_persons(self) -> None:
        self._in_persons = False
        parser = self._parser
        parser.StartElementHandler = self._tail_start
        parser.EndElementHandler = self._root_end

    # --- after the persons: Pseudonymisering and Registerkontroll --------------------------------

    def _tail_start(self, name: str, attributes: dict[str, str]) -> None:
        expected = _TAIL_ORDER[len(self._tail)] if len(self._tail) < len(_TAIL_ORDER) else None
        if name != expected:
            raise _unreadable(f"{_shown(name)} står på feil sted etter Personer")
        self._builder = ET.TreeBuilder()
        self._builder.start(name, {_et_name(k): v for k, v in attributes.items()})
        self._builder_depth = 1
        parser = self._parser
        parser.StartElementHandler = self._build_start
        parser.EndElementHandler = self._tail_end
        parser.CharacterDataHandler = self._build_text

    def _tail_end(self, name: str) -> None:
        assert self._builder is not None
        self._builder.end(_et_name(name))
        self._builder_depth -= 1
        if self._builder_depth:
            return
        element = self._builder.close()
        self._builder = None
        self._tail[element.tag] = element
        parser = self._parser
        parser.StartElementHandler = self._tail_start
        parser.EndElementHandler = self._root_end
        parser.CharacterDataHandler = self._whitespace_only


def _base64(text: str, where: str) -> bytes:
    try:
        return binascii.a2b_base64("".join(text.split()), strict_mode=True)
    except (ValueError, binascii.Error):
        raise _unreadable(f"{where}: CipherValue er ikke base64") from None


def _control_cipher_value(element: ET.Element) -> bytes:
    """Registerkontroll > xenc:EncryptedData > (EncryptionMethod aes256-gcm, CipherData)."""
    q = {"x": XENC_NS}
    encrypted = list(element)
    if len(encrypted) != 1 or encrypted[0].tag != f"{{{XENC_NS}}}EncryptedData" or encrypted[
        0
    ].attrib:
        raise _unreadable("Registerkontroll skal ha nøyaktig én xenc:EncryptedData")
    children = list(encrypted[0])
    if [c.tag for c in children] != [f"{{{XENC_NS}}}EncryptionMethod", f"{{{XENC_NS}}}CipherData"]:
        raise _unreadable("Registerkontroll har feil struktur")
    if children[0].get("Algorithm") != AES256_GCM or len(children[0].attrib) != 1:
        raise DeliveryAlgorithmNotAllowed(
            f"Registerkontroll: xenc:EncryptionMethod/@Algorithm er ikke {AES256_GCM}"
        )
    values = children[1].findall("x:CipherValue", q)
    if len(values) != 1 or len(children[1]) != 1:
        raise _unreadable("Registerkontroll har feil struktur")
    return _base64(values[0].text or "", "Registerkontroll")


def read_delivery(
    source: BinaryIO,
    private_key_for: Callable[[ClearPart], rsa.RSAPrivateKey],
    handler: DeliveryHandler,
) -> ClearPart:
    """Read a whole pseudonymised message from ``source``, handing its parts to ``handler``
    (faults: layer.read_layer's)."""

    def parser(reader: ClearPartReader) -> PseudonymisedParser:
        assert isinstance(reader, PseudonymisedReader)
        return PseudonymisedParser(reader.clear, handler)

    def key_for(reader: ClearPartReader) -> rsa.RSAPrivateKey:
        assert isinstance(reader, PseudonymisedReader)
        return private_key_for(reader.clear)

    reader = read_layer(source, PseudonymisedReader, key_for, parser, LAYER_NAME)
    assert isinstance(reader, PseudonymisedReader)
    return reader.clear
