"""API shapes of the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class AuditEntryRead(BaseModel):
    """One audit log entry."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    created_at: datetime
    action: str
    workspace_id: int | None
    actor_user_id: int | None
    target_type: str | None
    target_id: str | None
    details: dict[str, Any] | None
    ip: str | None
