"""Testing a number's connection against the Graph API, and explaining the result in plain words.

The seed's "Common Errors" (invalid token, phone number not found, webhook not verified, rate limit)
each get a `problem` code and a diagnosis a non-developer can act on.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from layanify.crypto.keyring import Keyring, KeyringError
from layanify.db.base import utcnow
from layanify.numbers.models import NumberStatus, WhatsAppNumber
from layanify.numbers.schemas import ConnectionCheck, ConnectionReport
from layanify.numbers.service import access_token, digits, to_read
from layanify.observability import get_logger
from layanify.whatsapp.client import GraphClient
from layanify.whatsapp.errors import (
    GraphError,
    InvalidParameter,
    NetworkError,
    PermissionDenied,
    ServerError,
    Throttled,
    TokenInvalid,
)

log = get_logger(__name__)


# What each common failure means to the person connecting the number (the seed's "Common Errors").
DIAGNOSES = {
    "invalid_token": (
        "Invalid access token: Meta refused the token. Generate a permanent token for a system user "
        "with whatsapp_business_messaging and whatsapp_business_management permissions, paste it again, "
        "and test once more."
    ),
    "phone_number_not_found": (
        "Phone number not found: Meta does not know this Phone Number ID, or this token cannot see it. "
        "Copy the Phone Number ID (not the phone number itself) from WhatsApp > API Setup in Meta for "
        "Developers."
    ),
    "wrong_waba": (
        "This phone number does not belong to the WhatsApp Business Account ID you entered. Copy the "
        "WhatsApp Business Account ID shown above the phone number in WhatsApp > API Setup."
    ),
    "webhook_not_verified": (
        "Webhook not verified: the app is not subscribed to this WhatsApp Business Account, so incoming "
        "messages and delivery statuses will not arrive. In Meta for Developers > WhatsApp > Configuration "
        "set the callback URL to https://<your-domain>/api/webhooks/whatsapp with your verify token "
        "(WHATSAPP_VERIFY_TOKEN), and subscribe to the `messages` field."
    ),
    "rate_limited": (
        "Rate limit exceeded: Meta asked us to slow down. Nothing is wrong with the settings; wait a "
        "minute and test again. Queued messages are retried automatically."
    ),
    "unreachable": (
        "Meta could not be reached (network error or timeout). Check this server's internet access and "
        "try again; queued messages are retried automatically."
    ),
    "meta_error": "Meta answered with an error; the details below say what it was.",
}


def _problem_of(error: GraphError, step: str) -> str:
    if step == "waba" and isinstance(error, TokenInvalid | PermissionDenied | InvalidParameter):
        # The same token has just read the phone number, so this is the account id, not the token.
        return "wrong_waba"
    if isinstance(error, TokenInvalid):
        return "invalid_token"
    if isinstance(error, Throttled):
        return "rate_limited"
    if isinstance(error, NetworkError | ServerError):
        return "unreachable"
    if step == "phone_number" and error.code in (100, 803):
        return "phone_number_not_found"
    return "meta_error"


async def test_connection(
    session: AsyncSession, number: WhatsAppNumber, client: GraphClient, keyring: Keyring, *, default_rate: int
) -> ConnectionReport:
    """Check the token and ids against the Graph API, store what was learned, and explain the result.

    Steps: the phone number's details (token valid, id exists), the WABA's numbers (the id belongs to
    the WABA), the WABA's subscribed apps (webhooks will arrive). The number is approved and
    `connected` only when every step passes; an invalid token marks it `disconnected`.
    """
    checks: list[ConnectionCheck] = []
    problem: str | None = None
    details = ""
    try:
        token = access_token(number, keyring)
    except KeyringError:
        token = None
    if not token:
        problem = "invalid_token"
        checks.append(
            ConnectionCheck(name="access_token", ok=False, message="no usable access token is stored")
        )
    step = "phone_number"
    try:
        if token:
            info = await client.phone_number(number.phone_number_id, token)
            number.verified_name = info.verified_name or number.verified_name
            number.quality_rating = info.quality_rating or number.quality_rating
            number.throughput_level = info.throughput_level or number.throughput_level
            if info.display_phone_number:
                number.number = digits(info.display_phone_number)[:32]
                number.display_name = number.display_name or info.verified_name or ""
            checks.append(
                ConnectionCheck(
                    name="phone_number",
                    ok=True,
                    message=f"{info.display_phone_number or number.phone_number_id} "
                    f"({info.verified_name or 'no verified name yet'}), "
                    f"quality {info.quality_rating or 'unknown'}",
                )
            )
            if number.waba_id:
                step = "waba"
                listed = await client.waba_phone_numbers(number.waba_id, token)
                belongs = any(p.id == number.phone_number_id for p in listed)
                checks.append(
                    ConnectionCheck(
                        name="waba",
                        ok=belongs,
                        message="the number belongs to the WhatsApp Business Account"
                        if belongs
                        else "the number is not among the WhatsApp Business Account's numbers",
                    )
                )
                if not belongs:
                    problem = "wrong_waba"
                step = "webhook"
                apps = await client.subscribed_apps(number.waba_id, token)
                checks.append(
                    ConnectionCheck(
                        name="webhook",
                        ok=bool(apps),
                        message=f"{len(apps)} app(s) subscribed to the account's webhooks"
                        if apps
                        else "no app is subscribed to the account's webhooks",
                    )
                )
                if not apps and problem is None:
                    problem = "webhook_not_verified"
            else:
                checks.append(
                    ConnectionCheck(
                        name="waba",
                        ok=False,
                        message="no WhatsApp Business Account ID: "
                        "ownership and webhook subscription not checked",
                    )
                )
    except GraphError as error:
        error.redact(token)
        problem = _problem_of(error, step)
        details = str(error)
        checks.append(ConnectionCheck(name=step, ok=False, message=details))
    number.connection_checked_at = utcnow()
    if problem is None:
        number.status = NumberStatus.APPROVED
        number.connection_state = "connected"
        number.connection_error = None
        diagnosis = (
            "Connected: the token works, the number belongs to the account, and webhooks are subscribed."
        )
    else:
        diagnosis = DIAGNOSES[problem] + (f" ({details})" if details and problem == "meta_error" else "")
        if problem == "invalid_token":
            number.connection_state = "disconnected"
        elif problem in ("phone_number_not_found", "wrong_waba"):
            number.connection_state = "error"
        elif problem == "webhook_not_verified":
            # Sending works; only receiving is at risk. Keep the queue running.
            number.status = NumberStatus.APPROVED
            number.connection_state = "connected"
        number.connection_error = diagnosis
    await session.flush()
    log.info("number_connection_tested", number_id=number.id, ok=problem is None, problem=problem)
    return ConnectionReport(
        ok=problem is None,
        problem=problem,
        diagnosis=diagnosis,
        checks=checks,
        number=to_read(number, default_rate),
    )
