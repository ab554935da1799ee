"""The clear part of an encrypted message, element by element, and the checker that applies it.

One definition of what the envelope may hold (formats §3, docs/formater.md): every element in
its place and order, every attribute with its fixed value or its pattern, every text with its
rule (clear_part), the algorithm URIs fixed (no downgrade), the ``Id``s, ``Recipient``s and
``CarriedKeyName`` the writer uses, and the TPF key's ``ds:KeyName`` from a set the caller
passes (the key ids of the key files the send module serves; the TPF passes its own).
The published XSD (xsd/ipis-kryptert.xsd and its profiles) says the same; tests hold both to
the same vectors (tests/vectors/envelope).

``ClearPartChecker`` takes parse events (start, text, end) from expat in the streaming reader
(ipis_core.envelope) or from an ElementTree walk (the register key inside the TPF layer), so
both read the same rules. Standard library only.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from enum import Enum
from xml.etree import ElementTree as ET

from . import clear_part
from .clear_part import Rule, holds_fodselsnummer
from .faults import (
    AlgorithmNotAllowed,
    CipherValueInvalid,
    CleartextIplosFile,
    FodselsnummerInClearPart,
    InvalidEnvelopeValue,
    MisplacedEnvelopeElement,
    MissingEnvelopeAttribute,
    MissingEnvelopeElement,
    StrayText,
    UnexpectedEnvelopeAttribute,
    UnknownEnvelopeElement,
    UnknownKeyName,
    WrongRootElement,
)
from .xmlenc import (
    AES256_GCM,
    DS_NS,
    ENVELOPE_ROOT,
    FORMAT_VERSION,
    MAPPING_LAYER_ID,
    MGF1_SHA256,
    PSEUDONYMISED_LAYER_ID,
    REGISTER_KEY_CARRIED_NAME,
    REGISTER_KEY_ID,
    REGISTER_RECIPIENT,
    REGISTER_TRANSPORT_KEY_ID,
    RSA_OAEP,
    SHA256,
    TPF_KEY_ID,
    TPF_LAYER_ID,
    TPF_RECIPIENT,
    TYPE_ELEMENT,
    XENC11_NS,
    XENC_NS,
)

SEPARATOR = " "  # expat joins a namespace URI and a local name with this
CLEARTEXT_ROOT = "IPLOS"  # an unencrypted export chosen by mistake
# The only namespace declarations the envelope has, all on its root element.
NAMESPACES = {"xenc": XENC_NS, "xenc11": XENC11_NS, "ds": DS_NS}
_PREFIXES = {uri: prefix for prefix, uri in NAMESPACES.items()}
# RSA-OAEP output is as long as the modulus: 2048 bits (the smallest key file allows) to 8192.
WRAPPED_KEY_BYTES = (256, 1024)
_WHITESPACE = " \t\r\n"


def qname(namespace: str, local: str) -> str:
    return f"{namespace}{SEPARATOR}{local}"


def display_name(name: str) -> str:
    """An element name as the file most likely spelled it (xenc:…, ds:…, or the bare name),
    cut to 40 characters."""
    namespace, _, local = name.rpartition(SEPARATOR)
    prefix = _PREFIXES.get(namespace)
    shown = f"{prefix}:{local}" if prefix else local
    return shown if len(shown) <= 40 else shown[:40] + "…"


class Text(Enum):
    """What an element's text may be."""

    NONE = "whitespace between child elements only"
    VALUE = "a value with a clear_part rule"
    KEY_NAME = "a ds:KeyName: rule, then the caller's set of key names"
    WRAPPED_KEY = "base64 of an RSA-OAEP ciphertext"
    FIXED = "exactly one text"
    STREAMED = "the TPF layer's base64, checked as it streams by the reader, never buffered"


@dataclass(frozen=True)
class Attribute:
    name: str
    fixed: str | None = None  # the one value allowed
    rule: Rule | None = None
    algorithm: bool = False  # a fixed algorithm URI: another value is a downgrade
    required: bool = True


@dataclass(frozen=True)
class Element:
    """One element of the grammar, in its place: the same name can mean different things in
    different places (EncryptionMethod, KeyInfo, CipherValue)."""

    name: str
    attributes: tuple[Attribute, ...] = ()
    children: tuple[Element, ...] = ()
    text: Text = Text.NONE
    rule: Rule | None = None
    fixed_text: str = ""
    optional: bool = False
    key: str = ""  # where the checker keeps the text (``values``)

    @property
    def label(self) -> str:
        return display_name(self.name)


def _encrypted_key(element_id: str, recipient: str, carried_name: str, key: str) -> Element:
    """An xenc:EncryptedKey exactly as xmlenc.encrypted_key_xml writes it."""
    carried = (
        (
            Element(
                qname(XENC_NS, "CarriedKeyName"),
                text=Text.FIXED,
                fixed_text=carried_name,
                key=f"{key}.carried_name",
            ),
        )
        if carried_name
        else ()
    )
    return Element(
        qname(XENC_NS, "EncryptedKey"),
        attributes=(Attribute("Id", fixed=element_id), Attribute("Recipient", fixed=recipient)),
        children=(
            Element(
                qname(XENC_NS, "EncryptionMethod"),
                attributes=(Attribute("Algorithm", fixed=RSA_OAEP, algorithm=True),),
                children=(
                    Element(
                        qname(DS_NS, "DigestMethod"),
                        attributes=(Attribute("Algorithm", fixed=SHA256, algorithm=True),),
                    ),
                    # Required: without it OAEP's mask generation would default to MGF1-SHA-1.
                    Element(
                        qname(XENC11_NS, "MGF"),
                        attributes=(Attribute("Algorithm", fixed=MGF1_SHA256, algorithm=True),),
                    ),
                ),
            ),
            Element(
                qname(DS_NS, "KeyInfo"),
                children=(
                    Element(
                        qname(DS_NS, "KeyName"),
                        text=Text.KEY_NAME,
                        rule=clear_part.KEY_NAME,
                        key=f"{key}.key_name",
                    ),
                ),
            ),
            Element(
                qname(XENC_NS, "CipherData"),
                children=(
                    Element(
                        qname(XENC_NS, "CipherValue"), text=Text.WRAPPED_KEY, key=f"{key}.wrapped"
                    ),
                ),
            ),
            *carried,
        ),
    )


TPF_KEY = _encrypted_key(TPF_KEY_ID, TPF_RECIPIENT, "", "tpf_key")
REGISTER_KEY = _encrypted_key(
    REGISTER_KEY_ID, REGISTER_RECIPIENT, REGISTER_KEY_CARRIED_NAME, "register_key"
)


def _leaf(name: str, rule: Rule, key: str, optional: bool = False) -> Element:
    return Element(name, text=Text.VALUE, rule=rule, key=key, optional=optional)


def clear_envelope(root: str, layer_id: str, layer_key: Element) -> Element:
    """A message's clear part: Meldingstype, Avsender and Mottaker in clear, then the one
    encrypted layer with its wrapped key. The encrypted message (formats §3) and the
    pseudonymised message the TPF sends the register (§4) differ only in the names."""
    return Element(
        root,
        attributes=(Attribute("versjon", fixed=FORMAT_VERSION),),
        children=(
            _leaf("Meldingstype", clear_part.MELDINGSTYPE, "meldingstype"),
            Element(
                "Avsender",
                key="avsender",
                children=(
                    _leaf("Kommunenummer", clear_part.KOMMUNENUMMER, "kommunenummer"),
                    _leaf("Bydelsnummer", clear_part.BYDELSNUMMER, "bydelsnummer"),
                    _leaf(
                        "Organisasjonsnummer",
                        clear_part.ORGANISASJONSNUMMER,
                        "organisasjonsnummer",
                    ),
                    _leaf("Navn", clear_part.AVSENDER_NAVN, "avsender_navn", optional=True),
                    Element(
                        "Fagsystem",
                        optional=True,
                        attributes=(
                            Attribute("navn", rule=clear_part.FAGSYSTEM_NAVN, required=False),
                            Attribute(
                                "versjon", rule=clear_part.FAGSYSTEM_VERSJON, required=False
                            ),
                        ),
                    ),
                ),
            ),
            Element(
                "Mottaker",
                children=(
                    _leaf("Navn", clear_part.MOTTAKER_NAVN, "mottaker_navn"),
                    _leaf(
                        "Organisasjonsnummer",
                        clear_part.ORGANISASJONSNUMMER,
                        "mottaker_organisasjonsnummer",
                        optional=True,
                    ),
                ),
            ),
            encrypted_layer(layer_id, layer_key),
        ),
    )


def encrypted_layer(layer_id: str, layer_key: Element) -> Element:
    """The one encrypted layer of a message: AES-256-GCM, its key wrapped in ``layer_key``,
    the ciphertext streamed (never buffered)."""
    return Element(
        qname(XENC_NS, "EncryptedData"),
        attributes=(
            Attribute("Id", fixed=layer_id),
            Attribute("Type", fixed=TYPE_ELEMENT),
        ),
        children=(
            Element(
                qname(XENC_NS, "EncryptionMethod"),
                attributes=(Attribute("Algorithm", fixed=AES256_GCM, algorithm=True),),
            ),
            Element(qname(DS_NS, "KeyInfo"), children=(layer_key,)),
            Element(
                qname(XENC_NS, "CipherData"),
                children=(Element(qname(XENC_NS, "CipherValue"), text=Text.STREAMED),),
            ),
        ),
    )


ENVELOPE = clear_envelope(ENVELOPE_ROOT, TPF_LAYER_ID, TPF_KEY)

# What the TPF sends the register (docs/formater.md §4 and §6). The pseudonymised message has
# the same clear part as §3; each layer is wrapped for one of the register's keys (its values
# under ``register_key``; the register's keyring decides which ``ds:KeyName`` it takes).
PSEUDONYMISED_ROOT = "IPLOSPseudonymisert"
REGISTER_TRANSPORT_KEY = _encrypted_key(
    REGISTER_TRANSPORT_KEY_ID, REGISTER_RECIPIENT, "", "register_key"
)
PSEUDONYMISED_ENVELOPE = clear_envelope(
    PSEUDONYMISED_ROOT, PSEUDONYMISED_LAYER_ID, REGISTER_TRANSPORT_KEY
)
# The pseudonym mapping after a secret rotation (§6): nothing in clear but the layer.
MAPPING_ROOT = "IPLOSPseudonymbytte"
MAPPING_ENVELOPE = Element(
    MAPPING_ROOT,
    attributes=(Attribute("versjon", fixed=FORMAT_VERSION),),
    children=(encrypted_layer(MAPPING_LAYER_ID, REGISTER_TRANSPORT_KEY),),
)


def _names(element: Element) -> set[str]:
    found = {element.name}
    for child in element.children:
        found |= _names(child)
    return found


# Every element the clear envelope knows (the XSD declares the same): anything else is
# reported by name (seed: the "Valideringsfeil. Ukjent tag navn" of the send module); a known
# one out of place is a format fault.
KNOWN_ELEMENTS = frozenset(_names(ENVELOPE))


def check_fodselsnummer(value: str, where: str) -> None:
    if holds_fodselsnummer(value):
        raise FodselsnummerInClearPart(where)


def decode_wrapped_key(text: str, where: str) -> bytes:
    """The RSA-OAEP ciphertext of an EncryptedKey: base64 of 256 to 1024 bytes."""
    compact = "".join(text.split())
    if len(compact) % 4:  # binascii's strict mode lets a short final group pass
        raise CipherValueInvalid(f"{where} er avkortet")
    try:
        wrapped = binascii.a2b_base64(compact, strict_mode=True)
    except ValueError:  # binascii.Error, or a non-ASCII character
        raise CipherValueInvalid(f"{where} er ikke base64") from None
    low, high = WRAPPED_KEY_BYTES
    if not low <= len(wrapped) <= high:
        raise CipherValueInvalid(f"{where} har feil lengde")
    return wrapped


@dataclass
class _Open:
    """An element being read: its grammar, the next child position, its text so far."""

    spec: Element
    next_child: int = 0
    text: list[str] = field(default_factory=list)


class ClearPartChecker:
    """Applies a grammar to one element tree's events; keeps the values by their ``key``.

    ``key_names``: the accepted ``ds:KeyName``s (None: any that passes its rule).
    ``on_sender``: called with the Avsender's values as soon as it ends (the send module
    compares them with the login before reading further).
    """

    def __init__(
        self,
        grammar: Element,
        key_names: Collection[str] | None = None,
        on_sender: Callable[[dict[str, str]], None] | None = None,
    ) -> None:
        self._grammar = grammar
        self._key_names = None if key_names is None else frozenset(key_names)
        self._on_sender = on_sender
        self._stack: list[_Open] = []
        self.values: dict[str, str] = {}
        self.started = False
        self.done = False
        self.streaming = False  # inside the Text.STREAMED element: the reader checks the text
        self._streamed_checked = False

    # --- events ------------------------------------------------------------------------------

    def namespace(self, prefix: str | None, uri: str) -> None:
        """A namespace declaration (expat reports it before the element that carries it)."""
        if self.started:
            raise UnexpectedEnvelopeAttribute("navneromsdeklarasjon utenfor rotelementet")
        if prefix is None or NAMESPACES.get(prefix) != uri:
            check_fodselsnummer(uri, "navneromsdeklarasjon")
            raise UnexpectedEnvelopeAttribute("ukjent navneromsdeklarasjon")

    def start(self, name: str, attributes: dict[str, str]) -> None:
        if not self._stack:
            spec = self._root(name)
        else:
            spec = self._child(self._stack[-1], name)
        self._check_attributes(spec, attributes)
        self._stack.append(_Open(spec))
        self.started = True
        if spec.text is Text.STREAMED:
            self.streaming = True
            self._streamed_checked = False

    def text(self, data: str) -> None:
        top = self._stack[-1]
        if top.spec.text is Text.STREAMED:
            # The reader hands the streamed text to its consumer and never to the parser.
            raise AssertionError("the streamed CipherValue reached the checker")
        if top.spec.text is Text.NONE:
            if data.strip(_WHITESPACE):
                check_fodselsnummer(data, top.spec.label)
                raise StrayText(f"tekst i {top.spec.label}")
            return
        top.text.append(data)

    def end(self, _name: str) -> None:
        top = self._stack.pop()
        spec = top.spec
        for missing in spec.children[top.next_child :]:
            if not missing.optional:
                raise MissingEnvelopeElement(f"{spec.label} mangler {missing.label}")
        if spec.text is Text.STREAMED:
            if not self._streamed_checked:  # <xenc:CipherValue/>: the reader saw no text
                raise CipherValueInvalid("CipherValue er tom")
            self.streaming = False
        elif spec.text is not Text.NONE:
            self._check_text(spec, "".join(top.text))
        if spec.key == "avsender" and self._on_sender is not None:
            self._on_sender(self.values)
        if not self._stack:
            self.done = True

    def streamed_text_checked(self) -> None:
        """The reader has checked the streamed CipherValue's text (base64, length)."""
        self._streamed_checked = True

    # --- rules -------------------------------------------------------------------------------

    def _root(self, name: str) -> Element:
        if self.started:
            raise MisplacedEnvelopeElement("et nytt rotelement")
        if name == self._grammar.name:
            return self._grammar
        if name == CLEARTEXT_ROOT:
            raise CleartextIplosFile()
        check_fodselsnummer(name, "rotelementets navn")
        raise WrongRootElement(f"rotelementet er ikke {self._grammar.label}")

    def _child(self, parent: _Open, name: str) -> Element:
        children = parent.spec.children
        for index in range(parent.next_child, len(children)):
            if children[index].name != name:
                continue
            for skipped in children[parent.next_child : index]:
                if not skipped.optional:
                    raise MissingEnvelopeElement(f"{parent.spec.label} mangler {skipped.label}")
            parent.next_child = index + 1
            return children[index]
        if name in KNOWN_ELEMENTS:
            raise MisplacedEnvelopeElement(f"{display_name(name)} står feil i {parent.spec.label}")
        check_fodselsnummer(name, "elementnavn")
        raise UnknownEnvelopeElement(display_name(name))

    def _check_attributes(self, spec: Element, attributes: dict[str, str]) -> None:
        for name, value in attributes.items():
            check_fodselsnummer(name, f"attributtnavn i {spec.label}")
            check_fodselsnummer(value, f"attributt i {spec.label}")
        allowed = {a.name: a for a in spec.attributes}
        for name, value in attributes.items():
            attribute = allowed.get(name)
            if attribute is None:
                raise UnexpectedEnvelopeAttribute(f"ukjent attributt i {spec.label}")
            where = f"{spec.label}/@{name}"
            if attribute.fixed is not None and value != attribute.fixed:
                if attribute.algorithm:
                    raise AlgorithmNotAllowed(f"{where} er ikke {attribute.fixed}")
                raise InvalidEnvelopeValue(f"{where} er ikke {attribute.fixed}")
            if attribute.rule is not None and not attribute.rule.accepts(value):
                raise InvalidEnvelopeValue(f"{where} {attribute.rule.expected}")
        for attribute in spec.attributes:
            if attribute.required and attribute.name not in attributes:
                raise MissingEnvelopeAttribute(f"{spec.label} mangler @{attribute.name}")

    def _check_text(self, spec: Element, text: str) -> None:
        check_fodselsnummer(text, spec.label)
        if spec.text is Text.WRAPPED_KEY:
            decode_wrapped_key(text, spec.label)
        elif spec.text is Text.FIXED:
            if text != spec.fixed_text:
                raise InvalidEnvelopeValue(f"{spec.label} er ikke {spec.fixed_text}")
        else:
            assert spec.rule is not None
            if not spec.rule.accepts(text):
                raise InvalidEnvelopeValue(f"{spec.label} {spec.rule.expected}")
            if spec.text is Text.KEY_NAME and self._key_names is not None:
                if text not in self._key_names:
                    raise UnknownKeyName()
        if spec.key:
            self.values[spec.key] = text


def _expat_name(tag: str) -> str:
    return tag[1:].replace("}", SEPARATOR, 1) if tag.startswith("{") else tag


def check_element_tree(
    node: ET.Element, grammar: Element, key_names: Collection[str] | None = None
) -> dict[str, str]:
    """Check an ElementTree element against a grammar (the same checker as the streaming
    reader's); return the values it holds by their keys."""
    checker = ClearPartChecker(grammar, key_names)

    def walk(element: ET.Element) -> None:
        attributes = {_expat_name(k): v for k, v in element.attrib.items()}
        checker.start(_expat_name(element.tag), attributes)
        if element.text:
            checker.text(element.text)
        for child in element:
            walk(child)
            if child.tail:
                checker.text(child.tail)
        checker.end(_expat_name(element.tag))

    walk(node)
    return checker.values
