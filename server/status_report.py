"""The JSON status body of the delivery contract (docs/formater.md §5), both ways.

The receiving party (TPF, register) builds it for ``GET``/``PUT`` answers; the sending party's
outbox reads it and keeps it. What one party reads from another is content too: every field
is checked for what it may hold (a known status word, a bounded Norwegian message that holds
no fødselsnummer, counts that are counts), and a body that breaks a rule is not kept.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ipis_core.clear_part import holds_fodselsnummer

# The party's own processing.
PROCESSING = "behandles"
DELIVERED = "levert"
REFUSED = "avvist"
# The next party's answer, as the party in between passes it on (``register``).
QUEUED = "sendes"  # queued for the next party, which has not taken it yet (it may be down)
WAITING = "venter"  # taken by the next party, its answer not final yet
LOADED = "lastet"

OWN_STATES = frozenset({PROCESSING, DELIVERED, REFUSED, LOADED})  # the register says lastet
NEXT_STATES = frozenset({QUEUED, WAITING, LOADED, REFUSED})
MAX_MESSAGE_CHARS = 1000
MAX_BODY_BYTES = 64 * 1024
MAX_COUNT = 100_000_000


class StatusReportInvalid(ValueError):
    """A status body that breaks the contract (never kept, never shown)."""


def check_message(value: object) -> str:
    """A receiver's Norwegian message as it may be kept and shown: bounded, printable, and
    holding nothing that passes for a fødselsnummer."""
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > MAX_MESSAGE_CHARS:
        raise StatusReportInvalid("melding")
    if any(ord(c) < 32 and c not in "\n" for c in value) or holds_fodselsnummer(value):
        raise StatusReportInvalid("melding")
    return value


def _count(value: object, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
        raise StatusReportInvalid(name)
    return value


def _present(**fields: Any) -> dict[str, Any]:
    """The body's fields that have a value (an empty message and unknown counts are left out)."""
    return {name: value for name, value in fields.items() if value is not None and value != ""}


@dataclass(frozen=True)
class NextPartyReport:
    """The next party's answer (the register's, in the TPF's body)."""

    status: str
    melding: str = ""
    personer: int | None = None

    def to_json(self) -> dict[str, Any]:
        return _present(status=self.status, melding=self.melding, personer=self.personer)

    def dumps(self) -> str:
        return json.dumps(self.to_json(), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, data: object) -> NextPartyReport:
        if not isinstance(data, dict):
            raise StatusReportInvalid("register")
        status = data.get("status")
        if status not in NEXT_STATES:
            raise StatusReportInvalid("register.status")
        return cls(
            status=str(status),
            melding=check_message(data.get("melding")),
            personer=_count(data.get("personer"), "register.personer"),
        )

    @property
    def final(self) -> bool:
        return self.status not in (QUEUED, WAITING)


@dataclass(frozen=True)
class StatusReport:
    """One party's status of one submission, with the next party's once it has it."""

    status: str
    melding: str = ""
    personer: int | None = None
    ugyldige_fodselsnumre: int | None = None
    register: NextPartyReport | None = None

    def to_json(self) -> dict[str, Any]:
        return _present(
            status=self.status,
            melding=self.melding,
            personer=self.personer,
            ugyldigeFodselsnumre=self.ugyldige_fodselsnumre,
            register=None if self.register is None else self.register.to_json(),
        )

    def dumps(self) -> str:
        return json.dumps(self.to_json(), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, data: object) -> StatusReport:
        if not isinstance(data, dict):
            raise StatusReportInvalid("ikke et JSON-objekt")
        status = data.get("status")
        if status not in OWN_STATES:
            raise StatusReportInvalid("status")
        register = data.get("register")
        return cls(
            status=str(status),
            melding=check_message(data.get("melding")),
            personer=_count(data.get("personer"), "personer"),
            ugyldige_fodselsnumre=_count(data.get("ugyldigeFodselsnumre"), "ugyldigeFodselsnumre"),
            register=None if register is None else NextPartyReport.from_json(register),
        )

    @classmethod
    def loads(cls, text: str | bytes) -> StatusReport:
        if len(text) > MAX_BODY_BYTES:
            raise StatusReportInvalid("for stor")
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError):
            raise StatusReportInvalid("ikke JSON") from None
        return cls.from_json(data)

    @property
    def final(self) -> bool:
        """Nothing more will change: refused here, or passed on and the next party's answer
        is final (or there is no next party). GET answers 200 then, else 202."""
        if self.status == PROCESSING:
            return False
        if self.status == REFUSED or self.register is None:
            return True
        return self.register.final

    def as_next_party(self) -> NextPartyReport:
        """This report as the party before passes it on (the register's in the TPF's body)."""
        if self.status == PROCESSING:
            return NextPartyReport(WAITING)
        status = REFUSED if self.status == REFUSED else LOADED
        return NextPartyReport(status, self.melding, self.personer)
