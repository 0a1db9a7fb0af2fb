"""Map and charts pages.

Both are read-only and open to every role: officers and supervisors, admin (who already
reads the whole register and the incidents), and council users, who see only what the
council rule lets them see (their own authority's premises under review or in action),
since every figure is computed over `premises_visible_to(user)`.
"""

from __future__ import annotations

from typing import cast

from flask import Blueprint, current_app, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from licensing.auth.matrix import COUNCIL_VISIBLE_STATES, Action, Scope, grant_for, permits
from licensing.auth.models import User
from licensing.db import get_session
from licensing.premises.workflow import STATES
from licensing.reports import services
from licensing.reports.charts import category_chart, state_chart

reports_bp = Blueprint("reports", __name__)


def _user() -> User:
    return cast(User, current_user)


def _force_wide(user: User) -> bool:
    """True when the user's grant to see reports reaches every authority."""
    grant = grant_for(user, Action.VIEW_REPORTS)
    return grant is not None and grant.scope is Scope.ANY


def _chosen_authority(user: User, codes: list[str]) -> str | None:
    """The authority code asked for, if it is one the user may choose; a council user
    is always held to their own."""
    if not _force_wide(user):
        return codes[0] if codes else None
    asked = (request.args.get("authority") or "").strip().upper()
    return asked if asked in codes else None


@reports_bp.get("/map")
@permits(Action.VIEW_REPORTS)
def map_page() -> ResponseReturnValue:
    """Premises on a map, coloured by state, with their recent incidents as circles; the
    table below lists the same premises and is the page's accessible equivalent."""
    session = get_session()
    user = _user()
    authorities = services.authorities_for(session, user)
    state = request.args.get("state")
    filters = services.MapFilter(
        state=state if state in STATES else None,
        authority=_chosen_authority(user, [a.code for a in authorities]),
    )
    items = services.map_premises(session, user, filters)
    data = services.map_json(
        items,
        str(current_app.config["MAP_TILE_URL"]),
        str(current_app.config["MAP_TILE_ATTRIBUTION"]),
        lambda premises_id: url_for("premises.show", premises_id=premises_id),
    )
    return render_template(
        "reports/map.html",
        items=items,
        located=sum(1 for item in items if item.located),
        data=data,
        filters=filters,
        authorities=authorities,
        states=STATES if _force_wide(user) else list(COUNCIL_VISIBLE_STATES),
        state_initials=services.STATE_INITIALS,
        density_days=services.DENSITY_DAYS,
        density_legend=[(n, services.density_radius(n)) for n in services.DENSITY_LEGEND],
    )


@reports_bp.get("/reports")
@permits(Action.VIEW_REPORTS)
def charts_page() -> ResponseReturnValue:
    """Premises by state at each month-end, and confirmed incidents by category, over
    the last 12 months, for one authority or all of them."""
    session = get_session()
    user = _user()
    authorities = services.authorities_for(session, user)
    authority = _chosen_authority(user, [a.code for a in authorities])
    states = services.states_over_time(session, user, authority)
    categories = services.incidents_by_category(session, user, authority)
    return render_template(
        "reports/charts.html",
        authorities=authorities,
        authority=authority,
        authority_name=next((a.name for a in authorities if a.code == authority), None),
        state_chart=state_chart(states),
        category_chart=category_chart(categories),
    )
