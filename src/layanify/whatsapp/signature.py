"""Meta's webhook verification handshake and X-Hub-Signature-256 checks."""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_PREFIX = "sha256="


def sign(app_secret: str, body: bytes) -> str:
    """The X-Hub-Signature-256 header value Meta sends for `body` (used by the simulator and tests)."""
    digest = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return SIGNATURE_PREFIX + digest


def signature_is_valid(app_secret: str, body: bytes, header: str | None) -> bool:
    """True when `header` is Meta's HMAC-SHA256 of the raw `body`; compared in constant time."""
    if not header or not header.startswith(SIGNATURE_PREFIX):
        return False
    # Bytes, not str: compare_digest refuses non-ASCII str, and a header can carry any byte.
    return hmac.compare_digest(
        sign(app_secret, body).encode(), header.strip().encode("utf-8", "surrogateescape")
    )


def challenge_response(
    mode: str | None, verify_token: str | None, challenge: str | None, expected_token: str | None
) -> str | None:
    """The bare challenge to echo when Meta's subscribe handshake carries our verify token, else None."""
    if mode != "subscribe" or not expected_token or verify_token is None or challenge is None:
        return None
    if not hmac.compare_digest(verify_token.encode(), expected_token.encode()):
        return None
    return challenge
