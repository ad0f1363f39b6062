"""documents move into the corpus snapshots (format 2); the documents table goes

A snapshot now holds its documents (text, metadata, content hash and the
passages they own), written with the snapshot and swapped in with it, so a
large ingestion never holds documents in one database transaction.

Revision ID: c5e1f0a9d2b7
Revises: 9b3d2c71e4a0
Create Date: 2026-11-27 11:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c5e1f0a9d2b7"
down_revision: str | None = "9b3d2c71e4a0"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_table("documents")


def downgrade() -> None:
    op.create_table(
        "documents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("corpus_id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=500), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("added_version", sa.Integer(), nullable=False),
        sa.Column("deleted_version", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["corpus_id"], ["corpora.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("corpus_id", "external_id"),
    )
