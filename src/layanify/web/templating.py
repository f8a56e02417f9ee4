"""Jinja2 for the UI: autoescaped templates, the request's language, and display filters.

Every value is escaped (a customer's `<img src=x onerror=…>` shows as text); nothing marks content
safe. Times are shown in the workspace's time zone (Asia/Jakarta by default) in the user's language.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime, format_time, format_timedelta
from babel.numbers import format_decimal
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from layanify.web.i18n import LANGUAGES, translations

TEMPLATES_DIR = Path(__file__).parent / "templates"
DISPLAY_TIMEZONE = ZoneInfo("Asia/Jakarta")

environment = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=select_autoescape(["html"], default_for_string=True, default=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass
class View:
    """What every page knows: the language, the user, the CSRF token and the workspace's zone."""

    language: str
    csrf: str = ""
    user: dict[str, Any] | None = None
    timezone: ZoneInfo = field(default=DISPLAY_TIMEZONE)

    def gettext(self, message: str, **values: Any) -> str:
        """The message in the user's language, with `{name}` placeholders filled."""
        text: str = translations(self.language).gettext(message)
        return text.format(**values) if values else text

    def ngettext(self, singular: str, plural: str, n: int, **values: Any) -> str:
        """Singular or plural in the user's language; `{n}` is the count."""
        text: str = translations(self.language).ngettext(singular, plural, n)
        return text.format(n=n, **values)

    def local(self, at: datetime | None) -> datetime | None:
        """A stored UTC time in the display zone."""
        return at.astimezone(self.timezone) if at is not None else None

    def when(self, at: datetime | None) -> str:
        """A short time for lists: the time today, the date otherwise."""
        local = self.local(at)
        if local is None:
            return ""
        today = datetime.now(UTC).astimezone(self.timezone).date()
        if local.date() == today:
            return format_time(local, "short", locale=self.language)
        return format_date(local, "medium", locale=self.language)

    def full(self, at: datetime | None) -> str:
        """Date and time, for titles and details."""
        local = self.local(at)
        return format_datetime(local, "medium", locale=self.language) if local is not None else ""

    def day(self, at: datetime | None) -> str:
        """The date heading a day's messages."""
        local = self.local(at)
        return format_date(local, "medium", locale=self.language) if local is not None else ""

    def clock(self, at: datetime | None) -> str:
        """The time of a message bubble."""
        local = self.local(at)
        return format_time(local, "short", locale=self.language) if local is not None else ""

    def left(self, until: datetime | None) -> str:
        """How long until a time, in words ("3 hours")."""
        if until is None:
            return ""
        return format_timedelta(until - datetime.now(UTC), threshold=1, locale=self.language)

    def number(self, value: float) -> str:
        """A number in the user's language."""
        return format_decimal(value, locale=self.language)


def render(
    request: Request, view: View, template: str, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """A page (or an htmx partial) in the user's language."""
    html = environment.get_template(template).render(
        request=request,
        view=view,
        _=view.gettext,
        ngettext=view.ngettext,
        languages=LANGUAGES,
        **context,
    )
    return HTMLResponse(html, status_code=status_code)


def file_size(size: int | None) -> str:
    """Bytes as a short human size."""
    if size is None:
        return ""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


environment.filters["file_size"] = file_size
