"""Who is really calling: the client address behind trusted reverse proxies, and IP allow-lists.

A reverse proxy (nginx, a load balancer) connects to us itself and names the real client in
`X-Forwarded-For` (`client, proxy1, proxy2`, each hop appending the address it received from) and the
scheme in `X-Forwarded-Proto`. Anyone can send those headers, so they are believed only from the
networks in `LAYANIFY_TRUSTED_PROXIES`, and the client is the right-most address that is not one of
ours: everything left of it was written by the client and may be forged.

`apply_forwarded` applies this to every request once, at the edge (`LayanifyApp.__call__`, before the
webhook's raw path and every middleware), so `scope["client"]`, `request.client` and the URL scheme are
the real ones everywhere; uvicorn's own proxy-header handling is turned off (`layanify serve`) so there
is one rule. `client_ip` gives the same answer on a scope that was already rewritten (it is
idempotent), so code may call it with the request and the trusted networks either way.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import Any

from starlette.types import Scope

Network = IPv4Network | IPv6Network
Address = IPv4Address | IPv6Address


def parse_networks(value: str | Iterable[str]) -> list[Network]:
    """Comma-separated CIDRs or addresses (`10.0.0.0/8, 2001:db8::/32, 203.0.113.7`) → networks.

    Host bits are allowed (`10.1.2.3/8` is `10.0.0.0/8`); a bad entry raises ValueError naming it.
    """
    items = value.split(",") if isinstance(value, str) else value
    networks: list[Network] = []
    for item in items:
        text = item.strip()
        if not text:
            continue
        try:
            networks.append(ip_network(text, strict=False))
        except ValueError:
            raise ValueError(f"not an IP address or CIDR network: {text!r}") from None
    return networks


def parse_address(value: str) -> Address | None:
    """An address as written in a header or by the server (`[::1]` and IPv4-mapped IPv6 included)."""
    text = value.strip()
    if text.startswith("[") and "]" in text:  # "[2001:db8::1]:443" as some proxies write it
        text = text[1 : text.index("]")]
    try:
        address = ip_address(text)
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_allowed(address: str | None, networks: Sequence[Network]) -> bool:
    """Whether the address is in one of the networks; an unknown or unreadable address never is."""
    parsed = parse_address(address) if address else None
    return parsed is not None and any(parsed in network for network in networks)


def _header(scope: Scope, name: bytes) -> str | None:
    values = [value.decode("latin-1") for key, value in scope.get("headers", ()) if key == name]
    return ",".join(values) if values else None


def _peer(scope: Scope) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


def client_ip(scope_or_request: Any, trusted: Sequence[Network]) -> str | None:
    """The calling client's address: the peer, or behind trusted proxies the right-most untrusted hop.

    Takes an ASGI scope or a Starlette/FastAPI request. Returns None when the server gave no peer, or
    when the hop it lands on is not an IP address (a forged or garbled header: treat as unknown).
    """
    scope: Scope = getattr(scope_or_request, "scope", scope_or_request)
    peer = _peer(scope)
    if not trusted or peer is None:
        return peer
    current = parse_address(peer)
    if current is None or not any(current in network for network in trusted):
        return peer
    forwarded = _header(scope, b"x-forwarded-for")
    if forwarded is None:
        return str(current)
    for hop in reversed([h for h in (part.strip() for part in forwarded.split(",")) if h]):
        address = parse_address(hop)
        if address is None:
            return None
        current = address
        if not any(address in network for network in trusted):
            return str(address)
    return str(current)  # every hop is one of ours: the left-most is the best we know


def forwarded_scheme(scope: Scope, trusted: Sequence[Network]) -> str | None:
    """`X-Forwarded-Proto` (http or https) when the peer is a trusted proxy, else None."""
    peer = parse_address(_peer(scope) or "")
    if not trusted or peer is None or not any(peer in network for network in trusted):
        return None
    proto = _header(scope, b"x-forwarded-proto")
    if proto is None:
        return None
    # Each proxy may append its own: the last one is the one that reached us.
    scheme = proto.split(",")[-1].strip().lower()
    return scheme if scheme in ("http", "https") else None


def apply_forwarded(scope: Scope, trusted: Sequence[Network]) -> None:
    """Rewrite the scope's client and scheme from a trusted proxy's headers (nothing otherwise)."""
    if not trusted or scope["type"] not in ("http", "websocket"):
        return
    scheme = forwarded_scheme(scope, trusted)
    if scheme is None and not any(key == b"x-forwarded-for" for key, _ in scope.get("headers", ())):
        return
    address = client_ip(scope, trusted)
    if address is not None and address != _peer(scope):
        scope["client"] = (address, 0)
    if scheme is not None:
        scope["scheme"] = scheme if scope["type"] == "http" else ("wss" if scheme == "https" else "ws")
