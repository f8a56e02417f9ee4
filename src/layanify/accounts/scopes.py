"""What scope of API key each request needs: one table for the whole API.

`read` allows reading (GET); `send` adds what an integration that answers customers does (queue
messages, upload media to send, open a conversation, show typing, mark read); `admin` allows
everything the key's user may do. Each scope includes the ones before it. Login sessions are not
scoped: a person in the UI can do what their role allows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from layanify.accounts.models import Scope
from layanify.errors import Unprocessable

RANK: dict[Scope, int] = {Scope.READ: 0, Scope.SEND: 1, Scope.ADMIN: 2}
DEFAULT_SCOPE = Scope.ADMIN  # keys made without a scope, and keys made before scopes existed
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Changes a `send` key may make: (method, route path as declared).
SEND_ROUTES: frozenset[tuple[str, str]] = frozenset(
    {
        ("POST", "/api/v1/messages"),
        ("POST", "/api/v1/conversations/{conversation_id}/messages"),
        ("POST", "/api/v1/conversations/{conversation_id}/read"),
        ("POST", "/api/v1/conversations/{conversation_id}/typing"),
        ("POST", "/api/v1/media"),
    }
)
TRPC_ROUTE = "/api/trpc/{procedure}"
# The seed's tRPC procedures that only read (queries may also be sent as GET by tRPC clients).
TRPC_READS = frozenset({"whatsapp.getNumbers"})


def parse_scopes(value: str | Iterable[str]) -> frozenset[Scope]:
    """Scopes from `"read send"`, `"read,send"` or a list; 422 naming an unknown one."""
    names = value.replace(",", " ").split() if isinstance(value, str) else list(value)
    scopes: set[Scope] = set()
    for name in names:
        try:
            scopes.add(Scope(name.strip().lower()))
        except ValueError as exc:
            allowed = ", ".join(s.value for s in Scope)
            raise Unprocessable(f"unknown scope {name!r}: use {allowed}", code="invalid_scope") from exc
    return frozenset(scopes) or frozenset({DEFAULT_SCOPE})


def stored(scopes: Iterable[Scope]) -> str:
    """The column value of a set of scopes, narrowest first."""
    return " ".join(s.value for s in sorted(set(scopes), key=RANK.__getitem__))


def widest(scopes: Iterable[Scope]) -> Scope:
    """The widest of the scopes (what the key can do)."""
    return max(scopes, key=RANK.__getitem__, default=Scope.READ)


def allows(granted: Iterable[Scope], needed: Scope) -> bool:
    """True when one of the granted scopes is at least the needed one."""
    return RANK[widest(granted)] >= RANK[needed]


def required_scope(method: str, route_path: str | None, path_params: Mapping[str, Any]) -> Scope:
    """The scope a request needs, from its method and the path of the route it matched."""
    if route_path == TRPC_ROUTE:
        return Scope.READ if path_params.get("procedure") in TRPC_READS else Scope.ADMIN
    if method in SAFE_METHODS:
        return Scope.READ
    if (method, route_path) in SEND_ROUTES:
        return Scope.SEND
    return Scope.ADMIN
