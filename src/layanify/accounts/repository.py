"""Queries for users, workspaces, memberships and API keys; flushes, never commits."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from layanify.accounts.models import ApiKey, Membership, Role, User, Workspace


async def user_by_email(session: AsyncSession, email: str) -> User | None:
    """The user with this email (case-insensitive), if any."""
    result = await session.execute(select(User).where(User.email == email.strip().lower()))
    return result.scalar_one_or_none()


async def workspace_by_name(session: AsyncSession, name: str) -> Workspace | None:
    """The first workspace with this name, if any."""
    result = await session.execute(select(Workspace).where(Workspace.name == name).order_by(Workspace.id))
    return result.scalars().first()


async def membership(session: AsyncSession, user_id: int, workspace_id: int) -> Membership | None:
    """The user's membership in the workspace, if they have one."""
    result = await session.execute(
        select(Membership).where(Membership.user_id == user_id, Membership.workspace_id == workspace_id)
    )
    return result.scalar_one_or_none()


async def memberships_of(session: AsyncSession, user_id: int) -> list[Membership]:
    """Every workspace membership of the user, oldest first."""
    result = await session.execute(
        select(Membership).where(Membership.user_id == user_id).order_by(Membership.id)
    )
    return list(result.scalars())


async def first_owner(session: AsyncSession) -> Membership | None:
    """The oldest owner membership in the installation."""
    result = await session.execute(
        select(Membership).where(Membership.role == Role.OWNER).order_by(Membership.id).limit(1)
    )
    return result.scalar_one_or_none()


async def api_key_by_digest(session: AsyncSession, digest: str) -> ApiKey | None:
    """The unrevoked API key with this digest."""
    result = await session.execute(
        select(ApiKey).where(ApiKey.key_hash == digest, ApiKey.revoked_at.is_(None))
    )
    return result.scalar_one_or_none()


async def memberships_with_workspaces(session: AsyncSession, user_id: int) -> list[Membership]:
    """Every membership of the user with its workspace loaded."""
    result = await session.execute(
        select(Membership)
        .where(Membership.user_id == user_id)
        .options(selectinload(Membership.workspace))
        .order_by(Membership.id)
    )
    return list(result.scalars())


async def api_keys_in_workspace(
    session: AsyncSession, workspace_id: int, *, user_id: int | None
) -> list[ApiKey]:
    """The workspace's API keys (only one user's, when given), revoked ones included, newest first."""
    stmt = select(ApiKey).where(ApiKey.workspace_id == workspace_id)
    if user_id is not None:
        stmt = stmt.where(ApiKey.user_id == user_id)
    result = await session.execute(stmt.order_by(ApiKey.id.desc()))
    return list(result.scalars())


async def active_api_keys_with_prefix(session: AsyncSession, prefix: str) -> list[ApiKey]:
    """Unrevoked keys whose shown prefix is this one."""
    result = await session.execute(
        select(ApiKey).where(ApiKey.prefix == prefix, ApiKey.revoked_at.is_(None)).order_by(ApiKey.id)
    )
    return list(result.scalars())


async def all_api_keys(session: AsyncSession) -> list[tuple[ApiKey, str, str]]:
    """Every API key with its user's email and workspace's name (the operator's CLI), oldest first."""
    result = await session.execute(
        select(ApiKey, User.email, Workspace.name)
        .join(User, User.id == ApiKey.user_id)
        .join(Workspace, Workspace.id == ApiKey.workspace_id)
        .order_by(ApiKey.id)
    )
    return [(k, e, w) for k, e, w in result.all()]
