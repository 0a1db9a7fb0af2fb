"""Action plans agreed with a licence holder or DPS: agree, update, close, recommend.

When a plan may be agreed
    While the premises is `monitored` (early engagement, before any warning) or `warned`
    (the usual case: the staged schemes' "formal meeting with an action plan"). Not in
    `review` or `action`: the licensing authority's committee is then deciding the
    licence's conditions, and a side agreement with the police would cut across that
    hearing. A plan agreed earlier stays open and is still updated (visits keep recording
    its items) whatever the state becomes: how it ended is evidence at the hearing.
    A premises has at most one open plan at a time.

Item statuses
    `agreed` (the only open one), `done`, `not_done`, `withdrawn`. An item's status
    changes only while its plan is open; each change goes on the premises' audit chain
    with who, when, why and, when recorded at a visit, which visit.

Plan status (stored; recomputed by every change here, and by the alert sweep every
minute for the date rule), with `today` the London date:
    failed     some item is `not_done`; or `today` is after `review_on` and some item is
               still `agreed` (the review date was missed with items outstanding);
    completed  not failed, no item `agreed`, and at least one `done`;
    withdrawn  every item `withdrawn` (the plan ends without success or failure);
    open       otherwise.
Completed, failed and withdrawn are final: the plan is closed (`closed_at`) and a new
plan may be agreed. A review date may be moved while the plan is open, before it passes.

Recommendations (rules of licensing.incidents.recommendations' Recommendation; they
never change a state, an officer acts or dismisses):
    `action_plan_failed`     raised the moment a plan fails: `apply_for_review` while
                             warned, `warn` while monitored (early engagement failed);
                             nothing once in review or action (already escalated).
    `action_plan_completed`  `stand_down` while warned, once the latest plan completed
                             at least ACTION_PLAN_QUIET_DAYS (default 28) ago and no
                             confirmed incident counted in the last ACTION_PLAN_QUIET_DAYS.
                             Time-based, so the scheduler's hourly recommendation job
                             raises it (`evaluate` calls `quiet_plan_recommendations`).
    Neither is raised while one of the same rule is open for the premises, nor again
    for the same plan after it was dismissed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import Exists, bindparam, exists, func, select
from sqlalchemy.orm import Session, lazyload, selectinload

from licensing.actionplans.models import (
    ITEM_AGREED,
    ITEM_DONE,
    ITEM_NOT_DONE,
    ITEM_STATUSES,
    PLAN_COMPLETED,
    PLAN_FAILED,
    PLAN_OPEN,
    PLAN_WITHDRAWN,
    ActionPlan,
    ActionPlanItem,
)
from licensing.audit.services import append_event
from licensing.auth.matrix import Action, allowed, refusal_status
from licensing.auth.models import User
from licensing.auth.permissions import can_see_premises
from licensing.db import conflict_on, exists_of, utcnow
from licensing.errors import Conflict, Forbidden, NotFound, Refused, ValidationFailed
from licensing.incidents.models import Incident, PremisesIncidentLink, Recommendation
from licensing.incidents.recommendations import raise_recommendation
from licensing.premises import workflow
from licensing.premises.models import Premises
from licensing.timeutil import LONDON, london_today
from licensing.visits.models import Visit

AGREEABLE_STATES = (workflow.MONITORED, workflow.WARNED)
MAX_ITEMS = 20
DESCRIPTION_MAX = 2000
OWNER_MAX = 200
NAME_MAX = 300
REASON_MAX = 2000
# Schemes run plans for up to 12 weeks; a year is a generous outer bound for a typo check.
MAX_PLAN_DAYS = 366
DEFAULT_QUIET_DAYS = 28
RULE_FAILED, RULE_COMPLETED = "action_plan_failed", "action_plan_completed"
STALE_MESSAGE = (
    "Someone else changed this action plan since you opened it. "
    "Reload the page to see their change, then try again."
)


@dataclass(frozen=True)
class ItemInput:
    """One item as an officer types it: what, whose job, by when."""

    description: str
    owner: str
    due_on: date | None


# ---- status --------------------------------------------------------------------------


def derive_status(plan: ActionPlan, today: date | None = None) -> str:
    """The plan's status from its items and review date (see the module docstring)."""
    today = today or london_today()
    statuses = [item.status for item in plan.items]
    if ITEM_NOT_DONE in statuses:
        return PLAN_FAILED
    if ITEM_AGREED in statuses:
        return PLAN_FAILED if today > plan.review_on else PLAN_OPEN
    if ITEM_DONE in statuses:
        return PLAN_COMPLETED
    return PLAN_WITHDRAWN if statuses else PLAN_OPEN


def failure_reason(plan: ActionPlan) -> str:
    """Why a failed plan failed, in words."""
    if any(item.status == ITEM_NOT_DONE for item in plan.items):
        return "an item was not done"
    return "the review date passed with items outstanding"


# ---- access and writing --------------------------------------------------------------


def _require(actor: User, action: Action, premises: Premises) -> None:
    """The matrix's grant for the action on this premises; NotFound when the premises is
    not one the user may see (council users learn nothing), Forbidden otherwise."""
    if not can_see_premises(actor, premises):
        raise NotFound("No such premises")
    if not allowed(actor, action, premises.authority_id):
        if refusal_status(actor) == 404:
            raise NotFound("Page not found")
        raise Forbidden("Only police licensing officers work on action plans")


def get_plan(session: Session, user: User, plan_id: int) -> ActionPlan:
    """A plan the user may see, or NotFound / Forbidden."""
    plan = session.get(ActionPlan, plan_id)
    if plan is None:
        raise NotFound("No such action plan")
    _require(user, Action.VIEW_ACTION_PLANS, plan.premises)
    return plan


def _lock_premises(session: Session, premises_id: int) -> None:
    """PostgreSQL: take the premises row lock first, as every writer to its chain does,
    so plan writers queue on it instead of deadlocking with the audit append."""
    if session.get_bind().dialect.name == "postgresql":
        session.scalar(select(Premises.id).where(Premises.id == premises_id).with_for_update())


@contextmanager
def _writing(session: Session) -> Iterator[None]:
    """A version clash or a second open plan becomes Conflict; any failure rolls back."""
    with conflict_on(session, STALE_MESSAGE):
        yield
        session.commit()


def _fresh_plan(session: Session, plan: ActionPlan, seen_lock_version: int | None) -> None:
    """Under the premises lock: re-read the plan and refuse a stale or closed one."""
    if seen_lock_version is None or seen_lock_version != plan.lock_version:
        raise Conflict(STALE_MESSAGE)
    _lock_premises(session, plan.premises_id)
    session.refresh(plan)
    for item in plan.items:
        session.refresh(item)
    if plan.lock_version != seen_lock_version:
        raise Conflict(STALE_MESSAGE)
    if not plan.is_open:
        raise Refused(f"This action plan is {plan.status_label.lower()}: it no longer changes")


def _text(value: str | None, limit: int, field: str, what: str, errors: dict[str, str]) -> str:
    cleaned = (value or "").strip()
    if not cleaned:
        errors[field] = f"Enter {what}"
    elif len(cleaned) > limit or "\x00" in cleaned:
        errors[field] = f"Use at most {limit:,} characters for {what}"
    return cleaned


def _check_items(
    items: list[ItemInput], agreed_on: date, review_on: date, errors: dict[str, str], first: int = 0
) -> list[ItemInput]:
    cleaned = []
    for index, item in enumerate(items, start=first):
        description = _text(
            item.description,
            DESCRIPTION_MAX,
            f"items-{index}-description",
            "what was agreed",
            errors,
        )
        owner = _text(item.owner, OWNER_MAX, f"items-{index}-owner", "who will do it", errors)
        if item.due_on is None:
            errors[f"items-{index}-due_on"] = "Enter the date it is due"
        elif item.due_on < agreed_on:
            errors[f"items-{index}-due_on"] = "An item cannot be due before the plan was agreed"
        elif item.due_on > review_on:
            errors[f"items-{index}-due_on"] = (
                "An item must be due by the review date, when it is checked"
            )
        cleaned.append(ItemInput(description, owner, item.due_on))
    return cleaned


def _close_if_settled(
    session: Session, plan: ActionPlan, actor: User | None, today: date
) -> str | None:
    """Recompute the plan's status; when it closes, record it and raise the failed
    plan's recommendation. Returns the new status when it changed."""
    status = derive_status(plan, today)
    if status == plan.status:
        return None
    plan.status = status
    plan.updated_at = utcnow()
    if status != PLAN_OPEN:
        plan.closed_at = utcnow()
    session.flush()
    payload: dict[str, Any] = {
        "plan_id": plan.id,
        "items": {str(item.id): item.status for item in plan.items},
    }
    reason = None
    if status == PLAN_FAILED:
        reason = f"Action plan failed: {failure_reason(plan)}"
        payload["failed_because"] = (
            "item_not_done"
            if any(i.status == ITEM_NOT_DONE for i in plan.items)
            else "review_date_missed"
        )
    append_event(
        session,
        event=f"action_plan_{status}",
        actor_id=actor.id if actor else None,
        premises_id=plan.premises_id,
        reason=reason,
        payload=payload,
    )
    if status == PLAN_FAILED:
        _recommend_after_failure(session, plan)
    return status


# ---- agreeing and changing ----------------------------------------------------------


def agree_plan(
    session: Session,
    actor: User,
    premises: Premises,
    *,
    agreed_on: date | None,
    review_on: date | None,
    agreed_with: str,
    items: list[ItemInput],
    reason: str,
    meeting_id: int | None = None,
) -> ActionPlan:
    """Record a plan agreed with the licence holder/DPS, with its items; commit.

    Refused while the premises is in review or action, or has an open plan; a second
    officer agreeing one at the same moment gets Conflict (the one-open-plan index)."""
    _require(actor, Action.MANAGE_ACTION_PLANS, premises)
    if premises.state not in AGREEABLE_STATES:
        raise Refused(
            "An action plan is agreed while a premises is monitored or warned, not "
            f"while it is {workflow.STATE_LABELS[premises.state].lower()}"
        )
    if current_plan(session, premises.id, open_only=True) is not None:
        raise Refused("This premises already has an open action plan: update that one")
    errors: dict[str, str] = {}
    today = london_today()
    if agreed_on is None:
        errors["agreed_on"] = "Enter the date the plan was agreed"
    elif agreed_on > today:
        errors["agreed_on"] = "The plan cannot be agreed in the future"
    if review_on is None:
        errors["review_on"] = "Enter the date the plan will be reviewed"
    elif agreed_on is None or "agreed_on" in errors:
        pass  # compared with the date agreed once that is right
    elif review_on < agreed_on:
        errors["review_on"] = "The review date must be on or after the date agreed"
    elif review_on > agreed_on + timedelta(days=MAX_PLAN_DAYS):
        errors["review_on"] = "The review date must be within a year of the date agreed"
    elif review_on < today:
        errors["review_on"] = "The review date has passed: choose a date from today on"
    who = _text(agreed_with, NAME_MAX, "agreed_with", "who agreed the plan", errors)
    why = _text(reason, REASON_MAX, "reason", "what the plan addresses", errors)
    if not items:
        errors["items"] = "Add at least one item"
    elif len(items) > MAX_ITEMS:
        errors["items"] = f"A plan has at most {MAX_ITEMS} items"
    if (
        agreed_on is not None
        and review_on is not None
        and not {"agreed_on", "review_on"} & set(errors)
    ):
        items = _check_items(items, agreed_on, review_on, errors)
    if errors:
        raise ValidationFailed("; ".join(errors.values()), errors)
    assert agreed_on is not None and review_on is not None

    with _writing(session):
        _lock_premises(session, premises.id)
        plan = ActionPlan(
            premises_id=premises.id,
            agreed_on=agreed_on,
            review_on=review_on,
            agreed_with=who,
            status=PLAN_OPEN,
            meeting_id=meeting_id,
            created_by_id=actor.id,
        )
        session.add(plan)
        session.flush()
        rows = [
            ActionPlanItem(
                plan_id=plan.id,
                description=item.description,
                owner=item.owner,
                due_on=item.due_on,
                status=ITEM_AGREED,
            )
            for item in items
        ]
        session.add_all(rows)
        session.flush()
        append_event(
            session,
            event="action_plan_agreed",
            actor_id=actor.id,
            premises_id=premises.id,
            reason=why,
            payload={
                "plan_id": plan.id,
                "agreed_on": agreed_on.isoformat(),
                "review_on": review_on.isoformat(),
                "meeting_id": meeting_id,
                "items": [
                    {"item_id": r.id, "description": r.description, "due_on": r.due_on.isoformat()}
                    for r in rows
                ],
            },
            # Names stay off the chain (erasable): who agreed, and each item's owner.
            personal_values={
                "agreed_with": (None, who),
                **{f"item_{r.id}_owner": (None, r.owner) for r in rows},
            },
        )
    session.refresh(plan)
    return plan


def _add_item_row(
    session: Session,
    actor: User,
    plan: ActionPlan,
    item: ItemInput,
    reason: str,
    meeting_action_id: int | None = None,
) -> ActionPlanItem:
    row = ActionPlanItem(
        plan_id=plan.id,
        description=item.description,
        owner=item.owner,
        due_on=item.due_on,
        status=ITEM_AGREED,
    )
    plan.items.append(row)
    plan.updated_at = utcnow()  # bumps the plan's lock_version: one version for the plan
    session.flush()
    assert item.due_on is not None
    payload: dict[str, Any] = {
        "plan_id": plan.id,
        "item_id": row.id,
        "description": row.description,
        "due_on": item.due_on.isoformat(),
    }
    if meeting_action_id is not None:
        payload["meeting_action_id"] = meeting_action_id
    append_event(
        session,
        event="action_plan_item_added",
        actor_id=actor.id,
        premises_id=plan.premises_id,
        reason=reason,
        payload=payload,
        personal_values={f"item_{row.id}_owner": (None, row.owner)},
    )
    return row


def add_item(
    session: Session,
    actor: User,
    plan: ActionPlan,
    seen_lock_version: int | None,
    item: ItemInput,
    reason: str,
) -> ActionPlanItem:
    """Add an item to an open plan (agreed later with the licence holder); commit."""
    _require(actor, Action.MANAGE_ACTION_PLANS, plan.premises)
    errors: dict[str, str] = {}
    why = _text(reason, REASON_MAX, "reason", "why it was added", errors)
    [cleaned] = _check_items([item], plan.agreed_on, plan.review_on, errors)
    errors = {k.replace("items-0-", ""): v for k, v in errors.items()}
    if errors:
        raise ValidationFailed("; ".join(errors.values()), errors)
    if len(plan.items) >= MAX_ITEMS:
        raise Refused(f"A plan has at most {MAX_ITEMS} items")
    with _writing(session):
        _fresh_plan(session, plan, seen_lock_version)
        row = _add_item_row(session, actor, plan, cleaned, why)
    return row


def _set_status(
    session: Session,
    actor: User,
    plan: ActionPlan,
    item: ActionPlanItem,
    status: str,
    reason: str,
    visit_id: int | None,
) -> None:
    previous = item.status
    item.status = status
    item.status_changed_at = utcnow()
    item.status_changed_by_id = actor.id
    item.status_visit_id = visit_id
    plan.updated_at = utcnow()
    payload: dict[str, Any] = {
        "plan_id": plan.id,
        "item_id": item.id,
        "description": item.description,
        "from_status": previous,
        "to_status": status,
    }
    if visit_id is not None:
        payload["visit_id"] = visit_id
    append_event(
        session,
        event="action_plan_item_status_changed",
        actor_id=actor.id,
        premises_id=plan.premises_id,
        reason=reason,
        payload=payload,
    )


def _check_statuses(plan: ActionPlan, changes: dict[int, str]) -> dict[int, str]:
    """Drop "no change" entries; refuse unknown items and statuses (ValidationFailed)."""
    by_id = {item.id: item for item in plan.items}
    wanted: dict[int, str] = {}
    errors: dict[str, str] = {}
    for item_id, status in changes.items():
        item = by_id.get(item_id)
        if item is None:
            errors[f"item_{item_id}"] = "That item is not on this plan"
        elif status in ("", item.status):
            continue
        elif status not in ITEM_STATUSES or status == ITEM_AGREED:
            errors[f"item_{item_id}"] = "Choose done, not done or withdrawn"
        elif not item.is_open:
            errors[f"item_{item_id}"] = f"This item is already {item.status_label.lower()}"
        else:
            wanted[item_id] = status
    if errors:
        raise ValidationFailed("; ".join(errors.values()), errors)
    return wanted


def update_items(
    session: Session,
    actor: User,
    plan: ActionPlan,
    seen_lock_version: int | None,
    changes: dict[int, str],
    reason: str,
) -> ActionPlan:
    """Set the status of some of an open plan's items (done, not done, withdrawn), with
    a reason; the plan closes if that settles it. Commits."""
    _require(actor, Action.MANAGE_ACTION_PLANS, plan.premises)
    errors: dict[str, str] = {}
    why = _text(reason, REASON_MAX, "reason", "why the items changed", errors)
    if errors:
        raise ValidationFailed("; ".join(errors.values()), errors)
    with _writing(session):
        _fresh_plan(session, plan, seen_lock_version)
        wanted = _check_statuses(plan, changes)
        if not wanted:
            raise ValidationFailed(
                "Change at least one item", {"reason": "Change at least one item"}
            )
        for item in plan.items:
            if item.id in wanted:
                _set_status(session, actor, plan, item, wanted[item.id], why, None)
        session.flush()
        _close_if_settled(session, plan, actor, london_today())
    return plan


def move_review_date(
    session: Session,
    actor: User,
    plan: ActionPlan,
    seen_lock_version: int | None,
    review_on: date | None,
    reason: str,
) -> ActionPlan:
    """Move an open plan's review date (from today on, not before any item is due);
    commits."""
    _require(actor, Action.MANAGE_ACTION_PLANS, plan.premises)
    errors: dict[str, str] = {}
    why = _text(reason, REASON_MAX, "reason", "why the review date moved", errors)
    latest_due = max((i.due_on for i in plan.items if i.is_open), default=plan.agreed_on)
    if review_on is None:
        errors["review_on"] = "Enter the new review date"
    elif review_on < london_today():
        errors["review_on"] = "The review date must be today or later"
    elif review_on < latest_due:
        errors["review_on"] = "The review date cannot be before an open item is due"
    elif review_on > plan.agreed_on + timedelta(days=MAX_PLAN_DAYS):
        errors["review_on"] = "The review date must be within a year of the date agreed"
    if errors:
        raise ValidationFailed("; ".join(errors.values()), errors)
    assert review_on is not None
    with _writing(session):
        _fresh_plan(session, plan, seen_lock_version)
        previous = plan.review_on
        if previous == review_on:
            raise ValidationFailed(
                "That is the review date already", {"review_on": "Choose a different date"}
            )
        plan.review_on = review_on
        plan.updated_at = utcnow()
        session.flush()
        append_event(
            session,
            event="action_plan_review_date_changed",
            actor_id=actor.id,
            premises_id=plan.premises_id,
            reason=why,
            payload={
                "plan_id": plan.id,
                "from_review_on": previous.isoformat(),
                "to_review_on": review_on.isoformat(),
            },
        )
    return plan


# ---- visits --------------------------------------------------------------------------


def open_items_for_visit(session: Session, visit: Visit) -> list[ActionPlanItem]:
    """The agreed items of the premises' open plan, which a visit can record."""
    plan = current_plan(session, visit.premises_id, open_only=True)
    return [item for item in plan.items if item.is_open] if plan is not None else []


def check_visit_statuses(session: Session, visit: Visit, changes: dict[int, str]) -> None:
    """Before a visit is recorded: refuse statuses a visit may not set (ValidationFailed).
    A visit records what it found: done or not done."""
    errors: dict[str, str] = {}
    for item_id, status in changes.items():
        if status not in ("", ITEM_DONE, ITEM_NOT_DONE):
            errors[f"plan_item_{item_id}"] = "Choose done, not done, or leave it as agreed"
    if errors:
        raise ValidationFailed("; ".join(errors.values()), errors)


def record_at_visit(
    session: Session, actor: User, visit: Visit, changes: dict[int, str]
) -> list[int]:
    """Set item statuses found at a visit, in the visit's own transaction (the visit
    service commits). Each change is attributed to the visit on the audit chain. An item
    someone closed since the visit form was opened is a Conflict. Returns the item ids."""
    wanted = {item_id: status for item_id, status in changes.items() if status}
    if not wanted:
        return []
    check_visit_statuses(session, visit, wanted)
    plan = current_plan(session, visit.premises_id, open_only=True)
    if plan is None:
        raise Conflict(
            "The action plan was closed since you opened this visit. "
            "Reload the page to see it, then record the visit again."
        )
    session.refresh(plan)
    by_id = {item.id: item for item in plan.items}
    for item_id in wanted:
        item = by_id.get(item_id)
        if item is None or not item.is_open:
            raise Conflict(
                "An item of the action plan changed since you opened this visit. "
                "Reload the page to see it, then record the visit again."
            )
    reason = f"Recorded at visit {visit.id}"
    for item_id, status in wanted.items():
        _set_status(session, actor, plan, by_id[item_id], status, reason, visit.id)
    session.flush()
    _close_if_settled(session, plan, actor, london_today())
    return sorted(wanted)


# ---- the sweep -----------------------------------------------------------------------


def close_plans_past_review(session: Session, now: datetime | None = None) -> list[ActionPlan]:
    """Fail every open plan whose review date has passed with items outstanding (in the
    caller's transaction: the alert sweep commits). Recorded with no actor: the rule did it."""
    today = (now or utcnow()).astimezone(LONDON).date()
    plans = list(
        session.scalars(
            select(ActionPlan)
            .where(ActionPlan.status == PLAN_OPEN, ActionPlan.review_on < today)
            .options(selectinload(ActionPlan.items))
            .order_by(ActionPlan.id)
        )
    )
    closed = []
    for plan in plans:
        _lock_premises(session, plan.premises_id)
        if _close_if_settled(session, plan, None, today) is not None:
            closed.append(plan)
    return closed


# ---- recommendations -----------------------------------------------------------------


def _quiet_days() -> int:
    if has_app_context():
        return int(current_app.config.get("ACTION_PLAN_QUIET_DAYS") or DEFAULT_QUIET_DAYS)
    return DEFAULT_QUIET_DAYS


def _recommend(
    session: Session, plan: ActionPlan, rule: str, event: str, summary: str, now: datetime
) -> Recommendation | None:
    """Raise one recommendation unless one of the rule is open for the premises, or one
    was already raised for this plan (since it closed): a dismissal is not undone."""
    earlier = session.scalar(
        select(
            exists().where(
                Recommendation.premises_id == plan.premises_id,
                Recommendation.rule == rule,
                (Recommendation.status == "open")
                | (Recommendation.created_at >= (plan.closed_at or now)),
            )
        )
    )
    if earlier:
        return None
    return raise_recommendation(
        session, plan.premises_id, rule, event, summary, [], now, plan_id=plan.id
    )


def _recommend_after_failure(session: Session, plan: ActionPlan) -> Recommendation | None:
    event = {workflow.WARNED: "apply_for_review", workflow.MONITORED: "warn"}.get(
        plan.premises.state
    )
    if event is None:
        return None
    return _recommend(
        session,
        plan,
        RULE_FAILED,
        event,
        f"The action plan agreed on {plan.agreed_on:%-d %B %Y} failed: {failure_reason(plan)}",
        utcnow(),
    )


def quiet_plan_recommendations(
    session: Session, premises_ids: list[int] | None = None, now: datetime | None = None
) -> list[Recommendation]:
    """Recommend standing down each warned premises whose latest plan completed at least
    the quiet period ago with no confirmed incident counted in the quiet period (in the
    caller's transaction)."""
    now = now or utcnow()
    days = _quiet_days()
    since = now - timedelta(days=days)
    latest = (
        select(func.max(ActionPlan.id))
        .where(ActionPlan.premises_id == Premises.id)
        .correlate(Premises)
        .scalar_subquery()
    )
    query = (
        select(ActionPlan)
        .join(Premises, Premises.id == ActionPlan.premises_id)
        .where(
            ActionPlan.id == latest,
            ActionPlan.status == PLAN_COMPLETED,
            ActionPlan.closed_at <= since,
            Premises.state == workflow.WARNED,
        )
        .order_by(ActionPlan.id)
    )
    if premises_ids is not None:
        query = query.where(ActionPlan.premises_id.in_(premises_ids))
    raised = []
    for plan in session.scalars(query):
        incidents = session.scalar(
            select(func.count())
            .select_from(Incident)
            .join(PremisesIncidentLink, PremisesIncidentLink.incident_id == Incident.id)
            .where(
                PremisesIncidentLink.premises_id == plan.premises_id,
                PremisesIncidentLink.status == "confirmed",
                Incident.counted_at >= since,
                Incident.counted_at <= now,
            )
        )
        if incidents:
            continue
        recommendation = _recommend(
            session,
            plan,
            RULE_COMPLETED,
            "stand_down",
            f"The action plan agreed on {plan.agreed_on:%-d %B %Y} was completed and no "
            f"confirmed incident was recorded in the last {days} days",
            now,
        )
        if recommendation is not None:
            raised.append(recommendation)
    return raised


# ---- reading -------------------------------------------------------------------------


def current_plan(
    session: Session, premises_id: int, *, open_only: bool = False
) -> ActionPlan | None:
    """The premises' open plan, or (unless `open_only`) its latest closed one."""
    statement = _OPEN_PLAN if open_only else _LATEST_PLAN
    return session.scalar(statement, {"premises_id": premises_id})


# Built once (see licensing.db): every premises page reads one.
# One premises: its row comes from the session (or one load), not a join.
_LATEST_PLAN = (
    select(ActionPlan)
    .where(ActionPlan.premises_id == bindparam("premises_id"))
    .options(selectinload(ActionPlan.items), lazyload(ActionPlan.premises))
    .order_by(ActionPlan.id.desc())
    .limit(1)
)
_OPEN_PLAN = _LATEST_PLAN.where(ActionPlan.status == PLAN_OPEN)
# Whether it would find one: the premises page asks first (licensing.premises.sections).
ANY_PLAN: Exists = exists_of(_LATEST_PLAN)


def plans_of(session: Session, premises_id: int) -> list[ActionPlan]:
    """Every plan of a premises, newest first."""
    return list(
        session.scalars(
            select(ActionPlan)
            .where(ActionPlan.premises_id == premises_id)
            .options(selectinload(ActionPlan.items))
            .order_by(ActionPlan.id.desc())
        )
    )


def count_plans(session: Session, premises_id: int) -> int:
    """How many plans the premises has had (one COUNT, no plans loaded)."""
    return session.scalar(_COUNT_PLANS, {"premises_id": premises_id}) or 0


_COUNT_PLANS = (
    select(func.count())
    .select_from(ActionPlan)
    .where(ActionPlan.premises_id == bindparam("premises_id"))
)


def overdue(item: ActionPlanItem, today: date | None = None) -> bool:
    """Still agreed after its due date."""
    return item.is_open and item.due_on < (today or london_today())


def premises_plan_context(
    session: Session, user: User, premises: Premises, *, any_plan: bool = True
) -> dict[str, Any]:
    """What the premises page shows of action plans: nothing unless the user may see
    them. With `any_plan` False (the page has asked `ANY_PLAN`), no plan is read."""
    if not allowed(user, Action.VIEW_ACTION_PLANS, premises.authority_id):
        return {"visible": False}
    plan = current_plan(session, premises.id) if any_plan else None
    today = london_today()
    return {
        "visible": True,
        "plan": plan,
        "overdue_ids": {i.id for i in plan.items if overdue(i, today)} if plan else set(),
        "can_manage": allowed(user, Action.MANAGE_ACTION_PLANS, premises.authority_id),
        "can_agree": premises.state in AGREEABLE_STATES and (plan is None or not plan.is_open),
        "earlier": max(count_plans(session, premises.id) - 1, 0) if plan else 0,
    }


def agreed_plans(
    session: Session, premises_ids: Sequence[int] | None = None
) -> list[tuple[int, date]]:
    """(premises_id, agreed_on) of every plan of the given premises (all when None),
    oldest first: the interventions the assessment compares before and after."""
    if premises_ids is None:
        rows = session.execute(_AGREED_PLANS)
    else:
        rows = session.execute(_AGREED_PLANS_OF, {"premises_ids": list(premises_ids)})
    return [(premises_id, agreed_on) for premises_id, agreed_on in rows]


# Built once (see licensing.db): every premises page reads it, through the assessment.
_PLANS = ActionPlan.__table__.c  # table columns: Core rows
_AGREED_PLANS = select(_PLANS.premises_id, _PLANS.agreed_on).order_by(_PLANS.agreed_on, _PLANS.id)
_AGREED_PLANS_OF = _AGREED_PLANS.where(
    _PLANS.premises_id.in_(bindparam("premises_ids", expanding=True))
)


def london_noon(day: date) -> datetime:
    """Midday London time of a date, in UTC (a date's place in a chronology)."""
    return datetime.combine(day, time(12), tzinfo=LONDON).astimezone(UTC)


def audit_summary(event: str, payload_text: str) -> str:
    """One line for a plan's audit event (the bundle chronology and timeline)."""
    payload = json.loads(payload_text or "{}")
    if event == "action_plan_agreed":
        items = payload.get("items") or []
        return (
            f"Action plan agreed on {payload.get('agreed_on')} with {len(items)} item"
            f"{'s' if len(items) != 1 else ''}, review on {payload.get('review_on')}"
        )
    if event == "action_plan_item_added":
        return f"Item added: {payload.get('description', '')} (due {payload.get('due_on')})"
    if event == "action_plan_item_status_changed":
        to = ITEM_STATUSES.get(payload.get("to_status", ""), payload.get("to_status"))
        at = f" at visit {payload['visit_id']}" if payload.get("visit_id") else ""
        return f"Item {str(to).lower()}{at}: {payload.get('description', '')}"
    if event == "action_plan_review_date_changed":
        return f"Review date moved from {payload.get('from_review_on')} to {payload.get('to_review_on')}"
    if event == "action_plan_failed":
        why = payload.get("failed_because", "")
        return "Action plan failed: " + (
            "an item was not done"
            if why == "item_not_done"
            else "the review date passed with items outstanding"
        )
    if event == "action_plan_completed":
        return "Action plan completed: every item done or withdrawn"
    if event == "action_plan_withdrawn":
        return "Action plan withdrawn: every item withdrawn"
    return event.replace("_", " ").capitalize()


AUDIT_EVENTS = (
    "action_plan_agreed",
    "action_plan_item_added",
    "action_plan_item_status_changed",
    "action_plan_review_date_changed",
    "action_plan_completed",
    "action_plan_failed",
    "action_plan_withdrawn",
)
