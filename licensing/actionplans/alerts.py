"""Action-plan alerts through the outbox, run by the scheduler's minute sweep
(`enqueue_due_alerts` calls `action_plan_alerts`).

- An overdue item (its due date passed, still agreed, its plan open): once per item and
  due date.
- A missed review date (the review date passed with items still agreed): once per plan
  and review date.
Each goes to the premises' case officer, or to every active supervisor when there is
none, one outbox row per recipient with a dedupe key naming the item or plan, so a
second tick never duplicates. Users who chose "digest only" get none. Alerts look back
ALERT_DAYS only, so switching alerts on (or a long outage) does not mail old history.

Then the sweep fails the open plans whose review date has passed with items outstanding
(licensing.actionplans.services.close_plans_past_review), which raises the failed
plan's recommendation: the alert names the missed date, the recommendation the next step.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from licensing.actionplans.models import (
    ITEM_AGREED,
    PLAN_FAILED,
    PLAN_OPEN,
    ActionPlan,
    ActionPlanItem,
)
from licensing.actionplans.services import close_plans_past_review
from licensing.auth.models import User
from licensing.db import utcnow
from licensing.notifications import alerts as base
from licensing.premises.models import Premises
from licensing.timeutil import LONDON

ALERT_DAYS = 14


def _people(
    session: Session, premises: Premises, skip: set[int], cache: dict[str, list[User]]
) -> list[User]:
    if premises.case_officer is not None:
        return base._recipients(premises.case_officer, [], skip)
    if "supervisors" not in cache:
        cache["supervisors"] = base._active_supervisors(session)
    return base._recipients(None, cache["supervisors"], skip)


def action_plan_alerts(session: Session, now: datetime | None = None) -> int:
    """Enqueue overdue-item and missed-review alerts, then fail plans past their review
    date (in the caller's transaction, which commits); the number of new emails."""
    now = now or utcnow()
    today = now.astimezone(LONDON).date()
    horizon = today - timedelta(days=ALERT_DAYS)
    skip = base._digest_only(session)
    cache: dict[str, list[User]] = {}
    added = 0
    overdue_items = session.execute(
        select(ActionPlanItem, ActionPlan)
        .join(ActionPlan, ActionPlan.id == ActionPlanItem.plan_id)
        .where(
            ActionPlanItem.status == ITEM_AGREED,
            ActionPlanItem.due_on < today,
            ActionPlanItem.due_on >= horizon,
            ActionPlan.status == PLAN_OPEN,
        )
        .order_by(ActionPlanItem.id)
    )
    for item, plan in overdue_items:
        premises = plan.premises
        subject = f"Action plan item overdue – {premises.name}"
        for user in _people(session, premises, skip, cache):
            added += base._send(
                session,
                user,
                f"action_plan_item:{item.id}:{item.due_on.isoformat()}:overdue:user:{user.id}",
                subject,
                "action_plan_item_overdue",
                item=item,
                plan=plan,
                premises=premises,
                due_text=base._long_date(item.due_on),
                premises_url=base.absolute_url("premises.show", premises_id=premises.id),
                plan_url=base.absolute_url("actionplans.show", plan_id=plan.id),
            )
    missed = session.scalars(
        select(ActionPlan)
        .where(
            ActionPlan.status.in_((PLAN_OPEN, PLAN_FAILED)),
            ActionPlan.review_on < today,
            ActionPlan.review_on >= horizon,
            ActionPlan.items.any(ActionPlanItem.status == ITEM_AGREED),
        )
        .order_by(ActionPlan.id)
    ).all()
    for plan in missed:
        premises = plan.premises
        outstanding = [i for i in plan.items if i.status == ITEM_AGREED]
        subject = f"Action plan review date missed – {premises.name}"
        for user in _people(session, premises, skip, cache):
            added += base._send(
                session,
                user,
                f"action_plan_review:{plan.id}:{plan.review_on.isoformat()}:missed:user:{user.id}",
                subject,
                "action_plan_review_missed",
                plan=plan,
                premises=premises,
                outstanding=outstanding,
                review_text=base._long_date(plan.review_on),
                premises_url=base.absolute_url("premises.show", premises_id=premises.id),
                plan_url=base.absolute_url("actionplans.show", plan_id=plan.id),
            )
    close_plans_past_review(session, now)
    return added
