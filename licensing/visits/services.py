"""Visit services: schedule, record, cancel, the visit policy, reading, calendar feeds.

Services own the transaction: each public write checks the rules, changes the records,
appends the audit event on the premises' chain and commits, or raises a DomainError
having changed nothing. The exception is `on_state_changed`, which runs inside the
workflow event's own transaction (see its docstring).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, and_, bindparam, func, or_, select
from sqlalchemy.orm import Session, joinedload, lazyload

from licensing.audit.models import AuditEvent
from licensing.audit.services import append_event
from licensing.auth.models import POLICE_ROLES, Role, User
from licensing.auth.permissions import can_see_premises
from licensing.db import conflict_on, utcnow
from licensing.deadlines.models import Deadline
from licensing.errors import Conflict, Forbidden, NotFound, Refused, ValidationFailed
from licensing.premises import workflow
from licensing.premises.models import Premises, ReviewApplication
from licensing.timeutil import LONDON, london_today, to_london
from licensing.visits.models import (
    CANCELLED,
    COMPLETED,
    ISSUES_FOUND,
    OBJECTIVES,
    OPEN_STATUSES,
    PROPOSED,
    SCHEDULED,
    VISIT_OUTCOMES,
    VISIT_TYPES,
    CalendarFeed,
    Visit,
)

STALE_MESSAGE = (
    "Someone else changed this visit since you opened it. "
    "Reload the page to see their change, then try again."
)
# The furthest ahead a visit can be booked: well past the longest policy interval.
MAX_DAYS_AHEAD = 2 * 366
# The same few minutes of clock difference the incident forms allow.
FUTURE_SLACK = timedelta(minutes=5)
FINDINGS_MAX = 10_000
RECENT_VISITS = 5
# Completed visits stay in the calendar feed this long, so an officer can look back.
FEED_HISTORY_DAYS = 90


# ---- the visit policy ------------------------------------------------------------------

MONITORED_INTERVAL = timedelta(weeks=26)
WARNED_INTERVAL = timedelta(weeks=4)
REVIEW_INTERVAL = timedelta(weeks=2)
ACTION_FIRST_CHECK = timedelta(days=7)
ACTION_INTERVAL = timedelta(weeks=2)
POLICY_INTERVALS = {
    workflow.MONITORED: MONITORED_INTERVAL,
    workflow.WARNED: WARNED_INTERVAL,
    workflow.REVIEW: REVIEW_INTERVAL,
}


@dataclass(frozen=True)
class Proposal:
    """What the policy asks for next: the date a visit is due, its type, and why."""

    due: date
    visit_type: str
    rule: str


def visit_policy(session: Session, premises: Premises) -> Proposal:
    """The next visit the policy asks for, given the premises' state and its last visit.

    The defaults, and why:

    - **monitored: every 26 weeks.** Two visits a year to an ordinary licensed premises
      keeps the case officer's knowledge current (DPS, layout, hours) at a cost the team
      can carry across a whole register, and lines up with the six-monthly review of
      the premises' incident picture.
    - **warned: every 4 weeks.** A warning gives the licence holder a chance to put
      things right; a monthly visit sees whether the action plan is being followed,
      and after two or three visits the evidence either supports standing down or an
      application for a review.
    - **review: every 2 weeks.** During a review (28 days of representations, then a
      hearing within 20 working days) the sub-committee will ask what the premises is
      like now: fortnightly visits give it current, first-hand evidence at each stage.
    - **action: a compliance check within 7 days of the determination**, then every 2
      weeks until the action is closed. New conditions or an exclusion take effect when
      the decision is made, and a prompt check both shows the premises the decision is
      enforced and catches a breach before it becomes a pattern (the same 7 days as
      the `compliance_visit_due` deadline in licensing.deadlines.rules).

    For the first three the interval counts from the later of the last completed visit
    and the day the premises entered its current state: a change of state restarts the
    clock at the new pace, and a visit after it counts from the visit.
    """
    last = _last_visit_date(session, premises.id)
    decided = (
        _determination_date(session, premises.id) if premises.state == workflow.ACTION else None
    )
    return policy_proposal(premises.state, last, _state_entered(session, premises), decided)


def policy_proposal(state: str, last: date | None, entered: date, decided: date | None) -> Proposal:
    """The rules of `visit_policy` given what it looks up: the premises' state, its last
    completed visit, the day it entered its state and (action) the determination date."""
    if state == workflow.ACTION:
        decided = decided or entered
        if last is None or last < decided:
            return Proposal(
                decided + ACTION_FIRST_CHECK,
                "compliance_check",
                f"Action: a compliance check within 7 days of the determination of "
                f"{decided:%-d %b %Y}",
            )
        return Proposal(
            last + ACTION_INTERVAL,
            "compliance_check",
            f"Action: a compliance check every 2 weeks until the action is closed "
            f"(last visit {last:%-d %b %Y})",
        )
    interval = POLICY_INTERVALS.get(state, MONITORED_INTERVAL)
    anchor = max(d for d in (last, entered) if d is not None)
    weeks = interval.days // 7
    since = (
        f"the last visit on {anchor:%-d %b %Y}"
        if last is not None and last >= entered
        else f"becoming {workflow.STATE_LABELS[state].lower()} on {anchor:%-d %b %Y}"
    )
    return Proposal(
        anchor + interval,
        "routine",
        f"{workflow.STATE_LABELS[state]}: a visit every {weeks} weeks, counted from {since}",
    )


def propose_next_visit(session: Session, premises: Premises) -> date:
    """The date the policy wants the premises' next visit by (see `visit_policy`)."""
    return visit_policy(session, premises).due


def _last_visit_date(session: Session, premises_id: int) -> date | None:
    visited = session.scalar(
        select(Visit.visited_at)
        .where(Visit.premises_id == premises_id, Visit.status == COMPLETED)
        .order_by(Visit.visited_at.desc())
        .limit(1)
    )
    return to_london(visited).date() if visited is not None else None


def _state_entered(session: Session, premises: Premises) -> date:
    """The London date the premises entered its current state: the newest event on its
    chain that set a state (registration included)."""
    moment = session.scalar(
        select(AuditEvent.occurred_at)
        .where(AuditEvent.premises_id == premises.id, AuditEvent.to_state.is_not(None))
        .order_by(AuditEvent.seq.desc())
        .limit(1)
    )
    return to_london(moment or premises.created_at).date()


def _determination_date(session: Session, premises_id: int) -> date | None:
    decided: date | None = session.scalar(
        select(ReviewApplication.decision_date)
        .where(
            ReviewApplication.premises_id == premises_id,
            ReviewApplication.status == "determined",
            ReviewApplication.decision_date.is_not(None),
        )
        .order_by(ReviewApplication.id.desc())
        .limit(1)
    )
    return decided


def on_state_changed(
    session: Session,
    premises: Premises,
    actor: User | None,
    *,
    commit: bool = False,
    audit: bool = True,
) -> Visit | None:
    """Bring the premises' proposed visit in line with its (new) state.

    Call it in the workflow event's transaction, after the state moved and its audit
    event was appended and before the commit, so the event and the new proposal stand
    or fall together. It flushes but does not commit unless `commit=True` (for a caller
    that runs it on its own). With `audit=False` the proposal is not recorded as an event
    of its own: the workflow event that caused it is the record, and the proposal follows
    from it by the policy. Returns the proposed visit, or None when none is needed.
    """
    _lock_premises(session, premises.id)
    proposal = _repropose(session, premises, actor, audit=audit)
    if commit:
        _commit(session)
    return proposal


def _repropose(
    session: Session, premises: Premises, actor: User | None, *, audit: bool = True
) -> Visit | None:
    """Create or move the one proposed visit of the premises to what the policy asks for.

    A booked (scheduled) visit on or before the policy's date already meets it: then no
    proposal is kept. Every change writes an event on the premises' chain.
    """
    wanted = visit_policy(session, premises)
    proposed = session.scalar(
        select(Visit).where(Visit.premises_id == premises.id, Visit.status == PROPOSED)
    )
    booked = session.scalar(
        select(Visit.id)
        .where(
            Visit.premises_id == premises.id,
            Visit.status == SCHEDULED,
            Visit.visit_date <= wanted.due,
        )
        .limit(1)
    )
    actor_id = actor.id if actor else None
    record = append_event if audit else _not_recorded
    if booked is not None:
        if proposed is not None:
            proposed.status = CANCELLED
            proposed.updated_at = utcnow()
            session.flush()
            record(
                session,
                event="visit_proposal_withdrawn",
                actor_id=actor_id,
                premises_id=premises.id,
                payload={"visit_id": proposed.id, "scheduled_visit_id": booked},
            )
        return None
    if proposed is None:
        proposed = Visit(
            premises_id=premises.id,
            visit_type=wanted.visit_type,
            status=PROPOSED,
            visit_date=wanted.due,
            policy_due_date=wanted.due,
            policy_rule=wanted.rule,
            officer_id=_case_officer_id(session, premises),
            created_by_id=actor_id,
        )
        session.add(proposed)
        session.flush()
        record(
            session,
            event="visit_proposed",
            actor_id=actor_id,
            premises_id=premises.id,
            payload={
                "visit_id": proposed.id,
                "visit_type": proposed.visit_type,
                "due_date": wanted.due.isoformat(),
                "state": premises.state,
            },
        )
        return proposed
    if (proposed.visit_date, proposed.visit_type, proposed.policy_rule) == (
        wanted.due,
        wanted.visit_type,
        wanted.rule,
    ):
        return proposed
    previous = proposed.visit_date
    proposed.visit_date = wanted.due
    proposed.policy_due_date = wanted.due
    proposed.visit_type = wanted.visit_type
    proposed.policy_rule = wanted.rule
    proposed.updated_at = utcnow()
    session.flush()
    record(
        session,
        event="visit_proposal_moved",
        actor_id=actor_id,
        premises_id=premises.id,
        payload={
            "visit_id": proposed.id,
            "visit_type": proposed.visit_type,
            "due_date": wanted.due.isoformat(),
            "previous_due_date": previous.isoformat(),
            "state": premises.state,
        },
    )
    return proposed


def _not_recorded(*_args: Any, **_kwargs: Any) -> None:
    """Stands in for append_event when the causing event is the record."""


def _case_officer_id(session: Session, premises: Premises) -> int | None:
    # A proposal goes to the case officer, so it shows in their calendar feed.
    if premises.case_officer_id is None:
        return None
    officer = session.get(User, premises.case_officer_id)
    if officer is None or officer.role not in POLICE_ROLES or not officer.active:
        return None
    return officer.id


# ---- evidence and overdue ----------------------------------------------------------------


def findings_since(session: Session, premises_id: int, since: datetime) -> int:
    """How many completed visits to the premises found issues at or after `since`.

    Evidence for the `warn` guard: a visit counts by when it took place (`visited_at`),
    not when it was typed in, as an incident counts by when it happened.
    """
    count = session.scalar(
        select(func.count(Visit.id)).where(
            Visit.premises_id == premises_id,
            Visit.status == COMPLETED,
            Visit.outcome == ISSUES_FOUND,
            Visit.visited_at >= since,
        )
    )
    return int(count or 0)


def is_overdue(visit: Visit, today: date | None = None) -> bool:
    """Proposed or scheduled, and its day has passed (London dates) without it being done."""
    return visit.status in OPEN_STATUSES and visit.visit_date < (today or london_today())


def _overdue_clause(today: date) -> Any:
    return and_(Visit.status.in_(OPEN_STATUSES), Visit.visit_date < today)


# ---- permissions and look-ups -----------------------------------------------------------


def _require_police(actor: User) -> None:
    """Visits are police work: council users learn nothing (404), others are told no."""
    if actor.role == Role.COUNCIL:
        raise NotFound("Page not found")
    if actor.role not in POLICE_ROLES:
        raise Forbidden("Only police licensing officers can see and arrange visits")


def get_visit(session: Session, user: User, visit_id: int) -> Visit:
    """A visit the user may see (police only), or NotFound / Forbidden."""
    _require_police(user)
    visit = session.get(Visit, visit_id)
    if visit is None or not can_see_premises(user, visit.premises):
        raise NotFound("No such visit")
    return visit


def police_officer(session: Session, officer_id: int | str | None) -> User:
    """The active police user a visit is assigned to, or ValidationFailed."""
    message = "Choose an active police licensing officer"
    try:
        officer = session.get(User, int(officer_id)) if officer_id not in (None, "") else None
    except (TypeError, ValueError):
        officer = None
    if officer is None or officer.role not in POLICE_ROLES or not officer.active:
        raise ValidationFailed(message, {"officer_id": message})
    return officer


def officers(session: Session) -> list[User]:
    """Active police users, by name: who a visit can be assigned to."""
    return list(
        session.scalars(
            select(User)
            .where(User.role.in_([r.value for r in POLICE_ROLES]), User.active)
            .order_by(User.name, User.id)
        )
    )


def _lock_premises(session: Session, premises_id: int) -> None:
    """PostgreSQL: take the premises row lock first, as every writer to its chain does,
    so visit writers queue on it instead of deadlocking with the audit append."""
    if session.get_bind().dialect.name != "postgresql":
        return
    session.scalar(select(Premises.id).where(Premises.id == premises_id).with_for_update())


@contextmanager
def _writing(session: Session) -> Iterator[None]:
    """Turn a version clash, or the one-proposal index filled by someone who proposed or
    scheduled at the same moment, into Conflict; any failure rolls back."""
    with conflict_on(session, STALE_MESSAGE):
        yield


def _commit(session: Session) -> None:
    with _writing(session):
        session.commit()


# ---- writes ------------------------------------------------------------------------------


def london_instant(day: date, hhmm: str) -> datetime:
    """A London wall-clock date and 'HH:MM' as a UTC instant."""
    hour, minute = (int(x) for x in hhmm.strip().split(":"))
    return datetime.combine(day, time(hour, minute), tzinfo=LONDON).astimezone(UTC)


def check_booking(
    session: Session, scheduled_at: datetime, visit_type: str, officer_id: int | str | None
) -> tuple[date, User]:
    """What `schedule_visit` checks of a booking: returns its London day and the officer,
    or raises ValidationFailed naming each bad field."""
    errors: dict[str, str] = {}
    if visit_type not in VISIT_TYPES:
        errors["visit_type"] = "Choose the type of visit"
    if scheduled_at.tzinfo is None:
        raise ValueError("scheduled_at must be timezone-aware")
    day = to_london(scheduled_at).date()
    today = london_today()
    if day < today:
        errors["visit_date"] = "The visit date must be today or in the future"
    elif day > today + timedelta(days=MAX_DAYS_AHEAD):
        errors["visit_date"] = "The visit date must be within the next two years"
    try:
        officer = police_officer(session, officer_id)
    except ValidationFailed as error:
        errors.update(error.errors)
    if errors:
        raise ValidationFailed("; ".join(errors.values()), errors)
    return day, officer


def schedule_visit(
    session: Session,
    actor: User,
    premises: Premises,
    *,
    scheduled_at: datetime,
    visit_type: str,
    officer_id: int | str | None,
) -> Visit:
    """Book a visit to the premises for an officer. A proposed visit, if there is one,
    becomes this booking (keeping the date the policy asked for)."""
    _require_police(actor)
    if not can_see_premises(actor, premises):
        raise NotFound("No such premises")
    day, officer = check_booking(session, scheduled_at, visit_type, officer_id)

    with _writing(session):
        _lock_premises(session, premises.id)
        visit = session.scalar(
            select(Visit).where(Visit.premises_id == premises.id, Visit.status == PROPOSED)
        )
        from_proposal = visit is not None
        if visit is None:
            visit = Visit(premises_id=premises.id, created_by_id=actor.id)
            session.add(visit)
        visit.status = SCHEDULED
        visit.visit_type = visit_type
        visit.scheduled_at = scheduled_at
        visit.visit_date = day
        visit.officer_id = officer.id
        visit.updated_at = utcnow()
        session.flush()
        append_event(
            session,
            event="visit_scheduled",
            actor_id=actor.id,
            premises_id=premises.id,
            payload={
                "visit_id": visit.id,
                "visit_type": visit_type,
                "officer_id": officer.id,
                "scheduled_at": scheduled_at.astimezone(UTC).isoformat(),
                "from_proposal": from_proposal,
            },
        )
    _commit(session)
    return visit


@dataclass
class Outcome:
    """What an officer records after a visit."""

    outcome: str
    visited_at: datetime
    findings: dict[str, str] = field(default_factory=dict)
    follow_up_actions: str = ""
    # Action-plan item id -> status found (done / not done); "" leaves it agreed.
    plan_items: dict[int, str] = field(default_factory=dict)


def check_outcome(result: Outcome) -> tuple[dict[str, str], str]:
    """What `record_outcome` checks of an outcome: returns the findings by objective and
    the follow-up actions, trimmed, or raises ValidationFailed naming each bad field."""
    errors: dict[str, str] = {}
    if result.outcome not in VISIT_OUTCOMES:
        errors["outcome"] = "Choose the outcome of the visit"
    if result.visited_at.tzinfo is None:
        raise ValueError("visited_at must be timezone-aware")
    if result.visited_at > utcnow() + FUTURE_SLACK:
        errors["visited_date"] = "The visit cannot be recorded before it has happened"
    findings = {name: (result.findings.get(name) or "").strip() for name in OBJECTIVES}
    for name, value in findings.items():
        if len(value) > FINDINGS_MAX or "\x00" in value:
            errors[f"findings_{name}"] = f"Use at most {FINDINGS_MAX:,} characters of text"
    follow_up = (result.follow_up_actions or "").strip()
    if len(follow_up) > FINDINGS_MAX or "\x00" in follow_up:
        errors["follow_up_actions"] = f"Use at most {FINDINGS_MAX:,} characters of text"
    if result.outcome == ISSUES_FOUND and not any(findings.values()):
        errors["findings_crime_and_disorder"] = (
            "Describe the issues found under at least one licensing objective"
        )
    if errors:
        raise ValidationFailed("; ".join(errors.values()), errors)
    return findings, follow_up


def record_outcome(
    session: Session, actor: User, visit: Visit, seen_version: int | None, result: Outcome
) -> Visit:
    """Record what a visit found and complete it; the policy then proposes the next one.

    An outcome of issues found needs findings under at least one licensing objective.
    The findings text stays in the visits table; the audit event carries the outcome and
    which objectives were flagged, never the text.
    """
    _require_police(actor)
    if not can_see_premises(actor, visit.premises):
        raise NotFound("No such visit")
    if seen_version is not None and seen_version != visit.version:
        raise Conflict(STALE_MESSAGE)
    if not visit.is_open:
        raise Refused(f"This visit is already {visit.status}")
    findings, follow_up = check_outcome(result)
    if result.plan_items:
        from licensing.actionplans.services import check_visit_statuses

        check_visit_statuses(session, visit, result.plan_items)

    premises = visit.premises
    with _writing(session):
        _lock_premises(session, premises.id)
        session.refresh(visit)  # what is committed now, under the lock
        if seen_version is not None and visit.version != seen_version:
            raise Conflict(STALE_MESSAGE)
        if not visit.is_open:
            raise Conflict(STALE_MESSAGE)
        append_event(
            session,
            event="visit_recorded",
            actor_id=actor.id,
            premises_id=premises.id,
            payload=complete_visit(session, actor, visit, result, findings, follow_up),
        )
        if result.plan_items:
            from licensing.actionplans.services import record_at_visit

            record_at_visit(session, actor, visit, result.plan_items)
        _repropose(session, premises, actor)
    _commit(session)
    return visit


def complete_visit(
    session: Session,
    actor: User,
    visit: Visit,
    result: Outcome,
    findings: dict[str, str],
    follow_up: str,
) -> dict[str, Any]:
    """`record_outcome`'s writes, once its checks have passed and the premises is locked:
    complete the visit with the checked findings, close the compliance deadlines it meets,
    and return the `visit_recorded` event's payload (never the findings' text)."""
    visit.status = COMPLETED
    visit.outcome = result.outcome
    visit.visited_at = result.visited_at
    for name, value in findings.items():
        setattr(visit, f"findings_{name}", value)
    visit.follow_up_actions = follow_up
    visit.recorded_by_id = actor.id
    visit.updated_at = utcnow()
    session.flush()
    closed = _close_compliance_deadlines(session, visit)
    payload: dict[str, Any] = {
        "visit_id": visit.id,
        "visit_type": visit.visit_type,
        "visit_outcome": visit.outcome,
        "objectives_flagged": visit.objectives_flagged,
        "visited_at": result.visited_at.astimezone(UTC).isoformat(),
        "follow_up": bool(follow_up),
    }
    if closed:
        payload["deadline_ids_closed"] = closed
    return payload


def _close_compliance_deadlines(session: Session, visit: Visit) -> list[int]:
    """A compliance check on or after a determination meets that review's
    `compliance_visit_due` deadline."""
    if visit.visit_type != "compliance_check" or visit.visited_at is None:
        return []
    visited = to_london(visit.visited_at).date()
    deadlines = session.scalars(
        select(Deadline)
        .join(ReviewApplication, ReviewApplication.id == Deadline.review_id)
        .where(
            Deadline.premises_id == visit.premises_id,
            Deadline.kind == "compliance_visit_due",
            Deadline.status == "open",
            ReviewApplication.decision_date <= visited,
        )
    ).all()
    now = utcnow()
    for deadline in deadlines:
        deadline.status = "closed"
        deadline.updated_at = now
    return [d.id for d in deadlines]


def cancel_visit(
    session: Session, actor: User, visit: Visit, seen_version: int | None, reason: str
) -> Visit:
    """Cancel a proposed or scheduled visit, with a reason on the premises' chain."""
    _require_police(actor)
    if not can_see_premises(actor, visit.premises):
        raise NotFound("No such visit")
    if seen_version is not None and seen_version != visit.version:
        raise Conflict(STALE_MESSAGE)
    if not visit.is_open:
        raise Refused(f"This visit is already {visit.status}")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("Give a reason", {"reason": "Give a reason for cancelling"})
    with _writing(session):
        _lock_premises(session, visit.premises_id)
        session.refresh(visit)
        if not visit.is_open or (seen_version is not None and visit.version != seen_version):
            raise Conflict(STALE_MESSAGE)
        visit.status = CANCELLED
        visit.updated_at = utcnow()
        session.flush()
        append_event(
            session,
            event="visit_cancelled",
            actor_id=actor.id,
            premises_id=visit.premises_id,
            reason=reason,
            payload={"visit_id": visit.id, "visit_type": visit.visit_type},
        )
    _commit(session)
    return visit


# ---- reading -----------------------------------------------------------------------------


@dataclass(frozen=True)
class VisitFilter:
    """What the visits list filters on; `status` is open (default), completed or all."""

    mine: bool = False
    overdue: bool = False
    this_week: bool = False
    status: str = "open"


def week_of(day: date) -> tuple[date, date]:
    """Monday and Sunday of the week `day` falls in."""
    monday = day - timedelta(days=day.weekday())
    return monday, monday + timedelta(days=6)


def _visits_query(user: User, filters: VisitFilter, today: date) -> Select[Visit]:
    query = select(Visit)
    if filters.status == "completed":
        query = query.where(Visit.status == COMPLETED)
    elif filters.status == "all":
        query = query.where(Visit.status != CANCELLED)
    else:
        query = query.where(Visit.status.in_(OPEN_STATUSES))
    if filters.mine:
        query = query.where(Visit.officer_id == user.id)
    if filters.overdue:
        query = query.where(_overdue_clause(today))
    if filters.this_week:
        monday, sunday = week_of(today)
        query = query.where(Visit.visit_date.between(monday, sunday))
    return query


def list_visits(
    session: Session, user: User, filters: VisitFilter, page: int, per_page: int
) -> tuple[list[Visit], int]:
    """One page of visits (soonest first; completed ones newest first) and the total."""
    _require_police(user)
    today = london_today()
    query = _visits_query(user, filters, today)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    order = (
        (Visit.visit_date.desc(), Visit.id.desc())
        if filters.status == "completed"
        else (Visit.visit_date, Visit.id)
    )
    items = session.scalars(
        query.order_by(*order).offset((page - 1) * per_page).limit(per_page)
    ).all()
    return list(items), total


# The premises page's visits, in one statement built once (see licensing.db): the open
# ones and the last RECENT_VISITS completed. The page's premises is in the session: each
# visit takes it from there, not a join. The page names the next visit's officer, never
# their council (police have none).
_PREMISES_VISITS = (
    select(Visit)
    .where(
        Visit.premises_id == bindparam("premises_id"),
        or_(
            Visit.status.in_(OPEN_STATUSES),
            Visit.id.in_(
                select(Visit.id)
                .where(Visit.premises_id == bindparam("premises_id"), Visit.status == COMPLETED)
                .order_by(Visit.visited_at.desc(), Visit.id.desc())
                .limit(RECENT_VISITS)
            ),
        ),
    )
    .options(lazyload(Visit.premises), joinedload(Visit.officer).lazyload(User.authority))
)
_NEVER = datetime.min.replace(tzinfo=UTC)


def premises_visits_context(session: Session, user: User, premises: Premises) -> dict[str, Any]:
    """What templates/visits/_premises_visits.html needs for one premises page: the open
    visits, soonest first, and the recent completed ones, newest first.

    Council and admin users get `visible: False` and the partial shows nothing: visits
    are police work.
    """
    if not user.is_police or not can_see_premises(user, premises):
        return {"visible": False}
    today = london_today()
    visits = session.scalars(_PREMISES_VISITS, {"premises_id": premises.id}).all()
    open_visits = sorted(
        (v for v in visits if v.status in OPEN_STATUSES), key=lambda v: (v.visit_date, v.id)
    )
    recent = sorted(
        (v for v in visits if v.status == COMPLETED),
        key=lambda v: (v.visited_at or _NEVER, v.id),
        reverse=True,
    )
    return {
        "visible": True,
        "today": today,
        "open": open_visits,
        "next": open_visits[0] if open_visits else None,
        "proposed": next((v for v in open_visits if v.status == PROPOSED), None),
        "overdue": [v for v in open_visits if is_overdue(v, today)],
        "recent": recent,
        "can_schedule": True,
    }


# ---- calendar feeds ----------------------------------------------------------------------

FEED_TOKEN_BYTES = 32


def _feed_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def active_feed(session: Session, user: User) -> CalendarFeed | None:
    """The user's live calendar feed, if any."""
    return session.scalar(
        select(CalendarFeed)
        .where(CalendarFeed.user_id == user.id, CalendarFeed.revoked_at.is_(None))
        .order_by(CalendarFeed.id.desc())
        .limit(1)
    )


def create_feed(session: Session, user: User) -> str:
    """Make a new secret feed address for the user, revoking any earlier one; returns the
    token, which is stored only as a hash and so can be shown once."""
    _require_police(user)
    token = secrets.token_urlsafe(FEED_TOKEN_BYTES)
    replaced = _revoke_all(session, user)
    feed = CalendarFeed(user_id=user.id, token_hash=_feed_digest(token))
    session.add(feed)
    session.flush()
    append_event(
        session,
        event="calendar_feed_created",
        actor_id=user.id,
        payload={"feed_id": feed.id, "user_id": user.id, "revoked_feed_ids": replaced},
    )
    _commit(session)
    return token


def revoke_feed(session: Session, user: User) -> int:
    """Revoke the user's feed addresses; returns how many were live."""
    _require_police(user)
    revoked = _revoke_all(session, user)
    if revoked:
        append_event(
            session,
            event="calendar_feed_revoked",
            actor_id=user.id,
            payload={"user_id": user.id, "revoked_feed_ids": revoked},
        )
        _commit(session)
    return len(revoked)


def _revoke_all(session: Session, user: User) -> list[int]:
    now = utcnow()
    feeds = session.scalars(
        select(CalendarFeed).where(
            CalendarFeed.user_id == user.id, CalendarFeed.revoked_at.is_(None)
        )
    ).all()
    for feed in feeds:
        feed.revoked_at = now
    return [feed.id for feed in feeds]


def user_for_feed_token(session: Session, token: str) -> User | None:
    """The active police user a live feed token belongs to, or None."""
    if not token or len(token) > 200:
        return None
    feed = session.scalar(
        select(CalendarFeed).where(CalendarFeed.token_hash == _feed_digest(token))
    )
    if feed is None or feed.revoked_at is not None:
        return None
    user = feed.user
    if not user.active or user.role not in POLICE_ROLES:
        return None
    return user


def feed_visits(session: Session, user: User) -> list[Visit]:
    """The user's visits for their calendar: open ones, and recently completed ones."""
    since = utcnow() - timedelta(days=FEED_HISTORY_DAYS)
    return list(
        session.scalars(
            select(Visit)
            .where(
                Visit.officer_id == user.id,
                or_(
                    Visit.status.in_(OPEN_STATUSES),
                    and_(Visit.status == COMPLETED, Visit.visited_at >= since),
                ),
            )
            .order_by(Visit.visit_date, Visit.id)
        )
    )


def feed_deadlines(session: Session, user: User) -> list[tuple[Deadline, Premises]]:
    """Open deadlines of the premises the user is case officer for."""
    rows = session.execute(
        select(Deadline, Premises)
        .join(Premises, Premises.id == Deadline.premises_id)
        .where(Premises.case_officer_id == user.id, Deadline.status == "open")
        .order_by(Deadline.id)
    ).all()
    return [(deadline, premises) for deadline, premises in rows]
