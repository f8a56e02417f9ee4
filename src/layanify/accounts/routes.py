"""Session login/logout for the UI, and who-am-I for any caller."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from sqlalchemy import select

from layanify.accounts import repository, service
from layanify.accounts.dependencies import SESSION_COOKIE, CurrentPrincipal, SessionDep
from layanify.accounts.models import Membership, User, Workspace
from layanify.accounts.schemas import LoginRequest, MeRead, SwitchWorkspaceRequest, WorkspaceRead
from layanify.accounts.security import SessionSigner, csrf_token
from layanify.config import Settings
from layanify.errors import NotFound
from layanify.observability import get_logger

router = APIRouter(prefix="/api/v1", tags=["accounts"])
log = get_logger(__name__)


def set_session_cookie(request: Request, response: Response, user_id: int, workspace_id: int) -> str:
    """Set the session cookie; returns the new session's CSRF token."""
    settings: Settings = request.app.state.settings
    signer: SessionSigner = request.app.state.session_signer
    value = signer.dumps(user_id, workspace_id)
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=settings.session_max_age_seconds,
        httponly=True,
        secure=settings.env == "production",
        samesite="lax",
    )
    return csrf_token(settings.secret_key.get_secret_value(), value)


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


@router.post("/auth/login")
async def login(body: LoginRequest, request: Request, response: Response, session: SessionDep) -> MeRead:
    """Log in with email and password; sets an HttpOnly session cookie."""
    user, member = await service.authenticate(session, body.email, body.password)
    token = set_session_cookie(request, response, user.id, member.workspace_id)
    log.info("login", user_id=user.id, workspace_id=member.workspace_id)
    return (await _me(session, user.id, member.workspace_id)).model_copy(update={"csrf_token": token})


@router.post("/auth/logout", status_code=204)
async def logout(response: Response) -> Response:
    """Forget the session cookie."""
    response.delete_cookie(SESSION_COOKIE)
    response.status_code = 204
    return response


@router.post("/auth/workspace")
async def switch_workspace(
    body: SwitchWorkspaceRequest,
    principal: CurrentPrincipal,
    request: Request,
    response: Response,
    session: SessionDep,
) -> MeRead:
    """Act in another workspace the user belongs to (404 for one they do not)."""
    new = await service.switch_workspace(session, principal.user_id, body.workspace_id)
    token = set_session_cookie(request, response, new.user_id, new.workspace_id)
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
