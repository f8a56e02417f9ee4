"""Workspaces, their users (owner and agents), their login sessions and API keys."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Enum, ForeignKey, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from layanify.crypto.content import new_workspaces_encrypt
from layanify.db.base import Base, BigId, TimestampMixin, UTCDateTime, utcnow


class Role(enum.StrEnum):
    """What a user may do in a workspace."""

    OWNER = "owner"
    AGENT = "agent"


class Workspace(TimestampMixin, Base):
    """A CRM team: its users, numbers, contacts and conversations."""

    __tablename__ = "workspaces"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    timezone: Mapped[str] = mapped_column(String(64), nullable=False, default="Asia/Jakarta")
    # Message text, captions, previews and media files encrypted at rest (docs/security.md); a new
    # workspace takes LAYANIFY_CONTENT_ENCRYPTION's choice, an owner can change it.
    content_encryption: Mapped[bool] = mapped_column(
        nullable=False, default=new_workspaces_encrypt, server_default=false()
    )


class User(TimestampMixin, Base):
    """A person who logs in; belongs to one or more workspaces through memberships."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), nullable=False, unique=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    memberships: Mapped[list[Membership]] = relationship(back_populates="user", lazy="raise")


class Membership(TimestampMixin, Base):
    """A user's role in one workspace."""

    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("workspace_id", "user_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    role: Mapped[Role] = mapped_column(
        Enum(Role, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e]),
        nullable=False,
    )

    user: Mapped[User] = relationship(back_populates="memberships", lazy="raise")
    workspace: Mapped[Workspace] = relationship(lazy="raise")


class Scope(enum.StrEnum):
    """What an API key may do, each including the ones before it (the key's user's role still applies)."""

    READ = "read"  # GET only
    SEND = "send"  # read, queue messages and media, open / mark read / show typing in conversations
    ADMIN = "admin"  # everything the key's user may do


class ApiKey(TimestampMixin, Base):
    """A bearer key for the API; only its SHA-256 digest is stored, the key is shown once."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False, index=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    prefix: Mapped[str] = mapped_column(String(16), nullable=False)
    key_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Space-separated Scope values; keys made before scopes existed are `admin` (what they could do).
    scopes: Mapped[str] = mapped_column(String(64), nullable=False, default="admin", server_default="admin")


class UserSession(Base):
    """A login session of the web UI or of a cookie API client, kept on the server.

    The cookie holds a random key (signed); only its SHA-256 digest is stored. A session ends when it
    has been idle too long, when it reaches its maximum age, on logout, or when the password changes.
    """

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False)
    key_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
