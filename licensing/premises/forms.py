"""Forms for the register: find, add, edit, workflow events, register import."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField, FileRequired
from govuk_frontend_wtf.wtforms_widgets import (
    GovDateInput,
    GovFileInput,
    GovRadioInput,
    GovSelect,
    GovSubmitInput,
    GovTextArea,
    GovTextInput,
)
from wtforms import (
    DateField,
    HiddenField,
    RadioField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, Optional, Regexp

from licensing.choices import select_choices
from licensing.premises.models import LicenceStatus
from licensing.premises.workflow import APPEAL_STAGES, OUTCOMES
from licensing.visits.models import VISIT_TYPES

DATE_FORMAT = "%d %m %Y"  # GOV.UK date input: day, month, year boxes

STALE_PAGE = "This page is out of date or was changed: reload it and try again"


def record_version_field() -> HiddenField:
    """The hidden version of the record a form edits (the optimistic lock): required,
    and only ever the whole number the page itself was given."""
    return HiddenField(validators=[DataRequired(), Regexp(r"^[0-9]{1,18}$", message=STALE_PAGE)])


class GovDateField(DateField):
    """A date from the three GOV.UK boxes (day, month, year).

    A browser always posts all three boxes; a request that posts fewer (or none) is read
    as empty boxes, so the field reports "enter the date" instead of the widget failing
    to render the form again.
    """

    def process_formdata(self, valuelist: list[str]) -> None:
        """Pad or cut the posted values to the three boxes, then parse as DateField does."""
        if len(valuelist) != 3:
            valuelist = ([str(v) for v in valuelist] + ["", "", ""])[:3]
            self.raw_data = valuelist
        if not any(v.strip() for v in valuelist):
            return  # nothing entered: the validators say so
        super().process_formdata(valuelist)


class DetailsFields(FlaskForm):
    """The editable details of a premises licence."""

    name = StringField(
        "Premises name",
        widget=GovTextInput(),
        validators=[DataRequired(message="Enter the premises name"), Length(max=300)],
    )
    address = TextAreaField("Address", widget=GovTextArea(), validators=[Length(max=1000)])
    postcode = StringField("Postcode", widget=GovTextInput(), validators=[Length(max=16)])
    uprn = StringField(
        "UPRN",
        description="Unique Property Reference Number, if known",
        widget=GovTextInput(),
        validators=[
            Optional(),
            Regexp(r"^\d{1,12}$", message="A UPRN is a number of up to 12 digits"),
        ],
    )
    latitude = StringField("Latitude", widget=GovTextInput(), validators=[Length(max=32)])
    longitude = StringField("Longitude", widget=GovTextInput(), validators=[Length(max=32)])
    licence_holder = StringField(
        "Licence holder", widget=GovTextInput(), validators=[Length(max=300)]
    )
    dps = StringField(
        "Designated premises supervisor (DPS)", widget=GovTextInput(), validators=[Length(max=300)]
    )
    licensable_activities = TextAreaField(
        "Licensable activities", widget=GovTextArea(), validators=[Length(max=2000)]
    )
    opening_hours = TextAreaField(
        "Opening hours", widget=GovTextArea(), validators=[Length(max=2000)]
    )
    licence_status = SelectField(
        "Licence status",
        widget=GovSelect(),
        choices=select_choices([(s.value, s.value.capitalize()) for s in LicenceStatus]),
    )
    case_officer_id = SelectField(
        "Case officer", widget=GovSelect(), choices=[], validate_choice=False
    )


class PremisesEditForm(DetailsFields):
    """Edit an existing premises; names the version the officer saw."""

    version = record_version_field()
    reason = TextAreaField(
        "Why are you making this change?",
        description="For example: DPS variation granted by the council on 3 March",
        widget=GovTextArea(),
        validators=[Length(max=2000)],
    )
    submit = SubmitField("Save changes", widget=GovSubmitInput())


class PremisesCreateForm(DetailsFields):
    """Add a premises to the register by hand."""

    authority = SelectField(
        "Licensing authority",
        widget=GovSelect(),
        choices=[],
        validators=[DataRequired(message="Choose the licensing authority")],
    )
    licence_number = StringField(
        "Licence number",
        widget=GovTextInput(),
        validators=[DataRequired(message="Enter the licence number"), Length(max=64)],
    )
    submit = SubmitField("Add premises", widget=GovSubmitInput())


class TransitionForm(FlaskForm):
    """Fields every workflow event has: the version seen and a reason."""

    version = record_version_field()
    reason = TextAreaField(
        "Reason",
        widget=GovTextArea(),
        validators=[InputRequired(message="Give a reason"), Length(max=4000)],
    )
    submit = SubmitField("Confirm", widget=GovSubmitInput())


class WarnForm(TransitionForm):
    """Warn: a supervisor may override the evidence requirement with a reason."""

    override_reason = TextAreaField(
        "Override reason (supervisors only)",
        description="Only when warning without recent evidence on the record",
        widget=GovTextArea(),
        validators=[Optional(), Length(max=2000)],
    )


class ApplyForReviewForm(TransitionForm):
    """Standard review under s.51."""

    application_date = GovDateField(
        "Date of the application",
        format=DATE_FORMAT,
        widget=GovDateInput(),
        validators=[InputRequired(message="Enter the date of the application")],
    )


class SummaryReviewForm(TransitionForm):
    """Summary review under s.53A with a superintendent's certificate."""

    received_date = GovDateField(
        "Date the licensing authority received it",
        format=DATE_FORMAT,
        widget=GovDateInput(),
        validators=[InputRequired(message="Enter the date it was received")],
    )
    received_time = StringField(
        "Time received (24-hour, UK time)",
        description="For example, 14:30",
        widget=GovTextInput(),
        validators=[
            InputRequired(message="Enter the time it was received"),
            Regexp(r"^([01]?\d|2[0-3]):[0-5]\d$", message="Enter a time such as 14:30"),
        ],
    )
    certificate_reference = StringField(
        "Superintendent's certificate reference",
        widget=GovTextInput(),
        validators=[InputRequired(message="Enter the certificate reference"), Length(max=100)],
    )


class DeterminationForm(TransitionForm):
    """The licensing sub-committee's determination of the review."""

    outcome = RadioField(
        "Outcome",
        widget=GovRadioInput(),
        choices=select_choices(OUTCOMES.items()),
        validators=[InputRequired(message="Choose the outcome")],
    )
    decision_date = GovDateField(
        "Date of the decision",
        format=DATE_FORMAT,
        widget=GovDateInput(),
        validators=[InputRequired(message="Enter the date of the decision")],
    )
    suspended_until = GovDateField(
        "Suspension ends (only for a suspension)",
        format=DATE_FORMAT,
        widget=GovDateInput(),
        validators=[Optional()],
    )


class CorrectReviewDatesForm(TransitionForm):
    """Correct the date a review's deadlines hang on."""

    application_date = GovDateField(
        "Corrected application date (standard review)",
        format=DATE_FORMAT,
        widget=GovDateInput(),
        validators=[Optional()],
    )
    received_date = GovDateField(
        "Corrected date of receipt (summary review)",
        format=DATE_FORMAT,
        widget=GovDateInput(),
        validators=[Optional()],
    )
    received_time = StringField(
        "Corrected time of receipt (24-hour, UK time)",
        description="For example, 14:30",
        widget=GovTextInput(),
        validators=[
            Optional(),
            Regexp(r"^([01]?\d|2[0-3]):[0-5]\d$", message="Enter a time such as 14:30"),
        ],
    )


class HearingForm(TransitionForm):
    """The (last) day of the licensing sub-committee hearing."""

    hearing_date = GovDateField(
        "Date of the hearing (its last day, if it ran over several)",
        format=DATE_FORMAT,
        widget=GovDateInput(),
        validators=[InputRequired(message="Enter the date of the hearing")],
    )


class InterimStepsForm(TransitionForm):
    """A summary review's interim steps decision."""

    decided_date = GovDateField(
        "Date the interim steps were decided",
        format=DATE_FORMAT,
        widget=GovDateInput(),
        validators=[InputRequired(message="Enter the date of the decision")],
    )
    decided_time = StringField(
        "Time decided (24-hour, UK time)",
        description="For example, 16:00",
        widget=GovTextInput(),
        validators=[
            InputRequired(message="Enter the time of the decision"),
            Regexp(r"^([01]?\d|2[0-3]):[0-5]\d$", message="Enter a time such as 16:00"),
        ],
    )
    interim_steps = TextAreaField(
        "Interim steps taken",
        description="For example: licence suspended pending the review; or none",
        widget=GovTextArea(),
        validators=[InputRequired(message="Describe the interim steps"), Length(max=2000)],
    )


class DecisionNotifiedForm(TransitionForm):
    """When the licence holder was notified of the determination."""

    notified_on = GovDateField(
        "Date the decision was notified",
        format=DATE_FORMAT,
        widget=GovDateInput(),
        validators=[InputRequired(message="Enter the date the decision was notified")],
    )


class AppealForm(TransitionForm):
    """An appeal to the magistrates' court: lodged, then decided."""

    appeal_stage = RadioField(
        "What happened",
        widget=GovRadioInput(),
        choices=select_choices(APPEAL_STAGES.items()),
        validators=[InputRequired(message="Choose what happened")],
    )
    appeal_date = GovDateField(
        "Date",
        format=DATE_FORMAT,
        widget=GovDateInput(),
        validators=[InputRequired(message="Enter the date")],
    )


EVENT_FORMS: dict[str, type[TransitionForm]] = {
    "correct_review_dates": CorrectReviewDatesForm,
    "record_hearing": HearingForm,
    "record_interim_steps": InterimStepsForm,
    "record_decision_notified": DecisionNotifiedForm,
    "record_appeal": AppealForm,
    "warn": WarnForm,
    "stand_down": TransitionForm,
    "apply_for_review": ApplyForReviewForm,
    "apply_for_summary_review": SummaryReviewForm,
    "withdraw_review": TransitionForm,
    "record_determination": DeterminationForm,
    "close_action": TransitionForm,
}


class RegisterImportForm(FlaskForm):
    """Upload a council premises licence register (LGA PremisesLicences CSV)."""

    authority = SelectField(
        "Licensing authority",
        widget=GovSelect(),
        choices=[],
        validators=[DataRequired(message="Choose the licensing authority")],
    )
    register_file = FileField(
        "Register file (CSV)",
        widget=GovFileInput(),
        validators=[
            FileRequired(message="Choose a CSV file"),
            FileAllowed(["csv", "txt"], message="The file must be a CSV file"),
        ],
    )
    submit = SubmitField("Import register", widget=GovSubmitInput())


class BulkVisitsForm(FlaskForm):
    """Book the same visit at every premises selected on the list.

    The selected premises travel as repeated hidden `premises_id` values, read by the
    view; the fields are those of a single visit (licensing.visits.forms)."""

    visit_date = GovDateField(
        "Date of the visits",
        description="For example, 27 3 2027",
        format=DATE_FORMAT,
        widget=GovDateInput(),
        validators=[InputRequired(message="Enter the date of the visits")],
    )
    visit_time = StringField(
        "Time (24-hour, UK time)",
        description="For example, 22:30",
        widget=GovTextInput(),
        validators=[
            InputRequired(message="Enter the time of the visits"),
            Regexp(r"^([01]?\d|2[0-3]):[0-5]\d$", message="Enter a time such as 22:30"),
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
    submit = SubmitField("Schedule visits", widget=GovSubmitInput())
