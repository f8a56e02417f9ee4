"""API shapes for the webhook log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel


class WebhookEventRead(BaseModel):
    """A stored webhook event and what came of it."""

    id: int
    received_at: datetime
    status: str
    attempts: int
    next_attempt_at: datetime | None
    processed_at: datetime | None
    fields: list[str]
    last_error: str | None
    summary: dict[str, Any] | None
    size_bytes: int


class WebhookEventDetail(WebhookEventRead):
    """An event with its payload as received.

    One POST from Meta can carry several WABAs' entries; when they belong to more than one workspace,
    the payload is withheld here (the CLI, for the operator, shows it whole).
    """

    payload: Any
    payload_withheld: bool = False
