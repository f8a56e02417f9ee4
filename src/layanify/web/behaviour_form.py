"""The behaviour settings form: the HTML form's fields to the settings dict, and the dict to the form.

Pure functions (no database, no web framework): the form posts flat names (`mon_start`, `rule`,
`rule_<key>_keywords`, …); `settings_from_form` builds the same dict the API takes, leaving every
check to `BehaviourSettings`, so the page and the API refuse the same things with the same messages.
`form_fields` turns a settings dict (stored, or as typed when refused) back into what the template shows.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping
from typing import Any

from layanify.automation.hours import WEEKDAYS

# Offered first in the time zone list; anything else is typed in the "other" field.
TIMEZONES = (
    "Asia/Jakarta",
    "Asia/Makassar",
    "Asia/Jayapura",
    "Asia/Singapore",
    "Asia/Kuala_Lumpur",
    "Asia/Bangkok",
    "Asia/Manila",
    "Asia/Ho_Chi_Minh",
    "Asia/Hong_Kong",
    "Asia/Tokyo",
    "Asia/Kolkata",
    "Asia/Dubai",
    "Australia/Sydney",
    "Europe/London",
    "Europe/Amsterdam",
    "America/New_York",
    "America/Los_Angeles",
    "UTC",
)
OTHER_TIMEZONE = "other"
MATCH_TYPES = ("contains", "exact", "regex")
READ_RECEIPTS = ("on_open", "on_arrival", "never")
REPLY_TYPES = ("text", "template")
# Names the form gives each keyword rule row; only these shapes are read back.
ROW_KEY = re.compile(r"^[A-Za-z0-9]{1,24}$")
_CLOCK = re.compile(r"^\d{2}:\d{2}(:\d{2}(\.\d+)?)?$")
# What a reply keeps beyond the fields the form shows, per reply type (sent back in a hidden field).
_EXTRA_KEYS = {"text": ("preview_url",), "template": ("components", "template_params")}

Form = Mapping[str, Any]


def new_row_key() -> str:
    """A fresh name for a keyword rule row added in the browser."""
    return "n" + secrets.token_hex(6)


def _text(form: Form, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _texts(form: Form, name: str) -> list[str]:
    getlist = getattr(form, "getlist", None)
    values = getlist(name) if getlist is not None else [form.get(name)]
    return [v if isinstance(v, str) else "" for v in values if v is not None]


def _checked(form: Form, name: str) -> bool:
    return _text(form, name) not in ("", "off", "false", "0")


def _number(value: str) -> int | str:
    """An integer as typed; anything else goes to the schema as it is, which names the problem."""
    text = value.strip()
    return int(text) if text.isdigit() else text


def _clock(value: str) -> str:
    """A browser's time ("08:00" or "08:00:00") as HH:MM."""
    text = value.strip()
    return text[:5] if _CLOCK.match(text) else text


def _end(value: str) -> str:
    """An end of 00:00 is the midnight ending the day (24:00), which a time input cannot show or send."""
    end = _clock(value)
    return "24:00" if end == "00:00" else end


def _reply(form: Form, prefix: str, *, required: bool) -> dict[str, Any] | None:
    """The reply of a canned message or a rule: a text, or a template by name and language."""
    kind = _text(form, f"{prefix}_type")
    kind = kind if kind in REPLY_TYPES else "text"
    try:
        extra = json.loads(_text(form, f"{prefix}_extra") or "{}")
    except ValueError:
        extra = {}
    kept = {k: v for k, v in extra.items() if k in _EXTRA_KEYS[kind]} if isinstance(extra, dict) else {}
    if kind == "template":
        name = _text(form, f"{prefix}_template").strip()
        if not name and not required:
            return None
        language = _text(form, f"{prefix}_language").strip() or "en_US"
        return {"type": "template", "name": name, "language": language, **kept}
    text = _text(form, f"{prefix}_text")
    if not text.strip() and not required:
        return None
    return {"type": "text", "text": text, **kept}


def _keywords(value: str, match: str) -> list[str]:
    """One keyword per line; for exact and contains matches commas separate them too (a regular
    expression keeps its commas, as in `\\d{6,}`)."""
    parts = value.splitlines() if match == "regex" else re.split(r"[,\n]", value)
    return [p.strip() for p in parts if p.strip()]


def _rules(form: Form) -> tuple[list[dict[str, Any]], list[str]]:
    rules: list[dict[str, Any]] = []
    keys: list[str] = []
    for key in _texts(form, "rule"):
        if not ROW_KEY.match(key) or key in keys:
            continue
        keys.append(key)
        prefix = f"rule_{key}"
        match = _text(form, f"{prefix}_match")
        rule: dict[str, Any] = {
            "match": match,
            "keywords": _keywords(_text(form, f"{prefix}_keywords"), match),
            "reply": _reply(form, prefix, required=True),
            "enabled": _checked(form, f"{prefix}_enabled"),
        }
        for field in ("id", "name"):
            if value := _text(form, f"{prefix}_{field}").strip():
                rule[field] = value
        if priority := _text(form, f"{prefix}_priority").strip():
            rule["priority"] = _number(priority)
        rules.append(rule)
    return rules, keys


def _holidays(value: str) -> list[dict[str, str]]:
    """Lines of "YYYY-MM-DD name"."""
    holidays = []
    for line in value.splitlines():
        parts = line.strip().split(None, 1)
        if parts:
            holidays.append({"date": parts[0], "name": parts[1].strip() if len(parts) > 1 else ""})
    return holidays


def settings_from_form(form: Form) -> tuple[dict[str, Any], list[str]]:
    """The settings dict (for `save_settings`) the form describes, and the names of its rule rows."""
    weekly: dict[str, list[dict[str, str]]] = {}
    for day in WEEKDAYS:
        ranges: list[dict[str, str]] = []
        if not _checked(form, f"{day}_closed"):
            for start, end in zip(_texts(form, f"{day}_start"), _texts(form, f"{day}_end"), strict=False):
                if start.strip() or end.strip():
                    ranges.append({"start": _clock(start), "end": _end(end)})
        weekly[day] = ranges
    timezone = _text(form, "timezone").strip()
    if timezone == OTHER_TIMEZONE or not timezone:
        timezone = _text(form, "timezone_other").strip()
    rules, keys = _rules(form)
    settings: dict[str, Any] = {
        "business_hours": {
            "enabled": _checked(form, "hours_enabled"),
            "timezone": timezone,
            "weekly": weekly,
            "holidays": _holidays(_text(form, "holidays")),
        },
        "auto_reply": {
            "enabled": _checked(form, "auto_enabled"),
            "greeting": {
                "enabled": _checked(form, "greeting_enabled"),
                "reply": _reply(form, "greeting", required=False),
            },
            "away": {
                "enabled": _checked(form, "away_enabled"),
                "reply": _reply(form, "away", required=False),
            },
            "keywords": rules,
        },
        "read_receipts": _text(form, "read_receipts"),
        "typing_indicator": _checked(form, "typing_indicator"),
    }
    # An emptied number field takes the default, as an omitted one does in the API.
    if cooldown := _text(form, "cooldown_minutes").strip():
        settings["auto_reply"]["cooldown_minutes"] = _number(cooldown)
    if delay := _text(form, "reply_delay_seconds").strip():
        settings["reply_delay_seconds"] = _number(delay)
    return settings, keys


# --- What the template shows ----------------------------------------------------------------------


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str:
    return "" if value is None else str(value)


def _time_input(value: str) -> str:
    """24:00 is shown as 00:00 (the same midnight; a time input stops at 23:59)."""
    return "00:00" if value == "24:00" else value


def reply_fields(reply: Any) -> dict[str, str]:
    """A reply as the form shows it: its type, text or template name and language, and what else it keeps."""
    data = _dict(reply)
    kind = data.get("type") if data.get("type") in REPLY_TYPES else "text"
    extra = {k: data[k] for k in _EXTRA_KEYS[str(kind)] if data.get(k) not in (None, False)}
    return {
        "type": str(kind),
        "text": _str(data.get("text")),
        "template": _str(data.get("name")),
        "language": _str(data.get("language")),
        "extra": json.dumps(extra, ensure_ascii=False) if extra else "",
    }


def rule_fields(rule: Any, key: str) -> dict[str, Any]:
    """One keyword rule row."""
    data = _dict(rule)
    match = data.get("match") if data.get("match") in MATCH_TYPES else "contains"
    keywords = [_str(k) for k in _list(data.get("keywords"))]
    return {
        "key": key,
        "id": _str(data.get("id")),
        "name": _str(data.get("name")),
        "match": match,
        "keywords": ("\n" if match == "regex" else ", ").join(keywords),
        "reply": reply_fields(data.get("reply")),
        "priority": _str(data.get("priority", 100)),
        "enabled": data.get("enabled", True) is not False,
    }


def new_rule_fields() -> dict[str, Any]:
    """An empty keyword rule row."""
    return rule_fields({"enabled": True, "priority": 100}, new_row_key())


def form_fields(settings: dict[str, Any], keys: list[str] | None = None) -> dict[str, Any]:
    """What the behaviour form shows for a settings dict (stored, or as typed and refused)."""
    hours = _dict(settings.get("business_hours"))
    weekly = _dict(hours.get("weekly"))
    days = []
    for day in WEEKDAYS:
        ranges = [_dict(r) for r in _list(weekly.get(day))]
        slots = [{"start": _str(r.get("start")), "end": _time_input(_str(r.get("end")))} for r in ranges]
        while len(slots) < max(2, len(ranges) + 1):
            slots.append({"start": "", "end": ""})
        days.append({"key": day, "closed": not ranges, "slots": slots})
    timezone = _str(hours.get("timezone"))
    auto = _dict(settings.get("auto_reply"))
    rules = _list(auto.get("keywords"))
    row_keys = keys if keys is not None and len(keys) == len(rules) else [f"k{i}" for i in range(len(rules))]
    holidays = [_dict(h) for h in _list(hours.get("holidays"))]
    return {
        "hours_enabled": hours.get("enabled") is True,
        "timezone": timezone if timezone in TIMEZONES else OTHER_TIMEZONE,
        "timezone_other": "" if timezone in TIMEZONES else timezone,
        "days": days,
        "holidays": "\n".join(f"{_str(h.get('date'))} {_str(h.get('name'))}".strip() for h in holidays),
        "auto_enabled": auto.get("enabled") is True,
        "greeting_enabled": _dict(auto.get("greeting")).get("enabled") is True,
        "greeting": reply_fields(_dict(auto.get("greeting")).get("reply")),
        "away_enabled": _dict(auto.get("away")).get("enabled") is True,
        "away": reply_fields(_dict(auto.get("away")).get("reply")),
        "rules": [rule_fields(rule, key) for rule, key in zip(rules, row_keys, strict=True)],
        "cooldown_minutes": _str(auto.get("cooldown_minutes", 1440)),
        "read_receipts": _str(settings.get("read_receipts") or "on_open"),
        "typing_indicator": settings.get("typing_indicator") is True,
        "reply_delay_seconds": _str(settings.get("reply_delay_seconds", 0)),
    }
