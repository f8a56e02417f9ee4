"""Plain factory functions that arrange data through the product's own services."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from layanify.accounts import service as accounts
from layanify.accounts.models import Role
from layanify.crypto.keyring import Keyring
from layanify.db.session import Sessionmaker, unit_of_work
from layanify.numbers.models import NumberStatus, WhatsAppNumber
from layanify.numbers.service import set_access_token

if TYPE_CHECKING:
    from tests.conftest import Tenant

FIXTURE_PHONE_NUMBER_ID = "106540352242922"
FIXTURE_WABA_ID = "102290129340398"
FIXTURE_DISPLAY_NUMBER = "15550783881"
TEST_ENCRYPTION_KEYS = "test:" + "A" * 43 + "="
TEST_KEYRING = Keyring.from_setting(TEST_ENCRYPTION_KEYS)


async def create_tenant(
    sessionmaker: Sessionmaker,
    *,
    name: str,
    email: str,
    password: str = "correct horse battery",
    phone_number_id: str = FIXTURE_PHONE_NUMBER_ID,
    waba_id: str = FIXTURE_WABA_ID,
    display_number: str = FIXTURE_DISPLAY_NUMBER,
) -> Tenant:
    """A workspace with an owner, an API key and a connected number."""
    from tests.conftest import Tenant

    async with unit_of_work(sessionmaker) as session:
        user, workspace, _ = await accounts.create_user(
            session, email=email, password=password, workspace_name=name, role=Role.OWNER
        )
        key, _ = await accounts.create_api_key(session, email=email, workspace_name=name)
        number = WhatsAppNumber(
            workspace_id=workspace.id,
            user_id=user.id,
            phone_number_id=phone_number_id,
            waba_id=waba_id,
            number=display_number,
            display_name=name,
            status=NumberStatus.APPROVED,
        )
        set_access_token(number, "EAAG-test-token-" + phone_number_id, TEST_KEYRING)
        session.add(number)
        await session.flush()
        return Tenant(
            workspace_id=workspace.id,
            user_id=user.id,
            email=email,
            password=password,
            api_key=key,
            number_id=number.id,
            phone_number_id=phone_number_id,
        )


async def add_member(
    sessionmaker: Sessionmaker, *, email: str, password: str, workspace: str, role: Role
) -> str:
    """Add a user to a workspace and return an API key for them there."""
    async with unit_of_work(sessionmaker) as session:
        await accounts.create_user(
            session, email=email, password=password, workspace_name=workspace, role=role
        )
        key, _ = await accounts.create_api_key(session, email=email, workspace_name=workspace)
        return key


async def agent_headers(sessionmaker: Sessionmaker, workspace: str = "Toko Budi") -> dict[str, str]:
    """An agent (not an owner) of the workspace: the Authorization header of their API key."""
    key = await add_member(
        sessionmaker,
        email="agen@tokobudi.id",
        password="kopi-toko-12345",
        workspace=workspace,
        role=Role.AGENT,
    )
    return {"Authorization": f"Bearer {key}"}


def text_message(
    wamid: str,
    body: str,
    *,
    wa_id: str = "6281234567890",
    name: str = "Budi Santoso",
    timestamp: int = 1764000000,
    phone_number_id: str = FIXTURE_PHONE_NUMBER_ID,
) -> dict[str, Any]:
    """A minimal inbound text webhook in Meta's shape."""
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": FIXTURE_WABA_ID,
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": FIXTURE_DISPLAY_NUMBER,
                                "phone_number_id": phone_number_id,
                            },
                            "contacts": [{"profile": {"name": name}, "wa_id": wa_id}],
                            "messages": [
                                {
                                    "from": wa_id,
                                    "id": wamid,
                                    "timestamp": str(timestamp),
                                    "type": "text",
                                    "text": {"body": body},
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }


def status_update(
    wamid: str,
    status: str,
    *,
    timestamp: int,
    recipient: str = "6281234567890",
    errors: list[dict[str, Any]] | None = None,
    phone_number_id: str = FIXTURE_PHONE_NUMBER_ID,
) -> dict[str, Any]:
    """A status webhook in Meta's shape."""
    item: dict[str, Any] = {
        "id": wamid,
        "status": status,
        "timestamp": str(timestamp),
        "recipient_id": recipient,
    }
    if errors:
        item["errors"] = errors
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": FIXTURE_WABA_ID,
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": FIXTURE_DISPLAY_NUMBER,
                                "phone_number_id": phone_number_id,
                            },
                            "statuses": [item],
                        },
                    }
                ],
            }
        ],
    }


async def create_outbound_message(
    sessionmaker: Sessionmaker,
    tenant: Tenant,
    *,
    wamid: str | None,
    wa_id: str = "6281234567890",
    text: str = "Terima kasih, pesanan Anda kami proses",
    status: str = "sent",
) -> int:
    """An outbound message as the outbox will have stored it after sending (sending is a later issue)."""
    from layanify.contacts.service import upsert_contact
    from layanify.conversations.service import open_conversation
    from layanify.db.base import utcnow
    from layanify.messaging.models import Message

    async with unit_of_work(sessionmaker) as session:
        contact = await upsert_contact(session, tenant.workspace_id, wa_id, profile_name="Budi Santoso")
        conversation = await open_conversation(session, tenant.workspace_id, tenant.number_id, contact.id)
        message = Message(
            workspace_id=tenant.workspace_id,
            conversation_id=conversation.id,
            wamid=wamid,
            direction="outbound",
            type="text",
            content={"type": "text", "text": text},
            status=status,
            timestamp=utcnow(),
        )
        session.add(message)
        await session.flush()
        return message.id
