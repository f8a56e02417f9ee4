"""Plugs the web UI into the app: routes, static files, browser protections, HTML error pages."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from layanify.accounts.dependencies import SESSION_COOKIE
from layanify.config import Settings
from layanify.errors import LayanifyError, error_body
from layanify.web import inbox, pages, shell
from layanify.web.security import BrowserSecurity
from layanify.web.shell import LoginRequired, language_of, login_redirect
from layanify.web.templating import View, render

STATIC_DIR = Path(__file__).parent / "static"


async def _error(request: Request, exc: Exception) -> Response:
    """Product errors: JSON for the API, a toast for htmx, a page for a browser navigation."""
    assert isinstance(exc, LayanifyError)
    if request.url.path.startswith("/api/"):
        from fastapi.responses import JSONResponse

        extra = {"details": exc.details} if exc.details is not None else {}
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        return JSONResponse(
            error_body(exc.code, exc.message, **extra), status_code=exc.status_code, headers=headers
        )
    view = View(language=language_of(request))
    if request.headers.get("hx-request"):
        response = render(request, view, "partials/toast.html", message=exc.message)
        response.headers["HX-Retarget"] = "#toasts"
        response.headers["HX-Reswap"] = "beforeend"
        return response
    return render(request, view, "error.html", status_code=exc.status_code, message=exc.message)


def install_web(app: FastAPI, settings: Settings) -> None:
    """Add the UI to the app."""
    for router in (shell.router, inbox.router, pages.router):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_exception_handler(LoginRequired, login_redirect)
    app.add_exception_handler(LayanifyError, _error)
    app.add_middleware(
        BrowserSecurity,
        secret_key=settings.secret_key.get_secret_value(),
        session_cookie=SESSION_COOKIE,
        hsts=settings.env == "production",
    )
