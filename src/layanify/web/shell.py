"""The UI's frame: who is logged in, login and logout, language and workspace switches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from layanify.accounts import service as accounts
from layanify.accounts import sessions
from layanify.accounts.dependencies import (
    SESSION_COOKIE,
    SessionDep,
    client_ip,
    login_throttle,
    session_principal,
)
from layanify.accounts.models import Membership, User, Workspace
from layanify.accounts.routes import open_session, switch_session
from layanify.accounts.security import csrf_token
from layanify.accounts.service import Principal
from layanify.accounts.throttle import Refusal
from layanify.observability import get_logger
from layanify.web.i18n import LANGUAGE_COOKIE, LANGUAGES, choose_language
from layanify.web.templating import View, render

router = APIRouter(include_in_schema=False)
log = get_logger(__name__)


class LoginRequired(Exception):
    """No valid session: the handler sends the browser to the login page (htmx: a full redirect)."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


@dataclass
class Page:
    """The logged-in user of a page request and how to render for them."""

    principal: Principal
    view: View


def language_of(request: Request) -> str:
    """The UI language of this request."""
    return choose_language(request.cookies.get(LANGUAGE_COOKIE), request.headers.get("accept-language"))


async def current_page(request: Request, session: SessionDep) -> Page:
    """The session's user, or LoginRequired."""
    cookie = request.cookies.get(SESSION_COOKIE)
    principal = await session_principal(request, session)
    if principal is None or cookie is None:
        raise LoginRequired(request.url.path)
    user = await session.get(User, principal.user_id)
    rows = await session.execute(
        select(Workspace.id, Workspace.name)
        .join(Membership, Membership.workspace_id == Workspace.id)
        .where(Membership.user_id == principal.user_id)
        .order_by(Workspace.name)
    )
    workspaces = [{"id": i, "name": n} for i, n in rows.all()]
    current = next((w["name"] for w in workspaces if w["id"] == principal.workspace_id), "")
    view = View(
        language=language_of(request),
        csrf=csrf_token(request.app.state.settings.secret_key.get_secret_value(), cookie),
        user={
            "id": principal.user_id,
            "email": user.email if user else "",
            "name": (user.name if user else "") or (user.email if user else ""),
            "role": principal.role.value,
            "is_owner": principal.is_owner,
            "workspace": current,
            "workspaces": workspaces,
        },
    )
    return Page(principal=principal, view=view)


CurrentPage = Annotated[Page, Depends(current_page)]


def login_redirect(request: Request, exc: Exception) -> Response:
    """Where LoginRequired goes: the login page, remembering where the user was going."""
    assert isinstance(exc, LoginRequired)
    target = "/login?next=" + quote(exc.next_path)
    if request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


def go(request: Request, target: str) -> Response:
    """Send the browser to `target`: a 303 for a plain form, HX-Redirect for htmx (which would otherwise
    follow the redirect inside the XHR and swap the new page into the old one)."""
    if request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


def _safe_next(value: str | None) -> str:
    """Only a path of this site (no open redirect)."""
    if value and value.startswith("/") and not value.startswith("//"):
        return value
    return "/inbox"


@router.get("/")
async def home() -> Response:
    """The inbox is the home page."""
    return RedirectResponse("/inbox", status_code=303)


@router.get("/login")
async def login_page(request: Request, next: str | None = None) -> Response:
    """The login form."""
    view = View(language=language_of(request))
    return render(request, view, "login.html", next=_safe_next(next), error=None, email="")


@router.post("/login")
async def login(
    request: Request,
    session: SessionDep,
    email: Annotated[str, Form()],
    password: Annotated[str, Form()],
    next: Annotated[str, Form()] = "/inbox",
) -> Response:
    """Check the password (throttled as the API's login); on success the session cookie is set and the
    browser goes on. A locked email gets the form again saying when to try again."""
    view = View(language=language_of(request))
    outcome = await accounts.log_in(
        session, login_throttle(request), email=email, password=password, ip=client_ip(request)
    )
    if outcome.user is None or outcome.membership is None:
        log.info("ui_login_failed")
        headers: dict[str, str] = {}
        if outcome.refusal is not None:
            message = _refusal_message(view, outcome.refusal)
            status_code, headers = 429, {"Retry-After": str(outcome.refusal.retry_after)}
        else:
            message, status_code = view.gettext("Email or password is incorrect."), 401
        page = render(
            request,
            view,
            "login.html",
            status_code=status_code,
            next=_safe_next(next),
            error=message,
            email=email,
        )
        page.headers.update(headers)
        return page
    user, member = outcome.user, outcome.membership
    response = RedirectResponse(_safe_next(next), status_code=303)
    await open_session(request, response, session, user.id, member.workspace_id)
    log.info("ui_login", user_id=user.id, workspace_id=member.workspace_id)
    return response


def _refusal_message(view: View, refusal: Refusal) -> str:
    """The login page's words for a lockout: when to try again, in the user's language and zone."""
    wait, at = view.left(refusal.until), view.clock(refusal.until)
    if refusal.reason == "locked":
        return view.gettext(
            "Too many failed logins for this email. Try again in {wait} (at {time}).", wait=wait, time=at
        )
    return view.gettext(
        "Too many failed logins from your network. Try again in {wait} (at {time}).", wait=wait, time=at
    )


@router.post("/logout")
async def logout(request: Request, session: SessionDep) -> Response:
    """End the session and forget its cookie."""
    principal = await session_principal(request, session)
    if principal is not None:
        await sessions.log_out(session, principal, everywhere=False, ip=client_ip(request))
    response = go(request, "/login")
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.post("/language")
async def set_language(request: Request, language: Annotated[str, Form()]) -> Response:
    """Remember the user's language for a year."""
    current = request.headers.get("hx-current-url") or request.headers.get("referer") or ""
    back = _safe_next(current.split(request.url.netloc, 1)[-1] or None)
    response = go(request, back)
    if language in LANGUAGES:
        response.set_cookie(LANGUAGE_COOKIE, language, max_age=365 * 24 * 3600, samesite="lax", httponly=True)
    return response


@router.post("/workspace")
async def switch_workspace(
    request: Request, page: CurrentPage, session: SessionDep, workspace_id: Annotated[int, Form()]
) -> Response:
    """Act in another of the user's workspaces."""
    response = go(request, "/inbox")
    await switch_session(request, response, session, page.principal, workspace_id)
    return response
