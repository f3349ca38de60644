"""token usage per run; a merge rule and writers per shared-state key

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("input_tokens", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("output_tokens", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("cost", sa.Float(), nullable=True))
    with op.batch_alter_table("shared_state", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "merge", sa.String(length=8), server_default="replace", nullable=False
            )
        )
        batch_op.add_column(
            sa.Column("updated_by_attempt", sa.Integer(), nullable=True)
        )
        batch_op.add_column(sa.Column("writers", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("shared_state", schema=None) as batch_op:
        batch_op.drop_column("writers")
        batch_op.drop_column("updated_by_attempt")
        batch_op.drop_column("merge")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("cost")
        batch_op.drop_column("output_tokens")
        batch_op.drop_column("input_tokens")
