"""corpus jobs: a job's kind (check or corpus) and the progress of a corpus change

Revision ID: d4b8e1f3a6c2
Revises: c3f9a7d2e5b1
Create Date: 2026-12-07 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d4b8e1f3a6c2"
down_revision: str | None = "c3f9a7d2e5b1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "jobs", sa.Column("kind", sa.String(length=20), nullable=False, server_default="check")
    )
    op.add_column("jobs", sa.Column("progress", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("progress")
        batch.drop_column("kind")
