"""Retrying failed webhook events, and moving message statuses forward only."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from layanify.messaging.models import Direction, Message, MessageStatus
from layanify.messaging.service import advance
from layanify.webhooks.tasks import MAX_BACKOFF_SECONDS, retry_delay
from layanify.whatsapp.payloads import normalize_error

HOUR = 3600.0


def no_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(random, "uniform", lambda low, high: (low + high) / 2)


def test_retry_waits_grow_exponentially_from_the_base(monkeypatch: pytest.MonkeyPatch) -> None:
    no_jitter(monkeypatch)
    assert [retry_delay(attempt, 2.0) for attempt in range(1, 7)] == [2.0, 4.0, 8.0, 16.0, 32.0, 64.0]


def test_first_attempt_and_nonsense_attempts_wait_the_base(monkeypatch: pytest.MonkeyPatch) -> None:
    no_jitter(monkeypatch)
    assert retry_delay(0, 5.0) == retry_delay(-3, 5.0) == retry_delay(1, 5.0) == 5.0


def test_long_outages_retry_about_once_an_hour(monkeypatch: pytest.MonkeyPatch) -> None:
    no_jitter(monkeypatch)
    assert MAX_BACKOFF_SECONDS == HOUR
    assert retry_delay(12, 2.0) == HOUR
    assert retry_delay(500, 2.0) == HOUR  # no overflow for absurd attempt counts


@pytest.mark.parametrize("extreme", [0.8, 1.2])
def test_retry_never_waits_more_than_an_hour(monkeypatch: pytest.MonkeyPatch, extreme: float) -> None:
    monkeypatch.setattr(random, "uniform", lambda low, high: extreme)
    assert retry_delay(30, 2.0) <= HOUR


def test_jitter_stays_within_twenty_percent() -> None:
    random.seed(1234)
    for attempt in range(1, 8):
        nominal = 2.0 * 2 ** (attempt - 1)
        for _ in range(200):
            delay = retry_delay(attempt, 2.0)
            assert nominal * 0.8 <= delay <= nominal * 1.2


def test_jitter_spreads_retries_apart() -> None:
    random.seed(99)
    delays = {round(retry_delay(3, 2.0), 6) for _ in range(50)}
    assert len(delays) > 40


def test_jitter_uses_both_extremes_of_its_range(monkeypatch: pytest.MonkeyPatch) -> None:
    ranges: list[tuple[float, float]] = []

    def record(low: float, high: float) -> float:
        ranges.append((low, high))
        return low

    monkeypatch.setattr(random, "uniform", record)

    assert retry_delay(3, 2.0) == pytest.approx(8.0 * 0.8)
    assert ranges == [(0.8, 1.2)]


# --- message statuses move forward only --------------------------------------------------------

T0 = datetime(2025, 11, 24, 16, 0, 0, tzinfo=UTC)
UNDELIVERABLE = normalize_error(
    {
        "code": 131026,
        "title": "Message undeliverable",
        "message": "Message undeliverable",
        "error_data": {"details": "Message Undeliverable."},
        "href": "https://developers.facebook.com/documentation/business-messaging/whatsapp/support/error-codes",
    }
)


def outbound(status: str = MessageStatus.SENDING) -> Message:
    """An outbound message in memory (never added to a session)."""
    return Message(
        workspace_id=1,
        conversation_id=1,
        wamid="wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABEYEjQ1RkY2QjlDMzM3QUQ4REM4NwA=",
        direction=Direction.OUTBOUND,
        type="text",
        content={"type": "text", "text": "Pesanan sudah dikirim"},
        status=status,
        timestamp=T0,
    )


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_statuses_in_order_end_at_read_with_every_time_kept() -> None:
    message = outbound()

    assert advance(message, "sent", at(1), [])
    assert advance(message, "delivered", at(2), [])
    assert advance(message, "read", at(3), [])

    assert message.status == "read"
    assert (message.sent_at, message.delivered_at, message.read_at) == (at(1), at(2), at(3))


def test_late_delivered_after_read_stays_read_but_records_delivery_time() -> None:
    message = outbound()
    advance(message, "read", at(3), [])

    moved = advance(message, "delivered", at(2), [])

    assert moved is False
    assert message.status == "read"
    assert message.delivered_at == at(2)
    assert message.read_at == at(3)


def test_out_of_order_statuses_end_at_read() -> None:
    message = outbound()
    for status, second in (("read", 3), ("delivered", 2), ("sent", 1)):
        advance(message, status, at(second), [])

    assert message.status == "read"
    assert (message.sent_at, message.delivered_at, message.read_at) == (at(1), at(2), at(3))


def test_duplicate_status_keeps_the_first_reported_time() -> None:
    message = outbound()
    advance(message, "delivered", at(2), [])

    moved = advance(message, "delivered", at(9), [])

    assert moved is False
    assert message.delivered_at == at(2)


def test_voice_note_played_outranks_read() -> None:
    message = outbound()
    advance(message, "played", at(5), [])

    assert advance(message, "read", at(4), []) is False
    assert message.status == "played"
    assert (message.read_at, message.played_at) == (at(4), at(5))


def test_failed_send_records_the_error_for_the_user() -> None:
    message = outbound("sent")

    moved = advance(message, "failed", at(4), [UNDELIVERABLE])

    assert moved is True
    assert message.status == "failed"
    assert message.failed_at == at(4)
    assert message.error_code == 131026
    assert message.error_title == "Message undeliverable"
    assert message.error_details == "Message Undeliverable."
    assert message.error_href == UNDELIVERABLE["href"]


def test_failed_without_details_falls_back_to_the_message() -> None:
    message = outbound()
    error = normalize_error({"code": 131047, "message": "Re-engagement message"})

    advance(message, "failed", at(4), [error])

    assert message.error_code == 131047
    assert message.error_title == "Re-engagement message"
    assert message.error_details == "Re-engagement message"
    assert message.error_href is None


def test_failed_with_an_empty_error_leaves_no_blank_texts() -> None:
    message = outbound()

    advance(message, "failed", at(4), [normalize_error({})])

    assert message.status == "failed"
    assert (message.error_code, message.error_title, message.error_details) == (None, None, None)


def test_failed_without_errors_still_fails() -> None:
    message = outbound()

    assert advance(message, "failed", at(4), [])
    assert message.status == "failed"
    assert message.error_code is None


def test_long_error_title_is_cut_to_the_column_size() -> None:
    message = outbound()

    advance(message, "failed", at(4), [normalize_error({"code": 1, "title": "x" * 1000})])

    assert message.error_title == "x" * 512


def test_failed_after_delivered_is_applied() -> None:
    message = outbound()
    advance(message, "delivered", at(2), [])

    assert advance(message, "failed", at(4), [UNDELIVERABLE])
    assert message.status == "failed"


def test_failed_after_read_is_ignored() -> None:
    message = outbound()
    advance(message, "read", at(3), [])

    moved = advance(message, "failed", at(4), [UNDELIVERABLE])

    assert moved is False
    assert message.status == "read"
    assert message.error_code is None
    assert message.error_title is None
    assert message.error_details is None
    assert message.failed_at is None  # a read message never shows a failure time


def test_late_sent_after_failed_does_not_revive_the_message() -> None:
    message = outbound()
    advance(message, "failed", at(4), [UNDELIVERABLE])

    assert advance(message, "sent", at(1), []) is False
    assert message.status == "failed"
    assert message.sent_at == at(1)
    assert message.error_code == 131026


def test_unknown_status_changes_nothing() -> None:
    message = outbound("sent")
    before: dict[str, Any] = {
        name: getattr(message, name) for name in ("status", "sent_at", "delivered_at", "read_at", "failed_at")
    }

    assert advance(message, "deleted", at(9), []) is False
    assert {name: getattr(message, name) for name in before} == before


def test_inbound_received_message_moves_to_read_once_we_mark_it_read() -> None:
    message = outbound(MessageStatus.RECEIVED)

    assert advance(message, "read", at(3), [])
    assert message.status == "read"
