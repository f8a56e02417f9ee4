"""Opaque keyset cursors: a page ends with the sort key of its last row."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Path
from pydantic import BaseModel

from layanify.errors import LayanifyError

T = TypeVar("T")
MAX_LIMIT = 200
# Ids are 64-bit: a larger number can name nothing, and the database driver would refuse it.
MAX_ID = 2**63 - 1
ObjectId = Annotated[int, Path(ge=1, le=MAX_ID, description="an id from this API")]


class Page(BaseModel, Generic[T]):
    """A page of results and the cursor of the next page (null on the last one)."""

    data: list[T]
    next_cursor: str | None


def encode_cursor(*values: Any) -> str:
    """An opaque cursor for a sort key such as (last_message_at, id)."""
    raw = [v.isoformat() if isinstance(v, datetime) else v for v in values]
    return base64.urlsafe_b64encode(json.dumps(raw).encode()).decode().rstrip("=")


def _is_plain(kind: type, value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, kind):
        return False
    return not isinstance(value, int) or 0 <= value <= MAX_ID


def decode_cursor(cursor: str, kinds: tuple[type, ...]) -> list[Any]:
    """The sort key inside a cursor; a clear 400 when it was not made by us."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        raw = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(raw, list) or len(raw) != len(kinds):
            raise ValueError("wrong length")
        values: list[Any] = []
        for kind, value in zip(kinds, raw, strict=True):
            if value is None:
                values.append(None)
            elif kind is datetime:
                values.append(datetime.fromisoformat(value))
            elif _is_plain(kind, value):
                values.append(value)
            else:
                raise ValueError("wrong type")
        return values
    except (ValueError, TypeError) as exc:
        raise LayanifyError(
            "the cursor is not valid; use next_cursor from a previous page", code="invalid_cursor"
        ) from exc
