"""The seed's WHATSAPP_* number is registered for the first owner on start, once, with its token encrypted."""

from __future__ import annotations

import httpx
from asgi_lifespan import LifespanManager
from pydantic import SecretStr
from sqlalchemy import select, text

from layanify.accounts import service as accounts
from layanify.app import create_app
from layanify.config import Settings
from layanify.db.session import Sessionmaker, unit_of_work
from layanify.numbers.models import WhatsAppNumber
from tests.conftest import WebhookPoster

TOKEN = "EAAGm0PX4ZCpsBAKZAseedtokenZDZD"


def seed_settings(settings: Settings, token: str = TOKEN) -> Settings:
    return settings.model_copy(
        update={
            "whatsapp_phone_number_id": "106540352242922",
            "whatsapp_business_account_id": "102290129340398",
            "whatsapp_access_token": SecretStr(token),
        }
    )


async def numbers(sessionmaker: Sessionmaker) -> list[WhatsAppNumber]:
    async with unit_of_work(sessionmaker) as session:
        return list((await session.execute(select(WhatsAppNumber))).scalars())


async def start(settings: Settings) -> None:
    async with LifespanManager(create_app(settings, migrate=False)):
        pass


async def test_seed_number_is_registered_for_the_first_owner_once(
    settings: Settings, sessionmaker: Sessionmaker
) -> None:
    await start(seed_settings(settings))
    assert await numbers(sessionmaker) == []  # no owner yet: nothing to attach it to

    async with unit_of_work(sessionmaker) as session:
        user, workspace, _ = await accounts.create_user(
            session, email="pemilik@toko.id", password="kopi-toko-12", workspace_name="Toko"
        )
    for _ in range(2):  # restarts register nothing twice
        await start(seed_settings(settings))
    [number] = await numbers(sessionmaker)
    assert (number.workspace_id, number.user_id) == (workspace.id, user.id)
    assert (number.phone_number_id, number.waba_id, number.status) == (
        "106540352242922",
        "102290129340398",
        "pending",
    )
    assert number.token_last4 == TOKEN[-4:]


async def test_seed_token_is_stored_encrypted_and_follows_changes(
    settings: Settings, sessionmaker: Sessionmaker
) -> None:
    async with unit_of_work(sessionmaker) as session:
        await accounts.create_user(
            session, email="pemilik@toko.id", password="kopi-toko-12", workspace_name="Toko"
        )
    await start(seed_settings(settings))
    async with unit_of_work(sessionmaker) as session:
        stored = (
            await session.execute(text("SELECT access_token_encrypted FROM whatsapp_numbers"))
        ).scalar_one()
    assert TOKEN not in stored
    assert stored.startswith("v1:")

    await start(seed_settings(settings, token="EAAGnewtokenAfterRotation9876"))
    [number] = await numbers(sessionmaker)
    assert number.token_last4 == "9876"
    async with unit_of_work(sessionmaker) as session:
        dump = " ".join(str(v) for v in (await session.execute(text("SELECT * FROM whatsapp_numbers"))).one())
    assert "EAAGnewtokenAfterRotation9876" not in dump


async def test_first_webhook_fills_in_the_numbers_display_number(
    settings: Settings, sessionmaker: Sessionmaker, webhook: WebhookPoster, client: httpx.AsyncClient
) -> None:
    async with unit_of_work(sessionmaker) as session:
        await accounts.create_user(
            session, email="pemilik@toko.id", password="kopi-toko-12", workspace_name="Toko"
        )
    await start(seed_settings(settings))
    await webhook.deliver("text")
    [number] = await numbers(sessionmaker)
    assert number.number == "15550783881"
