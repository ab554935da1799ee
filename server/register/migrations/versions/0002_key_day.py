"""The day a delivery came in, by which its keys' dates are judged when it is loaded.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("mottak") as table:
        table.add_column(sa.Column("nokkeldag", sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("mottak") as table:
        table.drop_column("nokkeldag")
