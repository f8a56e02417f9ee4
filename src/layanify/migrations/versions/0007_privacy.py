"""privacy: retention, erasure and opt-out

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 11:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "retention_policies",
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("messages_days", sa.Integer(), nullable=True),
        sa.Column("media_days", sa.Integer(), nullable=True),
        sa.Column("webhook_events_days", sa.Integer(), nullable=True),
        sa.Column("updated_by_user_id", ID, nullable=True),
        sa.Column("last_purge_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_purge_counts", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["updated_by_user_id"],
            ["users.id"],
            name=op.f("fk_retention_policies_updated_by_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_retention_policies_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_retention_policies")),
    )
    # An index only: SQLite creates it in place (no table copy).
    op.create_index(
        "ix_messages_workspace_timestamp", "messages", ["workspace_id", "timestamp", "id"], unique=False
    )
    # A nullable column: SQLite adds it in place.
    with op.batch_alter_table("message_templates", schema=None) as batch_op:
        batch_op.add_column(sa.Column("category", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("message_templates", schema=None) as batch_op:
        batch_op.drop_column("category")
    op.drop_index("ix_messages_workspace_timestamp", table_name="messages")
    op.drop_table("retention_policies")
