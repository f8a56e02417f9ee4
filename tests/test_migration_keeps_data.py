"""Upgrading an existing SQLite database keeps every row (SQLite rebuilds tables to change them)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData, Table, func, insert, select
from sqlalchemy.engine import Connection

from layanify.db.engine import create_engine
from layanify.db.migrate import upgrade
from tests.conftest import make_settings

AT = datetime(2026, 1, 1, tzinfo=UTC)
ROWS: list[tuple[str, dict[str, Any]]] = [
    ("workspaces", {"id": 1, "name": "Toko", "timezone": "Asia/Jakarta"}),
    (
        "whatsapp_numbers",
        {"id": 1, "workspace_id": 1, "phone_number_id": "106540352242922", "number": "", "display_name": "",
         "status": "approved", "connection_state": "connected"},
    ),
    (
        "contacts",
        {"id": 1, "workspace_id": 1, "wa_id": "628123", "profile_name": "Budi", "marketing_opt_out": 0},
    ),
    (
        "conversations",
        {"id": 1, "workspace_id": 1, "number_id": 1, "contact_id": 1, "status": "open",
         "last_message_preview": "Halo", "unread_count": 1},
    ),
    (
        "messages",
        {"id": 1, "workspace_id": 1, "conversation_id": 1, "wamid": "wamid.1", "direction": "inbound",
         "type": "text", "content": json.dumps({"type": "text", "text": "Halo"}), "status": "received",
         "timestamp": AT, "is_automated": 0, "attempts": 0},
    ),
]  # fmt: skip


def _seed(connection: Connection) -> None:
    metadata = MetaData()
    for name, values in ROWS:
        table = Table(name, metadata, autoload_with=connection)
        stamps = {c: AT for c in ("created_at", "updated_at") if c in table.c}
        connection.execute(insert(table).values({k: v for k, v in values.items() if k in table.c} | stamps))


def _counts(connection: Connection) -> list[int]:
    metadata = MetaData()
    return [
        connection.execute(
            select(func.count()).select_from(Table(n, metadata, autoload_with=connection))
        ).scalar_one()
        for n, _ in ROWS
    ]


@pytest.mark.parametrize("start", ["0002", "0003", "0004"])
async def test_upgrading_sqlite_keeps_conversations_and_messages(tmp_path: Path, start: str) -> None:
    engine = create_engine(make_settings(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"))
    try:
        await upgrade(engine, start)
        async with engine.begin() as connection:
            await connection.run_sync(_seed)
        await upgrade(engine)
        async with engine.connect() as connection:
            assert await connection.run_sync(_counts) == [1, 1, 1, 1, 1]
            foreign_keys = (await connection.exec_driver_sql("PRAGMA foreign_keys")).scalar_one()
        assert foreign_keys == 1, "foreign keys are enforced again after the migration"
    finally:
        await engine.dispose()
