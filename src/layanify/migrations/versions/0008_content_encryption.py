"""message content encryption at rest

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 11:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing workspaces keep their content as it is; new ones take LAYANIFY_CONTENT_ENCRYPTION's choice.
    with op.batch_alter_table("workspaces", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("content_encryption", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    # A nullable column: SQLite adds it in place.
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("search_tokens", sa.Text(), nullable=True))
    # An encrypted preview or file name is longer than the 200 / 255 characters it holds.
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.alter_column(
            "last_message_preview",
            existing_type=sa.String(length=200),
            type_=sa.Text(),
            existing_nullable=False,
        )
    with op.batch_alter_table("media_files", schema=None) as batch_op:
        batch_op.alter_column(
            "filename", existing_type=sa.String(length=255), type_=sa.Text(), existing_nullable=True
        )


def downgrade() -> None:
    # Older code cannot read encrypted previews and file names (and they would not fit): they are emptied.
    # Encrypted message content stays encrypted: decrypting it back is not offered.
    op.execute("UPDATE media_files SET filename = NULL WHERE filename LIKE 'enc1:%'")
    with op.batch_alter_table("media_files", schema=None) as batch_op:
        batch_op.alter_column(
            "filename", existing_type=sa.Text(), type_=sa.String(length=255), existing_nullable=True
        )
    op.execute("UPDATE conversations SET last_message_preview = '' WHERE last_message_preview LIKE 'enc1:%'")
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.alter_column(
            "last_message_preview",
            existing_type=sa.Text(),
            type_=sa.String(length=200),
            existing_nullable=False,
        )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("search_tokens")
    with op.batch_alter_table("workspaces", schema=None) as batch_op:
        batch_op.drop_column("content_encryption")
