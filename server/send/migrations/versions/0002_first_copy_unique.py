"""One first copy per content and account: a unique index instead of check-then-insert.

Issue 7, point 6: the same file uploaded at the same moment was forwarded several times. The
existing first copy of each (account, SHA-256) — the oldest row that is neither a flagged
duplicate nor awaiting confirmation — gets ``first_sha256``; the index makes the database
refuse a second one.

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
    op.add_column("submissions", sa.Column("first_sha256", sa.String(64), nullable=True))
    op.execute(
        """
        UPDATE submissions SET first_sha256 = sha256
        WHERE id IN (
            SELECT MIN(id) FROM submissions
            WHERE duplicate_of IS NULL AND status <> 'venter'
            GROUP BY account_id, sha256
        )
        """
    )
    op.create_index(
        "uq_submission_first_copy", "submissions", ["account_id", "first_sha256"], unique=True
    )


def downgrade() -> None:
    op.drop_index("uq_submission_first_copy", table_name="submissions")
    with op.batch_alter_table("submissions") as batch:
        batch.drop_column("first_sha256")
