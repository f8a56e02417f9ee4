"""Retention: an owner chooses how long data is kept; the purge deletes only what is older, in batches."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import time_machine
from sqlalchemy import func, select
from typer.testing import CliRunner

from layanify.audit.models import AuditEntry
from layanify.cli.main import app as cli
from layanify.config import get_settings
from layanify.conversations.models import Conversation
from layanify.db.session import Sessionmaker, unit_of_work
from layanify.media.models import MediaFile
from layanify.media.storage import LocalStorage
from layanify.messaging.models import Message, MessageStatusEvent
from layanify.privacy import retention
from layanify.privacy.retention import Purge
from layanify.webhooks.models import WebhookEvent
from tests import factories
from tests.conftest import RecordingLog, Tenant, WebhookPoster, database_locked
from tests.privacy.conftest import BUDI, SITI, store_file

OLD = datetime(2025, 10, 1, 9, 0, tzinfo=UTC)
NOW = datetime(2025, 11, 24, 9, 0, tzinfo=UTC)  # 54 days later


@pytest.fixture
def clock() -> Iterator[Any]:
    with time_machine.travel(OLD, tick=False) as traveller:
        yield traveller


def says(wamid: str, body: str, *, wa_id: str = BUDI, phone_number_id: str | None = None) -> dict[str, Any]:
    at = int(datetime.now(UTC).timestamp())
    if phone_number_id is None:
        return factories.text_message(wamid, body, wa_id=wa_id, timestamp=at)
    return factories.text_message(wamid, body, wa_id=wa_id, timestamp=at, phone_number_id=phone_number_id)


async def count(sessionmaker: Sessionmaker, model: Any, *where: Any) -> int:
    async with unit_of_work(sessionmaker) as session:
        return int(
            (await session.execute(select(func.count()).select_from(model).where(*where))).scalar_one()
        )


async def put_policy(client: httpx.AsyncClient, tenant: Tenant, **days: int | None) -> httpx.Response:
    return await client.put("/api/v1/retention", json=days, headers=tenant.headers)


async def test_by_default_everything_is_kept(
    client: httpx.AsyncClient,
    tenant: Tenant,
    webhook: WebhookPoster,
    sessionmaker: Sessionmaker,
    media_dir: Path,
) -> None:
    await webhook.deliver(says("wamid.keep", "Halo"))
    policy = (await client.get("/api/v1/retention", headers=tenant.headers)).json()
    assert policy == {
        "messages_days": None,
        "media_days": None,
        "webhook_events_days": None,
        "last_purge_at": None,
        "last_purge_counts": None,
    }
    with time_machine.travel(datetime.now(UTC) + timedelta(days=3650)):
        assert await Purge(sessionmaker, LocalStorage(media_dir)).all_workspaces() == {}
    assert await count(sessionmaker, Message) == 1


async def test_the_purge_deletes_only_what_is_older_in_batches_and_reports_it(
    client: httpx.AsyncClient,
    tenant: Tenant,
    other_tenant: Tenant,
    webhook: WebhookPoster,
    sessionmaker: Sessionmaker,
    media_dir: Path,
    clock: Any,
) -> None:
    # Old: five messages and a status (six events) in our workspace, one in the other; an old file.
    await webhook.deliver(*[says(f"wamid.old-{i}", f"Pesan lama {i}") for i in range(4)])
    await webhook.deliver(says("wamid.old-siti", "Halo", wa_id=SITI))
    await webhook.deliver(factories.status_update("wamid.never-ours", "sent", timestamp=int(OLD.timestamp())))
    await webhook.deliver(says("wamid.other-old", "Lama", phone_number_id=other_tenant.phone_number_id))
    storage = LocalStorage(media_dir)
    old_file = await store_file(sessionmaker, storage, tenant, b"old-bytes", meta_media_id="old-upload")
    # New: 54 days later.
    clock.move_to(NOW)
    await webhook.deliver(says("wamid.new", "Pesan baru"))
    new_file = await store_file(sessionmaker, storage, tenant, b"new-bytes", meta_media_id="new-upload")
    response = await put_policy(client, tenant, messages_days=30, media_days=30, webhook_events_days=30)
    assert response.status_code == 200, response.text

    purge = Purge(sessionmaker, storage, batch_size=2, pause_seconds=0)
    counts = await purge.workspace(tenant.workspace_id)

    assert counts == {"messages": 5, "media": 1, "webhook_events": 6}
    assert purge.batches == 3 + 1 + 3  # messages 2+2+1, the file, events 2+2+2
    async with unit_of_work(sessionmaker) as session:
        left = (await session.execute(select(Message.wamid).order_by(Message.id))).scalars().all()
        previews = (await session.execute(select(Conversation.last_message_preview))).scalars().all()
        files = {f.storage_key: f for f in (await session.execute(select(MediaFile))).scalars()}
    assert left == ["wamid.other-old", "wamid.new"]  # the other workspace keeps its old message
    assert sorted(previews) == ["", "Lama", "Pesan baru"]  # Siti's old preview is gone
    assert not (media_dir / old_file).exists()
    assert await LocalStorage(media_dir).read(new_file) == b"new-bytes"
    removed = next(f for f in files.values() if f.meta_media_id == "old-upload")
    assert removed.status == "failed"
    assert removed.storage_key is None
    assert "retention policy" in (removed.last_error or "")
    assert await count(sessionmaker, MessageStatusEvent) == 0  # the old unmatched status went too
    assert await count(sessionmaker, WebhookEvent, WebhookEvent.workspace_id == tenant.workspace_id) == 1
    assert (
        await count(sessionmaker, WebhookEvent, WebhookEvent.workspace_id == other_tenant.workspace_id) == 1
    )

    policy = (await client.get("/api/v1/retention", headers=tenant.headers)).json()
    assert policy["last_purge_counts"] == counts
    assert datetime.fromisoformat(policy["last_purge_at"]) == NOW
    async with unit_of_work(sessionmaker) as session:
        entry = (
            await session.execute(select(AuditEntry).where(AuditEntry.action == "retention.purged"))
        ).scalar_one()
    assert entry.workspace_id == tenant.workspace_id
    assert entry.details == counts
    # A second run finds nothing more.
    assert await Purge(sessionmaker, storage).workspace(tenant.workspace_id) == dict.fromkeys(counts, 0)


async def test_messages_the_outbox_still_holds_are_not_purged(
    client: httpx.AsyncClient, tenant: Tenant, sessionmaker: Sessionmaker, media_dir: Path, clock: Any
) -> None:
    await factories.create_outbound_message(sessionmaker, tenant, wamid=None, status="queued")
    await factories.create_outbound_message(sessionmaker, tenant, wamid="wamid.sent-long-ago")
    clock.move_to(NOW)
    await put_policy(client, tenant, messages_days=1)
    counts = await Purge(sessionmaker, LocalStorage(media_dir)).workspace(tenant.workspace_id)
    assert counts["messages"] == 1
    assert await count(sessionmaker, Message, Message.status == "queued") == 1


async def test_only_owners_set_the_policy_and_values_are_checked(
    client: httpx.AsyncClient, tenant: Tenant, sessionmaker: Sessionmaker
) -> None:
    assert (await put_policy(client, tenant, messages_days=0)).status_code == 422
    assert (await put_policy(client, tenant, media_days=36501)).status_code == 422
    saved = await put_policy(client, tenant, messages_days=365, media_days=None)
    assert saved.json()["messages_days"] == 365
    assert saved.json()["media_days"] is None
    agent = await factories.agent_headers(sessionmaker)
    assert (await client.put("/api/v1/retention", json={}, headers=agent)).status_code == 403
    assert (await client.get("/api/v1/retention", headers=agent)).json()["messages_days"] == 365


async def test_the_cli_purges_every_workspace(
    client: httpx.AsyncClient,
    tenant: Tenant,
    webhook: WebhookPoster,
    sessionmaker: Sessionmaker,
    database_url: str,
    media_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    clock: Any,
) -> None:
    await webhook.deliver(says("wamid.cli-old", "Lama"))
    clock.move_to(NOW)
    await put_policy(client, tenant, messages_days=30)
    monkeypatch.setenv("LAYANIFY_DATABASE_URL", database_url)
    monkeypatch.setenv("LAYANIFY_MEDIA_DIR", str(media_dir))
    monkeypatch.setenv("LAYANIFY_LOG_LEVEL", "WARNING")
    monkeypatch.setenv("LAYANIFY_ENCRYPTION_KEYS", factories.TEST_ENCRYPTION_KEYS)  # the app's own keys
    get_settings.cache_clear()
    try:
        result = await asyncio.to_thread(CliRunner().invoke, cli, ["privacy", "purge"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert f"workspace {tenant.workspace_id}: 1 messages, 0 media, 0 webhook events" in result.stdout
    assert await count(sessionmaker, Message) == 0


@pytest.mark.parametrize(("failure", "level"), [("busy", "warning"), ("bug", "exception")])
async def test_a_workspace_whose_purge_fails_is_logged_by_kind_and_the_others_are_purged(
    client: httpx.AsyncClient,
    tenant: Tenant,
    other_tenant: Tenant,
    sessionmaker: Sessionmaker,
    media_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    failure: str,
    level: str,
) -> None:
    """A database locked past the busy timeout is one warning line (the next run tries again); a bug is
    logged with its traceback. Either way the other workspaces are purged."""
    for owner in (tenant, other_tenant):
        assert (await put_policy(client, owner, messages_days=30)).status_code == 200
    purge = Purge(sessionmaker, LocalStorage(media_dir))
    purge_one = purge.workspace

    async def failing_for_ours(workspace_id: int, *, now: datetime | None = None) -> dict[str, int]:
        if workspace_id == tenant.workspace_id:
            raise database_locked() if failure == "busy" else KeyError("bug")
        return await purge_one(workspace_id, now=now)

    recorded = RecordingLog()
    monkeypatch.setattr(retention, "log", recorded)
    monkeypatch.setattr(purge, "workspace", failing_for_ours)
    results = await purge.all_workspaces()

    assert list(results) == [other_tenant.workspace_id]
    assert ("exception" if level == "warning" else "warning", "retention_purge_failed") not in recorded.calls
    assert recorded.calls.count((level, "retention_purge_failed")) == 1
