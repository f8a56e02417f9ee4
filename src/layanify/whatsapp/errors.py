"""Graph API errors, typed by Meta's error code and carrying the action the user (or the outbox) takes.

Codes and their meaning follow Meta's Cloud API error-codes page
(https://developers.facebook.com/documentation/business-messaging/whatsapp/support/error-codes).
Meta asks integrators to branch on `code` (and read `error_data.details`), never on titles or
messages, so every decision here is made from the code; retry policy and UI read `action`.
"""

from __future__ import annotations

import json
import re
from enum import StrEnum
from typing import Any, ClassVar


class Action(StrEnum):
    """What has to happen before a failed request can succeed."""

    RETRY_LATER = "retry_later"
    SEND_TEMPLATE = "send_template"
    RECONNECT = "reconnect"
    FIX_REQUEST = "fix_request"
    UNDELIVERABLE = "undeliverable"
    NOT_ALLOWED = "not_allowed"
    REGISTER_NUMBER = "register_number"


_CODE_PREFIX = re.compile(r"^\(#\d+\)\s*")


class GraphError(Exception):
    """An error answered by the Graph API (or met on the way to it)."""

    codes: ClassVar[tuple[int, ...]] = ()
    action: ClassVar[Action] = Action.FIX_REQUEST
    category: ClassVar[str] = "request"
    default_title: ClassVar[str] = "WhatsApp rejected the request"
    remedy: ClassVar[str] = (
        "WhatsApp rejected this request. Check the message content and settings, "
        "then try again; the details say what was wrong."
    )

    def __init__(
        self,
        message: str = "",
        *,
        code: int | None = None,
        subcode: int | None = None,
        title: str | None = None,
        details: str | None = None,
        error_type: str | None = None,
        fbtrace_id: str | None = None,
        http_status: int | None = None,
        href: str | None = None,
    ) -> None:
        self.message = message or title or self.default_title
        self.code = code
        self.subcode = subcode
        self.title = title or _CODE_PREFIX.sub("", message).strip() or self.default_title
        self.details = details
        self.error_type = error_type
        self.fbtrace_id = fbtrace_id
        self.http_status = http_status
        self.href = href
        super().__init__(self.message)

    @property
    def retryable(self) -> bool:
        """True when the same request may succeed later without any change."""
        return self.action is Action.RETRY_LATER

    def __str__(self) -> str:
        code = f" (code {self.code})" if self.code is not None else ""
        details = f": {self.details}" if self.details and self.details != self.title else ""
        return f"{self.title}{code}{details}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, title={self.title!r}, "
            f"http_status={self.http_status!r}, fbtrace_id={self.fbtrace_id!r})"
        )

    def to_dict(self) -> dict[str, Any]:
        """The error as the API and UI show it: what happened and what to do about it."""
        return {
            "code": self.code,
            "title": self.title,
            "details": self.details,
            "action": self.action.value,
            "remedy": self.remedy,
            "retryable": self.retryable,
        }

    def redact(self, secret: str | None) -> None:
        """Remove a secret from every text field (Graph sometimes echoes a malformed token)."""
        if not secret:
            return
        self.message = self.message.replace(secret, "[redacted]")
        self.title = self.title.replace(secret, "[redacted]")
        if self.details:
            self.details = self.details.replace(secret, "[redacted]")
        self.args = (self.message,)


class Throttled(GraphError):
    """Too many calls or messages: Meta asks us to slow down."""

    codes: ClassVar[tuple[int, ...]] = (4, 80007, 130429)
    action = Action.RETRY_LATER
    category = "throttling"
    default_title = "Rate limit hit"
    remedy = "WhatsApp is limiting how fast this number can send. The message will be retried shortly."


class PairRateLimited(Throttled):
    """Too many messages to the same recipient in a short time; other recipients are unaffected."""

    codes = (131056,)
    default_title = "Pair rate limit hit"
    remedy = (
        "Too many messages were sent to this contact in a short time. "
        "The message will be retried after a pause."
    )


class ServerError(GraphError):
    """Meta failed or is temporarily unavailable (a 5xx without a known code counts too)."""

    codes = (1, 2, 131000, 131016, 133004)
    action = Action.RETRY_LATER
    category = "server"
    default_title = "WhatsApp service error"
    remedy = "WhatsApp had a temporary problem. The message will be retried automatically."


class NetworkError(GraphError):
    """The request did not get an answer: connection failure or timeout."""

    action = Action.RETRY_LATER
    category = "network"
    default_title = "Could not reach WhatsApp"
    remedy = "WhatsApp could not be reached. The message will be retried automatically."
    # False when the request surely never left (no connection was made): a send can be retried at once.
    # True when it may have reached Meta and only the answer was lost.
    maybe_sent: bool = True


class TokenInvalid(GraphError):
    """The access token is invalid, expired or revoked (190), or the app user is not authenticated (0)."""

    codes = (0, 190)
    action = Action.RECONNECT
    category = "authorization"
    default_title = "Access token invalid"
    remedy = (
        "The access token is invalid or expired. Paste a new token in the number's settings "
        "and test the connection."
    )


class PermissionDenied(GraphError):
    """The token works but lacks a permission the endpoint needs (3, 10, 200–299, 131005)."""

    codes = (3, 10, 131005, *range(200, 300))
    action = Action.RECONNECT
    category = "authorization"
    default_title = "Permission denied"
    remedy = (
        "The access token is missing a permission. Create a token with the whatsapp_business_messaging "
        "and whatsapp_business_management permissions, paste it in the number's settings and test again."
    )


class InvalidParameter(GraphError):
    """The request has a missing, misspelled or invalid parameter, or an unsupported message type."""

    codes = (100, 131008, 131009, 131051)
    category = "request"
    default_title = "Invalid parameter"
    remedy = "WhatsApp rejected part of the message as invalid. Correct it (the details name the field)."


class TemplateParameterMismatch(GraphError):
    """The template's variables were given in the wrong number or format, or render too long."""

    codes = (132000, 132005, 132012)
    category = "template"
    default_title = "Template parameters do not match"
    remedy = (
        "The values given for the template's variables do not match the approved template. "
        "Give one value per variable, in the format the template expects."
    )


class TemplateUnavailable(GraphError):
    """The template does not exist in that language, is not approved, violates policy, or is paused."""

    codes = (132001, 132007, 132015, 132016)
    category = "template"
    default_title = "Template not available"
    remedy = (
        "This template cannot be used: it does not exist in that language, is not approved, or is "
        "paused or disabled. Check it in WhatsApp Manager or choose another template."
    )


class WindowClosed(GraphError):
    """More than 24 hours since the customer last wrote: only a template can be sent."""

    codes = (131047,)
    action = Action.SEND_TEMPLATE
    category = "window"
    default_title = "Re-engagement message"
    remedy = (
        "More than 24 hours have passed since the customer last wrote. Send an approved template "
        "to start the conversation again."
    )


class Undeliverable(GraphError):
    """WhatsApp could not deliver to this recipient (not on WhatsApp, old app, blocked, terms)."""

    codes = (131026,)
    action = Action.UNDELIVERABLE
    category = "recipient"
    default_title = "Message undeliverable"
    remedy = (
        "WhatsApp could not deliver to this number. It may not use WhatsApp, may have blocked you, "
        "or needs to update the app. Reach the customer another way."
    )


class RecipientNotAllowed(GraphError):
    """The recipient is not in the allowed list of a test number."""

    codes: ClassVar[tuple[int, ...]] = (131030,)
    action = Action.NOT_ALLOWED
    category = "recipient"
    default_title = "Recipient not in allowed list"
    remedy = (
        "This is a test number, which can only message numbers on its allowed list. Add the "
        "recipient in the Meta developer dashboard, or use a production number."
    )


class RecipientIsSender(RecipientNotAllowed):
    """The recipient is the sending number itself."""

    codes = (131021,)
    default_title = "Recipient cannot be sender"
    remedy = "A number cannot send a message to itself. Choose a different recipient."


class MarketingLimited(GraphError):
    """Meta held back a marketing message (engagement limit) or the user opted out of marketing."""

    codes = (131049, 131050)
    action = Action.NOT_ALLOWED
    category = "policy"
    default_title = "Marketing message not delivered"
    remedy = (
        "WhatsApp did not deliver this marketing message: the customer has received too many or "
        "has stopped marketing messages from you. Do not resend it."
    )


class AccountRestricted(GraphError):
    """The business account or number is restricted (policy enforcement, lock, spam limit, country)."""

    codes = (368, 130497, 131031, 131048)
    action = Action.NOT_ALLOWED
    category = "policy"
    default_title = "Account restricted"
    remedy = (
        "WhatsApp has restricted sending from this business account. Check Account Quality in "
        "WhatsApp Manager for the reason and how to appeal."
    )


class NumberNotRegistered(GraphError):
    """The phone number is not registered on the Cloud API."""

    codes = (133010,)
    action = Action.REGISTER_NUMBER
    category = "registration"
    default_title = "Phone number not registered"
    remedy = "This phone number is not registered with the Cloud API. Register it, then test the connection."


class MediaTooLarge(GraphError):
    """A media download was larger than the caller allows (no Meta code: our own limit)."""

    category = "media"
    default_title = "Media too large"
    remedy = "The file is larger than this workspace accepts, so it was not downloaded."


ERROR_CLASSES: tuple[type[GraphError], ...] = (
    Throttled,
    PairRateLimited,
    ServerError,
    TokenInvalid,
    PermissionDenied,
    InvalidParameter,
    TemplateParameterMismatch,
    TemplateUnavailable,
    WindowClosed,
    Undeliverable,
    RecipientNotAllowed,
    RecipientIsSender,
    MarketingLimited,
    AccountRestricted,
    NumberNotRegistered,
)

_BY_CODE: dict[int, type[GraphError]] = {code: cls for cls in ERROR_CLASSES for code in cls.codes}


def error_for_code(code: int | None) -> type[GraphError]:
    """The class for a Meta error code; `GraphError` (fix the request) when the code is unknown."""
    if code is None:
        return GraphError
    return _BY_CODE.get(code, GraphError)


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _decode(body: bytes | str | dict[str, Any] | None) -> dict[str, Any] | None:
    if isinstance(body, dict):
        return body
    if not body:
        return None
    try:
        decoded = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return decoded if isinstance(decoded, dict) else None


def error_for(status_code: int, body: bytes | str | dict[str, Any] | None) -> GraphError:
    """The typed error for a non-2xx Graph answer; never raises, whatever the body is."""
    decoded = _decode(body)
    error = decoded.get("error") if decoded is not None else None
    if not isinstance(error, dict):
        fallback: type[GraphError] = (
            ServerError if status_code >= 500 else Throttled if status_code == 429 else GraphError
        )
        return fallback(f"HTTP {status_code} without a Graph error body", http_status=status_code)
    code = _int(error.get("code"))
    cls = _BY_CODE.get(code) if code is not None else None
    if cls is None:
        cls = ServerError if status_code >= 500 else Throttled if status_code == 429 else GraphError
    error_data = error.get("error_data")
    details = _str(error_data.get("details")) if isinstance(error_data, dict) else None
    return cls(
        _str(error.get("message")) or "",
        code=code,
        subcode=_int(error.get("error_subcode")),
        title=_str(error.get("error_user_title")),
        details=details,
        error_type=_str(error.get("type")),
        fbtrace_id=_str(error.get("fbtrace_id")),
        http_status=status_code,
        href=_str(error.get("href")),
    )


def from_webhook_error(error: dict[str, Any]) -> GraphError:
    """The typed error for an `errors[]` item of a webhook (`{code, title, message, error_data, href}`)."""
    code = _int(error.get("code"))
    error_data = error.get("error_data")
    details = _str(error_data.get("details")) if isinstance(error_data, dict) else None
    return error_for_code(code)(
        _str(error.get("message")) or _str(error.get("title")) or "",
        code=code,
        title=_str(error.get("title")),
        details=details,
        href=_str(error.get("href")),
    )


def describe(error: GraphError) -> dict[str, Any]:
    """`error.to_dict()`: code, title, details, action, remedy and whether a retry can help."""
    return error.to_dict()
