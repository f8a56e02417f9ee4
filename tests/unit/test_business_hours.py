"""Business hours: open or closed, the next opening and closing, across midnight, holidays and DST."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from pydantic import ValidationError

from layanify.automation.hours import BusinessHours, TimeRange

JAKARTA = ZoneInfo("Asia/Jakarta")
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
SECOND = timedelta(seconds=1)

WEEK = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
OFFICE = {day: [("08:00", "17:00")] for day in WEEK[:5]}


def make(
    weekly: dict[str, list[tuple[str, str]]],
    *,
    timezone: str = "Asia/Jakarta",
    holidays: Iterable[str] = (),
    enabled: bool = True,
) -> BusinessHours:
    return BusinessHours.model_validate(
        {
            "enabled": enabled,
            "timezone": timezone,
            "weekly": {day: [{"start": s, "end": e} for s, e in ranges] for day, ranges in weekly.items()},
            "holidays": [{"date": d, "name": "libur"} for d in holidays],
        }
    )


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def jkt(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=JAKARTA)


def error_of(data: dict[str, object]) -> str:
    with pytest.raises(ValidationError) as caught:
        BusinessHours.model_validate(data)
    return str(caught.value)


# --- the model -------------------------------------------------------------------------------------------


def test_defaults_are_a_disabled_office_week_in_jakarta() -> None:
    hours = BusinessHours()

    assert hours.model_dump(mode="json") == {
        "enabled": False,
        "timezone": "Asia/Jakarta",
        "weekly": {
            **{day: [{"start": "08:00", "end": "17:00"}] for day in WEEK[:5]},
            "sat": [],
            "sun": [],
        },
        "holidays": [],
    }


def test_json_round_trips() -> None:
    hours = make({"fri": [("22:00", "02:00")], "sat": [("09:00", "24:00")]}, holidays=["2026-12-25"])

    assert BusinessHours.model_validate_json(hours.model_dump_json()) == hours


def test_overnight_range_reports_its_minutes_past_midnight() -> None:
    overnight = TimeRange(start="22:00", end="02:00")

    assert (overnight.start_minute, overnight.end_minute) == (22 * 60, 26 * 60)
    assert TimeRange(start="00:00", end="24:00").end_minute == 24 * 60
    assert TimeRange(start="00:01", end="00:00").end_minute == 24 * 60


# --- disabled, never open, naive instants --------------------------------------------------------------


def test_disabled_is_always_open() -> None:
    hours = make({}, enabled=False)
    at = jkt(2026, 12, 25, 3)  # no ranges, and a Friday at 03:00

    assert hours.is_open(at)
    opening = hours.next_opening(at)
    assert opening == at
    assert opening is not None
    assert opening.tzinfo is UTC
    assert hours.next_closing(at) is None


@pytest.mark.parametrize("weekly", [{}, {day: [] for day in WEEK}])
def test_enabled_without_ranges_never_opens(weekly: dict[str, list[tuple[str, str]]]) -> None:
    hours = make(weekly)
    at = utc(2026, 6, 1, 12)

    assert not hours.is_open(at)
    assert hours.next_opening(at) is None
    assert hours.next_closing(at) is None


def test_naive_instants_are_refused() -> None:
    hours = make(OFFICE)
    naive = datetime(2026, 6, 1, 9)

    for ask in (hours.is_open, hours.next_opening, hours.next_closing):
        with pytest.raises(ValueError, match="timezone-aware"):
            ask(naive)


# --- an ordinary week in Jakarta (UTC+7, no DST) ---------------------------------------------------------


def test_open_from_start_up_to_but_not_including_end() -> None:
    hours = make(OFFICE)  # 2026-06-01 is a Monday

    assert not hours.is_open(jkt(2026, 6, 1, 7, 59))
    assert hours.is_open(jkt(2026, 6, 1, 8))
    assert hours.is_open(jkt(2026, 6, 1, 16, 59))
    assert not hours.is_open(jkt(2026, 6, 1, 17))
    assert not hours.is_open(jkt(2026, 6, 6, 10))  # Saturday


def test_the_instant_counts_not_the_offset_it_is_written_in() -> None:
    hours = make(OFFICE)

    assert hours.is_open(utc(2026, 6, 1, 1))  # 08:00 in Jakarta
    assert not hours.is_open(utc(2026, 6, 1, 0, 59))


def test_next_opening_skips_the_weekend_and_answers_in_utc() -> None:
    hours = make(OFFICE)

    opening = hours.next_opening(jkt(2026, 6, 5, 18))  # Friday evening

    assert opening == jkt(2026, 6, 8, 8)
    assert opening is not None
    assert opening.tzinfo is UTC
    assert opening == utc(2026, 6, 8, 1)


def test_when_open_next_opening_is_now_and_next_closing_is_the_end_of_the_range() -> None:
    hours = make(OFFICE)
    at = jkt(2026, 6, 1, 10)

    assert hours.next_opening(at) == at
    assert hours.next_closing(at) == jkt(2026, 6, 1, 17)
    assert hours.next_closing(jkt(2026, 6, 1, 17)) is None  # closed


def test_next_opening_later_the_same_day() -> None:
    hours = make({"mon": [("08:00", "12:00"), ("13:00", "17:00")]})

    assert hours.next_opening(jkt(2026, 6, 1, 12, 30)) == jkt(2026, 6, 1, 13)
    assert hours.next_closing(jkt(2026, 6, 1, 9)) == jkt(2026, 6, 1, 12)


def test_checked_against_the_frozen_clock() -> None:
    hours = make(OFFICE)

    with time_machine.travel(jkt(2026, 6, 1, 9), tick=False):
        assert hours.is_open(datetime.now(UTC))
    with time_machine.travel(jkt(2026, 6, 1, 20), tick=False):
        assert not hours.is_open(datetime.now(UTC))


# --- across midnight and the week ------------------------------------------------------------------------


def test_overnight_range_runs_into_the_next_day() -> None:
    hours = make({"fri": [("22:00", "02:00")]})  # 2026-06-05 is a Friday

    assert not hours.is_open(jkt(2026, 6, 5, 21, 59))
    assert hours.is_open(jkt(2026, 6, 5, 22))
    assert hours.is_open(jkt(2026, 6, 6, 1, 59))
    assert not hours.is_open(jkt(2026, 6, 6, 2))
    assert not hours.is_open(jkt(2026, 6, 5, 1))  # Friday small hours: Thursday has no range
    assert hours.next_closing(jkt(2026, 6, 5, 23)) == jkt(2026, 6, 6, 2)
    assert hours.next_closing(jkt(2026, 6, 6, 1)) == jkt(2026, 6, 6, 2)
    assert hours.next_opening(jkt(2026, 6, 6, 2)) == jkt(2026, 6, 12, 22)


def test_ranges_that_touch_at_midnight_close_only_at_the_end_of_the_second() -> None:
    hours = make({"mon": [("20:00", "24:00")], "tue": [("00:00", "06:00")]})

    assert hours.is_open(jkt(2026, 6, 2, 0))
    assert hours.next_closing(jkt(2026, 6, 1, 21)) == jkt(2026, 6, 2, 6)


def test_ranges_that_touch_within_a_day_join() -> None:
    hours = make({"mon": [("08:00", "12:00"), ("12:00", "17:00")]})

    assert hours.next_closing(jkt(2026, 6, 1, 9)) == jkt(2026, 6, 1, 17)


def test_sunday_night_runs_into_monday() -> None:
    hours = make({"sun": [("22:00", "02:00")], "mon": [("02:00", "05:00")]})  # 2026-06-07 is a Sunday

    assert hours.next_opening(jkt(2026, 6, 6, 12)) == jkt(2026, 6, 7, 22)
    assert hours.is_open(jkt(2026, 6, 8, 1))
    assert hours.next_closing(jkt(2026, 6, 7, 23)) == jkt(2026, 6, 8, 5)
    assert hours.next_opening(jkt(2026, 6, 8, 5)) == jkt(2026, 6, 14, 22)


def test_open_around_the_clock_never_closes() -> None:
    hours = make({day: [("00:00", "24:00")] for day in WEEK})

    assert hours.is_open(utc(2026, 6, 1, 12))
    assert hours.next_closing(utc(2026, 6, 1, 12)) is None


def test_open_around_the_clock_closes_for_a_holiday() -> None:
    hours = make(
        {day: [("00:00", "24:00")] for day in WEEK},
        holidays=["2026-08-17"],
    )

    assert hours.next_closing(jkt(2026, 8, 1)) == jkt(2026, 8, 17)
    assert hours.next_opening(jkt(2026, 8, 17, 12)) == jkt(2026, 8, 18)


# --- holidays --------------------------------------------------------------------------------------------


def test_holiday_closes_the_whole_local_day() -> None:
    hours = make(OFFICE, holidays=["2026-08-17"])  # a Monday

    assert not hours.is_open(jkt(2026, 8, 17, 10))
    assert hours.next_opening(jkt(2026, 8, 17, 10)) == jkt(2026, 8, 18, 8)
    assert hours.next_opening(jkt(2026, 8, 14, 18)) == jkt(2026, 8, 18, 8)  # from the Friday before


def test_holiday_the_next_day_does_not_cut_an_overnight_range() -> None:
    hours = make({"fri": [("22:00", "02:00")]}, holidays=["2026-06-06"])  # the Saturday

    assert hours.is_open(jkt(2026, 6, 6, 1))
    assert hours.next_closing(jkt(2026, 6, 5, 23)) == jkt(2026, 6, 6, 2)


def test_holiday_on_the_start_day_closes_the_overnight_range_after_midnight_too() -> None:
    hours = make({"fri": [("22:00", "02:00")]}, holidays=["2026-06-05"])  # the Friday

    assert not hours.is_open(jkt(2026, 6, 5, 23))
    assert not hours.is_open(jkt(2026, 6, 6, 1))
    assert hours.next_opening(jkt(2026, 6, 5, 23)) == jkt(2026, 6, 12, 22)


def test_holidays_across_the_new_year() -> None:
    hours = make(
        {**OFFICE, "thu": [("08:00", "17:00"), ("20:00", "01:00")]},
        holidays=["2026-12-31", "2027-01-01"],  # Thursday and Friday
    )

    assert not hours.is_open(jkt(2026, 12, 31, 21))  # the Thursday-night range starts on a holiday
    assert not hours.is_open(jkt(2027, 1, 1, 0, 30))
    assert hours.next_opening(jkt(2026, 12, 30, 17)) == jkt(2027, 1, 4, 8)
    # The Wednesday before runs as usual.
    assert hours.next_closing(jkt(2026, 12, 30, 9)) == jkt(2026, 12, 30, 17)


def test_new_years_eve_range_runs_into_a_new_years_day_holiday() -> None:
    hours = make({"thu": [("20:00", "01:00")]}, holidays=["2027-01-01"])

    assert hours.is_open(jkt(2027, 1, 1, 0, 30))
    assert hours.next_closing(jkt(2026, 12, 31, 23)) == jkt(2027, 1, 1, 1)


def test_next_opening_looks_past_every_holiday() -> None:
    first = date(2026, 1, 5)  # a Monday; 366 Mondays run into 2033
    mondays = [(first + timedelta(weeks=n)).isoformat() for n in range(366)]
    hours = make({"mon": [("09:00", "10:00")]}, holidays=mondays)

    opening = hours.next_opening(jkt(2026, 1, 1))

    assert opening == jkt(2033, 1, 10, 9)
    assert (first + timedelta(weeks=366)).isoformat() == "2033-01-10"


# --- daylight saving time: Berlin (CET/CEST) ---------------------------------------------------------------
# 2026-03-29: 02:00 CET jumps to 03:00 CEST at 01:00 UTC.  2026-10-25: 03:00 CEST falls back to 02:00 CET at
# 01:00 UTC, so 02:00-03:00 happens twice (00:00-01:00 UTC, then 01:00-02:00 UTC).  Both are Sundays.


def test_berlin_start_in_the_spring_gap_opens_at_the_jump() -> None:
    hours = make({"sun": [("02:30", "04:00")]}, timezone="Europe/Berlin")

    assert hours.next_opening(utc(2026, 3, 28, 12)) == utc(2026, 3, 29, 1)
    assert not hours.is_open(utc(2026, 3, 29, 1) - SECOND)
    assert hours.is_open(utc(2026, 3, 29, 1))
    assert hours.next_closing(utc(2026, 3, 29, 1)) == utc(2026, 3, 29, 2)  # 04:00 CEST


def test_berlin_end_in_the_spring_gap_closes_at_the_jump() -> None:
    hours = make({"sun": [("01:00", "02:30")]}, timezone="Europe/Berlin")

    assert hours.next_closing(utc(2026, 3, 29, 0, 30)) == utc(2026, 3, 29, 1)
    assert hours.is_open(utc(2026, 3, 29, 1) - SECOND)
    assert not hours.is_open(utc(2026, 3, 29, 1))


def test_berlin_range_wholly_inside_the_gap_is_closed_that_day() -> None:
    hours = make({"sun": [("02:15", "02:45")]}, timezone="Europe/Berlin")

    assert hours.next_opening(utc(2026, 3, 28, 12)) == datetime(2026, 4, 5, 2, 15, tzinfo=BERLIN)


def test_berlin_overnight_range_across_the_spring_gap_is_an_hour_shorter() -> None:
    hours = make({"sat": [("22:00", "06:00")]}, timezone="Europe/Berlin")

    assert hours.next_opening(utc(2026, 3, 28, 12)) == utc(2026, 3, 28, 21)  # 22:00 CET
    assert hours.next_closing(utc(2026, 3, 28, 22)) == utc(2026, 3, 29, 4)  # 06:00 CEST


def test_berlin_ordinary_hours_follow_the_wall_clock_on_both_sides_of_a_change() -> None:
    hours = make({"sun": [("09:00", "17:00")], "sat": [("09:00", "17:00")]}, timezone="Europe/Berlin")

    assert hours.next_opening(utc(2026, 3, 28, 20)) == utc(2026, 3, 29, 7)  # CEST, UTC+2
    assert hours.next_closing(utc(2026, 3, 28, 10)) == utc(2026, 3, 28, 16)  # CET, UTC+1
    assert hours.next_opening(utc(2026, 10, 24, 20)) == utc(2026, 10, 25, 8)  # CET again


def test_berlin_repeated_start_opens_at_its_first_occurrence_and_stays_open() -> None:
    hours = make({"sun": [("02:30", "05:00")]}, timezone="Europe/Berlin")

    assert hours.next_opening(utc(2026, 10, 24, 12)) == utc(2026, 10, 25, 0, 30)  # the first 02:30 (CEST)
    assert not hours.is_open(utc(2026, 10, 25, 0, 30) - SECOND)
    assert hours.is_open(utc(2026, 10, 25, 0, 30))
    # After the clock falls back it reads 02:10 again, before 02:30, yet the range stays open.
    assert hours.is_open(datetime(2026, 10, 25, 2, 10, tzinfo=BERLIN, fold=1))
    assert hours.next_closing(utc(2026, 10, 25, 0, 30)) == utc(2026, 10, 25, 4)  # 05:00 CET


def test_berlin_repeated_end_closes_at_its_second_occurrence() -> None:
    hours = make({"sun": [("00:00", "02:30")]}, timezone="Europe/Berlin")

    assert hours.next_closing(utc(2026, 10, 24, 23)) == utc(2026, 10, 25, 1, 30)  # the second 02:30 (CET)
    assert hours.is_open(datetime(2026, 10, 25, 2, 45, tzinfo=BERLIN, fold=0))  # first 02:45, 00:45 UTC
    assert hours.is_open(utc(2026, 10, 25, 1, 30) - SECOND)
    assert not hours.is_open(utc(2026, 10, 25, 1, 30))
    assert not hours.is_open(datetime(2026, 10, 25, 2, 45, tzinfo=BERLIN, fold=1))  # second 02:45


# --- daylight saving time: New York (EST/EDT) --------------------------------------------------------------
# 2026-03-08: 02:00 EST jumps to 03:00 EDT at 07:00 UTC.  2026-11-01: 02:00 EDT falls back to 01:00 EST at
# 06:00 UTC, so 01:00-02:00 happens twice (05:00-06:00 UTC, then 06:00-07:00 UTC).  Both are Sundays.


def test_new_york_next_opening_across_the_spring_gap() -> None:
    hours = make({"sun": [("02:30", "03:30")]}, timezone="America/New_York")

    assert hours.next_opening(utc(2026, 3, 7, 12)) == utc(2026, 3, 8, 7)
    assert not hours.is_open(utc(2026, 3, 8, 7) - SECOND)
    assert hours.is_open(utc(2026, 3, 8, 7))
    assert hours.next_closing(utc(2026, 3, 8, 7)) == utc(2026, 3, 8, 7, 30)  # 03:30 EDT
    assert hours.next_opening(utc(2026, 3, 8, 8)) == datetime(2026, 3, 15, 2, 30, tzinfo=NEW_YORK)


def test_new_york_overnight_range_ending_in_the_gap_closes_at_the_jump() -> None:
    hours = make({"sat": [("22:00", "02:30")]}, timezone="America/New_York")

    assert hours.next_opening(utc(2026, 3, 7, 12)) == utc(2026, 3, 8, 3)  # 22:00 EST
    assert hours.next_closing(utc(2026, 3, 8, 4)) == utc(2026, 3, 8, 7)
    assert not hours.is_open(utc(2026, 3, 8, 7))


def test_new_york_overnight_range_ending_in_the_repeated_hour_closes_at_its_second_occurrence() -> None:
    hours = make({"sat": [("20:00", "01:30")]}, timezone="America/New_York")

    assert hours.next_closing(utc(2026, 11, 1, 1)) == utc(2026, 11, 1, 6, 30)
    assert hours.is_open(utc(2026, 11, 1, 5, 45))  # the first 01:45 (EDT): past 01:30, but the hour repeats
    assert hours.is_open(utc(2026, 11, 1, 6, 30) - SECOND)
    assert not hours.is_open(utc(2026, 11, 1, 6, 30))


def test_new_york_ranges_touching_in_the_repeated_hour_join() -> None:
    # The Saturday range ends at the second 01:30, the Sunday range opens at the first one.
    hours = make({"sat": [("20:00", "01:30")], "sun": [("01:30", "09:00")]}, timezone="America/New_York")

    assert hours.next_opening(utc(2026, 10, 31, 12)) == utc(2026, 11, 1)  # 20:00 EDT
    assert hours.next_closing(utc(2026, 11, 1, 1)) == utc(2026, 11, 1, 14)  # 09:00 EST


# --- every answer agrees with the others, minute by minute around each change ----------------------------

SWEEP_WEEKLY = {
    "sat": [("22:00", "01:30")],
    "sun": [("01:45", "02:30"), ("02:45", "03:15"), ("09:00", "17:00")],
    "mon": [("00:00", "24:00")],
}


@pytest.mark.parametrize(
    ("timezone", "change"),
    [
        ("Europe/Berlin", utc(2026, 3, 29, 1)),
        ("Europe/Berlin", utc(2026, 10, 25, 1)),
        ("America/New_York", utc(2026, 3, 8, 7)),
        ("America/New_York", utc(2026, 11, 1, 6)),
        ("Asia/Jakarta", utc(2026, 3, 29, 1)),
    ],
)
def test_openings_and_closings_are_the_edges_of_is_open(timezone: str, change: datetime) -> None:
    hours = make(SWEEP_WEEKLY, timezone=timezone)

    for step in range(-36 * 6, 36 * 6):
        at = change + timedelta(minutes=10 * step)
        if hours.is_open(at):
            assert hours.next_opening(at) == at
            closing = hours.next_closing(at)
            assert closing is not None
            assert closing > at
            assert hours.is_open(closing - SECOND), at
            assert not hours.is_open(closing), at
        else:
            assert hours.next_closing(at) is None
            opening = hours.next_opening(at)
            assert opening is not None
            assert opening > at
            assert hours.is_open(opening), at
            assert not hours.is_open(opening - SECOND), at


# --- validation ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["9:00", "09:60", "24:00", "25:00", "0900", "09:00 ", "", "٠٩:٠٠"])
def test_start_must_be_hh_mm_before_midnight(bad: str) -> None:
    message = error_of({"weekly": {"tue": [{"start": bad, "end": "17:00"}]}})

    assert "weekly.tue.0.start" in message
    assert "start must be a time 'HH:MM' from 00:00 to 23:59" in message


@pytest.mark.parametrize("bad", ["24:01", "24:30", "7:00", "17.00"])
def test_end_must_be_hh_mm_up_to_midnight(bad: str) -> None:
    message = error_of({"weekly": {"wed": [{"start": "09:00", "end": bad}]}})

    assert "weekly.wed.0.end" in message
    assert "end must be a time 'HH:MM' from 00:00 to 24:00" in message


@pytest.mark.parametrize(("start", "end"), [("09:00", "09:00"), ("00:00", "00:00")])
def test_empty_range_is_refused(start: str, end: str) -> None:
    message = error_of({"weekly": {"thu": [{"start": start, "end": end}]}})

    assert "weekly.thu.0" in message
    assert f"range {start}-{end} starts and ends at the same time" in message


def test_overlapping_ranges_on_one_day_are_refused() -> None:
    message = error_of(
        {"weekly": {"mon": [{"start": "08:00", "end": "12:00"}, {"start": "11:00", "end": "13:00"}]}}
    )

    assert "ranges overlap: mon 08:00-12:00 and mon 11:00-13:00" in message


def test_overnight_range_overlapping_the_next_morning_is_refused() -> None:
    message = error_of(
        {"weekly": {"fri": [{"start": "22:00", "end": "02:00"}], "sat": [{"start": "01:00", "end": "05:00"}]}}
    )

    assert "ranges overlap: fri 22:00-02:00 and sat 01:00-05:00" in message


def test_sunday_night_overlapping_monday_morning_is_refused() -> None:
    message = error_of(
        {"weekly": {"mon": [{"start": "01:00", "end": "05:00"}], "sun": [{"start": "22:00", "end": "02:00"}]}}
    )

    assert "ranges overlap: sun 22:00-02:00 and mon 01:00-05:00" in message


def test_whole_day_overlapping_a_range_of_the_same_day_is_refused() -> None:
    message = error_of(
        {"weekly": {"sat": [{"start": "00:00", "end": "24:00"}, {"start": "23:00", "end": "01:00"}]}}
    )

    assert "ranges overlap: sat 00:00-24:00 and sat 23:00-01:00" in message


def test_ranges_that_only_touch_are_accepted() -> None:
    make(
        {
            "mon": [("02:00", "12:00"), ("12:00", "24:00")],
            "tue": [("00:00", "08:00")],
            "sun": [("22:00", "02:00")],
        }
    )


def test_at_most_ten_ranges_a_day() -> None:
    ranges = [{"start": f"{hour:02d}:00", "end": f"{hour:02d}:30"} for hour in range(11)]

    make({"fri": [(r["start"], r["end"]) for r in ranges[:10]]})
    assert "fri has 11 ranges; at most 10 are allowed" in error_of({"weekly": {"fri": ranges}})


@pytest.mark.parametrize("key", ["monday", "Mon", "1"])
def test_unknown_weekday_is_refused(key: str) -> None:
    message = error_of({"weekly": {key: []}})

    assert f"weekly.{key}.[key]" in message
    assert "'mon'" in message


@pytest.mark.parametrize(
    "name", ["Mars/Olympus", "asia/jakarta", "Asia/Jakarta ", "", "../etc/passwd", "localtime"]
)
def test_unknown_timezone_is_refused(name: str) -> None:
    message = error_of({"timezone": name})

    assert f"unknown timezone {name!r}; use an IANA name such as Asia/Jakarta" in message


@pytest.mark.parametrize("name", ["UTC", "Europe/Berlin", "America/New_York", "Asia/Makassar"])
def test_iana_timezones_are_accepted(name: str) -> None:
    assert BusinessHours(timezone=name).timezone == name


def test_duplicate_holiday_dates_are_refused() -> None:
    message = error_of({"holidays": [{"date": "2026-12-25", "name": "Natal"}, {"date": "2026-12-25"}]})

    assert "holiday 2026-12-25 is listed more than once" in message


def test_at_most_366_holidays() -> None:
    days = [{"date": (date(2026, 1, 1) + timedelta(days=n)).isoformat()} for n in range(367)]

    BusinessHours.model_validate({"holidays": days[:366]})
    assert "at most 366 items" in error_of({"holidays": days})


def test_holiday_name_is_at_most_100_characters() -> None:
    BusinessHours.model_validate({"holidays": [{"date": "2026-08-17", "name": "x" * 100}]})

    assert "holidays.0.name" in error_of({"holidays": [{"date": "2026-08-17", "name": "x" * 101}]})


def test_holiday_date_must_be_a_date() -> None:
    assert "holidays.0.date" in error_of({"holidays": [{"date": "2026-02-30"}]})


def test_unknown_fields_are_refused() -> None:
    assert "timezon" in error_of({"timezon": "Asia/Jakarta"})
    assert "weekly.mon.0.until" in error_of(
        {"weekly": {"mon": [{"start": "08:00", "end": "17:00", "until": "x"}]}}
    )
