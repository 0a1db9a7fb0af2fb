"""Sign-in form and the admin's account forms."""

from __future__ import annotations

from flask_wtf import FlaskForm
from govuk_frontend_wtf.wtforms_widgets import (
    GovPasswordInput,
    GovRadioInput,
    GovSelect,
    GovSubmitInput,
    GovTextInput,
)
from wtforms import (
    EmailField,
    HiddenField,
    PasswordField,
    RadioField,
    SelectField,
    StringField,
    SubmitField,
)
from wtforms.validators import DataRequired, InputRequired, Length

from licensing.choices import select_choices


class SignInForm(FlaskForm):
    """Email and password."""

    email = EmailField(
        "Email address",
        widget=GovTextInput(),
        validators=[DataRequired(message="Enter your email address"), Length(max=254)],
    )
    password = PasswordField(
        "Password",
        widget=GovPasswordInput(),
        validators=[DataRequired(message="Enter your password")],
    )
    submit = SubmitField("Sign in", widget=GovSubmitInput())


ROLE_CHOICES = [
    ("officer", "Police licensing officer"),
    ("supervisor", "Supervisor (sergeant)"),
    ("council", "Council licensing officer"),
    ("admin", "System administrator"),
]
NO_AUTHORITY = ("", "None: not a council user")


class CreateUserForm(FlaskForm):
    """An admin creates an account: who, their role, their council (council users only)
    and a first password, which the password policy checks."""

    name = StringField(
        "Full name",
        widget=GovTextInput(),
        validators=[DataRequired(message="Enter the person's name"), Length(max=200)],
    )
    email = EmailField(
        "Email address",
        widget=GovTextInput(),
        validators=[DataRequired(message="Enter their email address"), Length(max=254)],
    )
    role = RadioField(
        "Role",
        choices=select_choices(ROLE_CHOICES),
        widget=GovRadioInput(),
        validators=[InputRequired(message="Choose a role")],
    )
    authority = SelectField(
        "Council",
        description="Council licensing officers only: the council they work for",
        widget=GovSelect(),
        validate_choice=False,  # the service says which authorities exist
    )
    password = PasswordField(
        "First password",
        description=(
            "At least 12 characters; not a common password, and not containing their name "
            "or email address. Give it to them in person or by phone, never by email."
        ),
        widget=GovPasswordInput(),
        validators=[DataRequired(message="Enter a first password")],
    )
    submit = SubmitField("Create user", widget=GovSubmitInput())


class ChangeRoleForm(FlaskForm):
    """An admin changes a user's role and council, naming the role they saw, so that a
    change made meanwhile by someone else is refused rather than overwritten."""

    role = RadioField(
        "Role",
        choices=select_choices(ROLE_CHOICES),
        widget=GovRadioInput(),
        validators=[InputRequired(message="Choose a role")],
    )
    authority = SelectField(
        "Council",
        description="Council licensing officers only",
        widget=GovSelect(),
        validate_choice=False,
    )
    seen_role = HiddenField(validators=[InputRequired()])
    seen_authority_id = HiddenField()
    submit = SubmitField("Change role", widget=GovSubmitInput())
