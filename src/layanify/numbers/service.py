"""Number operations: register the seed's number, reflect Meta's account and template updates."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from layanify.accounts import repository as accounts_repository
from layanify.config import Settings
from layanify.crypto.keyring import Keyring, KeyringError
from layanify.db.base import utcnow
from layanify.numbers import repository
from layanify.numbers.models import MessageTemplate, NumberStatus, WhatsAppNumber
from layanify.observability import get_logger

log = get_logger(__name__)


def digits(value: str | None) -> str:
    """Only the digits of a phone number as Meta formats it ("+1 631-555-5555" → "16315555555")."""
    return "".join(ch for ch in value or "" if ch.isdigit())


def learn_display_number(number: WhatsAppNumber, display_phone_number: str | None) -> None:
    """Fill in the number's digits from webhook metadata when we do not know them yet."""
    if not number.number and display_phone_number:
        number.number = digits(display_phone_number)[:32]


def set_access_token(number: WhatsAppNumber, token: str, keyring: Keyring) -> None:
    """Store the token encrypted; keep only its last 4 characters in the clear for display."""
    number.access_token_encrypted = keyring.encrypt(token, associated_data=number.phone_number_id.encode())
    number.token_last4 = token[-4:]


def access_token(number: WhatsAppNumber, keyring: Keyring) -> str | None:
    """The number's decrypted access token, when one is stored."""
    if not number.access_token_encrypted:
        return None
    return keyring.decrypt(number.access_token_encrypted, associated_data=number.phone_number_id.encode())


async def register_seed_number(
    session: AsyncSession, settings: Settings, keyring: Keyring
) -> WhatsAppNumber | None:
    """Register the number of the seed's WHATSAPP_* variables for the first owner (idempotent)."""
    if not settings.seed_number_configured or settings.whatsapp_access_token is None:
        return None
    phone_number_id = settings.whatsapp_phone_number_id or ""
    token = settings.whatsapp_access_token.get_secret_value()
    number = await repository.by_phone_number_id(session, phone_number_id)
    if number is None:
        owner = await accounts_repository.first_owner(session)
        if owner is None:
            log.warning("seed_number_waiting_for_owner", phone_number_id=phone_number_id)
            return None
        number = WhatsAppNumber(
            workspace_id=owner.workspace_id,
            user_id=owner.user_id,
            phone_number_id=phone_number_id,
            waba_id=settings.whatsapp_business_account_id,
            status=NumberStatus.PENDING,
        )
        set_access_token(number, token, keyring)
        session.add(number)
        await session.flush()
        log.info("seed_number_registered", number_id=number.id, workspace_id=number.workspace_id)
        return number
    if settings.whatsapp_business_account_id and number.waba_id != settings.whatsapp_business_account_id:
        number.waba_id = settings.whatsapp_business_account_id
    try:
        unchanged = access_token(number, keyring) == token
    except KeyringError:
        unchanged = False
    if not unchanged:
        set_access_token(number, token, keyring)
        log.info("seed_number_token_updated", number_id=number.id)
    return number


async def apply_quality_update(
    session: AsyncSession, waba_id: str, value: dict[str, Any]
) -> list[WhatsAppNumber]:
    """phone_number_quality_update: the number's messaging limit and the event as Meta sent it."""
    display = digits(
        value.get("display_phone_number") if isinstance(value.get("display_phone_number"), str) else ""
    )
    numbers = [
        n for n in await repository.by_waba(session, waba_id) if not display or digits(n.number) == display
    ]
    for number in numbers:
        limit = value.get("current_limit") or value.get("max_daily_conversations_per_business")
        if isinstance(limit, str):
            number.messaging_limit = limit
        rating = value.get("quality_rating") or value.get("new_quality_rating")
        if isinstance(rating, str):
            number.quality_rating = rating
        number.last_quality_event = value
        number.last_event_at = utcnow()
    return numbers


async def apply_account_update(
    session: AsyncSession, waba_id: str, value: dict[str, Any]
) -> list[WhatsAppNumber]:
    """account_update: the account's state (verification, bans, restrictions) on every number of the WABA."""
    phone = digits(value.get("phone_number") if isinstance(value.get("phone_number"), str) else "")
    numbers = [
        n for n in await repository.by_waba(session, waba_id) if not phone or digits(n.number) == phone
    ]
    for number in numbers:
        event = value.get("event")
        if isinstance(event, str):
            number.account_status = event
        number.last_account_event = value
        number.last_event_at = utcnow()
    return numbers


async def apply_template_update(
    session: AsyncSession, waba_id: str, value: dict[str, Any], *, quality: bool
) -> list[MessageTemplate]:
    """Template status / quality webhooks, stored for every workspace that has a number on the WABA."""
    template_id = str(value.get("message_template_id") or "")
    if not template_id:
        return []
    workspaces = sorted({n.workspace_id for n in await repository.by_waba(session, waba_id)})
    templates = []
    for workspace_id in workspaces:
        template = await repository.template(session, workspace_id, waba_id, template_id)
        if template is None:
            template = MessageTemplate(workspace_id=workspace_id, waba_id=waba_id, template_id=template_id)
            session.add(template)
        name = value.get("message_template_name")
        language = value.get("message_template_language")
        if isinstance(name, str):
            template.name = name
        if isinstance(language, str):
            template.language = language
        if quality:
            score = value.get("new_quality_score")
            template.quality_score = score if isinstance(score, str) else template.quality_score
        else:
            event = value.get("event")
            template.status = event if isinstance(event, str) else template.status
            reason = value.get("reason")
            template.reason = reason if isinstance(reason, str) and reason != "NONE" else None
        template.last_event = value
        templates.append(template)
    await session.flush()
    return templates
