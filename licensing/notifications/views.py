"""Pages: the admin's list of emails that failed for good (with a retry button each),
and each police user's choice of alerts."""

from __future__ import annotations

from typing import cast

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from flask_wtf import FlaskForm
from govuk_frontend_wtf.wtforms_widgets import GovRadioInput, GovSubmitInput
from sqlalchemy import func, select
from wtforms import RadioField, SubmitField
from wtforms.validators import InputRequired

from licensing.auth.matrix import Action, permits
from licensing.auth.models import User
from licensing.choices import select_choices
from licensing.db import get_session
from licensing.notifications import outbox
from licensing.notifications.alerts import alert_mode, set_alert_mode
from licensing.notifications.models import STATUSES, OutboxEmail

notifications_bp = Blueprint("notifications", __name__)


class AlertPreferenceForm(FlaskForm):
    """Every alert as it happens plus the digest, or the digest only."""

    mode = RadioField(
        "Which emails do you want?",
        choices=select_choices(
            [
                ("immediate", "Every alert as it happens, and the daily digest at 7am"),
                ("digest", "The daily digest at 7am only"),
            ]
        ),
        widget=GovRadioInput(),
        validators=[InputRequired(message="Choose which emails you want")],
    )
    submit = SubmitField("Save", widget=GovSubmitInput())


@notifications_bp.get("/admin/outbox")
@permits(Action.MANAGE_OUTBOX)
def outbox_failures() -> ResponseReturnValue:
    """Emails that failed for good, newest first, and how many are in each status."""
    session = get_session()
    counts: dict[str, int] = {
        status: count
        for status, count in session.execute(
            select(OutboxEmail.status, func.count()).group_by(OutboxEmail.status)
        )
    }
    return render_template(
        "notifications/outbox.html",
        failed=outbox.failed_emails(session),
        counts={status: counts.get(status, 0) for status in STATUSES},
    )


@notifications_bp.post("/admin/outbox/<int:email_id>/retry")
@permits(Action.MANAGE_OUTBOX)
def retry_email(email_id: int) -> ResponseReturnValue:
    """Put a failed email back in the queue (CSRF-checked like every form)."""
    email = outbox.retry(get_session(), email_id)
    flash(f"The email to {email.recipient} will be sent again.", "success")
    return redirect(url_for("notifications.outbox_failures"))


@notifications_bp.route("/account/alerts", methods=["GET", "POST"])
@permits(Action.CHOOSE_ALERTS)
def alert_preferences() -> ResponseReturnValue:
    """Choose every alert plus the digest, or the digest only."""
    session = get_session()
    user = cast(User, current_user)
    form = AlertPreferenceForm()
    if request.method == "GET":
        form.mode.data = alert_mode(session, user.id)
    if form.validate_on_submit():
        set_alert_mode(session, user, str(form.mode.data))
        flash("Your choice of alerts is saved.", "success")
        return redirect(url_for("notifications.alert_preferences"))
    status = 422 if request.method == "POST" else 200
    return render_template("notifications/preferences.html", form=form), status
