"""SQLite receipts file: the hand-over mark

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Empty until a worker first moves receipts from a SQLite receipts file (decision 35).
    op.create_table(
        "webhook_receipt_handover",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("moved_through", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_receipt_handover")),
    )


def downgrade() -> None:
    op.drop_table("webhook_receipt_handover")
