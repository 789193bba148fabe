"""Verification names each replay: replays and their results, frames not replayable, newly failing
tests and static problems on verifications; the commit a candidate was verified on.

Revision ID: 0002_verify
Revises: 0001
Create Date: 2026-12-02

Rows written before this revision get empty lists and an empty commit: they were verified by the
crash-site-only reproduction and name no replay.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_verify"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LISTS = ("replays", "not_replayable", "newly_failing", "static_problems")


def upgrade() -> None:
    with op.batch_alter_table("candidates", schema=None) as batch_op:
        batch_op.add_column(sa.Column("base_commit", sa.String(length=64), nullable=False, server_default=""))
    with op.batch_alter_table("verifications", schema=None) as batch_op:
        for name in _LISTS:
            batch_op.add_column(sa.Column(name, sa.JSON(), nullable=False, server_default=sa.text("'[]'")))


def downgrade() -> None:
    with op.batch_alter_table("verifications", schema=None) as batch_op:
        for name in reversed(_LISTS):
            batch_op.drop_column(name)
    with op.batch_alter_table("candidates", schema=None) as batch_op:
        batch_op.drop_column("base_commit")
