"""API routes for the premises register and its workflow."""

from __future__ import annotations

from typing import Any

from flask import current_app, jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from licensing.api import api_bp, api_user, error_response
from licensing.api.openapi import openapi_document
from licensing.auth.models import POLICE_ROLES, User
from licensing.db import get_session
from licensing.errors import Forbidden, NotFound, ValidationFailed
from licensing.premises import services, workflow
from licensing.premises.models import Premises

CORE_FIELDS = ("authority", "licence_number")
TRANSITION_RESERVED = ("event", "version", "reason")


def premises_json(premises: Premises) -> dict[str, Any]:
    """A premises as the API shows it."""
    return {
        "id": premises.id,
        "authority": premises.authority.code,
        "licence_number": premises.licence_number,
        "name": premises.name,
        "address": premises.address,
        "postcode": premises.postcode,
        "uprn": premises.uprn,
        "latitude": premises.latitude,
        "longitude": premises.longitude,
        "licence_holder": premises.licence_holder,
        "dps": premises.dps,
        "licensable_activities": premises.licensable_activities,
        "opening_hours": premises.opening_hours,
        "licence_status": premises.licence_status,
        "case_officer": premises.case_officer.email if premises.case_officer else None,
        "state": premises.state,
        "version": premises.version,
        "updated_at": premises.updated_at.isoformat(),
    }


def _json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ValidationFailed("The request body must be a JSON object")
    return body


def _page_size() -> int:
    default = int(current_app.config["API_PAGE_SIZE"])
    limit = request.args.get("limit", default, type=int) or default
    return max(1, min(limit, int(current_app.config["API_MAX_PAGE_SIZE"])))


@api_bp.get("/premises")
def premises_index() -> ResponseReturnValue:
    """List premises the token's user may see: filters state, authority, q; keyset cursor."""
    cursor = request.args.get("cursor")
    after = None
    if cursor:
        if not cursor.isdigit():
            return error_response(400, "bad_cursor", "cursor must be the next_cursor of a previous page")
        after = int(cursor)
    filters = services.PremisesFilter(
        state=request.args.get("state") or None,
        authority=request.args.get("authority") or None,
        q=request.args.get("q") or None,
    )
    if filters.state and filters.state not in workflow.STATES:
        return error_response(400, "bad_state", f"state must be one of {', '.join(workflow.STATES)}")
    items, next_cursor = services.premises_after(get_session(), api_user(), filters, after, _page_size())
    return jsonify(
        items=[premises_json(p) for p in items],
        next_cursor=str(next_cursor) if next_cursor is not None else None,
    )


@api_bp.post("/premises")
def premises_create() -> ResponseReturnValue:
    """Add a premises; `case_officer` (an email) defaults to the token's user."""
    user = api_user()
    if user.role not in POLICE_ROLES:
        raise NotFound("Not found") if user.is_council else Forbidden("Only the police licensing team can add premises")
    body = _json_body()
    session = get_session()
    authority_code = body.get("authority")
    if not isinstance(authority_code, str) or not authority_code.strip():
        raise ValidationFailed("authority (a licensing authority code) is required", {"authority": "Required"})
    licence_number = body.get("licence_number")
    if not isinstance(licence_number, str):
        raise ValidationFailed("licence_number is required", {"licence_number": "Required"})
    authority = services.authority_by_code(session, authority_code)
    details = {k: body[k] for k in services.EDITABLE_FIELDS if k in body and k != "case_officer_id"}
    if not isinstance(details.get("name", ""), str):
        raise ValidationFailed("name must be text", {"name": "Must be text"})
    for key, value in details.items():
        if key not in ("latitude", "longitude") and value is not None and not isinstance(value, str):
            raise ValidationFailed(f"{key} must be text", {key: "Must be text"})
    officer_email = body.get("case_officer")
    if officer_email is not None:
        officer = session.scalar(select(User).where(User.email == str(officer_email).strip().lower()))
        if officer is None:
            raise ValidationFailed("case_officer must be the email of a police user", {"case_officer": "Unknown user"})
        details["case_officer_id"] = officer.id
    premises = services.add_premises(session, user, authority, licence_number, details, source="api")
    return jsonify(premises_json(premises)), 201


def _visible(premises_id: int) -> Premises:
    return services.get_premises(get_session(), api_user(), premises_id)


@api_bp.get("/premises/<int:premises_id>")
def premises_show(premises_id: int) -> ResponseReturnValue:
    """One premises, with its state and version."""
    return jsonify(premises_json(_visible(premises_id)))


@api_bp.post("/premises/<int:premises_id>/transitions")
def premises_transition(premises_id: int) -> ResponseReturnValue:
    """Take a workflow event: {"event", "version", "reason", ...parameters}."""
    premises = _visible(premises_id)
    body = _json_body()
    event = body.get("event")
    if not isinstance(event, str):
        raise ValidationFailed("event is required", {"event": "Required"})
    version = body.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ValidationFailed("version must be the integer version you last saw", {"version": "Required"})
    reason = body.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise ValidationFailed("reason must be text", {"reason": "Must be text"})
    params = {k: v for k, v in body.items() if k not in TRANSITION_RESERVED}
    result = services.apply_event(get_session(), premises, api_user(), event, version, reason, params)
    return jsonify(premises_json(result.premises) | {"event_id": result.event.id})


@api_bp.get("/premises/<int:premises_id>/history")
def premises_history(premises_id: int) -> ResponseReturnValue:
    """The premises' audit events, newest first."""
    premises = _visible(premises_id)
    entries = services.history(get_session(), premises)
    return jsonify(
        items=[
            {
                "id": e.event.id,
                "seq": e.event.seq,
                "event": e.event.event,
                "occurred_at": e.event.occurred_at.isoformat(),
                "actor": e.actor_name,
                "from_state": e.event.from_state,
                "to_state": e.event.to_state,
                "reason": e.event.reason,
                "payload": e.payload,
                "hash": e.event.content_hash,
            }
            for e in entries
        ],
        next_cursor=None,
    )


@api_bp.get("/openapi.json")
def openapi() -> ResponseReturnValue:
    """The OpenAPI 3.1 description of this API."""
    return jsonify(openapi_document())
