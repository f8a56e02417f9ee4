"""Account operations: create users and workspaces, authenticate, issue API keys."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from layanify.accounts import repository
from layanify.accounts.models import ApiKey, Membership, Role, User, Workspace
from layanify.accounts.security import (
    api_key_digest,
    hash_password,
    new_api_key,
    password_needs_rehash,
    verify_password,
)
from layanify.db.base import utcnow
from layanify.errors import LayanifyError, NotFound, Unauthorized

MIN_PASSWORD_LENGTH = 8


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user acting in one workspace with a role."""

    user_id: int
    workspace_id: int
    role: Role

    @property
    def is_owner(self) -> bool:
        """True for the workspace's owners."""
        return self.role == Role.OWNER


def _normalize_email(email: str) -> str:
    email = email.strip().lower()
    local, _, domain = email.partition("@")
    if not local or "." not in domain or " " in email:
        raise LayanifyError(f"{email!r} is not a valid email address", code="invalid_email")
    return email


async def create_user(
    session: AsyncSession,
    *,
    email: str,
    password: str,
    workspace_name: str | None = None,
    role: Role = Role.OWNER,
    name: str = "",
) -> tuple[User, Workspace, Membership]:
    """Create a user (or reuse one with this email and password) and add them to a workspace.

    The workspace is found by name or created; without a name, a workspace named after the user is made.
    """
    email = _normalize_email(email)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise LayanifyError(
            f"password must be at least {MIN_PASSWORD_LENGTH} characters", code="weak_password"
        )
    user = await repository.user_by_email(session, email)
    if user is None:
        user = User(email=email, name=name or email.split("@")[0], password_hash=hash_password(password))
        session.add(user)
        await session.flush()
    elif not verify_password(user.password_hash, password):
        raise LayanifyError(
            f"a user with email {email} exists and the password does not match", code="user_exists"
        )
    workspace = await repository.workspace_by_name(session, workspace_name) if workspace_name else None
    if workspace is None:
        workspace = Workspace(name=workspace_name or f"{user.name}'s workspace")
        session.add(workspace)
        await session.flush()
    member = await repository.membership(session, user.id, workspace.id)
    if member is None:
        member = Membership(user_id=user.id, workspace_id=workspace.id, role=role)
        session.add(member)
        await session.flush()
    elif member.role != role:
        member.role = role
    return user, workspace, member


async def authenticate(session: AsyncSession, email: str, password: str) -> tuple[User, Membership]:
    """Check email and password; the user's first workspace is where they land."""
    user = await repository.user_by_email(session, email)
    if user is None or not verify_password(user.password_hash, password):
        raise Unauthorized("email or password is incorrect", code="invalid_credentials")
    if password_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    memberships = await repository.memberships_of(session, user.id)
    if not memberships:
        raise Unauthorized("this user belongs to no workspace", code="no_workspace")
    user.last_login_at = utcnow()
    return user, memberships[0]


async def principal_for_session(session: AsyncSession, user_id: int, workspace_id: int) -> Principal | None:
    """The principal of a session cookie, if the membership still exists."""
    member = await repository.membership(session, user_id, workspace_id)
    if member is None:
        return None
    return Principal(user_id=user_id, workspace_id=workspace_id, role=member.role)


async def principal_for_api_key(session: AsyncSession, key: str) -> Principal | None:
    """The principal of a bearer API key, if it is valid and its user is still a member."""
    api_key = await repository.api_key_by_digest(session, api_key_digest(key))
    if api_key is None:
        return None
    member = await repository.membership(session, api_key.user_id, api_key.workspace_id)
    if member is None:
        return None
    return Principal(user_id=api_key.user_id, workspace_id=api_key.workspace_id, role=member.role)


async def create_api_key(
    session: AsyncSession, *, email: str, workspace_name: str | None = None, name: str = ""
) -> tuple[str, ApiKey]:
    """Issue an API key for the user in their (named or first) workspace; returns the key once."""
    user = await repository.user_by_email(session, email)
    if user is None:
        raise NotFound(f"no user with email {email.strip().lower()}")
    memberships = await repository.memberships_of(session, user.id)
    if workspace_name is not None:
        workspace = await repository.workspace_by_name(session, workspace_name)
        memberships = [m for m in memberships if workspace is not None and m.workspace_id == workspace.id]
    if not memberships:
        raise NotFound("the user is not a member of that workspace")
    key = new_api_key()
    api_key = ApiKey(
        workspace_id=memberships[0].workspace_id,
        user_id=user.id,
        name=name,
        prefix=key[:8],
        key_hash=api_key_digest(key),
    )
    session.add(api_key)
    await session.flush()
    return key, api_key


async def switch_workspace(session: AsyncSession, user_id: int, workspace_id: int) -> Principal:
    """The principal for another workspace of the same user; 404 when they are not a member."""
    principal = await principal_for_session(session, user_id, workspace_id)
    if principal is None:
        raise NotFound("workspace not found")
    return principal
