"""Times: stored in UTC, shown in Europe/London."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

LONDON = ZoneInfo("Europe/London")


def to_london(moment: datetime) -> datetime:
    """The same instant on the wall clock in London (GMT or BST)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(LONDON)


def london_today() -> date:
    """Today's date in England, which is what statutory days count in."""
    return datetime.now(LONDON).date()


def parse_instant(value: str) -> datetime:
    """Parse an ISO 8601 date-time; one without an offset is read as London wall time."""
    moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=LONDON)
    return moment.astimezone(UTC)


def format_london(moment: datetime | None, with_time: bool = True) -> str:
    """'25 Nov 2026, 14:05' in London time; an empty string for None."""
    if moment is None:
        return ""
    local = to_london(moment)
    return local.strftime("%-d %b %Y, %H:%M") if with_time else local.strftime("%-d %b %Y")
