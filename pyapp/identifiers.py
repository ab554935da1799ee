"""Check digits of Norwegian identifiers: fødselsnummer (and its variants) and organisasjonsnummer.

A fødselsnummer with wrong check digits is only warned about (the register still needs the
record); an organisasjonsnummer with a wrong check digit is refused.
"""

from __future__ import annotations

from enum import Enum

_K1_WEIGHTS = (3, 7, 6, 1, 8, 9, 4, 5, 2, 1)  # d1..d9 and k1 itself
_K2_WEIGHTS = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2, 1)  # d1..d9, k1 and k2 itself
_ORGNR_WEIGHTS = (3, 2, 7, 6, 5, 4, 3, 2)

# Skatteetaten's new numbers from 2032: the weighted sum including k1 may leave the remainder
# 0, 1, 2 or 3 (before: only 0). Both rules hold in parallel, so the new one, a superset of the
# old, is the one to check against; k2 is unchanged.
_K1_ACCEPTED_REMAINDERS = frozenset({0, 1, 2, 3})


class FnrKind(Enum):
    FODSELSNUMMER = "fødselsnummer"
    D_NUMMER = "D-nummer"  # day + 40
    H_NUMMER = "H-nummer"  # month + 40 (hjelpenummer)
    SYNTETISK = "syntetisk testnummer"  # month + 80 (Skatteetaten's synthetic test numbers)


def fnr_kind(number: str) -> FnrKind:
    """Which kind of 11-digit person number this is, read from the date part."""
    day, month = int(number[0:2]), int(number[2:4])
    if month > 80:
        return FnrKind.SYNTETISK
    if month > 40:
        return FnrKind.H_NUMMER
    if day > 40:
        return FnrKind.D_NUMMER
    return FnrKind.FODSELSNUMMER


def fnr_check_digits_ok(number: str) -> bool:
    """True when both check digits are right (by the pre-2032 or the 2032 rule for k1)."""
    if len(number) != 11 or not number.isascii() or not number.isdigit():
        return False
    # Written out: this runs once per person, 100 000 times for a large municipality.
    d = number.encode("ascii")  # digit values are byte - 48; the offsets cancel mod 11 below
    k1_sum = (
        3 * d[0] + 7 * d[1] + 6 * d[2] + 1 * d[3] + 8 * d[4]
        + 9 * d[5] + 4 * d[6] + 5 * d[7] + 2 * d[8] + 1 * d[9]
    ) - 48 * sum(_K1_WEIGHTS)
    if k1_sum % 11 not in _K1_ACCEPTED_REMAINDERS:
        return False
    k2_sum = (
        5 * d[0] + 4 * d[1] + 3 * d[2] + 2 * d[3] + 7 * d[4] + 6 * d[5]
        + 5 * d[6] + 4 * d[7] + 3 * d[8] + 2 * d[9] + 1 * d[10]
    ) - 48 * sum(_K2_WEIGHTS)
    return k2_sum % 11 == 0


def fnr_check_digits(first_nine: str) -> str | None:
    """The two check digits by the pre-2032 rule, or None when that stem yields none."""
    digits = [ord(c) - 48 for c in first_nine]
    k1 = (11 - sum(w * d for w, d in zip(_K1_WEIGHTS, digits, strict=False)) % 11) % 11
    if k1 == 10:
        return None
    digits.append(k1)
    k2 = (11 - sum(w * d for w, d in zip(_K2_WEIGHTS, digits, strict=False)) % 11) % 11
    if k2 == 10:
        return None
    return f"{k1}{k2}"


def orgnr_ok(number: str) -> bool:
    """Organisasjonsnummer: nine digits, the last a mod-11 check digit (remainder 1 never used)."""
    if len(number) != 9 or not number.isascii() or not number.isdigit():
        return False
    digits = [ord(c) - 48 for c in number]
    remainder = sum(w * d for w, d in zip(_ORGNR_WEIGHTS, digits, strict=False)) % 11
    if remainder == 1:
        return False
    return (11 - remainder) % 11 == digits[8]


def orgnr_check_digit(first_eight: str) -> int | None:
    """The check digit for eight leading digits, or None when that stem is unusable."""
    digits = [ord(c) - 48 for c in first_eight]
    remainder = sum(w * d for w, d in zip(_ORGNR_WEIGHTS, digits, strict=True)) % 11
    if remainder == 1:
        return None
    return (11 - remainder) % 11
