"""Intake call times: the grid of possible calls (from the practice hours) and reading free text.

All times a person sees are in the practice's time zone; everything stored is UTC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Iterable, Iterator, List

from dateparser.date import DateDataParser

from bot.settings import Practice

# A call is never offered sooner than this, so the intake team sees it before it starts.
MIN_LEAD = timedelta(minutes=60)
SEARCH_DAYS = 21
PART_OF_DAY = {
    "morning": (time(0, 0), time(12, 0)),
    "afternoon": (time(12, 0), time(17, 0)),
    "evening": (time(17, 0), time(23, 59)),
    "lunchtime": (time(11, 30), time(13, 30)),
}
HAS_CLOCK_TIME = re.compile(
    r"\b\d{1,2}(:\d{2})\s*(am|pm|a\.m\.|p\.m\.)?|\b\d{1,2}\s*(am|pm|a\.m\.|p\.m\.)|\bnoon\b", re.IGNORECASE
)
# "4:30" with no am/pm and a one-digit hour: in office hours that is the afternoon ("07:30" is left alone).
SHORT_CLOCK = re.compile(r"(?<![\d:])([1-7]):(\d{2})\b(?!\s*(am|pm|a\.m|p\.m))", re.IGNORECASE)
BARE_HOUR = re.compile(r"\b(at|@)\s*(\d{1,2})\b(?!\s*(:|am|pm|a\.m|p\.m))", re.IGNORECASE)


def call_starts_on(practice: Practice, day: date) -> List[datetime]:
    """Every possible call start on one day (UTC), on a grid of intake_call_minutes."""
    span = practice.hours.for_weekday(day.weekday())
    if span is None:
        return []
    step = timedelta(minutes=practice.intake_call_minutes)
    opens = datetime.combine(day, span[0], tzinfo=practice.zone)
    closes = datetime.combine(day, span[1], tzinfo=practice.zone)
    starts = []
    moment = opens
    while moment + step <= closes:
        starts.append(moment.astimezone(timezone.utc))
        moment += step
    return starts


def upcoming_call_starts(practice: Practice, now: datetime, days: int = SEARCH_DAYS) -> Iterator[datetime]:
    """Call starts from now + MIN_LEAD on, in order, for the next `days` days."""
    earliest = now + MIN_LEAD
    first_day = practice.local_now(now).date()
    for offset in range(days):
        for start in call_starts_on(practice, first_day + timedelta(days=offset)):
            if start >= earliest:
                yield start


def is_bookable_start(practice: Practice, start: datetime, now: datetime) -> bool:
    local = start.astimezone(practice.zone)
    return start >= now + MIN_LEAD and start.astimezone(timezone.utc) in call_starts_on(practice, local.date())


def first_free(starts: Iterable[datetime], taken: set[datetime], count: int = 3) -> List[datetime]:
    free = []
    for start in starts:
        if start not in taken:
            free.append(start)
            if len(free) == count:
                break
    return free


def describe(practice: Practice, start: datetime) -> str:
    """'Mon, Nov 23 at 10:00 AM' in the practice's time zone (a format, not a sentence)."""
    local = start.astimezone(practice.zone)
    return local.strftime("%a, %b %-d at %-I:%M %p")


def button_payload(practice: Practice, start: datetime) -> str:
    """Text a time button sends back: unambiguous for the parser below."""
    return start.astimezone(practice.zone).strftime("%Y-%m-%d %H:%M")


@dataclass(frozen=True)
class TimeRequest:
    """What a person asked for: an exact start, or a window to choose in (a day, maybe part of it)."""

    exact: datetime | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None


def _expand_bare_hour(match: re.Match[str]) -> str:
    # "at 10" in an office context: 8-11 are mornings, 12-7 afternoons.
    hour = int(match.group(2))
    if hour > 12:
        return f"{match.group(1)} {hour}:00"
    suffix = "am" if 8 <= hour <= 11 else "pm"
    return f"{match.group(1)} {hour}:00 {suffix}"


def parse_time_request(practice: Practice, text: str, now: datetime) -> TimeRequest | None:
    cleaned = (text or "").lower().strip()
    part: str | None = None
    for name in PART_OF_DAY:
        if re.search(rf"\b{name}\b", cleaned):
            part = name
            cleaned = re.sub(rf"\b(in the |this |the )?{name}\b", " ", cleaned)
    cleaned = re.sub(
        r"\b(next|this|coming|on|around|about|maybe|please|how about|can we do|would be good)\b", " ", cleaned
    )
    cleaned = BARE_HOUR.sub(_expand_bare_hour, cleaned)
    cleaned = SHORT_CLOCK.sub(lambda match: f"{match.group(1)}:{match.group(2)} pm", cleaned)
    cleaned = re.sub(r"\s+", " ", cleaned).strip(" ,.?!")
    if not cleaned:
        if part is None:
            return None
        cleaned = "today"
    local_now = practice.local_now(now)
    parser = DateDataParser(
        languages=["en"],
        settings={
            "TIMEZONE": practice.timezone,
            "RETURN_AS_TIMEZONE_AWARE": True,
            "PREFER_DATES_FROM": "future",
            "RELATIVE_BASE": local_now.replace(tzinfo=None),
        },
    )
    parsed = parser.get_date_data(cleaned).date_obj
    if parsed is None:
        return None
    local = parsed.astimezone(practice.zone)
    if HAS_CLOCK_TIME.search(cleaned) and part is None:
        return TimeRequest(exact=local.astimezone(timezone.utc))
    if HAS_CLOCK_TIME.search(cleaned) and part is not None:
        hour = local.hour
        if part in ("afternoon", "evening") and hour < 12:
            local = local.replace(hour=hour + 12)
        return TimeRequest(exact=local.astimezone(timezone.utc))
    day_start, day_end = PART_OF_DAY.get(part or "", (time(0, 0), time(23, 59)))
    window_start = datetime.combine(local.date(), day_start, tzinfo=practice.zone)
    window_end = datetime.combine(local.date(), day_end, tzinfo=practice.zone)
    return TimeRequest(
        window_start=window_start.astimezone(timezone.utc), window_end=window_end.astimezone(timezone.utc)
    )


def utc_now() -> datetime:
    """The current moment; tests replace this to pin the clock."""
    return datetime.now(tz=timezone.utc)


def time_buttons(practice: Practice, starts: Iterable[datetime]) -> List[dict]:
    return [{"title": describe(practice, start), "payload": button_payload(practice, start)} for start in starts]
