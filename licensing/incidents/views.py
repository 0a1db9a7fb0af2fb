"""Incident pages: list, view, record, council ASB report, import, suggestions queue,
recommendations."""

from __future__ import annotations

from math import ceil
from typing import cast

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
from sqlalchemy.orm import Session
from wtforms import Field

from licensing.auth.matrix import Action, allowed, permits
from licensing.auth.models import User
from licensing.auth.permissions import can_see_premises
from licensing.choices import SelectChoice, select_choices
from licensing.csvfiles import csv_download
from licensing.db import MAX_ROW_ID, get_session
from licensing.errors import DomainError, NotFound, ValidationFailed
from licensing.incidents import recommendations, services
from licensing.incidents.forms import (
    AsbReportForm,
    DismissForm,
    IncidentForm,
    IncidentImportForm,
    LinkDecisionForm,
)
from licensing.incidents.importer import import_incidents, rejections_csv
from licensing.incidents.models import (
    CATEGORIES,
    SOURCES,
    IncidentImportRun,
    PremisesIncidentLink,
    Recommendation,
)
from licensing.premises import exports
from licensing.premises.models import LicensingAuthority, Premises

incidents_bp = Blueprint("incidents", __name__)


def _user() -> User:
    return cast(User, current_user)


@incidents_bp.get("/incidents")
@permits(Action.VIEW_INCIDENTS)
def list_incidents() -> ResponseReturnValue:
    """Incidents, newest first, filtered by category, source and link status."""
    session = get_session()
    # One reading of the filters for the page and its CSV export.
    filters = exports.IncidentFilter.from_args(request.args)
    per_page = int(current_app.config["PAGE_SIZE"])
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    # The "next" link carries the last incident shown (`after`): deep pages are read by
    # keyset rather than by skipping every row before them.
    after = request.args.get("after", type=int)
    if page == 1 or (after is not None and not 0 < after <= MAX_ROW_ID):
        after = None
    total = exports.count_incidents(session, filters)
    items = exports.incidents_page(session, filters, after, per_page, page)
    return render_template(
        "incidents/list.html",
        items=items,
        total=total,
        page=page,
        pages=max(ceil(total / per_page), 1),
        filters={"category": filters.category, "source": filters.source, "linked": filters.linked},
        categories=CATEGORIES,
        sources=SOURCES,
    )


@incidents_bp.get("/incidents/export.csv")
@permits(Action.EXPORT_INCIDENTS)
def export_incidents() -> ResponseReturnValue:
    """The incident list as CSV: every page of it, with the list's filters (the people in
    an incident are never exported). Police and admin only, as the list is."""
    filters = exports.IncidentFilter.from_args(request.args)
    text = exports.incidents_csv(get_session(), filters)
    return csv_download(text, exports.export_file_name("incidents"))


@incidents_bp.get("/incidents/<int:incident_id>")
@permits(Action.VIEW_INCIDENT)
def show(incident_id: int) -> ResponseReturnValue:
    """One incident, its links, and (police only) the people held apart."""
    session = get_session()
    incident = services.incident_visible_to(session, _user(), incident_id)
    links = services.links_of_incident(session, _user(), incident)
    user = _user()
    return render_template(
        "incidents/detail.html",
        incident=incident,
        links=links,
        visible={premises.id for _link, premises in links if can_see_premises(user, premises)},
        show_people=allowed(user, Action.VIEW_PEOPLE),
    )


def _authority_choices() -> list[SelectChoice]:
    authorities = get_session().scalars(
        select(LicensingAuthority).order_by(LicensingAuthority.name)
    )
    return select_choices([("", "Choose"), *((a.code, a.name) for a in authorities)])


@incidents_bp.route("/incidents/new", methods=["GET", "POST"])
@permits(Action.RECORD_INCIDENT)
def create() -> ResponseReturnValue:
    """An officer records an incident."""
    session = get_session()
    form = IncidentForm()
    form.authority.choices = _authority_choices()
    status = 200
    valid = form.validate_on_submit()
    if request.method == "POST":
        # Also on an otherwise invalid form, so every problem is shown at once.
        valid = _premises_and_person_ok(session, form) and valid
    if valid:
        data = {
            "source": "manual",
            "source_ref": form.source_ref.data or None,
            "category": form.category.data,
            "occurred_at": form.occurred_at.data,
            "description": form.description.data,
            "location": form.location.data,
            "latitude": form.latitude.data,
            "longitude": form.longitude.data,
            "licence_number": form.licence_number.data,
            "authority": form.authority.data,
        }
        if form.person_role.data:
            data["personal_data"] = {
                "people": [
                    {
                        "role": form.person_role.data,
                        "name": form.person_name.data,
                        "phone": form.person_phone.data,
                        "email": form.person_email.data,
                    }
                ]
            }
        try:
            recorded = services.record_incident(session, _user(), data)
        except ValidationFailed as error:
            session.rollback()
            for name, message in error.errors.items():
                field = getattr(form, name, None) or form.description
                field.errors = [message]
            status = 422
        else:
            recommendations.evaluate(session, _linked_premises(session, recorded.incident.id))
            flash(
                "Incident recorded."
                if recorded.created
                else "That reference was already recorded.",
                "success",
            )
            return redirect(url_for("incidents.show", incident_id=recorded.incident.id))
    elif request.method == "POST":
        status = 422
    return render_template("incidents/new.html", form=form), status


def _premises_and_person_ok(session: Session, form: IncidentForm) -> bool:
    """Checks the form cannot make alone: a licence number must name a premises (else
    the officer would believe it linked when it was not), and a person's details need a
    role (else they would be dropped)."""
    ok = True
    licence_number = (form.licence_number.data or "").strip()
    if licence_number:
        if not form.authority.data:
            _add_error(form.authority, "Choose the licensing authority of that premises")
            ok = False
        elif form.licence_number.errors or form.authority.errors:
            ok = False  # the form has refused one (a NUL, say): nothing to look up
        elif (
            services.premises_for_hints(
                session, {"licence_number": licence_number, "authority": form.authority.data}
            )
            is None
        ):
            _add_error(
                form.licence_number,
                "There is no premises with that licence number in that licensing authority",
            )
            ok = False
    details = [form.person_name.data, form.person_phone.data, form.person_email.data]
    if any((d or "").strip() for d in details) and not form.person_role.data:
        _add_error(form.person_role, "Choose the person's role, or clear their details")
        ok = False
    elif form.person_role.data and not any((d or "").strip() for d in details):
        _add_error(form.person_name, "Enter their name, phone number or email address")
        ok = False
    return ok


def _add_error(field: Field, message: str) -> None:
    field.errors = [*field.errors, message]


def _linked_premises(session: Session, incident_id: int) -> list[int]:
    return list(
        session.scalars(
            select(PremisesIncidentLink.premises_id).where(
                PremisesIncidentLink.incident_id == incident_id,
                PremisesIncidentLink.status == "confirmed",
            )
        )
    )


@incidents_bp.route("/asb-reports/new", methods=["GET", "POST"])
@permits(Action.LOG_ASB_REPORT)
def council_asb_report() -> ResponseReturnValue:
    """A council licensing officer logs an ASB report against one of their premises."""
    session = get_session()
    form = AsbReportForm()
    user = _user()
    status = 200
    if form.validate_on_submit():
        premises = services.premises_for_council_report(
            session, user, form.licence_number.data or ""
        )
        if premises is None:
            form.licence_number.errors = ["Your authority has no premises with that licence number"]
            status = 422
        else:
            data = {
                "source": "council-asb",
                "category": form.category.data,
                "occurred_at": form.occurred_at.data,
                "description": form.description.data,
            }
            if form.reporter_name.data or form.reporter_phone.data:
                data["personal_data"] = {
                    "people": [
                        {
                            "role": "reporter",
                            "name": form.reporter_name.data,
                            "phone": form.reporter_phone.data,
                        }
                    ]
                }
            try:
                services.record_incident(session, user, data, premises=premises)
            except ValidationFailed as error:
                session.rollback()
                for name, message in error.errors.items():
                    (getattr(form, name, None) or form.description).errors = [message]
                status = 422
            else:
                recommendations.evaluate(session, [premises.id])
                flash(f"ASB report logged against {premises.name}.", "success")
                return redirect(url_for("incidents.council_asb_report"))
    elif request.method == "POST":
        status = 422
    return render_template("incidents/asb_report.html", form=form), status


@incidents_bp.route("/incidents/import", methods=["GET", "POST"])
@permits(Action.IMPORT_INCIDENTS)
def import_page() -> ResponseReturnValue:
    """Upload a data.police.uk or generic CSV of incidents."""
    session = get_session()
    form = IncidentImportForm()
    status = 200
    if form.validate_on_submit():
        upload = form.incident_file.data
        try:
            result = import_incidents(
                session,
                upload.read(),
                upload.filename or "incidents.csv",
                form.format.data or "police-uk",
                _user(),
            )
        except ValidationFailed as error:
            session.rollback()
            form.incident_file.errors = [error.message]
            status = 422
        else:
            recommendations.evaluate(session)
            flash(f"Incidents imported: {result.summary()}.", "success")
            return redirect(url_for("incidents.import_run", run_id=result.run_id))
    elif request.method == "POST":
        status = 422
    runs = session.scalars(
        select(IncidentImportRun).order_by(IncidentImportRun.id.desc()).limit(10)
    ).all()
    return render_template("incidents/import.html", form=form, runs=runs), status


def _run_or_404(run_id: int) -> IncidentImportRun:
    run = get_session().get(IncidentImportRun, run_id)
    if run is None:
        raise NotFound("No such import")
    return run


@incidents_bp.get("/incidents/import/<int:run_id>")
@permits(Action.IMPORT_INCIDENTS)
def import_run(run_id: int) -> ResponseReturnValue:
    """One import run: its counts and rejected rows."""
    return render_template("incidents/import_run.html", run=_run_or_404(run_id))


@incidents_bp.get("/incidents/import/<int:run_id>/rejected.csv")
@permits(Action.IMPORT_INCIDENTS)
def import_rejections(run_id: int) -> ResponseReturnValue:
    """Download the run's rejected rows as CSV."""
    run = _run_or_404(run_id)
    return csv_download(rejections_csv(run), f"incident-import-{run.id}-rejected.csv")


@incidents_bp.route("/incidents/suggestions", methods=["GET", "POST"])
@permits(Action.REVIEW_LINK_SUGGESTIONS)
def suggestions() -> ResponseReturnValue:
    """Suggested links grouped by premises; confirm or reject each or in bulk."""
    session = get_session()
    form = LinkDecisionForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            flash("Choose confirm or reject.", "error")
            return redirect(url_for("incidents.suggestions"))
        ids = services.parse_ids(request.form.getlist("link"))
        try:
            changed = services.decide_links(
                session, _user(), ids, form.decision.data or "", request.form.get("reason")
            )
        except DomainError as error:
            session.rollback()
            flash(error.message, "error")
            return redirect(url_for("incidents.suggestions"))
        touched = list(
            session.scalars(
                select(PremisesIncidentLink.premises_id).where(PremisesIncidentLink.id.in_(ids))
            ).unique()
        )
        recommendations.evaluate(session, touched)
        flash(
            f"{changed} suggestion{'s' if changed != 1 else ''} {'confirmed' if form.decision.data == 'confirmed' else 'rejected'}.",
            "success",
        )
        return redirect(_local_path(request.form.get("next")) or url_for("incidents.suggestions"))
    return render_template(
        "incidents/suggestions.html", groups=services.suggestion_groups(session, _user()), form=form
    )


def _local_path(value: str | None) -> str | None:
    """`value` if it is a path on this site, else None (never an open redirect)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return None
    return value


@incidents_bp.get("/recommendations")
@permits(Action.VIEW_RECOMMENDATIONS)
def list_recommendations() -> ResponseReturnValue:
    """Every open escalation recommendation."""
    session = get_session()
    items = recommendations.open_recommendations(session)
    premises = {
        p.id: p
        for p in session.scalars(
            select(Premises).where(Premises.id.in_([r.premises_id for r in items]))
        )
    }
    return render_template("incidents/recommendations.html", items=items, premises=premises)


@incidents_bp.route("/recommendations/<int:recommendation_id>/dismiss", methods=["GET", "POST"])
@permits(Action.DISMISS_RECOMMENDATION)
def dismiss_recommendation(recommendation_id: int) -> ResponseReturnValue:
    """Dismiss a recommendation with a reason."""
    session = get_session()
    recommendation = session.get(Recommendation, recommendation_id)
    if recommendation is None:
        raise NotFound("No such recommendation")
    form = DismissForm()
    status = 200
    if form.validate_on_submit():
        try:
            recommendations.dismiss(session, _user(), recommendation_id, form.reason.data or "")
        except DomainError as error:
            session.rollback()
            form.reason.errors = [error.message]
            status = 422
        else:
            flash("Recommendation dismissed.", "success")
            return redirect(url_for("premises.show", premises_id=recommendation.premises_id))
    elif request.method == "POST":
        status = 422
    premises = session.get(Premises, recommendation.premises_id)
    return render_template(
        "incidents/dismiss.html", form=form, recommendation=recommendation, premises=premises
    ), status
