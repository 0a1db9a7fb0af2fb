"""Forms for visits: schedule one, record its outcome, cancel it, and the calendar feed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask_wtf import FlaskForm
from govuk_frontend_wtf.wtforms_widgets import (
    GovDateInput,
    GovRadioInput,
    GovSelect,
    GovSubmitInput,
    GovTextArea,
    GovTextInput,
)
from wtforms import RadioField, SelectField, StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, Optional, Regexp

from licensing.choices import select_choices
from licensing.premises.forms import DATE_FORMAT, GovDateField, record_version_field
from licensing.visits.models import OBJECTIVES, VISIT_OUTCOMES, VISIT_TYPES
from licensing.visits.services import FINDINGS_MAX

TIME_PATTERN = r"^([01]?\d|2[0-3]):[0-5]\d$"


class ScheduleVisitForm(FlaskForm):
    """Book a visit to a premises: when, what kind, and who goes."""

    visit_date = GovDateField(
        "Date of the visit",
        description="For example, 27 3 2027",
        format=DATE_FORMAT,
        widget=GovDateInput(),
        validators=[InputRequired(message="Enter the date of the visit")],
    )
    visit_time = StringField(
        "Time (24-hour, UK time)",
        description="For example, 22:30",
        widget=GovTextInput(),
        validators=[
            InputRequired(message="Enter the time of the visit"),
            Regexp(TIME_PATTERN, message="Enter a time such as 22:30"),
        ],
    )
    visit_type = RadioField(
        "Type of visit",
        widget=GovRadioInput(),
        choices=select_choices(VISIT_TYPES.items()),
        validators=[InputRequired(message="Choose the type of visit")],
    )
    officer_id = SelectField(
        "Officer",
        widget=GovSelect(),
        choices=[],
        validate_choice=False,
        validators=[DataRequired(message="Choose the officer who will visit")],
    )
    submit = SubmitField("Schedule visit", widget=GovSubmitInput())


class RecordOutcomeForm(FlaskForm):
    """What the visit found: outcome, when it took place, findings per objective."""

    version = record_version_field()
    outcome = RadioField(
        "Outcome",
        widget=GovRadioInput(),
        choices=select_choices(VISIT_OUTCOMES.items()),
        validators=[InputRequired(message="Choose the outcome of the visit")],
    )
    visited_date = GovDateField(
        "Date of the visit",
        format=DATE_FORMAT,
        widget=GovDateInput(),
        validators=[InputRequired(message="Enter the date of the visit")],
    )
    visited_time = StringField(
        "Time of the visit (24-hour, UK time)",
        description="For example, 22:30",
        widget=GovTextInput(),
        validators=[
            InputRequired(message="Enter the time of the visit"),
            Regexp(TIME_PATTERN, message="Enter a time such as 22:30"),
        ],
    )
    findings_crime_and_disorder = TextAreaField(
        OBJECTIVES["crime_and_disorder"],
        widget=GovTextArea(),
        validators=[Optional(), Length(max=FINDINGS_MAX)],
    )
    findings_public_safety = TextAreaField(
        OBJECTIVES["public_safety"],
        widget=GovTextArea(),
        validators=[Optional(), Length(max=FINDINGS_MAX)],
    )
    findings_public_nuisance = TextAreaField(
        OBJECTIVES["public_nuisance"],
        widget=GovTextArea(),
        validators=[Optional(), Length(max=FINDINGS_MAX)],
    )
    findings_protection_of_children = TextAreaField(
        OBJECTIVES["protection_of_children"],
        widget=GovTextArea(),
        validators=[Optional(), Length(max=FINDINGS_MAX)],
    )
    follow_up_actions = TextAreaField(
        "Follow-up actions",
        description="What the licence holder or the police will do next, and by when",
        widget=GovTextArea(),
        validators=[Optional(), Length(max=FINDINGS_MAX)],
    )
    submit = SubmitField("Record outcome", widget=GovSubmitInput())


# What a visit can find of an agreed action-plan item (licensing.actionplans).
PLAN_ITEM_CHOICES = [
    ("", "Still agreed (not checked, or not due yet)"),
    ("done", "Done"),
    ("not_done", "Not done"),
]


def record_outcome_form(items: Sequence[Any], **kwargs: Any) -> RecordOutcomeForm:
    """The outcome form with one choice per open action-plan item, `plan_item_<id>`."""

    class WithPlanItems(RecordOutcomeForm):
        pass

    for item in items:
        field = RadioField(
            f"{item.description} (due {item.due_on:%-d %B %Y})",
            description=f"Whose: {item.owner}",
            widget=GovRadioInput(),
            choices=select_choices(PLAN_ITEM_CHOICES),
            default="",
        )
        setattr(WithPlanItems, f"plan_item_{item.id}", field)
    return WithPlanItems(**kwargs)


class CancelVisitForm(FlaskForm):
    """Cancel a proposed or scheduled visit, with a reason."""

    version = record_version_field()
    reason = TextAreaField(
        "Why cancel it?",
        widget=GovTextArea(),
        validators=[InputRequired(message="Give a reason for cancelling"), Length(max=2000)],
    )
    submit = SubmitField(
        "Cancel visit", widget=GovSubmitInput(), render_kw={"class": "govuk-button--warning"}
    )


class FeedForm(FlaskForm):
    """CSRF only: create or revoke the calendar feed address."""

    submit = SubmitField("Create a calendar address", widget=GovSubmitInput())
