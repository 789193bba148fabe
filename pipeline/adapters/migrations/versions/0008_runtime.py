"""Fix attempts: one row per claim on an issue, at most one running per issue.

Revision ID: 0008_runtime
Revises: 0007_review_ui
Create Date: 2026-12-02

An attempt starts only by a claim (SqlStore.claim_attempt): in one transaction the issue moves from
new or triaged to fixing and a running attempt row is inserted; the partial unique index on
(issue_fingerprint) WHERE status = 'running' refuses a second one. Tokens, cost and sandbox runs
are recorded on the row when it finishes; a failed or deferred one carries its backoff (retry_after).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_runtime"
down_revision: str | Sequence[str] | None = "0007_review_ui"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "attempts",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("issue_fingerprint", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("task_id", sa.String(length=255), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("tokens", sa.Integer(), nullable=False),
        sa.Column("usd", sa.Float(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("sandbox_runs", sa.Integer(), nullable=False),
        sa.Column("retry_after", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attempts")),
    )
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_attempts_issue_fingerprint"), ["issue_fingerprint"], unique=False)
        batch_op.create_index(batch_op.f("ix_attempts_status"), ["status"], unique=False)
        batch_op.create_index("ix_attempts_started_at", ["started_at"], unique=False)
        batch_op.create_index("uq_attempts_running_issue", ["issue_fingerprint"], unique=True,
                              sqlite_where=sa.text("status = 'running'"),
                              postgresql_where=sa.text("status = 'running'"))


def downgrade() -> None:
    op.drop_table("attempts")
