"""Change windows: the spec parser (examples and properties) and the open / closed judgement."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.gonogo.windows import DAYS, ChangeWindow, WindowSpec, parse_spec

UTC_ZONE = ZoneInfo("UTC")
MON = datetime(2026, 1, 5)  # a Monday (naive: wall-clock time)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """Wall-clock time in the week of 2026-01-05: day 0 is Monday."""
    return MON + timedelta(days=day, hours=hour, minutes=minute)


@pytest.mark.parametrize(
    ("text", "weekdays", "start", "end"),
    [
        ("fri 12:00-23:59", {4}, 720, 1440),
        ("sat", {5}, 0, 1440),
        ("mon-fri 09:00-17:00", {0, 1, 2, 3, 4}, 540, 1020),
        ("fri-mon", {4, 5, 6, 0}, 0, 1440),
        ("Saturday,SUN", {5, 6}, 0, 1440),
        ("weekdays 8:30-24:00", {0, 1, 2, 3, 4}, 510, 1440),
        ("weekends", {5, 6}, 0, 1440),
        ("22:00-06:00", set(range(7)), 1320, 360),
        ("daily", set(range(7)), 0, 1440),
    ],
)
def test_specs_parse(text: str, weekdays: set[int], start: int, end: int) -> None:
    spec = parse_spec(text)
    assert (set(spec.weekdays), spec.start, spec.end, spec.dates) == (weekdays, start, end, frozenset())


def test_dates_and_date_ranges_are_holidays() -> None:
    spec = parse_spec("2026-12-24..2026-12-26 12:00-24:00")
    assert spec.dates == {date(2026, 12, 24), date(2026, 12, 25), date(2026, 12, 26)} and not spec.weekdays
    assert spec.contains(datetime(2026, 12, 25, 13, 0)) and not spec.contains(datetime(2026, 12, 25, 11, 0))
    assert not spec.contains(datetime(2026, 12, 27, 13, 0))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "expected"),
        ("someday", "unknown day"),
        ("fri 25:00-26:00", "not a valid time range"),
        ("fri 12:00-12:00", "empty"),
        ("2026-02-30", "not a valid date"),
        ("mon-xyz", "unknown day range"),
        ("fri 12:00-13:00 sat", "expected"),
        ("sat,,sun", "empty day"),
        ("2026-12-26..2026-12-24", "must go forwards"),
    ],
)
def test_bad_specs_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_spec(text)


def test_overnight_spec_runs_into_the_next_day() -> None:
    spec = parse_spec("fri 22:00-02:00")
    assert spec.contains(at(4, 23)) and spec.contains(at(5, 1, 59))
    assert not spec.contains(at(5, 2)) and not spec.contains(at(4, 21, 59)) and not spec.contains(at(3, 23))


def test_deny_wins_over_allow() -> None:
    window = ChangeWindow.parse(allow=["mon-fri 09:00-17:00"], deny=["fri 12:00-23:59"])
    assert window.is_open(at(4, 10)) and not window.is_open(at(4, 13))
    assert not window.is_open(at(5, 10)) and not window.is_open(at(0, 8, 59))


def test_the_runbook_window_with_evidence_and_the_next_opening() -> None:
    window = ChangeWindow.parse(deny=["fri 12:00-23:59", "sat", "sun", "2026-12-25"])
    friday = window.check(datetime(2026, 1, 9, 14, 30, tzinfo=UTC), UTC_ZONE)
    assert not friday.open
    assert friday.evidence == (
        "Fri 2026-01-09 14:30 UTC: inside deny window `fri 12:00-23:59`; opens Mon 2026-01-12 00:00"
    )
    monday = window.check(datetime(2026, 1, 5, 9, 0, tzinfo=UTC), UTC_ZONE)
    assert monday.open and monday.evidence == "Mon 2026-01-05 09:00 UTC: no deny window applies"
    christmas = window.check(datetime(2026, 12, 25, 10, 0, tzinfo=UTC), UTC_ZONE)
    assert not christmas.open and "`2026-12-25`" in christmas.evidence


def test_the_timezone_decides_the_wall_clock() -> None:
    window = ChangeWindow.parse(deny=["fri 12:00-23:59"])
    instant = datetime(2026, 1, 9, 11, 30, tzinfo=UTC)  # 12:30 in Paris (CET)
    assert window.check(instant, UTC_ZONE).open
    paris = window.check(instant, ZoneInfo("Europe/Paris"))
    assert not paris.open and "12:30 Europe/Paris" in paris.evidence


# --- properties ---------------------------------------------------------------------------------------------

day_names = st.sampled_from(DAYS)
minutes = st.integers(min_value=0, max_value=24 * 60 - 1)


@st.composite
def specs(draw: st.DrawFn) -> tuple[str, set[int], int | None, int | None]:
    """A valid spec's text and what it means: (text, weekdays, start, end) with None for all day."""
    chosen = sorted(draw(st.sets(st.integers(min_value=0, max_value=6), min_size=1, max_size=7)))
    days = ",".join(DAYS[d] for d in chosen)
    if draw(st.booleans()):
        return days, set(chosen), None, None
    start = draw(st.integers(min_value=0, max_value=23 * 60 + 58))
    end = draw(st.integers(min_value=1, max_value=24 * 60).filter(lambda e: e % (24 * 60) != start))
    hours = f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}"
    return f"{days} {hours}", set(chosen), start, end


def reference(weekdays: set[int], start: int | None, end: int | None, when: datetime) -> bool:
    """What a spec means, written the long way round (minute by minute, day by day)."""
    minute = when.hour * 60 + when.minute
    if start is None or end is None:
        return when.weekday() in weekdays
    end = 24 * 60 if end == 23 * 60 + 59 else end
    if start < end:
        return when.weekday() in weekdays and start <= minute < end
    yesterday = (when.weekday() - 1) % 7
    return (when.weekday() in weekdays and minute >= start) or (yesterday in weekdays and minute < end)


times = st.builds(lambda d, m: at(d, 0) + timedelta(minutes=m), st.integers(0, 13), minutes)


@given(st.text(max_size=60))
@settings(max_examples=400)
def test_the_parser_returns_a_spec_or_a_value_error(text: str) -> None:
    try:
        spec = parse_spec(text)
    except ValueError as exc:
        assert str(exc)
        return
    assert isinstance(spec, WindowSpec) and (spec.weekdays or spec.dates)


@given(specs(), times)
@settings(max_examples=400)
def test_contains_means_what_the_spec_says(
    case: tuple[str, set[int], int | None, int | None], when: datetime
) -> None:
    text, weekdays, start, end = case
    assert parse_spec(text).contains(when) == reference(weekdays, start, end, when)


@given(st.lists(specs(), max_size=3), st.lists(specs(), min_size=1, max_size=3), times)
@settings(max_examples=300)
def test_deny_always_wins_and_next_open_is_open(
    allow: list[tuple[str, set[int], int | None, int | None]],
    deny: list[tuple[str, set[int], int | None, int | None]],
    when: datetime,
) -> None:
    window = ChangeWindow.parse(allow=[a[0] for a in allow], deny=[d[0] for d in deny])
    if any(reference(w, s, e, when) for _, w, s, e in deny):
        assert not window.is_open(when)
    if not window.is_open(when):
        upcoming = window.next_open(when)
        assert upcoming is None or (upcoming > when and window.is_open(upcoming))
