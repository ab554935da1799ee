"""Check digits of Norwegian identifiers: fødselsnummer (and its variants) and organisasjonsnummer.

A fødselsnummer with wrong check digits is only warned about (the register still needs the
record); an organisasjonsnummer with a wrong check digit is refused.
"""

from __future__ import annotations

import datetime as dt
import sys
from array import array
from collections.abc import Sequence
from enum import Enum
from itertools import repeat

_K1_WEIGHTS = (3, 7, 6, 1, 8, 9, 4, 5, 2, 1)  # d1..d9 and k1 itself
_K2_WEIGHTS = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2, 1)  # d1..d9, k1 and k2 itself
_ORGNR_WEIGHTS = (3, 2, 7, 6, 5, 4, 3, 2)
_K1_OFFSET = 48 * sum(_K1_WEIGHTS)  # ord("0") times the weights
_K2_OFFSET = 48 * sum(_K2_WEIGHTS)

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
    return fnr_digits_check_ok(number.encode("ascii"))


def fnr_digits_check_ok(digits: bytes) -> bool:
    """``fnr_check_digits_ok`` for exactly 11 ASCII digits, as the reader has them.

    Written out on unpacked bytes: this runs once per person, 100 000 times for a large
    municipality. Bytes are digit + 48; the 48s are taken off as 48 x the sum of weights."""
    a, b, c, d, e, f, g, h, i, j, k = digits
    k1_sum = (3 * a + 7 * b + 6 * c + d + 8 * e + 9 * f + 4 * g + 5 * h + 2 * i + j) - _K1_OFFSET
    if k1_sum % 11 not in _K1_ACCEPTED_REMAINDERS:
        return False
    k2_sum = (
        5 * a + 4 * b + 3 * c + 2 * d + 7 * e + 6 * f + 5 * g + 4 * h + 3 * i + 2 * j + k
    ) - _K2_OFFSET
    return k2_sum % 11 == 0


_DIGIT_VALUES = bytes.maketrans(b"0123456789", bytes(range(10)))
_K1_HIGHEST_REMAINDER = max(_K1_ACCEPTED_REMAINDERS)
assert _K1_ACCEPTED_REMAINDERS == frozenset(range(_K1_HIGHEST_REMAINDER + 1))


def fnr_digits_all_check_ok(numbers: Sequence[bytes]) -> bool:
    """Whether every one of ``numbers`` (each exactly 11 ASCII digits) passes
    ``fnr_digits_check_ok``, without a Python step per number.

    The reader's common case: a run of thousands with no wrong check digit. The weighted sums
    of all numbers are computed at once on big integers holding one 16-bit lane per number:
    digit i of every number, times its weight, added lane by lane (a sum is at most 9 x 42 =
    378, so no lane carries into the next); only the remainders mod 11 are taken per lane, by
    ``map`` in C."""
    if not numbers:
        return True
    count = len(numbers)
    digits = b"".join(numbers).translate(_DIGIT_VALUES)
    lane_bytes = bytearray(2 * count)  # little-endian lanes: the digit, then a zero byte
    k1_sum = k2_sum = 0
    for position, k2_weight in enumerate(_K2_WEIGHTS):
        lane_bytes[0::2] = digits[position::11]
        lanes = int.from_bytes(lane_bytes, "little")
        if position < len(_K1_WEIGHTS):
            k1_sum += _K1_WEIGHTS[position] * lanes
        k2_sum += k2_weight * lanes
    k1_ok = max(map(int.__mod__, _lanes(k1_sum, count), repeat(11))) <= _K1_HIGHEST_REMAINDER
    return k1_ok and not any(map(int.__mod__, _lanes(k2_sum, count), repeat(11)))


def _lanes(value: int, count: int) -> array[int]:
    lanes = array("H", value.to_bytes(2 * count, "little"))
    if sys.byteorder == "big":
        lanes.byteswap()
    return lanes


def fnr_date_ok(number: str, allow_synthetic: bool = False) -> bool:
    """The date part is a real date: D-numbers (day + 40), H-numbers (month + 40), and
    synthetic test numbers (month + 80) only when ``allow_synthetic`` (a TPF in test mode).

    The century is not read from the individual number (the 2032 scheme loosens that link):
    a date is possible when it exists in one of the centuries numbers are issued for, so 30
    February and the 32nd are refused, 29 February of a leap year is not."""
    if len(number) != 11 or not number.isascii() or not number.isdigit():
        return False
    day, month, year = int(number[0:2]), int(number[2:4]), int(number[4:6])
    if month > 80:
        if not allow_synthetic:
            return False
        month -= 80
    elif month > 40:
        month -= 40
    if day > 40:
        day -= 40
    if 1 <= month <= 12 and 1 <= day <= 28:  # every month has these days: no date to build
        return True
    for century in (1900, 2000, 1800):
        try:
            dt.date(century + year, month, day)
        except ValueError:
            continue
        return True
    return False


def fnr_valid(number: str, allow_synthetic: bool = False) -> bool:
    """What the TPF pseudonymises: 11 digits, right check digits (either k1 rule), and a real
    date (see ``fnr_date_ok``). Anything else is an invalid number, counted, never passed on."""
    return fnr_check_digits_ok(number) and fnr_date_ok(number, allow_synthetic)


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
