"""API shapes for authentication."""

from __future__ import annotations

from pydantic import BaseModel, Field

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
