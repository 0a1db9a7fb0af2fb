"""iCalendar (RFC 5545) written by hand: an officer's visits and deadlines as a feed.

No calendar library is installed and the subset needed is small: VEVENTs with UTC
times ("Z"), all-day dates, TEXT escaping, CRLF line ends, and lines folded at 75
octets. What goes in is chosen for a calendar that lives on someone else's servers:
premises names and addresses (businesses), types, dates and a link back, never the
findings of a visit.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlsplit

from licensing.deadlines.models import Deadline
from licensing.premises.models import Premises
from licensing.visits.models import (
    COMPLETED,
    PROPOSED,
    STATUS_LABELS,
    VISIT_OUTCOMES,
    VISIT_TYPES,
    Visit,
)

PRODID = "-//Licensing enforcement//Visits and deadlines//EN"
VISIT_LENGTH = timedelta(hours=1)
MAX_OCTETS = 75


def escape_text(value: str) -> str:
    """Escape a TEXT value: backslash, semicolon, comma and line breaks (RFC 5545 3.3.11);
    other control characters, which TEXT may not hold, are dropped."""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    value = "".join(c for c in value if c in "\n\t" or ord(c) >= 32 and ord(c) != 127)
    return value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def fold(line: str) -> str:
    """Fold a content line so no physical line exceeds 75 octets (RFC 5545 3.1): later
    parts start with one space, and a UTF-8 character is never split."""
    data = line.encode("utf-8")
    if len(data) <= MAX_OCTETS:
        return line
    parts: list[bytes] = []
    start = 0
    limit = MAX_OCTETS
    while start < len(data):
        end = min(start + limit, len(data))
        # Back off to a character boundary: continuation bytes look like 0b10xxxxxx.
        while end < len(data) and (data[end] & 0xC0) == 0x80:
            end -= 1
        parts.append(data[start:end])
        start = end
        limit = MAX_OCTETS - 1  # the leading space counts
    return "\r\n ".join(part.decode("utf-8") for part in parts)


def utc_stamp(moment: datetime) -> str:
    """A DATE-TIME in UTC form: 20261125T140500Z."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime in a calendar")
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def day_stamp(day: date) -> str:
    """A DATE value: 20261125."""
    return day.strftime("%Y%m%d")


def _domain(base_url: str) -> str:
    return urlsplit(base_url).hostname or "licensing.invalid"


def _where(premises: Premises) -> str:
    return ", ".join(part for part in (premises.address, premises.postcode) if part)


def visit_event(visit: Visit, base_url: str) -> list[str]:
    """The content lines of one visit's VEVENT."""
    premises = visit.premises
    kind = VISIT_TYPES.get(visit.visit_type, visit.visit_type)
    lines = [
        "BEGIN:VEVENT",
        f"UID:visit-{visit.id}@{_domain(base_url)}",
        f"DTSTAMP:{utc_stamp(visit.updated_at)}",
        f"SEQUENCE:{visit.version}",
    ]
    if visit.status == COMPLETED and visit.visited_at is not None:
        summary = f"{kind} done: {premises.name}"
        lines += [
            f"DTSTART:{utc_stamp(visit.visited_at)}",
            f"DTEND:{utc_stamp(visit.visited_at + VISIT_LENGTH)}",
            "STATUS:CONFIRMED",
        ]
    elif visit.scheduled_at is not None and visit.status != PROPOSED:
        summary = f"{kind}: {premises.name}"
        lines += [
            f"DTSTART:{utc_stamp(visit.scheduled_at)}",
            f"DTEND:{utc_stamp(visit.scheduled_at + VISIT_LENGTH)}",
            "STATUS:CONFIRMED",
        ]
    else:
        # A proposal has a day it is due by, not a time: an all-day, tentative event.
        summary = f"{kind} due (proposed): {premises.name}"
        lines += [
            f"DTSTART;VALUE=DATE:{day_stamp(visit.visit_date)}",
            f"DTEND;VALUE=DATE:{day_stamp(visit.visit_date + timedelta(days=1))}",
            "STATUS:TENTATIVE",
            "TRANSP:TRANSPARENT",
        ]
    details = [
        f"Licence {premises.licence_number}",
        f"Status: {STATUS_LABELS.get(visit.status, visit.status)}",
    ]
    if visit.outcome:
        details.append(f"Outcome: {VISIT_OUTCOMES.get(visit.outcome, visit.outcome)}")
    if visit.policy_due_date is not None:
        details.append(f"Policy date: {visit.policy_due_date:%-d %b %Y}")
    url = f"{base_url.rstrip('/')}/visits/{visit.id}"
    details.append(url)
    lines += [
        f"SUMMARY:{escape_text(summary)}",
        f"DESCRIPTION:{escape_text(chr(10).join(details))}",
    ]
    if _where(premises):
        lines.append(f"LOCATION:{escape_text(_where(premises))}")
    lines += [f"URL:{url}", "END:VEVENT"]
    return lines


def deadline_event(
    deadline: Deadline, premises: Premises, base_url: str, labels: dict[str, str]
) -> list[str]:
    """The content lines of one deadline's VEVENT: all-day for a date, a moment for an
    instant (interim steps)."""
    label = labels.get(deadline.kind, deadline.kind.replace("_", " ").capitalize())
    lines = [
        "BEGIN:VEVENT",
        f"UID:deadline-{deadline.id}@{_domain(base_url)}",
        f"DTSTAMP:{utc_stamp(deadline.updated_at)}",
    ]
    if deadline.due_at is not None:
        lines.append(f"DTSTART:{utc_stamp(deadline.due_at)}")
    elif deadline.due_date is not None:
        lines += [
            f"DTSTART;VALUE=DATE:{day_stamp(deadline.due_date)}",
            f"DTEND;VALUE=DATE:{day_stamp(deadline.due_date + timedelta(days=1))}",
        ]
    url = f"{base_url.rstrip('/')}/premises/{premises.id}#deadlines"
    lines += [
        f"SUMMARY:{escape_text(f'{label}: {premises.name}')}",
        f"DESCRIPTION:{escape_text(f'Licence {premises.licence_number}' + chr(10) + deadline.rule + chr(10) + url)}",
        f"URL:{url}",
        "TRANSP:TRANSPARENT",
        "END:VEVENT",
    ]
    return lines


def build_calendar(
    visits: Iterable[Visit],
    deadlines: Iterable[tuple[Deadline, Premises]],
    base_url: str,
    labels: dict[str, str],
    name: str = "Licensing visits and deadlines",
) -> str:
    """A whole VCALENDAR: CRLF line ends, every line folded."""
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{escape_text(name)}",
    ]
    for visit in visits:
        lines += visit_event(visit, base_url)
    for deadline, premises in deadlines:
        lines += deadline_event(deadline, premises, base_url, labels)
    lines.append("END:VCALENDAR")
    return "".join(fold(line) + "\r\n" for line in lines)
