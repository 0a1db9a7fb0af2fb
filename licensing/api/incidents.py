"""API routes for incidents: ingest from police systems (idempotent, batched) and the
incidents linked to a premises."""

from __future__ import annotations

from typing import Any

from flask import jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from licensing.api import api_bp, api_user, error_response, requires_scope
from licensing.api.views import cursor, page_size, refuse_lone_surrogates
from licensing.auth.matrix import Action, allowed, permits, require
from licensing.db import get_session
from licensing.errors import ValidationFailed
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
    month = item.get("month")
    year = month.partition("-")[0] if isinstance(month, str) else ""
    if len(year) == 4 and year.isdecimal() and int(year) == 0:
        # The calendar has no year 0: refused here, where the month's date would fail.
        raise ValidationFailed("month: there is no year 0000", {"month": "Must be YYYY-MM"})
    _check_personal_fields(item.get("personal_data"))


PERSON_KEYS = frozenset({"role", *services.PERSON_FIELDS})


def _check_personal_fields(personal: Any) -> None:
    # Personal data the service does not keep must be refused, never silently dropped:
    # the sender would believe it was stored. (Shapes and values are the service's.)
    if not isinstance(personal, dict):
        return
    unknown = sorted(set(personal) - {"people"})
    people = personal.get("people")
    for index, person in enumerate(people if isinstance(people, list) else []):
        if isinstance(person, dict):
            unknown += [f"people[{index}].{key}" for key in sorted(set(person) - PERSON_KEYS)]
    if unknown:
        raise ValidationFailed(
            f"Unknown personal data fields: {', '.join(unknown)}",
            {f"personal_data.{name}": "Unknown field" for name in unknown},
        )


@api_bp.post("/incidents")
@requires_scope("ingest")
@permits(Action.RECORD_INCIDENT)
def incidents_create() -> ResponseReturnValue:
    """Record one incident, or a batch {"items": [...], "atomic": false} of up to 1,000.
    Idempotent on (source, source_ref): a retry returns the incident already held."""
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

    unknown = sorted(set(body) - {"items", "atomic"})
    if unknown:  # a misspelt "atomic" must not quietly mean a partial batch
        raise ValidationFailed(
            f"Unknown fields: {', '.join(unknown)}", {name: "Unknown field" for name in unknown}
        )
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
@permits(Action.VIEW_PREMISES)
def premises_incidents(premises_id: int) -> ResponseReturnValue:
    """Incidents linked to a premises (`status` confirmed by default, or suggested),
    newest first, a keyset page at a time (`limit`, `cursor`)."""
    user = api_user()
    session = get_session()
    premises = premises_services.get_premises(session, user, premises_id)
    status = request.args.get("status") or "confirmed"  # sent empty counts as absent
    if status not in ("confirmed", "suggested"):
        return error_response(400, "bad_status", "status must be confirmed or suggested")
    if status == "suggested":
        require(user, Action.REVIEW_LINK_SUGGESTIONS)
    with_people = allowed(user, Action.VIEW_PEOPLE)
    # Keyset pages (a premises may have thousands): the cursor is the last incident's id.
    links, next_cursor = services.linked_incidents_page(
        session,
        premises.id,
        status,
        after_incident_id=cursor(),
        limit=page_size(),
        with_people=with_people,
    )
    return jsonify(
        items=[
            incident_json(link.incident, with_people)
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
        next_cursor=str(next_cursor) if next_cursor is not None else None,
    )
