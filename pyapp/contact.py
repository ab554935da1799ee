"""The municipality's IPLOS contact person, whom SSB calls when the data has errors (seed §4)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .faults import (
    InvalidContactEmail,
    InvalidContactMobile,
    InvalidContactName,
    MissingContact,
)
from .reader import escape_text

_EMAIL_RE = re.compile(r"^[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\"]+$")
_MOBILE_PREFIX_RE = re.compile(r"^(\+47|0047)")
_NAME_MAX = 200


@dataclass(frozen=True)
class Contact:
    email: str
    name: str
    mobile: str

    @classmethod
    def validated(cls, email: str | None, name: str | None, mobile: str | None) -> Contact:
        """Trimmed and checked; the mobile number normalised to its eight digits."""
        email, name, mobile = (email or "").strip(), (name or "").strip(), (mobile or "").strip()
        if not email or not name or not mobile:
            raise MissingContact()
        if not _EMAIL_RE.match(email) or len(email) > 254:
            raise InvalidContactEmail()
        if len(name) > _NAME_MAX or any(ord(c) < 32 for c in name):
            raise InvalidContactName(_NAME_MAX)
        digits = _MOBILE_PREFIX_RE.sub("", re.sub(r"[\s-]", "", mobile))
        if len(digits) != 8 or not digits.isdigit() or digits[0] not in "49":
            raise InvalidContactMobile()
        return cls(email=email, name=name, mobile=digits)

    def to_xml(self) -> str:
        return (
            f"<Kontaktperson><Epost>{escape_text(self.email)}</Epost>"
            f"<Navn>{escape_text(self.name)}</Navn>"
            f"<Mobiltelefon>{escape_text(self.mobile)}</Mobiltelefon></Kontaktperson>"
        )
