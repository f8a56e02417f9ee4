"""Queries for the audit log; flushes, never commits."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from layanify.audit.models import AuditEntry


async def add(session: AsyncSession, entry: AuditEntry) -> None:
    """Store an entry (flushed, committed by the caller's unit of work)."""
    session.add(entry)
    await session.flush()


async def newest_first(
    session: AsyncSession,
    *,
    workspace_id: int | None,
    all_workspaces: bool = False,
    action: str | None = None,
    before: tuple[datetime, int] | None = None,
    limit: int,
) -> list[AuditEntry]:
    """Entries of one workspace (or every one, for the operator's CLI), newest first.

    `action` matches exactly, or a whole family when it ends with a dot (`auth.`). `before` is the
    (created_at, id) of the last entry of the previous page.
    """
    stmt = select(AuditEntry)
    if not all_workspaces:
        stmt = stmt.where(AuditEntry.workspace_id == workspace_id)
    if action:
        if action.endswith("."):
            stmt = stmt.where(AuditEntry.action.startswith(action, autoescape=True))
        else:
            stmt = stmt.where(AuditEntry.action == action)
    if before is not None:
        at, entry_id = before
        stmt = stmt.where(
            or_(AuditEntry.created_at < at, (AuditEntry.created_at == at) & (AuditEntry.id < entry_id))
        )
    stmt = stmt.order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc()).limit(limit)
    return list((await session.execute(stmt)).scalars())
