"""Who is calling: a bearer API key (limited by its scopes) or the session cookie."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from layanify.accounts import scopes, service, sessions
from layanify.accounts.security import SessionSigner
from layanify.accounts.service import Principal
from layanify.accounts.throttle import LoginThrottle
from layanify.config import Settings
from layanify.db.dependencies import get_session
from layanify.errors import Forbidden, Unauthorized

SESSION_COOKIE = "layanify_session"

# scope="function": the unit of work commits when the route returns, before the answer is sent. FastAPI's
# default ("request") ends a yield dependency only after the response has gone out, so a client was told
# "done" (a 201, a 303 to the page showing the change, a login cookie) before the commit, and a commit
# that failed then was answered as done (decision 44).
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


def client_ip(request: Request) -> str | None:
    """The caller's address (the real client behind trusted proxies: see layanify.proxies)."""
    return request.client.host if request.client else None


def login_throttle(request: Request) -> LoginThrottle:
    """The app's login throttle, made on first use (its storage is this process's or Redis)."""
    throttle: LoginThrottle | None = getattr(request.app.state, "login_throttle", None)
    if throttle is None:
        throttle = request.app.state.login_throttle = LoginThrottle.from_settings(request.app.state.settings)
    return throttle


async def session_principal(request: Request, session: AsyncSession) -> Principal | None:
    """The principal of the request's session cookie, when it names a live session."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    signer: SessionSigner = request.app.state.session_signer
    contents = signer.read(cookie)
    if contents is None:
        return None
    settings: Settings = request.app.state.settings
    return await sessions.principal_for_cookie(
        session,
        contents,
        idle_seconds=settings.session_idle_seconds,
        max_age_seconds=settings.session_max_age_seconds,
    )


def check_scope(request: Request, principal: Principal) -> None:
    """An API key may do only what its scopes allow: 403 `insufficient_scope` naming the one needed."""
    if principal.scopes is None:
        return
    route = request.scope.get("route")
    needed = scopes.required_scope(request.method, getattr(route, "path", None), request.path_params)
    if not scopes.allows(principal.scopes, needed):
        raise Forbidden(
            f"this API key's scope ({scopes.widest(principal.scopes).value}) does not allow this request:"
            f" it needs the `{needed.value}` scope",
            code="insufficient_scope",
            details=[{"required_scope": needed.value}],
        )


async def get_principal(request: Request, session: SessionDep) -> Principal:
    """The caller, from `Authorization: Bearer <api key>` or the session cookie; 401 otherwise."""
    authorization = request.headers.get("authorization")
    if authorization:
        scheme, _, key = authorization.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise Unauthorized("use `Authorization: Bearer <api key>`")
        principal = await service.principal_for_api_key(session, key.strip())
        if principal is None:
            raise Unauthorized("the API key is invalid or revoked", code="invalid_api_key")
        check_scope(request, principal)
        return principal
    if request.cookies.get(SESSION_COOKIE):
        principal = await session_principal(request, session)
        if principal is not None:
            return principal
        raise Unauthorized("your session has expired; log in again", code="session_expired")
    raise Unauthorized("authentication required: an API key (bearer) or a login session")


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


async def require_owner(principal: CurrentPrincipal) -> Principal:
    """Only the workspace's owners may continue."""
    if not principal.is_owner:
        raise Forbidden("only a workspace owner can do this")
    return principal


OwnerPrincipal = Annotated[Principal, Depends(require_owner)]


def require_session(principal: CurrentPrincipal) -> Principal:
    """Only a login session may continue (not an API key): switching workspaces, changing the password."""
    if principal.session_id is None:
        raise Forbidden("this needs a login session, not an API key", code="session_required")
    return principal


SessionPrincipal = Annotated[Principal, Depends(require_session)]
