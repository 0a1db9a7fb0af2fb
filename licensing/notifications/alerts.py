"""Alerts: what to tell whom, and when. Each alert is one outbox row per recipient whose
dedupe key names what it is about, so a job may run as often as it likes (or catch up
after downtime) and every alert is still enqueued exactly once.

- Deadlines (open): 7 and 2 working days before, on the day, and once overdue, to the
  premises' case officer and every active supervisor. A deadline whose date is corrected
  gets fresh alerts, because the date is part of the key. After downtime only the
  current stage is sent: "7 working days left" is no use when two are.
- Recommendations (open, raised in the last 14 days): to the case officer (to every
  supervisor when the premises has none, so the alert reaches someone).
- The daily digest at 07:00 London time, to every active officer and supervisor with
  something in it.
Users who chose "digest only" get no immediate alerts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from licensing.auth.models import Role, User
from licensing.db import utcnow
from licensing.deadlines.calendar import WorkingDayCalendar
from licensing.deadlines.models import Deadline
from licensing.deadlines.services import calendar
from licensing.incidents.models import Recommendation
from licensing.notifications.models import ALERT_MODES, AlertPreference
from licensing.notifications.outbox import enqueue
from licensing.premises.models import Premises
from licensing.templating import DEADLINE_LABELS
from licensing.timeutil import LONDON, format_london
from licensing.visits.models import OPEN_STATUSES, VISIT_TYPES, Visit

log = logging.getLogger(__name__)

WARNING_WORKING_DAYS = (7, 2)
DIGEST_STATES = ("warned", "review", "action")
DIGEST_HORIZON_DAYS = 14
# Older open recommendations are not news: without this, switching alerts on (or a
# long outage) would mail every recommendation ever left open.
RECOMMENDATION_ALERT_DAYS = 14
DEFAULT_DIGEST_HOUR = 7


# ---- preferences ----------------------------------------------------------------------


def alert_mode(session: Session, user_id: int) -> str:
    """The user's choice: "immediate" (alerts and the digest, the default) or "digest"."""
    preference = session.get(AlertPreference, user_id)
    return preference.mode if preference is not None else "immediate"


def set_alert_mode(session: Session, user: User, mode: str) -> AlertPreference:
    """Record the user's choice of alerts, and commit."""
    if mode not in ALERT_MODES:
        raise ValueError(f"mode must be one of {', '.join(ALERT_MODES)}")
    preference = session.get(AlertPreference, user.id)
    if preference is None:
        preference = AlertPreference(user_id=user.id)
        session.add(preference)
    preference.mode = mode
    preference.updated_at = utcnow()
    session.commit()
    return preference


def _digest_only(session: Session) -> set[int]:
    return set(
        session.scalars(select(AlertPreference.user_id).where(AlertPreference.mode == "digest"))
    )


# ---- rendering ------------------------------------------------------------------------


def absolute_url(endpoint: str, **values: Any) -> str:
    """A link into the app at BASE_URL (there is no request to take the host from)."""
    base = urlsplit(str(current_app.config["BASE_URL"]).rstrip("/"))
    adapter = current_app.url_map.bind(
        base.netloc, script_name=base.path or "/", url_scheme=base.scheme or "https"
    )
    return adapter.build(endpoint, values, force_external=True)


def render_email(name: str, **context: Any) -> tuple[str, str]:
    """The plain-text and HTML bodies from templates/email/NAME.txt and NAME.html.

    Rendered from the app's Jinja environment directly, not `render_template`, because
    there is no request: nothing may depend on a signed-in user. HTML is autoescaped.
    """
    env = current_app.jinja_env
    context.setdefault("base_url", str(current_app.config["BASE_URL"]).rstrip("/"))
    text = env.get_template(f"email/{name}.txt").render(**context)
    html = env.get_template(f"email/{name}.html").render(**context)
    return text, html


def _send(
    session: Session, user: User, key: str, subject: str, template: str, **context: Any
) -> bool:
    text, html = render_email(template, user=user, subject=subject, **context)
    return enqueue(
        session,
        recipient=user.email,
        subject=subject,
        text=text,
        html=html,
        dedupe_key=key,
        user_id=user.id,
    )


def _long_date(day: date) -> str:
    return f"{day:%A} {day.day} {day:%B %Y}"


# ---- deadlines ------------------------------------------------------------------------


def working_days_before(day: date, n: int, cal: WorkingDayCalendar) -> date:
    """The n-th working day before `day`, not counting `day`: two working days before a
    Thursday is the Tuesday, but before Tuesday 29 December 2026 it is Wednesday the 23rd
    (Christmas, a weekend and the Boxing Day substitute holiday intervene)."""
    counted = 0
    current = day
    while True:
        current -= timedelta(days=1)
        if cal.is_working_day(current):
            counted += 1
            if counted == n:
                return current


def due_day(deadline: Deadline) -> date:
    """The London date a deadline falls on."""
    if deadline.due_at is not None:
        return deadline.due_at.astimezone(LONDON).date()
    assert deadline.due_date is not None
    return deadline.due_date


def deadline_stage(deadline: Deadline, now: datetime, cal: WorkingDayCalendar) -> str | None:
    """Which alert a deadline calls for now: T-7, T-2, due, overdue, or None yet."""
    today = now.astimezone(LONDON).date()
    day = due_day(deadline)
    if deadline.due_at is not None and now > deadline.due_at:
        return "overdue"
    if today > day:
        return "overdue"
    if today == day:
        return "due"
    for n in sorted(WARNING_WORKING_DAYS):
        if today >= working_days_before(day, n, cal):
            return f"T-{n}"
    return None


def _active_supervisors(session: Session) -> list[User]:
    return list(
        session.scalars(
            select(User)
            .where(User.role == Role.SUPERVISOR, User.active.is_(True))
            .order_by(User.id)
        )
    )


def _recipients(
    case_officer: User | None, supervisors: Sequence[User], skip: set[int]
) -> list[User]:
    people: dict[int, User] = {}
    for user in [*([case_officer] if case_officer is not None else []), *supervisors]:
        if user.active and user.id not in skip:
            people.setdefault(user.id, user)
    return list(people.values())


def deadline_alerts(session: Session, now: datetime | None = None) -> int:
    """Enqueue the alert each open deadline calls for now (in the caller's transaction);
    the number of new emails."""
    now = now or utcnow()
    cal = calendar()
    today = now.astimezone(LONDON).date()
    skip = _digest_only(session)
    supervisors = _active_supervisors(session)
    added = 0
    rows = session.execute(
        select(Deadline, Premises)
        .join(Premises, Premises.id == Deadline.premises_id)
        .where(Deadline.status == "open")
        .order_by(Deadline.id)
    )
    for deadline, premises in rows:
        stage = deadline_stage(deadline, now, cal)
        if stage is None:
            continue
        day = due_day(deadline)
        label = DEADLINE_LABELS.get(deadline.kind, deadline.kind.replace("_", " "))
        left = cal.working_days_between(today + timedelta(days=1), day)
        if stage == "overdue":
            subject = f"Overdue: {label.lower()} – {premises.name}"
        elif stage == "due":
            subject = f"Due today: {label.lower()} – {premises.name}"
        else:
            subject = f"{left} working day{'s' if left != 1 else ''} left: {label.lower()} – {premises.name}"
        due_text = (
            format_london(deadline.due_at) if deadline.due_at is not None else _long_date(day)
        )
        for user in _recipients(premises.case_officer, supervisors, skip):
            key = f"deadline:{deadline.id}:{deadline.due_iso}:{stage}:user:{user.id}"
            added += _send(
                session,
                user,
                key,
                subject,
                "deadline",
                deadline=deadline,
                premises=premises,
                label=label,
                stage=stage,
                due_text=due_text,
                working_days_left=left,
                premises_url=absolute_url("premises.show", premises_id=premises.id),
            )
    return added


# ---- recommendations ------------------------------------------------------------------


def recommendation_alerts(session: Session, now: datetime | None = None) -> int:
    """Enqueue an alert for each recently raised open recommendation (in the caller's
    transaction); the number of new emails."""
    now = now or utcnow()
    skip = _digest_only(session)
    supervisors: list[User] | None = None
    added = 0
    rows = session.execute(
        select(Recommendation, Premises)
        .join(Premises, Premises.id == Recommendation.premises_id)
        .where(
            Recommendation.status == "open",
            Recommendation.created_at >= now - timedelta(days=RECOMMENDATION_ALERT_DAYS),
        )
        .order_by(Recommendation.id)
    )
    for recommendation, premises in rows:
        if premises.case_officer is not None:
            people = _recipients(premises.case_officer, [], skip)
        else:
            supervisors = supervisors if supervisors is not None else _active_supervisors(session)
            people = _recipients(None, supervisors, skip)
        event = recommendation.recommended_event.replace("_", " ")
        subject = f"Recommendation: {event} – {premises.name}"
        for user in people:
            added += _send(
                session,
                user,
                f"recommendation:{recommendation.id}:user:{user.id}",
                subject,
                "recommendation",
                recommendation=recommendation,
                premises=premises,
                event=event,
                premises_url=absolute_url("premises.show", premises_id=premises.id),
                recommendations_url=absolute_url("incidents.list_recommendations"),
            )
    return added


# ---- visits (licensing.visits is being written alongside) -----------------------------


def visit_alerts(session: Session, now: datetime | None = None) -> int:
    """Enqueue "visit due tomorrow" and "visit overdue" alerts (in the caller's
    transaction) to the visit's officer, or the case officer while nobody is booked."""
    now = now or utcnow()
    today = now.astimezone(LONDON).date()
    tomorrow = today + timedelta(days=1)
    skip = _digest_only(session)
    added = 0
    rows = session.scalars(
        select(Visit)
        .where(Visit.status.in_(OPEN_STATUSES), Visit.visit_date <= tomorrow)
        .order_by(Visit.id)
    )
    for visit in rows:
        if visit.visit_date == tomorrow:
            stage, subject = "tomorrow", f"Visit due tomorrow – {visit.premises.name}"
        elif visit.visit_date < today:
            stage, subject = "overdue", f"Visit overdue – {visit.premises.name}"
        else:
            continue
        officer = visit.officer or visit.premises.case_officer
        for user in _recipients(officer, [], skip):
            added += _send(
                session,
                user,
                f"visit:{visit.id}:{visit.visit_date.isoformat()}:{stage}:user:{user.id}",
                subject,
                "visit",
                visit=visit,
                premises=visit.premises,
                stage=stage,
                due_text=_long_date(visit.visit_date),
                premises_url=absolute_url("premises.show", premises_id=visit.premises_id),
            )
    return added


# ---- the digest -----------------------------------------------------------------------


@dataclass
class Digest:
    """What one user's morning digest lists."""

    premises: list[Premises]
    deadlines: list[tuple[Deadline, Premises, str]]
    recommendations: list[tuple[Recommendation, Premises]]
    visits: list[Any]

    @property
    def empty(self) -> bool:
        """Nothing to say: no digest is sent."""
        return not (self.premises or self.deadlines or self.recommendations or self.visits)


def digest_for(session: Session, user: User, today: date) -> Digest:
    """An officer's digest covers the premises they are case officer of; a supervisor's
    covers every premises (they are alerted about every deadline too)."""
    scope: Iterable[Any] = (
        () if user.role == Role.SUPERVISOR else (Premises.case_officer_id == user.id,)
    )
    premises = list(
        session.scalars(
            select(Premises)
            .where(Premises.state.in_(DIGEST_STATES), *scope)
            .order_by(Premises.name, Premises.id)
        )
    )
    horizon = today + timedelta(days=DIGEST_HORIZON_DAYS)
    deadlines = []
    for deadline, place in session.execute(
        select(Deadline, Premises)
        .join(Premises, Premises.id == Deadline.premises_id)
        .where(Deadline.status == "open", *scope)
    ):
        day = due_day(deadline)
        if day <= horizon:  # overdue ones too: they are the most pressing
            deadlines.append((deadline, place, DEADLINE_LABELS.get(deadline.kind, deadline.kind)))
    deadlines.sort(key=lambda item: (due_day(item[0]), item[0].id))
    recommendations = [
        (recommendation, place)
        for recommendation, place in session.execute(
            select(Recommendation, Premises)
            .join(Premises, Premises.id == Recommendation.premises_id)
            .where(Recommendation.status == "open", *scope)
            .order_by(Recommendation.created_at, Recommendation.id)
        )
    ]
    return Digest(premises, deadlines, recommendations, _digest_visits(session, user, horizon))


def _digest_visits(session: Session, user: User, horizon: date) -> list[Any]:
    """Open visits up to the horizon (overdue ones too) booked for the user, or proposed
    for a premises they are case officer of while nobody is booked."""
    return list(
        session.scalars(
            select(Visit)
            .join(Premises, Premises.id == Visit.premises_id)
            .where(
                Visit.status.in_(OPEN_STATUSES),
                Visit.visit_date <= horizon,
                or_(
                    Visit.officer_id == user.id,
                    and_(Visit.officer_id.is_(None), Premises.case_officer_id == user.id),
                ),
            )
            .order_by(Visit.visit_date, Visit.id)
        )
    )


def enqueue_digests(session: Session, now: datetime | None = None, hour: int | None = None) -> int:
    """From `hour` (07:00) London time, enqueue today's digest for every active officer
    and supervisor with something in it, and commit; the number of new emails.

    Keyed by the London date, so the 07:00 job, a catch-up after downtime later in the
    day, and any repeat all give one digest a day.
    """
    now = now or utcnow()
    if hour is None:
        hour = int(current_app.config.get("ALERT_DIGEST_HOUR") or DEFAULT_DIGEST_HOUR)
    local = now.astimezone(LONDON)
    if local.hour < hour:
        return 0
    today = local.date()
    cal = calendar()
    added = 0
    users = session.scalars(
        select(User)
        .where(User.role.in_((Role.OFFICER, Role.SUPERVISOR)), User.active.is_(True))
        .order_by(User.id)
    )
    for user in users:
        digest = digest_for(session, user, today)
        if digest.empty:
            continue
        items = [
            {
                "deadline": deadline,
                "premises": place,
                "label": label,
                "due_text": format_london(deadline.due_at)
                if deadline.due_at is not None
                else _long_date(deadline.due_date or today),
                "overdue": deadline_stage(deadline, now, cal) == "overdue",
                "url": absolute_url("premises.show", premises_id=place.id),
            }
            for deadline, place, label in digest.deadlines
        ]
        added += _send(
            session,
            user,
            f"digest:{today.isoformat()}:user:{user.id}",
            f"Licensing digest for {_long_date(today)}",
            "digest",
            today_text=_long_date(today),
            premises=[
                (p, absolute_url("premises.show", premises_id=p.id)) for p in digest.premises
            ],
            deadlines=items,
            recommendations=[
                (r, p, absolute_url("premises.show", premises_id=p.id))
                for r, p in digest.recommendations
            ],
            visits=[
                {
                    "visit": visit,
                    "due_text": _long_date(visit.visit_date),
                    "type_label": VISIT_TYPES.get(visit.visit_type, visit.visit_type),
                    "overdue": visit.visit_date < today,
                    "url": absolute_url("premises.show", premises_id=visit.premises_id),
                }
                for visit in digest.visits
            ],
            horizon_days=DIGEST_HORIZON_DAYS,
        )
    session.commit()
    return added


def enqueue_due_alerts(session: Session, now: datetime | None = None) -> dict[str, int]:
    """Enqueue every immediate alert due now (deadlines, recommendations, visits), and
    commit; the number of new emails of each kind."""
    now = now or utcnow()
    counts = {
        "deadlines": deadline_alerts(session, now),
        "recommendations": recommendation_alerts(session, now),
        "visits": visit_alerts(session, now),
    }
    session.commit()
    return counts
