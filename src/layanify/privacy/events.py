"""Which parts of a raw webhook body concern one contact: what an export shows and an erasure removes.

A body is `{"entry": [{"changes": [{"field", "value"}]}]}`. Only changes of the workspace's own numbers
(`value.metadata.phone_number_id`) are looked at; another workspace's changes are never touched, even
when they name the same customer. In those changes, an item concerns the contact when it is:

- a `contacts[]` or `user_preferences[]` entry with its `wa_id` (or business-scoped `user_id`);
- a `messages[]` entry written by it (`from` / `from_user_id`) or with one of its messages' wamids;
- a `statuses[]` entry sent to it (`recipient_id` / `recipient_user_id`) or about one of its wamids.

`split` returns the contact's part (for the export) and the rest (what an erasure keeps). A change left
with none of those lists' items is dropped, then an entry with no change, and a body with no entry is
deleted whole. Any other occurrence of the contact's ids left in the workspace's changes (a system
message's text, an error's details) is replaced with `[erased]`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ERASED = "[erased]"
# The lists of a `messages`-like value whose items each concern one customer.
ITEM_LISTS = ("contacts", "messages", "statuses", "user_preferences")


@dataclass(frozen=True)
class Subject:
    """The contact as a webhook body names it, and the numbers whose changes may be looked at."""

    identities: frozenset[str]  # wa_id, and the business-scoped user id when known
    wamids: frozenset[str]
    phone_number_ids: frozenset[str]


Json = dict[str, Any]


def _about(subject: Subject, kind: str, item: Any) -> bool:
    if not isinstance(item, dict):
        return False
    ids = subject.identities
    if kind in ("contacts", "user_preferences"):
        return item.get("wa_id") in ids or item.get("user_id") in ids
    if kind == "messages":
        return item.get("from") in ids or item.get("from_user_id") in ids or item.get("id") in subject.wamids
    if kind == "statuses":
        return (
            item.get("recipient_id") in ids
            or item.get("recipient_user_id") in ids
            or item.get("id") in subject.wamids
        )
    return False


def _phone_number_id(value: Json) -> str | None:
    metadata = value.get("metadata")
    found = metadata.get("phone_number_id") if isinstance(metadata, dict) else None
    return found if isinstance(found, str) else None


def _scrub(value: Any, identities: frozenset[str]) -> Any:
    """`value` with every occurrence of the identities inside its strings replaced."""
    if isinstance(value, str):
        for identity in identities:
            if identity in value:
                value = value.replace(identity, ERASED)
        return value
    if isinstance(value, list):
        return [_scrub(item, identities) for item in value]
    if isinstance(value, dict):
        return {key: _scrub(item, identities) for key, item in value.items()}
    return value


def _split_change(change: Json, subject: Subject) -> tuple[Json | None, Json | None]:
    """(the contact's part, the rest) of one change of the workspace's numbers."""
    value: Json = change["value"]
    theirs: Json = {key: item for key, item in value.items() if key not in ITEM_LISTS}
    rest: Json = dict(theirs)
    had_items = found = kept = False
    for kind in ITEM_LISTS:
        items = value.get(kind)
        if not isinstance(items, list):
            if kind in value:
                rest[kind] = items
            continue
        had_items = had_items or bool(items)
        mine = [item for item in items if _about(subject, kind, item)]
        others = [item for item in items if not _about(subject, kind, item)]
        if mine:
            theirs[kind] = mine
            found = True
        if others:
            rest[kind] = others
            kept = True
    their_change = {**change, "value": theirs} if found else None
    if had_items and not kept:
        return their_change, None  # nothing of anyone else's: the change goes
    return their_change, {**change, "value": _scrub(rest, subject.identities)}


def split(payload: Any, subject: Subject) -> tuple[Json | None, Json | None, bool]:
    """(the contact's part or None, the rest or None when nothing is left, whether the workspace's
    numbers appear at all). A body of another shape is returned as the rest, untouched."""
    if not isinstance(payload, dict) or not isinstance(payload.get("entry"), list):
        return None, payload, False
    their_entries: list[Json] = []
    rest_entries: list[Any] = []
    ours = False
    for entry in payload["entry"]:
        changes = entry.get("changes") if isinstance(entry, dict) else None
        if not isinstance(changes, list):
            rest_entries.append(entry)
            continue
        their_changes: list[Json] = []
        rest_changes: list[Any] = []
        for change in changes:
            value = change.get("value") if isinstance(change, dict) else None
            if not isinstance(value, dict) or _phone_number_id(value) not in subject.phone_number_ids:
                rest_changes.append(change)
                continue
            ours = True
            theirs, rest = _split_change(change, subject)
            if theirs is not None:
                their_changes.append(theirs)
            if rest is not None:
                rest_changes.append(rest)
        if their_changes:
            their_entries.append({**entry, "changes": their_changes})
        if rest_changes:
            rest_entries.append({**entry, "changes": rest_changes})
    theirs_body = {**payload, "entry": their_entries} if their_entries else None
    rest_body = {**payload, "entry": rest_entries} if rest_entries else None
    return theirs_body, rest_body, ours
