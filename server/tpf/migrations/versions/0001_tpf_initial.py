"""The TPF's schema: received submissions (claimed by processing workers), the outbox to the
register, the pseudonym secrets' states and the pseudonym aliases.

Revision ID: tpf_0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "tpf_0001"
down_revision = None
branch_labels = None
depends_on = None


def _lease_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("claimed_until", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("done_at", sa.DateTime(), nullable=True),
    ]


def upgrade() -> None:
    op.create_table(
        "submissions",
        *_lease_columns(),
        sa.Column("innsending_id", sa.String(32), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("storage_name", sa.String(100), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("key_name", sa.String(64), nullable=False),
        sa.Column("kommunenummer", sa.String(4), nullable=False),
        sa.Column("bydelsnummer", sa.String(2), nullable=False),
        sa.Column("organisasjonsnummer", sa.String(9), nullable=False),
        sa.Column("receipt_number", sa.String(40), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("persons", sa.Integer(), nullable=True),
        sa.Column("invalid_numbers", sa.Integer(), nullable=True),
        sa.Column("secret_id", sa.String(20), nullable=True),
        sa.Column("file_id", sa.String(32), nullable=True),
        sa.Column("processed_at", sa.DateTime(), nullable=True),
        sa.Column("register_report", sa.Text(), nullable=True),
        # One row per submission id, settled by the database (parallel PUTs: server/intake.py).
        sa.UniqueConstraint("innsending_id", name="uq_tpf_submission_id"),
    )
    op.create_index("ix_submissions_next_attempt_at", "submissions", ["next_attempt_at"])
    op.create_table(
        "register_outbox",
        *_lease_columns(),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("delivery_id", sa.String(32), nullable=False),
        sa.Column("submission_id", sa.Integer(), sa.ForeignKey("submissions.id"), nullable=True),
        sa.Column("storage_name", sa.String(100), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("sent", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("delivery_id", name="uq_register_outbox_delivery"),
        # One message per submission: two workers finishing one file cannot both queue it.
        sa.UniqueConstraint("submission_id", name="uq_register_outbox_submission"),
    )
    op.create_index("ix_register_outbox_next_attempt_at", "register_outbox", ["next_attempt_at"])
    op.create_table(
        "pseudonym_secrets",
        sa.Column("id", sa.String(20), primary_key=True),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("retired_at", sa.DateTime(), nullable=True),
        sa.UniqueConstraint("number", name="uq_pseudonym_secret_number"),
    )
    # At most one secret in each live state (current, being replaced, new): settled by the
    # database when two rotations or two first starts race.
    live = sa.text("state <> 'avløst'")
    op.create_index("uq_pseudonym_secret_live_state", "pseudonym_secrets", ["state"], unique=True,
                    postgresql_where=live, sqlite_where=live)
    op.create_table(
        "pseudonym_aliases",
        sa.Column("secret_id", sa.String(20), sa.ForeignKey("pseudonym_secrets.id"),
                  primary_key=True),
        sa.Column("alias", sa.String(32), primary_key=True),
        sa.Column("target", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_pseudonym_aliases_target", "pseudonym_aliases", ["target"])


def downgrade() -> None:
    op.drop_table("pseudonym_aliases")
    op.drop_table("pseudonym_secrets")
    op.drop_table("register_outbox")
    op.drop_table("submissions")
