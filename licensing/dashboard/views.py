"""The dashboard at `/`: the police team's day, a council user's shared bundles and
premises, or an administrator's register and failed emails."""

from __future__ import annotations

from typing import cast

from flask import Blueprint, render_template
from flask.typing import ResponseReturnValue
from flask_login import current_user

from licensing.auth.matrix import Action, permits
from licensing.auth.models import Role, User
from licensing.dashboard import services
from licensing.db import get_session, utcnow

dashboard_bp = Blueprint("dashboard", __name__)


@dashboard_bp.get("/")
@permits(Action.VIEW_DASHBOARD)
def home() -> ResponseReturnValue:
    """Home: each role's dashboard, counted live from the database."""
    user = cast(User, current_user)
    session = get_session()
    if user.role == Role.COUNCIL:
        return render_template(
            "dashboard/council.html", dash=services.council_dashboard(session, user, utcnow())
        )
    if user.role == Role.ADMIN:
        return render_template("dashboard/admin.html", dash=services.admin_dashboard(session, user))
    return render_template(
        "dashboard/police.html", dash=services.police_dashboard(session, user, utcnow())
    )
