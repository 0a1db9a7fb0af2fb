"""API routes for the premises register and its workflow."""

from __future__ import annotations

import re
from typing import Any

from flask import current_app, jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy import Row, String, select

from licensing.api import MAX_ID, api_bp, api_user, requires_scope
from licensing.api.openapi import openapi_document
from licensing.auth.matrix import Action, permits
from licensing.auth.models import POLICE_ROLES, User
from licensing.db import get_session
from licensing.errors import DomainError, NotFound, ValidationFailed
from licensing.premises import services, workflow
from licensing.premises.models import Premises

TRANSITION_RESERVED = ("event", "version", "reason")
# Every parameter any event takes; anything else in a transition body is refused.
TRANSITION_PARAMETERS = tuple(
    sorted({name for rule in workflow.EVENT_RULES.values() for name in rule.parameters})
)
# Fields POST /premises accepts: the core two, the editable ones, and the officer's email.
CREATE_FIELDS = (
    "authority",
    "licence_number",
    *(name for name in services.EDITABLE_FIELDS if name != "case_officer_id"),
    "case_officer",
)
TEXT_FIELDS = tuple(name for name in CREATE_FIELDS if name not in ("latitude", "longitude", "uprn"))
# Cursors are ids (premises) or sequence numbers (history): plain ASCII digits, and small
# enough for a 64-bit integer on every database.
_CURSOR = re.compile(r"[0-9]{1,18}")
# A page size is a JSON Schema integer, which 50.0 also is.
_WHOLE_NUMBER = re.compile(r"([0-9]{1,18})(?:\.0+)?")


class BadRequest(DomainError):
    """A query parameter the API cannot use (a cursor, a limit, a state)."""

    code = "bad_request"
    status = 400

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        if code:
            self.code = code


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


def summary_json(row: Row[Any]) -> dict[str, Any]:
    """A premises as the API shows it, from a `services.PREMISES_SUMMARY` row: the same
    keys and values as `premises_json` gives for the premises itself."""
    item = dict(row._mapping)
    item["updated_at"] = row.updated_at.isoformat()
    return item


def refuse_lone_surrogates(body: Any) -> None:
    """Raise ValidationFailed if any key or text in a parsed JSON body holds a lone
    surrogate (such as "\\ud800"): JSON may escape one, but it is not text and no
    database can store it (the driver would fail with a 500). Walked without recursion,
    since the body may nest as deep as the parser allowed."""
    pending = [body]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
        elif isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise ValidationFailed(
                    "The request body holds text that is not valid Unicode (a lone surrogate)"
                ) from None


def _holds_nul(value: Any) -> bool:
    pending = [value]
    while pending:  # without recursion, as in refuse_lone_surrogates
        item = pending.pop()
        if isinstance(item, str) and "\x00" in item:
            return True
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def refuse_nul_characters(body: dict[str, Any]) -> None:
    """Raise ValidationFailed naming each field whose text holds a NUL character (at
    any depth): PostgreSQL can neither store nor compare one, which would be a 500."""
    fields = sorted(name for name, value in body.items() if _holds_nul(name) or _holds_nul(value))
    if fields:
        raise ValidationFailed(
            "Text must not contain NUL characters",
            {name: "Must not contain NUL characters" for name in fields},
        )


def _json_body() -> dict[str, Any]:
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # absurdly deep nesting is malformed input, not a server error
        body = None
    if not isinstance(body, dict):
        raise ValidationFailed("The request body must be a JSON object")
    refuse_lone_surrogates(body)
    refuse_nul_characters(body)
    return body


def page_size() -> int:
    """The `limit` query parameter (the API's default page size when absent)."""
    default = int(current_app.config["API_PAGE_SIZE"])
    largest = int(current_app.config["API_MAX_PAGE_SIZE"])
    raw = request.args.get("limit")
    if raw is None or raw == "":
        return default
    whole = _WHOLE_NUMBER.fullmatch(raw)
    if not whole or not 1 <= int(whole.group(1)) <= largest:
        raise BadRequest(f"limit must be a whole number from 1 to {largest}", "bad_limit")
    return int(whole.group(1))


def cursor() -> int | None:
    """The `cursor` query parameter: the next_cursor of a previous page, or None."""
    raw = request.args.get("cursor")
    if raw is None or raw == "":
        return None
    if not _CURSOR.fullmatch(raw):
        raise BadRequest("cursor must be the next_cursor of a previous page", "bad_cursor")
    # Past the largest id there is, the page is the same (empty), and the database
    # cannot compare an id column with a larger number.
    return min(int(raw), MAX_ID)


@api_bp.get("/premises")
@requires_scope("read")
@permits(Action.VIEW_REGISTER)
def premises_index() -> ResponseReturnValue:
    """List premises the token's user may see: filters state, authority, q; keyset cursor."""
    after = cursor()
    limit = page_size()
    filters = services.PremisesFilter(
        state=request.args.get("state") or None,
        authority=request.args.get("authority") or None,
        q=request.args.get("q") or None,
    )
    if filters.state and filters.state not in workflow.STATES:
        raise BadRequest(f"state must be one of {', '.join(workflow.STATES)}", "bad_state")
    if "\x00" in (filters.authority or "") + (filters.q or ""):
        # No name, licence number, postcode or code holds a NUL, so nothing matches; the
        # database is not asked (PostgreSQL cannot compare text holding one).
        return jsonify(items=[], next_cursor=None)
    items, next_cursor = services.premises_after(get_session(), api_user(), filters, after, limit)
    return jsonify(
        items=[summary_json(row) for row in items],
        next_cursor=str(next_cursor) if next_cursor is not None else None,
    )


def _column_length(name: str) -> int | None:
    column_type = Premises.__table__.c[name].type
    return column_type.length if isinstance(column_type, String) else None


def _case_officer(email: Any) -> User:
    if not isinstance(email, str) or not email.strip():
        raise ValidationFailed(
            "case_officer must be the email of a police user", {"case_officer": "Must be an email"}
        )
    officer = get_session().scalar(select(User).where(User.email == email.strip().lower()))
    if officer is None or officer.role not in POLICE_ROLES or not officer.active:
        raise ValidationFailed(
            "case_officer must be the email of an active police licensing user",
            {"case_officer": "Not an active police licensing user"},
        )
    return officer


@api_bp.post("/premises")
@requires_scope("workflow")
@permits(Action.ADD_PREMISES)
def premises_create() -> ResponseReturnValue:
    """Add a premises; `case_officer` (an email) defaults to the token's user."""
    user = api_user()
    body = _json_body()
    unknown = sorted(set(body) - set(CREATE_FIELDS))
    if unknown:
        raise ValidationFailed(
            f"Unknown fields: {', '.join(unknown)}", {name: "Unknown field" for name in unknown}
        )
    errors: dict[str, str] = {}
    for name in ("authority", "licence_number", "name"):
        if not isinstance(body.get(name), str) or not body[name].strip():
            errors[name] = "Required"
    for name in TEXT_FIELDS:
        value = body.get(name)
        if name in errors or value is None:
            continue
        if not isinstance(value, str):
            errors[name] = "Must be text"
            continue
        length = _column_length(name) if name in Premises.__table__.c else None
        if length is not None and len(value.strip()) > length:
            errors[name] = f"At most {length} characters"
    for name in ("latitude", "longitude"):
        value = body.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float | str | None):
            errors[name] = "Must be a number"
    uprn = body.get("uprn")
    if isinstance(uprn, bool) or not isinstance(uprn, int | str | None):
        errors["uprn"] = "Must be text of up to 12 digits"
    if errors:
        raise ValidationFailed(
            "; ".join(f"{name}: {message}" for name, message in errors.items()), errors
        )
    session = get_session()
    try:
        authority = services.authority_by_code(session, body["authority"])
    except NotFound:
        raise ValidationFailed(
            f"No licensing authority with code {body['authority']!r}",
            {"authority": "Unknown authority code"},
        ) from None
    details = {k: body[k] for k in services.EDITABLE_FIELDS if k in body}
    if isinstance(details.get("uprn"), int):
        details["uprn"] = str(details["uprn"])
    if body.get("case_officer") is not None:
        details["case_officer_id"] = _case_officer(body["case_officer"]).id
    premises = services.add_premises(
        session, user, authority, body["licence_number"], details, source="api"
    )
    return jsonify(premises_json(premises)), 201


def _visible(premises_id: int) -> Premises:
    return services.get_premises(get_session(), api_user(), premises_id)


@api_bp.get("/premises/<int:premises_id>")
@requires_scope("read")
@permits(Action.VIEW_PREMISES)
def premises_show(premises_id: int) -> ResponseReturnValue:
    """One premises, with its state and version."""
    return jsonify(premises_json(_visible(premises_id)))


@api_bp.post("/premises/<int:premises_id>/transitions")
@requires_scope("workflow")
@permits(Action.TRANSITION_WORKFLOW)
def premises_transition(premises_id: int) -> ResponseReturnValue:
    """Take a workflow event: {"event", "version", "reason", ...parameters}."""
    user = api_user()
    premises = _visible(premises_id)
    body = _json_body()
    unknown = sorted(set(body) - set(TRANSITION_RESERVED) - set(TRANSITION_PARAMETERS))
    if unknown:
        raise ValidationFailed(
            f"Unknown fields: {', '.join(unknown)}", {name: "Unknown field" for name in unknown}
        )
    event = body.get("event")
    if not isinstance(event, str):
        raise ValidationFailed("event is required", {"event": "Required"})
    version = body.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ValidationFailed(
            "version must be the integer version you last saw", {"version": "Required"}
        )
    reason = body.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise ValidationFailed("reason must be text", {"reason": "Must be text"})
    params = {k: v for k, v in body.items() if k not in TRANSITION_RESERVED}
    result = services.apply_event(get_session(), premises, user, event, version, reason, params)
    return jsonify(premises_json(result.premises) | {"event_id": result.event.id})


@api_bp.get("/premises/<int:premises_id>/history")
@requires_scope("read")
@permits(Action.VIEW_PREMISES)
def premises_history(premises_id: int) -> ResponseReturnValue:
    """The premises' audit events, newest first; keyset pages by sequence number."""
    before = cursor()
    limit = page_size()
    premises = _visible(premises_id)
    # One page more than asked for tells whether there is a next page.
    entries = services.history(get_session(), premises, before_seq=before, limit=limit + 1)
    page = entries[:limit]
    next_cursor = str(page[-1].event.seq) if len(entries) > limit else None
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
                "prev_hash": e.event.prev_hash,
                "hash": e.event.content_hash,
            }
            for e in page
        ],
        next_cursor=next_cursor,
    )


@api_bp.get("/openapi.json")
@requires_scope("read")
@permits(Action.READ_API_DESCRIPTION)
def openapi() -> ResponseReturnValue:
    """The OpenAPI 3.1 description of this API."""
    return jsonify(openapi_document())
