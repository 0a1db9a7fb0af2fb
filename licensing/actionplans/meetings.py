"""Partnership meetings: record one (about a premises, or about a licensing authority's
area), with who came from which organisation, the minutes, decisions and actions; turn
an action into an item on a premises' open action plan.

Meetings are police records (the matrix grants them to police roles only). A meeting
about a premises goes on that premises' audit chain; an area meeting on the system chain.
Attendees' names and the minutes stay in the meeting tables, never on a chain.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from licensing.actionplans import services as plans
from licensing.actionplans.models import (
    ORGANISATIONS,
    ActionPlan,
    ActionPlanItem,
    MeetingAction,
    MeetingAttendee,
    PartnershipMeeting,
)
from licensing.audit.services import append_event
from licensing.auth.matrix import Action, allowed, refusal_status
from licensing.auth.models import User
from licensing.auth.permissions import can_see_premises
from licensing.errors import Conflict, Forbidden, NotFound, Refused, ValidationFailed
from licensing.premises.models import LicensingAuthority, Premises
from licensing.timeutil import london_today

TITLE_MAX = 200
TEXT_MAX = 20_000
MAX_ATTENDEES = 40
MAX_ACTIONS = 30
# A meeting is recorded after it happened, or booked a little ahead with its agenda.
MAX_DAYS_AHEAD = 90


@dataclass(frozen=True)
class AttendeeInput:
    """Someone at the meeting: their organisation (one of ORGANISATIONS) and name."""

    organisation: str
    name: str


@dataclass(frozen=True)
class ActionInput:
    """An action the meeting agreed: what, whose, by when (optional)."""

    description: str
    owner: str
    due_on: date | None


def _require(actor: User, action: Action, premises: Premises | None) -> None:
    if premises is not None and not can_see_premises(actor, premises):
        raise NotFound("No such premises")
    if not allowed(actor, action, premises.authority_id if premises else None):
        if refusal_status(actor) == 404:
            raise NotFound("Page not found")
        raise Forbidden("Only police licensing officers work with partnership meetings")


def get_meeting(session: Session, user: User, meeting_id: int) -> PartnershipMeeting:
    """A meeting the user may see, or NotFound / Forbidden."""
    meeting = session.get(PartnershipMeeting, meeting_id)
    if meeting is None:
        raise NotFound("No such meeting")
    _require(user, Action.VIEW_MEETINGS, meeting.premises)
    return meeting


def list_meetings(
    session: Session, user: User, premises_id: int | None = None
) -> list[PartnershipMeeting]:
    """Meetings, newest first (of one premises, or all)."""
    _require(user, Action.VIEW_MEETINGS, None)
    query = select(PartnershipMeeting).options(selectinload(PartnershipMeeting.attendees))
    if premises_id is not None:
        query = query.where(PartnershipMeeting.premises_id == premises_id)
    return list(
        session.scalars(query.order_by(PartnershipMeeting.held_on.desc(), PartnershipMeeting.id))
    )


def create_meeting(
    session: Session,
    actor: User,
    *,
    premises: Premises | None,
    authority: LicensingAuthority | None,
    held_on: date | None,
    title: str,
    minutes: str,
    decisions: str,
    attendees: list[AttendeeInput],
    actions: list[ActionInput],
) -> PartnershipMeeting:
    """Record a meeting about a premises or an authority's area; commit."""
    _require(actor, Action.MANAGE_MEETINGS, premises)
    errors: dict[str, str] = {}
    if premises is None and authority is None:
        errors["authority_id"] = "Choose the licensing authority whose area the meeting covered"
    if held_on is None:
        errors["held_on"] = "Enter the date of the meeting"
    elif held_on > london_today() + timedelta(days=MAX_DAYS_AHEAD):
        errors["held_on"] = "The meeting must be within the next 90 days"
    title = (title or "").strip()
    if not title:
        errors["title"] = "Enter what the meeting was about"
    elif len(title) > TITLE_MAX:
        errors["title"] = f"Use at most {TITLE_MAX} characters"
    for name, value in (("minutes", minutes), ("decisions", decisions)):
        if len(value or "") > TEXT_MAX or "\x00" in (value or ""):
            errors[name] = f"Use at most {TEXT_MAX:,} characters of text"
    people = [a for a in attendees if a.organisation or a.name.strip()]
    if not people:
        errors["attendees"] = "Add at least one attendee"
    elif len(people) > MAX_ATTENDEES:
        errors["attendees"] = f"At most {MAX_ATTENDEES} attendees"
    for index, person in enumerate(people):
        if person.organisation not in ORGANISATIONS:
            errors[f"attendees-{index}-organisation"] = "Choose the attendee's organisation"
        if len(person.name.strip()) > 200:
            errors[f"attendees-{index}-name"] = "Use at most 200 characters"
    agreed = [a for a in actions if a.description.strip() or a.owner.strip()]
    if len(agreed) > MAX_ACTIONS:
        errors["actions"] = f"At most {MAX_ACTIONS} actions"
    for index, item in enumerate(agreed):
        if not item.description.strip():
            errors[f"actions-{index}-description"] = "Describe the action"
        elif len(item.description.strip()) > plans.DESCRIPTION_MAX:
            errors[f"actions-{index}-description"] = "Use at most 2,000 characters"
        if len(item.owner.strip()) > plans.OWNER_MAX:
            errors[f"actions-{index}-owner"] = "Use at most 200 characters"
    if errors:
        raise ValidationFailed("; ".join(errors.values()), errors)

    try:
        if premises is not None:
            plans._lock_premises(session, premises.id)
        meeting = PartnershipMeeting(
            premises_id=premises.id if premises else None,
            authority_id=premises.authority_id if premises else authority.id,  # type: ignore[union-attr]
            held_on=held_on,
            title=title,
            minutes=(minutes or "").strip(),
            decisions=(decisions or "").strip(),
            created_by_id=actor.id,
        )
        session.add(meeting)
        session.flush()
        session.add_all(
            MeetingAttendee(meeting_id=meeting.id, organisation=p.organisation, name=p.name.strip())
            for p in people
        )
        session.add_all(
            MeetingAction(
                meeting_id=meeting.id,
                description=a.description.strip(),
                owner=a.owner.strip(),
                due_on=a.due_on,
                premises_id=premises.id if premises else None,
            )
            for a in agreed
        )
        session.flush()
        assert held_on is not None
        append_event(
            session,
            event="partnership_meeting_recorded",
            actor_id=actor.id,
            premises_id=premises.id if premises else None,
            payload={
                "meeting_id": meeting.id,
                "held_on": held_on.isoformat(),
                "authority_id": meeting.authority_id,
                "organisations": sorted({p.organisation for p in people}),
                "actions": len(agreed),
            },
        )
        session.commit()
    except BaseException:
        session.rollback()
        raise
    session.refresh(meeting)
    return meeting


def action_to_plan_item(
    session: Session,
    actor: User,
    action: MeetingAction,
    *,
    premises: Premises | None = None,
    seen_lock_version: int | None,
) -> ActionPlanItem:
    """Make a meeting's action an item of a premises' open action plan (the meeting's
    premises, or for an area meeting the one chosen); audited on that premises' chain
    with the meeting; commit. The item's due date is the action's, else the review date."""
    meeting = action.meeting
    target = action.premises or meeting.premises or premises
    if target is None:
        raise ValidationFailed(
            "Choose the premises whose plan gets this action",
            {"premises_id": "Choose a premises"},
        )
    _require(actor, Action.MANAGE_MEETINGS, target)
    plans._require(actor, Action.MANAGE_ACTION_PLANS, target)
    if action.plan_item_id is not None:
        raise Refused("This action is already an item of an action plan")
    plan = plans.current_plan(session, target.id, open_only=True)
    if plan is None:
        raise Refused(f"{target.name} has no open action plan: agree one first")
    due_on = action.due_on or plan.review_on
    errors: dict[str, str] = {}
    [item] = plans._check_items(
        [plans.ItemInput(action.description, action.owner or "Licence holder", due_on)],
        plan.agreed_on,
        plan.review_on,
        errors,
    )
    if errors:
        raise Refused(
            "This action cannot join the plan as it is: "
            + "; ".join(errors.values()).lower()
            + ". Add it on the plan's page with a date that fits."
        )
    try:
        plans._fresh_plan(session, plan, seen_lock_version)
        session.refresh(action)
        if action.plan_item_id is not None:
            raise Conflict("Someone made this action an item already")
        row = plans._add_item_row(
            session,
            actor,
            plan,
            item,
            f"From the partnership meeting of {meeting.held_on:%-d %B %Y}",
            meeting_action_id=action.id,
        )
        action.plan_item_id = row.id
        action.premises_id = target.id
        session.commit()
    except IntegrityError:
        session.rollback()
        raise Conflict(plans.STALE_MESSAGE) from None
    except BaseException:
        session.rollback()
        raise
    return row


def meeting_context(session: Session, user: User, meeting: PartnershipMeeting) -> dict[str, Any]:
    """The meeting page's extras: each premises' open plan an action could join, and the
    plans the user may add an action to (`candidates`): the meeting's premises' open plan,
    or on an area meeting any open plan in the authority's area."""
    open_plans = {}
    for action in meeting.actions:
        target = action.premises or meeting.premises
        if target is not None and target.id not in open_plans:
            open_plans[target.id] = plans.current_plan(session, target.id, open_only=True)
    can_manage = allowed(user, Action.MANAGE_MEETINGS) and allowed(user, Action.MANAGE_ACTION_PLANS)
    candidates: list[ActionPlan] = []
    if can_manage and meeting.premises is not None:
        plan = open_plans.get(meeting.premises.id)
        candidates = [plan] if plan is not None else []
    elif can_manage:
        candidates = list(
            session.scalars(
                select(ActionPlan)
                .join(Premises, Premises.id == ActionPlan.premises_id)
                .where(ActionPlan.status == "open", Premises.authority_id == meeting.authority_id)
                .order_by(Premises.name)
            )
        )
    return {"open_plans": open_plans, "can_manage": can_manage, "candidates": candidates}
