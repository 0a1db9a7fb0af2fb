"""What the dashboard at `/` shows: live counts and short lists, a few queries each.

Every figure is counted by the database when the page is asked for (nothing is
cached), and every query is bounded: counts are aggregates (a GROUP BY, or COUNTs run as
scalar subqueries beside a LIMITed list, each a range on an index) and lists are
LIMITed, so the page runs the same number of SQL statements however many premises,
incidents or deadlines there are (police 10 with the signed-in user's own load,
council 5, admin 3; tests/test_dashboard.py holds it to that).

Each count uses the same rule as the page it links to, so the number a user clicks
is the number they find there:

- premises by state: the premises list (`/premises?state=…`), the council rule included;
- open recommendations: `/recommendations`;
- deadlines: the team calendar (`/calendar`), whose days are London days (an hour
  rule's instant counts on its London date);
- visits: the visits list (`/visits?week=1`, `?overdue=1`, `&mine=1`), open visits only;
- incidents added in the last 7 days (by `created_at`: imported, posted by the API or
  typed in) and how many of them have a suggested link, the queue of `/incidents/suggestions`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, case, exists, func, literal, select, union_all
from sqlalchemy.orm import Session, aliased

from licensing.auth.models import User
from licensing.auth.permissions import COUNCIL_VISIBLE_STATES, premises_visible_to
from licensing.deadlines.models import Deadline
from licensing.evidence.models import Bundle
from licensing.evidence.services import bundles_visible_to
from licensing.incidents.models import Incident, PremisesIncidentLink, Recommendation
from licensing.notifications.models import OutboxEmail
from licensing.premises import workflow
from licensing.premises.models import Premises
from licensing.timeutil import LONDON, to_london
from licensing.visits.models import OPEN_STATUSES, Visit

# How far ahead "due soon" looks, and how far back "recent incidents" look.
DUE_SOON_DAYS = 14
RECENT_INCIDENT_DAYS = 7
# How many rows each short list shows; the counts beside them are always complete.
NEWEST_RECOMMENDATIONS = 5
DEADLINE_LINES = 10
VISIT_LINES = 10
CASELOAD_LINES = 20
COUNCIL_BUNDLES = 50
COUNCIL_PREMISES = 50

# Most pressing first: the order the caseload and the council's premises are listed in.
_STATE_RANK = {workflow.ACTION: 0, workflow.REVIEW: 1, workflow.WARNED: 2, workflow.MONITORED: 3}


# ---- what the templates get ---------------------------------------------------------


@dataclass(frozen=True)
class RecommendationLine:
    """One open recommendation, with the name of its premises."""

    id: int
    premises_id: int
    premises_name: str
    recommended_event: str
    summary: str
    created_at: datetime


@dataclass(frozen=True)
class Recommendations:
    """How many recommendations are open, and the newest few."""

    open_count: int
    newest: list[RecommendationLine]


@dataclass(frozen=True)
class DeadlineLine:
    """One open deadline on its London day; `due_at` is set for hour rules."""

    id: int
    premises_id: int
    premises_name: str
    kind: str
    day: date
    due_at: datetime | None
    overdue: bool


@dataclass(frozen=True)
class Deadlines:
    """Open deadlines: how many are overdue and due in the next 14 days, and the first few
    of each (the most overdue first; then the soonest)."""

    overdue_count: int
    due_soon_count: int
    overdue: list[DeadlineLine]
    due_soon: list[DeadlineLine]
    until: date


@dataclass(frozen=True)
class VisitLine:
    """One open visit (proposed or scheduled)."""

    id: int
    premises_id: int
    premises_name: str
    visit_date: date
    visit_type: str
    status: str
    officer_name: str | None
    overdue: bool


@dataclass(frozen=True)
class VisitCounts:
    """Open visits today, this week (Monday to Sunday) and overdue: the team's, and the
    signed-in user's own."""

    today: int
    this_week: int
    overdue: int
    mine_today: int
    mine_this_week: int
    mine_overdue: int
    week_from: date
    week_to: date


@dataclass(frozen=True)
class RecentIncidents:
    """Incidents added since `since`, and how many of them have a suggested link."""

    since: datetime
    added: int
    with_suggestions: int
    # Counts stop past this many: shown as "more than …" (see recent_incidents).
    cap: int = 10_000

    def shown(self, count: int) -> str:
        """A count as the dashboard shows it: exact up to the cap, else "more than"."""
        return f"{count:,}" if count <= self.cap else f"more than {self.cap:,}"


@dataclass(frozen=True)
class CaseloadLine:
    """A premises the user is case officer for, with its next open deadline."""

    premises_id: int
    name: str
    state: str
    next_deadline_kind: str | None
    next_deadline_day: date | None


@dataclass(frozen=True)
class Caseload:
    """The user's own premises (by state, and the most pressing first) and visits."""

    total: int
    by_state: dict[str, int]
    premises: list[CaseloadLine]
    visits: list[VisitLine]


@dataclass(frozen=True)
class PoliceDashboard:
    """Everything on an officer's or supervisor's home page."""

    today: date
    premises_by_state: dict[str, int]
    recommendations: Recommendations
    deadlines: Deadlines
    visits: VisitCounts
    visits_today: list[VisitLine]
    incidents: RecentIncidents
    caseload: Caseload


@dataclass(frozen=True)
class BundleLine:
    """A bundle shared with the council user's authority."""

    id: int
    label: str
    premises_id: int
    premises_name: str
    review_kind: str
    shared_at: datetime
    acknowledged_at: datetime | None


@dataclass(frozen=True)
class CouncilPremises:
    """A premises of the council's authority in review or action, and its open deadlines."""

    id: int
    name: str
    licence_number: str
    state: str
    deadlines: list[DeadlineLine]


@dataclass(frozen=True)
class CouncilDashboard:
    """A council user's home page: what was shared with them, and what they may see."""

    today: date
    bundles: list[BundleLine]
    bundles_total: int
    unacknowledged: int
    premises_by_state: dict[str, int]
    premises: list[CouncilPremises]


@dataclass(frozen=True)
class AdminDashboard:
    """An administrator's home page: the register by state and emails that failed."""

    premises_by_state: dict[str, int]
    failed_emails: int


# ---- helpers ----------------------------------------------------------------------------


def london_midnight(day: date) -> datetime:
    """The UTC instant a London day starts (GMT or BST)."""
    return datetime.combine(day, time(0), tzinfo=LONDON).astimezone(UTC)


def _deadline_day(due_date: date | None, due_at: datetime | None) -> date:
    if due_at is not None:
        return to_london(due_at).date()
    assert due_date is not None
    return due_date


def _due_order() -> Any:
    # A date and an instant of the same day sort together on both databases: SQLite
    # compares their ISO text, PostgreSQL promotes the date to a timestamp.
    return func.coalesce(Deadline.due_at, Deadline.due_date)


def _state_counts(session: Session, where: Any) -> dict[str, int]:
    rows = session.execute(
        select(Premises.state, func.count()).where(where).group_by(Premises.state)
    ).all()
    counts = {state: 0 for state in workflow.STATES}
    counts.update({state: int(n) for state, n in rows})
    return counts


def premises_by_state(session: Session, user: User) -> dict[str, int]:
    """How many premises the user may see are in each state (every state present, in
    workflow order); one GROUP BY."""
    return _state_counts(session, premises_visible_to(user))


# ---- the police dashboard ---------------------------------------------------------------


def open_recommendations(session: Session, limit: int = NEWEST_RECOMMENDATIONS) -> Recommendations:
    """The number of open recommendations and the newest `limit`, in one statement: the
    newest are picked from the recommendations alone, then joined to their premises, with
    the count (from the status index) beside them."""
    newest = (
        select(Recommendation.id)
        .where(Recommendation.status == "open")
        .order_by(Recommendation.created_at.desc(), Recommendation.id.desc())
        .limit(limit)
    )
    total = (
        select(func.count())
        .select_from(Recommendation)
        .where(Recommendation.status == "open")
        .scalar_subquery()
    )
    rows = session.execute(
        select(
            Recommendation.id,
            Recommendation.premises_id,
            Premises.name,
            Recommendation.recommended_event,
            Recommendation.summary,
            Recommendation.created_at,
            total.label("total"),
        )
        .join(Premises, Premises.id == Recommendation.premises_id)
        .where(Recommendation.id.in_(newest))
        .order_by(Recommendation.created_at.desc(), Recommendation.id.desc())
    ).all()
    return Recommendations(
        open_count=int(rows[0].total) if rows else 0,
        newest=[
            RecommendationLine(
                r.id, r.premises_id, r.name, r.recommended_event, r.summary, r.created_at
            )
            for r in rows
        ],
    )


def _open_day_rule(*conditions: Any) -> Any:
    return and_(Deadline.status == "open", *conditions)


def _open_hour_rule(*conditions: Any) -> Any:
    # Hour rules have no due_date: the (status, due_date) index finds them as NULLs.
    return and_(Deadline.status == "open", Deadline.due_date.is_(None), *conditions)


def _count(where: Any) -> Any:
    return select(func.count()).select_from(Deadline).where(where).scalar_subquery()


def open_deadlines(
    session: Session, today: date, days: int = DUE_SOON_DAYS, limit: int = DEADLINE_LINES
) -> Deadlines:
    """Open deadlines overdue (before `today`) and due from today to `days` ahead, each
    counted in full, with the first `limit` of each (soonest first, as the calendar
    lists them). Police only (no council rule applied). One statement: day rules and
    hour rules are ranged separately on the (status, due_date) index, each LIMITed,
    and only those rows are joined to their premises. The calendar's rule: a deadline's
    day is its London day, so an hour rule is compared with London midnights."""
    until = today + timedelta(days=days)
    midnight, after_until = london_midnight(today), london_midnight(until + timedelta(days=1))
    overdue_day = _open_day_rule(Deadline.due_date < today)
    overdue_hour = _open_hour_rule(Deadline.due_at < midnight)
    soon_day = _open_day_rule(Deadline.due_date >= today, Deadline.due_date <= until)
    soon_hour = _open_hour_rule(Deadline.due_at >= midnight, Deadline.due_at < after_until)

    def first(where: Any, column: Any) -> Any:
        arm = select(Deadline.id).where(where).order_by(column, Deadline.id).limit(limit)
        return select(arm.subquery().c.id)

    chosen = union_all(
        first(overdue_day, Deadline.due_date),
        first(overdue_hour, Deadline.due_at),
        first(soon_day, Deadline.due_date),
        first(soon_hour, Deadline.due_at),
    )
    rows = session.execute(
        select(
            Deadline.id,
            Deadline.premises_id,
            Premises.name,
            Deadline.kind,
            Deadline.due_date,
            Deadline.due_at,
            (_count(overdue_day) + _count(overdue_hour)).label("overdue_count"),
            (_count(soon_day) + _count(soon_hour)).label("soon_count"),
        )
        .join(Premises, Premises.id == Deadline.premises_id)
        .where(Deadline.id.in_(chosen))
    ).all()
    lines = sorted(
        (
            DeadlineLine(
                r.id,
                r.premises_id,
                r.name,
                r.kind,
                _deadline_day(r.due_date, r.due_at),
                r.due_at,
                _deadline_day(r.due_date, r.due_at) < today,
            )
            for r in rows
        ),
        key=lambda line: (line.day, line.due_at is not None, line.due_at or line.day, line.id),
    )
    return Deadlines(
        overdue_count=int(rows[0].overdue_count) if rows else 0,
        due_soon_count=int(rows[0].soon_count) if rows else 0,
        overdue=[line for line in lines if line.overdue][:limit],
        due_soon=[line for line in lines if not line.overdue][:limit],
        until=until,
    )


def visit_counts(session: Session, user: User, today: date) -> VisitCounts:
    """Open visits today, this week and overdue, the team's and the user's own: one
    statement of six counts, each a range on an index that covers it (the visits list's
    filters: `week=1`, `overdue=1`, `mine=1`)."""
    monday = today - timedelta(days=today.weekday())
    sunday = monday + timedelta(days=6)

    def count(*conditions: Any) -> Any:
        return (
            select(func.count())
            .select_from(Visit)
            .where(Visit.status.in_(OPEN_STATUSES), *conditions)
            .scalar_subquery()
        )

    mine = Visit.officer_id == user.id
    row = session.execute(
        select(
            count(Visit.visit_date == today),
            count(Visit.visit_date.between(monday, sunday)),
            count(Visit.visit_date < today),
            count(mine, Visit.visit_date == today),
            count(mine, Visit.visit_date.between(monday, sunday)),
            count(mine, Visit.visit_date < today),
        )
    ).one()
    today_n, week_n, overdue_n, mine_today, mine_week, mine_overdue = (int(n) for n in row)
    return VisitCounts(
        today=today_n,
        this_week=week_n,
        overdue=overdue_n,
        mine_today=mine_today,
        mine_this_week=mine_week,
        mine_overdue=mine_overdue,
        week_from=monday,
        week_to=sunday,
    )


def _visit_lines(session: Session, where: Any, today: date, limit: int) -> list[VisitLine]:
    rows = session.execute(
        select(
            Visit.id,
            Visit.premises_id,
            Premises.name,
            Visit.visit_date,
            Visit.visit_type,
            Visit.status,
            User.name.label("officer_name"),
        )
        .join(Premises, Premises.id == Visit.premises_id)
        .outerjoin(User, User.id == Visit.officer_id)
        .where(Visit.status.in_(OPEN_STATUSES), where)
        .order_by(Visit.visit_date, Visit.id)
        .limit(limit)
    ).all()
    return [
        VisitLine(
            r.id,
            r.premises_id,
            r.name,
            r.visit_date,
            r.visit_type,
            r.status,
            r.officer_name,
            r.visit_date < today,
        )
        for r in rows
    ]


def visits_on(session: Session, day: date, limit: int = VISIT_LINES) -> list[VisitLine]:
    """The team's open visits on one day (the first `limit`), with premises and officer."""
    return _visit_lines(session, Visit.visit_date == day, day, limit)


def my_visits(
    session: Session, user: User, today: date, limit: int = VISIT_LINES
) -> list[VisitLine]:
    """The user's own open visits, overdue ones first, then the soonest (`limit` of them)."""
    return _visit_lines(session, Visit.officer_id == user.id, today, limit)


def recent_incidents(
    session: Session, now: datetime, days: int = RECENT_INCIDENT_DAYS
) -> RecentIncidents:
    """Incidents added in the last `days` days, and how many of them have a suggested
    link; one statement of two counts, each read along an index and stopped at the cap.

    A suggestion is only ever made when its incident is added (by an import, the API or
    a form), so the suggested links of the recent incidents are the suggested links
    made since `since`: read on (status, created_at, incident_id), not by walking the
    recent incidents and probing the links of each."""
    since = now - timedelta(days=days)
    cap = RecentIncidents.cap
    # Each count stops one past the cap: after a first import of years of history (a
    # million rows "added this week") the page still reads at most cap + 1 index
    # entries per count, instead of every one (1.4 s measured on the large data set).
    added_rows = select(Incident.id).where(Incident.created_at >= since).limit(cap + 1)
    added = select(func.count()).select_from(added_rows.subquery())
    # An incident suggested for several premises counts once: by its suggested link to
    # the lowest-numbered premises. Not DISTINCT: PostgreSQL de-duplicates every
    # matching link before a LIMIT applies (half a million, 1.2 s on the large data
    # set), where this streams and stops at the cap, probing each link's incident on
    # the (incident_id, premises_id) unique index.
    other = aliased(PremisesIncidentLink)
    suggested_rows = (
        select(PremisesIncidentLink.incident_id)
        .where(
            PremisesIncidentLink.status == "suggested",
            PremisesIncidentLink.created_at >= since,
            ~exists().where(
                other.incident_id == PremisesIncidentLink.incident_id,
                other.premises_id < PremisesIncidentLink.premises_id,
                other.status == "suggested",
                other.created_at >= since,
            ),
        )
        .limit(cap + 1)
    )
    suggested = select(func.count()).select_from(suggested_rows.subquery())
    row = session.execute(select(added.scalar_subquery(), suggested.scalar_subquery())).one()
    return RecentIncidents(since=since, added=int(row[0]), with_suggestions=int(row[1]))


def caseload(session: Session, user: User, today: date, limit: int = CASELOAD_LINES) -> Caseload:
    """The premises the user is case officer for: counted by state (one GROUP BY), and the
    most pressing `limit` (action first, then by next open deadline) with each one's next
    open deadline (one statement: each premises' next deadline is found on the deadlines'
    premises index, no query per premises); and the user's own open visits."""
    by_state = _state_counts(session, Premises.case_officer_id == user.id)
    next_id = (
        select(Deadline.id)
        .where(Deadline.premises_id == Premises.id, Deadline.status == "open")
        .order_by(_due_order(), Deadline.id)
        .limit(1)
        .correlate(Premises)
        .scalar_subquery()
    )
    mine = (
        select(Premises.id, Premises.name, Premises.state, next_id.label("next_id"))
        .where(Premises.case_officer_id == user.id)
        .subquery()
    )
    state_rank = case(_STATE_RANK, value=mine.c.state, else_=len(_STATE_RANK))
    next_due = func.coalesce(Deadline.due_at, Deadline.due_date)
    rows = session.execute(
        select(
            mine.c.id, mine.c.name, mine.c.state, Deadline.kind, Deadline.due_date, Deadline.due_at
        )
        .outerjoin(Deadline, Deadline.id == mine.c.next_id)
        .order_by(state_rank, next_due.is_(None), next_due, mine.c.name, mine.c.id)
        .limit(limit)
    ).all()
    lines = [
        CaseloadLine(
            r.id,
            r.name,
            r.state,
            r.kind,
            _deadline_day(r.due_date, r.due_at) if r.kind is not None else None,
        )
        for r in rows
    ]
    return Caseload(
        total=sum(by_state.values()),
        by_state=by_state,
        premises=lines,
        visits=my_visits(session, user, today),
    )


def police_dashboard(session: Session, user: User, now: datetime) -> PoliceDashboard:
    """An officer's or supervisor's home page as of `now` (days are London days)."""
    today = to_london(now).date()
    return PoliceDashboard(
        today=today,
        premises_by_state=premises_by_state(session, user),
        recommendations=open_recommendations(session),
        deadlines=open_deadlines(session, today),
        visits=visit_counts(session, user, today),
        visits_today=visits_on(session, today),
        incidents=recent_incidents(session, now),
        caseload=caseload(session, user, today),
    )


# ---- the council dashboard --------------------------------------------------------------


def shared_bundles(
    session: Session, user: User, limit: int = COUNCIL_BUNDLES
) -> tuple[list[BundleLine], int, int]:
    """The bundles shared with the user's authority, newest share first (the first
    `limit`), with how many there are and how many are not acknowledged yet; one
    statement, under the evidence package's own rule (`bundles_visible_to`)."""
    rows = session.execute(
        select(
            Bundle.id,
            Bundle.reference,
            Bundle.version,
            Bundle.premises_id,
            Premises.name,
            Bundle.review_kind,
            Bundle.shared_at,
            Bundle.acknowledged_at,
            func.count().over().label("total"),
            func.count(case((Bundle.acknowledged_at.is_(None), literal(1)))).over().label("open"),
        )
        .join(Premises, Premises.id == Bundle.premises_id)
        .where(bundles_visible_to(user), Bundle.shared_at.is_not(None))
        .order_by(Bundle.shared_at.desc(), Bundle.id.desc())
        .limit(limit)
    ).all()
    lines = [
        BundleLine(
            r.id,
            f"{r.reference} v{r.version}",
            r.premises_id,
            r.name,
            r.review_kind,
            r.shared_at,
            r.acknowledged_at,
        )
        for r in rows
    ]
    total = int(rows[0].total) if rows else 0
    unacknowledged = int(rows[0].open) if rows else 0
    return lines, total, unacknowledged


def council_premises(
    session: Session, user: User, today: date, limit: int = COUNCIL_PREMISES
) -> list[CouncilPremises]:
    """The premises the council rule lets the user see (their authority's, in review or
    action; action first, then by name), the first `limit`, each with its open deadlines
    soonest first; two statements."""
    state_rank = case(_STATE_RANK, value=Premises.state, else_=len(_STATE_RANK))
    premises = session.execute(
        select(Premises.id, Premises.name, Premises.licence_number, Premises.state)
        .where(premises_visible_to(user), Premises.state.in_(COUNCIL_VISIBLE_STATES))
        .order_by(state_rank, Premises.name, Premises.id)
        .limit(limit)
    ).all()
    ids = [p.id for p in premises]
    by_premises: dict[int, list[DeadlineLine]] = {i: [] for i in ids}
    names = {p.id: p.name for p in premises}
    for d in session.execute(
        select(Deadline.id, Deadline.premises_id, Deadline.kind, Deadline.due_date, Deadline.due_at)
        .where(Deadline.status == "open", Deadline.premises_id.in_(ids))
        .order_by(_due_order(), Deadline.id)
    ):
        day = _deadline_day(d.due_date, d.due_at)
        by_premises[d.premises_id].append(
            DeadlineLine(
                d.id, d.premises_id, names[d.premises_id], d.kind, day, d.due_at, day < today
            )
        )
    return [
        CouncilPremises(p.id, p.name, p.licence_number, p.state, by_premises[p.id])
        for p in premises
    ]


def council_dashboard(session: Session, user: User, now: datetime) -> CouncilDashboard:
    """A council user's home page: bundles shared with them, and their authority's
    premises in review or action with the deadlines of each (only what the council rule
    allows)."""
    today = to_london(now).date()
    bundles, total, unacknowledged = shared_bundles(session, user)
    counts = premises_by_state(session, user)
    return CouncilDashboard(
        today=today,
        bundles=bundles,
        bundles_total=total,
        unacknowledged=unacknowledged,
        premises_by_state={s: counts[s] for s in COUNCIL_VISIBLE_STATES},
        premises=council_premises(session, user, today),
    )


# ---- the admin dashboard ----------------------------------------------------------------


def admin_dashboard(session: Session, user: User) -> AdminDashboard:
    """An administrator's home page: premises by state and how many emails failed for good."""
    failed = session.scalar(
        select(func.count()).select_from(OutboxEmail).where(OutboxEmail.status == "failed")
    )
    return AdminDashboard(
        premises_by_state=premises_by_state(session, user), failed_emails=int(failed or 0)
    )
