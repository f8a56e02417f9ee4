"""The audit log's one write: `record`, called by every domain in the caller's unit of work.

What goes in `details` is ids and counts only — never an email, a name, a phone number, a token or
message text — because the audit log is kept longer than the data it talks about and is shown to
every owner of the workspace. The IP address has its own column (`ip`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from layanify.audit import repository
from layanify.audit.models import AuditEntry
from layanify.audit.schemas import AuditEntryRead
from layanify.observability import get_logger
from layanify.pagination import Page, decode_cursor, encode_cursor

log = get_logger(__name__)

# The actions this product records (others may be added as dotted names: `<domain>.<what happened>`).
ACTIONS: tuple[str, ...] = (
    "auth.login",
    "auth.login_failed",
    "auth.locked",
    "auth.ip_throttled",
    "auth.logout",
    "auth.password_changed",
    "auth.workspace_switched",
    "apikey.created",
    "apikey.revoked",
    "number.token_changed",
    "number.tokens_reencrypted",
    "contact.exported",
    "contact.erased",
    "retention.purged",
)


async def record(
    session: AsyncSession,
    *,
    workspace_id: int | None,
    actor_user_id: int | None,
    action: str,
    target_type: str | None = None,
    target_id: str | None = None,
    details: dict[str, Any] | None = None,
    ip: str | None = None,
) -> None:
    """Add an entry to the audit log; flushes only — it is kept when the caller's unit of work commits.

    `action` is a dotted name such as `auth.login` or `contact.erased`; `target_type`/`target_id` name
    the object acted on (`"api_key"`, `"17"`). `details` must hold ids and counts only, never personal
    data (emails, names, phone numbers, message text, tokens).
    """
    await repository.add(
        session,
        AuditEntry(
            workspace_id=workspace_id,
            actor_user_id=actor_user_id,
            action=action[:64],
            target_type=target_type[:32] if target_type else None,
            target_id=target_id[:64] if target_id else None,
            details=details or None,
            ip=ip[:45] if ip else None,
        ),
    )
    log.info("audit", action=action, workspace_id=workspace_id, actor_user_id=actor_user_id)


async def list_entries(
    session: AsyncSession,
    workspace_id: int | None,
    *,
    action: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
    all_workspaces: bool = False,
) -> Page[AuditEntryRead]:
    """A page of the workspace's audit log, newest first (`all_workspaces` for the operator's CLI)."""
    before: tuple[datetime, int] | None = None
    if cursor:
        at, entry_id = decode_cursor(cursor, (datetime, int))
        before = (at, entry_id)
    rows = await repository.newest_first(
        session,
        workspace_id=workspace_id,
        all_workspaces=all_workspaces,
        action=action,
        before=before,
        limit=limit + 1,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1].created_at, rows[-1].id) if more and rows else None
    return Page(data=[AuditEntryRead.model_validate(r) for r in rows], next_cursor=next_cursor)
