"""Status webhooks: monotonic by rank, Meta's timestamps, history, failures, duplicates, late matching."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from layanify.db.session import Sessionmaker, unit_of_work
from layanify.messaging import repository as messages_repository
from layanify.messaging import service as messaging
from tests import factories
from tests.conftest import Tenant, WebhookPoster, fixture, statements

WAMID = "wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABEYEjQ1RkY2QjlDMzM3QUQ4REM4NwA="


async def get_message(client: httpx.AsyncClient, tenant: Tenant, message_id: int) -> dict[str, Any]:
    response = await client.get(f"/api/v1/messages/{message_id}", headers=tenant.headers)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def at(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


async def test_sent_delivered_read_in_order_ends_read_with_metas_times(
    webhook: WebhookPoster, sessionmaker: Sessionmaker, tenant: Tenant
) -> None:
    message_id = await factories.create_outbound_message(sessionmaker, tenant, wamid=WAMID)
    await webhook.deliver("status_sent", "status_delivered", "status_read")
    message = await get_message(webhook.client, tenant, message_id)
    assert message["status"] == "read"
    assert message["status_times"]["sent"] == at(1764000100)
    assert message["status_times"]["delivered"] == at(1764000110)
    assert message["status_times"]["read"] == at(1764000120)
    assert [h["status"] for h in message["status_history"]] == ["sent", "delivered", "read"]
    assert message["error"] is None


async def test_out_of_order_statuses_end_at_read_and_keep_every_report(
    webhook: WebhookPoster, sessionmaker: Sessionmaker, tenant: Tenant
) -> None:
    message_id = await factories.create_outbound_message(sessionmaker, tenant, wamid=WAMID)
    await webhook.deliver("status_read", "status_delivered", "status_sent")
    message = await get_message(webhook.client, tenant, message_id)
    assert message["status"] == "read"
    # Late reports change nothing but are kept, ordered by Meta's time.
    assert [h["status"] for h in message["status_history"]] == ["sent", "delivered", "read"]
    assert message["status_times"]["delivered"] == at(1764000110)


async def test_reports_timed_in_the_same_second_are_listed_by_rank(
    webhook: WebhookPoster, sessionmaker: Sessionmaker, tenant: Tenant
) -> None:
    # Meta's timestamps are whole seconds: a quick reader's sent, delivered and read can share one.
    message_id = await factories.create_outbound_message(sessionmaker, tenant, wamid=WAMID)
    reports = []
    for name in ("status_read", "status_delivered", "status_sent"):
        report = fixture(name)
        report["entry"][0]["changes"][0]["value"]["statuses"][0]["timestamp"] = "1764000100"
        reports.append(report)
    await webhook.deliver(*reports)
    message = await get_message(webhook.client, tenant, message_id)
    assert message["status"] == "read"
    assert [h["status"] for h in message["status_history"]] == ["sent", "delivered", "read"]


async def test_read_skipping_delivered_is_read(
    webhook: WebhookPoster, sessionmaker: Sessionmaker, tenant: Tenant
) -> None:
    message_id = await factories.create_outbound_message(sessionmaker, tenant, wamid=WAMID)
    await webhook.deliver("status_read")
    message = await get_message(webhook.client, tenant, message_id)
    assert message["status"] == "read"
    assert message["status_times"]["delivered"] is None


async def test_duplicate_status_changes_nothing(
    webhook: WebhookPoster, sessionmaker: Sessionmaker, tenant: Tenant
) -> None:
    message_id = await factories.create_outbound_message(sessionmaker, tenant, wamid=WAMID)
    await webhook.deliver("status_delivered", "status_delivered", "status_delivered")
    message = await get_message(webhook.client, tenant, message_id)
    assert message["status"] == "delivered"
    assert [h["status"] for h in message["status_history"]] == ["delivered"]
    events = (await webhook.client.get("/api/v1/webhooks/events", headers=tenant.headers)).json()["data"]
    assert [e["summary"]["counts"] for e in events] == [
        {"statuses_duplicate": 1},
        {"statuses_duplicate": 1},
        {"statuses_applied": 1},
    ]


async def test_failed_status_records_code_title_and_details(
    webhook: WebhookPoster, sessionmaker: Sessionmaker, tenant: Tenant
) -> None:
    message_id = await factories.create_outbound_message(sessionmaker, tenant, wamid=WAMID)
    await webhook.deliver("status_sent", "status_failed")
    message = await get_message(webhook.client, tenant, message_id)
    error = fixture("status_failed")["entry"][0]["changes"][0]["value"]["statuses"][0]["errors"][0]
    assert message["status"] == "failed"
    assert message["error"]["code"] == 131026
    assert message["error"]["title"] == error["title"]
    assert message["error"]["details"] == error["error_data"]["details"]
    assert message["status_times"]["failed"] is not None


async def test_failed_after_read_does_not_undo_read(
    webhook: WebhookPoster, sessionmaker: Sessionmaker, tenant: Tenant
) -> None:
    message_id = await factories.create_outbound_message(sessionmaker, tenant, wamid=WAMID)
    await webhook.deliver("status_read", "status_failed")
    message = await get_message(webhook.client, tenant, message_id)
    assert message["status"] == "read"
    assert message["error"] is None
    assert {h["status"] for h in message["status_history"]} == {"read", "failed"}


async def test_played_follows_read_for_voice_notes(
    webhook: WebhookPoster, sessionmaker: Sessionmaker, tenant: Tenant
) -> None:
    message_id = await factories.create_outbound_message(sessionmaker, tenant, wamid=WAMID)
    await webhook.deliver("status_played", "status_read")
    message = await get_message(webhook.client, tenant, message_id)
    assert message["status"] == "played"
    assert message["status_times"]["read"] is not None


async def test_status_for_unknown_wamid_is_kept_and_matched_later(
    webhook: WebhookPoster, sessionmaker: Sessionmaker, tenant: Tenant
) -> None:
    await webhook.deliver("status_sent", "status_delivered")
    events = (await webhook.client.get("/api/v1/webhooks/events", headers=tenant.headers)).json()["data"]
    assert {e["status"] for e in events} == {"processed"}
    assert all(e["summary"]["counts"] == {"statuses_unmatched": 1} for e in events)
    # The send's response arrives late: the message learns its wamid and picks up what was reported.
    message_id = await factories.create_outbound_message(sessionmaker, tenant, wamid=WAMID, status="sending")
    async with unit_of_work(sessionmaker) as session:
        message = await messages_repository.in_workspace(session, tenant.workspace_id, message_id)
        assert message is not None
        assert await messaging.match_pending_statuses(session, message, tenant.number_id) == 2
    message_read = await get_message(webhook.client, tenant, message_id)
    assert message_read["status"] == "delivered"
    assert [h["status"] for h in message_read["status_history"]] == ["sent", "delivered"]


async def test_statuses_of_another_workspaces_wamid_do_not_touch_it(
    webhook: WebhookPoster, sessionmaker: Sessionmaker, tenant: Tenant, other_tenant: Tenant
) -> None:
    theirs = await factories.create_outbound_message(
        sessionmaker, other_tenant, wamid="wamid.other-workspace"
    )
    # Our number reports a status for their wamid (a forged or misrouted report): it must not apply.
    await webhook.deliver(factories.status_update("wamid.other-workspace", "read", timestamp=1764000500))
    message = await get_message(webhook.client, other_tenant, theirs)
    assert message["status"] == "sent"
    # …nor shadow the real report from their own number.
    await webhook.deliver(
        factories.status_update(
            "wamid.other-workspace", "read", timestamp=1764000600, phone_number_id="222222222222222"
        )
    )
    message = await get_message(webhook.client, other_tenant, theirs)
    assert message["status"] == "read"


async def test_statuses_in_one_batch_apply_to_their_own_messages(
    webhook: WebhookPoster, sessionmaker: Sessionmaker, tenant: Tenant
) -> None:
    first = await factories.create_outbound_message(sessionmaker, tenant, wamid="wamid.A")
    second = await factories.create_outbound_message(
        sessionmaker, tenant, wamid="wamid.B", wa_id="6289876543210"
    )
    body = factories.status_update("wamid.A", "delivered", timestamp=1764000200)
    value = body["entry"][0]["changes"][0]["value"]
    value["statuses"].append(
        {"id": "wamid.B", "status": "read", "timestamp": "1764000201", "recipient_id": "6289876543210"}
    )
    await webhook.deliver(body)
    assert (await get_message(webhook.client, tenant, first))["status"] == "delivered"
    assert (await get_message(webhook.client, tenant, second))["status"] == "read"


async def test_a_batch_of_different_reports_updates_its_messages_in_one_statement(
    webhook: WebhookPoster, sessionmaker: Sessionmaker, engine: AsyncEngine, tenant: Tenant
) -> None:
    """Sent, delivered, read and failed reports change different columns of their messages; a batch
    writes them together, and each message still ends with its own status, times and error."""
    reports = [
        "status_delivered",
        "status_read",
        "status_failed",
        "status_sent",
        "status_delivered",
        "status_read",
    ]
    ids = []
    for i, name in enumerate(reports):
        wamid = f"wamid.batch-report-{i}"
        ids.append(
            await factories.create_outbound_message(
                sessionmaker, tenant, wamid=wamid, wa_id=f"62813100{i:04d}"
            )
        )
        report = fixture(name)
        report["entry"][0]["changes"][0]["value"]["statuses"][0]["id"] = wamid
        assert (await webhook.post(report)).status_code == 200

    with statements(engine, "UPDATE messages") as updates:
        await webhook.process()

    assert len(updates) == 1
    messages = [await get_message(webhook.client, tenant, message_id) for message_id in ids]
    assert [m["status"] for m in messages] == ["delivered", "read", "failed", "sent", "delivered", "read"]
    assert messages[0]["status_times"]["delivered"] == at(1764000110)
    assert messages[1]["status_times"]["read"] == at(1764000120)
    assert messages[3]["status_times"]["sent"] == at(1764000100)
    assert messages[2]["error"]["code"] == 131026
    assert [m["error"] for i, m in enumerate(messages) if i != 2] == [None] * 5
