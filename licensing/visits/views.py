"""Visit pages (police only): schedule a visit, record its outcome, the visits list, the
calendar feed page, and the secret-bearing iCalendar feed itself.

Views stay thin: validate the form, call one service, flash, redirect.
"""

from __future__ import annotations

from math import ceil
from typing import Any, cast

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import current_user

from licensing.auth.matrix import Action, allowed, permits
from licensing.auth.models import User
from licensing.choices import select_choices
from licensing.db import get_session
from licensing.errors import Conflict, DomainError, ValidationFailed
from licensing.premises.services import get_premises
from licensing.templating import DEADLINE_LABELS, place_errors
from licensing.timeutil import to_london
from licensing.visits import ics, services
from licensing.visits.forms import (
    CancelVisitForm,
    FeedForm,
    RecordOutcomeForm,
    ScheduleVisitForm,
    record_outcome_form,
)
from licensing.visits.models import OBJECTIVES, STATUS_LABELS, VISIT_OUTCOMES, VISIT_TYPES, Visit

visits_bp = Blueprint("visits", __name__)
ITEMS_CHANGED = (
    "The action plan changed since you opened this visit. Nothing was saved: "
    "check the plan's items below and record the visit again."
)


def _user() -> User:
    return cast(User, current_user)


@visits_bp.app_context_processor
def _visit_labels() -> dict[str, Any]:
    # Every page may show a visit (the premises page includes the visits partial).
    return {
        "VISIT_TYPES": VISIT_TYPES,
        "VISIT_OUTCOMES": VISIT_OUTCOMES,
        "VISIT_STATUS_LABELS": STATUS_LABELS,
        "OBJECTIVES": OBJECTIVES,
    }


@visits_bp.route("/premises/<int:premises_id>/visits/new", methods=["GET", "POST"])
@permits(Action.SCHEDULE_VISIT)
def schedule(premises_id: int) -> ResponseReturnValue:
    """Book a visit to a premises (taking over its proposed visit, if any)."""
    session = get_session()
    premises = get_premises(session, _user(), premises_id)
    context = services.premises_visits_context(session, _user(), premises)
    proposed: Visit | None = context.get("proposed")
    form = ScheduleVisitForm()
    form.officer_id.choices = select_choices(
        [("", "Choose an officer")] + [(str(u.id), u.name) for u in services.officers(session)]
    )
    if request.method == "GET":
        form.officer_id.data = str(
            proposed.officer_id if proposed and proposed.officer_id else _user().id
        )
        if proposed is not None:
            form.visit_type.data = proposed.visit_type
            form.visit_date.data = max(proposed.visit_date, context["today"])
    status = 200
    if form.validate_on_submit():
        assert form.visit_date.data is not None
        try:
            visit = services.schedule_visit(
                session,
                _user(),
                premises,
                scheduled_at=services.london_instant(
                    form.visit_date.data, form.visit_time.data or ""
                ),
                visit_type=form.visit_type.data or "",
                officer_id=form.officer_id.data,
            )
        except ValidationFailed as error:
            session.rollback()
            place_errors(form, error, "visit_date")
            status = 422
        else:
            flash("Visit scheduled.", "success")
            return redirect(url_for("visits.show", visit_id=visit.id))
    elif request.method == "POST":
        status = 422
    return render_template(
        "visits/new.html", form=form, premises=premises, proposed=proposed
    ), status


def _render_visit(
    visit: Visit,
    record_form: RecordOutcomeForm | None = None,
    cancel_form: CancelVisitForm | None = None,
    status: int = 200,
    problem: str | None = None,
) -> ResponseReturnValue:
    if record_form is None:
        record_form = record_outcome_form(_plan_items(visit), formdata=None)
        record_form.version.data = str(visit.version)
        if visit.scheduled_at is not None:
            local = to_london(visit.scheduled_at)
            record_form.visited_date.data = local.date()
            record_form.visited_time.data = local.strftime("%H:%M")
    if cancel_form is None:
        cancel_form = CancelVisitForm(formdata=None)
        cancel_form.version.data = str(visit.version)
    failed = next((f for f in (record_form, cancel_form) if f.errors), None)
    return render_template(
        "visits/detail.html",
        visit=visit,
        premises=visit.premises,
        record_form=record_form,
        cancel_form=cancel_form,
        error_form=failed,
        problem=problem,
        overdue=services.is_overdue(visit),
    ), status


def _plan_items(visit: Visit) -> list[Any]:
    """The open action-plan items an officer recording this visit can mark."""
    if not visit.is_open or not allowed(_user(), Action.MANAGE_ACTION_PLANS):
        return []
    from licensing.actionplans.services import open_items_for_visit

    return open_items_for_visit(get_session(), visit)


@visits_bp.get("/visits/<int:visit_id>")
@permits(Action.VIEW_VISITS)
def show(visit_id: int) -> ResponseReturnValue:
    """A visit: what, where, when and who; its outcome, or the form to record it."""
    return _render_visit(services.get_visit(get_session(), _user(), visit_id))


@visits_bp.post("/visits/<int:visit_id>/outcome")
@permits(Action.RECORD_VISIT)
def record(visit_id: int) -> ResponseReturnValue:
    """Record the outcome and findings of a visit."""
    session = get_session()
    visit = services.get_visit(session, _user(), visit_id)
    items = _plan_items(visit)
    form = record_outcome_form(items)
    if any(k.startswith("plan_item_") and k not in form for k in request.form):
        # An item shown on the officer's page closed since: say so rather than drop it.
        return _render_visit(visit, status=409, problem=ITEMS_CHANGED)
    if not form.validate_on_submit():
        return _render_visit(visit, record_form=form, status=422)
    assert form.visited_date.data is not None
    result = services.Outcome(
        outcome=form.outcome.data or "",
        visited_at=services.london_instant(form.visited_date.data, form.visited_time.data or ""),
        findings={name: getattr(form, f"findings_{name}").data or "" for name in OBJECTIVES},
        follow_up_actions=form.follow_up_actions.data or "",
        plan_items={item.id: form[f"plan_item_{item.id}"].data or "" for item in items},
    )
    try:
        services.record_outcome(session, _user(), visit, int(form.version.data or 0), result)
    except ValidationFailed as error:
        session.rollback()
        place_errors(form, error, "outcome")
        return _render_visit(visit, record_form=form, status=422)
    except Conflict as error:
        session.rollback()
        session.refresh(visit)
        return _render_visit(visit, status=409, problem=error.message)
    except DomainError as error:
        session.rollback()
        if error.status in (403, 404):
            raise
        return _render_visit(visit, status=error.status, problem=error.message)
    flash("Visit recorded.", "success")
    return redirect(url_for("visits.show", visit_id=visit.id))


@visits_bp.post("/visits/<int:visit_id>/cancel")
@permits(Action.SCHEDULE_VISIT)
def cancel(visit_id: int) -> ResponseReturnValue:
    """Cancel a proposed or scheduled visit, with a reason."""
    session = get_session()
    visit = services.get_visit(session, _user(), visit_id)
    form = CancelVisitForm()
    if not form.validate_on_submit():
        return _render_visit(visit, cancel_form=form, status=422)
    try:
        services.cancel_visit(
            session, _user(), visit, int(form.version.data or 0), form.reason.data or ""
        )
    except ValidationFailed as error:
        session.rollback()
        place_errors(form, error, "reason")
        return _render_visit(visit, cancel_form=form, status=422)
    except Conflict as error:
        session.rollback()
        session.refresh(visit)
        return _render_visit(visit, status=409, problem=error.message)
    except DomainError as error:
        session.rollback()
        if error.status in (403, 404):
            raise
        return _render_visit(visit, status=error.status, problem=error.message)
    flash("Visit cancelled.", "success")
    return redirect(url_for("premises.show", premises_id=visit.premises_id))


@visits_bp.get("/visits")
@permits(Action.VIEW_VISITS)
def list_visits() -> ResponseReturnValue:
    """Visits, soonest first: filter to mine, overdue, this week; open, completed or all."""
    status = request.args.get("status")
    filters = services.VisitFilter(
        mine=request.args.get("mine") == "1",
        overdue=request.args.get("overdue") == "1",
        this_week=request.args.get("week") == "1",
        status=status if status in ("open", "completed", "all") else "open",
    )
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    per_page = int(current_app.config["PAGE_SIZE"])
    items, total = services.list_visits(get_session(), _user(), filters, page, per_page)
    return render_template(
        "visits/list.html",
        items=items,
        total=total,
        page=page,
        pages=max(ceil(total / per_page), 1),
        filters=filters,
        overdue_ids={v.id for v in items if services.is_overdue(v)},
    )


def _feed_url(token: str) -> str:
    return f"{str(current_app.config['BASE_URL']).rstrip('/')}/calendar/{token}.ics"


@visits_bp.route("/calendar-feed", methods=["GET", "POST"])
@permits(Action.MANAGE_CALENDAR_FEED)
def calendar_feed() -> ResponseReturnValue:
    """See whether you have a calendar address; make a new one (shown once)."""
    session = get_session()
    form = FeedForm()
    new_url = None
    if form.validate_on_submit():
        token = services.create_feed(session, _user())
        # Rendered, not redirected: the address exists only in this response (the token
        # is stored hashed), and a flash would put it in the session cookie.
        new_url = _feed_url(token)
    elif request.method == "POST":
        flash("The form was out of date: try again.", "error")
        return redirect(url_for("visits.calendar_feed"))
    response = Response(
        render_template(
            "visits/calendar_feed.html",
            feed_form=form,
            revoke_form=FeedForm(formdata=None),
            feed=services.active_feed(session, _user()),
            new_url=new_url,
        )
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@visits_bp.post("/calendar-feed/revoke")
@permits(Action.MANAGE_CALENDAR_FEED)
def revoke_calendar_feed() -> ResponseReturnValue:
    """Stop the calendar address working."""
    form = FeedForm()
    if form.validate_on_submit():
        revoked = services.revoke_feed(get_session(), _user())
        flash(
            "Calendar address revoked: it no longer works."
            if revoked
            else "You had no calendar address.",
            "success",
        )
    else:
        flash("The form was out of date: try again.", "error")
    return redirect(url_for("visits.calendar_feed"))


@visits_bp.get("/calendar/<token>.ics")
def feed(token: str) -> ResponseReturnValue:
    """The secret-bearing iCalendar feed: the token's owner's visits and deadlines. A
    wrong or revoked token is 404, the same as a page that does not exist."""
    session = get_session()
    user = services.user_for_feed_token(session, token)
    if user is None:
        abort(404)
    body = ics.build_calendar(
        services.feed_visits(session, user),
        services.feed_deadlines(session, user),
        str(current_app.config["BASE_URL"]),
        DEADLINE_LABELS,
    )
    return Response(
        body,
        mimetype="text/calendar",
        headers={
            "Cache-Control": "private, no-store",
            "Content-Disposition": 'inline; filename="licensing.ics"',
        },
    )
