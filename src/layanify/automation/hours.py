"""Business hours: when an inbox is open, read on the wall clock of the business's own time zone.

Pure logic: no database, no clock of its own (every question takes an explicit, timezone-aware `at`).

Rules
- A range is local wall-clock time. An `end` at or before its `start` runs past midnight into the next day,
  and "24:00" is the midnight that ends the day. A range belongs to the day it starts on: a holiday closes
  only the ranges that start on its (local) date, so "fri 22:00-02:00" still runs into a Saturday holiday.
- Open is half-open: a range is open from its start up to, but not including, its end.
- Daylight saving time, by the rule "a range opens the first moment the local clock reaches `start` and
  closes the last moment the local clock reaches `end`":
  * a wall time skipped by a spring-forward gap means the first real instant after the gap (the moment of
    the jump), for a start and an end alike; a range lying wholly inside the gap is closed that day;
  * a wall time repeated by a fall-back means its first occurrence for a start and its second occurrence
    for an end. The open interval is thus every instant whose wall time lies in the range, plus the
    repeated stretch between them, so it never flickers closed and open again while the clock goes back.
- Ranges that touch (or overlap on a DST day) join: `next_closing` reports when the business really
  closes, not where one range hands over to the next.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_RANGES_PER_DAY = 10
MAX_HOLIDAYS = 366
# How far ahead to look for an opening or a closing; holidays each add a week, see `_search_days`.
SEARCH_DAYS = 400
_DAY = 24 * 60
_WEEK = 7 * _DAY
_HHMM = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")

Span = tuple[datetime, datetime]


def _minutes(value: str) -> int:
    hours, minutes = value.split(":")
    return int(hours) * 60 + int(minutes)


class TimeRange(BaseModel):
    """Open from `start` to `end` ("HH:MM", local time); an end at or before the start ends the next day."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: str = Field(examples=["09:00"], description="00:00 to 23:59")
    end: str = Field(examples=["17:00"], description="00:00 to 24:00; at or before start = the next day")

    @field_validator("start")
    @classmethod
    def _check_start(cls, value: str) -> str:
        if not _HHMM.fullmatch(value):
            raise ValueError(f"start must be a time 'HH:MM' from 00:00 to 23:59, got {value!r}")
        return value

    @field_validator("end")
    @classmethod
    def _check_end(cls, value: str) -> str:
        if value != "24:00" and not _HHMM.fullmatch(value):
            raise ValueError(f"end must be a time 'HH:MM' from 00:00 to 24:00, got {value!r}")
        return value

    @model_validator(mode="after")
    def _check_not_empty(self) -> TimeRange:
        if self.start == self.end:
            raise ValueError(
                f"range {self.start}-{self.end} starts and ends at the same time; "
                "use 00:00-24:00 for a whole day"
            )
        return self

    @property
    def start_minute(self) -> int:
        """Minutes from the start day's midnight to the opening."""
        return _minutes(self.start)

    @property
    def end_minute(self) -> int:
        """Minutes from the start day's midnight to the closing (past 1440 when the range is overnight)."""
        end = _minutes(self.end)
        return end if end > self.start_minute else end + _DAY

    def label(self, day: Weekday) -> str:
        """The range as people read it, such as "fri 22:00-02:00"."""
        return f"{day} {self.start}-{self.end}"


class Holiday(BaseModel):
    """A whole local day on which no range starts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    date: date
    name: str = Field(default="", max_length=100, examples=["Natal"])


def _default_weekly() -> dict[Weekday, list[TimeRange]]:
    office = [TimeRange(start="08:00", end="17:00")]
    return {day: list(office) if day not in ("sat", "sun") else [] for day in WEEKDAYS}


class BusinessHours(BaseModel):
    """When the inbox is open: weekly ranges in `timezone`, minus holidays. Disabled means always open."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    timezone: str = Field(default="Asia/Jakarta", description="an IANA time zone name")
    weekly: dict[Weekday, list[TimeRange]] = Field(
        default_factory=_default_weekly, description="a missing day or an empty list is closed all day"
    )
    holidays: list[Holiday] = Field(default_factory=list, max_length=MAX_HOLIDAYS)

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        if value != "localtime":  # the zone the server happens to run in, not a place
            try:
                ZoneInfo(value)
            except (ValueError, ZoneInfoNotFoundError):
                pass
            else:
                return value
        raise ValueError(f"unknown timezone {value!r}; use an IANA name such as Asia/Jakarta")

    @field_validator("weekly")
    @classmethod
    def _check_weekly(cls, weekly: dict[Weekday, list[TimeRange]]) -> dict[Weekday, list[TimeRange]]:
        # The week is a circle of 7 x 1440 minutes, so Sunday night may run into Monday morning.
        spans: list[tuple[int, int, str]] = []
        for day, ranges in weekly.items():
            if len(ranges) > MAX_RANGES_PER_DAY:
                raise ValueError(f"{day} has {len(ranges)} ranges; at most {MAX_RANGES_PER_DAY} are allowed")
            offset = WEEKDAYS.index(day) * _DAY
            spans += [(offset + r.start_minute, offset + r.end_minute, r.label(day)) for r in ranges]
        spans.sort()
        for i, (_, end, label) in enumerate(spans):
            after = i + 1 < len(spans)
            next_start, _, next_label = spans[i + 1] if after else spans[0]
            if next_start + (0 if after else _WEEK) < end:
                raise ValueError(f"ranges overlap: {label} and {next_label}")
        # Every day present, in week order, so what is read back shows closed days as closed.
        return {day: sorted(weekly.get(day, []), key=lambda r: r.start_minute) for day in WEEKDAYS}

    @field_validator("holidays")
    @classmethod
    def _check_holidays(cls, holidays: list[Holiday]) -> list[Holiday]:
        seen: set[date] = set()
        for holiday in holidays:
            if holiday.date in seen:
                raise ValueError(f"holiday {holiday.date.isoformat()} is listed more than once")
            seen.add(holiday.date)
        return holidays

    def is_open(self, at: datetime) -> bool:
        """Whether the business is open at the instant `at` (timezone-aware)."""
        moment = _utc(at)
        if not self.enabled:
            return True
        today = moment.astimezone(ZoneInfo(self.timezone)).date()
        # A range ends before the end of the day after its start, so only yesterday's and today's count.
        days = self._spans(today - timedelta(days=1), 2)
        return any(start <= moment < end for _, spans in days for start, end in spans)

    def next_opening(self, at: datetime) -> datetime | None:
        """`at` (in UTC) when open then, else the next instant it opens; None if it never opens."""
        moment = _utc(at)
        if self.is_open(moment):
            return moment
        today = moment.astimezone(ZoneInfo(self.timezone)).date()
        for _, spans in self._spans(today - timedelta(days=1), self._search_days()):
            # A later day's ranges never start before an earlier day's, so the first day with one wins.
            starts = [start for start, _ in spans if start > moment]
            if starts:
                return min(starts)
        return None

    def next_closing(self, at: datetime) -> datetime | None:
        """When open at `at`, the instant (UTC) it closes; None when closed, or open for as far as we look."""
        moment = _utc(at)
        if not self.enabled or not self.is_open(moment):
            return None
        zone = ZoneInfo(self.timezone)
        today = moment.astimezone(zone).date()
        closing: datetime | None = None
        for day, spans in self._spans(today - timedelta(days=1), self._search_days()):
            if closing is not None and _instant(day, 0, zone) > closing:
                return closing  # this day's ranges, and every later day's, start after the closing
            for start, end in spans:
                if closing is None and start <= moment < end:
                    closing = end
                elif closing is not None and start <= closing:
                    closing = max(closing, end)
        return None

    def _search_days(self) -> int:
        # Each holiday hides one occurrence of a weekday, delaying the next opening by at most a week.
        return SEARCH_DAYS + 7 * len(self.holidays)

    def _spans(self, first: date, count: int) -> Iterator[tuple[date, list[Span]]]:
        """Each of `count` local days from `first`, with the UTC intervals of the ranges starting that day."""
        zone = ZoneInfo(self.timezone)
        closed = {holiday.date for holiday in self.holidays}
        for n in range(count):
            day = first + timedelta(days=n)
            ranges = [] if day in closed else self.weekly.get(WEEKDAYS[day.weekday()], [])
            spans = [
                (_instant(day, r.start_minute, zone), _instant(day, r.end_minute, zone, last=True))
                for r in ranges
            ]
            yield day, sorted((start, end) for start, end in spans if start < end)


def _utc(at: datetime) -> datetime:
    if at.utcoffset() is None:
        raise ValueError(f"at must be timezone-aware, got {at.isoformat()}")
    return at.astimezone(UTC)


def _instant(day: date, minute: int, zone: ZoneInfo, *, last: bool = False) -> datetime:
    """The UTC instant the local clock shows `minute` after `day`'s midnight (see the module's DST rule).

    A repeated wall time gives its first occurrence, or its second when `last`; a skipped one gives the
    instant of the jump, the first real instant after the gap.
    """
    wall = datetime.combine(day, time()) + timedelta(minutes=minute)
    # fold=0 reads the wall time with the offset in force before a change, fold=1 with the one after.
    fold0 = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    fold1 = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if fold0 <= fold1:  # equal for an ordinary wall time; fold0 first for a repeated one
        return fold1 if last else fold0
    # Skipped: fold1 lands before the jump and fold0 after it; search the seconds between for the jump.
    low, high = int(fold1.timestamp()), int(fold0.timestamp())
    offset_before = datetime.fromtimestamp(low, zone).utcoffset()
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, zone).utcoffset() == offset_before:
            low = middle
        else:
            high = middle
    return datetime.fromtimestamp(high, UTC)
