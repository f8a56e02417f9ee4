"""Queries for connected numbers and templates; flushes, never commits."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from layanify.db.sql import one_of
from layanify.numbers.models import MessageTemplate, WhatsAppNumber


async def by_phone_number_id(session: AsyncSession, phone_number_id: str) -> WhatsAppNumber | None:
    """The number Meta identifies by this phone number id (webhooks are routed by it)."""
    result = await session.execute(
        select(WhatsAppNumber).where(WhatsAppNumber.phone_number_id == phone_number_id)
    )
    return result.scalar_one_or_none()


async def by_waba(session: AsyncSession, waba_id: str) -> list[WhatsAppNumber]:
    """Every connected number of a WhatsApp Business Account."""
    result = await session.execute(
        select(WhatsAppNumber).where(WhatsAppNumber.waba_id == waba_id).order_by(WhatsAppNumber.id)
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
            one_of(session, WhatsAppNumber.phone_number_id, sorted(phone_number_ids))
        )
    )
    return {n.phone_number_id: n for n in result.scalars()}
