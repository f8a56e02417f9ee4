"""Every string of every documented payload, made longer than anything we store, is processed or fails
with a clear PayloadError at its first attempt: never a database error retried until it gives up.

PostgreSQL enforces varchar lengths and SQLite does not, so this matters on PostgreSQL; it runs on both.
Ids too long to be Meta's set their message or status aside (noted in the event's summary), other values
are cut to what their column holds, and the raw event keeps everything as received.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from layanify.db.session import Sessionmaker
from tests.conftest import Tenant, WebhookPoster, stored_events
from tests.security.test_payload_fuzz import FIXTURES, _uniquify

LONG = "9" * 300  # digits, so it also stands in for ids and phone numbers


def string_paths(doc: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """The path of every string in a JSON document."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from string_paths(value, (*path, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            yield from string_paths(value, (*path, index))
    elif isinstance(doc, str):
        yield path


def lengthened(doc: Any, path: tuple[str | int, ...]) -> Any:
    """A copy of `doc` with fresh wamids (so its messages are new, not duplicates of another case's) and
    the string at `path` replaced by LONG."""
    changed = _uniquify(copy.deepcopy(doc))
    node = changed
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = LONG
    return changed


CASES = [(name, path) for name, doc in FIXTURES.items() for path in string_paths(doc)]


async def test_every_string_of_every_fixture_too_long_to_store_is_processed_at_the_first_attempt(
    webhook: WebhookPoster, tenant: Tenant, sessionmaker: Sessionmaker
) -> None:
    assert len(CASES) > 500  # every fixture's every string, not a sample
    for name, path in CASES:
        response = await webhook.post(lengthened(FIXTURES[name], path))
        assert response.status_code == 200, (name, path, response.text)
    await webhook.process()
    events = await stored_events(sessionmaker)
    assert len(events) == len(CASES)
    outcomes = [
        (name, path, event.status, event.attempts, (event.last_error or "")[:160])
        for (name, path), event in zip(CASES, events, strict=True)
    ]
    wrong = [
        outcome
        for outcome in outcomes
        if (outcome[2], outcome[3]) != ("processed", 1) and not outcome[4].startswith("PayloadError: ")
    ]
    assert wrong == []


async def test_a_message_whose_id_is_too_long_to_be_meta_s_is_set_aside_and_said_so(
    webhook: WebhookPoster, tenant: Tenant, sessionmaker: Sessionmaker
) -> None:
    body = FIXTURES["batch_multi"]
    messages = body["entry"][0]["changes"][0]["value"]["messages"]
    assert len(messages) == 2
    changed = lengthened(body, ("entry", 0, "changes", 0, "value", "messages", 0, "id"))
    await webhook.deliver(changed)
    [event] = await stored_events(sessionmaker)
    assert (event.status, event.attempts, event.last_error) == ("processed", 1, None)
    assert event.summary is not None
    assert event.summary["counts"]["messages"] == 2  # the other message of the change, and the second entry's
    assert any("set aside" in line and "`id` of 300 characters" in line for line in event.summary["ignored"])


async def test_a_summary_names_the_first_hundred_items_set_aside_and_counts_the_rest(
    webhook: WebhookPoster, tenant: Tenant, sessionmaker: Sessionmaker
) -> None:
    body = copy.deepcopy(FIXTURES["text"])
    value = body["entry"][0]["changes"][0]["value"]
    [message] = value["messages"]
    value["messages"] = [{**message, "id": f"{LONG}{n}"} for n in range(150)]
    await webhook.deliver(body)
    [event] = await stored_events(sessionmaker)
    assert event.status == "processed"
    assert event.summary is not None
    ignored = event.summary["ignored"]
    assert len(ignored) == 101
    assert all("set aside" in line for line in ignored[:100])
    assert ignored[100] == "… and 50 more"
