"""Did it work? Confirmed incidents before and after each intervention on a premises, and
the force's figures for a period.

Interventions, and where the app records them:

- a **warning**: the `warn` workflow event on the premises' audit chain; its day is the
  London date the event was recorded;
- an **action plan**: a plan agreed with the licence holder
  (`licensing.actionplans.services.agreed_plans`); its day is `agreed_on`;
- a **review outcome**: the `record_determination` event on the audit chain, one type
  per outcome; its day is the `decision_date` the supervisor gave (the council's
  decision), not the day it was typed in.

Windows are London calendar days (the app stores UTC; a day runs from London midnight
to London midnight, so a window across the last Sunday of March or October is one hour
shorter or longer than N × 24 hours but always N whole days). For an intervention on
day d and a window of N days:

- before = the N days d-N … d-1;
- after = the N days d+1 … d+N;
- day d itself counts in neither: an incident that day may be what prompted the
  intervention or its first effect, and the records cannot say which.

Incidents are those with a *confirmed* link to the premises, placed by `counted_at`
(an incident known only by its month counts at the middle of that month, as in every
other window and chart of the app). An after window that has not ended yet (its last
day is today or later) is *incomplete*: its count so far is shown, labelled so, with no
change or percentage, and it is left out of every median. A percentage change is given
only for a complete window with at least one incident before; with none before the
counts are shown with "no incidents before". Nothing divides by zero.

**De-escalated within 6 months**: the premises is in `monitored` at some moment from the
intervention until the end of day d+183, as rebuilt from the audit trail (for a "no
action" determination, which itself returns the premises to monitoring, that is at
once). Until day d+183 has ended an intervention not yet de-escalated is "not yet
known" and left out of the share.

**Comparison group** (force report): for each intervention with a complete after window,
the premises that was in `monitored` from the start of its before window to the end of
its after window (no state change, so no warning or review; no action plan agreed;
before its registration a premises counts as monitored, since every premises starts
there and nothing could be done to one not yet registered), not the intervention's
premises, and whose
confirmed incidents in the same before window are nearest to the intervention
premises' count and within a fifth of it (rounded down: an exact match below 5); ties
go to the lowest premises id, and one premises may serve several interventions on
different dates. Its before and after counts on the same dates give the group's
medians. With fewer than `COMPARISON_MINIMUM` matched interventions the report says that
the numbers do not allow a comparison.
"""

from __future__ import annotations

import json
import statistics
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cache, lru_cache
from typing import Any, Protocol

from sqlalchemy import Select, bindparam, case, func, select
from sqlalchemy.orm import Session

from licensing.actionplans.services import agreed_plans
from licensing.audit.models import AuditEvent
from licensing.auth.models import User
from licensing.auth.permissions import premises_visible_to
from licensing.csvfiles import write_csv
from licensing.db import utcnow
from licensing.errors import ValidationFailed
from licensing.incidents.models import Incident, PremisesIncidentLink
from licensing.premises.models import LicensingAuthority, Premises
from licensing.premises.workflow import MONITORED, OUTCOMES
from licensing.timeutil import LONDON

DEFAULT_WINDOW_DAYS = 90
# A window shorter than a week says nothing; longer than a year mixes in other causes.
MIN_WINDOW_DAYS, MAX_WINDOW_DAYS = 7, 365
DEESCALATION_DAYS = 183
# The dates a report period may name: the windows around them must stay within what
# dates and time zones can hold, and the register holds nothing older.
EARLIEST_DAY, LATEST_DAY = date(1900, 1, 1), date(2999, 12, 31)
COMPARISON_MINIMUM = 5

WARNING, ACTION_PLAN, REVIEW_OUTCOME = "warning", "action_plan", "review_outcome"
KIND_LABELS = {
    WARNING: "Warning",
    ACTION_PLAN: "Action plan agreed",
    REVIEW_OUTCOME: "Review outcome",
}

REGRESSION_CAVEAT = (
    "Premises are chosen for a warning, an action plan or a review because they have "
    "just had a bad spell, and a bad spell tends to be followed by a quieter one whatever "
    "anyone does (regression to the mean). Some of any fall after an intervention would "
    "have happened anyway, so a fall is not by itself proof that the intervention worked."
)


# ---- days and windows ----------------------------------------------------------------


def day_start(day: date) -> datetime:
    """London midnight at the start of `day`, as a UTC instant."""
    return datetime(day.year, day.month, day.day, tzinfo=LONDON).astimezone(UTC)


def london_date(moment: datetime) -> date:
    """The London calendar date of a UTC instant."""
    return moment.astimezone(LONDON).date()


def parse_window_days(value: str | None, default: int) -> tuple[int, str | None]:
    """The window asked for in a query string, or `default` with the reason it was not
    usable (a message for the page); blank means the default, silently."""
    text = (value or "").strip()
    if not text:
        return default, None
    # ASCII digits only: int() refuses some characters str.isdigit() accepts ("²").
    if not (text.isascii() and text.isdigit()) or not (
        MIN_WINDOW_DAYS <= int(text) <= MAX_WINDOW_DAYS
    ):
        return default, (
            f"The window must be a whole number of days from {MIN_WINDOW_DAYS} to "
            f"{MAX_WINDOW_DAYS}; showing {default} days instead"
        )
    return int(text), None


@dataclass(frozen=True)
class Windows:
    """The before and after windows of an intervention on day `on`, as London days and
    as UTC instants (each start inclusive, each end exclusive)."""

    on: date
    days: int

    @property
    def before_first(self) -> date:
        """The first day of the before window."""
        return self.on - timedelta(days=self.days)

    @property
    def before_last(self) -> date:
        """The last day of the before window (the day before the intervention)."""
        return self.on - timedelta(days=1)

    @property
    def after_first(self) -> date:
        """The first day of the after window (the day after the intervention)."""
        return self.on + timedelta(days=1)

    @property
    def after_last(self) -> date:
        """The last day of the after window."""
        return self.on + timedelta(days=self.days)

    @property
    def before_start(self) -> datetime:
        """Start of the before window (inclusive)."""
        return day_start(self.before_first)

    @property
    def before_end(self) -> datetime:
        """End of the before window (exclusive): the start of the intervention day."""
        return day_start(self.on)

    @property
    def after_start(self) -> datetime:
        """Start of the after window (inclusive): the end of the intervention day."""
        return day_start(self.after_first)

    @property
    def after_end(self) -> datetime:
        """End of the after window (exclusive)."""
        return day_start(self.after_last + timedelta(days=1))

    def complete(self, now: datetime) -> bool:
        """True once the after window's last day has ended."""
        return now >= self.after_end

    def days_elapsed(self, now: datetime) -> int:
        """Whole days of the after window that have ended by `now` (0 … days)."""
        if now < self.after_start:
            return 0
        elapsed = (london_date(now) - self.after_first).days
        return max(0, min(elapsed, self.days))


# ---- interventions ---------------------------------------------------------------------


@dataclass(frozen=True)
class Intervention:
    """One intervention on a premises. `seq` is its event's place on the premises' audit
    chain (None for an action plan, which is not a workflow event); `to_state` the state
    that event left the premises in."""

    premises_id: int
    kind: str
    on: date
    outcome: str | None = None
    seq: int | None = None
    to_state: str | None = None

    @property
    def type_key(self) -> str:
        """The intervention type: warning, action_plan, or review_outcome:<outcome>."""
        if self.kind == REVIEW_OUTCOME:
            return f"{REVIEW_OUTCOME}:{self.outcome}"
        return self.kind

    @property
    def label(self) -> str:
        """The type in words, e.g. 'Review outcome: Revoke the licence'."""
        return type_label(self.type_key)


def type_label(type_key: str) -> str:
    """An intervention type's name in words."""
    kind, _, outcome = type_key.partition(":")
    if kind == REVIEW_OUTCOME:
        return f"Review outcome: {OUTCOMES.get(outcome, outcome)}"
    return KIND_LABELS.get(kind, kind)


def _type_order(type_key: str) -> tuple[int, int]:
    kind, _, outcome = type_key.partition(":")
    outcomes = list(OUTCOMES)
    return (
        list(KIND_LABELS).index(kind) if kind in KIND_LABELS else len(KIND_LABELS),
        outcomes.index(outcome) if outcome in outcomes else len(outcomes),
    )


def _decision_day(payload_text: str, occurred_at: datetime) -> tuple[date, str | None]:
    """A determination's decision date and outcome from its event payload; the London
    date it was recorded when the payload has no usable date."""
    try:
        payload = json.loads(payload_text or "{}")
    except ValueError:
        payload = {}
    outcome = payload.get("outcome") if isinstance(payload, dict) else None
    raw = payload.get("decision_date") if isinstance(payload, dict) else None
    try:
        day = date.fromisoformat(raw) if isinstance(raw, str) else london_date(occurred_at)
    except ValueError:
        day = london_date(occurred_at)
    return day, outcome if isinstance(outcome, str) else None


def agreed_action_plans(
    session: Session, premises_ids: Sequence[int] | None = None
) -> list[tuple[int, date]]:
    """(premises id, agreed on) of every action plan agreed with a licence holder, of the
    given premises (all when None)."""
    return [(int(premises_id), day) for premises_id, day in agreed_plans(session, premises_ids)]


@cache
def _intervention_events(of_premises: bool, from_first: bool) -> Select[*tuple[Any, ...]]:
    """`find_interventions`' read of the audit trail, built once per shape (see
    licensing.db): every premises page reads it for one premises. Of table columns: Core
    rows."""
    events = AuditEvent.__table__.c
    query = select(
        events.premises_id,
        events.event,
        events.occurred_at,
        events.payload,
        events.seq,
        events.to_state,
    ).where(
        events.event.in_(("warn", "record_determination")),
        events.premises_id.is_not(None),
    )
    if of_premises:
        query = query.where(events.premises_id.in_(bindparam("premises_ids", expanding=True)))
    if from_first:
        # A decision is never recorded before it is made, so nothing on or after `first`
        # was recorded before it.
        query = query.where(events.occurred_at >= bindparam("from_at"))
    return query


def find_interventions(
    session: Session,
    premises_ids: Sequence[int] | None = None,
    first: date | None = None,
    last: date | None = None,
    *,
    with_plans: bool = True,
) -> list[Intervention]:
    """Warnings, agreed action plans and review outcomes, on the given premises (all when
    None), whose day falls in first … last (inclusive, either end open), oldest first.
    `with_plans` False leaves out action plans, unread (for premises known to have none)."""
    statement = _intervention_events(premises_ids is not None, first is not None)
    parameters = {
        "premises_ids": list(premises_ids or ()),
        "from_at": day_start(first) if first is not None else None,
    }
    found: list[Intervention] = []
    for premises_id, event, occurred_at, payload, seq, to_state in session.execute(
        statement, parameters
    ):
        if premises_id is None:  # pragma: no cover - the query asks for premises events
            continue
        if event == "warn":
            found.append(
                Intervention(
                    int(premises_id), WARNING, london_date(occurred_at), None, seq, to_state
                )
            )
        else:
            day, outcome = _decision_day(payload, occurred_at)
            found.append(
                Intervention(int(premises_id), REVIEW_OUTCOME, day, outcome, seq, to_state)
            )
    if with_plans:
        for premises_id, agreed_on in agreed_action_plans(session, premises_ids):
            found.append(Intervention(premises_id, ACTION_PLAN, agreed_on))
    return sorted(
        (
            iv
            for iv in found
            if (first is None or iv.on >= first) and (last is None or iv.on <= last)
        ),
        key=lambda iv: (iv.on, iv.premises_id, _type_order(iv.type_key), iv.seq or 0),
    )


# ---- counting --------------------------------------------------------------------------


class IncidentCounter(Protocol):
    """Anything that counts a premises' confirmed incidents in [start, end)."""

    def count(self, premises_id: int, start: datetime, end: datetime) -> int:
        """Incidents of the premises counted in [start, end)."""
        ...


class IncidentTimes:
    """Confirmed incidents' counted times per premises, sorted, for counting windows."""

    def __init__(self, times: dict[int, list[datetime]]) -> None:
        self._times = times
        self._merged: list[tuple[datetime, int]] | None = None
        self._instants: list[datetime] = []

    @classmethod
    def load(
        cls,
        session: Session,
        start: datetime,
        end: datetime,
        premises_ids: Sequence[int] | None = None,
    ) -> IncidentTimes:
        """Every confirmed incident counted in [start, end), of the given premises (all
        when None)."""
        query = (
            select(PremisesIncidentLink.premises_id, Incident.counted_at)
            .join(Incident, Incident.id == PremisesIncidentLink.incident_id)
            .where(
                PremisesIncidentLink.status == "confirmed",
                Incident.counted_at >= start,
                Incident.counted_at < end,
            )
        )
        if premises_ids is not None:
            query = query.where(PremisesIncidentLink.premises_id.in_(list(premises_ids)))
        times: dict[int, list[datetime]] = {}
        for premises_id, counted_at in session.execute(query):
            times.setdefault(int(premises_id), []).append(counted_at)
        for values in times.values():
            values.sort()
        return cls(times)

    def counts_between(self, start: datetime, end: datetime) -> dict[int, int]:
        """Incidents counted in [start, end), per premises that has any."""
        if self._merged is None:
            # Every premises' times in one sorted list: a window's incidents are a slice.
            self._merged = sorted(
                (moment, premises_id)
                for premises_id, values in self._times.items()
                for moment in values
            )
            self._instants = [moment for moment, _ in self._merged]
        counts: dict[int, int] = {}
        if end <= start:
            return counts
        lo, hi = bisect_left(self._instants, start), bisect_left(self._instants, end)
        for _moment, premises_id in self._merged[lo:hi]:
            counts[premises_id] = counts.get(premises_id, 0) + 1
        return counts

    def count(self, premises_id: int, start: datetime, end: datetime) -> int:
        """Incidents of the premises counted in [start, end)."""
        values = self._times.get(premises_id)
        if not values or end <= start:
            return 0
        return bisect_left(values, end) - bisect_left(values, start)


# Windows counted per statement: SQLite allows 32,766 bound parameters and each window
# takes two; a premises with more interventions than this costs one statement more.
WINDOWS_PER_STATEMENT = 500


class WindowCounts:
    """One premises' confirmed incidents counted in SQL for a known set of windows (a
    COUNT per window in one statement), rather than every incident loaded to count."""

    def __init__(self, premises_id: int, counts: dict[tuple[datetime, datetime], int]) -> None:
        self._premises_id = premises_id
        self._counts = counts

    @classmethod
    def load(
        cls, session: Session, premises_id: int, windows: Iterable[tuple[datetime, datetime]]
    ) -> WindowCounts:
        """The premises' confirmed incidents counted in each [start, end) of `windows`."""
        wanted = sorted({(start, end) for start, end in windows if end > start})
        counts: dict[tuple[datetime, datetime], int] = {}
        for at in range(0, len(wanted), WINDOWS_PER_STATEMENT):
            chunk = wanted[at : at + WINDOWS_PER_STATEMENT]
            parameters: dict[str, Any] = {
                "premises_id": premises_id,
                "span_start": min(start for start, _ in chunk),
                "span_end": max(end for _, end in chunk),
            }
            for index, (start, end) in enumerate(chunk):
                parameters[f"start_{index}"], parameters[f"end_{index}"] = start, end
            row = session.execute(_window_counts(len(chunk)), parameters).one()
            counts.update(zip(chunk, (int(value) for value in row), strict=True))
        return cls(premises_id, counts)

    def count(self, premises_id: int, start: datetime, end: datetime) -> int:
        """Incidents of the premises counted in [start, end) (0 for an empty window); a
        window that was not loaded is a programming error."""
        if end <= start:
            return 0
        if premises_id != self._premises_id:
            raise KeyError(f"counts were loaded for premises {self._premises_id} only")
        return self._counts[(start, end)]


@lru_cache(maxsize=32)
def _window_counts(windows: int) -> Select[Any]:
    """`WindowCounts.load`'s statement for a number of windows (`start_N`, `end_N`),
    built once for each of the few numbers a premises page asks for (see licensing.db),
    of table columns (a Core row)."""
    links = PremisesIncidentLink.__table__.c
    counted_at = links.incident_counted_at
    columns = [
        func.coalesce(
            func.sum(
                case(
                    (
                        (counted_at >= bindparam(f"start_{index}"))
                        & (counted_at < bindparam(f"end_{index}")),
                        1,
                    ),
                    else_=0,
                )
            ),
            0,
        )
        for index in range(windows)
    ]
    # Bounded by the premises and the windows' span, so only the premises' links in that
    # span are read, from the links' index alone (each link carries its incident's
    # counted_at: ix_premises_incident_links_premises_status_counted).
    return select(*columns).where(
        links.premises_id == bindparam("premises_id"),
        links.status == "confirmed",
        counted_at >= bindparam("span_start"),
        counted_at < bindparam("span_end"),
    )


def _span(windows: Iterable[Windows]) -> tuple[datetime, datetime] | None:
    spans = [(w.before_start, w.after_end) for w in windows]
    if not spans:
        return None
    return min(s for s, _ in spans), max(e for _, e in spans)


@dataclass(frozen=True)
class Assessment:
    """An intervention's confirmed incidents before and after. When the after window is
    incomplete, `after` is the count so far (to now)."""

    intervention: Intervention
    windows: Windows
    before: int
    after: int
    complete: bool
    days_elapsed: int

    @property
    def change(self) -> int | None:
        """After minus before; None while the after window is incomplete."""
        return self.after - self.before if self.complete else None

    @property
    def percent_change(self) -> float | None:
        """The change as a percentage of the before count: only for a complete window
        with incidents before (never a division by zero)."""
        if not self.complete or self.before == 0:
            return None
        return (self.after - self.before) * 100.0 / self.before

    @property
    def change_text(self) -> str:
        """The change in words, without misleading percentages."""
        if not self.complete:
            return (
                f"Incomplete: {self.after} so far, {self.days_elapsed} of {self.windows.days} days"
            )
        if self.before == 0:
            return "No incidents before" + ("" if self.after == 0 else f"; {self.after} after")
        change = self.after - self.before
        if change == 0:
            return "No change"
        percent = self.percent_change or 0.0
        return f"{change:+d} ({percent:+.0f}%)"


def assess(
    interventions: Sequence[Intervention],
    days: int,
    now: datetime,
    times: IncidentCounter,
) -> list[Assessment]:
    """Before/after figures of each intervention from loaded incident times or counts."""
    out: list[Assessment] = []
    for iv in interventions:
        w = Windows(iv.on, days)
        complete = w.complete(now)
        out.append(
            Assessment(
                intervention=iv,
                windows=w,
                before=times.count(iv.premises_id, w.before_start, min(w.before_end, now)),
                after=times.count(iv.premises_id, w.after_start, min(w.after_end, now)),
                complete=complete,
                days_elapsed=w.days_elapsed(now),
            )
        )
    return out


def premises_assessment(
    session: Session,
    premises: Premises,
    days: int,
    now: datetime | None = None,
    *,
    any_plan: bool = True,
) -> list[Assessment]:
    """Each intervention on the premises with its before/after figures, newest first.
    `any_plan` False: the caller knows the premises has no action plan (not read)."""
    now = now or utcnow()
    interventions = find_interventions(session, [premises.id], with_plans=any_plan)
    if not interventions:
        return []
    # The same bounds assess() asks for: each window, cut off at now while it runs.
    bounds: list[tuple[datetime, datetime]] = []
    for iv in interventions:
        w = Windows(iv.on, days)
        bounds += [
            (w.before_start, min(w.before_end, now)),
            (w.after_start, min(w.after_end, now)),
        ]
    counts = WindowCounts.load(session, premises.id, bounds)
    return list(reversed(assess(interventions, days, now, counts)))


# ---- state history -----------------------------------------------------------------------


@dataclass(frozen=True)
class StateTrail:
    """A premises' state-bearing audit events, in chain order: (seq, occurred_at, to_state)."""

    events: list[tuple[int, datetime, str]] = field(default_factory=list)

    def state_at(self, moment: datetime) -> str | None:
        """The state at `moment`: the last state event before it. Before its first event
        a premises counts as `monitored`, where every premises starts and where one not
        yet registered was, as far as this app knows (None: no events at all)."""
        if not self.events:
            return None
        state: str | None = MONITORED
        for _seq, occurred_at, to_state in self.events:
            if occurred_at < moment:
                state = to_state
        return state

    def stayed_monitored(self, start: datetime, end: datetime) -> bool:
        """In `monitored` at `start` and left in no other state before `end`."""
        if self.state_at(start) != MONITORED:
            return False
        return all(
            to_state == MONITORED
            for _seq, occurred_at, to_state in self.events
            if start <= occurred_at < end
        )


class IndexedTrail:
    """A state trail with its event times and its times of leaving `monitored` sorted,
    so `stayed_monitored` bisects rather than reads every event (the force report asks
    it for hundreds of windows)."""

    def __init__(self, trail: StateTrail) -> None:
        self.trail = trail
        self._times = [occurred_at for _seq, occurred_at, _state in trail.events]
        self._states = [to_state for _seq, _at, to_state in trail.events]
        # Bisecting for the state at a moment needs times in chain order; a chain
        # recorded out of time order (never in practice) reads every event instead.
        self._in_order = all(a <= b for a, b in zip(self._times, self._times[1:], strict=False))
        self._away = sorted(at for _seq, at, to_state in trail.events if to_state != MONITORED)

    def stayed_monitored(self, start: datetime, end: datetime) -> bool:
        """The same answer as StateTrail.stayed_monitored."""
        if bisect_left(self._away, start) != bisect_left(self._away, end):
            return False
        if not self._in_order:
            return self.trail.stayed_monitored(start, end)
        if not self._times:
            return False
        before = bisect_left(self._times, start)
        return (self._states[before - 1] if before else MONITORED) == MONITORED


def load_trails(session: Session) -> dict[int, StateTrail]:
    """Every premises' state trail from the audit chains."""
    trails: dict[int, StateTrail] = {}
    for premises_id, seq, occurred_at, to_state in session.execute(
        select(AuditEvent.premises_id, AuditEvent.seq, AuditEvent.occurred_at, AuditEvent.to_state)
        .where(AuditEvent.premises_id.is_not(None), AuditEvent.to_state.is_not(None))
        .order_by(AuditEvent.premises_id, AuditEvent.seq)
    ):
        if premises_id is None:  # pragma: no cover - the query asks for premises events
            continue
        trails.setdefault(int(premises_id), StateTrail()).events.append(
            (int(seq), occurred_at, str(to_state))
        )
    return trails


def deescalated(iv: Intervention, trail: StateTrail, now: datetime) -> bool | None:
    """Was the premises back in `monitored` within 183 days of the intervention? None
    while the 183 days have not all passed and it has not (yet)."""
    horizon = min(day_start(iv.on + timedelta(days=DEESCALATION_DAYS + 1)), now)
    complete = now >= day_start(iv.on + timedelta(days=DEESCALATION_DAYS + 1))
    if iv.seq is not None:
        states = [iv.to_state] + [
            to_state
            for seq, occurred_at, to_state in trail.events
            if seq > iv.seq and occurred_at < horizon
        ]
    else:
        start = day_start(iv.on + timedelta(days=1))
        states = [trail.state_at(start)] + [
            to_state
            for _seq, occurred_at, to_state in trail.events
            if start <= occurred_at < horizon
        ]
    if MONITORED in states:
        return True
    return False if complete else None


# ---- the force report --------------------------------------------------------------------


def median(values: Sequence[int]) -> float | None:
    """The median, or None for no values."""
    return float(statistics.median(values)) if values else None


@dataclass(frozen=True)
class ReportRow:
    """One intervention in the force report, with its premises and de-escalation."""

    assessment: Assessment
    premises_name: str
    licence_number: str
    authority_code: str
    authority_name: str
    deescalated: bool | None


@dataclass(frozen=True)
class GroupFigures:
    """The figures of a group of interventions (all, one type, or one authority)."""

    key: str
    label: str
    interventions: int
    premises: int
    complete: int
    median_before: float | None
    median_after: float | None
    deescalated: int
    deescalation_known: int

    @property
    def share_deescalated(self) -> float | None:
        """Percentage of those whose outcome is known that were de-escalated."""
        if not self.deescalation_known:
            return None
        return self.deescalated * 100.0 / self.deescalation_known


def group_figures(key: str, label: str, rows: Sequence[ReportRow]) -> GroupFigures:
    """Counts, medians (complete after windows only) and the de-escalated share."""
    complete = [r.assessment for r in rows if r.assessment.complete]
    known = [r for r in rows if r.deescalated is not None]
    return GroupFigures(
        key=key,
        label=label,
        interventions=len(rows),
        premises=len({r.assessment.intervention.premises_id for r in rows}),
        complete=len(complete),
        median_before=median([a.before for a in complete]),
        median_after=median([a.after for a in complete]),
        deescalated=sum(1 for r in known if r.deescalated),
        deescalation_known=len(known),
    )


@dataclass(frozen=True)
class Match:
    """An intervention and the comparison premises matched to it, on the same dates."""

    assessment: Assessment
    control_premises_id: int
    control_before: int
    control_after: int


@dataclass(frozen=True)
class Comparison:
    """The comparison group for a set of interventions with complete after windows."""

    label: str
    eligible: int
    matches: list[Match]
    minimum: int = COMPARISON_MINIMUM

    @property
    def available(self) -> bool:
        """True when enough interventions found a match to compare at all."""
        return len(self.matches) >= self.minimum

    @property
    def median_before(self) -> float | None:
        """Median before count of the matched interventions."""
        return median([m.assessment.before for m in self.matches])

    @property
    def median_after(self) -> float | None:
        """Median after count of the matched interventions."""
        return median([m.assessment.after for m in self.matches])

    @property
    def control_median_before(self) -> float | None:
        """Median before count of their comparison premises."""
        return median([m.control_before for m in self.matches])

    @property
    def control_median_after(self) -> float | None:
        """Median after count of their comparison premises."""
        return median([m.control_after for m in self.matches])


@dataclass(frozen=True)
class ForceReport:
    """The force's interventions in a period and what followed them."""

    first: date
    last: date
    days: int
    now: datetime
    rows: list[ReportRow]
    premises_warned: int
    premises_reviewed: int
    premises_with_plans: int
    overall: GroupFigures
    by_type: list[GroupFigures]
    by_authority: list[GroupFigures]
    comparisons: list[Comparison]

    @property
    def incomplete(self) -> int:
        """Interventions whose after window has not ended (left out of the medians)."""
        return sum(1 for r in self.rows if not r.assessment.complete)


def _tolerance(before: int) -> int:
    return before // 5


@dataclass(frozen=True)
class _Candidates:
    """The comparison premises of one window, by their count before: (premises id,
    count after) in id order. `steady` (shared by every window) are the premises always
    monitored with no action plan, in id order: those not in `counted` had no incident in
    the window, so count 0 before and 0 after."""

    by_before: dict[int, list[tuple[int, int]]]
    steady: list[int]
    counted: set[int]

    def nearest(self, before: int, tolerance: int, exclude: int) -> tuple[int, int, int] | None:
        """(premises id, before, after) of the candidate whose count before is nearest
        `before` within `tolerance`, the lowest id on a tie; never `exclude`."""
        for distance in range(tolerance + 1):
            best: tuple[int, int, int] | None = None
            for value in {before - distance, before + distance}:
                if value < 0:
                    continue
                first = next(
                    (
                        (pid, after)
                        for pid, after in self.by_before.get(value, ())
                        if pid != exclude
                    ),
                    None,
                )
                if first is not None and (best is None or first[0] < best[0]):
                    best = (first[0], value, first[1])
                if value == 0:
                    pid = next(
                        (p for p in self.steady if p != exclude and p not in self.counted), None
                    )
                    if pid is not None and (best is None or pid < best[0]):
                        best = (pid, 0, 0)
            if best is not None:
                return best
        return None


def _candidates(
    windows: Windows,
    others: dict[int, IndexedTrail],
    plan_days: dict[int, list[date]],
    times: IncidentTimes,
    steady: list[int],
    steady_ids: set[int],
) -> _Candidates:
    """Every premises that stayed monitored with no intervention through both windows,
    by its count before. The steady premises always qualify: only those with incidents
    in the window are listed; `others` are checked one by one."""
    # The window's bounds once, not per premises: 10,000 premises × hundreds of windows.
    before_start, before_end = windows.before_start, windows.before_end
    after_start, after_end = windows.after_start, windows.after_end
    first_day, last_day = windows.before_first, windows.after_last
    before_counts = times.counts_between(before_start, before_end)
    after_counts = times.counts_between(after_start, after_end)
    by_before: dict[int, list[tuple[int, int]]] = {}
    counted = (set(before_counts) | set(after_counts)) & steady_ids
    for premises_id in counted:
        by_before.setdefault(before_counts.get(premises_id, 0), []).append(
            (premises_id, after_counts.get(premises_id, 0))
        )
    for premises_id, trail in others.items():
        if not trail.stayed_monitored(before_start, after_end):
            continue
        if any(first_day <= day <= last_day for day in plan_days.get(premises_id, ())):
            continue
        by_before.setdefault(before_counts.get(premises_id, 0), []).append(
            (premises_id, after_counts.get(premises_id, 0))
        )
    for rows in by_before.values():
        rows.sort()
    return _Candidates(by_before, steady, counted)


def match_comparisons(
    assessments: Sequence[Assessment],
    trails: dict[int, StateTrail],
    plan_days: dict[int, list[date]],
    times: IncidentTimes,
) -> dict[Intervention, Match]:
    """The nearest comparison premises of each intervention with a complete after window
    (see the module docstring for the rule); interventions with none are left out."""
    # Most premises are always monitored and have no plan: they qualify in every window,
    # so they are set apart once and only their incidents are looked at per window.
    steady = sorted(
        premises_id
        for premises_id, trail in trails.items()
        if trail.events
        and not plan_days.get(premises_id)
        and all(to_state == MONITORED for _seq, _at, to_state in trail.events)
    )
    steady_ids = set(steady)
    others = {pid: IndexedTrail(trail) for pid, trail in trails.items() if pid not in steady_ids}
    cache: dict[Windows, _Candidates] = {}
    matches: dict[Intervention, Match] = {}
    for a in assessments:
        if not a.complete:
            continue
        if a.windows not in cache:
            cache[a.windows] = _candidates(a.windows, others, plan_days, times, steady, steady_ids)
        best = cache[a.windows].nearest(a.before, _tolerance(a.before), a.intervention.premises_id)
        if best is not None:
            matches[a.intervention] = Match(a, best[0], best[1], best[2])
    return matches


def force_report(
    session: Session,
    user: User,
    first: date,
    last: date,
    days: int,
    now: datetime | None = None,
) -> ForceReport:
    """Interventions with their day in first … last on premises the user may see, with
    before/after figures, de-escalation, medians by type and by authority, and the
    comparison group."""
    now = now or utcnow()
    visible = {
        int(pid): (name, licence, code, authority_name, authority_id)
        for pid, name, licence, code, authority_name, authority_id in session.execute(
            select(
                Premises.id,
                Premises.name,
                Premises.licence_number,
                LicensingAuthority.code,
                LicensingAuthority.name,
                LicensingAuthority.id,
            )
            .join(LicensingAuthority, LicensingAuthority.id == Premises.authority_id)
            .where(premises_visible_to(user))
        )
    }
    interventions = [
        iv for iv in find_interventions(session, None, first, last) if iv.premises_id in visible
    ]
    span = _span(Windows(iv.on, days) for iv in interventions)
    # Comparison premises need every premises' counts on the same dates: load them all
    # once for the whole span rather than query per intervention.
    times = IncidentTimes.load(session, span[0], span[1]) if span else IncidentTimes({})
    assessments = assess(interventions, days, now, times)
    trails = load_trails(session)
    rows = [
        ReportRow(
            assessment=a,
            premises_name=visible[a.intervention.premises_id][0],
            licence_number=visible[a.intervention.premises_id][1],
            authority_code=visible[a.intervention.premises_id][2],
            authority_name=visible[a.intervention.premises_id][3],
            deescalated=deescalated(
                a.intervention, trails.get(a.intervention.premises_id, StateTrail()), now
            ),
        )
        for a in assessments
    ]
    by_type: dict[str, list[ReportRow]] = {}
    by_authority: dict[str, list[ReportRow]] = {}
    for row in rows:
        by_type.setdefault(row.assessment.intervention.type_key, []).append(row)
        by_authority.setdefault(row.authority_code, []).append(row)
    plan_days: dict[int, list[date]] = {}
    for premises_id, agreed_on in agreed_action_plans(session):
        plan_days.setdefault(premises_id, []).append(agreed_on)
    # Comparison premises come from everything the user may see, not only the
    # intervention premises: the group is premises that had no intervention.
    candidate_trails = {pid: trail for pid, trail in trails.items() if pid in visible}
    matches = match_comparisons(assessments, candidate_trails, plan_days, times)

    def comparison(label: str, group: Sequence[ReportRow]) -> Comparison:
        complete = [r.assessment for r in group if r.assessment.complete]
        return Comparison(
            label=label,
            eligible=len(complete),
            matches=[matches[a.intervention] for a in complete if a.intervention in matches],
        )

    type_keys = sorted(by_type, key=_type_order)
    authority_names = {row.authority_code: row.authority_name for row in rows}
    return ForceReport(
        first=first,
        last=last,
        days=days,
        now=now,
        rows=rows,
        premises_warned=len(
            {r.assessment.intervention.premises_id for r in by_type.get(WARNING, [])}
        ),
        premises_reviewed=len(
            {
                r.assessment.intervention.premises_id
                for r in rows
                if r.assessment.intervention.kind == REVIEW_OUTCOME
            }
        ),
        premises_with_plans=len(
            {r.assessment.intervention.premises_id for r in by_type.get(ACTION_PLAN, [])}
        ),
        overall=group_figures("all", "All interventions", rows),
        by_type=[group_figures(key, type_label(key), by_type[key]) for key in type_keys],
        by_authority=[
            group_figures(code, authority_names[code], by_authority[code])
            for code in sorted(by_authority, key=lambda c: authority_names[c])
        ],
        comparisons=[comparison("All interventions", rows)]
        + [comparison(type_label(key), by_type[key]) for key in type_keys],
    )


# ---- CSV -------------------------------------------------------------------------------------


def _number(value: float | None) -> str:
    """A median or share for a CSV cell: blank when there is none, no trailing .0."""
    if value is None:
        return ""
    return f"{value:.1f}".removesuffix(".0")


def _deescalation_word(value: bool | None) -> str:
    return "not yet known" if value is None else ("yes" if value else "no")


def interventions_csv(report: ForceReport) -> str:
    """One row per intervention of the report (spreadsheet-formula safe)."""
    header = [
        "premises_id",
        "premises",
        "licence_number",
        "authority",
        "intervention",
        "intervention_date",
        "window_days",
        "before_from",
        "before_to",
        "after_from",
        "after_to",
        "before",
        "after",
        "after_window",
        "change",
        "percent_change",
        "de_escalated_within_183_days",
    ]
    rows: list[list[Any]] = []
    for row in report.rows:
        a = row.assessment
        w = a.windows
        rows.append(
            [
                a.intervention.premises_id,
                row.premises_name,
                row.licence_number,
                row.authority_code,
                a.intervention.label,
                a.intervention.on.isoformat(),
                w.days,
                w.before_first.isoformat(),
                w.before_last.isoformat(),
                w.after_first.isoformat(),
                w.after_last.isoformat(),
                a.before,
                a.after,
                "complete"
                if a.complete
                else f"incomplete ({a.days_elapsed} of {w.days} days so far)",
                a.change if a.change is not None else "",
                f"{a.percent_change:.1f}" if a.percent_change is not None else "",
                _deescalation_word(row.deescalated),
            ]
        )
    return write_csv(header, rows)


def summary_csv(report: ForceReport) -> str:
    """The report's figures by group and its comparison group (spreadsheet-formula safe)."""
    header = [
        "grouping",
        "group",
        "interventions",
        "premises",
        "complete_after_window",
        "median_before",
        "median_after",
        "de_escalated",
        "de_escalation_known",
        "share_de_escalated_percent",
        "note",
    ]
    rows: list[list[Any]] = []
    groups = (
        [("all", report.overall)]
        + [("type", g) for g in report.by_type]
        + [("authority", g) for g in report.by_authority]
    )
    for grouping, g in groups:
        rows.append(
            [
                grouping,
                g.label,
                g.interventions,
                g.premises,
                g.complete,
                _number(g.median_before),
                _number(g.median_after),
                g.deescalated,
                g.deescalation_known,
                _number(g.share_deescalated),
                "",
            ]
        )
    for c in report.comparisons:
        if not c.available:
            rows.append(
                [
                    "comparison",
                    c.label,
                    c.eligible,
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    f"too few matches to compare ({len(c.matches)}; at least {c.minimum} needed)",
                ]
            )
            continue
        rows.append(
            [
                "comparison: intervention premises",
                c.label,
                len(c.matches),
                "",
                len(c.matches),
                _number(c.median_before),
                _number(c.median_after),
                "",
                "",
                "",
                "",
            ]
        )
        rows.append(
            [
                "comparison: premises with no intervention",
                c.label,
                len(c.matches),
                "",
                len(c.matches),
                _number(c.control_median_before),
                _number(c.control_median_after),
                "",
                "",
                "",
                "monitored throughout, similar incidents before, same dates",
            ]
        )
    rows.append(["caveat", "", "", "", "", "", "", "", "", "", REGRESSION_CAVEAT])
    return write_csv(header, rows)


def resolve_period(first: date | None, last: date | None, today: date) -> tuple[date, date]:
    """The report's period: blank ends default to a year up to today; refuse a period
    that ends before it begins (ValidationFailed naming the field)."""
    for name, day in (("period_from", first), ("period_to", last)):
        if day is not None and not EARLIEST_DAY <= day <= LATEST_DAY:
            message = (
                f"Enter a date from {EARLIEST_DAY.strftime('%-d %B %Y')} to "
                f"{LATEST_DAY.strftime('%-d %B %Y')}"
            )
            raise ValidationFailed(message, {name: message})
    last = last or today
    first = first or (last - timedelta(days=365))
    if first > last:
        raise ValidationFailed(
            "The start of the period must be on or before its end",
            {"period_from": "The start of the period must be on or before its end"},
        )
    return first, last
