"""Browser-facing protections: CSRF tokens for cookie sessions, and security headers on every page.

CSRF: a request that changes something and is authenticated by the session cookie (not by a bearer API
key) must carry `X-CSRF-Token` — an HMAC of the session cookie under the secret key, so it changes
with every login and needs no server-side state. htmx sends it on every request (the page puts it in
`hx-headers`); the API's cookie callers read it from `GET /api/v1/me`. Logging in is exempt (there is
no session yet); SameSite=Lax on the cookie covers that form.

Headers: a Content-Security-Policy without inline script or style on every HTML page (the UI loads
its scripts and styles from /static only), framing refused, no MIME sniffing, same-origin referrers,
and HSTS in production.
"""

from __future__ import annotations

import hmac

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from layanify.accounts.security import csrf_token

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "x-csrf-token"
# Paths that take a POST without a session: the login forms, and Meta's signed webhook.
CSRF_EXEMPT = frozenset({"/login", "/api/v1/auth/login", "/api/webhooks/whatsapp"})
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)
# FastAPI's interactive docs load their scripts from a CDN; they are not part of the UI.
NO_CSP_PREFIXES = ("/docs", "/redoc")


class BrowserSecurity:
    """ASGI middleware: refuses cross-site requests riding on the session cookie, adds security headers."""

    def __init__(self, app: ASGIApp, *, secret_key: str, session_cookie: str, hsts: bool) -> None:
        self._app = app
        self._secret = secret_key
        self._cookie = session_cookie
        self._hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if scope["method"] not in SAFE_METHODS and scope["path"] not in CSRF_EXEMPT:
            problem = self._csrf_problem(headers)
            if problem is not None:
                response = JSONResponse(
                    {"error": {"code": "csrf_failed", "message": problem}}, status_code=403
                )
                await response(scope, receive, send)
                return
        path: str = scope["path"]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                out.setdefault("X-Content-Type-Options", "nosniff")
                out.setdefault("Referrer-Policy", "same-origin")
                out.setdefault("X-Frame-Options", "DENY")
                if self._hsts:
                    out.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
                if out.get("content-type", "").startswith("text/html") and not path.startswith(
                    NO_CSP_PREFIXES
                ):
                    out.setdefault("Content-Security-Policy", CSP)
            await send(message)

        await self._app(scope, receive, send_with_headers)

    def _csrf_problem(self, headers: Headers) -> str | None:
        """Why this state-changing request is refused, or None when it may go on."""
        if headers.get("authorization"):
            return None  # an API key is not sent by browsers on their own: no CSRF
        cookie = _cookie(headers.get("cookie", ""), self._cookie)
        if cookie is None:
            return None  # not authenticated by the cookie: the route's own auth answers
        given = headers.get(CSRF_HEADER, "")
        if given and hmac.compare_digest(given, csrf_token(self._secret, cookie)):
            return None
        return "this request did not come from a Layanify page (missing or wrong CSRF token); reload the page"


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name and value:
            return value
    return None
