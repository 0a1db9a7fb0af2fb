"""Keep a review's deadlines in step with the dates they hang on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from flask import current_app, has_app_context
from sqlalchemy import Exists, bindparam, select
from sqlalchemy.orm import Session

from licensing.auth.models import User
from licensing.db import exists_of, utcnow
from licensing.deadlines import rules
from licensing.deadlines.calendar import WorkingDayCalendar, working_day_calendar
from licensing.deadlines.models import Deadline
from licensing.premises.models import Premises, ReviewApplication


def calendar() -> WorkingDayCalendar:
    """The configured working-day calendar (BANK_HOLIDAYS_FILE wins when set)."""
    path = current_app.config.get("BANK_HOLIDAYS_FILE") if has_app_context() else None
    return working_day_calendar(str(path) if path else None)


@dataclass(frozen=True)
class Due:
    """What a rule computed: a date or an instant, and how."""

    kind: str
    due: date | datetime
    rule: str


def deadlines_for(review: ReviewApplication, cal: WorkingDayCalendar) -> list[Due]:
    """Every deadline the review's recorded dates determine, by rule."""
    found: list[Due] = []
    if review.kind == "standard" and review.application_date is not None:
        closed = rules.representations_close(review.application_date)
        found.append(
            Due(
                "representations_close",
                closed,
                f"28 consecutive days starting the day after the application of "
                f"{review.application_date.isoformat()} (Hearings Regs 2005, reg 22, Sch 1)",
            )
        )
        found.append(
            Due(
                "hearing_start_by",
                rules.hearing_start_by(closed, cal),
                f"20 working days beginning with the day after representations closed on "
                f"{closed.isoformat()} (Hearings Regs 2005, Sch 1, para 8; {cal.source})",
            )
        )
    if review.kind == "summary" and review.received_at is not None:
        found.append(
            Due(
                "interim_steps_by",
                rules.interim_steps_by(review.received_at, cal),
                f"48 hours of working-day time after receipt at "
                f"{review.received_at.isoformat()} (Licensing Act 2003 s.53B; {cal.source})",
            )
        )
        found.append(
            Due(
                "summary_determination_by",
                rules.summary_determination_by(review.received_at),
                "28 days after the day of receipt (Licensing Act 2003 s.53C(2))",
            )
        )
    if review.hearing_date is not None:
        found.append(
            Due(
                "determination_by",
                rules.determination_by(review.hearing_date, cal),
                f"5 working days beginning with the hearing on {review.hearing_date.isoformat()} "
                f"(Hearings Regs 2005, reg 26(2); {cal.source})",
            )
        )
    if review.decision_notified_on is not None:
        found.append(
            Due(
                "appeal_by",
                rules.appeal_by(review.decision_notified_on),
                f"21 days beginning with the day the decision was notified, "
                f"{review.decision_notified_on.isoformat()} (Licensing Act 2003 Sch 5, para 9)",
            )
        )
    if review.outcome == "suspend" and review.suspended_until is not None:
        found.append(
            Due(
                "suspension_ends",
                review.suspended_until,
                "the suspension's end date given with the determination (at most 3 months)",
            )
        )
    if review.outcome and review.outcome != "no_action" and review.decision_date is not None:
        found.append(
            Due(
                "compliance_visit_due",
                rules.compliance_visit_due(review.decision_date),
                f"visit policy: a compliance check within 7 days of the determination of "
                f"{review.decision_date.isoformat()}",
            )
        )
    return found


# Deadlines that stop mattering once the review reaches a stage.
SETTLED_BY_DETERMINATION = (
    "representations_close",
    "hearing_start_by",
    "interim_steps_by",
    "summary_determination_by",
    "determination_by",
)


def _settled(review: ReviewApplication, kind: str) -> bool:
    """Whether the step a deadline is for has been taken."""
    if review.status == "determined" and kind in SETTLED_BY_DETERMINATION:
        return True
    if kind in ("hearing_start_by", "representations_close") and review.hearing_date is not None:
        return True
    if kind == "interim_steps_by" and review.interim_steps_at is not None:
        return True
    return kind == "appeal_by" and review.appeal_lodged_on is not None


def decision_takes_effect(review: ReviewApplication) -> tuple[date | None, str]:
    """When a determination takes effect (Sch 5, para 18 read with s.52(11)): once the
    appeal period ends with no appeal, or when an appeal is disposed of."""
    if review.status != "determined":
        return None, "not determined yet"
    if review.appeal_decided_on is not None:
        return review.appeal_decided_on, f"appeal {review.appeal_outcome} on that day"
    if review.appeal_lodged_on is not None:
        return None, "when the appeal lodged is disposed of"
    if review.decision_notified_on is not None:
        ends = rules.appeal_by(review.decision_notified_on)
        return ends + timedelta(
            days=1
        ), "the day after the appeal period ends, if no appeal is lodged"
    return None, "once the decision is notified and the appeal period ends"


def sync_review_deadlines(session: Session, review: ReviewApplication) -> list[Deadline]:
    """Create or update the review's deadlines from its dates (in the caller's
    transaction); a withdrawn review's open deadlines are cancelled, a determined
    review's earlier stages are closed."""
    existing = {
        d.kind: d for d in session.scalars(select(Deadline).where(Deadline.review_id == review.id))
    }
    now = utcnow()
    for due in deadlines_for(review, calendar()):
        deadline = existing.get(due.kind)
        if deadline is None:
            deadline = Deadline(premises_id=review.premises_id, review_id=review.id, kind=due.kind)
            session.add(deadline)
            existing[due.kind] = deadline
        deadline.due_at = due.due if isinstance(due.due, datetime) else None
        deadline.due_date = due.due if not isinstance(due.due, datetime) else None
        deadline.rule = due.rule
        deadline.updated_at = now
    for deadline in existing.values():
        if deadline.status != "open":
            continue
        if review.status == "withdrawn":
            deadline.status = "cancelled"
        elif _settled(review, deadline.kind):
            deadline.status = "closed"
    session.flush()
    return sorted(existing.values(), key=_order)


def _order(deadline: Deadline) -> tuple[str, str]:
    return (deadline.due_iso, deadline.kind)


def premises_deadlines(session: Session, premises_id: int) -> list[Deadline]:
    """A premises' deadlines, soonest first."""
    rows = session.scalars(_PREMISES_DEADLINES, {"premises_id": premises_id})
    return sorted(rows, key=_order)


# Built once (see licensing.db): every premises page reads it.
_PREMISES_DEADLINES = select(Deadline).where(Deadline.premises_id == bindparam("premises_id"))
# Whether it would find any: the premises page asks first (licensing.premises.sections).
ANY_DEADLINE: Exists = exists_of(_PREMISES_DEADLINES)


@dataclass(frozen=True)
class CalendarEntry:
    """One line of the team calendar: a deadline or a visit, on a London day."""

    day: date
    kind: str  # "deadline" | "visit"
    label: str
    premises_id: int
    premises_name: str
    detail: str
    overdue: bool
    link_id: int


def team_calendar(session: Session, user: User, today: date, weeks: int = 8) -> list[CalendarEntry]:
    """Open deadlines and open visits (police only) from anything overdue up to `weeks`
    ahead, by day; what each user may see follows the council rule."""
    from licensing.auth.permissions import premises_visible_to
    from licensing.timeutil import to_london
    from licensing.visits.models import OPEN_STATUSES, Visit

    until = today + timedelta(weeks=weeks)
    entries: list[CalendarEntry] = []
    rows = session.execute(
        select(Deadline, Premises)
        .join(Premises, Premises.id == Deadline.premises_id)
        .where(Deadline.status == "open", premises_visible_to(user))
    )
    for deadline, premises in rows:
        day = to_london(deadline.due_at).date() if deadline.due_at else deadline.due_date
        assert day is not None
        if day > until:
            continue
        entries.append(
            CalendarEntry(
                day=day,
                kind="deadline",
                label=deadline.kind,
                premises_id=premises.id,
                premises_name=premises.name,
                detail=deadline.rule,
                overdue=day < today,
                link_id=deadline.id,
            )
        )
    if user.is_police:
        visits = session.scalars(
            select(Visit).where(Visit.status.in_(OPEN_STATUSES), Visit.visit_date <= until)
        )
        for visit in visits:
            entries.append(
                CalendarEntry(
                    day=visit.visit_date,
                    kind="visit",
                    label=visit.visit_type,
                    premises_id=visit.premises_id,
                    premises_name=visit.premises.name,
                    detail=f"{visit.status}"
                    + (f", {visit.officer.name}" if visit.officer is not None else ""),
                    overdue=visit.visit_date < today,
                    link_id=visit.id,
                )
            )
    return sorted(entries, key=lambda e: (e.day, e.kind, e.premises_name))
