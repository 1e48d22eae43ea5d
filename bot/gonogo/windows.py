"""Change windows: when a release may go out, as cron-like allow / deny specs. Pure, no I/O.

    window = ChangeWindow.parse(allow=["mon-fri 09:00-17:00"], deny=["fri 12:00-23:59", "2026-12-25"])
    check = window.check(clock.now(), ZoneInfo("Europe/Paris"))   # check.open, check.evidence

A spec is ``<days> [HH:MM-HH:MM]`` or just ``HH:MM-HH:MM`` (every day):

* days: ``mon`` … ``sun`` (or full names), ranges ``mon-fri`` (``fri-mon`` wraps), ``weekdays``,
  ``weekends``, ``daily`` / ``*``, dates ``2026-12-25`` and date ranges ``2026-12-24..2026-12-26``;
  several joined by commas: ``sat,sun,2026-12-25``.
* hours: local time in the window's timezone; the end is exclusive, ``23:59`` and ``24:00`` both mean
  midnight (the whole rest of the day). An end before the start runs past midnight into the next day
  (``fri 22:00-02:00`` is Friday 22:00 to Saturday 02:00). No hours: the whole day.

Deny wins: a time inside any deny spec is closed. With allow specs, a time outside all of them is
closed too; without, everything not denied is open.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_OF = {**{d: i for i, d in enumerate(DAYS)}, **{d: i for i, d in enumerate(_FULL)}}
_GROUPS = {
    "daily": frozenset(range(7)),
    "*": frozenset(range(7)),
    "weekdays": frozenset(range(5)),
    "weekends": frozenset({5, 6}),
    "weekend": frozenset({5, 6}),
}
_HOURS = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DAY_MINUTES = 24 * 60
_LOOKAHEAD_DAYS = 15


@dataclass(frozen=True)
class WindowSpec:
    """One parsed spec. ``start``/``end`` are minutes after midnight; ``end`` may be ``1440``."""

    text: str
    weekdays: frozenset[int]
    dates: frozenset[date]
    start: int = 0
    end: int = _DAY_MINUTES

    @property
    def overnight(self) -> bool:
        return self.end <= self.start

    def _day_selected(self, day: date) -> bool:
        return day.weekday() in self.weekdays or day in self.dates

    def contains(self, local: datetime) -> bool:
        """Is the local (wall-clock) time inside this spec?"""
        minute = local.hour * 60 + local.minute
        today = local.date()
        if not self.overnight:
            return self._day_selected(today) and self.start <= minute < self.end
        if self._day_selected(today) and minute >= self.start:
            return True
        return self._day_selected(today - timedelta(days=1)) and minute < self.end

    def boundaries(self) -> tuple[int, ...]:
        """Minutes of the day where this spec may start or stop applying."""
        return (self.start, self.end % _DAY_MINUTES)


def parse_spec(text: str) -> WindowSpec:
    """Parse one spec; ``ValueError`` with a message for the config's reader."""
    words = text.strip().lower().split()
    if not words or len(words) > 2:
        raise ValueError(f"{text!r}: expected '<days> [HH:MM-HH:MM]', e.g. 'fri 12:00-23:59'")
    hours = words[-1] if _HOURS.match(words[-1]) else None
    day_words = words[:-1] if hours else words
    if len(day_words) > 1 or (not day_words and not hours):
        raise ValueError(f"{text!r}: expected '<days> [HH:MM-HH:MM]', e.g. 'fri 12:00-23:59'")
    weekdays: set[int] = set(range(7)) if not day_words else set()
    dates: set[date] = set()
    for term in day_words[0].split(",") if day_words else []:
        _add_term(term, weekdays, dates, text)
    start, end = _parse_hours(hours, text) if hours else (0, _DAY_MINUTES)
    return WindowSpec(
        text=" ".join(words), weekdays=frozenset(weekdays), dates=frozenset(dates), start=start, end=end
    )


def _add_term(term: str, weekdays: set[int], dates: set[date], text: str) -> None:
    if not term:
        raise ValueError(f"{text!r}: empty day between commas")
    if term in _GROUPS:
        weekdays.update(_GROUPS[term])
    elif term in _DAY_OF:
        weekdays.add(_DAY_OF[term])
    elif ".." in term:
        first, _, last = term.partition("..")
        begin, finish = _parse_date(first, text), _parse_date(last, text)
        if finish < begin or (finish - begin).days > 366:
            raise ValueError(f"{text!r}: date range {term} must go forwards and span at most a year")
        dates.update(begin + timedelta(days=n) for n in range((finish - begin).days + 1))
    elif _DATE.match(term):
        dates.add(_parse_date(term, text))
    elif "-" in term:
        first, _, last = term.partition("-")
        if first not in _DAY_OF or last not in _DAY_OF:
            raise ValueError(f"{text!r}: unknown day range {term!r} (use e.g. mon-fri)")
        at, stop = _DAY_OF[first], _DAY_OF[last]
        weekdays.update((at + n) % 7 for n in range((stop - at) % 7 + 1))
    else:
        raise ValueError(
            f"{text!r}: unknown day {term!r} (use mon..sun, mon-fri, weekdays, weekends, daily or a date)"
        )


def _parse_date(word: str, text: str) -> date:
    if not _DATE.match(word):
        raise ValueError(f"{text!r}: {word!r} is not a date (YYYY-MM-DD)")
    try:
        return date.fromisoformat(word)
    except ValueError:
        raise ValueError(f"{text!r}: {word!r} is not a valid date") from None


def _parse_hours(hours: str, text: str) -> tuple[int, int]:
    match = _HOURS.match(hours)
    assert match is not None
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59 or (h2 == 24 and m2 != 0):
        raise ValueError(f"{text!r}: {hours!r} is not a valid time range (00:00-24:00)")
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if end in (23 * 60 + 59, _DAY_MINUTES):
        end = _DAY_MINUTES
    if start == end:
        raise ValueError(f"{text!r}: {hours!r} is empty (start equals end)")
    return start, end


@dataclass(frozen=True)
class WindowCheck:
    open: bool
    evidence: str
    next_open: datetime | None = None  # local time the window opens next (when closed)


@dataclass(frozen=True)
class ChangeWindow:
    allow: tuple[WindowSpec, ...] = ()
    deny: tuple[WindowSpec, ...] = ()

    @classmethod
    def parse(
        cls, *, allow: list[str] | tuple[str, ...] = (), deny: list[str] | tuple[str, ...] = ()
    ) -> ChangeWindow:
        return cls(allow=tuple(map(parse_spec, allow)), deny=tuple(map(parse_spec, deny)))

    def denied_by(self, local: datetime) -> WindowSpec | None:
        return next((s for s in self.deny if s.contains(local)), None)

    def is_open(self, local: datetime) -> bool:
        if self.denied_by(local) is not None:
            return False
        return not self.allow or any(s.contains(local) for s in self.allow)

    def next_open(self, local: datetime) -> datetime | None:
        """The first local time after ``local`` when the window is open (within about two weeks)."""
        marks = sorted({0, *(m for s in (*self.allow, *self.deny) for m in s.boundaries())})
        day = local.replace(hour=0, minute=0, second=0, microsecond=0)
        for offset in range(_LOOKAHEAD_DAYS):
            base = day + timedelta(days=offset)
            for minute in marks:
                candidate = base + timedelta(minutes=minute)
                if candidate > local and self.is_open(candidate):
                    return candidate
        return None

    def check(self, at: datetime, zone: tzinfo) -> WindowCheck:
        """Is ``at`` (aware) inside the window, in ``zone``'s wall-clock time? With one line of evidence."""
        local = at.astimezone(zone)
        # Wall-clock arithmetic (a naive local time): specs are about the clock on the wall.
        wall = local.replace(tzinfo=None)
        shown = f"{DAYS[wall.weekday()].capitalize()} {wall:%Y-%m-%d %H:%M} {_zone_name(zone, local)}"
        denied = self.denied_by(wall)
        if denied is None and self.is_open(wall):
            where = f"inside {_join(self.allow)}" if self.allow else "no deny window applies"
            return WindowCheck(open=True, evidence=f"{shown}: {where}")
        reason = f"inside deny window `{denied.text}`" if denied else f"outside {_join(self.allow)}"
        upcoming = self.next_open(wall)
        later = (
            f"; opens {DAYS[upcoming.weekday()].capitalize()} {upcoming:%Y-%m-%d %H:%M}" if upcoming else ""
        )
        return WindowCheck(open=False, evidence=f"{shown}: {reason}{later}", next_open=upcoming)


def _join(specs: tuple[WindowSpec, ...]) -> str:
    return "allowed window " + ", ".join(f"`{s.text}`" for s in specs)


def _zone_name(zone: tzinfo, local: datetime) -> str:
    return str(getattr(zone, "key", None) or local.tzname() or "UTC")
