"""The `layanify` command: users, API keys, and the webhook log."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import pytest
from typer.testing import CliRunner

from layanify.cli.main import app
from layanify.config import get_settings
from layanify.db.engine import database_shown
from layanify.db.session import Sessionmaker, unit_of_work
from tests.conftest import TEST_ENCRYPTION_KEYS, Tenant, WebhookPoster

runner = CliRunner()


@pytest.fixture(autouse=True)
def _cli_uses_the_test_database(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("LAYANIFY_DATABASE_URL", database_url)
    monkeypatch.setenv("LAYANIFY_LOG_LEVEL", "WARNING")
    # The server's keys: the CLI opens what the app sealed (raw webhook bodies, message content).
    monkeypatch.setenv("LAYANIFY_ENCRYPTION_KEYS", TEST_ENCRYPTION_KEYS)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


async def invoke(*args: str) -> tuple[int, str, str]:
    """Run the command in a thread, as from a shell (it starts its own event loop)."""
    result = await asyncio.to_thread(runner.invoke, app, list(args))
    return result.exit_code, result.stdout, result.stderr


async def test_user_and_api_key_from_the_cli_work_against_the_api(client: httpx.AsyncClient) -> None:
    code, out, _ = await invoke(
        "user", "create", "--email", "Sari@Toko.id", "--password", "kopi-toko-12", "--workspace", "Toko Sari"
    )
    assert code == 0, out
    assert "sari@toko.id is owner of workspace 'Toko Sari'" in out
    code, out, err = await invoke("apikey", "create", "--email", "sari@toko.id")
    assert code == 0
    key = out.strip()
    assert key.startswith("lay_")
    assert "cannot be shown again" in err
    me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {key}"})
    assert me.json()["workspaces"] == [
        {"id": me.json()["workspace_id"], "name": "Toko Sari", "role": "owner"}
    ]


async def test_agent_joins_an_existing_workspace() -> None:
    await invoke(
        "user", "create", "--email", "owner@toko.id", "--password", "kopi-toko-12", "--workspace", "Toko"
    )
    code, out, _ = await invoke(
        "user",
        "create",
        "--email",
        "agen@toko.id",
        "--password",
        "kopi-toko-45",
        "--workspace",
        "Toko",
        "--role",
        "agent",
    )
    assert code == 0
    assert "agen@toko.id is agent of workspace 'Toko'" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--email", "not-an-email", "--password", "kopi-toko-12"], "not a valid email"),
        (["--email", "a@toko.id", "--password", "short"], "at least 12 characters"),
    ],
)
async def test_bad_user_input_is_a_clear_error(args: list[str], message: str) -> None:
    code, _, err = await invoke("user", "create", *args)
    assert code == 1
    assert message in err


async def test_apikey_for_unknown_user_is_a_clear_error() -> None:
    code, out, err = await invoke("apikey", "create", "--email", "nobody@toko.id")
    assert code == 1
    assert out == ""
    assert "no user with email nobody@toko.id" in err


async def test_webhooks_list_show_and_replay(webhook: WebhookPoster, tenant: Tenant) -> None:
    await webhook.deliver("text")
    code, out, _ = await invoke("webhooks", "list")
    assert code == 0
    [line] = out.strip().splitlines()
    event_id = int(line.split()[0])
    assert "processed" in line
    assert "fields=messages" in line
    assert line.endswith("1 messages")  # what processing did, as counted in the event's summary

    code, out, _ = await invoke("webhooks", "show", str(event_id))
    shown = json.loads(out)
    assert shown["status"] == "processed"
    assert shown["payload"]["object"] == "whatsapp_business_account"
    assert shown["summary"]["counts"] == {"messages": 1}

    code, out, _ = await invoke("webhooks", "replay", str(event_id))
    assert code == 0
    assert "queued 1 event(s)" in out
    assert "pending" in (await invoke("webhooks", "list", "--status", "pending"))[1]
    await webhook.process()
    shown = json.loads((await invoke("webhooks", "show", str(event_id)))[1])
    assert shown["summary"]["counts"] == {"duplicate_messages": 1}


async def test_webhooks_list_shows_a_webhook_no_worker_has_processed_yet(
    webhook: WebhookPoster, tenant: Tenant
) -> None:
    assert (await webhook.post("text")).status_code == 200  # on SQLite, still in the receipts file
    code, out, _ = await invoke("webhooks", "list")
    assert code == 0
    [line] = out.strip().splitlines()
    assert "pending" in line


async def test_webhooks_list_says_why_an_event_reached_no_inbox(
    webhook: WebhookPoster, tenant: Tenant
) -> None:
    await webhook.deliver("unknown_phone_number_id")
    code, out, _ = await invoke("webhooks", "list")
    assert code == 0
    [line] = out.strip().splitlines()
    assert "processed" in line
    assert line.endswith("1 skipped unknown number (not registered: 999999999999999)")


async def test_an_empty_webhook_log_says_so_and_where_it_looked() -> None:
    code, out, _ = await invoke("webhooks", "list")
    assert code == 0
    assert out.startswith("No webhook events in ")
    assert out.strip() == f"No webhook events in {database_shown(get_settings())}."
    code, out, _ = await invoke("webhooks", "list", "--status", "failed")
    assert out.startswith("No failed webhook events in ")


async def test_an_unknown_state_is_a_clear_error() -> None:
    code, _, err = await invoke("webhooks", "list", "--status", "done")
    assert code == 2
    assert "'done' is not one of 'pending', 'processed', 'failed'" in " ".join(err.replace("│", "").split())


async def test_replaying_a_missing_event_names_it_and_queues_none(
    webhook: WebhookPoster, tenant: Tenant
) -> None:
    await webhook.deliver("text")
    [line] = (await invoke("webhooks", "list"))[1].strip().splitlines()
    event_id = line.split()[0]
    code, _, err = await invoke("webhooks", "replay", event_id, "999999")
    assert code == 1
    assert "webhook event 999999 not found; no event was queued" in err
    pending = (await invoke("webhooks", "list", "--status", "pending"))[1]
    assert pending.startswith("No pending webhook events")


async def test_a_cli_command_in_production_without_its_secrets_refuses_to_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LAYANIFY_ENV", "production")
    monkeypatch.delenv("WHATSAPP_APP_SECRET", raising=False)
    get_settings.cache_clear()
    code, out, err = await invoke("webhooks", "list")
    assert code == 2
    assert out == ""
    assert err.startswith("Refusing to run in production: ")
    assert "WHATSAPP_APP_SECRET must be set" in err


def test_the_database_is_shown_without_its_password() -> None:
    settings = get_settings().model_copy(
        update={"database_url": "postgresql+asyncpg://layanify:kopi-rahasia@db.internal:5432/layanify"}
    )
    assert database_shown(settings) == "postgresql+asyncpg://layanify:***@db.internal:5432/layanify"


async def test_show_unknown_event_is_a_clear_error() -> None:
    code, _, err = await invoke("webhooks", "show", "999999")
    assert code == 1
    assert "webhook event not found" in err


async def test_keys_generate_prints_a_usable_key() -> None:
    from layanify.crypto.keyring import Keyring

    code, out, _ = await invoke("keys", "generate")
    assert code == 0
    keyring = Keyring.from_setting(out.strip())
    assert keyring.decrypt(keyring.encrypt("EAAG-token")) == "EAAG-token"


async def test_event_ids_beyond_64_bits_are_refused_before_the_database() -> None:
    code, _, err = await invoke("webhooks", "show", "99999999999999999999")
    assert code == 2
    assert "Invalid value for 'event_id'" in err


async def test_keys_rotate_reencrypts_every_token_and_can_run_again(
    tenant: Tenant, sessionmaker: Sessionmaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    from layanify.crypto.keyring import Keyring, generate_key
    from layanify.numbers.models import WhatsAppNumber
    from layanify.numbers.service import access_token
    from tests.factories import TEST_ENCRYPTION_KEYS

    new_key = generate_key("2026b")
    # The new key goes first (it encrypts); the old one stays after it until rotation has finished.
    monkeypatch.setenv("LAYANIFY_ENCRYPTION_KEYS", f"{new_key},{TEST_ENCRYPTION_KEYS}")
    get_settings.cache_clear()
    code, out, err = await invoke("keys", "rotate")
    assert code == 0, out + err
    assert "re-encrypted 1 of 1" in out
    async with unit_of_work(sessionmaker) as session:
        number = await session.get(WhatsAppNumber, tenant.number_id)
        assert number is not None
        assert number.access_token_encrypted is not None
        assert number.access_token_encrypted.split(":")[1] == "2026b"
        # Readable with the new key alone: the old key can now be removed.
        assert (
            access_token(number, Keyring.from_setting(new_key)) == "EAAG-test-token-" + tenant.phone_number_id
        )
    code, out, _ = await invoke("keys", "rotate")
    assert "re-encrypted 0 of 1" in out
