"""API route for a premises' statutory deadlines."""

from __future__ import annotations

from flask import jsonify
from flask.typing import ResponseReturnValue

from licensing.api import api_bp, api_user, requires_scope
from licensing.auth.matrix import Action, permits
from licensing.db import get_session
from licensing.deadlines.services import premises_deadlines
from licensing.premises import services as premises_services


@api_bp.get("/premises/<int:premises_id>/deadlines")
@requires_scope("read")
@permits(Action.VIEW_PREMISES)
def premises_deadlines_index(premises_id: int) -> ResponseReturnValue:
    """The premises' deadlines, soonest first: kind, due (ISO date, or UTC date-time for
    hour rules), rule, status."""
    session = get_session()
    premises = premises_services.get_premises(session, api_user(), premises_id)
    return jsonify(
        items=[
            {
                "kind": d.kind,
                "due": d.due_iso,
                "rule": d.rule,
                "status": d.status,
                "review_id": d.review_id,
            }
            for d in premises_deadlines(session, premises.id)
        ],
        next_cursor=None,
    )
