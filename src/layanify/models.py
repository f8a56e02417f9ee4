"""Every domain's models, imported in one place for Alembic and for create_all in tools."""

from layanify.accounts.models import ApiKey, Membership, User, Workspace
from layanify.contacts.models import Contact
from layanify.conversations.models import Conversation
from layanify.db.base import Base
from layanify.media.models import MediaFile
from layanify.messaging.models import Message, MessageStatusEvent
from layanify.numbers.models import MessageTemplate, WhatsAppNumber
from layanify.webhooks.models import WebhookEvent

__all__ = [
    "ApiKey",
    "Base",
    "Contact",
    "Conversation",
    "MediaFile",
    "Membership",
    "Message",
    "MessageStatusEvent",
    "MessageTemplate",
    "User",
    "WebhookEvent",
    "WhatsAppNumber",
    "Workspace",
]
