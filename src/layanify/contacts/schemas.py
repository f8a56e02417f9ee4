"""API shapes for contacts."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, StrictStr, model_validator


class ContactRead(BaseModel):
    """A customer as the API shows them (in lists and inside conversations)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    wa_id: str
    # The name agents see: `display_name` when one was set, else the WhatsApp profile name.
    name: str
    profile_name: str
    display_name: str | None
    tags: list[str]
    user_id: str | None
    marketing_opt_out: bool
    created_at: datetime
    updated_at: datetime


class ContactDetail(ContactRead):
    """One customer with the agents' notes."""

    notes: str | None


class ContactUpdate(BaseModel):
    """What agents change on a contact; omitted fields stay as they are.

    Limits are checked by the service (the web UI calls it directly), so both answer the same 422s.
    """

    model_config = ConfigDict(extra="forbid")

    # null or "" removes the override and shows the WhatsApp profile name again.
    display_name: StrictStr | None = None
    # null or "" removes the notes; at most 5,000 characters.
    notes: StrictStr | None = None
    # At most 20 tags of 1–40 characters; trimmed, duplicates (ignoring case) dropped; [] removes all.
    tags: list[StrictStr] | None = None

    @model_validator(mode="after")
    def _something_and_tags_not_null(self) -> ContactUpdate:
        if not self.model_fields_set:
            raise ValueError("nothing to change: give display_name, notes or tags")
        if "tags" in self.model_fields_set and self.tags is None:
            raise ValueError("tags cannot be null; use [] to remove every tag")
        return self
