"""Plugs the web UI into the app: routes, static files, browser protections, HTML error pages."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from layanify import trpc
from layanify.accounts.dependencies import SESSION_COOKIE
from layanify.config import Settings
from layanify.errors import (
    InternalError,
    LayanifyError,
    NoRoute,
    Unavailable,
    error_extra,
    error_headers,
    json_error,
)
from layanify.web import inbox, pages, shell
from layanify.web.security import BrowserSecurity
from layanify.web.shell import LoginRequired, language_of, login_redirect
from layanify.web.templating import View, render

STATIC_DIR = Path(__file__).parent / "static"
TRPC_PREFIX = "/api/trpc/"


def _message(view: View, exc: LayanifyError) -> str:
    """What the page or toast says: our own texts for outages and bugs in the user's language."""
    if isinstance(exc, Unavailable):
        return view.gettext("Layanify is busy or cannot reach its database right now. Try again in a moment.")
    if isinstance(exc, NoRoute) and exc.status_code == 404:
        return view.gettext("This page does not exist. Check the address, or go back to the inbox.")
    if isinstance(exc, InternalError):
        text = view.gettext("Something went wrong on our side. It has been logged; reference {reference}.")
        return text.format(reference=exc.reference)
    return exc.message


async def render_error(request: Request, exc: LayanifyError) -> Response:
    """Every error's answer: tRPC's envelope or JSON for the API, a toast for htmx, a page otherwise."""
    path = request.url.path
    if path.startswith(TRPC_PREFIX):
        extra = {"reason": exc.code, **error_extra(exc)}
        answer = trpc.error(path.removeprefix(TRPC_PREFIX), exc.status_code, exc.message, **extra)
        answer.headers.update(error_headers(exc) or {})
        return answer
    if path.startswith("/api/"):
        return await json_error(request, exc)
    view = View(language=language_of(request))
    message = _message(view, exc)
    if request.headers.get("hx-request"):
        response = render(request, view, "partials/toast.html", message=message)
        response.headers["HX-Retarget"] = "#toasts"
        response.headers["HX-Reswap"] = "beforeend"
    else:
        response = render(request, view, "error.html", status_code=exc.status_code, message=message)
    response.headers.update(error_headers(exc) or {})
    return response


def install_web(app: FastAPI, settings: Settings) -> None:
    """Add the UI to the app."""
    for router in (shell.router, inbox.router, pages.router):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_exception_handler(LoginRequired, login_redirect)
    app.add_middleware(
        BrowserSecurity,
        secret_key=settings.secret_key.get_secret_value(),
        session_cookie=SESSION_COOKIE,
        hsts=settings.env == "production",
    )
