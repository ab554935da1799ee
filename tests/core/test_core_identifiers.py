"""Fødselsnummer check digits (incl. D-, H-, synthetic numbers and the 2032 k1 rule) and
organisasjonsnummer, against tests/vectors/fodselsnummer.json and an independent reference."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ipis_testlib import VECTORS

from ipis_core.identifiers import (
    FnrKind,
    fnr_check_digits,
    fnr_check_digits_ok,
    fnr_digits_all_check_ok,
    fnr_kind,
    orgnr_ok,
)

DATA = json.loads((VECTORS / "fodselsnummer.json").read_text(encoding="utf-8"))
KINDS = {
    "fodselsnummer": FnrKind.FODSELSNUMMER,
    "fodselsnummer-2000": FnrKind.FODSELSNUMMER,
    "d-nummer": FnrKind.D_NUMMER,
    "h-nummer": FnrKind.H_NUMMER,
    "syntetisk": FnrKind.SYNTETISK,
    "syntetisk-d-nummer": FnrKind.SYNTETISK,
}


def reference_ok(number: str) -> bool:
    """Skatteetaten's rule written out: k1 remainder in {0,1,2,3} (2032), k2 remainder 0."""
    d = [int(c) for c in number]
    k1 = sum(w * x for w, x in zip(DATA["weights_k1"], d[:10], strict=True)) % 11
    k2 = sum(w * x for w, x in zip(DATA["weights_k2"], d, strict=True)) % 11
    return k1 in (0, 1, 2, 3) and k2 == 0


@pytest.mark.parametrize("case", DATA["cases"], ids=[c["rule"] for c in DATA["cases"]])
def test_fnr_vectors(case: dict[str, object]) -> None:
    number = str(case["number"])
    assert reference_ok(number) is case["valid"]
    assert fnr_check_digits_ok(number) is case["valid"]
    if case["valid"]:
        assert fnr_kind(number) is KINDS[str(case["kind"])]


@given(st.text(alphabet="0123456789", min_size=11, max_size=11))
def test_fnr_check_matches_reference(number: str) -> None:
    assert fnr_check_digits_ok(number) is reference_ok(number)


ELEVEN_DIGITS = st.text(alphabet="0123456789", min_size=11, max_size=11)


@given(st.lists(ELEVEN_DIGITS, max_size=40))
def test_bulk_check_matches_one_by_one(numbers: list[str]) -> None:
    """The reader's bulk check (lanes in big integers) says what the reference says of each."""
    assert fnr_digits_all_check_ok([n.encode() for n in numbers]) is all(map(reference_ok, numbers))


@given(st.lists(st.text(alphabet="0123456789", min_size=9, max_size=9), min_size=1, max_size=40),
       st.data())
def test_bulk_check_finds_one_wrong_number_among_right_ones(
    stems: list[str], data: st.DataObject
) -> None:
    """Valid numbers only pass; one last digit changed anywhere among them fails the batch."""
    numbers = [s + d for s in stems if (d := fnr_check_digits(s)) is not None]
    if not numbers:
        return
    assert fnr_digits_all_check_ok([n.encode() for n in numbers])
    spoilt = data.draw(st.integers(0, len(numbers) - 1))
    wrong = numbers[spoilt][:10] + str((int(numbers[spoilt][10]) + 1) % 10)
    numbers[spoilt] = wrong
    assert fnr_digits_all_check_ok([n.encode() for n in numbers]) is reference_ok(wrong)


@given(st.text(alphabet="0123456789", min_size=9, max_size=9))
def test_generated_check_digits_are_valid(stem: str) -> None:
    digits = fnr_check_digits(stem)
    if digits is not None:
        assert reference_ok(stem + digits)


@pytest.mark.parametrize("number", ["", "1234567890", "123456789012", "1505701007a", "١٥٠٥٧٠١٠٠٧٧"])
def test_fnr_malformed_is_not_ok(number: str) -> None:
    assert fnr_check_digits_ok(number) is False


@pytest.mark.parametrize(
    "number,ok",
    [("974778874", True), ("971526920", True), ("974778875", False), ("97477887", False),
     ("9747788741", False), ("97477887x", False)],
)
def test_orgnr(number: str, ok: bool) -> None:
    assert orgnr_ok(number) is ok
