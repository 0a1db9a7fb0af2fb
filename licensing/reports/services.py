"""The figures behind the map and the charts, all within what the user may see.

Every query starts from `premises_visible_to(user)`, so a council user's map and charts
count only their own authority's premises under review or in action (the council rule),
and never learn that any other premises exists.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from licensing.audit.models import AuditEvent
from licensing.auth.models import Role, User
from licensing.auth.permissions import premises_visible_to
from licensing.db import utcnow
from licensing.incidents.models import Incident, PremisesIncidentLink
from licensing.premises.models import LicensingAuthority, Premises
from licensing.premises.workflow import STATE_LABELS, STATES
from licensing.timeutil import LONDON

DENSITY_DAYS = 90
MONTHS = 12
# The legend's sample counts for the incident circles.
DENSITY_LEGEND = (1, 5, 20)
# Each map marker carries its state's initial, so colour is never the only cue.
STATE_INITIALS = {"monitored": "M", "warned": "W", "review": "R", "action": "A"}


def density_radius(incidents: int) -> int:
    """The radius in screen pixels of the circle drawn round a premises for its recent
    incidents (0: no circle): area grows with the count, capped so that a busy premises
    does not hide its neighbours. The map and its legend both use this."""
    if incidents <= 0:
        return 0
    return min(10 + round(4 * incidents**0.5), 40)


@dataclass(frozen=True)
class MapFilter:
    """What the map can be filtered on: a state and an authority code."""

    state: str | None = None
    authority: str | None = None


@dataclass(frozen=True)
class MapPremises:
    """One premises as the map and its table show it."""

    id: int
    name: str
    licence_number: str
    postcode: str
    authority: str
    state: str
    latitude: float | None
    longitude: float | None
    incidents: int

    @property
    def located(self) -> bool:
        """True when the premises has coordinates and so appears on the map."""
        return self.latitude is not None and self.longitude is not None


def authorities_for(session: Session, user: User) -> list[LicensingAuthority]:
    """The authorities a user may choose between: a council user only their own."""
    query = select(LicensingAuthority).order_by(LicensingAuthority.name)
    if user.role == Role.COUNCIL:
        query = query.where(LicensingAuthority.id == user.authority_id)
    return list(session.scalars(query))


def _authority_clause(authority: str | None) -> ColumnElement[bool] | None:
    if not authority:
        return None
    code = authority.strip().upper()
    return Premises.authority_id.in_(
        select(LicensingAuthority.id).where(LicensingAuthority.code == code)
    )


def map_premises(
    session: Session, user: User, filters: MapFilter, now: datetime | None = None
) -> list[MapPremises]:
    """The premises the user may see (filtered), each with its confirmed incidents
    counted over the last 90 days, ordered by name."""
    now = now or utcnow()
    since = now - timedelta(days=DENSITY_DAYS)
    counts = (
        select(
            PremisesIncidentLink.premises_id.label("premises_id"),
            func.count(PremisesIncidentLink.incident_id).label("n"),
        )
        .join(Incident, Incident.id == PremisesIncidentLink.incident_id)
        .where(
            PremisesIncidentLink.status == "confirmed",
            Incident.counted_at >= since,
            Incident.counted_at <= now,
        )
        .group_by(PremisesIncidentLink.premises_id)
        .subquery()
    )
    query = (
        select(Premises, LicensingAuthority.name, func.coalesce(counts.c.n, 0))
        .join(LicensingAuthority, LicensingAuthority.id == Premises.authority_id)
        .outerjoin(counts, counts.c.premises_id == Premises.id)
        .where(premises_visible_to(user))
    )
    if filters.state:
        query = query.where(Premises.state == filters.state)
    clause = _authority_clause(filters.authority)
    if clause is not None:
        query = query.where(clause)
    rows = session.execute(query.order_by(Premises.name, Premises.id)).all()
    return [
        MapPremises(
            id=premises.id,
            name=premises.name,
            licence_number=premises.licence_number,
            postcode=premises.postcode,
            authority=authority_name,
            state=premises.state,
            latitude=premises.latitude,
            longitude=premises.longitude,
            incidents=int(count),
        )
        for premises, authority_name, count in rows
    ]


def map_json(
    items: list[MapPremises],
    tile_url: str,
    attribution: str,
    premises_url: Callable[[int], str],
) -> dict[str, object]:
    """What the map script reads from the page: the tiles, the states' names, and the
    premises that have coordinates, each with its incident count and page address."""
    return {
        "tiles": {"url": tile_url, "attribution": attribution},
        "densityDays": DENSITY_DAYS,
        "stateLabels": dict(STATE_LABELS),
        "stateInitials": STATE_INITIALS,
        "premises": [
            {
                "id": item.id,
                "name": item.name,
                "state": item.state,
                "lat": item.latitude,
                "lon": item.longitude,
                "incidents": item.incidents,
                "radius": density_radius(item.incidents),
                "url": premises_url(item.id),
            }
            for item in items
            if item.located
        ],
    }


# ---- months ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Month:
    """One calendar month (London) and the instant its figures are taken at: the end of
    the month, or now for the month in progress."""

    year: int
    month: int
    start: datetime
    at: datetime
    current: bool

    @property
    def key(self) -> str:
        """'2026-03'."""
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def label(self) -> str:
        """'Mar 2026'."""
        return self.start.astimezone(LONDON).strftime("%b %Y")

    @property
    def short_label(self) -> str:
        """'Mar'."""
        return self.start.astimezone(LONDON).strftime("%b")


def _month_start(year: int, month: int) -> datetime:
    """Midnight on the first of the month, London time, as a UTC instant."""
    return datetime(year, month, 1, tzinfo=LONDON).astimezone(UTC)


def last_months(now: datetime | None = None, count: int = MONTHS) -> list[Month]:
    """The `count` calendar months (London) ending with the current one, oldest first."""
    now = now or utcnow()
    local = now.astimezone(LONDON)
    year, month = local.year, local.month
    pairs: list[tuple[int, int]] = []
    for _ in range(count):
        pairs.append((year, month))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    months: list[Month] = []
    for index, (y, m) in enumerate(reversed(pairs)):
        current = index == count - 1
        next_start = _month_start(y + 1, 1) if m == 12 else _month_start(y, m + 1)
        months.append(
            Month(
                year=y,
                month=m,
                start=_month_start(y, m),
                at=now if current else next_start,
                current=current,
            )
        )
    return months


# ---- premises by state over time -----------------------------------------------------------


@dataclass(frozen=True)
class StateSeries:
    """Premises in each state at the end of each month."""

    months: list[Month]
    series: dict[str, list[int]]

    @property
    def totals(self) -> list[int]:
        """All premises counted at each month's end."""
        return [sum(values[i] for values in self.series.values()) for i in range(len(self.months))]


def states_over_time(
    session: Session, user: User, authority: str | None = None, now: datetime | None = None
) -> StateSeries:
    """Premises per state at each month-end of the last 12 months, rebuilt from the audit
    trail: a premises' state at a month's end is the `to_state` of the last state-bearing
    event on its chain (in chain order) before it; before its first such event it is
    not counted.
    The month in progress shows the current states. A premises with no state event in
    the trail counts in its current state from its creation."""
    now = now or utcnow()
    months = last_months(now)
    visible = select(Premises.id).where(premises_visible_to(user))
    clause = _authority_clause(authority)
    if clause is not None:
        visible = visible.where(clause)
    premises_rows = session.execute(
        select(Premises.id, Premises.state, Premises.created_at).where(Premises.id.in_(visible))
    ).all()
    events: dict[int, list[tuple[datetime, str]]] = {}
    for premises_id, occurred_at, to_state in session.execute(
        select(AuditEvent.premises_id, AuditEvent.occurred_at, AuditEvent.to_state)
        .where(
            AuditEvent.premises_id.in_(visible),
            AuditEvent.to_state.is_not(None),
            AuditEvent.occurred_at <= now,
        )
        .order_by(AuditEvent.premises_id, AuditEvent.seq)
    ):
        if premises_id is not None:
            events.setdefault(premises_id, []).append((occurred_at, str(to_state)))
    series = {state: [0] * len(months) for state in STATES}
    for premises_id, current_state, created_at in premises_rows:
        trail = events.get(premises_id)
        for index, month in enumerate(months):
            if month.current:
                state: str | None = current_state
            elif trail:
                # The chain's order (seq) decides; the last event before the month's end wins.
                state = None
                for occurred_at, to_state in trail:
                    if occurred_at < month.at:
                        state = to_state
            else:
                state = current_state if created_at < month.at else None
            if state in series:
                series[state][index] += 1
    return StateSeries(months=months, series=series)


# ---- incidents by category ------------------------------------------------------------------


@dataclass(frozen=True)
class CategoryCounts:
    """Confirmed incidents by category over a window, largest first."""

    since: datetime
    until: datetime
    counts: list[tuple[str, int]]

    @property
    def total(self) -> int:
        """All incidents counted."""
        return sum(n for _category, n in self.counts)


def incidents_by_category(
    session: Session, user: User, authority: str | None = None, now: datetime | None = None
) -> CategoryCounts:
    """Confirmed incidents linked to the (visible) premises of `authority` (all visible
    premises when None), by category, over the last 12 calendar months including this
    one. An incident linked to two such premises counts once."""
    now = now or utcnow()
    since = last_months(now)[0].start
    premises = select(Premises.id).where(premises_visible_to(user))
    clause = _authority_clause(authority)
    if clause is not None:
        premises = premises.where(clause)
    incidents = (
        select(PremisesIncidentLink.incident_id)
        .where(
            PremisesIncidentLink.status == "confirmed",
            PremisesIncidentLink.premises_id.in_(premises),
        )
        .distinct()
    )
    rows = session.execute(
        select(Incident.category, func.count(Incident.id))
        .where(
            Incident.id.in_(incidents),
            Incident.counted_at >= since,
            Incident.counted_at <= now,
        )
        .group_by(Incident.category)
    ).all()
    counted = Counter({str(category): int(n) for category, n in rows})
    ordered = sorted(counted.items(), key=lambda pair: (-pair[1], pair[0]))
    return CategoryCounts(since=since, until=now, counts=ordered)
