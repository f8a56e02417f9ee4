"""Every domain's models, imported in one place for Alembic and for create_all in tools."""

from layanify.accounts.models import ApiKey, Membership, User, UserSession, Workspace
from layanify.audit.models import AuditEntry
from layanify.automation.models import AutoReplySent, NumberSettings
from layanify.contacts.models import Contact
from layanify.conversations.models import Conversation
from layanify.db.base import Base
from layanify.media.models import MediaFile
from layanify.messaging.models import ChatAction, Message, MessageStatusEvent
from layanify.numbers.models import MessageTemplate, WhatsAppNumber
from layanify.privacy.models import RetentionPolicy
from layanify.webhooks.models import ReceiptHandover, WebhookEvent

__all__ = [
    "ApiKey",
    "AuditEntry",
    "AutoReplySent",
    "Base",
    "ChatAction",
    "Contact",
    "Conversation",
    "MediaFile",
    "Membership",
    "Message",
    "MessageStatusEvent",
    "MessageTemplate",
    "NumberSettings",
    "ReceiptHandover",
    "RetentionPolicy",
    "User",
    "UserSession",
    "WebhookEvent",
    "WhatsAppNumber",
    "Workspace",
]
