"""Meta's Graph API errors as the simulator answers them, and the errors of `failed` status webhooks.

Shapes follow Meta's error-codes page
(https://developers.facebook.com/documentation/business-messaging/whatsapp/support/error-codes):
`{"error":{"message","type","code","error_subcode"?,"error_data":{"messaging_product","details"},
"fbtrace_id"}}`. The title is folded into `message` as "(#<code>) <title>".
"""

from __future__ import annotations

import secrets
from typing import Any

ERROR_CODES_URL = (
    "https://developers.facebook.com/documentation/business-messaging/whatsapp/support/error-codes"
)


def fbtrace_id() -> str:
    """A random trace id shaped like Meta's."""
    return "A" + secrets.token_urlsafe(16)[:21]


class GraphError(Exception):
    """An error the simulated Graph API answers synchronously."""

    def __init__(
        self,
        code: int,
        title: str,
        details: str | None = None,
        *,
        status: int = 400,
        subcode: int | None = None,
        message: str | None = None,
        transient: bool = False,
    ) -> None:
        super().__init__(f"({code}) {title}")
        self.code = code
        self.title = title
        self.details = details
        self.status = status
        self.subcode = subcode
        self.message = message or f"(#{code}) {title}"
        self.transient = transient

    def body(self) -> dict[str, Any]:
        """The JSON error body Meta answers."""
        error: dict[str, Any] = {"message": self.message, "type": "OAuthException", "code": self.code}
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        if self.transient:
            error["is_transient"] = True
        if self.details is not None:
            error["error_data"] = {"messaging_product": "whatsapp", "details": self.details}
        error["fbtrace_id"] = fbtrace_id()
        return {"error": error}


def invalid_parameter(details: str) -> GraphError:
    """Code 100: a required field is missing or has the wrong type or value."""
    return GraphError(100, "Invalid parameter", details)


def invalid_token(*, revoked: bool = False) -> GraphError:
    """Code 190 (HTTP 401): the access token is missing, malformed, for another number, or revoked."""
    if revoked:
        return GraphError(
            190,
            "Access token has expired",
            status=401,
            subcode=460,
            message="Error validating access token: The session has been invalidated because the user "
            "changed their password or Facebook has changed the session for security reasons.",
        )
    return GraphError(
        190,
        "Invalid OAuth access token",
        status=401,
        message="Invalid OAuth access token - Cannot parse access token",
    )


def unknown_object(object_id: str) -> GraphError:
    """Code 100 subcode 33: no object with that id (or no permission to see it)."""
    return GraphError(
        100,
        "Unsupported get request",
        subcode=33,
        message=f"Unsupported get request. Object with ID '{object_id}' does not exist, cannot be loaded due "
        "to missing permissions, or does not support this operation.",
    )


def rate_limited() -> GraphError:
    """Code 130429: the number's throughput was exceeded."""
    return GraphError(130429, "Rate limit hit", "Cloud API message throughput has been reached.")


def pair_rate_limited() -> GraphError:
    """Code 131056: too many messages from this number to the same customer in a short time."""
    return GraphError(
        131056,
        "(Business Account, Consumer Account) pair rate limit hit",
        "Message failed to send because there were too many messages sent from this phone number to the "
        "same phone number in a short period of time.",
    )


def template_missing(name: str, language: str) -> GraphError:
    """Code 132001: no template with this name in this language."""
    return GraphError(
        132001,
        "Template name does not exist in the translation",
        f"template name ({name}) does not exist in {language}",
    )


def template_param_mismatch(details: str) -> GraphError:
    """Code 132000: the number of parameters does not match the template's placeholders."""
    return GraphError(132000, "Number of parameters does not match the expected number of params", details)


def server_error() -> GraphError:
    """A transient 500, as Meta answers when something goes wrong on its side."""
    return GraphError(
        2,
        "Service temporarily unavailable",
        status=500,
        message="An unexpected error has occurred. Please retry your request later.",
        transient=True,
    )


def unknown_path(path: str) -> GraphError:
    """Code 2500: a path the Graph API does not know (including a malformed version)."""
    return GraphError(2500, "Unknown path components", message=f"Unknown path components: /{path}")


def webhook_error(code: int) -> dict[str, Any]:
    """The `errors[]` item of a `failed` status webhook for an asynchronous error."""
    title, details = ASYNC_ERRORS[code]
    return {
        "code": code,
        "title": title,
        "message": title,
        "error_data": {"details": details},
        "href": ERROR_CODES_URL,
    }


# Errors Meta reports after accepting a send (HTTP 200), in a `failed` status webhook.
UNDELIVERABLE = 131026
WINDOW_CLOSED = 131047
ASYNC_ERRORS: dict[int, tuple[str, str]] = {
    UNDELIVERABLE: ("Message undeliverable", "Message Undeliverable."),
    WINDOW_CLOSED: (
        "Re-engagement message",
        "Message failed to send because more than 24 hours have passed since the customer last replied "
        "to this number.",
    ),
}
