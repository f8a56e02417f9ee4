"""Password hashing (argon2), API key digests and signed session cookies."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, URLSafeTimedSerializer

API_KEY_PREFIX = "lay_"
# What identifies a key in lists and `apikey revoke --prefix` (the key itself is never shown again).
API_KEY_PREFIX_LENGTH = len(API_KEY_PREFIX) + 8
_hasher = PasswordHasher()
_dummy_hash: str | None = None


def hash_password(password: str) -> str:
    """An argon2id hash of the password."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when the password matches; never raises for a wrong password or a corrupt hash."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError, ValueError):  # ValueError: a hash that is not even ASCII
        return False


def verify_password_of_nobody(password: str) -> None:
    """Spend the time a real check takes, for an unknown email: the answer's timing does not reveal it."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = hash_password(secrets.token_urlsafe(16))
    verify_password(_dummy_hash, password)


def password_needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with weaker parameters than today's."""
    return _hasher.check_needs_rehash(password_hash)


def new_api_key() -> str:
    """A new random API key (shown once to its creator)."""
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def api_key_digest(key: str) -> str:
    """SHA-256 of the key. Keys are 256-bit random, so a fast digest is safe (no guessing to slow down)."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_session_key() -> str:
    """A new random session key: the cookie carries it, the server stores its digest."""
    return secrets.token_urlsafe(32)


def session_key_digest(key: str) -> str:
    """SHA-256 of a session key (256-bit random, like API keys: a fast digest is safe)."""
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class SessionCookie:
    """What a valid session cookie says: the user, the workspace and the server-side session's key."""

    user_id: int
    workspace_id: int
    key: str  # empty in cookies made before sessions were kept on the server: they name no session


class SessionSigner:
    """Signs and reads the session cookie: `{user_id, workspace_id, session key}` with a timestamp."""

    def __init__(self, secret_key: str, max_age_seconds: int) -> None:
        self._serializer = URLSafeTimedSerializer(secret_key, salt="layanify.session")
        self._max_age = max_age_seconds

    def dumps(self, user_id: int, workspace_id: int, key: str = "") -> str:
        """The cookie value for a logged-in user in a workspace."""
        data: dict[str, int | str] = {"u": user_id, "w": workspace_id}
        if key:
            data["k"] = key
        return self._serializer.dumps(data)

    def read(self, value: str) -> SessionCookie | None:
        """The contents of a valid, unexpired cookie, else None."""
        try:
            data = self._serializer.loads(value, max_age=self._max_age)
        except BadSignature:
            return None
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("u"), int)
            or not isinstance(data.get("w"), int)
            or not isinstance(data.get("k", ""), str)
        ):
            return None
        return SessionCookie(user_id=data["u"], workspace_id=data["w"], key=data.get("k", ""))

    def loads(self, value: str) -> tuple[int, int] | None:
        """(user_id, workspace_id) from a valid, unexpired cookie, else None."""
        cookie = self.read(value)
        return None if cookie is None else (cookie.user_id, cookie.workspace_id)


def csrf_token(secret_key: str, session_cookie: str) -> str:
    """The CSRF token of a session cookie: stable for the session, useless with any other (an HMAC
    under the secret key, so nothing is stored). Cookie-authenticated changes must send it."""
    return hmac.new(secret_key.encode(), b"csrf|" + session_cookie.encode(), hashlib.sha256).hexdigest()
