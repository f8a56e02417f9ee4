"""Opaque keyset cursors: what a page hands out comes back as the same sort key."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from layanify.errors import LayanifyError
from layanify.pagination import decode_cursor, encode_cursor


def test_cursor_round_trips_a_timestamp_and_an_id() -> None:
    at = datetime(2025, 11, 24, 16, 0, 5, 123456, tzinfo=UTC)

    cursor = encode_cursor(at, 42)

    assert decode_cursor(cursor, (datetime, int)) == [at, 42]


def test_cursor_keeps_the_timezone_offset() -> None:
    jakarta = timezone(timedelta(hours=7))
    at = datetime(2025, 11, 24, 23, 0, tzinfo=jakarta)

    (decoded,) = decode_cursor(encode_cursor(at), (datetime,))

    assert decoded == at
    assert decoded.utcoffset() == timedelta(hours=7)


def test_cursor_round_trips_strings_and_nulls() -> None:
    cursor = encode_cursor(None, "Budi Santoso 🙏", 7)
    assert decode_cursor(cursor, (datetime, str, int)) == [None, "Budi Santoso 🙏", 7]


def test_cursor_is_url_safe_and_unpadded() -> None:
    cursor = encode_cursor(datetime(2025, 1, 1, tzinfo=UTC), 10**12, "??>>")
    assert "=" not in cursor
    assert "+" not in cursor
    assert "/" not in cursor


def test_cursor_is_opaque() -> None:
    assert "2025" not in encode_cursor(datetime(2025, 1, 1, tzinfo=UTC), 1)


def _raw_cursor(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "not a cursor!",
        "%%%",
        "é",
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),  # not UTF-8 JSON
        _raw_cursor({"at": "2025-01-01", "id": 1}),  # not a list
        _raw_cursor(["2025-11-24T16:00:05+00:00"]),  # too short
        _raw_cursor(["2025-11-24T16:00:05+00:00", 1, 2]),  # too long
        _raw_cursor(["yesterday", 1]),  # not a timestamp
        _raw_cursor([1764000005, 1]),  # a number where a timestamp belongs
        _raw_cursor(["2025-11-24T16:00:05+00:00", "1"]),  # a string where an id belongs
        _raw_cursor(["2025-11-24T16:00:05+00:00", True]),  # a boolean is not an id
        _raw_cursor(["2025-11-24T16:00:05+00:00", 1.5]),  # nor is a float
    ],
)
def test_cursor_not_made_by_us_is_a_clear_invalid_cursor_error(cursor: str) -> None:
    with pytest.raises(LayanifyError) as caught:
        decode_cursor(cursor, (datetime, int))

    assert caught.value.code == "invalid_cursor"
    assert caught.value.status_code == 400
    assert "next_cursor" in caught.value.message


def test_cursor_for_one_list_is_refused_by_a_list_sorted_differently() -> None:
    cursor = encode_cursor(datetime(2025, 1, 1, tzinfo=UTC), 1)

    with pytest.raises(LayanifyError) as caught:
        decode_cursor(cursor, (int, int))

    assert caught.value.code == "invalid_cursor"
