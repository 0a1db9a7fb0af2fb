"""Forms for letters: edit a template's wording, choose a letter, fill in and issue it."""

from __future__ import annotations

from flask_wtf import FlaskForm
from govuk_frontend_wtf.wtforms_widgets import (
    GovDateInput,
    GovRadioInput,
    GovSubmitInput,
    GovTextArea,
    GovTextInput,
)
from wtforms import RadioField, StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, Optional, Regexp

from licensing.letters.services import BODY_MAX, MEETING_PLACE_MAX, SUBJECT_MAX
from licensing.premises.forms import DATE_FORMAT, GovDateField, record_version_field
from licensing.visits.forms import TIME_PATTERN


class TemplateForm(FlaskForm):
    """New wording for a standard letter; saving makes its next version."""

    version = record_version_field()
    subject = StringField(
        "Subject line",
        widget=GovTextInput(),
        validators=[
            DataRequired(message="Enter the subject line"),
            Length(max=SUBJECT_MAX, message=f"Use {SUBJECT_MAX} characters or fewer"),
        ],
    )
    body = TextAreaField(
        "The letter's text",
        description=(
            "Between the subject line and the signature. A blank line starts a new "
            "paragraph. Placeholders in double braces are filled in when a letter is issued."
        ),
        widget=GovTextArea(),
        validators=[
            DataRequired(message="Enter the letter's text"),
            Length(max=BODY_MAX, message=f"Use {BODY_MAX:,} characters or fewer"),
        ],
    )
    submit = SubmitField("Save as a new version", widget=GovSubmitInput())


class IssueLetterForm(FlaskForm):
    """Issue one standard letter to a premises. The meeting's details are asked for only
    by the invitation (the view makes them required there)."""

    template_version = record_version_field()
    meeting_date = GovDateField(
        "Date of the meeting",
        description="For example, 9 3 2027",
        format=DATE_FORMAT,
        widget=GovDateInput(),
        validators=[Optional()],
    )
    meeting_time = StringField(
        "Time of the meeting (24-hour, UK time)",
        description="For example, 10:30",
        widget=GovTextInput(),
        validators=[Optional(), Regexp(TIME_PATTERN, message="Enter a time such as 10:30")],
    )
    meeting_place = StringField(
        "Where the meeting is held",
        widget=GovTextInput(),
        validators=[
            Optional(),
            Length(max=MEETING_PLACE_MAX, message=f"Use {MEETING_PLACE_MAX} characters or fewer"),
        ],
    )
    preview = SubmitField("Preview", widget=GovSubmitInput())
    submit = SubmitField("Issue letter", widget=GovSubmitInput())

    def require_meeting(self) -> None:
        """Make the meeting's date, time and place required (the invitation)."""
        self.meeting_date.validators = [InputRequired(message="Enter the date of the meeting")]
        self.meeting_time.validators = [
            InputRequired(message="Enter the time of the meeting"),
            Regexp(TIME_PATTERN, message="Enter a time such as 10:30"),
        ]
        self.meeting_place.validators = [
            InputRequired(message="Enter where the meeting is held"),
            Length(max=MEETING_PLACE_MAX, message=f"Use {MEETING_PLACE_MAX} characters or fewer"),
        ]


class ChooseLetterForm(FlaskForm):
    """Which standard letter to issue (a GET form: it only picks the page to show)."""

    class Meta:
        csrf = False

    template = RadioField(
        "Which letter?",
        widget=GovRadioInput(),
        choices=[],
        validators=[InputRequired(message="Choose a letter")],
    )
    submit = SubmitField("Continue", widget=GovSubmitInput())
