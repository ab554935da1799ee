"""The clear part's rules (ipis_core.clear_part) on the writer's side: ipis encrypt and the page
never write a file the send module would refuse (issue 7.1), and say why in the seed's style."""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ipis_testlib import FNR, VECTORS, Keys, document, encrypt_bytes, person

from ipis_core import faults
from ipis_core.clear_part import (
    AVSENDER_NAVN,
    FAGSYSTEM_VERSJON,
    KEY_NAME,
    MOTTAKER_NAVN,
    holds_fodselsnummer,
)
from ipis_core.envelope import read_envelope

NUMBERS = json.loads((VECTORS / "fodselsnummer.json").read_text(encoding="utf-8"))["cases"]
NAVN = "<Navn>Oslo kommune, Søndre Nordstrand</Navn>"


@pytest.mark.parametrize("case", [c for c in NUMBERS if c["valid"]], ids=lambda c: c["number"])
def test_every_kind_of_person_number_is_found(case: dict[str, object]) -> None:
    number = str(case["number"])
    assert holds_fodselsnummer(number)
    assert holds_fodselsnummer(f"Oslo {number[:6]} {number[6:]} kommune")  # as people write it
    assert holds_fodselsnummer(f"x{number[:6]}-{number[6:]}.")
    assert holds_fodselsnummer(f"12{number}34")  # inside a longer run


@pytest.mark.parametrize("case", [c for c in NUMBERS if not c["valid"]], ids=lambda c: c["number"])
def test_numbers_failing_the_check_are_not_taken_for_one(case: dict[str, object]) -> None:
    assert not holds_fodselsnummer(str(case["number"]))


def test_names_are_bounded_and_hold_no_eleven_digits() -> None:
    assert AVSENDER_NAVN.accepts("Guovdageainnu suohkan – Kárášjohka & Deanu (bydel 0123456789)")
    assert AVSENDER_NAVN.accepts("")  # Avsender/Navn may be empty, Mottaker/Navn not
    assert not MOTTAKER_NAVN.accepts("")
    assert not AVSENDER_NAVN.accepts("Oslo 01234567890")  # eleven digits, any check digit
    assert not AVSENDER_NAVN.accepts("Å" * 151)
    for bad in ("Oslo\nkommune", "Oslo\tkommune", "Oslo <kommune>", "Oslo ۱۲۳", "Oslo ¹²³"):
        assert not AVSENDER_NAVN.accepts(bad), bad
    assert FAGSYSTEM_VERSJON.accepts("2026.2.1 (build 7)")
    assert not KEY_NAME.accepts("tpf 2026")
    assert KEY_NAME.accepts("tpf-2026")


@pytest.mark.parametrize(
    ("old", "new", "kind", "message"),
    [
        (NAVN, f"<Navn>Oslo kommune {FNR[0]}</Navn>", faults.FodselsnummerInClearField,
         "Feil i innholdet i IPLOS filen: Feltet Navn på linje 8 inneholder et tall som kan "
         "være et fødselsnummer, og feltet sendes ukryptert; rett det i fagsystemet."),
        (NAVN, f"<Navn>Oslo kommune {FNR[1][:6]} {FNR[1][6:]}</Navn>",
         faults.FodselsnummerInClearField, None),
        ("<Navn>Statistisk sentralbyrå</Navn>", f"<Navn>SSB {FNR[2]}</Navn>",
         faults.FodselsnummerInClearField,
         "Feil i innholdet i IPLOS filen: Feltet Navn på linje 12 inneholder et tall som kan "
         "være et fødselsnummer, og feltet sendes ukryptert; rett det i fagsystemet."),
        ('navn="Gerica"', f'navn="Gerica {FNR[3]}"', faults.FodselsnummerInClearField,
         "Feil i innholdet i IPLOS filen: Feltet Fagsystem på linje 9 har attributtet navn med "
         "et tall som kan være et fødselsnummer, og feltet sendes ukryptert; rett det i "
         "fagsystemet."),
        ('versjon="2026.2"', f'versjon="{FNR[0]}"', faults.FodselsnummerInClearField, None),
        ("<Meldingstype>IPLOS", f"<Meldingstype>IPLOS{FNR[0]}", faults.FodselsnummerInClearField,
         None),
        ('<Fagsystem navn="Gerica" versjon="2026.2"/>',
         f'<Fagsystem navn="Gerica" versjon="2026.2">{FNR[0]}</Fagsystem>',
         faults.FodselsnummerInClearField, None),
        (NAVN, "<Navn>Oslo kommune 12345678901</Navn>", faults.InvalidValue,
         "Feil i innholdet i IPLOS filen: Feltet Navn på linje 8 kan ha høyst 150 tegn: "
         "bokstaver, mellomrom, vanlige skilletegn og høyst ti siffer."),
        (NAVN, "<Navn>" + "Å" * 151 + "</Navn>", faults.InvalidValue, None),
        (NAVN, "<Navn>Oslo &lt;kommune&gt;</Navn>", faults.InvalidValue, None),
        ('navn="Gerica"', 'navn="' + "G" * 61 + '"', faults.InvalidValue,
         "Feil i innholdet i IPLOS filen: Feltet Fagsystem på linje 9 har attributtet navn, som "
         "kan ha høyst 60 tegn: bokstaver, mellomrom, vanlige skilletegn og høyst ti siffer."),
        ('<Fagsystem navn="Gerica" versjon="2026.2"/>',
         '<Fagsystem navn="Gerica" versjon="2026.2">Gerica</Fagsystem>', faults.InvalidValue,
         "Feil i innholdet i IPLOS filen: Feltet Fagsystem på linje 9 skal være tomt; "
         "fagsystemet oppgis i attributtene navn og versjon."),
        ("<Navn>Statistisk sentralbyrå</Navn>", "<Navn> </Navn>", faults.InvalidValue,
         "Feil i innholdet i IPLOS filen: Feltet Navn på linje 12 kan ikke være tomt."),
        ("<Meldingstype>IPLOS</Meldingstype>", "<Meldingstype>IPLOS 3</Meldingstype>",
         faults.InvalidValue, None),
    ],
    ids=["fnr-avsender-navn", "fnr-spaced", "fnr-mottaker-navn", "fnr-fagsystem-navn",
         "fnr-fagsystem-versjon", "fnr-meldingstype", "fnr-fagsystem-text", "eleven-digits",
         "navn-too-long", "navn-markup", "fagsystem-navn-too-long", "fagsystem-text",
         "mottaker-navn-empty", "meldingstype-space"],
)
def test_the_writer_refuses_what_may_not_stand_in_clear(
    keys: Keys, old: str, new: str, kind: type, message: str | None
) -> None:
    text = document([person()])
    assert old in text
    with pytest.raises(faults.IplosFault) as caught:
        encrypt_bytes(text.replace(old, new, 1).encode(), keys)
    assert type(caught.value) is kind
    assert caught.value.field == "data"  # shown next to the data file on the page
    if message is not None:
        assert caught.value.message == message
    for number in FNR:
        assert number not in caught.value.message
        assert number[:6] not in caught.value.message


def test_a_key_id_that_may_not_stand_in_clear_is_refused_as_a_key_file_fault(keys: Keys) -> None:
    import dataclasses

    key_file = keys.key_file
    for bad in (f"tpf-{FNR[0]}", "tpf 2026", "t" * 65):
        tpf = dataclasses.replace(key_file.tpf, key_id=bad)  # type: ignore[attr-defined]
        changed = Keys(dataclasses.replace(key_file, tpf=tpf), keys.tpf_pem, keys.iplos_pem)  # type: ignore[call-overload]
        with pytest.raises(faults.KeyFileInvalid) as caught:
            encrypt_bytes(document().encode(), changed)
        assert caught.value.field == "keys"
        assert FNR[0] not in caught.value.message


# --- the writer's output always passes the reader (one rule, both sides) -----------------------

FIELD_TEXT = st.text(
    alphabet=st.sampled_from("aZæÅÀɏ 0123456789.,;:'’\"()&/+-–—_!?*#<>\t")
    | st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]),
    max_size=40,
) | st.sampled_from([*FNR, f"{FNR[0][:6]} {FNR[0][6:]}", "0123456789", "Oslo kommune"])


def _esc(value: str) -> str:
    return (value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


PLACES = {
    "avsender": (NAVN, "<Navn>{}</Navn>"),
    "mottaker": ("<Navn>Statistisk sentralbyrå</Navn>", "<Navn>{}</Navn>"),
    "fagsystem": ('navn="Gerica"', 'navn="{}"'),
    "versjon": ('versjon="2026.2"', 'versjon="{}"'),
    "meldingstype": ("<Meldingstype>IPLOS</Meldingstype>", "<Meldingstype>{}</Meldingstype>"),
}


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(place=st.sampled_from(sorted(PLACES)), value=FIELD_TEXT)
def test_whatever_the_header_holds_the_writer_refuses_it_or_the_reader_accepts_the_file(
    keys: Keys, place: str, value: str
) -> None:
    old, template = PLACES[place]
    text = document([person()]).replace(old, template.format(_esc(value)), 1)
    try:
        encrypted, _ = encrypt_bytes(text.encode(), keys)
    except (faults.InvalidValue, faults.FodselsnummerInClearField) as fault:
        assert not any(number in fault.message for number in FNR)
        return
    key_names = {keys.key_file.tpf.key_id}  # type: ignore[attr-defined]
    envelope = read_envelope(io.BytesIO(encrypted), key_names=key_names)
    assert envelope.kommunenummer == "0301"
    assert not holds_fodselsnummer(encrypted[: encrypted.index(b"<xenc:CipherValue>")].decode())
