"""The team calendar: deadlines and visits, overdue first, then by day."""

from __future__ import annotations

from typing import cast

from flask import Blueprint, render_template
from flask.typing import ResponseReturnValue
from flask_login import current_user

from licensing.auth.matrix import Action, permits
from licensing.auth.models import User
from licensing.db import get_session
from licensing.deadlines.services import team_calendar
from licensing.timeutil import london_today

deadlines_bp = Blueprint("deadlines", __name__)


@deadlines_bp.get("/calendar")
@permits(Action.VIEW_CALENDAR)
def calendar_page() -> ResponseReturnValue:
    """Deadlines (and, for the police, visits) from anything overdue to 8 weeks ahead."""
    user = cast(User, current_user)
    today = london_today()
    entries = team_calendar(get_session(), user, today)
    return render_template(
        "deadlines/calendar.html",
        today=today,
        overdue=[e for e in entries if e.overdue],
        upcoming=[e for e in entries if not e.overdue],
    )
