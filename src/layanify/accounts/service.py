"""Account operations: create users and workspaces, log in (throttled), change passwords, API keys."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from layanify.accounts import repository, scopes
from layanify.accounts.models import ApiKey, Membership, Role, Scope, User, Workspace
from layanify.accounts.policy import DEFAULT_MIN_LENGTH, check_password
from layanify.accounts.security import (
    API_KEY_PREFIX_LENGTH,
    api_key_digest,
    hash_password,
    new_api_key,
    password_needs_rehash,
    verify_password,
    verify_password_of_nobody,
)
from layanify.accounts.throttle import LoginThrottle, Refusal
from layanify.audit import service as audit
from layanify.db.base import utcnow
from layanify.errors import Conflict, Forbidden, LayanifyError, NotFound, Unauthorized
from layanify.observability import get_logger

log = get_logger(__name__)
# How stale an API key's `last_used_at` may get before a request writes it again.
KEY_USE_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user acting in one workspace with a role, through a session or an API key."""

    user_id: int
    workspace_id: int
    role: Role
    session_id: int | None = None  # a login session (the UI, or a cookie API client)
    api_key_id: int | None = None
    scopes: frozenset[Scope] | None = None  # an API key's; sessions are not scoped

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
    password_min_length: int = DEFAULT_MIN_LENGTH,
) -> tuple[User, Workspace, Membership]:
    """Create a user (or reuse one with this email and password) and add them to a workspace.

    The workspace is found by name or created; without a name, a workspace named after the user is made.
    A new user's password must pass the policy (422 `weak_password` saying why).
    """
    email = _normalize_email(email)
    user = await repository.user_by_email(session, email)
    if user is None:
        name = name or email.split("@")[0]
        check_password(
            password,
            min_length=password_min_length,
            email=email,
            workspace_names=[workspace_name or f"{name}'s workspace"],
        )
        user = User(email=email, name=name, password_hash=hash_password(password))
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


async def change_password(
    session: AsyncSession,
    principal: Principal,
    *,
    current_password: str,
    new_password: str,
    min_length: int,
    ip: str | None = None,
) -> None:
    """Set a new password (the current one must be right; the new one must pass the policy)."""
    user = await session.get(User, principal.user_id)
    if user is None or not verify_password(user.password_hash, current_password):
        raise Forbidden("the current password is not right", code="wrong_password")
    names = [m.workspace.name for m in await repository.memberships_with_workspaces(session, user.id)]
    check_password(new_password, min_length=min_length, email=user.email, workspace_names=names)
    user.password_hash = hash_password(new_password)
    await audit.record(
        session,
        workspace_id=principal.workspace_id,
        actor_user_id=user.id,
        action="auth.password_changed",
        target_type="user",
        target_id=str(user.id),
        ip=ip,
    )


async def authenticate(session: AsyncSession, email: str, password: str) -> tuple[User, Membership]:
    """Check email and password (no throttling: `log_in` is what the login forms use)."""
    user = await repository.user_by_email(session, email)
    if user is None:
        verify_password_of_nobody(password)
        raise Unauthorized("email or password is incorrect", code="invalid_credentials")
    if not verify_password(user.password_hash, password):
        raise Unauthorized("email or password is incorrect", code="invalid_credentials")
    if password_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    memberships = await repository.memberships_of(session, user.id)
    if not memberships:
        raise Unauthorized("this user belongs to no workspace", code="no_workspace")
    user.last_login_at = utcnow()
    return user, memberships[0]


@dataclass(frozen=True)
class LoginOutcome:
    """What a login attempt came to: the user and their first workspace, or why not."""

    user: User | None = None
    membership: Membership | None = None
    refusal: Refusal | None = None  # throttled: answer 429 with Retry-After
    error: Unauthorized | None = None  # wrong email or password, or no workspace: 401


async def log_in(
    session: AsyncSession, throttle: LoginThrottle, *, email: str, password: str, ip: str | None
) -> LoginOutcome:
    """A login attempt from the API or the UI, throttled and recorded in the audit log.

    Never raises for a refused login (the audit entries must be committed with the answer). Unknown
    emails are answered, timed and throttled like known ones.
    """
    email = email.strip().lower()
    refusal = await throttle.refusal(email, ip)
    if refusal is not None:
        # Not audited: a locked-out attacker would otherwise write a row per try.
        log.info("login_refused", reason=refusal.reason, retry_after=refusal.retry_after)
        return LoginOutcome(refusal=refusal)
    try:
        user, member = await authenticate(session, email, password)
    except Unauthorized as exc:
        return await _failed(session, throttle, email, ip, exc)
    await throttle.succeeded(email)
    await audit.record(
        session,
        workspace_id=member.workspace_id,
        actor_user_id=user.id,
        action="auth.login",
        target_type="user",
        target_id=str(user.id),
        ip=ip,
    )
    return LoginOutcome(user=user, membership=member)


async def _failed(
    session: AsyncSession, throttle: LoginThrottle, email: str, ip: str | None, error: Unauthorized
) -> LoginOutcome:
    user = await repository.user_by_email(session, email)
    memberships = await repository.memberships_of(session, user.id) if user is not None else []
    workspace_id = memberships[0].workspace_id if memberships else None
    target = {"target_type": "user", "target_id": str(user.id)} if user is not None else {}
    reason = "unknown_email" if user is None else error.code
    if error.code == "no_workspace":
        # The password was right: nothing to count against the email.
        await audit.record(
            session,
            workspace_id=None,
            actor_user_id=None,
            action="auth.login_failed",
            details={"reason": reason},
            ip=ip,
            **target,
        )
        return LoginOutcome(error=error)
    refusal = await throttle.failed(email, ip)
    # The email of an unknown user is not recorded at all (not even hashed): it is often a typo of
    # someone's real address, or another service's password-list entry.
    await audit.record(
        session,
        workspace_id=workspace_id,
        actor_user_id=None,
        action="auth.login_failed",
        details={"reason": "wrong_password" if user is not None else reason},
        ip=ip,
        **target,
    )
    if refusal is not None:
        await audit.record(
            session,
            workspace_id=workspace_id,
            actor_user_id=None,
            action="auth.locked" if refusal.reason == "locked" else "auth.ip_throttled",
            details={"seconds": refusal.retry_after},
            ip=ip,
            **target,
        )
        log.warning("login_locked", reason=refusal.reason, retry_after=refusal.retry_after)
        return LoginOutcome(refusal=refusal)
    return LoginOutcome(error=error)


async def principal_for_api_key(session: AsyncSession, key: str) -> Principal | None:
    """The principal of a bearer API key, if it is valid and its user is still a member."""
    api_key = await repository.api_key_by_digest(session, api_key_digest(key))
    if api_key is None:
        return None
    member = await repository.membership(session, api_key.user_id, api_key.workspace_id)
    if member is None:
        return None
    now = utcnow()
    if api_key.last_used_at is None or now - api_key.last_used_at > KEY_USE_RESOLUTION:
        api_key.last_used_at = now
    return Principal(
        user_id=api_key.user_id,
        workspace_id=api_key.workspace_id,
        role=member.role,
        api_key_id=api_key.id,
        scopes=scopes.parse_scopes(api_key.scopes),
    )


async def issue_api_key(
    session: AsyncSession,
    *,
    user_id: int,
    workspace_id: int,
    name: str = "",
    key_scopes: frozenset[Scope] = frozenset({scopes.DEFAULT_SCOPE}),
    actor_user_id: int | None,
    ip: str | None = None,
) -> tuple[str, ApiKey]:
    """A new API key for the user in the workspace, recorded in the audit log; returns the key once."""
    key = new_api_key()
    api_key = ApiKey(
        workspace_id=workspace_id,
        user_id=user_id,
        name=name,
        prefix=key[:API_KEY_PREFIX_LENGTH],
        key_hash=api_key_digest(key),
        scopes=scopes.stored(key_scopes),
    )
    session.add(api_key)
    await session.flush()
    await audit.record(
        session,
        workspace_id=workspace_id,
        actor_user_id=actor_user_id,
        action="apikey.created",
        target_type="api_key",
        target_id=str(api_key.id),
        details={"user_id": user_id, "scopes": api_key.scopes},
        ip=ip,
    )
    return key, api_key


async def create_api_key(
    session: AsyncSession,
    *,
    email: str,
    workspace_name: str | None = None,
    name: str = "",
    key_scopes: frozenset[Scope] = frozenset({scopes.DEFAULT_SCOPE}),
) -> tuple[str, ApiKey]:
    """Issue an API key for the user in their (named or first) workspace (the operator's CLI)."""
    user = await repository.user_by_email(session, email)
    if user is None:
        raise NotFound(f"no user with email {email.strip().lower()}")
    memberships = await repository.memberships_of(session, user.id)
    if workspace_name is not None:
        workspace = await repository.workspace_by_name(session, workspace_name)
        memberships = [m for m in memberships if workspace is not None and m.workspace_id == workspace.id]
    if not memberships:
        raise NotFound("the user is not a member of that workspace")
    return await issue_api_key(
        session,
        user_id=user.id,
        workspace_id=memberships[0].workspace_id,
        name=name,
        key_scopes=key_scopes,
        actor_user_id=None,
    )


async def create_own_api_key(
    session: AsyncSession,
    principal: Principal,
    *,
    name: str,
    key_scopes: frozenset[Scope],
    ip: str | None,
) -> tuple[str, ApiKey]:
    """A key for the caller in their workspace; a key never makes a wider key than itself."""
    if principal.scopes is not None and not scopes.allows(principal.scopes, scopes.widest(key_scopes)):
        raise Forbidden(
            "an API key cannot create a key with a wider scope than its own", code="insufficient_scope"
        )
    return await issue_api_key(
        session,
        user_id=principal.user_id,
        workspace_id=principal.workspace_id,
        name=name,
        key_scopes=key_scopes,
        actor_user_id=principal.user_id,
        ip=ip,
    )


async def visible_api_keys(session: AsyncSession, principal: Principal) -> list[ApiKey]:
    """The workspace's keys for an owner; the caller's own keys for anyone else. Newest first."""
    return await repository.api_keys_in_workspace(
        session, principal.workspace_id, user_id=None if principal.is_owner else principal.user_id
    )


async def revoke_api_key(
    session: AsyncSession, principal: Principal, key_id: int, *, ip: str | None = None
) -> ApiKey:
    """Revoke a key of the workspace (owners) or one's own key; 404 for any other."""
    api_key = await session.get(ApiKey, key_id)
    if (
        api_key is None
        or api_key.workspace_id != principal.workspace_id
        or (not principal.is_owner and api_key.user_id != principal.user_id)
    ):
        raise NotFound("API key not found")
    await _revoke(session, api_key, actor_user_id=principal.user_id, ip=ip)
    return api_key


async def revoke_api_key_by_prefix(session: AsyncSession, prefix_or_key: str) -> ApiKey:
    """Revoke the key with this prefix (as `apikey list` shows it) or this whole key (the operator's CLI)."""
    value = prefix_or_key.strip()
    if len(value) > API_KEY_PREFIX_LENGTH:
        found = await repository.api_key_by_digest(session, api_key_digest(value))
        matches = [found] if found is not None else []
    else:
        matches = await repository.active_api_keys_with_prefix(session, value)
    if not matches:
        raise NotFound(f"no active API key with prefix {value!r}")
    if len(matches) > 1:
        ids = ", ".join(str(k.id) for k in matches)
        raise Conflict(f"{len(matches)} keys start with {value!r} (ids {ids}); give the whole key")
    await _revoke(session, matches[0], actor_user_id=None, ip=None)
    return matches[0]


async def _revoke(
    session: AsyncSession, api_key: ApiKey, *, actor_user_id: int | None, ip: str | None
) -> None:
    if api_key.revoked_at is not None:
        return
    api_key.revoked_at = utcnow()
    await session.flush()
    await audit.record(
        session,
        workspace_id=api_key.workspace_id,
        actor_user_id=actor_user_id,
        action="apikey.revoked",
        target_type="api_key",
        target_id=str(api_key.id),
        details={"user_id": api_key.user_id},
        ip=ip,
    )


async def switch_workspace(session: AsyncSession, user_id: int, workspace_id: int) -> Principal:
    """The principal for another workspace of the same user; 404 when they are not a member."""
    member = await repository.membership(session, user_id, workspace_id)
    if member is None:
        raise NotFound("workspace not found")
    return Principal(user_id=user_id, workspace_id=workspace_id, role=member.role)
