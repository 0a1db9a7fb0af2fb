"""Forms for evidence bundles: build one, leave items out, issue, share, acknowledge,
comment."""

from __future__ import annotations

from flask_wtf import FlaskForm
from govuk_frontend_wtf.wtforms_widgets import (
    GovDateInput,
    GovRadioInput,
    GovSubmitInput,
    GovTextArea,
)
from wtforms import HiddenField, RadioField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from licensing.choices import select_choices
from licensing.evidence.models import REVIEW_KINDS
from licensing.evidence.services import COMMENT_LIMIT
from licensing.premises.forms import DATE_FORMAT, GovDateField

STATEMENT_LIMIT = 20000


class BuildBundleForm(FlaskForm):
    """What to build: the period, the kind of review, and the officer's statement."""

    period_from = GovDateField(
        "From",
        description="For example, 1 12 2025. Leave blank for 12 months before the end date.",
        format=DATE_FORMAT,
        widget=GovDateInput(),
        validators=[Optional()],
    )
    period_to = GovDateField(
        "To",
        description="For example, 30 11 2026. Leave blank for today.",
        format=DATE_FORMAT,
        widget=GovDateInput(),
        validators=[Optional()],
    )
    review_kind = RadioField(
        "The review this bundle supports",
        widget=GovRadioInput(),
        choices=select_choices(REVIEW_KINDS.items()),
        default="standard",
        validators=[InputRequired(message="Choose the kind of review")],
    )
    statement = TextAreaField(
        "Statement or summary (optional)",
        description="Shown after the index. Names, phone numbers and email addresses of "
        "people in the incidents are redacted in the shared copy.",
        widget=GovTextArea(),
        validators=[Length(max=STATEMENT_LIMIT)],
    )
    submit = SubmitField("Build the bundle", widget=GovSubmitInput())


class LockedForm(FlaskForm):
    """A change to a draft: carries the lock version the user saw."""

    lock_version = HiddenField()


class ExcludeItemForm(LockedForm):
    """Leave an item out of the bundle, saying why."""

    reason = TextAreaField(
        "Why is this item left out?",
        description="The reason goes on the schedule of unused material, which only the "
        "police copy contains.",
        widget=GovTextArea(),
        validators=[
            DataRequired(message="Say why this item is left out"),
            Length(max=2000),
        ],
    )
    submit = SubmitField("Leave it out", widget=GovSubmitInput())


class IncludeItemForm(LockedForm):
    """Put an item back in."""

    submit = SubmitField("Put it back", widget=GovSubmitInput())


class StatementForm(LockedForm):
    """Change the statement of a draft."""

    statement = TextAreaField(
        "Statement or summary",
        widget=GovTextArea(),
        validators=[Length(max=STATEMENT_LIMIT)],
    )
    submit = SubmitField("Save and rebuild", widget=GovSubmitInput())


class RebuildForm(LockedForm):
    """Bring a draft up to date with the records."""

    submit = SubmitField("Rebuild from the latest records", widget=GovSubmitInput())


class IssueForm(LockedForm):
    """Issue a draft (supervisor)."""

    submit = SubmitField("Issue this bundle", widget=GovSubmitInput())


class ShareForm(FlaskForm):
    """Share an issued bundle with the licensing authority (supervisor)."""

    submit = SubmitField("Share with the licensing authority", widget=GovSubmitInput())


class NewVersionForm(FlaskForm):
    """Start a new version of an issued bundle."""

    submit = SubmitField("Start a new version", widget=GovSubmitInput())


class AcknowledgeForm(FlaskForm):
    """Acknowledge receipt (council)."""

    submit = SubmitField("Acknowledge receipt", widget=GovSubmitInput())


class CommentForm(FlaskForm):
    """A comment on a bundle."""

    body = TextAreaField(
        "Add a comment",
        widget=GovTextArea(),
        validators=[
            DataRequired(message="Enter a comment"),
            Length(max=COMMENT_LIMIT, message=f"Keep it under {COMMENT_LIMIT} characters"),
        ],
    )
    submit = SubmitField("Add comment", widget=GovSubmitInput())
