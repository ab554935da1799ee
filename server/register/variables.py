"""The IPLOS variables of a Vurdering (formats §1), as the format spells them; each is a column
of ``vurderinger`` under its lower-case name. A module of its own: the person-data reader runs
in a helper process too, which should not import the database layer for these names."""

from __future__ import annotations

VARIABLES = (
    "SOSIAL_DELTAKELSE", "BESLUTNINGER", "EGEN_HELSE", "HUSARBEID", "VARER_TJENESTER",
    "PERSONLIG_HYGIENE", "PAKLEDNING", "SPISE", "LAGE_MAT", "BEVEGE_INNENDORS",
    "BEVEGE_UTENDORS", "TOALETT", "ATFERD", "HUKOMMELSE", "KOMMUNIKASJON", "SYN", "HORSEL",
)  # fmt: skip
VARIABLE_COLUMNS = tuple(code.lower() for code in VARIABLES)
