"""Pull requests on a code host that runs CI, hints for the next attempt, reproductions kept.

Revision ID: 0005_review
Revises: 0003_inbox
Create Date: 2026-11-30

pull_requests gains the base and merge commits, the CI feedback state (the candidate at the branch
head, rounds pushed, the head whose failures were read, whether a human must decide) and when the
fix regressed; candidates keep the reproduction they were verified with (published as a regression
test); hints holds feedback (failing CI output, reviewers' hints) for an issue's next attempt.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_review"
down_revision: str | Sequence[str] | None = "0003_inbox"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("pull_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("base_sha", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("merge_commit_sha", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("head_candidate_id", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("ci_rounds", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("ci_checked_sha", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("needs_human", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column("regressed_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("candidates", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reproduction", sa.Text(), nullable=True))

    op.create_table(
        "hints",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("issue_fingerprint", sa.String(length=255), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("ref", sa.String(length=255), nullable=False),
        sa.Column("candidate_id", sa.String(length=255), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["issue_fingerprint"], ["issues.fingerprint"], name=op.f("fk_hints_issue_fingerprint_issues")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hints")),
        sa.UniqueConstraint(
            "issue_fingerprint", "source", "ref", name=op.f("uq_hints_issue_fingerprint_source_ref")
        ),
    )
    with op.batch_alter_table("hints", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_hints_issue_fingerprint"), ["issue_fingerprint"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("hints", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_hints_issue_fingerprint"))
    op.drop_table("hints")
    with op.batch_alter_table("candidates", schema=None) as batch_op:
        batch_op.drop_column("reproduction")
    with op.batch_alter_table("pull_requests", schema=None) as batch_op:
        batch_op.drop_column("regressed_at")
        batch_op.drop_column("needs_human")
        batch_op.drop_column("ci_checked_sha")
        batch_op.drop_column("ci_rounds")
        batch_op.drop_column("head_candidate_id")
        batch_op.drop_column("merge_commit_sha")
        batch_op.drop_column("base_sha")
