"""Login sessions kept on the server: started at login, ended by logout, idleness, age or a new password.

The cookie carries a random key (signed, with the user and workspace); the `user_sessions` row holds
its digest and when it was last used. A session is valid while it is younger than
`session_max_age_seconds` and was used within `session_idle_seconds`. The cookie value never changes
while the session lives (its CSRF token stays valid); `last_seen_at` is written at most once a minute.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from layanify.accounts import repository
from layanify.accounts.models import UserSession
from layanify.accounts.security import SessionCookie, new_session_key, session_key_digest
from layanify.accounts.service import Principal
from layanify.audit import service as audit
from layanify.db.base import utcnow
from layanify.errors import Unauthorized

# How stale `last_seen_at` may get before a request writes it again (idle expiry is this coarse).
TOUCH_SECONDS = 60


async def start(session: AsyncSession, *, user_id: int, workspace_id: int) -> tuple[str, UserSession]:
    """A new session for the user in the workspace; returns its key (for the cookie only)."""
    key = new_session_key()
    row = UserSession(user_id=user_id, workspace_id=workspace_id, key_hash=session_key_digest(key))
    session.add(row)
    await session.flush()
    return key, row


async def principal_for_cookie(
    session: AsyncSession, cookie: SessionCookie, *, idle_seconds: int, max_age_seconds: int
) -> Principal | None:
    """The principal of a valid session; None when it ended, expired or lost its membership."""
    if not cookie.key:
        return None
    result = await session.execute(
        select(UserSession).where(UserSession.key_hash == session_key_digest(cookie.key))
    )
    row = result.scalar_one_or_none()
    if row is None or row.user_id != cookie.user_id:
        return None
    now = utcnow()
    if now - row.last_seen_at > timedelta(seconds=idle_seconds) or now - row.created_at > timedelta(
        seconds=max_age_seconds
    ):
        return None
    member = await repository.membership(session, row.user_id, row.workspace_id)
    if member is None:
        return None
    if now - row.last_seen_at > timedelta(seconds=TOUCH_SECONDS):
        row.last_seen_at = now
    return Principal(user_id=row.user_id, workspace_id=row.workspace_id, role=member.role, session_id=row.id)


async def switch_workspace(session: AsyncSession, session_id: int, workspace_id: int) -> str:
    """Move the session to another workspace under a new key (a new cookie, a new CSRF token).

    The session keeps its start time: switching does not extend its maximum age.
    """
    row = await session.get(UserSession, session_id)
    if row is None:  # ended by a logout elsewhere since this request began
        raise Unauthorized("your session has expired; log in again", code="session_expired")
    key = new_session_key()
    row.key_hash = session_key_digest(key)
    row.workspace_id = workspace_id
    row.last_seen_at = utcnow()
    await session.flush()
    return key


async def end(session: AsyncSession, session_id: int) -> None:
    """End one session (logout): its cookie is refused from now on."""
    await session.execute(delete(UserSession).where(UserSession.id == session_id))


async def end_all(session: AsyncSession, user_id: int, *, keep: int | None = None) -> int:
    """End every session of the user (but `keep`); returns how many ended."""
    stmt = delete(UserSession).where(UserSession.user_id == user_id)
    if keep is not None:
        stmt = stmt.where(UserSession.id != keep)
    result = await session.execute(stmt)
    return int(getattr(result, "rowcount", 0) or 0)


async def purge_expired(session: AsyncSession, *, idle_seconds: int, max_age_seconds: int) -> int:
    """Delete sessions that can no longer be used (run at each login; they are refused anyway)."""
    now = utcnow()
    result = await session.execute(
        delete(UserSession).where(
            or_(
                UserSession.last_seen_at < now - timedelta(seconds=idle_seconds),
                UserSession.created_at < now - timedelta(seconds=max_age_seconds),
            )
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def log_out(session: AsyncSession, principal: Principal, *, everywhere: bool, ip: str | None) -> None:
    """End the caller's session (or every session of the user), recorded in the audit log."""
    if principal.session_id is None:
        return
    ended = 1
    if everywhere:
        ended = await end_all(session, principal.user_id)
    else:
        await end(session, principal.session_id)
    await audit.record(
        session,
        workspace_id=principal.workspace_id,
        actor_user_id=principal.user_id,
        action="auth.logout",
        target_type="user",
        target_id=str(principal.user_id),
        details={"sessions_ended": ended, "everywhere": everywhere},
        ip=ip,
    )
