"""The key file ("fil med krypteringsnøkler"): read, validate, write.

One TPF key and one IPLOS (register) key in the XML-DSig/.NET ``RSAKeyValue`` form, with the
validity dates. Windows "Unicode" (UTF-16 LE with BOM) is the normal encoding; UTF-8 with or
without BOM is read too.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from xml.parsers import expat

from .faults import (
    KeyFileDamaged,
    KeyFileExpired,
    KeyFileInvalid,
    KeyFileNotYetValid,
    KeyFileUnreadable,
)
from .rsakey import RsaPublicKey

ROOT = "IPLOSKrypteringsnokler"
TPF = "TPF"
IPLOS = "IPLOS"
MIN_BITS = 2048
EXPIRY_WARNING_DAYS = 30
MAX_KEY_FILE_BYTES = 1_000_000  # a real one is about 3 KB
# A file that ends too early (a download or copy cut short) fails in one of these ways.
_CUT_SHORT_DECODING = frozenset({"truncated data", "unexpected end of data"})
_CUT_SHORT_XML = frozenset(
    expat.errors.codes[e]
    for e in (expat.errors.XML_ERROR_NO_ELEMENTS, expat.errors.XML_ERROR_UNCLOSED_TOKEN)
)


@dataclass(frozen=True)
class KeyFile:
    version: str
    valid_from: dt.date
    valid_to: dt.date  # inclusive
    tpf: RsaPublicKey
    iplos: RsaPublicKey

    def check_dates(self, today: dt.date) -> None:
        """Refuse a key file outside its validity period."""
        if today > self.valid_to:
            raise KeyFileExpired(self.valid_to.isoformat())
        if today < self.valid_from:
            raise KeyFileNotYetValid(self.valid_from.isoformat())

    def expiry_warning(self, today: dt.date) -> str | None:
        """A warning when the file expires within 30 days, so the operator fetches the next."""
        days_left = (self.valid_to - today).days
        if 0 <= days_left < EXPIRY_WARNING_DAYS:
            return (
                f"Nøkkelfilen utløper {self.valid_to.isoformat()} (om {days_left} dager). Hent "
                "den nye nøkkelfilen fra SSB før neste innsending."
            )
        return None


def decode_key_file(raw: bytes) -> str:
    """Text of a key file: UTF-16 with BOM, or UTF-8 with or without BOM."""
    if raw in (b"\xff", b"\xfe", b"\xef", b"\xef\xbb"):  # the file ends inside its BOM
        raise KeyFileDamaged()
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        encoding = "utf-16"
    elif raw.startswith(b"\xef\xbb\xbf"):
        encoding = "utf-8-sig"
    else:
        encoding = "utf-8"
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as error:
        if error.reason in _CUT_SHORT_DECODING:  # the file ends inside a character
            raise KeyFileDamaged() from None
        raise KeyFileInvalid("filen er ikke lagret som Unicode (UTF-16) eller UTF-8") from None


def _parse_date(value: str | None, name: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value or "")
    except ValueError:
        raise KeyFileInvalid(f"datoen {name} mangler eller er ikke på formen ÅÅÅÅ-MM-DD") from None


def _b64_integer(element: ET.Element, child: str, recipient: str) -> int:
    text = element.findtext(child)
    if not text or not text.strip():
        raise KeyFileInvalid(f"nøkkelen for {recipient} mangler {child}")
    try:
        return int.from_bytes(base64.b64decode("".join(text.split()), validate=True), "big")
    except (binascii.Error, ValueError):
        raise KeyFileInvalid(f"{child} i nøkkelen for {recipient} er ikke gyldig base64") from None


def parse_key_file(raw: bytes) -> KeyFile:
    """Parse and validate everything but the dates (see ``KeyFile.check_dates``)."""
    if len(raw) > MAX_KEY_FILE_BYTES:
        raise KeyFileInvalid("filen er altfor stor til å være en nøkkelfil")
    text = decode_key_file(raw)
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise KeyFileInvalid("filen har en dokumenttypedefinisjon (DOCTYPE)")
    # ElementTree refuses an encoding declaration on str input; the bytes' encoding is
    # already settled above, so parse the decoded text without it.
    if text.startswith("<?xml"):
        declaration_end = text.find("?>")
        if declaration_end < 0:  # the file ends inside its XML declaration
            raise KeyFileDamaged()
        text = text[declaration_end + 2 :]
    try:
        root = ET.fromstring(text.strip())  # noqa: S314 - DOCTYPE/ENTITY refused above
    except ET.ParseError as error:
        if error.code in _CUT_SHORT_XML:  # the text ends before the document does
            raise KeyFileDamaged() from None
        raise KeyFileInvalid("filen er ikke gyldig XML") from None
    if root.tag != ROOT:
        raise KeyFileInvalid(f"rotelementet er ikke {ROOT}")
    if root.get("versjon") != "1":
        raise KeyFileInvalid("versjonen er ikke 1")
    valid_from = _parse_date(root.get("gyldigFra"), "gyldigFra")
    valid_to = _parse_date(root.get("gyldigTil"), "gyldigTil")
    if valid_to < valid_from:
        raise KeyFileInvalid("gyldigTil er før gyldigFra")
    keys: dict[str, RsaPublicKey] = {}
    for element in root:
        if element.tag != "Nokkel":
            raise KeyFileInvalid(f"ukjent element {element.tag}")
        recipient = element.get("mottaker") or ""
        if recipient not in (TPF, IPLOS):
            raise KeyFileInvalid(f"ukjent mottaker «{recipient}»")
        if recipient in keys:
            raise KeyFileInvalid(f"den har mer enn én nøkkel for {recipient}")
        key_id = (element.get("id") or "").strip()
        if not key_id:
            raise KeyFileInvalid(f"nøkkelen for {recipient} mangler id")
        value = element.find("RSAKeyValue")
        if value is None:
            raise KeyFileInvalid(f"nøkkelen for {recipient} mangler RSAKeyValue")
        key = RsaPublicKey(
            key_id=key_id,
            modulus=_b64_integer(value, "Modulus", recipient),
            exponent=_b64_integer(value, "Exponent", recipient),
        )
        if key.bits < MIN_BITS:
            raise KeyFileInvalid(
                f"nøkkelen for {recipient} har {key.bits} biter; minst {MIN_BITS} kreves"
            )
        if key.exponent < 3 or key.exponent % 2 == 0:
            raise KeyFileInvalid(f"eksponenten i nøkkelen for {recipient} er ikke gyldig")
        keys[recipient] = key
    for recipient in (TPF, IPLOS):
        if recipient not in keys:
            raise KeyFileInvalid(f"den mangler nøkkelen for {recipient}")
    if keys[TPF].key_id == keys[IPLOS].key_id:
        raise KeyFileInvalid("TPF-nøkkelen og IPLOS-nøkkelen har samme id")
    if keys[TPF].modulus == keys[IPLOS].modulus:
        raise KeyFileInvalid("TPF-nøkkelen og IPLOS-nøkkelen er den samme nøkkelen")
    return KeyFile(
        version="1", valid_from=valid_from, valid_to=valid_to, tpf=keys[TPF], iplos=keys[IPLOS]
    )


def load_key_file(path: str, today: dt.date) -> KeyFile:
    """Read, validate and date-check a key file from disk."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_KEY_FILE_BYTES + 1)
    except OSError:
        raise KeyFileUnreadable() from None
    key_file = parse_key_file(raw)
    key_file.check_dates(today)
    return key_file


def _b64_of(value: int) -> str:
    return base64.b64encode(value.to_bytes((value.bit_length() + 7) // 8, "big")).decode()


def render_key_file(key_file: KeyFile) -> bytes:
    """The key file as SSB publishes it: UTF-16 LE with BOM, CRLF line ends."""
    lines = ['<?xml version="1.0" encoding="utf-16"?>']
    lines.append(
        f'<{ROOT} versjon="1" gyldigFra="{key_file.valid_from.isoformat()}" '
        f'gyldigTil="{key_file.valid_to.isoformat()}">'
    )
    for recipient, key in ((TPF, key_file.tpf), (IPLOS, key_file.iplos)):
        lines.append(f'  <Nokkel mottaker="{recipient}" id="{key.key_id}">')
        lines.append(
            f"    <RSAKeyValue><Modulus>{_b64_of(key.modulus)}</Modulus>"
            f"<Exponent>{_b64_of(key.exponent)}</Exponent></RSAKeyValue>"
        )
        lines.append("  </Nokkel>")
    lines.append(f"</{ROOT}>")
    return b"\xff\xfe" + "\r\n".join(lines).encode("utf-16-le")


def describe_key_file(key_file: KeyFile) -> list[str]:
    """The lines every tool shows for a loaded key file: both fingerprints and the dates."""
    return [
        f"Gyldig fra {key_file.valid_from.isoformat()} til og med {key_file.valid_to.isoformat()}",
        f"TPF-nøkkel {key_file.tpf.key_id} ({key_file.tpf.bits} biter): "
        f"{key_file.tpf.fingerprint()}",
        f"IPLOS-nøkkel {key_file.iplos.key_id} ({key_file.iplos.bits} biter): "
        f"{key_file.iplos.fingerprint()}",
    ]
