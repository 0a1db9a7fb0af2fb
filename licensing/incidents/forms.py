"""Forms for incidents: record one, report ASB (council), import a file, decide links."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField, FileRequired
from govuk_frontend_wtf.wtforms_widgets import (
    GovFileInput,
    GovRadioInput,
    GovSelect,
    GovSubmitInput,
    GovTextArea,
    GovTextInput,
)
from wtforms import Field, RadioField, SelectField, StringField, SubmitField, TextAreaField
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    Optional,
    Regexp,
    ValidationError,
)

from licensing.choices import select_choices
from licensing.db import utcnow
from licensing.incidents.models import ASB_CATEGORIES, CATEGORIES
from licensing.timeutil import parse_instant

DATETIME_HINT = "For example, 2026-11-21 23:40 (UK time)"
# The service allows the same few minutes of clock difference.
FUTURE_SLACK = timedelta(minutes=5)


def no_nul(_form: FlaskForm, field: Field) -> None:
    """No NUL character: no licence number or code holds one, and PostgreSQL cannot
    store or compare text that does (refused here, before anything is looked up)."""
    if "\x00" in str(field.data or ""):
        raise ValidationError("Remove the NUL character")


def past_date_time(_form: FlaskForm, field: Field) -> None:
    """A date and time in the form the hint shows, not in the future."""
    try:
        moment = parse_instant(str(field.data or ""))
    except ValueError:
        raise ValidationError(
            "Enter when it happened as a date and time, for example 2026-11-21 23:40"
        ) from None
    if moment > utcnow() + FUTURE_SLACK:
        raise ValidationError("When it happened must be now or in the past")


def coordinate(limit: float) -> Callable[[FlaskForm, Field], None]:
    """A decimal number of degrees between -limit and limit."""

    def check(_form: FlaskForm, field: Field) -> None:
        try:
            number = float(str(field.data).strip())
        except ValueError:
            raise ValidationError(
                f"{field.label.text} must be a number of degrees, like 53.40440"
            ) from None
        if not -limit <= number <= limit:
            raise ValidationError(f"{field.label.text} must be between -{limit:g} and {limit:g}")

    return check


class IncidentForm(FlaskForm):
    """An officer records an incident, optionally linked straight to a premises."""

    category = SelectField(
        "Category",
        widget=GovSelect(),
        choices=select_choices([("", "Choose a category")] + [(c, c) for c in CATEGORIES]),
        validators=[DataRequired(message="Choose a category")],
    )
    occurred_at = StringField(
        "When it happened",
        description=DATETIME_HINT,
        widget=GovTextInput(),
        validators=[DataRequired(message="Enter when it happened"), past_date_time],
    )
    source_ref = StringField(
        "Police reference (if any)",
        description="The RMS or crime reference, so the same incident is not recorded twice",
        widget=GovTextInput(),
        validators=[Optional(), Length(max=128)],
    )
    description = TextAreaField(
        "What happened",
        description="Facts only. Put names and contact details of people in the fields below, not here.",
        widget=GovTextArea(),
        validators=[DataRequired(message="Describe what happened"), Length(max=10_000)],
    )
    location = StringField(
        "Location", widget=GovTextInput(), validators=[Optional(), Length(max=300)]
    )
    latitude = StringField(
        "Latitude", widget=GovTextInput(), validators=[Optional(), Length(max=32), coordinate(90)]
    )
    longitude = StringField(
        "Longitude",
        widget=GovTextInput(),
        validators=[Optional(), Length(max=32), coordinate(180)],
    )
    licence_number = StringField(
        "Licence number of the premises (optional)",
        description="Links the incident to that premises, confirmed",
        widget=GovTextInput(),
        validators=[Optional(), Length(max=64), no_nul],
    )
    authority = SelectField(
        "Licensing authority of that premises",
        widget=GovSelect(),
        choices=[],
        validate_choice=False,
        validators=[no_nul],
    )
    person_role = SelectField(
        "Their role",
        widget=GovSelect(),
        choices=select_choices(
            [
                ("", "Nobody"),
                ("victim", "Victim"),
                ("witness", "Witness"),
                ("reporter", "Reporter"),
                ("suspect", "Suspect"),
            ]
        ),
    )
    person_name = StringField(
        "Their name", widget=GovTextInput(), validators=[Optional(), Length(max=200)]
    )
    person_phone = StringField(
        "Their phone number", widget=GovTextInput(), validators=[Optional(), Length(max=50)]
    )
    person_email = StringField(
        "Their email address", widget=GovTextInput(), validators=[Optional(), Length(max=254)]
    )
    submit = SubmitField("Record incident", widget=GovSubmitInput())

    def validate_longitude(self, field: Field) -> None:
        """Both coordinates, or neither."""
        if bool((self.latitude.data or "").strip()) != bool((field.data or "").strip()):
            raise ValidationError("Enter both latitude and longitude, or neither")


class AsbReportForm(FlaskForm):
    """A council officer logs an ASB report against a premises of their authority."""

    licence_number = StringField(
        "Licence number of the premises",
        widget=GovTextInput(),
        validators=[DataRequired(message="Enter the licence number"), Length(max=64), no_nul],
    )
    category = RadioField(
        "Type of anti-social behaviour",
        widget=GovRadioInput(),
        choices=select_choices([(c, c.replace("ASB - ", "").capitalize()) for c in ASB_CATEGORIES]),
        validators=[InputRequired(message="Choose the type of anti-social behaviour")],
    )
    occurred_at = StringField(
        "When it happened",
        description=DATETIME_HINT,
        widget=GovTextInput(),
        validators=[DataRequired(message="Enter when it happened"), past_date_time],
    )
    description = TextAreaField(
        "What happened",
        widget=GovTextArea(),
        validators=[DataRequired(message="Describe what happened"), Length(max=10_000)],
    )
    reporter_name = StringField(
        "Reporter's name (kept confidential)",
        widget=GovTextInput(),
        validators=[Optional(), Length(max=200)],
    )
    reporter_phone = StringField(
        "Reporter's phone (kept confidential)",
        widget=GovTextInput(),
        validators=[Optional(), Length(max=50)],
    )
    submit = SubmitField("Log ASB report", widget=GovSubmitInput())


class IncidentImportForm(FlaskForm):
    """Upload a data.police.uk street-level CSV or a generic RMS export."""

    format = RadioField(
        "File format",
        widget=GovRadioInput(),
        choices=select_choices(
            [
                ("police-uk", "data.police.uk street-level CSV"),
                ("generic", "Generic RMS export (the layout is described above)"),
            ]
        ),
        default="police-uk",
        validators=[InputRequired(message="Choose the file format")],
    )
    incident_file = FileField(
        "File (CSV)",
        widget=GovFileInput(),
        validators=[
            FileRequired(message="Choose a CSV file"),
            FileAllowed(["csv", "txt"], message="The file must be a CSV file"),
        ],
    )
    submit = SubmitField("Import incidents", widget=GovSubmitInput())


class DismissForm(FlaskForm):
    """Dismiss a recommendation with a reason."""

    reason = TextAreaField(
        "Why dismiss it?",
        widget=GovTextArea(),
        validators=[DataRequired(message="Give a reason"), Length(max=2000)],
    )
    submit = SubmitField(
        "Dismiss recommendation",
        widget=GovSubmitInput(),
        render_kw={"class": "govuk-button--warning"},
    )


class LinkDecisionForm(FlaskForm):
    """CSRF and the decision for confirming or rejecting suggestions in bulk; the chosen
    link ids come as repeated `link` values."""

    decision = StringField(validators=[Regexp(r"^(confirmed|rejected)$")])
