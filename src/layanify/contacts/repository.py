"""Queries for contacts; flushes, never commits."""

from __future__ import annotations

from sqlalchemy import ColumnElement, exists, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from layanify.contacts.models import Contact
from layanify.contacts.search import contains_pattern
from layanify.db.sql import insert_ignoring_conflicts, is_postgresql, one_of, table_of


async def by_wa_id(session: AsyncSession, workspace_id: int, wa_id: str) -> Contact | None:
    """The workspace's contact with this wa_id."""
    result = await session.execute(
        select(Contact).where(Contact.workspace_id == workspace_id, Contact.wa_id == wa_id)
    )
    return result.scalar_one_or_none()


async def by_user_id(session: AsyncSession, workspace_id: int, user_id: str) -> Contact | None:
    """The workspace's contact with this business-scoped user id."""
    result = await session.execute(
        select(Contact).where(Contact.workspace_id == workspace_id, Contact.user_id == user_id).limit(1)
    )
    return result.scalar_one_or_none()


async def insert_if_absent(session: AsyncSession, workspace_id: int, wa_id: str, profile_name: str) -> None:
    """Insert the contact unless another worker or an earlier event already did."""
    stmt = insert_ignoring_conflicts(session, Contact).values(
        workspace_id=workspace_id, wa_id=wa_id, profile_name=profile_name
    )
    await session.execute(stmt)


async def page(
    session: AsyncSession,
    workspace_id: int,
    *,
    limit: int,
    after_id: int | None,
    text: str | None = None,
    digits: str | None = None,
    tag: str | None = None,
) -> list[Contact]:
    """Contacts by id; `text` in either name or `digits` in the number, and `tag` (ignoring case)."""
    stmt = select(Contact).where(Contact.workspace_id == workspace_id)
    if after_id is not None:
        stmt = stmt.where(Contact.id > after_id)
    matches: list[ColumnElement[bool]] = []
    if text:
        pattern = contains_pattern(text)
        matches += [
            Contact.profile_name.ilike(pattern, escape="\\"),
            Contact.display_name.ilike(pattern, escape="\\"),
        ]
    if digits:
        matches.append(Contact.wa_id.like(contains_pattern(digits), escape="\\"))
    if matches:
        stmt = stmt.where(or_(*matches))
    if tag:
        stmt = stmt.where(_has_tag(session, tag))
    result = await session.execute(stmt.order_by(Contact.id).limit(limit))
    return list(result.scalars())


def _has_tag(session: AsyncSession, tag: str) -> ColumnElement[bool]:
    """The contact's JSON `tags` list holds `tag`, ignoring case (each database's JSON array function)."""
    if is_postgresql(session):
        elements = func.json_array_elements_text(Contact.tags).table_valued("value").render_derived("tag")
    else:  # json_each names its own columns; SQLite takes no column list after the alias
        elements = func.json_each(Contact.tags).table_valued("value").alias("tag")
    return exists(select(literal(1)).select_from(elements).where(func.lower(elements.c.value) == tag.lower()))


async def insert_many_if_absent(session: AsyncSession, rows: list[dict[str, object]]) -> None:
    """Insert the contacts that do not exist yet, in one statement."""
    if rows:
        connection = await session.connection()
        await connection.execute(insert_ignoring_conflicts(session, table_of(Contact)), rows)


async def by_keys(session: AsyncSession, keys: set[tuple[int, str]]) -> dict[tuple[int, str], Contact]:
    """Contacts by (workspace_id, wa_id), in one query."""
    if not keys:
        return {}
    stmt = (
        select(Contact)
        .where(
            one_of(session, Contact.workspace_id, {w for w, _ in keys}),
            one_of(session, Contact.wa_id, sorted({wa for _, wa in keys})),
        )
        .execution_options(populate_existing=True)
    )
    found = {(c.workspace_id, c.wa_id): c for c in (await session.execute(stmt)).scalars()}
    return {key: contact for key, contact in found.items() if key in keys}


async def in_workspace(session: AsyncSession, workspace_id: int, contact_id: int) -> Contact | None:
    """The workspace's contact with this id."""
    result = await session.execute(
        select(Contact).where(Contact.id == contact_id, Contact.workspace_id == workspace_id)
    )
    return result.scalar_one_or_none()
