"""Did it work? The force report (page and CSV) and the premises page's section.

Police and admin (VIEW_ASSESSMENT); every figure is within what the user may see.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import cast

from flask import Blueprint, current_app, render_template, request
from flask.typing import ResponseReturnValue
from flask_login import current_user
from sqlalchemy.orm import Session

from licensing.assessment import services
from licensing.assessment.charts import BeforeAfterChart, assessment_key, before_after_chart
from licensing.assessment.forms import ReportForm
from licensing.auth.matrix import Action, allowed, permits
from licensing.auth.models import User
from licensing.csvfiles import csv_download
from licensing.db import get_session
from licensing.errors import ValidationFailed
from licensing.premises.models import Premises
from licensing.templating import place_errors
from licensing.timeutil import london_today

assessment_bp = Blueprint("assessment", __name__)


def _user() -> User:
    return cast(User, current_user)


def default_window_days() -> int:
    """The configured window (ASSESSMENT_WINDOW_DAYS), or 90 if it is not usable."""
    days, _problem = services.parse_window_days(
        str(current_app.config.get("ASSESSMENT_WINDOW_DAYS") or ""),
        services.DEFAULT_WINDOW_DAYS,
    )
    return days


@dataclass(frozen=True)
class PremisesSection:
    """What the premises page's "Did it work?" section shows."""

    assessments: list[services.Assessment]
    chart: BeforeAfterChart
    days: int
    window_problem: str | None
    asked_days: str
    caveat: str = services.REGRESSION_CAVEAT

    @property
    def rows(self) -> list[tuple[str, services.Assessment]]:
        """Each assessment (newest first) with the key its chart bars carry."""
        return [(assessment_key(a), a) for a in self.assessments]


def premises_section(
    session: Session, user: User, premises: Premises, *, any_plan: bool = True
) -> PremisesSection | None:
    """The premises page's assessment, or None for a user who may not see assessments.
    The window comes from the page's `window_days` query parameter; `any_plan` False
    (the page knows the premises has no action plan) skips reading agreed plans."""
    if not allowed(user, Action.VIEW_ASSESSMENT, premises.authority_id):
        return None
    asked = (request.args.get("window_days") or "").strip()[:10]
    days, problem = services.parse_window_days(asked, default_window_days())
    assessments = services.premises_assessment(session, premises, days, any_plan=any_plan)
    return PremisesSection(
        assessments=assessments,
        chart=before_after_chart(assessments),
        days=days,
        window_problem=problem,
        asked_days=asked if problem else str(days),
    )


def _report_choices(form: ReportForm) -> tuple[date, date, int]:
    """The period and window from a validated form (ValidationFailed if they conflict)."""
    first, last = services.resolve_period(
        form.period_from.data, form.period_to.data, london_today()
    )
    text = (form.window_days.data or "").strip()
    days, problem = services.parse_window_days(text, default_window_days())
    if problem:
        raise ValidationFailed(problem, {"window_days": problem})
    return first, last, days


def _form() -> ReportForm:
    return ReportForm(formdata=request.args if request.args else None)


@assessment_bp.get("/assessment")
@permits(Action.VIEW_ASSESSMENT)
def report() -> ResponseReturnValue:
    """The force report for a period: interventions, de-escalation, medians before and
    after by type and authority, and the comparison group, with the caveat."""
    form = _form()
    status = 200
    report_data = None
    if not request.args or form.validate():
        try:
            first, last, days = _report_choices(form)
            report_data = services.force_report(get_session(), _user(), first, last, days)
        except ValidationFailed as error:
            place_errors(form, error, "period_from")
    if form.errors:
        status = 422
    if report_data is not None and not request.args:
        # Show the defaults in the boxes, so the period on screen is the one counted.
        form.period_from.data = report_data.first
        form.period_to.data = report_data.last
        form.window_days.data = str(report_data.days)
    return (
        render_template(
            "assessment/report.html",
            form=form,
            report=report_data,
            caveat=services.REGRESSION_CAVEAT,
            deescalation_days=services.DEESCALATION_DAYS,
            query=request.query_string.decode("ascii", "replace"),
        ),
        status,
    )


def _export(kind: str) -> ResponseReturnValue:
    form = _form()
    if request.args and not form.validate():
        problems = {name: str(messages[0]) for name, messages in form.errors.items() if messages}
        raise ValidationFailed("; ".join(problems.values()), problems)
    first, last, days = _report_choices(form)
    data = services.force_report(get_session(), _user(), first, last, days)
    text = (
        services.interventions_csv(data) if kind == "interventions" else services.summary_csv(data)
    )
    return csv_download(text, f"assessment-{kind}-{first.isoformat()}-to-{last.isoformat()}.csv")


@assessment_bp.get("/assessment/interventions.csv")
@permits(Action.VIEW_ASSESSMENT)
def export_interventions() -> ResponseReturnValue:
    """The report's interventions as CSV, one row each, with the same period and window."""
    return _export("interventions")


@assessment_bp.get("/assessment/summary.csv")
@permits(Action.VIEW_ASSESSMENT)
def export_summary() -> ResponseReturnValue:
    """The report's figures by group and its comparison group as CSV."""
    return _export("summary")
