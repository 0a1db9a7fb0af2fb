"""Escalation recommendations from threshold rules over confirmed incidents.

Defaults, and why:
- `serious_while_monitored`: 3 or more confirmed violence, public order, drugs or weapons
  incidents within 28 days while monitored recommends `warn`. Four weeks is the period
  licensing teams review premises over, and three serious incidents in it is the usual
  "red" trigger of traffic-light schemes: one can be bad luck, three is a pattern.
- `asb_while_monitored`: 5 or more confirmed ASB reports within 28 days while monitored
  recommends `warn`: nuisance is more frequent and less serious, so the bar is higher.
- `repeat_after_warning`: 2 or more confirmed serious incidents since the warning while
  warned recommends `apply_for_review`: the warning did not work.
- `action_plan_failed` / `action_plan_completed`: a failed action plan recommends
  `apply_for_review` (`warn` while monitored); a completed one followed by
  ACTION_PLAN_QUIET_DAYS without a confirmed incident recommends `stand_down`
  (rules defined in licensing.actionplans.services).

A recommendation never changes a state. It stays open until an officer takes the event
(it is then marked acted) or dismisses it with a reason; a rule does not raise a second
open recommendation for the same premises.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Exists, and_, bindparam, func, select
from sqlalchemy.orm import Session

from licensing.audit.models import AuditEvent
from licensing.audit.services import append_event
from licensing.auth.models import POLICE_ROLES, Role, User
from licensing.db import exists_of, utcnow
from licensing.errors import Forbidden, NotFound, Refused, ValidationFailed
from licensing.incidents.models import (
    ASB_CATEGORIES,
    Incident,
    PremisesIncidentLink,
    Recommendation,
)
from licensing.premises.models import Premises

SERIOUS = (
    "Violence and sexual offences",
    "Public order",
    "Drugs",
    "Possession of weapons",
)
ASB = ("Anti-social behaviour", *ASB_CATEGORIES)


@dataclass(frozen=True)
class Rule:
    """A threshold: `threshold` confirmed incidents of `categories` in the window while
    the premises is in `state` recommends `event`."""

    name: str
    state: str
    categories: tuple[str, ...]
    threshold: int
    window_days: int | None  # None: since the premises entered `state`
    event: str
    label: str


DEFAULT_RULES = (
    Rule(
        "serious_while_monitored",
        "monitored",
        SERIOUS,
        3,
        28,
        "warn",
        "serious incidents in 28 days",
    ),
    Rule("asb_while_monitored", "monitored", ASB, 5, 28, "warn", "ASB reports in 28 days"),
    Rule(
        "repeat_after_warning",
        "warned",
        SERIOUS,
        2,
        None,
        "apply_for_review",
        "serious incidents since the warning",
    ),
)


def _confirmed_premises(premises_ids: list[int] | None) -> Any:
    """The premises with a confirmed incident (of those given), as a condition on
    Premises.id."""
    linked = Premises.id.in_(
        select(PremisesIncidentLink.premises_id).where(PremisesIncidentLink.status == "confirmed")
    )
    return linked if premises_ids is None else and_(linked, Premises.id.in_(premises_ids))


def _counted(
    session: Session, rule: Rule, premises_ids: list[int] | None, now: datetime
) -> dict[int, list[int]]:
    """For every premises in the rule's state with confirmed incidents: the ids of its
    confirmed incidents of the rule's categories counted in the rule's window, oldest
    first. One query per rule, not one per premises: with ten thousand premises the
    rules were most of the scheduler's tick."""
    in_state = and_(Premises.state == rule.state, _confirmed_premises(premises_ids))
    if rule.window_days:
        since: Any = now - timedelta(days=rule.window_days)
        premises = select(Premises.id.label("premises_id")).where(in_state).subquery()
    else:
        # Since the premises last entered the state: the latest audit event into it.
        entered = (
            select(AuditEvent.occurred_at)
            .where(AuditEvent.premises_id == Premises.id, AuditEvent.to_state == Premises.state)
            .order_by(AuditEvent.seq.desc())
            .limit(1)
            .correlate(Premises)
            .scalar_subquery()
        )
        premises = (
            select(Premises.id.label("premises_id"), entered.label("since"))
            .where(in_state)
            .subquery()
        )
        since = premises.c.since  # NULL (never entered) matches nothing
    rows = session.execute(
        select(PremisesIncidentLink.premises_id, Incident.id)
        .join(premises, premises.c.premises_id == PremisesIncidentLink.premises_id)
        .join(Incident, Incident.id == PremisesIncidentLink.incident_id)
        .where(
            PremisesIncidentLink.status == "confirmed",
            Incident.category.in_(rule.categories),
            Incident.counted_at >= since,
            Incident.counted_at <= now,
        )
        .order_by(PremisesIncidentLink.premises_id, Incident.counted_at, Incident.id)
    )
    counted: dict[int, list[int]] = {}
    for premises_id, incident_id in rows:
        counted.setdefault(premises_id, []).append(incident_id)
    return counted


def raise_recommendation(
    session: Session,
    premises_id: int,
    rule: str,
    event: str,
    summary: str,
    incident_ids: list[int],
    now: datetime,
    **about: Any,
) -> Recommendation:
    """Record a recommendation a rule raised and its `recommendation_raised` event on the
    premises' chain (with `about`, e.g. the plan it concerns, in the payload). Whether
    the rule may raise it is the caller's check."""
    recommendation = Recommendation(
        premises_id=premises_id,
        rule=rule,
        recommended_event=event,
        summary=summary,
        incident_ids=json.dumps(incident_ids),
        created_at=now,
    )
    session.add(recommendation)
    session.flush()
    append_event(
        session,
        event="recommendation_raised",
        actor_id=None,
        premises_id=premises_id,
        payload={
            "recommendation_id": recommendation.id,
            "rule": rule,
            "recommends": event,
            "incident_ids": incident_ids,
            **about,
        },
    )
    return recommendation


def evaluate(
    session: Session,
    premises_ids: list[int] | None = None,
    now: datetime | None = None,
    rules: tuple[Rule, ...] = DEFAULT_RULES,
) -> list[Recommendation]:
    """Apply the rules to the given premises (default: every premises with confirmed
    incidents) and add a recommendation where a threshold is met and none is open."""
    now = now or utcnow()
    open_keys: set[tuple[int, str]] = {
        (premises_id, rule)
        for premises_id, rule in session.execute(
            select(Recommendation.premises_id, Recommendation.rule).where(
                Recommendation.status == "open"
            )
        )
    }
    met: list[tuple[int, int, Rule, list[int]]] = []
    for order, rule in enumerate(rules):
        for premises_id, ids in _counted(session, rule, premises_ids, now).items():
            if len(ids) >= rule.threshold and (premises_id, rule.name) not in open_keys:
                met.append((premises_id, order, rule, ids))
    created: list[Recommendation] = []
    # Premises by premises, each one's rules in order, as the rules were always applied.
    for premises_id, _order, rule, ids in sorted(met, key=lambda hit: hit[:2]):
        recommendation = raise_recommendation(
            session,
            premises_id,
            rule.name,
            rule.event,
            f"{len(ids)} {rule.label} (threshold {rule.threshold})",
            ids,
            now,
        )
        open_keys.add((premises_id, rule.name))
        created.append(recommendation)
    # A completed action plan then a quiet period recommends `stand_down` (time-based,
    # so here); a failed plan recommends at the moment it fails (licensing.actionplans).
    from licensing.actionplans.services import quiet_plan_recommendations

    created += quiet_plan_recommendations(session, premises_ids, now)
    session.commit()
    return created


def open_recommendations(session: Session, premises_id: int | None = None) -> list[Recommendation]:
    """Open recommendations, newest first (of one premises, or all)."""
    if premises_id is not None:
        return list(session.scalars(_OPEN_OF_PREMISES, {"premises_id": premises_id}))
    return list(session.scalars(_OPEN))


_OPEN = (
    select(Recommendation)
    .where(Recommendation.status == "open")
    .order_by(Recommendation.created_at.desc(), Recommendation.id.desc())
)
# Built once (see licensing.db): every premises page reads it.
_OPEN_OF_PREMISES = _OPEN.where(Recommendation.premises_id == bindparam("premises_id"))
# Whether it would find any: the premises page asks first (licensing.premises.sections).
ANY_OPEN_RECOMMENDATION: Exists = exists_of(_OPEN_OF_PREMISES)


def count_open(session: Session) -> int:
    """How many recommendations are open."""
    return (
        session.scalar(
            select(func.count()).select_from(Recommendation).where(Recommendation.status == "open")
        )
        or 0
    )


def dismiss(session: Session, actor: User, recommendation_id: int, reason: str) -> Recommendation:
    """Dismiss a recommendation with a reason (police only); recorded on the premises chain."""
    if actor.role not in POLICE_ROLES:
        raise (
            NotFound("Not found")
            if actor.role == Role.COUNCIL
            else Forbidden("Only police officers decide recommendations")
        )
    recommendation = session.get(Recommendation, recommendation_id)
    if recommendation is None:
        raise NotFound("No such recommendation")
    if recommendation.status != "open":
        raise Refused("That recommendation has already been decided")
    if not reason.strip():
        raise ValidationFailed("Give a reason for dismissing it", {"reason": "Give a reason"})
    recommendation.status = "dismissed"
    recommendation.decided_by_id = actor.id
    recommendation.decided_at = utcnow()
    recommendation.decision_reason = reason.strip()
    append_event(
        session,
        event="recommendation_dismissed",
        actor_id=actor.id,
        premises_id=recommendation.premises_id,
        reason=reason.strip(),
        payload={"recommendation_id": recommendation.id, "rule": recommendation.rule},
    )
    session.commit()
    return recommendation


def mark_acted(session: Session, premises_id: int, event: str, actor: User) -> None:
    """Close open recommendations of `event` for a premises when the event is taken
    (in the caller's transaction)."""
    for recommendation in session.scalars(
        select(Recommendation).where(
            Recommendation.premises_id == premises_id,
            Recommendation.status == "open",
            Recommendation.recommended_event == event,
        )
    ):
        recommendation.status = "acted"
        recommendation.decided_by_id = actor.id
        recommendation.decided_at = utcnow()
