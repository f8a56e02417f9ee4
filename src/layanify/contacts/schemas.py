"""API shapes for contacts."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict


class ContactRead(BaseModel):
    """A customer as the API shows them."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    wa_id: str
    profile_name: str
    user_id: str | None
    marketing_opt_out: bool
    created_at: datetime
    updated_at: datetime
