"""inbox: conversation assignment and closing, contact display name, notes and tags

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 11:02:05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("display_name", sa.String(length=256), nullable=True))
        batch_op.add_column(sa.Column("notes", sa.Text(), nullable=True))
        # A plain string default: SQLite adds the column in place (an SQL expression would copy the table).
        batch_op.add_column(sa.Column("tags", sa.JSON(), server_default="[]", nullable=False))

    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("assigned_user_id", ID, nullable=True))
        batch_op.add_column(sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(
            "ix_conversations_workspace_assignee_activity",
            ["workspace_id", "assigned_user_id", "last_message_at", "id"],
            unique=False,
            postgresql_where=sa.text("assigned_user_id IS NOT NULL"),
            sqlite_where=sa.text("assigned_user_id IS NOT NULL"),
        )
        batch_op.create_index(
            "ix_conversations_workspace_unassigned_activity",
            ["workspace_id", "last_message_at", "id"],
            unique=False,
            postgresql_where=sa.text("assigned_user_id IS NULL"),
            sqlite_where=sa.text("assigned_user_id IS NULL"),
        )
        batch_op.create_index(
            "ix_conversations_workspace_status_activity",
            ["workspace_id", "status", "last_message_at", "id"],
            unique=False,
        )
        # On SQLite this copies the table and drops the old one: with foreign keys on, that DROP cascades
        # to every message, so SQLite upgrades must run with PRAGMA foreign_keys=OFF (db/migrate.py).
        batch_op.create_foreign_key(
            batch_op.f("fk_conversations_assigned_user_id_users"),
            "users",
            ["assigned_user_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_conversations_assigned_user_id_users"), type_="foreignkey")
        batch_op.drop_index("ix_conversations_workspace_status_activity")
        batch_op.drop_index(
            "ix_conversations_workspace_unassigned_activity",
            postgresql_where=sa.text("assigned_user_id IS NULL"),
            sqlite_where=sa.text("assigned_user_id IS NULL"),
        )
        batch_op.drop_index(
            "ix_conversations_workspace_assignee_activity",
            postgresql_where=sa.text("assigned_user_id IS NOT NULL"),
            sqlite_where=sa.text("assigned_user_id IS NOT NULL"),
        )
        batch_op.drop_column("closed_at")
        batch_op.drop_column("assigned_user_id")

    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_column("tags")
        batch_op.drop_column("notes")
        batch_op.drop_column("display_name")
