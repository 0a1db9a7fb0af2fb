"""The force report's choices: a period and the length of the before/after windows. A GET
form (the report is a page to bookmark and share, and changes nothing), so no CSRF token."""

from __future__ import annotations

from flask_wtf import FlaskForm
from govuk_frontend_wtf.wtforms_widgets import GovDateInput, GovSubmitInput, GovTextInput
from wtforms import StringField, SubmitField
from wtforms.validators import Optional, Regexp

from licensing.assessment.services import MAX_WINDOW_DAYS, MIN_WINDOW_DAYS
from licensing.premises.forms import DATE_FORMAT, GovDateField

WINDOW_MESSAGE = (
    f"Enter the window as a whole number of days from {MIN_WINDOW_DAYS} to {MAX_WINDOW_DAYS}"
)


class ReportForm(FlaskForm):
    """The period whose interventions are assessed, and the window before and after each."""

    class Meta:
        csrf = False

    period_from = GovDateField(
        "From",
        description="For example, 1 1 2026. Leave blank for a year before the end date.",
        format=DATE_FORMAT,
        widget=GovDateInput(),
        validators=[Optional()],
    )
    period_to = GovDateField(
        "To",
        description="For example, 31 12 2026. Leave blank for today.",
        format=DATE_FORMAT,
        widget=GovDateInput(),
        validators=[Optional()],
    )
    window_days = StringField(
        "Days before and after each intervention",
        description=f"From {MIN_WINDOW_DAYS} to {MAX_WINDOW_DAYS}. Leave blank for the "
        "force's default.",
        widget=GovTextInput(),
        validators=[Optional(), Regexp(r"^\s*\d{1,3}\s*$", message=WINDOW_MESSAGE)],
    )
    submit = SubmitField("Show the figures", widget=GovSubmitInput())
