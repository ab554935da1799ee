"""Realistic synthetic IPLOS 3.0 files for demos, tests and benchmarks.

Deterministic for a given seed. Fødselsnumre are valid by their check digits but drawn from
Skatteetaten's synthetic series (month + 80), so they can never be a real person's number.
Fast enough for 500 MB in under a minute: each person is formatted from a few templates.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import BinaryIO

from .identifiers import fnr_check_digits, orgnr_check_digit

VARIABLES = (
    "SOSIAL_DELTAKELSE", "BESLUTNINGER", "EGEN_HELSE", "HUSARBEID", "VARER_TJENESTER",
    "PERSONLIG_HYGIENE", "PAKLEDNING", "SPISE", "LAGE_MAT", "BEVEGE_INNENDORS",
    "BEVEGE_UTENDORS", "TOALETT", "ATFERD", "HUKOMMELSE", "KOMMUNIKASJON", "SYN", "HORSEL",
)  # fmt: skip
DIAGNOSES = ("F03", "I63", "E11", "J44", "G30", "M81", "I50", "F32", "C50", "R54", "A85", "P70")
SCORES = ("1", "2", "3", "4", "5", "9")
KOMMUNER = {
    "0301": "Oslo kommune", "4601": "Bergen kommune", "5001": "Trondheim kommune",
    "1103": "Stavanger kommune", "3907": "Sandefjord kommune", "5501": "Tromsø kommune",
    "1804": "Bodø kommune", "3301": "Drammen kommune", "4204": "Kristiansand kommune",
    "3403": "Hamar kommune", "1508": "Ålesund kommune", "5601": "Alta kommune",
}  # fmt: skip
SSB_ORGNR = "971526920"
ENCODINGS = ("UTF-8", "UTF-8-BOM", "UTF-16LE", "UTF-16BE", "ISO-8859-1", "windows-1252")


def synthetic_fnr(rng: random.Random) -> str:
    """A valid synthetic fødselsnummer (month + 80, check digits by the pre-2032 rule)."""
    while True:
        year = rng.randrange(1920, 2020)
        month = rng.randrange(1, 13)
        day = rng.randrange(1, 29)
        individual = rng.randrange(0, 500) if year < 2000 else rng.randrange(500, 1000)
        stem = f"{day:02d}{month + 80:02d}{year % 100:02d}{individual:03d}"
        digits = fnr_check_digits(stem)
        if digits is not None:
            return stem + digits


def organisation_number(rng: random.Random) -> str:
    while True:
        stem = f"9{rng.randrange(0, 10**7):07d}"
        check = orgnr_check_digit(stem)
        if check is not None:
            return f"{stem}{check}"


def _date(rng: random.Random, first_year: int, last_year: int) -> str:
    return f"{rng.randrange(first_year, last_year + 1)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"  # noqa: E501


def _person(rng: random.Random) -> str:
    parts = [
        "    <Person>\n",
        f"      <Fodselsnummer>{synthetic_fnr(rng)}</Fodselsnummer>\n",
        f"      <Husstand>{rng.choice('1112223')}</Husstand>\n",
    ]
    if rng.random() < 0.04:
        parts.append(f"      <Dodsdato>{_date(rng, 2025, 2025)}</Dodsdato>\n")
    if rng.random() < 0.85:
        parts.append(f'      <Vurdering dato="{_date(rng, 2023, 2025)}">\n')
        for code in rng.sample(VARIABLES, rng.randrange(3, 9)):
            parts.append(f'        <Variabel kode="{code}" skar="{rng.choice(SCORES)}"/>\n')
        parts.append("      </Vurdering>\n")
    for _ in range(rng.randrange(1, 3)):
        hours = f' timerPerUke="{rng.randrange(1, 400) / 4:g}"' if rng.random() < 0.6 else ""
        until = f' til="{_date(rng, 2025, 2026)}"' if rng.random() < 0.3 else ""
        parts.append(
            f'      <Tjeneste kode="{rng.randrange(1, 31)}" fra="{_date(rng, 2015, 2024)}"'
            f"{until}{hours}/>\n"
        )
    if rng.random() < 0.5:
        parts.append(f'      <Diagnose kode="{rng.choice(DIAGNOSES)}"/>\n')
    parts.append("    </Person>\n")
    return "".join(parts)


def header(kommune: str, rng: random.Random, encoding_label: str = "UTF-8") -> str:
    name = KOMMUNER.get(kommune, f"Kommune {kommune}")
    return (
        f'<?xml version="1.0" encoding="{encoding_label}"?>\n'
        '<IPLOS versjon="3.0">\n'
        "  <Meldingstype>IPLOS</Meldingstype>\n"
        "  <Avsender>\n"
        f"    <Kommunenummer>{kommune}</Kommunenummer>\n"
        "    <Bydelsnummer>00</Bydelsnummer>\n"
        f"    <Organisasjonsnummer>{organisation_number(rng)}</Organisasjonsnummer>\n"
        f"    <Navn>{name}, helse og omsorg (Ærø-Øvre Åsen)</Navn>\n"
        '    <Fagsystem navn="Gerica" versjon="2026.2"/>\n'
        "  </Avsender>\n"
        "  <Mottaker>\n"
        "    <Navn>Statistisk sentralbyrå</Navn>\n"
        f"    <Organisasjonsnummer>{SSB_ORGNR}</Organisasjonsnummer>\n"
        "  </Mottaker>\n"
        "  <Uttak>\n"
        "    <Dato>2026-01-15</Dato>\n"
        "    <PeriodeFra>2025-01-01</PeriodeFra>\n"
        "    <PeriodeTil>2025-12-31</PeriodeTil>\n"
        "  </Uttak>\n"
        "  <Personer>\n"
    )


FOOTER = "  </Personer>\n</IPLOS>\n"


def iter_document(persons: int, kommune: str = "0301", seed: int = 1,
                  encoding_label: str = "UTF-8") -> Iterator[str]:
    """The document as text pieces (header, persons in blocks, footer)."""
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    yield header(kommune, rng, encoding_label)
    block: list[str] = []
    for _ in range(persons):
        block.append(_person(rng))
        if len(block) == 1000:
            yield "".join(block)
            block = []
    if block:
        yield "".join(block)
    yield FOOTER


def write_document(out: BinaryIO, persons: int, kommune: str = "0301", seed: int = 1,
                   encoding: str = "UTF-8") -> None:
    """Write a demo file in one of the encodings of formats §1 (see ENCODINGS)."""
    codec, label, bom = {
        "UTF-8": ("utf-8", "UTF-8", b""),
        "UTF-8-BOM": ("utf-8", "UTF-8", b"\xef\xbb\xbf"),
        "UTF-16LE": ("utf-16-le", "UTF-16", b"\xff\xfe"),
        "UTF-16BE": ("utf-16-be", "UTF-16", b"\xfe\xff"),
        "ISO-8859-1": ("latin-1", "ISO-8859-1", b""),
        "windows-1252": ("cp1252", "windows-1252", b""),
    }[encoding]
    out.write(bom)
    for piece in iter_document(persons, kommune, seed, label):
        out.write(piece.encode(codec))


def document_bytes(persons: int, kommune: str = "0301", seed: int = 1,
                   encoding: str = "UTF-8") -> bytes:
    import io

    buffer = io.BytesIO()
    write_document(buffer, persons, kommune, seed, encoding)
    return buffer.getvalue()
