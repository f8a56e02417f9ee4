"""Property-based tests of webhook parsing and processing on bad input (Hypothesis).

Inputs: random JSON, and Meta's real payloads (tests/data/whatsapp/*.json) mutated — keys deleted,
types changed, huge strings, any unicode, deep nesting, duplicated messages and ids. Properties:
- the parsers raise nothing but `PayloadError`;
- the receiver answers 200, 400 or 413, never a 5xx;
- the worker ends every event processed, or failed with a clear `PayloadError` stored on it — and the
  database then holds the whole effect of each processed event and nothing of a failed one;
- an event that fails half-way (a fault injected after some of its rows were written) leaves nothing
  behind, on the set-wise batch path and on the per-event path, and is processed whole on its retry.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from unittest import mock

import httpx
import orjson
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select, update

from layanify.db.base import utcnow
from layanify.db.session import Sessionmaker, unit_of_work
from layanify.messaging.models import Message
from layanify.models import Base
from layanify.webhooks.models import WebhookEvent
from layanify.webhooks.tasks import WebhookWorker
from layanify.whatsapp.payloads import (
    PayloadError,
    changes_of,
    message_content,
    normalize_error,
    parse_messages_value,
    parse_timestamp,
    preview,
)
from layanify.whatsapp.signature import sign
from tests import factories
from tests.conftest import APP_SECRET, DATA, Tenant
from tests.security.conftest import FUZZ, OnLoop, beside_loop, count

FIXTURES: dict[str, Any] = {path.stem: json.loads(path.read_text()) for path in sorted(DATA.glob("*.json"))}


def _writes(doc: Any) -> int:
    """How many messages and statuses a payload carries: the steps a fault can interrupt."""
    changes = changes_of(orjson.dumps(doc))
    values = [parse_messages_value(change.value) for change in changes if change.field == "messages"]
    return sum(len(value.messages) + len(value.statuses) for value in values)


# Fixtures whose processing writes messages or moves statuses: the ones a half-done event can damage.
WRITES = {name: n for name, doc in FIXTURES.items() if (n := _writes(doc))}
META_KEYS = [
    "object", "entry", "id", "time", "changes", "field", "value", "messaging_product", "metadata",
    "phone_number_id", "display_phone_number", "contacts", "profile", "name", "wa_id", "user_id",
    "messages", "from", "timestamp", "type", "text", "body", "context", "statuses", "status",
    "recipient_id", "errors", "code", "title", "message", "error_data", "details", "system",
    "user_preferences", "category", "event", "biz_opaque_callback_data", "image", "reaction",
]  # fmt: skip

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.sampled_from(["", "wamid.X", "106540352242922", "16315551181", "messages", "1764000110"])
)
keys = st.sampled_from(META_KEYS) | st.text(max_size=12)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=5),
    max_leaves=30,
)
weird_strings = st.one_of(
    st.text(min_size=1, max_size=64),  # any unicode: emoji, RTL, combining marks, NUL
    st.sampled_from(["\x00", "'; DROP TABLE messages; --", "‮gnp.exe", "😀" * 50, "\ud7ff\ue000"]),
    st.builds(lambda n, c: c * n, st.sampled_from([300, 5_000, 200_000]), st.sampled_from("xé😀")),
)


def _children(node: Any) -> Iterator[tuple[Any, Any]]:
    """Every (container, key) below `node`, depth first."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in list(items):
        yield node, key
        yield from _children(child)


def _nest(value: Any, depth: int, as_list: bool) -> Any:
    for _ in range(depth):
        value = [value] if as_list else {"value": value}
    return value


@st.composite
def mutated_payloads(draw: st.DrawFn, names: list[str] | None = None) -> Any:
    """A real payload with one to four mutations."""
    doc = copy.deepcopy(FIXTURES[draw(st.sampled_from(names or sorted(FIXTURES)))])
    for _ in range(draw(st.integers(1, 4))):
        places = list(_children(doc))
        if not places:
            break
        parent, key = draw(st.sampled_from(places))
        kind = draw(st.sampled_from(["delete", "retype", "string", "nul", "nest", "duplicate", "same_id"]))
        if kind == "delete":
            del parent[key]
        elif kind == "retype":
            parent[key] = draw(json_values)
        elif kind == "string":
            parent[key] = draw(weird_strings)
        elif kind == "nul":  # a NUL inside a real value: a name, a text, an id, a phone number id
            strings = [(p, k) for p, k in places if isinstance(p[k], str)]
            if strings:
                parent, key = draw(st.sampled_from(strings))
                at = draw(st.integers(0, len(parent[key])))
                parent[key] = parent[key][:at] + "\x00" + parent[key][at:]
        elif kind == "nest":
            parent[key] = _nest(parent[key], draw(st.integers(5, 400)), draw(st.booleans()))
        elif kind == "duplicate" and isinstance(parent, list):
            parent.insert(key, copy.deepcopy(parent[key]))
        elif kind == "same_id" and isinstance(parent[key], dict):
            parent[key]["id"] = draw(st.sampled_from(["wamid.same", "", "102290129340398"]))
    return doc


def encode(doc: Any, ascii_only: bool) -> bytes:
    """JSON as Meta might send it (stdlib json: big integers and deep nesting survive encoding)."""
    return json.dumps(doc, ensure_ascii=ascii_only).encode()


bodies = st.one_of(
    st.builds(encode, mutated_payloads(), st.booleans()),
    st.builds(encode, st.fixed_dictionaries({"entry": json_values}), st.booleans()),
    st.builds(encode, json_values, st.booleans()),
    st.binary(max_size=64),
    st.builds(lambda n: b"[" * n + b"]" * n, st.integers(500, 5000)),  # deeper than any parser allows
)


def _uniquify(doc: Any) -> Any:
    """Fresh wamids, so each example's messages are new (not duplicates of an earlier example's)."""
    suffix = uuid.uuid4().hex[:12]
    for parent, key in list(_children(doc)):
        value = parent[key]
        if key == "id" and isinstance(value, str) and value.startswith("wamid."):
            parent[key] = f"{value}.{suffix}"
    return doc


# --- parsers: pure functions ----------------------------------------------------------------------


@hypothesis_settings(FUZZ, max_examples=200)
@given(body=bodies)
def test_the_parsers_raise_nothing_but_payload_error(body: bytes) -> None:
    count("hypothesis examples: parsers")
    try:
        changes = changes_of(body)
    except PayloadError as exc:
        message = str(exc)
        assert "entry" in message or "nested deeper" in message or "not valid JSON" in message  # says what
        return
    for change in changes:
        value = parse_messages_value(change.value)
        for error in value.errors:
            normalize_error(error)
        for message in value.messages:
            preview(message_content(message))
            parse_timestamp(message.get("timestamp"))
        for status in value.statuses:
            parse_timestamp(status.get("timestamp"))


# --- the receiver ---------------------------------------------------------------------------------


async def test_the_receiver_answers_bad_bodies_without_a_server_error(
    client: httpx.AsyncClient, on_loop: OnLoop
) -> None:
    @FUZZ
    @given(body=bodies)
    def receiver_property(body: bytes) -> None:
        count("hypothesis examples: receiver")
        headers = {"X-Hub-Signature-256": sign(APP_SECRET, body), "Content-Type": "application/json"}
        response = on_loop(client.post("/api/webhooks/whatsapp", content=body, headers=headers))
        assert response.status_code in (200, 400, 413), (response.status_code, response.text)

    await beside_loop(receiver_property)


# --- the worker: processing, failures, whole-or-nothing -------------------------------------------


async def snapshot(sessionmaker: Sessionmaker) -> dict[str, list[str]]:
    """Every row of every table but the events themselves, as comparable text."""
    rows: dict[str, list[str]] = {}
    async with unit_of_work(sessionmaker) as session:
        for table in Base.metadata.sorted_tables:
            if table.name != "webhook_events":
                result = await session.execute(select(table))
                rows[table.name] = sorted(repr(tuple(row)) for row in result)
    return rows


async def message_count(sessionmaker: Sessionmaker) -> int:
    async with unit_of_work(sessionmaker) as session:
        return int((await session.execute(select(func.count()).select_from(Message))).scalar_one())


async def store_events(sessionmaker: Sessionmaker, bodies: list[bytes]) -> list[int]:
    """Events as the receiver stores them: pending and due now."""
    now = utcnow()
    async with unit_of_work(sessionmaker) as session:
        events = [
            WebhookEvent(body=body, received_at=now, status="pending", attempts=0, next_attempt_at=now)
            for body in bodies
        ]
        session.add_all(events)
        await session.flush()
        return [event.id for event in events]


async def load_events(sessionmaker: Sessionmaker, ids: list[int]) -> list[WebhookEvent]:
    async with unit_of_work(sessionmaker) as session:
        found = await session.execute(select(WebhookEvent).where(WebhookEvent.id.in_(ids)))
        by_id = {event.id: event for event in found.scalars()}
        return [by_id[i] for i in ids]


async def run_worker(sessionmaker: Sessionmaker, settings: Any) -> None:
    worker = WebhookWorker(sessionmaker, settings)
    while await worker.process_due_batch():
        pass


async def forget_events(sessionmaker: Sessionmaker) -> None:
    async with unit_of_work(sessionmaker) as session:
        await session.execute(delete(WebhookEvent))


async def test_the_worker_stores_a_clear_error_or_the_whole_event(
    tenant: Tenant, sessionmaker: Sessionmaker, settings: Any, on_loop: OnLoop
) -> None:
    @FUZZ
    @given(batch=st.lists(bodies, min_size=1, max_size=3), uniquify=st.booleans())
    def worker_property(batch: list[bytes], uniquify: bool) -> None:
        count("hypothesis examples: worker")
        if uniquify:  # mostly new messages; otherwise duplicates of earlier examples are exercised too
            batch = [_refresh_wamids(body) for body in batch]
        before, rows_before = on_loop(message_count(sessionmaker)), on_loop(snapshot(sessionmaker))
        ids = on_loop(store_events(sessionmaker, batch))
        on_loop(run_worker(sessionmaker, settings))
        events = on_loop(load_events(sessionmaker, ids))
        on_loop(forget_events(sessionmaker))
        stored = 0
        for event in events:
            if event.status == "processed":
                assert event.last_error is None
                assert event.summary is not None
                stored += event.summary["counts"].get("messages", 0)
            else:  # only an unreadable envelope may fail, and it says so
                assert event.status == "failed", (event.status, event.last_error)
                assert (event.last_error or "").startswith("PayloadError: "), event.last_error
        assert on_loop(message_count(sessionmaker)) - before == stored  # each processed event whole
        if all(event.status == "failed" for event in events):
            assert on_loop(snapshot(sessionmaker)) == rows_before  # failed events left nothing

    await beside_loop(worker_property)


def _refresh_wamids(body: bytes) -> bytes:
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return body
    return json.dumps(_uniquify(doc)).encode()


class InjectedFault(RuntimeError):
    """Raised by a patched step of processing, after some of the event's rows were written."""


class Fault:
    """Raise from the n-th call on (every call after it too), counting calls of every patched function."""

    def __init__(self, at: int) -> None:
        self.at, self.calls = at, 0

    def wrap(self, real: Any) -> Any:
        def faulty(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            if self.calls >= self.at:
                raise InjectedFault(f"injected at call {self.calls}")
            return real(*args, **kwargs)

        return faulty


async def outbound_for_statuses(sessionmaker: Sessionmaker, tenant: Tenant, doc: Any) -> None:
    """The outbound messages the payload's statuses report on, so each status really moves one."""
    for change in changes_of(orjson.dumps(doc)):
        for status in parse_messages_value(change.value).statuses:
            wamid, recipient = status.get("id"), status.get("recipient_id")
            if isinstance(wamid, str) and wamid.startswith("wamid.") and isinstance(recipient, str):
                await factories.create_outbound_message(
                    sessionmaker, tenant, wamid=wamid, wa_id=recipient, status="sent"
                )


async def make_due(sessionmaker: Sessionmaker, event_id: int) -> None:
    async with unit_of_work(sessionmaker) as session:
        due = utcnow() - timedelta(seconds=1)
        await session.execute(
            update(WebhookEvent).where(WebhookEvent.id == event_id).values(next_attempt_at=due)
        )


async def test_an_event_failing_half_way_leaves_nothing_and_is_applied_whole_on_retry(
    tenant: Tenant, sessionmaker: Sessionmaker, settings: Any, on_loop: OnLoop
) -> None:
    import layanify.messaging.service as messaging_service
    import layanify.webhooks.batch as batch_module

    @hypothesis_settings(FUZZ, max_examples=75)
    @given(data=st.data(), name=st.sampled_from(sorted(WRITES)), path=st.sampled_from(["batch", "per_event"]))
    def half_way_property(data: st.DataObject, name: str, path: str) -> None:
        at = data.draw(st.integers(1, WRITES[name]), label="fault at write")
        count("hypothesis examples: injected faults")
        doc = _uniquify(copy.deepcopy(FIXTURES[name]))
        on_loop(outbound_for_statuses(sessionmaker, tenant, doc))
        body = json.dumps(doc).encode()
        before, rows_before = on_loop(message_count(sessionmaker)), on_loop(snapshot(sessionmaker))
        [event_id] = on_loop(store_events(sessionmaker, [body]))
        fault = Fault(at)
        if path == "batch":  # the set-wise path fails half-way; the per-event path then runs clean
            patches = [
                mock.patch.object(batch_module, "note_inbound", fault.wrap(batch_module.note_inbound)),
                mock.patch.object(batch_module, "advance", fault.wrap(batch_module.advance)),
            ]
        else:  # the set-wise path is skipped, the per-event path fails half-way
            patches = [
                mock.patch.object(batch_module, "_batchable_values", return_value=None),
                mock.patch.object(
                    messaging_service, "note_inbound", fault.wrap(messaging_service.note_inbound)
                ),
                mock.patch.object(messaging_service, "advance", fault.wrap(messaging_service.advance)),
            ]
        for patch in patches:
            patch.start()
        try:
            on_loop(run_worker(sessionmaker, settings))
        finally:
            for patch in patches:
                patch.stop()
        [event] = on_loop(load_events(sessionmaker, [event_id]))
        if fault.calls >= at and path == "per_event":
            count("injected faults that struck")
            assert event.status == "pending", event.status  # to be retried
            assert "InjectedFault" in (event.last_error or "")
            assert on_loop(snapshot(sessionmaker)) == rows_before  # nothing of it was kept
            on_loop(make_due(sessionmaker, event_id))
            on_loop(run_worker(sessionmaker, settings))
            [event] = on_loop(load_events(sessionmaker, [event_id]))
        elif fault.calls >= at:
            count("injected faults that struck")
        assert event.status == "processed", (event.status, event.last_error)
        assert event.summary is not None
        counts = event.summary["counts"]
        assert "duplicate_messages" not in counts  # the failed attempt stored none of them
        assert "statuses_duplicate" not in counts
        assert on_loop(message_count(sessionmaker)) - before == counts.get("messages", 0)
        on_loop(forget_events(sessionmaker))

    await beside_loop(half_way_property)
