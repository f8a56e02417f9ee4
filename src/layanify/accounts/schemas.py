"""API shapes for authentication."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from layanify.accounts.models import Scope
from layanify.pagination import MAX_ID


class LoginRequest(BaseModel):
    """Email and password."""

    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)


class SwitchWorkspaceRequest(BaseModel):
    """The workspace to act in."""

    workspace_id: int = Field(ge=1, le=MAX_ID)


class WorkspaceRead(BaseModel):
    """A workspace the user belongs to, with their role."""

    id: int
    name: str
    role: str


class MeRead(BaseModel):
    """The logged-in user and the workspace they act in."""

    user_id: int
    email: str
    name: str
    workspace_id: int
    role: str
    workspaces: list[WorkspaceRead]
    # With a login session: send it as `X-CSRF-Token` on requests that change something.
    csrf_token: str | None = None


class PasswordChange(BaseModel):
    """The current password, and the new one (which must pass the password policy)."""

    current_password: str = Field(max_length=1024)
    new_password: str = Field(max_length=1024)


class ApiKeyCreate(BaseModel):
    """A label and the scopes of a new key (default `admin`: everything the user may do)."""

    name: str = Field(default="", max_length=200)
    scopes: list[Scope] = Field(default_factory=lambda: [Scope.ADMIN], min_length=1, max_length=3)


class ApiKeyRead(BaseModel):
    """An API key as listed: never the key itself, only its first characters."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    prefix: str
    name: str
    user_id: int
    scopes: list[str]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @field_validator("scopes", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return value.split() if isinstance(value, str) else value


class ApiKeyCreated(ApiKeyRead):
    """A new API key: `key` is shown this once and cannot be shown again."""

    key: str
