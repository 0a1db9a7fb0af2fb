"""Forms for evidence: attach a document or photo, upload a redacted copy."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from govuk_frontend_wtf.wtforms_widgets import (
    GovCheckboxInput,
    GovFileInput,
    GovSubmitInput,
    GovTextInput,
)
from wtforms import BooleanField, StringField, SubmitField
from wtforms.validators import DataRequired, Length

# ---- attachments ---------------------------------------------------------------------

# The field names are prefixed ("attachment-file", ...) so the form can sit on a visit
# page beside the visit's own forms without two elements sharing an id.
ATTACHMENT_PREFIX = "attachment"
FILE_HINT = "A PDF, JPEG or PNG. The file's content decides its type, not its name."


class AttachmentForm(FlaskForm):
    """Attach a document or photo to an incident or a visit. No file-name check: the
    service decides the type from the content."""

    file = FileField(
        "File",
        description=FILE_HINT,
        widget=GovFileInput(),
        validators=[FileRequired(message="Select a file to upload")],
    )
    description = StringField(
        "Description",
        description="What it is and when it was made, for example: CCTV still, bar area, "
        "14 March 2026 23:10",
        widget=GovTextInput(),
        validators=[
            DataRequired(message="Enter a description of the file"),
            Length(max=300, message="The description must be 300 characters or fewer"),
        ],
    )
    holds_personal_data = BooleanField(
        "It holds personal data (for example a witness statement, or a photo showing "
        "people's faces)",
        description="It then goes into a shared bundle only as a redacted copy.",
        widget=GovCheckboxInput(),
    )
    submit = SubmitField("Upload attachment", widget=GovSubmitInput())


class RedactedCopyForm(FlaskForm):
    """Upload the redacted copy of an attachment that holds personal data."""

    file = FileField(
        "Redacted file",
        description=FILE_HINT,
        widget=GovFileInput(),
        validators=[FileRequired(message="Select the redacted file to upload")],
    )
    description = StringField(
        "Description",
        widget=GovTextInput(),
        validators=[
            DataRequired(message="Enter a description of the file"),
            Length(max=300, message="The description must be 300 characters or fewer"),
        ],
    )
    submit = SubmitField("Upload redacted copy", widget=GovSubmitInput())
