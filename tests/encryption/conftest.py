"""Content encryption at rest: unique secret words, marked webhook fixtures and raw readers of storage.

Every secret is a fresh word (`secret("txt")` → `txt3f9a…`), so finding one in the database's bytes means
this test stored it in the clear: the test database is shared by the run, and other tests' plaintext can
linger in SQLite's free pages, but never these words.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from layanify.config import Settings
from layanify.crypto import content
from layanify.models import Base
from tests.api.test_token_secrecy import bytes_from_another_process
from tests.conftest import fixture
from tests.media.conftest import media_dir, media_settings  # noqa: F401
from tests.sending.conftest import live, sim, sim_config, simulator  # noqa: F401

# The human text of a message, wherever a type carries it (content of every type, file names).
TEXT_KEYS = frozenset(
    {"body", "caption", "filename", "name", "address", "title", "description", "text", "formatted_name",
     "first_name", "last_name", "headline"}
)  # fmt: skip


def secret(label: str) -> str:
    """A word no other test stores: its presence in raw storage can only come from this test."""
    return f"{label}{uuid.uuid4().hex[:16]}"


def _mark(value: Any, found: list[str]) -> Any:
    if isinstance(value, dict):
        marked = {}
        for key, item in value.items():
            if key in TEXT_KEYS and isinstance(item, str) and item:
                marked[key] = secret(key[:4])
                found.append(marked[key])
            else:
                marked[key] = _mark(item, found)
        return marked
    if isinstance(value, list):
        return [_mark(item, found) for item in value]
    return value


def marked_fixture(name: str) -> tuple[dict[str, Any], list[str]]:
    """The fixture with every human text of its messages replaced by fresh secrets, and those secrets."""
    body = fixture(name)
    found: list[str] = []
    for entry in body["entry"]:
        for change in entry["changes"]:
            messages = change["value"].get("messages") or []
            for message in messages:
                message["id"] = f"wamid.enc-{uuid.uuid4().hex}"
            change["value"]["messages"] = [_mark(m, found) for m in messages]
    return body, found


async def set_encryption(client: httpx.AsyncClient, headers: dict[str, str], on: bool) -> None:
    """The owner turns content encryption on or off for their workspace."""
    response = await client.patch(
        "/api/v1/workspace/encryption", json={"content_encryption": on}, headers=headers
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"content_encryption": on}


async def raw_database(engine: AsyncEngine, settings: Settings) -> bytes:
    """What someone holding the database sees: SQLite's file and write-ahead log as bytes (read by a
    child process), or every PostgreSQL row as text through a connection of its own."""
    if engine.dialect.name == "sqlite":
        path = settings.sqlite_path()
        assert path is not None
        files = [p for p in (path, path.with_name(path.name + "-wal")) if p.exists()]
        return b"".join([await bytes_from_another_process(p) for p in files])
    dsn = settings.database_url.replace("postgresql+asyncpg://", "postgresql://")
    connection = await asyncpg.connect(dsn)
    try:
        dumped: list[str] = []
        for table in Base.metadata.sorted_tables:
            rows = await connection.fetch(f"SELECT t::text AS row FROM {table.name} t")  # noqa: S608
            dumped.extend(row["row"] for row in rows)
    finally:
        await connection.close()
    return "\n".join(dumped).encode()


def assert_not_in(raw: bytes, secrets: list[str]) -> None:
    """None of the secrets appears, as text or as the hex a PostgreSQL bytea dump shows."""
    assert secrets
    leaked = [s for s in secrets if s.encode() in raw or s.encode().hex().encode() in raw]
    assert not leaked, f"stored in the clear: {leaked}"


@pytest.fixture
def live_settings(database_url: str, media_dir: Path) -> Settings:  # noqa: F811 - the imported fixture
    """The product with its workers (downloader included) against the simulator, media under the test."""
    return media_settings(database_url, media_dir, media_max_attempts=1)


@pytest.fixture(autouse=True)
def _restore_content_cipher() -> Iterator[None]:
    """Tests here install other keyrings: the next test starts from what was configured before."""
    before = content.configured()
    yield
    content.configure(before)
