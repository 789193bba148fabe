"""Verifications record where on the stack the patch lies: the distance of the deepest frame whose
function it changes, and how many in-app frames the stack has.

Revision ID: 0009_patched_depth
Revises: 0008_runtime
Create Date: 2026-12-02

A replay below the patched function is not judged (it calls unchanged code with the crash's
arguments, past the patched caller). Rows written before this revision get 0 and 0: they were
verified with every replay judged, as a patch at the crash frame is.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_patched_depth"
down_revision: str | Sequence[str] | None = "0008_runtime"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ("patched_depth", "stack_frames")


def upgrade() -> None:
    with op.batch_alter_table("verifications", schema=None) as batch_op:
        for name in _COLUMNS:
            batch_op.add_column(sa.Column(name, sa.Integer(), nullable=False, server_default=sa.text("0")))


def downgrade() -> None:
    with op.batch_alter_table("verifications", schema=None) as batch_op:
        for name in reversed(_COLUMNS):
            batch_op.drop_column(name)
