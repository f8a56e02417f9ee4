"""Number operations: register the seed's number, reflect Meta's account and template updates."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from layanify.accounts import repository as accounts_repository
from layanify.audit import service as audit
from layanify.config import Settings
from layanify.crypto.keyring import Keyring, KeyringError
from layanify.db.base import utcnow
from layanify.db.session import Sessionmaker, unit_of_work
from layanify.errors import Conflict, NotFound
from layanify.numbers import repository
from layanify.numbers.models import MessageTemplate, NumberStatus, WhatsAppNumber
from layanify.numbers.schemas import NumberCreate, NumberRead, NumberUpdate
from layanify.observability import get_logger

log = get_logger(__name__)


def digits(value: str | None) -> str:
    """Only the digits of a phone number as Meta formats it ("+1 631-555-5555" → "16315555555")."""
    return "".join(ch for ch in value or "" if ch.isdigit())


def learn_display_number(number: WhatsAppNumber, display_phone_number: str | None) -> None:
    """Fill in the number's digits from webhook metadata when we do not know them yet."""
    if not number.number and display_phone_number:
        number.number = digits(display_phone_number)[:32]


def _fit(column: Any, value: str) -> str:
    """`value` cut to what `column` (a String(n) attribute) stores.

    Meta's values in account and template updates are short enums. An odd long one must not fail the
    event (PostgreSQL enforces varchar lengths; the event would be retried until it gave up with a
    database error): the column gets what fits, and the event's JSON column keeps the whole value.
    """
    length: int | None = getattr(column.type, "length", None)
    return value[:length] if length else value


def set_access_token(number: WhatsAppNumber, token: str, keyring: Keyring) -> None:
    """Store the token encrypted; keep only its last 4 characters in the clear for display."""
    number.access_token_encrypted = keyring.encrypt(token, associated_data=number.phone_number_id.encode())
    number.token_last4 = token[-4:]


async def _record_token_change(
    session: AsyncSession, number: WhatsAppNumber, *, actor_user_id: int | None, reason: str
) -> None:
    """An access token was set or changed: recorded in the audit log (never the token, not even its end)."""
    await audit.record(
        session,
        workspace_id=number.workspace_id,
        actor_user_id=actor_user_id,
        action="number.token_changed",
        target_type="number",
        target_id=str(number.id),
        details={"reason": reason},
    )


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
    number = await repository.by_phone_number_id(session, phone_number_id, include_deleted=True)
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
        await _record_token_change(session, number, actor_user_id=None, reason="seed_registered")
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
        await _record_token_change(session, number, actor_user_id=None, reason="seed_updated")
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
            number.messaging_limit = _fit(WhatsAppNumber.messaging_limit, limit)
        rating = value.get("quality_rating") or value.get("new_quality_rating")
        if isinstance(rating, str):
            number.quality_rating = _fit(WhatsAppNumber.quality_rating, rating)
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
            number.account_status = _fit(WhatsAppNumber.account_status, event)
        number.last_account_event = value
        number.last_event_at = utcnow()
    return numbers


async def apply_template_update(
    session: AsyncSession, waba_id: str, value: dict[str, Any], *, quality: bool
) -> list[MessageTemplate]:
    """Template status / quality webhooks, stored for every workspace that has a number on the WABA."""
    template_id = str(value.get("message_template_id") or "")
    if not template_id or _fit(MessageTemplate.template_id, template_id) != template_id:
        # Cutting an id could land the update on another template: not one of Meta's, so nothing to update.
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
            template.name = _fit(MessageTemplate.name, name)
        if isinstance(language, str):
            template.language = _fit(MessageTemplate.language, language)
        # Status updates name the category (marketing templates are refused to opted-out customers).
        category = value.get("message_template_category")
        if isinstance(category, str) and category:
            template.category = _fit(MessageTemplate.category, category.upper())
        if quality:
            score = value.get("new_quality_score")
            if isinstance(score, str):
                template.quality_score = _fit(MessageTemplate.quality_score, score)
        else:
            event = value.get("event")
            if isinstance(event, str):
                template.status = _fit(MessageTemplate.status, event)
            reason = value.get("reason")
            template.reason = reason if isinstance(reason, str) and reason != "NONE" else None
        template.last_event = value
        templates.append(template)
    await session.flush()
    return templates


async def mark_disconnected(session: AsyncSession, number_id: int, reason: str) -> None:
    """Meta refused the number's token (190): pause its queue until the connection is fixed."""
    number = await session.get(WhatsAppNumber, number_id, with_for_update=True)
    if number is None:
        return
    number.connection_state = "disconnected"
    number.connection_error = reason
    number.connection_checked_at = utcnow()


# --- Managing numbers ----------------------------------------------------------------------------


def to_read(number: WhatsAppNumber, default_rate: int) -> NumberRead:
    """The API view of a number (the token itself is never part of it)."""
    return NumberRead(
        id=number.id,
        user_id=number.user_id,
        phone_number_id=number.phone_number_id,
        waba_id=number.waba_id,
        number=number.number,
        display_name=number.display_name,
        verified_name=number.verified_name,
        status=number.status.value if isinstance(number.status, NumberStatus) else str(number.status),
        connection_state=number.connection_state,
        connection_error=number.connection_error,
        connection_checked_at=number.connection_checked_at,
        quality_rating=number.quality_rating,
        messaging_limit=number.messaging_limit,
        throughput_level=number.throughput_level,
        account_status=number.account_status,
        rate_limit_per_second=number.rate_limit_per_second or default_rate,
        token_last4=number.token_last4,
        created_at=number.created_at,
        updated_at=number.updated_at,
    )


async def get_number(
    session: AsyncSession, workspace_id: int, number_id: int, *, lock: bool = False
) -> WhatsAppNumber:
    """The workspace's number; 404 for a missing, removed or another workspace's one."""
    number = await repository.in_workspace(session, workspace_id, number_id, lock=lock)
    if number is None:
        raise NotFound("number not found")
    return number


async def list_numbers(session: AsyncSession, workspace_id: int) -> list[WhatsAppNumber]:
    """The workspace's numbers."""
    return await repository.list_in_workspace(session, workspace_id)


async def add_number(
    session: AsyncSession, *, workspace_id: int, user_id: int, data: NumberCreate, keyring: Keyring
) -> WhatsAppNumber:
    """Connect a number (status pending until a connection test passes); 409 if it is already connected.

    A number this workspace removed earlier comes back with its history.
    """
    existing = await repository.by_phone_number_id(session, data.phone_number_id, include_deleted=True)
    if existing is not None and (existing.deleted_at is None or existing.workspace_id != workspace_id):
        raise Conflict("this phone number ID is already connected", code="number_exists")
    number = existing or WhatsAppNumber(workspace_id=workspace_id, phone_number_id=data.phone_number_id)
    number.user_id = user_id
    number.waba_id = data.waba_id
    number.display_name = data.display_name
    number.number = digits(data.number)[:32]
    number.rate_limit_per_second = data.rate_limit_per_second
    number.status = NumberStatus.PENDING
    number.connection_state = "unknown"
    number.connection_error = None
    number.deleted_at = None
    set_access_token(number, data.access_token, keyring)
    if existing is None:
        session.add(number)
    await session.flush()
    log.info("number_added", number_id=number.id, workspace_id=workspace_id)
    await _record_token_change(session, number, actor_user_id=user_id, reason="added")
    return number


async def update_number(
    session: AsyncSession,
    number: WhatsAppNumber,
    data: NumberUpdate,
    keyring: Keyring,
    *,
    actor_user_id: int | None = None,
) -> WhatsAppNumber:
    """Change what was given; a new token or WABA puts the number back to `unknown` until tested.

    A new token is recorded in the audit log as changed by `actor_user_id`.
    """
    changes = data.model_fields_set
    if "waba_id" in changes and data.waba_id != number.waba_id:
        number.waba_id = data.waba_id
        number.connection_state = "unknown"
    if "access_token" in changes and data.access_token:
        set_access_token(number, data.access_token, keyring)
        number.connection_state = "unknown"
        number.connection_error = None
        await _record_token_change(session, number, actor_user_id=actor_user_id, reason="updated")
    if "display_name" in changes and data.display_name is not None:
        number.display_name = data.display_name
    if "number" in changes and data.number is not None:
        number.number = digits(data.number)[:32]
    if "rate_limit_per_second" in changes:
        number.rate_limit_per_second = data.rate_limit_per_second
    await session.flush()
    return number


async def delete_number(session: AsyncSession, number: WhatsAppNumber) -> None:
    """Remove the number: hidden, never sent from, its token erased; conversations and messages stay."""
    number.deleted_at = utcnow()
    number.access_token_encrypted = None
    number.token_last4 = None
    number.connection_state = "disconnected"
    number.connection_error = "removed"
    await session.flush()
    log.info("number_removed", number_id=number.id, workspace_id=number.workspace_id)


async def rotate_tokens(sessionmaker: Sessionmaker, keyring: Keyring, *, batch: int = 100) -> tuple[int, int]:
    """Re-encrypt every stored token under the keyring's current key, a batch per commit.

    Interrupting it leaves every token readable (each row is either old- or new-keyed, and the
    keyring still holds both); running it again finishes the rest. Returns (re-encrypted, total).
    """
    rotated = 0
    total = 0
    after = 0
    while True:
        async with unit_of_work(sessionmaker) as session:
            rows = await repository.with_tokens_after(session, after, limit=batch)
            for number in rows:
                total += 1
                assert number.access_token_encrypted is not None
                if keyring.needs_rotation(number.access_token_encrypted):
                    set_access_token(number, access_token(number, keyring) or "", keyring)
                    rotated += 1
        if not rows:
            async with unit_of_work(sessionmaker) as session:
                await audit.record(
                    session,
                    workspace_id=None,
                    actor_user_id=None,
                    action="number.tokens_reencrypted",
                    details={"reencrypted": rotated, "total": total},
                )
            return rotated, total
        after = rows[-1].id
