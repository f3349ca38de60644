"""leases, retries and idempotency keys

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("executions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner", sa.String(length=120), nullable=True))
        batch_op.add_column(
            sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("cancel_requested", sa.Text(), nullable=True))
    with op.batch_alter_table("plan_steps", schema=None) as batch_op:
        batch_op.add_column(sa.Column("retry", sa.JSON(), nullable=True))
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.create_unique_constraint(
            batch_op.f("uq_runs_execution_id_step_id_attempt"),
            ["execution_id", "step_id", "attempt"],
        )
    op.create_table(
        "idempotency_keys",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("execution_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            ["executions.id"],
            name=op.f("fk_idempotency_keys_execution_id_executions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_idempotency_keys")),
    )
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_idempotency_keys_expires_at"), ["expires_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_idempotency_keys_expires_at"))
    op.drop_table("idempotency_keys")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("uq_runs_execution_id_step_id_attempt"), type_="unique"
        )
    with op.batch_alter_table("plan_steps", schema=None) as batch_op:
        batch_op.drop_column("retry")
    with op.batch_alter_table("executions", schema=None) as batch_op:
        batch_op.drop_column("cancel_requested")
        batch_op.drop_column("lease_expires_at")
        batch_op.drop_column("owner")
