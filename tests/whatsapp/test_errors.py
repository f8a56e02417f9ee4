"""Graph error bodies become typed errors that carry the action and a remedy users understand.

Codes and body shape: https://developers.facebook.com/documentation/business-messaging/whatsapp/support/error-codes
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from layanify.whatsapp import errors
from layanify.whatsapp.errors import Action, GraphError


def meta_error(code: int, message: str, details: str = "details", **extra: Any) -> dict[str, Any]:
    """Meta's documented error response syntax."""
    return {
        "error": {
            "message": message,
            "type": "OAuthException",
            "code": code,
            "error_data": {"messaging_product": "whatsapp", "details": details},
            "fbtrace_id": "Az8or2yhqkZfEZ-_4Qn_Bam",
            **extra,
        }
    }


@pytest.mark.parametrize(
    ("code", "cls", "action"),
    [
        (4, errors.Throttled, Action.RETRY_LATER),
        (80007, errors.Throttled, Action.RETRY_LATER),
        (130429, errors.Throttled, Action.RETRY_LATER),
        (131056, errors.PairRateLimited, Action.RETRY_LATER),
        (1, errors.ServerError, Action.RETRY_LATER),
        (2, errors.ServerError, Action.RETRY_LATER),
        (131000, errors.ServerError, Action.RETRY_LATER),
        (131016, errors.ServerError, Action.RETRY_LATER),
        (133004, errors.ServerError, Action.RETRY_LATER),
        (0, errors.TokenInvalid, Action.RECONNECT),
        (190, errors.TokenInvalid, Action.RECONNECT),
        (10, errors.PermissionDenied, Action.RECONNECT),
        (200, errors.PermissionDenied, Action.RECONNECT),
        (299, errors.PermissionDenied, Action.RECONNECT),
        (100, errors.InvalidParameter, Action.FIX_REQUEST),
        (131008, errors.InvalidParameter, Action.FIX_REQUEST),
        (131009, errors.InvalidParameter, Action.FIX_REQUEST),
        (131051, errors.InvalidParameter, Action.FIX_REQUEST),
        (132000, errors.TemplateParameterMismatch, Action.FIX_REQUEST),
        (132005, errors.TemplateParameterMismatch, Action.FIX_REQUEST),
        (132012, errors.TemplateParameterMismatch, Action.FIX_REQUEST),
        (132001, errors.TemplateUnavailable, Action.FIX_REQUEST),
        (132007, errors.TemplateUnavailable, Action.FIX_REQUEST),
        (132015, errors.TemplateUnavailable, Action.FIX_REQUEST),
        (132016, errors.TemplateUnavailable, Action.FIX_REQUEST),
        (131047, errors.WindowClosed, Action.SEND_TEMPLATE),
        (131026, errors.Undeliverable, Action.UNDELIVERABLE),
        (131030, errors.RecipientNotAllowed, Action.NOT_ALLOWED),
        (131021, errors.RecipientIsSender, Action.NOT_ALLOWED),
        (131049, errors.MarketingLimited, Action.NOT_ALLOWED),
        (131050, errors.MarketingLimited, Action.NOT_ALLOWED),
        (131031, errors.AccountRestricted, Action.NOT_ALLOWED),
        (368, errors.AccountRestricted, Action.NOT_ALLOWED),
        (133010, errors.NumberNotRegistered, Action.REGISTER_NUMBER),
    ],
)
def test_each_documented_code_maps_to_its_class_and_action(
    code: int, cls: type[GraphError], action: Action
) -> None:
    error = errors.error_for(400, meta_error(code, f"(#{code}) Some title"))
    assert type(error) is cls
    assert error.action is action
    assert error.retryable is (action is Action.RETRY_LATER)
    assert errors.error_for_code(code) is cls


def test_body_fields_are_kept() -> None:
    body = meta_error(
        131047,
        "(#131047) Re-engagement message",
        "Message failed to send because more than 24 hours have passed since the customer last replied.",
        error_subcode=2494010,
    )
    error = errors.error_for(400, json.dumps(body).encode())
    assert isinstance(error, errors.WindowClosed)
    assert error.code == 131047
    assert error.subcode == 2494010
    assert error.title == "Re-engagement message"
    assert error.message == "(#131047) Re-engagement message"
    assert (error.details or "").startswith("Message failed to send")
    assert error.fbtrace_id == "Az8or2yhqkZfEZ-_4Qn_Bam"
    assert error.error_type == "OAuthException"
    assert error.http_status == 400
    assert "131047" in str(error)
    assert "WindowClosed" in repr(error)


def test_to_dict_gives_what_the_ui_shows() -> None:
    error = errors.error_for(401, meta_error(190, "Error validating access token: Session has expired"))
    assert errors.describe(error) == {
        "code": 190,
        "title": "Error validating access token: Session has expired",
        "details": "details",
        "action": "reconnect",
        "remedy": errors.TokenInvalid.remedy,
        "retryable": False,
    }


def test_unknown_code_with_5xx_is_a_server_error() -> None:
    error = errors.error_for(503, meta_error(999999, "Something new"))
    assert type(error) is errors.ServerError
    assert error.code == 999999
    assert error.retryable


def test_unknown_code_with_4xx_is_a_generic_error_to_fix() -> None:
    error = errors.error_for(400, meta_error(999999, "Something new"))
    assert type(error) is GraphError
    assert error.action is Action.FIX_REQUEST
    assert not error.retryable


def test_429_without_a_known_code_is_throttled() -> None:
    assert type(errors.error_for(429, b"")) is errors.Throttled


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body>502 Bad Gateway</body></html>",
        b"",
        None,
        b"\xff\xfe not utf-8",
        b"[1, 2]",
        b'{"error": "a string"}',
        b'{"error": {"code": "not a number", "message": 5}}',
        {"error": {"code": True}},
    ],
)
def test_unreadable_bodies_never_raise(body: bytes | dict[str, Any] | None) -> None:
    server = errors.error_for(502, body)
    client = errors.error_for(400, body)
    assert isinstance(server, errors.ServerError)
    assert type(client) is GraphError
    assert server.http_status == 502


def test_codes_are_unique_across_classes() -> None:
    seen: dict[int, type[GraphError]] = {}
    for cls in errors.ERROR_CLASSES:
        for code in cls.codes:
            assert code not in seen, f"{code} in {cls.__name__} and {seen[code].__name__}"
            seen[code] = cls


def test_every_class_has_a_remedy_and_a_docstring() -> None:
    classes: tuple[type[GraphError], ...] = (*errors.ERROR_CLASSES, errors.NetworkError, errors.MediaTooLarge)
    for cls in classes:
        assert cls.remedy != GraphError.remedy
        assert cls.__doc__


def test_status_webhook_errors_get_their_action() -> None:
    item = {
        "code": 131047,
        "title": "Re-engagement message",
        "message": "Re-engagement message",
        "error_data": {"details": "Message failed to send because more than 24 hours have passed"},
        "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
    }
    error = errors.from_webhook_error(item)
    assert isinstance(error, errors.WindowClosed)
    assert error.to_dict()["action"] == "send_template"
    assert error.href == item["href"]
    assert type(errors.from_webhook_error({"code": 424242})) is GraphError
    assert errors.error_for_code(None) is GraphError


def test_redact_removes_a_secret_from_every_text() -> None:
    error = errors.error_for(400, meta_error(190, "Malformed access token EAAsecret", "token EAAsecret"))
    error.redact("EAAsecret")
    assert "EAAsecret" not in str(error)
    assert "EAAsecret" not in repr(error)
    assert "EAAsecret" not in error.message
    assert all("EAAsecret" not in str(arg) for arg in error.args)
