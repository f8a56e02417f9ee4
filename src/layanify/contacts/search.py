"""How a typed search becomes SQL patterns: text as typed, numbers by their digits."""

from __future__ import annotations

import re

# What people type around a phone number: "+62 812-3456", "(0812) 3456.789".
_PHONE_LIKE = re.compile(r"[\d\s()+\-.]+")


def contains_pattern(text: str) -> str:
    """A LIKE pattern (escape character `\\`) matching values that contain `text` literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def phone_digits(query: str) -> str | None:
    """The digits to look for in wa_ids when the search looks like a phone number, else None.

    wa_ids are stored as digits with the country code ("6281234567890"), so "+62 812-3456" looks for
    "628123456". A national number's trunk 0 ("0812-3456") is dropped: "8123456" still matches.
    """
    if not _PHONE_LIKE.fullmatch(query):
        return None
    digits = re.sub(r"\D", "", query).lstrip("0")
    return digits or None
