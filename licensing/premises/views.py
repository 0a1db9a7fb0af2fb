"""Register pages: list and find, add, view with history, edit, workflow events, import.

Views stay thin: validate the form, call one service, flash, redirect.
"""

from __future__ import annotations

from datetime import datetime
from math import ceil
from typing import Any, cast

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import current_user
from sqlalchemy import select

from licensing.actionplans import services as plan_services
from licensing.assessment.views import premises_section
from licensing.auth.matrix import Action, allowed, event_action, permits
from licensing.auth.models import POLICE_ROLES, User
from licensing.choices import SelectChoice, select_choices
from licensing.csvfiles import csv_download
from licensing.db import MAX_ROW_ID, get_session, utcnow
from licensing.deadlines.services import decision_takes_effect, premises_deadlines
from licensing.errors import Conflict, DomainError, Forbidden, NotFound, ValidationFailed
from licensing.evidence.services import list_bundles
from licensing.incidents import recommendations
from licensing.incidents import services as incident_services
from licensing.incidents.charts import weekly_chart
from licensing.letters.services import letters_on_premises_page
from licensing.premises import exports, services, workflow
from licensing.premises.forms import (
    EVENT_FORMS,
    BulkVisitsForm,
    PremisesCreateForm,
    PremisesEditForm,
    RegisterImportForm,
    TransitionForm,
)
from licensing.premises.models import LicensingAuthority, Premises, RegisterImportRun
from licensing.premises.register_import import import_register, rejections_csv
from licensing.premises.sections import sections_with_rows
from licensing.templating import place_errors
from licensing.timeutil import LONDON
from licensing.visits import services as visit_services

premises_bp = Blueprint("premises", __name__)
# Confirmed incidents shown a page at a time on the premises page.
INCIDENT_PAGE = 50
# The premises page shows only the latest history entries: a premises with thousands of
# events would otherwise load and render them all. The timeline page has the rest.
HISTORY_SHOWN = 20


def _user() -> User:
    return cast(User, current_user)


def _authority_choices() -> list[tuple[str, str]]:
    authorities = get_session().execute(_AUTHORITY_CHOICES)
    return [("", "Choose an authority")] + [(code, name) for code, name in authorities]


# Built once, of table columns (Core rows; see licensing.db): every list page offers them.
_AUTHORITY = LicensingAuthority.__table__.c
_AUTHORITY_CHOICES = select(_AUTHORITY.code, _AUTHORITY.name).order_by(_AUTHORITY.name)


def _officer_choices() -> list[SelectChoice]:
    officers = get_session().scalars(
        select(User)
        .where(User.role.in_([r.value for r in POLICE_ROLES]), User.active)
        .order_by(User.name)
    )
    return select_choices([("", "Nobody yet"), *((str(u.id), u.name) for u in officers)])


@premises_bp.get("/premises")
@permits(Action.VIEW_REGISTER)
def list_premises() -> ResponseReturnValue:
    """The register, filtered by state and authority, searched, paginated."""
    filters = _list_filters(request.args)
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    per_page = int(current_app.config["PAGE_SIZE"])
    after = _after_id()
    items, total = services.list_premises(
        get_session(), _user(), filters, page, per_page, after_id=after if page > 1 else None
    )
    return render_template(
        "premises/list.html",
        items=items,
        total=total,
        page=page,
        pages=max(ceil(total / per_page), 1),
        filters=filters,
        authorities=_authority_choices()[1:],
        can_bulk=allowed(_user(), Action.WORK_IN_BULK),
    )


def _list_filters(values: Any) -> services.PremisesFilter:
    """The list's filters from a query string or posted form (the list, its CSV export and
    the bulk form read them the same way)."""
    state = values.get("state")
    return services.PremisesFilter(
        state=state if state in workflow.STATES else None,
        authority=values.get("authority") or None,
        q=(values.get("q") or "").strip()[:200] or None,
    )


def _back_to_list() -> ResponseReturnValue:
    """Back to the list page the bulk form was posted from, with its filters and page."""
    filters = _list_filters(request.form)
    page = request.form.get("page", 1, type=int) or 1
    return redirect(
        url_for(
            "premises.list_premises",
            q=filters.q,
            state=filters.state,
            authority=filters.authority,
            page=page if page > 1 else None,
        )
    )


@premises_bp.get("/premises/export.csv")
@permits(Action.EXPORT_REGISTER)
def export_premises() -> ResponseReturnValue:
    """The premises list as CSV: every page of it, with the list's filters, and only the
    premises the user may see (a council user's own in review or action)."""
    text = exports.premises_csv(get_session(), _user(), _list_filters(request.args))
    return csv_download(text, exports.export_file_name("premises"))


@premises_bp.post("/premises/bulk")
@permits(Action.WORK_IN_BULK)
def bulk() -> ResponseReturnValue:
    """The list's bulk form: export the selected premises as CSV, or go on to book a visit
    at each of them. Selected ids the user may not see are dropped, never shown."""
    session = get_session()
    try:
        ids = exports.parse_selection(request.form.getlist("premises_id"))
    except ValidationFailed as error:
        flash(error.message, "error")
        return _back_to_list()
    if request.form.get("action") == "export":
        text = exports.selection_csv(session, _user(), ids)
        return csv_download(text, exports.export_file_name("premises-selection"))
    selection = exports.selected_premises(session, _user(), ids)
    if not selection:
        flash("None of the selected premises could be found", "error")
        return _back_to_list()
    form = BulkVisitsForm(formdata=None)
    form.officer_id.choices = _visit_officer_choices()
    form.officer_id.data = str(_user().id)
    return render_template("premises/bulk_visits.html", form=form, selection=selection)


def _visit_officer_choices() -> list[SelectChoice]:
    officers = visit_services.officers(get_session())
    return select_choices([("", "Choose an officer"), *((str(u.id), u.name) for u in officers)])


@premises_bp.post("/premises/bulk/visits")
@permits(Action.SCHEDULE_VISIT)
def bulk_visits() -> ResponseReturnValue:
    """Book the same visit at every selected premises and report, premises by premises,
    which were booked and why any were not (the ones booked stay booked)."""
    session = get_session()
    try:
        ids = exports.parse_selection(request.form.getlist("premises_id"))
    except ValidationFailed as error:
        flash(error.message, "error")
        return redirect(url_for("premises.list_premises"))
    selection = exports.selected_premises(session, _user(), ids)
    if not selection:
        flash("None of the selected premises could be found", "error")
        return redirect(url_for("premises.list_premises"))
    form = BulkVisitsForm()
    form.officer_id.choices = _visit_officer_choices()
    if not form.validate_on_submit():
        return render_template("premises/bulk_visits.html", form=form, selection=selection), 422
    assert form.visit_date.data is not None
    try:
        result = exports.schedule_visits(
            session,
            _user(),
            selection,
            scheduled_at=visit_services.london_instant(
                form.visit_date.data, form.visit_time.data or ""
            ),
            visit_type=form.visit_type.data or "",
            officer_id=form.officer_id.data,
        )
    except ValidationFailed as error:
        place_errors(form, error, "visit_date")
        if not form.errors:
            form.visit_date.errors = [error.message]
        return render_template("premises/bulk_visits.html", form=form, selection=selection), 422
    # The report is shown here rather than flashed: a long list of premises and reasons
    # would not fit in the session cookie. Posting again books nothing twice.
    return render_template(
        "premises/bulk_visits.html",
        form=form,
        selection=selection,
        result=result,
        ignored=len(ids) - len(selection),
    ), (200 if result.scheduled else 422)


@premises_bp.get("/premises/<int:premises_id>/timeline")
@permits(Action.VIEW_PREMISES)
def timeline(premises_id: int) -> ResponseReturnValue:
    """The premises' history, oldest first, laid out to print: audit events, confirmed
    incidents and (for the police) visits, in London time."""
    session = get_session()
    premises = services.get_premises(session, _user(), premises_id)
    entries = exports.premises_timeline(session, _user(), premises)
    return render_template(
        "premises/timeline.html",
        premises=premises,
        entries=entries,
        incidents_by_id=exports.incidents_named_in(session, entries),
        officer_names=_officer_names([e.history for e in entries if e.history is not None]),
        printed_at=utcnow(),
    )


def _transition_forms(
    premises: Premises, failed: dict[str, TransitionForm] | None = None
) -> dict[str, TransitionForm]:
    forms: dict[str, TransitionForm] = {}
    for rule in workflow.events_offered(get_session(), premises, _user()):
        if failed and rule.name in failed:
            forms[rule.name] = failed[rule.name]
            continue
        form = EVENT_FORMS[rule.name](prefix=rule.name, formdata=None)
        form.version.data = str(premises.version)
        forms[rule.name] = form
    return forms


def _render_detail(
    premises: Premises,
    failed: dict[str, TransitionForm] | None = None,
    status: int = 200,
    problem: str | None = None,
    retry: tuple[str, str] | None = None,
) -> ResponseReturnValue:
    """The premises page. `retry` is (event, reason): after a conflict, that event's form
    is shown open with the current version and the reason the user had typed."""
    session = get_session()
    entries = services.history(session, premises, limit=HISTORY_SHOWN)
    forms = _transition_forms(premises, failed)
    reopen = None
    if retry and retry[0] in forms:
        reopen = retry[0]
        forms[reopen].reason.data = retry[1]
    # Sections with nothing in them (most premises' reviews, letters, plans...) are not read.
    present = sections_with_rows(session, premises.id)
    review, determined = (
        services.open_and_determined_review(session, premises.id)
        if present.reviews
        else (None, None)
    )
    # The incident history a page at a time (newest first; a premises may have
    # thousands): `incidents_after` is the last incident of the page before.
    lines, older = incident_services.incident_history_page(
        session, premises.id, after_incident_id=_incidents_after(), limit=INCIDENT_PAGE
    )
    linked_total, suggested = incident_services.count_links_by_status(session, premises.id)
    weeks, series = incident_services.weekly_counts(session, premises.id)
    incident_ids = {
        entry.payload["incident_id"]
        for entry in entries
        if isinstance(entry.payload.get("incident_id"), int)
    }
    return (
        render_template(
            "premises/detail.html",
            premises=premises,
            incident_lines=lines,
            older_incidents=older,
            incidents_after=_incidents_after(),
            linked_total=linked_total,
            chart=weekly_chart(weeks, series),
            assessment=premises_section(session, _user(), premises, any_plan=present.action_plans),
            suggested=suggested if allowed(_user(), Action.REVIEW_LINK_SUGGESTIONS) else 0,
            recommendations=(
                recommendations.open_recommendations(session, premises.id)
                if present.recommendations
                else []
            ),
            deadlines=premises_deadlines(session, premises.id) if present.deadlines else [],
            visits_context=visit_services.premises_visits_context(session, _user(), premises),
            action_plan=plan_services.premises_plan_context(
                session, _user(), premises, any_plan=present.action_plans
            ),
            letters_context=letters_on_premises_page(
                session, _user(), premises, any_letter=present.letters
            ),
            premises_bundles=(
                list_bundles(session, _user(), premises.id) if present.bundles else []
            ),
            incidents_by_id=incident_services.incidents_by_id(session, incident_ids),
            forms=forms,
            reopen=reopen,
            rules=workflow.EVENT_RULES,
            history=entries,
            history_total=services.count_history(session, premises),
            officer_names=_officer_names(entries),
            review=review,
            determined=determined,
            takes_effect=decision_takes_effect(determined) if determined else None,
            problem=problem,
            can_edit=allowed(_user(), Action.EDIT_PREMISES),
        ),
        status,
    )


def _after_id() -> int | None:
    """The list's keyset cursor (`after`, the last premises of the page before); anything
    not an id reads the page by its number instead."""
    value = request.args.get("after", type=int)
    return value if value is not None and 0 < value <= MAX_ROW_ID else None


def _incidents_after() -> int | None:
    """The incident-history cursor from the query string; anything not an id is the
    first page."""
    value = request.args.get("incidents_after", type=int)
    return value if value is not None and 0 < value <= MAX_ROW_ID else None


def _officer_names(entries: list[services.HistoryEntry]) -> dict[int, str]:
    """Names of the case officers that history entries refer to by id."""
    ids: set[int] = set()
    for entry in entries:
        payload = entry.payload
        changes = payload.get("changes") or payload.get("fields") or {}
        change = changes.get("case_officer_id") or {}
        ids.update(v for v in (change.get("old"), change.get("new")) if isinstance(v, int))
    if not ids:
        return {}
    rows = get_session().execute(select(User.id, User.name).where(User.id.in_(ids)))
    return {user_id: name for user_id, name in rows}


@premises_bp.get("/premises/<int:premises_id>")
@permits(Action.VIEW_PREMISES)
def show(premises_id: int) -> ResponseReturnValue:
    """A premises: details, state, the events the user may take now, and its history."""
    premises = services.get_premises(get_session(), _user(), premises_id)
    return _render_detail(premises)


def _event_params(event: str, form: TransitionForm) -> dict[str, Any]:
    data = {
        k: v for k, v in form.data.items() if k not in ("version", "reason", "submit", "csrf_token")
    }
    # Date and time boxes make one instant, read as UK wall-clock time.
    for prefix, target in (("received", "received_at"), ("decided", "decided_at")):
        if f"{prefix}_date" in data:
            day = data.pop(f"{prefix}_date")
            clock = data.pop(f"{prefix}_time", None)
            if day is None or not clock:
                continue  # optional (a correction of the other date); the service decides
            hour, minute = (int(x) for x in str(clock).split(":"))
            data[target] = datetime(day.year, day.month, day.day, hour, minute, tzinfo=LONDON)
    return data


@premises_bp.post("/premises/<int:premises_id>/events/<event>")
@permits(Action.TRANSITION_WORKFLOW)
def take_event(premises_id: int, event: str) -> ResponseReturnValue:
    """Take one workflow event on a premises from its form on the premises page."""
    session = get_session()
    premises = services.get_premises(session, _user(), premises_id)
    if event not in EVENT_FORMS:
        raise NotFound("No such event")
    rule = workflow.EVENT_RULES[event]
    if not allowed(_user(), event_action(event)):
        # Before the form is validated: a role that may not take the event (a
        # supervisor's event) is told so, not shown errors on a form it was never offered.
        raise Forbidden(f"Your role ({_user().role}) may not {rule.label.lower()}")
    form = EVENT_FORMS[event](prefix=event)
    if not form.validate_on_submit():
        return _render_detail(premises, {event: form}, 422)
    try:
        version = int(form.version.data or 0)
        services.apply_event(
            session, premises, _user(), event, version, form.reason.data, _event_params(event, form)
        )
    except Conflict:
        session.rollback()
        premises = services.get_premises(session, _user(), premises_id)
        session.refresh(premises)
        return _render_detail(
            premises,
            status=409,
            problem=_conflict_message(rule.label),
            retry=(event, form.reason.data or ""),
        )
    except ValidationFailed as error:
        session.rollback()
        place_errors(form, error, "reason", {"received_at": "received_date"})
        return _render_detail(premises, {event: form}, 422)
    except DomainError as error:
        session.rollback()
        if error.status in (403, 404):
            raise
        if event not in workflow.events_from(premises.state):
            # Not possible from this state: there is no form on the page to show it on.
            return _render_detail(premises, status=error.status, problem=error.message)
        form.reason.errors = [error.message]
        return _render_detail(premises, {event: form}, error.status)
    flash(
        f"{rule.label}: done. The premises is now {workflow.STATE_LABELS[premises.state].lower()}.",
        "success",
    )
    return redirect(url_for("premises.show", premises_id=premises.id))


def _conflict_message(what: str) -> str:
    return (
        f"{what} was not done: someone else changed this premises since you opened it. "
        "This page now shows the current details and history. "
        "Check them, then try again if it is still needed."
    )


@premises_bp.route("/premises/<int:premises_id>/edit", methods=["GET", "POST"])
@permits(Action.EDIT_PREMISES)
def edit(premises_id: int) -> ResponseReturnValue:
    """Edit a premises' details; a stale version is a conflict, never an overwrite."""
    session = get_session()
    premises = services.get_premises(session, _user(), premises_id)
    form = PremisesEditForm(obj=premises if request.method == "GET" else None)
    form.case_officer_id.choices = _officer_choices()
    if request.method == "GET":
        form.version.data = str(premises.version)
        form.case_officer_id.data = str(premises.case_officer_id or "")
        form.uprn.data = premises.uprn or ""
        form.latitude.data = "" if premises.latitude is None else str(premises.latitude)
        form.longitude.data = "" if premises.longitude is None else str(premises.longitude)
    status = 200
    problem = None
    if form.validate_on_submit():
        changes = {name: getattr(form, name).data for name in services.EDITABLE_FIELDS}
        try:
            changed = services.update_details(
                session, premises, _user(), int(form.version.data or 0), changes, form.reason.data
            )
        except Conflict:
            session.rollback()
            problem, status = (
                (
                    "Your changes were not saved: someone else changed this premises since you "
                    "opened it. Reload the current details to see their change, then make yours "
                    "again."
                ),
                409,
            )
        except ValidationFailed as error:
            session.rollback()
            place_errors(form, error, "reason")
            status = 422
        else:
            flash("Changes saved." if changed else "Nothing changed.", "success")
            return redirect(url_for("premises.show", premises_id=premises.id))
    elif request.method == "POST":
        status = 422
    return render_template(
        "premises/edit.html", form=form, premises=premises, problem=problem
    ), status


@premises_bp.route("/premises/new", methods=["GET", "POST"])
@permits(Action.ADD_PREMISES)
def create() -> ResponseReturnValue:
    """Add a premises to the register by hand."""
    session = get_session()
    form = PremisesCreateForm()
    form.authority.choices = select_choices(_authority_choices())
    form.case_officer_id.choices = _officer_choices()
    if request.method == "GET":
        form.case_officer_id.data = str(_user().id)
    status = 200
    if form.validate_on_submit():
        details = {name: getattr(form, name).data for name in services.EDITABLE_FIELDS}
        try:
            authority = services.authority_by_code(session, form.authority.data or "")
            premises = services.add_premises(
                session, _user(), authority, form.licence_number.data or "", details
            )
        except ValidationFailed as error:
            session.rollback()
            place_errors(form, error, "name")
            status = 422
        except DomainError as error:
            session.rollback()
            form.licence_number.errors = [error.message]
            status = 422
        else:
            flash("Premises added.", "success")
            return redirect(url_for("premises.show", premises_id=premises.id))
    elif request.method == "POST":
        status = 422
    return render_template("premises/new.html", form=form), status


@premises_bp.route("/premises/import", methods=["GET", "POST"])
@permits(Action.IMPORT_REGISTER)
def import_page() -> ResponseReturnValue:
    """Upload a council register (LGA PremisesLicences CSV) and see what happened."""
    session = get_session()
    form = RegisterImportForm()
    form.authority.choices = select_choices(_authority_choices())
    status = 200
    if form.validate_on_submit():
        upload = form.register_file.data
        try:
            authority = services.authority_by_code(session, form.authority.data or "")
            result = import_register(
                session, upload.read(), upload.filename or "register.csv", authority, _user()
            )
        except ValidationFailed as error:
            session.rollback()
            form.register_file.errors = [error.message]
            status = 422
        except NotFound as error:
            form.authority.errors = [error.message]
            status = 422
        else:
            flash(f"Register imported: {result.summary()}.", "success")
            return redirect(url_for("premises.import_run", run_id=result.run_id))
    elif request.method == "POST":
        status = 422
    runs = session.scalars(
        select(RegisterImportRun).order_by(RegisterImportRun.id.desc()).limit(10)
    ).all()
    return render_template("premises/import.html", form=form, runs=runs), status


def _run_or_404(run_id: int) -> RegisterImportRun:
    run = get_session().get(RegisterImportRun, run_id)
    if run is None:
        raise NotFound("No such import")
    return run


@premises_bp.get("/premises/import/<int:run_id>")
@permits(Action.IMPORT_REGISTER)
def import_run(run_id: int) -> ResponseReturnValue:
    """The counts of one register import and its rejected rows."""
    return render_template("premises/import_run.html", run=_run_or_404(run_id))


@premises_bp.get("/premises/import/<int:run_id>/rejected.csv")
@permits(Action.IMPORT_REGISTER)
def import_rejections(run_id: int) -> ResponseReturnValue:
    """Download the rejected rows of an import as CSV, each with its line and reason."""
    run = _run_or_404(run_id)
    return csv_download(rejections_csv(run), f"register-import-{run.id}-rejected.csv")
