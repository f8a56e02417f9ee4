"""outbox columns on messages; connection state, rate limit and soft delete on numbers

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OUTBOX = "status IN ('queued', 'sending')"


def upgrade() -> None:
    with op.batch_alter_table("whatsapp_numbers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("connection_state", sa.String(length=16), nullable=False, server_default="unknown")
        )
        batch_op.add_column(sa.Column("connection_error", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("connection_checked_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("verified_name", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("throughput_level", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("rate_limit_per_second", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("whatsapp_numbers", schema=None) as batch_op:
        batch_op.alter_column("connection_state", server_default=None)

    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("error_action", sa.String(length=32), nullable=True))
        batch_op.add_column(
            sa.Column("number_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True)
        )
        batch_op.add_column(sa.Column("recipient", sa.String(length=32), nullable=True))
        batch_op.add_column(
            sa.Column("sent_by_user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True)
        )
        batch_op.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_messages_number_id_whatsapp_numbers"),
            "whatsapp_numbers",
            ["number_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_messages_sent_by_user_id_users"),
            "users",
            ["sent_by_user_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_index(
            "ix_messages_outbox",
            ["next_attempt_at", "id"],
            unique=False,
            postgresql_where=sa.text(OUTBOX),
            sqlite_where=sa.text(OUTBOX),
        )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.alter_column("attempts", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_outbox")
        batch_op.drop_constraint(batch_op.f("fk_messages_sent_by_user_id_users"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_messages_number_id_whatsapp_numbers"), type_="foreignkey")
        for column in (
            "lease_expires_at",
            "next_attempt_at",
            "attempts",
            "sent_by_user_id",
            "recipient",
            "number_id",
            "error_action",
        ):
            batch_op.drop_column(column)
    with op.batch_alter_table("whatsapp_numbers", schema=None) as batch_op:
        for column in (
            "deleted_at",
            "rate_limit_per_second",
            "throughput_level",
            "verified_name",
            "connection_checked_at",
            "connection_error",
            "connection_state",
        ):
            batch_op.drop_column(column)
