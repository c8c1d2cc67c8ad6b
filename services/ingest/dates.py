"""Publication dates from feeds, pages and sitemaps, in UTC, or unknown when absurd.

A date without an offset is local time of the source (Central Asian sites
publish in UTC+5/+6 and rarely say so); the source's `timezone` names it.
Absurd means before 1991 (the epoch and year-1 placeholders generators emit),
more than a day after the fetch, or outside what a datetime can hold at all
(year 1 east of UTC, year 9999 west of it): such a date is unknown, never an error.
So is a value longer than any date (_LONGEST_DATE).
"""

from __future__ import annotations

import calendar
import re
import time
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from email.utils import parsedate_to_datetime

_EARLIEST = datetime(1991, 1, 1, tzinfo=UTC)
# No date is longer, even with a zone's comment after it: a longer value is no date.
# _COLON_ZONE backtracks quadratically on one: a 550 KB <pubDate> of `+1:00(` held the
# parse past its sandbox's 20 s, and the whole feed was lost.
_LONGEST_DATE = 256
_NUMERIC_ZONE = re.compile(r"[+-]\d{4}\s*$")
_COLON_ZONE = re.compile(r"([+-])(\d{1,2}):(\d{2})(\s*(?:\([^)]*\))?\s*)$")
# A year written with four digits: not a zone's +0500, but 01-Jan-0001's.
_FOUR_DIGIT_YEAR = re.compile(r"(?:(?<![+\-\d])|(?<=[a-z]-))(\d{4})(?!\d)", re.IGNORECASE)
_FUTURE_SLACK = timedelta(days=1)
# ISO 8601 with a zone's name after it (`2026-11-26T10:00:00 EST`, `… MSK`), which
# feedparser reads as UTC whatever the name: RFC 822's names are read as RFC 822 reads
# them, any other as the source's own zone, as a date without one is.
_ISO_NAMED = re.compile(r"(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)\s*([A-Z]{1,5})")
_RFC_822_ZONES = {
    "UT": 0, "UTC": 0, "GMT": 0, "Z": 0,
    "EST": -5, "EDT": -4, "CST": -6, "CDT": -5, "MST": -7, "MDT": -6, "PST": -8, "PDT": -7,
}  # fmt: skip


def parse_date(value: str | None, local: tzinfo, fetched_at: datetime) -> datetime | None:
    """ISO 8601 (date only, or with time, with or without offset) or RFC 822 (with or
    without zone), to UTC."""
    text = value.strip() if value else ""
    moment = _parse(text) if 0 < len(text) <= _LONGEST_DATE else None
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=local)
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:  # shifted past year 1 or year 9999
        return None
    return plausible(moment, fetched_at)


def from_utc_struct(value: time.struct_time, fetched_at: datetime) -> datetime | None:
    """A UTC time tuple (what feedparser gives) as a datetime. feedparser applies
    the offset itself, so `0001-01-01T00:00:00+05:00` arrives as year 0."""
    try:
        moment = datetime.fromtimestamp(calendar.timegm(value), tz=UTC)
    except (OverflowError, ValueError, OSError):
        return None
    return plausible(moment, fetched_at)


def plausible(moment: datetime, fetched_at: datetime) -> datetime | None:
    """The moment, or None when it is absurd for a publication fetched at `fetched_at`."""
    if moment < _EARLIEST or moment > fetched_at + _FUTURE_SLACK:
        return None
    return moment


def _parse(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        pass
    if named := _ISO_NAMED.fullmatch(value):
        try:
            moment = datetime.fromisoformat(named[1])
        except ValueError:
            return None
        hours = _RFC_822_ZONES.get(named[2])
        return moment if hours is None else moment.replace(tzinfo=timezone(timedelta(hours=hours)))
    # `+03:00` (or `+3:00`, before a comment) as `+0300`: RFC 822 has no colon, and
    # email.utils read such a date as having no zone (the source's own time).
    value = _COLON_ZONE.sub(lambda zone: f"{zone[1]}{zone[2]:0>2}{zone[3]}{zone[4]}", value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    # RFC 2822's reading of two-digit years also turns a written `0001` into 2001: a
    # placeholder date, not one of this century.
    written = _FOUR_DIGIT_YEAR.search(value)
    if written is not None and int(written[1]) != moment.year:
        return None
    # `-0000` ("UTC, local zone unknown") comes back naive like a date with no zone at all.
    if moment.tzinfo is None and _NUMERIC_ZONE.search(value):
        return moment.replace(tzinfo=UTC)
    return moment
