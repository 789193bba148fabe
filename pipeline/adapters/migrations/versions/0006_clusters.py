"""Root-cause clusters of issues, and the read positions of followed log files.

Revision ID: 0006_clusters
Revises: 0005_review
Create Date: 2026-12-02

issues.cluster_id names the cluster an issue belongs to (pipeline/grouping.py: same crash site);
it stays empty for issues stored before this revision until `autofix regroup` fills it in.
log_cursors keeps, per followed file, the offset read so far and which file that was (device,
inode, a hash of its first line), so a restarted follower neither reads a line twice nor skips one.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_clusters"
down_revision: str | Sequence[str] | None = "0005_review"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("issues", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cluster_id", sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f("ix_issues_cluster_id"), ["cluster_id"], unique=False)

    op.create_table(
        "log_cursors",
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("head", sa.String(length=64), nullable=False),
        sa.Column("device", sa.BigInteger(), nullable=False),
        sa.Column("inode", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("path", name=op.f("pk_log_cursors")),
    )


def downgrade() -> None:
    op.drop_table("log_cursors")
    with op.batch_alter_table("issues", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_issues_cluster_id"))
        batch_op.drop_column("cluster_id")
