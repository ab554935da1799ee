"""The register's data read back as a statistician would (``ipis register export``), and held
against the municipality's input, field by field."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from lxml import etree
from municipality import submission_id
from register_testlib import InputPerson, RunningRegister, input_persons
from server_testlib import ipis
from tpf_testlib import hmac_pseudonym


def export(register: RunningRegister, out: Path) -> list[dict[str, str]]:
    """``ipis register export --instance DIR --out FILE.csv``, parsed."""
    ipis("register", "export", "--instance", str(register.instance), "--out", str(out),
         env=register.env)
    with out.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def rows_of(rows: Sequence[dict[str, str]], receipt_url: str) -> list[dict[str, str]]:
    wanted = submission_id(receipt_url)
    return [r for r in rows if r["innsending_id"] == wanted]


def assert_rows_equal_input(rows: Sequence[dict[str, str]], plain: bytes, secret: bytes,
                            invalid: Sequence[str] = (),
                            known_as: dict[str, str] | None = None) -> list[InputPerson]:
    """The exported rows of one submission equal the input, field by field, with each valid
    fødselsnummer replaced by its pseudonym (HMAC under the TPF's secret; ``known_as``: a new
    number whose person keeps the pseudonym of the old) and each invalid one by nothing: its
    record is there, marked by an empty pseudonym."""
    known_as = known_as or {}
    expected = input_persons(plain)
    root = etree.fromstring(plain, etree.XMLParser(resolve_entities=False, no_network=True))
    kommune, bydel, orgnr, start, end = (root.findtext(path) for path in (
        "Avsender/Kommunenummer", "Avsender/Bydelsnummer", "Avsender/Organisasjonsnummer",
        "Uttak/PeriodeFra", "Uttak/PeriodeTil"))
    assert len(rows) == len(expected)
    for index, (row, person) in enumerate(zip(rows, expected, strict=True)):
        assert (row["kommunenummer"], row["bydelsnummer"], row["organisasjonsnummer"],
                row["periode_fra"], row["periode_til"], row["gjeldende"]) == (
            kommune, bydel, orgnr, start, end, "ja"), index
        assert row["lopenummer"] == str(index + 1)
        assert (row["husstand"], row["dodsdato"], row["vurderinger"], row["tjenester"],
                row["diagnoser"]) == (person.husstand, person.dodsdato, person.vurderinger,
                                      person.tjenester, person.diagnoser), index
        if person.fodselsnummer in invalid:
            assert row["pseudonym"] == "" and row["hemmelighet_id"] == "", index
        else:
            number = known_as.get(person.fodselsnummer, person.fodselsnummer)
            assert row["pseudonym"] == hmac_pseudonym(secret, number), index
            assert row["hemmelighet_id"] == "tpf-h1"
    pseudonyms = {r["pseudonym"] for r in rows}
    for number in invalid:
        assert hmac_pseudonym(secret, number) not in pseudonyms
    return expected
