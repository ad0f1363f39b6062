"""review queue: claim priority and leases, double review, calibrations

Revision ID: e2a4b6c8d0f1
Revises: c5e1f0a9d2b7
Create Date: 2026-11-27 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e2a4b6c8d0f1"
down_revision: str | None = "c5e1f0a9d2b7"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("claims") as batch:
        batch.add_column(sa.Column("priority", sa.Float(), nullable=False, server_default="0"))
        batch.add_column(
            sa.Column("reviews_needed", sa.Integer(), nullable=False, server_default="1")
        )
        batch.add_column(sa.Column("calibration_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("raw_scores", sa.JSON(), nullable=False, server_default="{}"))
        batch.create_index("ix_claims_queue", ["flagged", "review_state", "priority"])
    op.create_table(
        "claim_leases",
        sa.Column("claim_id", sa.String(length=40), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["claim_id"], ["claims.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("claim_id"),
    )
    op.create_table(
        "calibrations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("corpus_name", sa.String(length=100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(length=20), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("fitted_on", sa.Integer(), nullable=False),
        sa.Column("held_out", sa.Integer(), nullable=False),
        sa.Column("ece_before", sa.Float(), nullable=True),
        sa.Column("ece_after", sa.Float(), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("corpus_name", "version"),
    )


def downgrade() -> None:
    op.drop_table("calibrations")
    op.drop_table("claim_leases")
    with op.batch_alter_table("claims") as batch:
        batch.drop_index("ix_claims_queue")
        batch.drop_column("raw_scores")
        batch.drop_column("calibration_id")
        batch.drop_column("reviews_needed")
        batch.drop_column("priority")
