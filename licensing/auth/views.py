"""Sign in and out, the session loader, and the app-wide login requirement."""

from __future__ import annotations

import time
from typing import cast
from urllib.parse import urlsplit

from flask import Blueprint, Flask, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_login import LoginManager, current_user, logout_user

from licensing.auth.forms import SignInForm
from licensing.auth.matrix import Action, permits
from licensing.auth.models import User
from licensing.auth.public import PUBLIC_ENDPOINTS, SECRET_BEARING_ENDPOINTS
from licensing.auth.services import authenticate, record_sign_out, signed_in_user
from licensing.auth.signin import LAST_SEEN_AT, SIGNED_IN_AT, begin_session
from licensing.db import get_session

auth_bp = Blueprint("auth", __name__)
login_manager = LoginManager()

# Requests that neither count as activity nor end a session: the API (bearer tokens),
# static files, the health probe and the token-bearing calendar feed.
_UNTIMED_ENDPOINTS = frozenset({"static", "health.healthz"}) | SECRET_BEARING_ENDPOINTS


def init_app(app: Flask) -> None:
    """Wire Flask-Login and refuse every non-public endpoint to anonymous requests."""
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Sign in to continue."
    login_manager.login_message_category = "info"
    login_manager.session_protection = "strong"

    @login_manager.user_loader
    def _load_user(user_id: str) -> User | None:
        try:
            return signed_in_user(get_session(), int(user_id))
        except ValueError:
            return None

    @app.before_request
    def expire_idle_sessions() -> ResponseReturnValue | None:
        """Sign out a session idle longer than SESSION_IDLE_MINUTES, older than
        SESSION_ABSOLUTE_HOURS, or begun before its user's password last changed (a reset
        must shut out whoever else was signed in with the old password); otherwise note
        this request as activity."""
        endpoint = request.endpoint or ""
        if (
            endpoint in _UNTIMED_ENDPOINTS
            or endpoint.startswith("api.")
            or request.path.startswith("/api/")
            or not current_user.is_authenticated
        ):
            return None
        now = int(time.time())
        idle_minutes = int(app.config["SESSION_IDLE_MINUTES"])
        absolute_hours = int(app.config["SESSION_ABSOLUTE_HOURS"])
        signed_in_at = session.get(SIGNED_IN_AT)
        last_seen_at = session.get(LAST_SEEN_AT)
        changed_at = cast(User, current_user).password_changed_at
        message = None
        if not isinstance(signed_in_at, int) or not isinstance(last_seen_at, int):
            message = "Your session has ended. Sign in again."
        # Whole seconds, as SIGNED_IN_AT is: a sign-in in the same second as the change
        # (with the new password) keeps its session.
        elif changed_at is not None and int(changed_at.timestamp()) > signed_in_at:
            message = "Your password was changed. Sign in again."
        elif now - signed_in_at > absolute_hours * 3600:
            message = f"You were signed out {absolute_hours} hours after signing in"
        elif now - last_seen_at > idle_minutes * 60:
            message = f"You were signed out after {idle_minutes} minutes without activity"
        if message is None:
            session[LAST_SEEN_AT] = now
            return None
        logout_user()
        session.clear()
        flash(message, "info")
        resume = request.method == "GET" and endpoint != "auth.login"
        target = request.full_path.rstrip("?") if resume else None
        return redirect(url_for("auth.login", next=target))

    @app.before_request
    def require_login() -> ResponseReturnValue | None:
        """Deny by default: only endpoints in PUBLIC_ENDPOINTS skip the sign-in check.
        The API blueprint checks its own bearer tokens."""
        endpoint = request.endpoint or ""
        if endpoint in PUBLIC_ENDPOINTS or endpoint in SECRET_BEARING_ENDPOINTS:
            return None
        if endpoint.startswith("api.") or (not endpoint and request.path.startswith("/api/")):
            # API routes check bearer tokens themselves; an unknown API path answers a
            # JSON 404 rather than a redirect to the sign-in page.
            return None
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        return None


def _safe_next(target: str | None) -> str:
    # Only same-site relative paths: never redirect off-site after sign-in. Browsers read
    # a backslash as a slash ("/\\evil.example" is "//evil.example") and drop tabs and
    # newlines, so a target holding any of them is refused too.
    if (
        target
        and target.startswith("/")
        and not target.startswith("//")
        and not any(c == "\\" or ord(c) < 32 for c in target)
        and not urlsplit(target).netloc
    ):
        return target
    return url_for("dashboard.home")


@auth_bp.route("/sign-in", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    """Sign in with email and password."""
    if current_user.is_authenticated:
        return redirect(url_for("dashboard.home"))
    form = SignInForm()
    if form.validate_on_submit():
        user = authenticate(
            get_session(),
            form.email.data or "",
            form.password.data or "",
            address=request.remote_addr,
        )
        if user is None:
            form.email.errors = ["Enter a correct email address and password"]
        else:
            begin_session(user)
            return redirect(_safe_next(request.args.get("next")))
    return render_template("auth/login.html", form=form)


@auth_bp.post("/sign-out")
@permits(Action.MANAGE_OWN_ACCOUNT)
def logout() -> ResponseReturnValue:
    """Sign out (a POST, so a link elsewhere cannot sign someone out)."""
    record_sign_out(get_session(), cast(User, current_user))
    logout_user()
    flash("You have signed out.", "success")
    return redirect(url_for("auth.login"))
