"""Initial schema of the register: submissions, persons and their data, deliveries, secret
rotations, staff.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

VARIABLE_COLUMNS = (
    "sosial_deltakelse", "beslutninger", "egen_helse", "husarbeid", "varer_tjenester",
    "personlig_hygiene", "pakledning", "spise", "lage_mat", "bevege_innendors",
    "bevege_utendors", "toalett", "atferd", "hukommelse", "kommunikasjon", "syn", "horsel",
)  # fmt: skip


def _person_key() -> list[sa.Column[int]]:
    return [
        sa.Column("innsending", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("lopenummer", sa.Integer(), primary_key=True, autoincrement=False),
    ]


def upgrade() -> None:
    op.create_table(
        "innsendinger",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("innsending_id", sa.String(32), nullable=False, unique=True),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("melding", sa.Text(), nullable=False),
        sa.Column("fil_id", sa.String(32), nullable=True),
        sa.Column("kommunenummer", sa.String(4), nullable=True),
        sa.Column("bydelsnummer", sa.String(2), nullable=True),
        sa.Column("organisasjonsnummer", sa.String(9), nullable=True),
        sa.Column("avsender_navn", sa.String(150), nullable=False),
        sa.Column("uttak_dato", sa.Date(), nullable=True),
        sa.Column("periode_fra", sa.Date(), nullable=True),
        sa.Column("periode_til", sa.Date(), nullable=True),
        sa.Column("aar", sa.Integer(), nullable=False),
        sa.Column("kontakt_epost", sa.String(254), nullable=False),
        sa.Column("kontakt_navn", sa.String(200), nullable=False),
        sa.Column("kontakt_mobil", sa.String(8), nullable=False),
        sa.Column("hemmelighet_id", sa.String(64), nullable=True),
        sa.Column("antall_personer", sa.Integer(), nullable=True),
        sa.Column("ugyldige_fodselsnumre", sa.Integer(), nullable=True),
        sa.Column("mottatt", sa.DateTime(), nullable=False),
        sa.Column("behandlet", sa.DateTime(), nullable=False),
        sa.Column("gjeldende", sa.Boolean(), nullable=False),
        sa.Column("erstattet_av", sa.Integer(), sa.ForeignKey("innsendinger.id"), nullable=True),
        sa.Column("erstattet", sa.DateTime(), nullable=True),
    )
    op.create_index(
        "uq_innsendinger_gjeldende",
        "innsendinger",
        ["kommunenummer", "bydelsnummer", "periode_fra", "periode_til"],
        unique=True,
        sqlite_where=sa.text("gjeldende"),
        postgresql_where=sa.text("gjeldende"),
    )
    op.create_index(
        "ix_innsendinger_aar", "innsendinger", ["aar", "kommunenummer", "bydelsnummer"]
    )
    op.create_table(
        "personer",
        *_person_key(),
        sa.Column("pseudonym", sa.String(32), nullable=True),
        sa.Column("hemmelighet_id", sa.String(64), nullable=True),
        sa.Column("husstand", sa.SmallInteger(), nullable=True),
        sa.Column("dodsdato", sa.Date(), nullable=True),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_personer_pseudonym", "personer", ["pseudonym"])
    op.create_table(
        "vurderinger",
        *_person_key(),
        sa.Column("nr", sa.SmallInteger(), primary_key=True, autoincrement=False),
        sa.Column("dato", sa.Date(), nullable=False),
        *[sa.Column(name, sa.SmallInteger(), nullable=True) for name in VARIABLE_COLUMNS],
        sqlite_with_rowid=False,
    )
    op.create_table(
        "tjenester",
        *_person_key(),
        sa.Column("nr", sa.SmallInteger(), primary_key=True, autoincrement=False),
        sa.Column("kode", sa.SmallInteger(), nullable=False),
        sa.Column("fra", sa.Date(), nullable=False),
        sa.Column("til", sa.Date(), nullable=True),
        sa.Column("timer_per_uke", sa.Numeric(5, 2), nullable=True),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "diagnoser",
        *_person_key(),
        sa.Column("nr", sa.SmallInteger(), primary_key=True, autoincrement=False),
        sa.Column("kode", sa.String(10), nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "mottak",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("innsending_id", sa.String(32), nullable=False, unique=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("storage_name", sa.String(100), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("claimed_until", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("done_at", sa.DateTime(), nullable=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("kommunenummer", sa.String(4), nullable=True),
        sa.Column("bydelsnummer", sa.String(2), nullable=True),
        sa.Column("organisasjonsnummer", sa.String(9), nullable=True),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("melding", sa.Text(), nullable=False),
        sa.Column("personer", sa.Integer(), nullable=True),
    )
    op.create_index("ix_mottak_next_attempt_at", "mottak", ["next_attempt_at"])
    op.create_table(
        "pseudonymbytte_par",
        sa.Column("bytte", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("fra", sa.String(32), primary_key=True),
        sa.Column("til", sa.String(32), nullable=False),
    )
    op.create_table(
        "pseudonymbytter",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("bytte_id", sa.String(64), nullable=False, unique=True),
        sa.Column("fra_hemmelighet", sa.String(64), nullable=False),
        sa.Column("til_hemmelighet", sa.String(64), nullable=False),
        sa.Column("antall", sa.Integer(), nullable=False),
        sa.Column("personer_endret", sa.BigInteger(), nullable=False),
        sa.Column("utfort", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "ansatte",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("brukernavn", sa.String(64), nullable=False, unique=True),
        sa.Column("navn", sa.String(200), nullable=False),
        sa.Column("passord_hash", sa.String(200), nullable=False),
        sa.Column("aktiv", sa.Boolean(), nullable=False),
        sa.Column("feil_pa_rad", sa.Integer(), nullable=False),
        sa.Column("laast_til", sa.DateTime(), nullable=True),
        sa.Column("opprettet", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "ansatt_okter",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("ansatt_id", sa.Integer(), sa.ForeignKey("ansatte.id"), nullable=False),
        sa.Column("opprettet", sa.DateTime(), nullable=False),
        sa.Column("sist_sett", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "innloggingsforsok",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("adresse", sa.String(64), nullable=False),
        sa.Column("tidspunkt", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_innloggingsforsok_adresse", "innloggingsforsok", ["adresse"])
    op.create_index("ix_innloggingsforsok_tidspunkt", "innloggingsforsok", ["tidspunkt"])


def downgrade() -> None:
    for table in (
        "innloggingsforsok", "ansatt_okter", "ansatte", "pseudonymbytter", "pseudonymbytte_par",
        "mottak", "diagnoser",
        "tjenester", "vurderinger", "personer", "innsendinger",
    ):  # fmt: skip
        op.drop_table(table)
