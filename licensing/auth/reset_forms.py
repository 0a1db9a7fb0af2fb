"""Forms of the password reset and of a signed-in user's change of password."""

from __future__ import annotations

from flask_wtf import FlaskForm
from govuk_frontend_wtf.wtforms_widgets import GovPasswordInput, GovSubmitInput, GovTextInput
from wtforms import EmailField, PasswordField, SubmitField
from wtforms.validators import DataRequired, EqualTo, Length

# Long enough for any passphrase; argon2 hashes whatever length, but a megabyte
# "password" is only a way to make the server work.
MAX_PASSWORD_LENGTH = 256


class ResetRequestForm(FlaskForm):
    """The email address to send a reset link to."""

    email = EmailField(
        "Email address",
        widget=GovTextInput(),
        validators=[DataRequired(message="Enter your email address"), Length(max=254)],
    )
    submit = SubmitField("Send me a link", widget=GovSubmitInput())


def _new_password_field() -> PasswordField:
    return PasswordField(
        "New password",
        widget=GovPasswordInput(),
        validators=[
            DataRequired(message="Enter a new password"),
            Length(max=MAX_PASSWORD_LENGTH, message="Use at most 256 characters"),
        ],
    )


def _confirm_field() -> PasswordField:
    return PasswordField(
        "Type the new password again",
        widget=GovPasswordInput(),
        validators=[
            DataRequired(message="Type the new password again"),
            EqualTo("password", message="The two passwords are not the same"),
        ],
    )


class NewPasswordForm(FlaskForm):
    """A new password, typed twice."""

    password = _new_password_field()
    confirm = _confirm_field()
    submit = SubmitField("Set password", widget=GovSubmitInput())


class ChangePasswordForm(FlaskForm):
    """The current password, then a new one typed twice (fields in that order, so the
    error summary lists them as the page does)."""

    current_password = PasswordField(
        "Current password",
        widget=GovPasswordInput(),
        validators=[DataRequired(message="Enter your current password")],
    )
    password = _new_password_field()
    confirm = _confirm_field()
    submit = SubmitField("Change password", widget=GovSubmitInput())
