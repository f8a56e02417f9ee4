"""One row per security-relevant action: logins, lockouts, API keys, token changes, exports, erasures."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from layanify.db.base import Base, BigId, UTCDateTime, utcnow


class AuditEntry(Base):
    """An action in the audit log.

    Append-only, and deliberately without foreign keys: the record of an action outlives the user,
    workspace or key it names (ids only, so an erased user leaves nothing readable behind).
    """

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_workspace_created", "workspace_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # Null for actions outside any workspace: a failed login for an unknown email, an operator's CLI run.
    workspace_id: Mapped[int | None] = mapped_column(BigId)
    actor_user_id: Mapped[int | None] = mapped_column(BigId)
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    target_type: Mapped[str | None] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(64))
    # Ids and counts only: never an email, a name, a phone number or message text.
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    ip: Mapped[str | None] = mapped_column(String(45))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
