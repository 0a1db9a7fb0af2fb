"""API routes for incidents: ingest from police systems (idempotent, batched) and the
incidents linked to a premises."""

from __future__ import annotations

from typing import Any

from flask import jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from licensing.api import api_bp, api_user, error_response, requires_scope
from licensing.api.views import refuse_lone_surrogates
from licensing.auth.models import POLICE_ROLES, Role
from licensing.db import get_session
from licensing.errors import Forbidden, NotFound, ValidationFailed
from licensing.incidents import recommendations, services
from licensing.incidents.models import Incident, PremisesIncidentLink
from licensing.premises import services as premises_services

MAX_BATCH = 1000


def incident_json(incident: Incident, with_people: bool) -> dict[str, Any]:
    """An incident as the API shows it; people only to the police."""
    body: dict[str, Any] = {
        "id": incident.id,
        "source": incident.source,
        "source_ref": incident.source_ref,
        "occurred_at": incident.occurred_at.isoformat() if incident.occurred_at else None,
        "month": incident.month,
        "approximate": incident.approximate,
        "category": incident.category,
        "description": incident.description,
        "location": incident.location_text,
        "latitude": incident.latitude,
        "longitude": incident.longitude,
        "outcome": incident.outcome,
    }
    if with_people:
        body["personal_data"] = {"people": services.people_json(incident)}
    return body


def _require_ingest_role() -> None:
    user = api_user()
    if user.role not in POLICE_ROLES:
        if user.role == Role.COUNCIL:
            raise NotFound("Not found")
        raise Forbidden("Only police systems and officers can send incidents")


def _check_item(item: Any) -> None:
    if not isinstance(item, dict):
        raise ValidationFailed("Each incident must be a JSON object")
    source_ref = item.get("source_ref")
    # Blank text is missing too: otherwise a batch item with a blank reference passes
    # here and fails later in record_incident, refusing the whole batch.
    if source_ref is None or (isinstance(source_ref, str) and not source_ref.strip()):
        raise ValidationFailed(
            "source_ref is required so that a retry is recognised", {"source_ref": "Required"}
        )


@api_bp.post("/incidents")
@requires_scope("ingest")
def incidents_create() -> ResponseReturnValue:
    """Record one incident, or a batch {"items": [...], "atomic": false} of up to 1,000.
    Idempotent on (source, source_ref): a retry returns the incident already held."""
    _require_ingest_role()
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # absurdly deep nesting is malformed input, not a server error
        body = None
    if not isinstance(body, dict):
        raise ValidationFailed("The request body must be a JSON object")
    refuse_lone_surrogates(body)
    session = get_session()
    user = api_user()
    if "items" not in body:
        _check_item(body)
        recorded = services.record_incident(session, user, body)
        recommendations.evaluate(session, _confirmed_premises(recorded.incident.id))
        return jsonify(
            incident_json(recorded.incident, True) | {"created": recorded.created}
        ), 201 if recorded.created else 200

    items = body["items"]
    atomic = body.get("atomic", False)
    if not isinstance(atomic, bool):  # "false" as text must not mean true
        raise ValidationFailed("atomic must be true or false", {"atomic": "Must be a boolean"})
    if not isinstance(items, list) or not items:
        raise ValidationFailed("items must be a non-empty list", {"items": "Required"})
    if len(items) > MAX_BATCH:
        raise ValidationFailed(
            f"A batch holds at most {MAX_BATCH} incidents", {"items": f"At most {MAX_BATCH}"}
        )
    # Validate everything first: an atomic batch with any bad item stores nothing.
    errors: dict[int, ValidationFailed] = {}
    for index, item in enumerate(items):
        try:
            _check_item(item)
            services.clean_incident(item)
        except ValidationFailed as error:
            errors[index] = error
    if atomic and errors:
        return error_response(
            422,
            "invalid",
            f"{len(errors)} of {len(items)} incidents are invalid; none were stored",
            results=[_error_result(i, e) for i, e in sorted(errors.items())],
        )
    results: list[dict[str, Any]] = []
    touched: set[int] = set()
    seen: dict[tuple[str, str], int] = {}
    for index, item in enumerate(items):
        if index in errors:
            results.append(_error_result(index, errors[index]))
            continue
        key = (str(item.get("source") or "manual"), str(item["source_ref"]))
        recorded = services.record_incident(session, user, item, commit=False)
        session.flush()
        status = "created" if recorded.created and key not in seen else "duplicate"
        seen[key] = recorded.incident.id
        results.append({"index": index, "status": status, "id": recorded.incident.id})
        touched.update(_confirmed_premises(recorded.incident.id))
    session.commit()
    if touched:
        recommendations.evaluate(session, sorted(touched))
    counts = {
        s: sum(1 for r in results if r["status"] == s) for s in ("created", "duplicate", "error")
    }
    return jsonify(results=results, **counts), 200


def _error_result(index: int, error: ValidationFailed) -> dict[str, Any]:
    return {"index": index, "status": "error", "message": error.message, "fields": error.errors}


def _confirmed_premises(incident_id: int) -> list[int]:
    return list(
        get_session().scalars(
            select(PremisesIncidentLink.premises_id).where(
                PremisesIncidentLink.incident_id == incident_id,
                PremisesIncidentLink.status == "confirmed",
            )
        )
    )


@api_bp.get("/premises/<int:premises_id>/incidents")
@requires_scope("read")
def premises_incidents(premises_id: int) -> ResponseReturnValue:
    """Incidents linked to a premises (`status` confirmed by default, or suggested)."""
    user = api_user()
    session = get_session()
    premises = premises_services.get_premises(session, user, premises_id)
    status = request.args.get("status", "confirmed")
    if status not in ("confirmed", "suggested"):
        return error_response(400, "bad_status", "status must be confirmed or suggested")
    if status == "suggested" and not user.is_police:
        raise NotFound("Not found")
    links = services.linked_incidents(session, premises.id, status)
    return jsonify(
        items=[
            incident_json(link.incident, user.is_police)
            | {
                "link": {
                    "id": link.id,
                    "status": link.status,
                    "method": link.method,
                    "distance_m": link.distance_m,
                }
            }
            for link in links
        ],
        next_cursor=None,
    )
