"""Queries for connected numbers and templates; flushes, never commits."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from layanify.db.sql import one_of
from layanify.numbers.models import MessageTemplate, WhatsAppNumber


async def by_phone_number_id(
    session: AsyncSession, phone_number_id: str, *, include_deleted: bool = False
) -> WhatsAppNumber | None:
    """The number Meta identifies by this phone number id (webhooks are routed by it)."""
    stmt = select(WhatsAppNumber).where(WhatsAppNumber.phone_number_id == phone_number_id)
    if not include_deleted:
        stmt = stmt.where(WhatsAppNumber.deleted_at.is_(None))
    return (await session.execute(stmt)).scalar_one_or_none()


async def in_workspace(
    session: AsyncSession, workspace_id: int, number_id: int, *, lock: bool = False
) -> WhatsAppNumber | None:
    """The workspace's number (not deleted), optionally locked for update."""
    stmt = select(WhatsAppNumber).where(
        WhatsAppNumber.id == number_id,
        WhatsAppNumber.workspace_id == workspace_id,
        WhatsAppNumber.deleted_at.is_(None),
    )
    if lock:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_in_workspace(session: AsyncSession, workspace_id: int) -> list[WhatsAppNumber]:
    """The workspace's numbers (not deleted), oldest first."""
    stmt = (
        select(WhatsAppNumber)
        .where(WhatsAppNumber.workspace_id == workspace_id, WhatsAppNumber.deleted_at.is_(None))
        .order_by(WhatsAppNumber.id)
    )
    return list((await session.execute(stmt)).scalars())


async def by_ids(session: AsyncSession, number_ids: set[int]) -> dict[int, WhatsAppNumber]:
    """Numbers by id (deleted ones included: the outbox must still settle their messages)."""
    if not number_ids:
        return {}
    stmt = select(WhatsAppNumber).where(one_of(session, WhatsAppNumber.id, sorted(number_ids)))
    return {n.id: n for n in (await session.execute(stmt)).scalars()}


async def all_connectable(session: AsyncSession) -> list[WhatsAppNumber]:
    """Every number with a token that is not deleted (for the periodic connection check)."""
    stmt = select(WhatsAppNumber).where(
        WhatsAppNumber.deleted_at.is_(None), WhatsAppNumber.access_token_encrypted.is_not(None)
    )
    return list((await session.execute(stmt)).scalars())


async def by_waba(session: AsyncSession, waba_id: str) -> list[WhatsAppNumber]:
    """Every connected number of a WhatsApp Business Account."""
    result = await session.execute(
        select(WhatsAppNumber)
        .where(WhatsAppNumber.waba_id == waba_id, WhatsAppNumber.deleted_at.is_(None))
        .order_by(WhatsAppNumber.id)
    )
    return list(result.scalars())


async def template(
    session: AsyncSession, workspace_id: int, waba_id: str, template_id: str
) -> MessageTemplate | None:
    """A WABA's template as known to one workspace."""
    result = await session.execute(
        select(MessageTemplate).where(
            MessageTemplate.workspace_id == workspace_id,
            MessageTemplate.waba_id == waba_id,
            MessageTemplate.template_id == template_id,
        )
    )
    return result.scalar_one_or_none()


async def by_phone_number_ids(session: AsyncSession, phone_number_ids: set[str]) -> dict[str, WhatsAppNumber]:
    """The numbers among these phone number ids, keyed by phone number id (one query for a batch)."""
    if not phone_number_ids:
        return {}
    result = await session.execute(
        select(WhatsAppNumber).where(
            one_of(session, WhatsAppNumber.phone_number_id, sorted(phone_number_ids)),
            WhatsAppNumber.deleted_at.is_(None),
        )
    )
    return {n.phone_number_id: n for n in result.scalars()}


async def with_tokens_after(session: AsyncSession, after_id: int, *, limit: int) -> list[WhatsAppNumber]:
    """Numbers with a stored token and an id above `after_id`, in id order, locked for update."""
    stmt = (
        select(WhatsAppNumber)
        .where(WhatsAppNumber.id > after_id, WhatsAppNumber.access_token_encrypted.is_not(None))
        .order_by(WhatsAppNumber.id)
        .limit(limit)
        .with_for_update()
    )
    return list((await session.execute(stmt)).scalars())
