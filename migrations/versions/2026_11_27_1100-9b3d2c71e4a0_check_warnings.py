"""checks.warnings: what the caller should know about how the claims were made

Revision ID: 9b3d2c71e4a0
Revises: 4f122a6a8e05
Create Date: 2026-11-27 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9b3d2c71e4a0"
down_revision: str | None = "4f122a6a8e05"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("checks") as batch:
        batch.add_column(sa.Column("warnings", sa.JSON(), nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("checks") as batch:
        batch.drop_column("warnings")
