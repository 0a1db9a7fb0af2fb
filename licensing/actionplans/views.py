"""Action plan and partnership meeting pages (police only).

Views stay thin: validate the form, call one service, flash, redirect. A conflicting
edit re-renders the page with the current record and the conflict message (409).
"""

from __future__ import annotations

from typing import Any, cast

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from licensing.actionplans import meetings, services
from licensing.actionplans.forms import (
    ACTION_ROWS,
    ATTENDEE_ROWS,
    ITEM_ROWS,
    ActionToItemForm,
    AddItemForm,
    AgreePlanForm,
    MeetingForm,
    ReviewDateForm,
    item_aliases,
    meeting_aliases,
    update_items_form,
)
from licensing.actionplans.models import (
    ITEM_STATUSES,
    ORGANISATIONS,
    PLAN_STATUSES,
    ActionPlan,
    MeetingAction,
)
from licensing.auth.matrix import Action, permits
from licensing.auth.models import User
from licensing.choices import select_choices
from licensing.db import MAX_ROW_ID, get_session
from licensing.errors import Conflict, DomainError, NotFound, ValidationFailed
from licensing.premises.models import LicensingAuthority, Premises
from licensing.premises.services import get_premises
from licensing.reports.services import authorities_for
from licensing.templating import place_errors

actionplans_bp = Blueprint("actionplans", __name__)


def _user() -> User:
    return cast(User, current_user)


@actionplans_bp.app_context_processor
def _labels() -> dict[str, Any]:
    # The premises page shows the plan section too.
    return {
        "PLAN_STATUSES": PLAN_STATUSES,
        "ITEM_STATUSES": ITEM_STATUSES,
        "ORGANISATIONS": ORGANISATIONS,
    }


def _version(form: Any) -> int:
    return int(form.version.data or 0)


def _row_id(value: Any) -> int | None:
    """An id from a query string or a hidden field, or None when it cannot name a row."""
    text = str(value or "")
    if text.isascii() and text.isdigit() and len(text) <= 10 and 0 < int(text) <= MAX_ROW_ID:
        return int(text)
    return None


def _premises_from_query(session: Any) -> Premises | None:
    """The premises named by ?premises_id=, None without one; NotFound for a bad one."""
    if "premises_id" not in request.args:
        return None
    premises_id = _row_id(request.args.get("premises_id"))
    if premises_id is None:
        raise NotFound("No such premises")
    return get_premises(session, _user(), premises_id)


# ---- plans ---------------------------------------------------------------------------


@actionplans_bp.route("/premises/<int:premises_id>/action-plans/new", methods=["GET", "POST"])
@permits(Action.MANAGE_ACTION_PLANS)
def agree(premises_id: int) -> ResponseReturnValue:
    """Agree an action plan with the licence holder/DPS of a premises."""
    session = get_session()
    premises = get_premises(session, _user(), premises_id)
    form = AgreePlanForm()
    if request.method == "GET":
        form.agreed_with.data = premises.dps or premises.licence_holder
    status = 200
    if form.validate_on_submit():
        items = [
            services.ItemInput(
                form[f"item_{n}_description"].data or "",
                form[f"item_{n}_owner"].data or "",
                form[f"item_{n}_due_on"].data,
            )
            for n in range(1, ITEM_ROWS + 1)
        ]
        # Blank rows are ignored; a half-filled one is kept so the service names its gap.
        items = [i for i in items if i.description.strip() or i.owner.strip() or i.due_on]
        try:
            plan = services.agree_plan(
                session,
                _user(),
                premises,
                agreed_on=form.agreed_on.data,
                review_on=form.review_on.data,
                agreed_with=form.agreed_with.data or "",
                items=items,
                reason=form.reason.data or "",
            )
        except ValidationFailed as error:
            place_errors(form, error, "item_1_description", item_aliases())
            status = 422
        except DomainError as error:
            if error.status in (403, 404):
                raise
            flash(error.message, "error")
            return redirect(url_for("premises.show", premises_id=premises.id))
        else:
            flash("Action plan agreed.", "success")
            return redirect(url_for("actionplans.show", plan_id=plan.id))
    elif request.method == "POST":
        status = 422
    return render_template(
        "actionplans/new.html", form=form, premises=premises, rows=range(1, ITEM_ROWS + 1)
    ), status


def _render_plan(
    plan: ActionPlan,
    *,
    update_form: Any = None,
    add_form: AddItemForm | None = None,
    review_form: ReviewDateForm | None = None,
    status: int = 200,
    problem: str | None = None,
) -> ResponseReturnValue:
    session = get_session()
    open_items = [item for item in plan.items if item.is_open]
    if update_form is None:
        update_form = update_items_form(open_items, formdata=None)
        update_form.version.data = str(plan.lock_version)
    if add_form is None:
        add_form = AddItemForm(formdata=None)
        add_form.version.data = str(plan.lock_version)
    if review_form is None:
        review_form = ReviewDateForm(formdata=None)
        review_form.version.data = str(plan.lock_version)
    context = services.premises_plan_context(session, _user(), plan.premises)
    return render_template(
        "actionplans/show.html",
        plan=plan,
        premises=plan.premises,
        update_form=update_form,
        add_form=add_form,
        review_form=review_form,
        error_form=next((f for f in (update_form, add_form, review_form) if f.errors), None),
        problem=problem,
        can_manage=context["can_manage"],
        overdue_ids={i.id for i in plan.items if services.overdue(i)},
        history=services.plans_of(session, plan.premises_id),
    ), status


@actionplans_bp.get("/action-plans/<int:plan_id>")
@permits(Action.VIEW_ACTION_PLANS)
def show(plan_id: int) -> ResponseReturnValue:
    """An action plan: its dates, status, items and their statuses; forms to update it."""
    return _render_plan(services.get_plan(get_session(), _user(), plan_id))


def _after_write(
    plan: ActionPlan, form: Any, keyword: str, call: Any, fallback: str, done: str
) -> ResponseReturnValue:
    """Run one service call for a plan form; the page again with errors or a conflict."""
    session = get_session()
    try:
        call()
    except ValidationFailed as error:
        session.rollback()
        place_errors(form, error, fallback)
        return _render_plan(plan, **{keyword: form}, status=422)
    except Conflict as error:
        session.rollback()
        session.refresh(plan)
        return _render_plan(plan, status=409, problem=error.message)
    except DomainError as error:
        session.rollback()
        if error.status in (403, 404):
            raise
        session.refresh(plan)
        return _render_plan(plan, status=error.status, problem=error.message)
    flash(done, "success")
    return redirect(url_for("actionplans.show", plan_id=plan.id))


@actionplans_bp.post("/action-plans/<int:plan_id>/items")
@permits(Action.MANAGE_ACTION_PLANS)
def update_items(plan_id: int) -> ResponseReturnValue:
    """Set items done, not done or withdrawn, with a reason."""
    session = get_session()
    plan = services.get_plan(session, _user(), plan_id)
    items = [item for item in plan.items if item.is_open]
    form = update_items_form(items)
    if any(k.startswith("item_") and k not in form for k in request.form):
        return _render_plan(plan, status=409, problem=services.STALE_MESSAGE)
    if not form.validate_on_submit():
        return _render_plan(plan, update_form=form, status=422)
    changes = {item.id: form[f"item_{item.id}"].data or "" for item in items}
    return _after_write(
        plan,
        form,
        "update_form",
        lambda: services.update_items(
            session, _user(), plan, _version(form), changes, form.reason.data or ""
        ),
        "reason",
        "Action plan updated.",
    )


@actionplans_bp.post("/action-plans/<int:plan_id>/items/new")
@permits(Action.MANAGE_ACTION_PLANS)
def add_item(plan_id: int) -> ResponseReturnValue:
    """Add an item agreed later to an open plan."""
    session = get_session()
    plan = services.get_plan(session, _user(), plan_id)
    form = AddItemForm()
    if not form.validate_on_submit():
        return _render_plan(plan, add_form=form, status=422)
    item = services.ItemInput(form.description.data or "", form.owner.data or "", form.due_on.data)
    return _after_write(
        plan,
        form,
        "add_form",
        lambda: services.add_item(
            session, _user(), plan, _version(form), item, form.reason.data or ""
        ),
        "description",
        "Item added.",
    )


@actionplans_bp.post("/action-plans/<int:plan_id>/review-date")
@permits(Action.MANAGE_ACTION_PLANS)
def move_review_date(plan_id: int) -> ResponseReturnValue:
    """Move an open plan's review date, with a reason."""
    session = get_session()
    plan = services.get_plan(session, _user(), plan_id)
    form = ReviewDateForm()
    if not form.validate_on_submit():
        return _render_plan(plan, review_form=form, status=422)
    return _after_write(
        plan,
        form,
        "review_form",
        lambda: services.move_review_date(
            session, _user(), plan, _version(form), form.review_on.data, form.reason.data or ""
        ),
        "review_on",
        "Review date moved.",
    )


# ---- meetings ------------------------------------------------------------------------


@actionplans_bp.get("/meetings")
@permits(Action.VIEW_MEETINGS)
def list_meetings() -> ResponseReturnValue:
    """Partnership meetings, newest first; of one premises with ?premises_id=."""
    session = get_session()
    premises = _premises_from_query(session)
    return render_template(
        "actionplans/meetings.html",
        meetings=meetings.list_meetings(session, _user(), premises.id if premises else None),
        premises=premises,
    )


@actionplans_bp.route("/meetings/new", methods=["GET", "POST"])
@permits(Action.MANAGE_MEETINGS)
def new_meeting() -> ResponseReturnValue:
    """Record a partnership meeting about a premises (?premises_id=) or an area."""
    session = get_session()
    premises = _premises_from_query(session)
    authorities = authorities_for(session, _user())
    form = MeetingForm()
    form.authority_id.choices = select_choices(
        [("", "Choose an authority")] + [(str(a.id), a.name) for a in authorities]
    )
    status = 200
    if form.validate_on_submit():
        authority = None
        authority_id = _row_id(form.authority_id.data)
        if premises is None and authority_id is not None:
            authority = session.get(LicensingAuthority, authority_id)
        attendees = [
            meetings.AttendeeInput(
                form[f"attendee_{n}_organisation"].data or "", form[f"attendee_{n}_name"].data or ""
            )
            for n in range(1, ATTENDEE_ROWS + 1)
        ]
        actions = [
            meetings.ActionInput(
                form[f"action_{n}_description"].data or "",
                form[f"action_{n}_owner"].data or "",
                form[f"action_{n}_due_on"].data,
            )
            for n in range(1, ACTION_ROWS + 1)
        ]
        try:
            meeting = meetings.create_meeting(
                session,
                _user(),
                premises=premises,
                authority=authority,
                held_on=form.held_on.data,
                title=form.title.data or "",
                minutes=form.minutes.data or "",
                decisions=form.decisions.data or "",
                attendees=attendees,
                actions=actions,
            )
        except ValidationFailed as error:
            place_errors(form, error, "title", meeting_aliases())
            status = 422
        else:
            flash("Meeting recorded.", "success")
            return redirect(url_for("actionplans.show_meeting", meeting_id=meeting.id))
    elif request.method == "POST":
        status = 422
    return render_template(
        "actionplans/meeting_new.html",
        form=form,
        premises=premises,
        attendee_rows=range(1, ATTENDEE_ROWS + 1),
        action_rows=range(1, ACTION_ROWS + 1),
    ), status


def _render_meeting(
    meeting_id: int, status: int = 200, problem: str | None = None
) -> ResponseReturnValue:
    session = get_session()
    meeting = meetings.get_meeting(session, _user(), meeting_id)
    context = meetings.meeting_context(session, _user(), meeting)
    return render_template(
        "actionplans/meeting.html", meeting=meeting, problem=problem, **context
    ), status


@actionplans_bp.get("/meetings/<int:meeting_id>")
@permits(Action.VIEW_MEETINGS)
def show_meeting(meeting_id: int) -> ResponseReturnValue:
    """A meeting: attendees by organisation, minutes, decisions and actions."""
    return _render_meeting(meeting_id)


@actionplans_bp.post("/meetings/<int:meeting_id>/actions/<int:action_id>/plan-item")
@permits(Action.MANAGE_MEETINGS)
def action_to_item(meeting_id: int, action_id: int) -> ResponseReturnValue:
    """Make a meeting's action an item of a premises' open action plan."""
    session = get_session()
    meeting = meetings.get_meeting(session, _user(), meeting_id)
    action = session.get(MeetingAction, action_id)
    if action is None or action.meeting_id != meeting.id:
        raise NotFound("No such action")
    form = ActionToItemForm()
    if not form.validate_on_submit():
        return _render_meeting(meeting_id, 409, services.STALE_MESSAGE)
    premises = None
    chosen = _row_id(form.premises_id.data)
    if meeting.premises is None and chosen is not None:
        premises = get_premises(session, _user(), chosen)
    try:
        item = meetings.action_to_plan_item(
            session, _user(), action, premises=premises, seen_lock_version=_version(form)
        )
    except (Conflict, ValidationFailed) as error:
        session.rollback()
        return _render_meeting(meeting_id, error.status, error.message)
    except DomainError as error:
        session.rollback()
        if error.status in (403, 404):
            raise
        return _render_meeting(meeting_id, error.status, error.message)
    flash("The action is now an item of the action plan.", "success")
    return redirect(url_for("actionplans.show", plan_id=item.plan_id))
