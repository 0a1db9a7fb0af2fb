"""Forms for action plans and partnership meetings.

Plans and meetings take a few rows of items, attendees and actions; blank rows are
ignored. Rows are plain numbered fields (item_1_description, ...) so the GOV.UK error
summary links to each box.
"""

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
from wtforms import HiddenField, RadioField, SelectField, StringField, SubmitField, TextAreaField
from wtforms.validators import InputRequired, Length, Optional

from licensing.actionplans.models import ORGANISATIONS
from licensing.choices import select_choices
from licensing.premises.forms import DATE_FORMAT, GovDateField, record_version_field

ITEM_ROWS = 6
ATTENDEE_ROWS = 8
ACTION_ROWS = 5


def _date(
    label: str, required: str | None = None, hint: str = "For example, 27 3 2027"
) -> GovDateField:
    validators: list[Any] = [InputRequired(message=required)] if required else [Optional()]
    return GovDateField(
        label, description=hint, format=DATE_FORMAT, widget=GovDateInput(), validators=validators
    )


def _reason(label: str, hint: str = "") -> TextAreaField:
    return TextAreaField(
        label,
        description=hint,
        widget=GovTextArea(),
        validators=[
            InputRequired(message=f"Enter {label[0].lower() + label[1:]}"),
            Length(max=2000),
        ],
    )


class AgreePlanForm(FlaskForm):
    """Agree a plan: with whom, when, the review date, why, and its items."""

    agreed_with = StringField(
        "Agreed with",
        description="The licence holder or designated premises supervisor who agreed it",
        widget=GovTextInput(),
        validators=[InputRequired(message="Enter who agreed the plan"), Length(max=300)],
    )
    agreed_on = _date("Date agreed", "Enter the date the plan was agreed")
    review_on = _date(
        "Review date",
        "Enter the date the plan will be reviewed",
        "When the items are checked with the licence holder; schemes allow up to 12 weeks",
    )
    reason = _reason(
        "What the plan addresses", "The problem it is meant to solve: on the audit trail"
    )
    submit = SubmitField("Agree action plan", widget=GovSubmitInput())


for _n in range(1, ITEM_ROWS + 1):
    setattr(
        AgreePlanForm,
        f"item_{_n}_description",
        StringField(
            f"Item {_n}: what was agreed",
            description="For example: two SIA door staff from 21:00 on Fridays and Saturdays"
            if _n == 1
            else "",
            widget=GovTextInput(),
            validators=[Optional(), Length(max=2000)],
        ),
    )
    setattr(
        AgreePlanForm,
        f"item_{_n}_owner",
        StringField(
            f"Item {_n}: whose job",
            description="For example: licence holder, DPS, police" if _n == 1 else "",
            widget=GovTextInput(),
            validators=[Optional(), Length(max=200)],
        ),
    )
    setattr(AgreePlanForm, f"item_{_n}_due_on", _date(f"Item {_n}: due by", hint=""))


def item_aliases(rows: int = ITEM_ROWS) -> dict[str, str]:
    """Service error keys (items-0-description) to this form's fields (item_1_description)."""
    return {
        f"items-{n - 1}-{part}": f"item_{n}_{part}"
        for n in range(1, rows + 1)
        for part in ("description", "owner", "due_on")
    }


UPDATE_CHOICES = [
    ("", "No change (still agreed)"),
    ("done", "Done"),
    ("not_done", "Not done"),
    ("withdrawn", "Withdrawn (no longer asked for)"),
]


class UpdateItemsForm(FlaskForm):
    """Set the status of a plan's open items, with a reason."""

    version = record_version_field()
    reason = _reason("Why", "What you found, or why an item was withdrawn: on the audit trail")
    submit = SubmitField("Update items", widget=GovSubmitInput())


def update_items_form(items: Sequence[Any], **kwargs: Any) -> UpdateItemsForm:
    """The update form with one choice per open item, `item_<id>`."""

    class WithItems(UpdateItemsForm):
        pass

    for item in items:
        setattr(
            WithItems,
            f"item_{item.id}",
            RadioField(
                f"{item.description} (due {item.due_on:%-d %B %Y})",
                description=f"Whose: {item.owner}",
                widget=GovRadioInput(),
                choices=select_choices(UPDATE_CHOICES),
                default="",
            ),
        )
    return WithItems(**kwargs)


class AddItemForm(FlaskForm):
    """Add an item agreed later to an open plan."""

    version = record_version_field()
    description = StringField(
        "What was agreed",
        widget=GovTextInput(),
        validators=[InputRequired(message="Enter what was agreed"), Length(max=2000)],
    )
    owner = StringField(
        "Whose job",
        widget=GovTextInput(),
        validators=[InputRequired(message="Enter who will do it"), Length(max=200)],
    )
    due_on = _date("Due by", "Enter the date it is due", "On or before the review date")
    reason = _reason("Why it was added")
    submit = SubmitField("Add item", widget=GovSubmitInput())


class ReviewDateForm(FlaskForm):
    """Move an open plan's review date."""

    version = record_version_field()
    review_on = _date("New review date", "Enter the new review date")
    reason = _reason("Why it moved")
    submit = SubmitField("Move review date", widget=GovSubmitInput())


ORGANISATION_CHOICES = [("", "Choose an organisation"), *ORGANISATIONS.items()]


class MeetingForm(FlaskForm):
    """Record a partnership meeting: when, about what, who came, minutes, decisions,
    actions."""

    authority_id = SelectField(
        "Licensing authority",
        description="The area the meeting covered",
        widget=GovSelect(),
        choices=[],
        validate_choice=False,
    )
    held_on = _date("Date of the meeting", "Enter the date of the meeting")
    title = StringField(
        "What it was about",
        widget=GovTextInput(),
        validators=[InputRequired(message="Enter what the meeting was about"), Length(max=200)],
    )
    minutes = TextAreaField(
        "Minutes", widget=GovTextArea(), validators=[Optional(), Length(max=20_000)]
    )
    decisions = TextAreaField(
        "Decisions", widget=GovTextArea(), validators=[Optional(), Length(max=20_000)]
    )
    submit = SubmitField("Record meeting", widget=GovSubmitInput())


for _n in range(1, ATTENDEE_ROWS + 1):
    setattr(
        MeetingForm,
        f"attendee_{_n}_organisation",
        SelectField(
            f"Attendee {_n}: organisation",
            widget=GovSelect(),
            choices=select_choices(ORGANISATION_CHOICES),
            validators=[Optional()],
        ),
    )
    setattr(
        MeetingForm,
        f"attendee_{_n}_name",
        StringField(
            f"Attendee {_n}: name",
            widget=GovTextInput(),
            validators=[Optional(), Length(max=200)],
        ),
    )
for _n in range(1, ACTION_ROWS + 1):
    setattr(
        MeetingForm,
        f"action_{_n}_description",
        StringField(
            f"Action {_n}: what",
            widget=GovTextInput(),
            validators=[Optional(), Length(max=2000)],
        ),
    )
    setattr(
        MeetingForm,
        f"action_{_n}_owner",
        StringField(
            f"Action {_n}: whose", widget=GovTextInput(), validators=[Optional(), Length(max=200)]
        ),
    )
    setattr(MeetingForm, f"action_{_n}_due_on", _date(f"Action {_n}: due by", hint=""))


def meeting_aliases() -> dict[str, str]:
    """Service error keys (attendees-0-organisation) to this form's fields."""
    aliases = {
        f"attendees-{n - 1}-{part}": f"attendee_{n}_{part}"
        for n in range(1, ATTENDEE_ROWS + 1)
        for part in ("organisation", "name")
    }
    aliases.update(
        {
            f"actions-{n - 1}-{part}": f"action_{n}_{part}"
            for n in range(1, ACTION_ROWS + 1)
            for part in ("description", "owner")
        }
    )
    aliases.update({"attendees": "attendee_1_organisation", "actions": "action_1_description"})
    return aliases


class ActionToItemForm(FlaskForm):
    """Make a meeting's action an item of a premises' open plan (the plan's version)."""

    version = record_version_field()
    premises_id = HiddenField()
    submit = SubmitField("Add to the action plan", widget=GovSubmitInput())
