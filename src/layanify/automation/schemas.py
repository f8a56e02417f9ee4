"""A number's behaviour settings (the seed's "Pengaturan WhatsApp"), validated with clear errors."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator
from pydantic.alias_generators import to_camel, to_snake

from layanify.automation.hours import BusinessHours
from layanify.automation.rules import MatchType, pattern_error
from layanify.whatsapp.outbound import TemplateContent, TextContent

ReadReceipts = Literal["never", "on_arrival", "on_open"]
MAX_DELAY_SECONDS = 300
MAX_KEYWORD_RULES = 100
# Meta's typing indicator lasts at most 25 seconds (wire-format.md).
TYPING_MAX_SECONDS = 25
RuleId = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9_-]{1,40}$")]
Keyword = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Reply = Annotated[TextContent | TemplateContent, Field(discriminator="type")]


class _Settings(BaseModel):
    """Both our snake_case and the seed's camelCase names are read; unknown keys are refused."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class CannedReply(_Settings):
    """The greeting or the away message: on or off, and what it says (text, or a template)."""

    enabled: bool = False
    reply: Reply | None = None

    @model_validator(mode="after")
    def _reply_when_enabled(self) -> Self:
        if self.enabled and self.reply is None:
            raise ValueError("give the reply to send (a text, or a template) or switch this message off")
        return self


class KeywordRule(_Settings):
    """Answer messages that match a keyword: exact, contains, or a regular expression (case-insensitive)."""

    id: RuleId = Field(default_factory=lambda: uuid.uuid4().hex[:12])
    name: str = Field(default="", max_length=100)
    match: MatchType = "contains"
    keywords: list[Keyword] = Field(min_length=1, max_length=20)
    reply: Reply
    enabled: bool = True
    # Lower runs first; rules of the same priority run in the order listed.
    priority: int = Field(default=100, ge=0, le=10_000)

    @model_validator(mode="after")
    def _patterns_compile(self) -> Self:
        if self.match == "regex":
            for keyword in self.keywords:
                problem = pattern_error(keyword)
                if problem is not None:
                    raise ValueError(
                        f"keyword rule {self.id!r}: {keyword!r} is not a valid regular expression: {problem}"
                    )
        return self


class AutoReply(_Settings):
    """Automatic answers. At most one per customer message: a keyword rule, else the away message (outside
    business hours), else the greeting (a message that opens a new conversation)."""

    enabled: bool = False
    greeting: CannedReply = Field(default_factory=CannedReply)
    away: CannedReply = Field(default_factory=CannedReply)
    keywords: list[KeywordRule] = Field(default_factory=list, max_length=MAX_KEYWORD_RULES)
    # A rule answers one contact at most once in this many minutes (default: once a day).
    cooldown_minutes: int = Field(default=24 * 60, ge=1, le=30 * 24 * 60)

    @field_validator("keywords")
    @classmethod
    def _unique_ids(cls, rules: list[KeywordRule]) -> list[KeywordRule]:
        seen: set[str] = set()
        for rule in rules:
            if rule.id in seen:
                raise ValueError(f"two keyword rules have the id {rule.id!r}; each needs its own")
            seen.add(rule.id)
        return rules


class BehaviourSettings(_Settings):
    """Everything a number does on its own. New numbers start with these defaults (nothing automatic)."""

    business_hours: BusinessHours = Field(default_factory=BusinessHours)
    auto_reply: AutoReply = Field(default_factory=AutoReply)
    # When customers see blue ticks: never, as soon as a message arrives, or when an agent opens the chat.
    read_receipts: ReadReceipts = "on_open"
    # Show "typing…" before automated replies (Meta's indicator also marks the message read).
    typing_indicator: bool = False
    # Wait this long before an automated reply goes out; an agent answering first cancels it.
    reply_delay_seconds: int = Field(default=0, ge=0, le=MAX_DELAY_SECONDS)

    @model_validator(mode="after")
    def _typing_needs_read(self) -> Self:
        if self.typing_indicator and self.read_receipts == "never":
            raise ValueError(
                "the typing indicator marks the customer's message as read at WhatsApp, so it cannot be on "
                "while read receipts are 'never'; switch one of them"
            )
        return self


# Objects that are replaced whole by a partial update, never merged key by key (a text reply changed to a
# template must not keep the text).
_REPLACED = frozenset({"reply"})


def merged(current: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """`current` (stored, snake_case) with `changes` (either naming) merged in: objects merge key by key,
    anything else (lists too, and replies) replaces."""
    result = dict(current)
    for name, value in changes.items():
        key = to_snake(name)
        if isinstance(value, dict) and isinstance(result.get(key), dict) and key not in _REPLACED:
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result


def camel_dump(settings: BehaviourSettings) -> dict[str, Any]:
    """The settings as the seed's TypeScript clients read them: camelCase keys, except inside replies,
    which keep the message content's own names (so they can be sent back unchanged)."""

    def convert(value: Any, key: str = "") -> Any:
        if isinstance(value, dict) and key not in _REPLACED:
            return {to_camel(k): convert(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [convert(v) for v in value]
        return value

    result: dict[str, Any] = convert(settings.model_dump(mode="json"))
    return result
