"""Login (throttled), logout, password change and workspace switch; who-am-I; the caller's API keys."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from layanify.accounts import repository, scopes, service, sessions
from layanify.accounts.dependencies import (
    SESSION_COOKIE,
    CurrentPrincipal,
    SessionDep,
    SessionPrincipal,
    client_ip,
    login_throttle,
    require_session,
    session_principal,
)
from layanify.accounts.models import Membership, User, Workspace
from layanify.accounts.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyRead,
    LoginRequest,
    MeRead,
    PasswordChange,
    SwitchWorkspaceRequest,
    WorkspaceRead,
)
from layanify.accounts.security import SessionSigner, csrf_token
from layanify.accounts.throttle import Refusal
from layanify.audit import service as audit
from layanify.config import Settings
from layanify.errors import NotFound, Unauthorized, error_body
from layanify.observability import get_logger
from layanify.pagination import ObjectId

router = APIRouter(prefix="/api/v1", tags=["accounts"])
log = get_logger(__name__)

_ERROR_SHAPE: dict[str, Any] = {"description": "an error: `{error: {code, message}}`"}


def set_session_cookie(
    request: Request, response: Response, user_id: int, workspace_id: int, key: str
) -> str:
    """Set the session cookie for a server-side session; returns the session's CSRF token."""
    settings: Settings = request.app.state.settings
    signer: SessionSigner = request.app.state.session_signer
    value = signer.dumps(user_id, workspace_id, key)
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=settings.session_max_age_seconds,
        httponly=True,
        secure=settings.env == "production",
        samesite="lax",
    )
    return csrf_token(settings.secret_key.get_secret_value(), value)


async def open_session(
    request: Request, response: Response, session: AsyncSession, user_id: int, workspace_id: int
) -> str:
    """Start a server-side session after a login and set its cookie; returns its CSRF token."""
    settings: Settings = request.app.state.settings
    await sessions.purge_expired(
        session, idle_seconds=settings.session_idle_seconds, max_age_seconds=settings.session_max_age_seconds
    )
    key, _ = await sessions.start(session, user_id=user_id, workspace_id=workspace_id)
    return set_session_cookie(request, response, user_id, workspace_id, key)


async def switch_session(
    request: Request,
    response: Response,
    session: AsyncSession,
    principal: service.Principal,
    workspace_id: int,
) -> tuple[service.Principal, str]:
    """Move the caller's session to another of their workspaces (404 for one they are not in);
    returns the new principal and the new cookie's CSRF token."""
    new = await service.switch_workspace(session, principal.user_id, workspace_id)
    assert principal.session_id is not None
    key = await sessions.switch_workspace(session, principal.session_id, new.workspace_id)
    await audit.record(
        session,
        workspace_id=new.workspace_id,
        actor_user_id=principal.user_id,
        action="auth.workspace_switched",
        details={"from_workspace_id": principal.workspace_id},
        ip=client_ip(request),
    )
    return new, set_session_cookie(request, response, new.user_id, new.workspace_id, key)


def refusal_response(refusal: Refusal) -> JSONResponse:
    """429 for a throttled login: the message says when to try again, and so does `Retry-After`."""
    return JSONResponse(
        error_body(
            "login_locked" if refusal.reason == "locked" else "login_throttled",
            refusal.message,
            retry_after=refusal.retry_after,
        ),
        status_code=status.HTTP_429_TOO_MANY_REQUESTS,
        headers={"Retry-After": str(refusal.retry_after)},
    )


async def _me(session: SessionDep, user_id: int, workspace_id: int) -> MeRead:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("user not found")
    rows = await session.execute(
        select(Membership, Workspace)
        .join(Workspace, Workspace.id == Membership.workspace_id)
        .where(Membership.user_id == user_id)
        .order_by(Membership.id)
    )
    workspaces = [WorkspaceRead(id=w.id, name=w.name, role=m.role.value) for m, w in rows.all()]
    role = next((w.role for w in workspaces if w.id == workspace_id), "")
    return MeRead(
        user_id=user.id,
        email=user.email,
        name=user.name,
        workspace_id=workspace_id,
        role=role,
        workspaces=workspaces,
    )


@router.post(
    "/auth/login",
    response_model=MeRead,
    responses={401: _ERROR_SHAPE, 429: {"description": "too many failed logins: see `Retry-After`"}},
)
async def login(
    body: LoginRequest, request: Request, response: Response, session: SessionDep
) -> MeRead | JSONResponse:
    """Log in with email and password; sets an HttpOnly session cookie.

    After `LAYANIFY_LOGIN_MAX_FAILURES` failures the email is locked for a while: 429 with
    `Retry-After`, even for the right password.
    """
    outcome = await service.log_in(
        session, login_throttle(request), email=body.email, password=body.password, ip=client_ip(request)
    )
    if outcome.refusal is not None:
        return refusal_response(outcome.refusal)
    if outcome.user is None or outcome.membership is None:
        error = outcome.error or Unauthorized("email or password is incorrect", code="invalid_credentials")
        return JSONResponse(
            error_body(error.code, error.message), status_code=401, headers={"WWW-Authenticate": "Bearer"}
        )
    user, member = outcome.user, outcome.membership
    token = await open_session(request, response, session, user.id, member.workspace_id)
    log.info("login", user_id=user.id, workspace_id=member.workspace_id)
    return (await _me(session, user.id, member.workspace_id)).model_copy(update={"csrf_token": token})


@router.post("/auth/logout", status_code=204)
async def logout(request: Request, session: SessionDep, everywhere: bool = False) -> Response:
    """End this login session (`?everywhere=true`: every session of the user) and forget the cookie."""
    principal = await session_principal(request, session)
    if principal is not None:
        await sessions.log_out(session, principal, everywhere=everywhere, ip=client_ip(request))
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.post("/auth/password", status_code=204)
async def change_password(
    body: PasswordChange, request: Request, principal: SessionPrincipal, session: SessionDep
) -> Response:
    """Change the password (a login session only). The user's other sessions end; this one goes on."""
    settings: Settings = request.app.state.settings
    await service.change_password(
        session,
        principal,
        current_password=body.current_password,
        new_password=body.new_password,
        min_length=settings.password_min_length,
        ip=client_ip(request),
    )
    await sessions.end_all(session, principal.user_id, keep=principal.session_id)
    return Response(status_code=204)


@router.post("/auth/workspace")
async def switch_workspace(
    body: SwitchWorkspaceRequest,
    principal: CurrentPrincipal,
    request: Request,
    response: Response,
    session: SessionDep,
) -> MeRead:
    """Act in another workspace the user belongs to (404 for one they do not); a login session only."""
    require_session(principal)  # here, not as a dependency: an invalid body is answered 422 first
    new, token = await switch_session(request, response, session, principal, body.workspace_id)
    return (await _me(session, new.user_id, new.workspace_id)).model_copy(update={"csrf_token": token})


@router.get("/me")
async def me(request: Request, principal: CurrentPrincipal, session: SessionDep) -> MeRead:
    """The caller and their workspaces (with a login session, also its CSRF token)."""
    if await repository.membership(session, principal.user_id, principal.workspace_id) is None:
        raise NotFound("workspace not found")
    found = await _me(session, principal.user_id, principal.workspace_id)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie and not request.headers.get("authorization"):
        secret = request.app.state.settings.secret_key.get_secret_value()
        found = found.model_copy(update={"csrf_token": csrf_token(secret, cookie)})
    return found


@router.get("/api-keys", tags=["api keys"])
async def list_api_keys(principal: CurrentPrincipal, session: SessionDep) -> list[ApiKeyRead]:
    """The workspace's API keys (owners), or the caller's own; revoked ones too. Never the key itself."""
    return [ApiKeyRead.model_validate(k) for k in await service.visible_api_keys(session, principal)]


@router.post("/api-keys", status_code=status.HTTP_201_CREATED, tags=["api keys"])
async def create_api_key(
    body: ApiKeyCreate, request: Request, principal: CurrentPrincipal, session: SessionDep
) -> ApiKeyCreated:
    """A new API key acting as the caller in this workspace; `key` is shown in this answer only."""
    key, api_key = await service.create_own_api_key(
        session,
        principal,
        name=body.name,
        key_scopes=scopes.parse_scopes([s.value for s in body.scopes]),
        ip=client_ip(request),
    )
    return ApiKeyCreated.model_validate({**ApiKeyRead.model_validate(api_key).model_dump(), "key": key})


@router.delete("/api-keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["api keys"])
async def revoke_api_key(
    key_id: ObjectId, request: Request, principal: CurrentPrincipal, session: SessionDep
) -> Response:
    """Revoke a key (owners: any of the workspace's; others: their own). It answers 401 from now on."""
    await service.revoke_api_key(session, principal, key_id, ip=client_ip(request))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
