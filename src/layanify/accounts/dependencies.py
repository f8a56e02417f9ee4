"""Who is calling: a bearer API key or the session cookie."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from layanify.accounts import service
from layanify.accounts.security import SessionSigner
from layanify.accounts.service import Principal
from layanify.db.dependencies import get_session
from layanify.errors import Forbidden, Unauthorized

SESSION_COOKIE = "layanify_session"

SessionDep = Annotated[AsyncSession, Depends(get_session)]


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
        return principal
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        signer: SessionSigner = request.app.state.session_signer
        ids = signer.loads(cookie)
        if ids is not None:
            principal = await service.principal_for_session(session, *ids)
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
