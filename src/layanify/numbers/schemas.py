"""API shapes for connected numbers (REST in snake_case; the seed's tRPC endpoints also read camelCase)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, StringConstraints, field_validator
from pydantic.alias_generators import to_camel

GraphId = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[0-9]{5,32}$")]
# The seed calls the WABA id WHATSAPP_BUSINESS_ACCOUNT_ID; its clients may send businessAccountId.
WABA_ALIASES = AliasChoices("waba_id", "wabaId", "business_account_id", "businessAccountId")
Token = Annotated[str, StringConstraints(strip_whitespace=True, min_length=8, max_length=4096)]


class _Input(BaseModel):
    """Inputs accept both our snake_case and the seed's camelCase names; unknown keys are refused."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class NumberCreate(_Input):
    """Connect a number: Meta's phone number id, its WABA id and an access token."""

    phone_number_id: GraphId
    waba_id: GraphId | None = Field(default=None, validation_alias=WABA_ALIASES)
    access_token: Token
    display_name: str = Field(default="", max_length=200)
    number: str = Field(default="", max_length=32)
    rate_limit_per_second: int | None = Field(default=None, ge=1, le=1000)

    @field_validator("access_token")
    @classmethod
    def _no_spaces(cls, value: str) -> str:
        if any(ch.isspace() for ch in value):
            raise ValueError("an access token has no spaces; paste it again")
        return value


class NumberUpdate(_Input):
    """Change a number; only the given fields change. A new token is tested before it is used."""

    waba_id: GraphId | None = Field(default=None, validation_alias=WABA_ALIASES)
    access_token: Token | None = None
    display_name: str | None = Field(default=None, max_length=200)
    number: str | None = Field(default=None, max_length=32)
    rate_limit_per_second: int | None = Field(default=None, ge=1, le=1000)

    @field_validator("access_token")
    @classmethod
    def _no_spaces(cls, value: str | None) -> str | None:
        if value is not None and any(ch.isspace() for ch in value):
            raise ValueError("an access token has no spaces; paste it again")
        return value


class NumberRead(BaseModel):
    """A connected number as the API shows it. The token is never shown, only its last 4 characters."""

    id: int
    user_id: int | None
    phone_number_id: str
    waba_id: str | None
    number: str
    display_name: str
    verified_name: str | None
    status: str
    connection_state: str
    connection_error: str | None
    connection_checked_at: datetime | None
    quality_rating: str | None
    messaging_limit: str | None
    throughput_level: str | None
    account_status: str | None
    rate_limit_per_second: int
    token_last4: str | None
    created_at: datetime
    updated_at: datetime


class ConnectionCheck(BaseModel):
    """One step of a connection test."""

    name: str
    ok: bool
    message: str


class ConnectionReport(BaseModel):
    """The outcome of testing a number's connection, in words a non-developer can act on."""

    ok: bool
    problem: str | None = Field(description="invalid_token, phone_number_not_found, webhook_not_verified, …")
    diagnosis: str
    checks: list[ConnectionCheck]
    number: NumberRead


def camelize(value: Any) -> Any:
    """The same data with camelCase keys, as the seed's TypeScript clients read them."""
    if isinstance(value, dict):
        return {to_camel(k): camelize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [camelize(v) for v in value]
    return value


def dump(model: BaseModel, *, camel: bool) -> dict[str, Any]:
    """JSON-ready data in the REST (snake_case) or tRPC (camelCase) naming."""
    data = model.model_dump(mode="json")
    return camelize(data) if camel else data
