"""An independent writer of the TPF's pseudonymised message (docs/formater.md §4), for tests.

Written from the format description with lxml and cryptography, not from the TPF's code, so
the register's tests do not depend on the TPF and the two writers can be held against each
other. It opens an encrypted message (§3) with the TPF's private key, replaces each
fødselsnummer by HMAC-SHA-256(secret, number)[:16] in hex (or marks it invalid), and encrypts
the result to the register's key — and lets a test tamper with every step on the way.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from lxml import etree

XENC = "http://www.w3.org/2001/04/xmlenc#"
XENC11 = "http://www.w3.org/2009/xmlenc11#"
DS = "http://www.w3.org/2000/09/xmldsig#"
NS = {"xenc": XENC, "xenc11": XENC11, "ds": DS}
AES256_GCM = XENC11 + "aes256-gcm"
AES256_CBC = XENC + "aes256-cbc"
RSA_OAEP = XENC11 + "rsa-oaep"
RSA_1_5 = XENC + "rsa-1_5"
MGF1_SHA256 = XENC11 + "mgf1sha256"
SHA256 = XENC + "sha256"
OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)


def private_key(pem: bytes) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def fnr_valid(number: str) -> bool:
    """Check digits of a fødselsnummer (D-, H- and synthetic numbers alike: only the digits)."""
    if len(number) != 11 or not number.isdigit():
        return False
    d = [int(c) for c in number]
    k1 = 11 - sum(w * x for w, x in zip((3, 7, 6, 1, 8, 9, 4, 5, 2), d[:9], strict=True)) % 11
    k2 = 11 - sum(w * x for w, x in zip((5, 4, 3, 2, 7, 6, 5, 4, 3, 2), d[:10], strict=True)) % 11
    k1, k2 = (0 if k == 11 else k for k in (k1, k2))
    return k1 == d[9] and k2 == d[10]


def pseudonym(secret: bytes, number: str) -> str:
    return hmac.new(secret, number.encode("ascii"), hashlib.sha256).digest()[:16].hex()


@dataclass
class TpfPerson:
    lopenummer: str  # the attribute as it stands
    fodselsnummer: str
    encrypted: etree._Element  # the register layer's xenc:EncryptedData


@dataclass
class OpenedInput:
    """The encrypted message (§3) with its TPF layer opened."""

    meldingstype: etree._Element
    avsender: etree._Element
    mottaker: etree._Element
    layer: etree._Element  # the TPF layer's root (IPLOSInnhold)
    persons: list[TpfPerson]

    @property
    def file_id(self) -> str:
        return str(self.layer.get("filId"))


def open_input(data: bytes, tpf_private: rsa.RSAPrivateKey) -> OpenedInput:
    root = etree.fromstring(data, _PARSER)
    encrypted = root.find("xenc:EncryptedData", NS)
    wrapped = base64.b64decode(
        encrypted.findtext("ds:KeyInfo/xenc:EncryptedKey/xenc:CipherData/xenc:CipherValue",
                           namespaces=NS)
    )
    key = tpf_private.decrypt(wrapped, OAEP)
    blob = base64.b64decode(encrypted.findtext("xenc:CipherData/xenc:CipherValue", namespaces=NS))
    plaintext = AESGCM(key).decrypt(blob[:12], blob[12:], None)
    layer = etree.fromstring(plaintext, _PARSER)
    persons = [
        TpfPerson(p.get("lopenummer"), p.findtext("Fodselsnummer").strip(),
                  p.find("xenc:EncryptedData", NS))
        for p in layer.iterfind("Personer/Person")
    ]
    return OpenedInput(root.find("Meldingstype"), root.find("Avsender"), root.find("Mottaker"),
                       layer, persons)


@dataclass
class OutPerson:
    """One person as the TPF passes it on; tests change these to tamper."""

    lopenummer: str
    pseudonym: str | None  # None: invalid fødselsnummer
    encrypted: etree._Element
    extra_attributes: dict[str, str] = field(default_factory=dict)


@dataclass
class Options:
    """Everything a test may change (defaults: a correct message)."""

    secret: bytes = b"tpf-hemmelighet-for-test"
    secret_id: str = "tpf-h1"
    transport_key_name: str | None = None  # default: the register key's id in the input
    layer_algorithm: str = AES256_GCM
    key_transport_algorithm: str = RSA_OAEP
    count: int | None = None  # antallPersoner (default: the number of persons written)
    invalid_count: int | None = None
    submission_id_inside: str | None = None
    inner_avsender: etree._Element | None = None  # replaces the encrypted copy of Avsender
    clear_avsender: etree._Element | None = None  # replaces the clear Avsender
    persons: Callable[[list[OutPerson]], list[OutPerson]] | None = None
    tamper_layer: Callable[[bytes], bytes] | None = None  # the layer's plaintext
    tamper_ciphertext: Callable[[bytes], bytes] | None = None  # IV ‖ ciphertext ‖ tag


def out_persons(opened: OpenedInput, secret: bytes) -> list[OutPerson]:
    return [
        OutPerson(p.lopenummer, pseudonym(secret, p.fodselsnummer) if fnr_valid(p.fodselsnummer)
                  else None, copy.deepcopy(p.encrypted))
        for p in opened.persons
    ]


def _tostring(element: etree._Element) -> bytes:
    return etree.tostring(element, encoding="utf-8")


def layer_plaintext(opened: OpenedInput, submission_id: str, options: Options) -> bytes:
    persons = out_persons(opened, options.secret)
    if options.persons is not None:
        persons = options.persons(persons)
    layer = opened.layer
    root = etree.Element("IPLOSPseudonymisertInnhold", nsmap=NS)
    root.set("filId", opened.file_id)
    root.set("innsendingId", options.submission_id_inside or submission_id)
    root.append(copy.deepcopy(layer.find("Kontaktperson")))
    root.append(copy.deepcopy(options.inner_avsender if options.inner_avsender is not None
                              else layer.find("Avsender")))
    root.append(copy.deepcopy(layer.find("Uttak")))
    root.append(copy.deepcopy(layer.find("xenc:EncryptedKey", NS)))
    personer = etree.SubElement(root, "Personer")
    for person in persons:
        element = etree.SubElement(personer, "Person", {"lopenummer": person.lopenummer})
        if person.pseudonym is None:
            element.set("ugyldigFodselsnummer", "ja")
        else:
            element.set("pseudonym", person.pseudonym)
        for name, value in person.extra_attributes.items():
            element.set(name, value)
        element.append(copy.deepcopy(person.encrypted))
    invalid = sum(1 for p in persons if p.pseudonym is None)
    etree.SubElement(root, "Pseudonymisering", {
        "hemmelighetId": options.secret_id,
        "antallPersoner": str(options.count if options.count is not None else len(persons)),
        "ugyldigeFodselsnumre": str(options.invalid_count if options.invalid_count is not None
                                    else invalid),
    })
    root.append(copy.deepcopy(layer.find("Registerkontroll")))
    etree.cleanup_namespaces(root, top_nsmap=NS)
    return _tostring(root)


def register_key_name(opened: OpenedInput) -> str:
    return str(opened.layer.findtext("xenc:EncryptedKey/ds:KeyInfo/ds:KeyName", namespaces=NS))


def write(
    data: bytes,
    tpf_private: rsa.RSAPrivateKey,
    register_public: rsa.RSAPublicKey,
    submission_id: str,
    options: Options | None = None,
) -> bytes:
    """The §4 message for the encrypted message ``data``."""
    options = options or Options()
    opened = open_input(data, tpf_private)
    plaintext = layer_plaintext(opened, submission_id, options)
    if options.tamper_layer is not None:
        plaintext = options.tamper_layer(plaintext)
    content_key = AESGCM.generate_key(bit_length=256)
    iv = os.urandom(12)
    blob = iv + AESGCM(content_key).encrypt(iv, plaintext, None)
    if options.tamper_ciphertext is not None:
        blob = options.tamper_ciphertext(blob)
    wrapped = register_public.encrypt(content_key, OAEP)
    key_name = options.transport_key_name or register_key_name(opened)
    avsender = options.clear_avsender if options.clear_avsender is not None else opened.avsender
    clear = b"".join(
        _tostring(copy.deepcopy(e)) for e in (opened.meldingstype, avsender, opened.mottaker)
    ).decode()
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<IPLOSPseudonymisert versjon="1" xmlns:xenc="{XENC}" xmlns:xenc11="{XENC11}" '
        f'xmlns:ds="{DS}">\n{clear}\n'
        f'<xenc:EncryptedData Id="pseudonymisert-lag" Type="{XENC}Element">'
        f'<xenc:EncryptionMethod Algorithm="{options.layer_algorithm}"/>'
        '<ds:KeyInfo><xenc:EncryptedKey Id="register-transportnokkel" Recipient="IPLOS">'
        f'<xenc:EncryptionMethod Algorithm="{options.key_transport_algorithm}">'
        f'<ds:DigestMethod Algorithm="{SHA256}"/><xenc11:MGF Algorithm="{MGF1_SHA256}"/>'
        "</xenc:EncryptionMethod>"
        f"<ds:KeyInfo><ds:KeyName>{key_name}</ds:KeyName></ds:KeyInfo>"
        "<xenc:CipherData><xenc:CipherValue>"
        f"{base64.b64encode(wrapped).decode()}</xenc:CipherValue></xenc:CipherData>"
        "</xenc:EncryptedKey></ds:KeyInfo>"
        f"<xenc:CipherData><xenc:CipherValue>{base64.b64encode(blob).decode()}"
        "</xenc:CipherValue></xenc:CipherData></xenc:EncryptedData>\n"
        "</IPLOSPseudonymisert>\n"
    ).encode()


def write_mapping(
    register_public: rsa.RSAPublicKey,
    key_name: str,
    mapping_id: str,
    from_secret_id: str,
    to_secret_id: str,
    pairs: list[tuple[str, str]],
    count: int | None = None,
) -> bytes:
    """The §6 pseudonym mapping the TPF sends after ``ipis tpf rotate-secret``."""
    body = "".join(f'<Bytte fra="{a}" til="{b}"/>' for a, b in pairs)
    plaintext = (
        f'<IPLOSPseudonymbytteInnhold xmlns:xenc="{XENC}" xmlns:xenc11="{XENC11}" '
        f'xmlns:ds="{DS}" byttId="{mapping_id}" fraHemmelighetId="{from_secret_id}" '
        f'tilHemmelighetId="{to_secret_id}">{body}'
        f'<Opptelling antallBytter="{len(pairs) if count is None else count}"/>'
        "</IPLOSPseudonymbytteInnhold>"
    ).encode()
    content_key = AESGCM.generate_key(bit_length=256)
    iv = os.urandom(12)
    blob = iv + AESGCM(content_key).encrypt(iv, plaintext, None)
    wrapped = register_public.encrypt(content_key, OAEP)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<IPLOSPseudonymbytte versjon="1" xmlns:xenc="{XENC}" xmlns:xenc11="{XENC11}" '
        f'xmlns:ds="{DS}">'
        f'<xenc:EncryptedData Id="pseudonymbytte-lag" Type="{XENC}Element">'
        f'<xenc:EncryptionMethod Algorithm="{AES256_GCM}"/>'
        '<ds:KeyInfo><xenc:EncryptedKey Id="register-transportnokkel" Recipient="IPLOS">'
        f'<xenc:EncryptionMethod Algorithm="{RSA_OAEP}">'
        f'<ds:DigestMethod Algorithm="{SHA256}"/><xenc11:MGF Algorithm="{MGF1_SHA256}"/>'
        "</xenc:EncryptionMethod>"
        f"<ds:KeyInfo><ds:KeyName>{key_name}</ds:KeyName></ds:KeyInfo>"
        f"<xenc:CipherData><xenc:CipherValue>{base64.b64encode(wrapped).decode()}"
        "</xenc:CipherValue></xenc:CipherData></xenc:EncryptedKey></ds:KeyInfo>"
        f"<xenc:CipherData><xenc:CipherValue>{base64.b64encode(blob).decode()}"
        "</xenc:CipherValue></xenc:CipherData></xenc:EncryptedData></IPLOSPseudonymbytte>\n"
    ).encode()
