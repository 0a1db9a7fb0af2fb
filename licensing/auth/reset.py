"""Password reset by an emailed single-use link, and a signed-in user's change of password.

The rules:

- Asking for a link always gets the same answer ("if an account exists, we have sent a
  link"), whether the address has an active account, a disabled one (which gets no
  email) or none, so the page cannot be used to learn who has an account.
- A link carries 32 random bytes (`secrets.token_urlsafe`); only their SHA-256 is stored.
  It expires after PASSWORD_RESET_MINUTES and works once: it is spent by a conditional
  UPDATE (`used_at IS NULL`), so two submissions racing with one link cannot both set a
  password. A new link supersedes the account's earlier unused ones, and an account gets
  at most MAX_LINKS_PER_HOUR links an hour (the rest are silently not sent).
- Opening the link does not spend it (mail scanners open links): it moves the token out
  of the address bar into the session, and only setting a password spends it.
- Setting a password applies the password policy, records `password_changed_at`, starts
  a fresh count of failed sign-ins and does NOT unlock a locked account: a reset proves
  control of the mailbox, not that the guessing that locked the account has stopped, so
  an admin unlocks. Nor does it sign the user in: they sign in with the new password.
- Any change of password ends every session that began before it (another browser,
  perhaps the one an attacker has), see `end_sessions_older_than_the_password`.
- The email holds the link and guidance only, and goes through the outbox. The token is
  never logged (the WSGI servers' access logs get it blanked, see RedactResetTokens)
  and never in the audit trail. The queued email body holds the link until it is used
  or expires.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from datetime import datetime, timedelta
from typing import cast

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask import session as browser_session
from flask.typing import ResponseReturnValue
from flask_login import current_user
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from licensing.audit.services import append_event
from licensing.auth.matrix import Action, permits
from licensing.auth.models import PasswordResetToken, User
from licensing.auth.reset_forms import ChangePasswordForm, NewPasswordForm, ResetRequestForm
from licensing.auth.services import (
    authenticate,
    check_password_strength,
    hash_password,
    normalise_email,
)
from licensing.auth.signin import begin_session
from licensing.db import get_session, utcnow
from licensing.errors import Refused, ValidationFailed
from licensing.notifications.alerts import absolute_url
from licensing.notifications.outbox import enqueue

reset_bp = Blueprint("reset", __name__)

DEFAULT_RESET_MINUTES = 60
MAX_LINKS_PER_HOUR = 5
TOKEN_BYTES = 32
RESET_SUBJECT = "Reset your password for the licensing enforcement service"
# Where an opened link's token waits (as its SHA-256) for the new password.
SESSION_KEY = "password_reset_token_hash"
LINK_SENT = (
    "If an account exists for that email address, we have sent it a link to reset the "
    "password. The link works once and expires in {minutes} minutes."
)
INVALID_LINK = "This password reset link has expired or has already been used"


# Loggers of WSGI servers that write each request's path: the development server's and
# gunicorn's access log.
ACCESS_LOGGERS = ("werkzeug", "gunicorn.access")
_TOKEN_IN_PATH = re.compile(r"(/password-reset/)(?!new-password\b)[A-Za-z0-9_\-]{16,}")


class RedactResetTokens(logging.Filter):
    """Blanks the token of a reset link in a logged request line, so an access log never
    holds a live link."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record without the token; never drop it."""
        message = record.getMessage()
        redacted = _TOKEN_IN_PATH.sub(r"\1[redacted]", message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def _redact_access_logs(_state: object) -> None:
    for name in ACCESS_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactResetTokens) for f in logger.filters):
            logger.addFilter(RedactResetTokens())


reset_bp.record_once(_redact_access_logs)


# ---- services -----------------------------------------------------------------------------


def token_digest(token: str) -> str:
    """The SHA-256 (hex) of a reset token: all that is stored of it."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def reset_minutes() -> int:
    """How long a reset link works: PASSWORD_RESET_MINUTES (environment values are text)."""
    return int(current_app.config.get("PASSWORD_RESET_MINUTES") or DEFAULT_RESET_MINUTES)


def _supersede_unused_links(session: Session, user_id: int, now: datetime) -> None:
    # Marked used rather than deleted: the rows still count towards the hourly limit.
    session.execute(
        update(PasswordResetToken)
        .where(PasswordResetToken.user_id == user_id, PasswordResetToken.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )


def _reset_email(link: str, minutes: int) -> tuple[str, str]:
    env = current_app.jinja_env
    context = {"link": link, "minutes": minutes, "subject": RESET_SUBJECT}
    text = env.get_template("email/password_reset.txt").render(**context)
    html = env.get_template("email/password_reset.html").render(**context)
    return text, html


def request_reset(session: Session, email: str, *, now: datetime | None = None) -> bool:
    """Email a reset link to the active account with this address, and commit; True when
    a link was queued. The caller must answer the same whatever this returns."""
    now = now or utcnow()
    user = session.scalar(select(User).where(User.email == normalise_email(email)))
    if user is None or not user.active:
        return False
    recent = session.scalar(
        select(func.count())
        .select_from(PasswordResetToken)
        .where(
            PasswordResetToken.user_id == user.id,
            PasswordResetToken.created_at > now - timedelta(hours=1),
        )
    )
    if (recent or 0) >= MAX_LINKS_PER_HOUR:
        return False
    minutes = reset_minutes()
    _supersede_unused_links(session, user.id, now)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    record = PasswordResetToken(
        user_id=user.id,
        token_hash=token_digest(token),
        created_at=now,
        expires_at=now + timedelta(minutes=minutes),
    )
    session.add(record)
    session.flush()
    text, html = _reset_email(absolute_url("reset.open_link", token=token), minutes)
    enqueue(
        session,
        recipient=user.email,
        subject=RESET_SUBJECT,
        text=text,
        html=html,
        # The key names the link's row, never the token: keys are stored and shown.
        dedupe_key=f"password-reset:{record.id}",
        user_id=user.id,
        now=now,
    )
    append_event(
        session,
        event="password_reset.requested",
        actor_id=None,  # anyone may ask; the account is in the payload
        payload={"user_id": user.id, "reset_id": record.id},
        occurred_at=now,
    )
    session.commit()
    return True


def live_reset(
    session: Session, token_hash: str, *, now: datetime | None = None
) -> PasswordResetToken | None:
    """The unused, unexpired reset link with this token hash, its account active; or None."""
    now = now or utcnow()
    record = session.scalar(
        select(PasswordResetToken).where(
            PasswordResetToken.token_hash == token_hash,
            PasswordResetToken.used_at.is_(None),
            PasswordResetToken.expires_at > now,
        )
    )
    if record is None or not record.user.active:
        return None
    return record


def complete_reset(
    session: Session, token_hash: str, password: str, *, now: datetime | None = None
) -> User:
    """Set the account's password through a reset link, spending the link, and commit.

    Refused when the link is unknown, used, expired or its account disabled;
    ValidationFailed (the link unspent) when the password breaks the policy."""
    now = now or utcnow()
    record = live_reset(session, token_hash, now=now)
    if record is None:
        raise Refused(INVALID_LINK)
    user = record.user
    check_password_strength(password, user=user)
    new_hash = hash_password(password)
    # End the reading transaction, so that spending the link is the first statement of
    # the writing one (SQLite cannot upgrade an old read snapshot to a write).
    session.commit()
    spent = session.execute(
        update(PasswordResetToken)
        .where(
            PasswordResetToken.id == record.id,
            PasswordResetToken.used_at.is_(None),
            PasswordResetToken.expires_at > now,
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if getattr(spent, "rowcount", 0) != 1:
        session.rollback()
        raise Refused(INVALID_LINK)
    _supersede_unused_links(session, user.id, now)
    user.password_hash = new_hash
    user.password_changed_at = now
    # A fresh count of failures for the fresh password; locked_at stays (see above).
    user.failed_sign_ins = 0
    append_event(
        session,
        event="password_reset.completed",
        actor_id=user.id,
        payload={"user_id": user.id, "reset_id": record.id},
        occurred_at=now,
    )
    session.commit()
    return user


def change_password(
    session: Session,
    user: User,
    current: str,
    new: str,
    *,
    address: str | None = None,
    now: datetime | None = None,
) -> User:
    """A signed-in user's change of their own password, checked against the current one,
    and commit. Their unused reset links are superseded.

    The current password is checked by `authenticate`, so a wrong one counts towards the
    lockout like a failed sign-in: a borrowed session cannot guess it freely."""
    now = now or utcnow()
    if authenticate(session, user.email, current, address=address) is None:
        raise ValidationFailed(
            "The current password is wrong",
            {"current_password": "Enter your current password correctly"},
        )
    if new == current:
        raise ValidationFailed(
            "The new password is the same as the current one",
            {"password": "Choose a password different from your current one"},
        )
    check_password_strength(new, user=user)
    user.password_hash = hash_password(new)
    user.password_changed_at = now
    _supersede_unused_links(session, user.id, now)
    append_event(
        session,
        event="password.changed",
        actor_id=user.id,
        payload={"user_id": user.id},
        occurred_at=now,
    )
    session.commit()
    return user


# ---- pages ---------------------------------------------------------------------------------


def _invalid_link() -> ResponseReturnValue:
    browser_session.pop(SESSION_KEY, None)
    return render_template("auth/reset_invalid.html"), 404


@reset_bp.route("/password-reset", methods=["GET", "POST"])
def request_link() -> ResponseReturnValue:
    """Ask for a reset link by email address; the answer never says if one was sent."""
    form = ResetRequestForm()
    if form.validate_on_submit():
        request_reset(get_session(), form.email.data or "")
        flash(LINK_SENT.format(minutes=reset_minutes()), "success")
        return redirect(url_for("auth.login"))
    status = 422 if request.method == "POST" else 200
    return render_template("auth/reset_request.html", form=form), status


@reset_bp.get("/password-reset/<token>")
def open_link(token: str) -> ResponseReturnValue:
    """The emailed link: a live token moves into the session (out of the address bar and
    the browser's history) and the user is sent on to choose a password."""
    digest = token_digest(token)
    if live_reset(get_session(), digest) is None:
        return _invalid_link()
    browser_session[SESSION_KEY] = digest
    return redirect(url_for("reset.set_password"))


@reset_bp.route("/password-reset/new-password", methods=["GET", "POST"])
def set_password() -> ResponseReturnValue:
    """Choose a new password for the account of the opened link."""
    digest = browser_session.get(SESSION_KEY)
    if not isinstance(digest, str) or live_reset(get_session(), digest) is None:
        return _invalid_link()
    form = NewPasswordForm()
    if form.validate_on_submit():
        try:
            complete_reset(get_session(), digest, form.password.data or "")
        except ValidationFailed as error:
            form.password.errors = [error.errors.get("password", error.message)]
        except Refused:
            return _invalid_link()
        else:
            browser_session.pop(SESSION_KEY, None)
            flash("Your password has been changed. Sign in with your new password.", "success")
            return redirect(url_for("auth.login"))
    status = 422 if request.method == "POST" else 200
    return render_template("auth/reset_set_password.html", form=form), status


@reset_bp.route("/account/password", methods=["GET", "POST"])
@permits(Action.MANAGE_OWN_ACCOUNT)
def change_own_password() -> ResponseReturnValue:
    """A signed-in user changes their own password (the current one first). Their other
    sessions end; this one continues as a fresh session."""
    form = ChangePasswordForm()
    # The user itself, not the proxy: login_user keeps what it is given as the current user.
    user = cast(User, current_user._get_current_object())
    if form.validate_on_submit():
        try:
            change_password(
                get_session(),
                user,
                form.current_password.data or "",
                form.password.data or "",
                address=request.remote_addr,
            )
        except ValidationFailed as error:
            for name, message in (error.errors or {"password": error.message}).items():
                field = form.current_password if name == "current_password" else form.password
                field.errors = [message]
        else:
            begin_session(user)
            flash("Your password has been changed.", "success")
            return redirect(url_for("dashboard.home"))
    status = 422 if request.method == "POST" else 200
    return render_template("auth/reset_change_password.html", form=form), status
