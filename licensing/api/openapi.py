"""The OpenAPI 3.1 document served at /api/v1/openapi.json.

Enumerations (states, events, outcomes, licence statuses) come from the code that
enforces them, so the document cannot drift from the workflow.
"""

from __future__ import annotations

import copy
from typing import Any

from licensing.api import MAX_ID
from licensing.auth.models import API_SCOPES
from licensing.deadlines.models import KINDS as DEADLINE_KINDS
from licensing.incidents.models import CATEGORIES, LINK_METHODS, PERSON_ROLES, SOURCES
from licensing.incidents.services import MAX_PEOPLE, PERSON_FIELD_LIMITS
from licensing.premises import workflow
from licensing.premises.models import LicenceStatus

BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}]
JSON = "application/json"
SCOPE_EXTENSION = "x-required-scope"
SCOPES_DESCRIPTION = (
    "A token from `licensing tokens create EMAIL`. Only its SHA-256 is stored; it expires "
    "(90 days unless `--expires-days` says otherwise) and `licensing tokens revoke ID` "
    "revokes it at once. An unknown, expired or revoked token answers 401 with "
    '`WWW-Authenticate: Bearer error="invalid_token"`. Each token carries scopes '
    "(all three unless `--scope` narrows it): `read` for every GET, `ingest` for "
    "POST /api/v1/incidents, `workflow` for transitions, adding premises and building, "
    "issuing and sharing bundles. Each operation names its scope in its security "
    "requirement and in `x-required-scope`. A token without it answers 403 "
    '`{"error": "insufficient_scope", "scope": SCOPE}` with '
    '`WWW-Authenticate: Bearer error="insufficient_scope" scope="SCOPE"`. A scope never '
    "widens what the user's role allows."
)


def _bearer(scope: str) -> list[dict[str, list[str]]]:
    """The security requirement of an operation that needs `scope`."""
    if scope not in API_SCOPES:
        raise ValueError(f"Unknown scope {scope!r}")
    return [{"bearerAuth": [scope]}]


def _declare_scopes(paths: dict[str, Any]) -> dict[str, Any]:
    """Name each operation's scope in `x-required-scope` and its description, and
    document the 403 a token without that scope gets."""
    for item in paths.values():
        for method in ("get", "post", "put", "patch", "delete"):
            operation = item.get(method)
            if operation is None:
                continue
            (scope,) = operation["security"][0]["bearerAuth"]
            operation[SCOPE_EXTENSION] = scope
            sentence = f"Needs a token with the `{scope}` scope."
            description = operation.get("description")
            operation["description"] = f"{description} {sentence}" if description else sentence
            responses = operation["responses"]
            responses.setdefault("403", _response("InsufficientScope"))
            operation["responses"] = dict(sorted(responses.items()))
    return paths


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _error_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": _ref("Error")}}}


def _nullable(schema_type: str, **extra: Any) -> dict[str, Any]:
    return {"type": [schema_type, "null"], **extra}


def _premises_properties() -> dict[str, Any]:
    return {
        "id": {"type": "integer", "minimum": 1},
        "authority": {"type": "string", "description": "Licensing authority code"},
        "licence_number": {"type": "string", "maxLength": 64},
        "name": {"type": "string", "maxLength": 300},
        "address": {"type": "string"},
        "postcode": {"type": "string", "maxLength": 16},
        "uprn": _nullable(
            "string", pattern=r"^[0-9]{1,12}$", description="Unique Property Reference Number"
        ),
        "latitude": _nullable("number", minimum=-90, maximum=90),
        "longitude": _nullable("number", minimum=-180, maximum=180),
        "licence_holder": {"type": "string", "maxLength": 300},
        "dps": {
            "type": "string",
            "maxLength": 300,
            "description": "Designated premises supervisor",
        },
        "licensable_activities": {"type": "string"},
        "opening_hours": {"type": "string"},
        "licence_status": {"type": "string", "enum": [s.value for s in LicenceStatus]},
        "case_officer": _nullable("string", description="Email of the case officer"),
        "state": {"type": "string", "enum": list(workflow.STATES)},
        "version": {
            "type": "integer",
            "minimum": 1,
            "description": "Send this back with a transition; a stale version answers 409",
        },
        "updated_at": {"type": "string", "format": "date-time"},
    }


def _schemas() -> dict[str, Any]:
    premises_props = _premises_properties()
    premises = {
        "type": "object",
        "properties": premises_props,
        "required": list(premises_props),
        "additionalProperties": False,
    }
    transitioned_props = copy.deepcopy(premises_props) | {
        "event_id": {"type": "integer", "description": "The audit event that records the change"}
    }
    create_props: dict[str, Any] = {
        "authority": {"type": "string", "minLength": 1, "description": "Licensing authority code"},
        "licence_number": {"type": "string", "minLength": 1, "maxLength": 64},
        "name": {"type": "string", "minLength": 1, "maxLength": 300},
        "address": {"type": ["string", "null"]},
        "postcode": {"type": ["string", "null"], "maxLength": 16},
        "uprn": {
            "type": ["string", "integer", "null"],
            "pattern": r"^[0-9]{1,12}$",
            "description": "Up to 12 digits, as text or a number",
        },
        "latitude": {"type": ["number", "string", "null"], "description": "-90 to 90"},
        "longitude": {"type": ["number", "string", "null"], "description": "-180 to 180"},
        "licence_holder": {"type": ["string", "null"], "maxLength": 300},
        "dps": {"type": ["string", "null"], "maxLength": 300},
        "licensable_activities": {"type": ["string", "null"]},
        "opening_hours": {"type": ["string", "null"]},
        "licence_status": {"type": "string", "enum": [s.value for s in LicenceStatus]},
        "case_officer": {
            "type": ["string", "null"],
            "format": "email",
            "description": "Email of an active police user (officer or supervisor); "
            "defaults to the creator",
        },
    }
    transition_props: dict[str, Any] = {
        "event": {"type": "string", "enum": list(workflow.EVENT_RULES)},
        "version": {"type": "integer", "description": "The version you last saw"},
        "reason": {"type": "string", "minLength": 1},
        "application_date": {
            "type": "string",
            "format": "date",
            "description": "apply_for_review: the date of the application (not in the future)",
        },
        "received_at": {
            "type": "string",
            "format": "date-time",
            "description": "apply_for_summary_review: when the authority received it "
            "(no offset means London time)",
        },
        "certificate_reference": {
            "type": "string",
            "description": "apply_for_summary_review: the superintendent's certificate",
        },
        "outcome": {
            "type": "string",
            "enum": list(workflow.OUTCOMES),
            "description": "record_determination: the sub-committee's decision",
        },
        "decision_date": {
            "type": "string",
            "format": "date",
            "description": "record_determination",
        },
        "suspended_until": {
            "type": "string",
            "format": "date",
            "description": "record_determination with outcome suspend: at most three months",
        },
        "override_reason": {
            "type": ["string", "null"],
            "description": "warn: a supervisor's reason to warn without recent evidence",
        },
        "hearing_date": {
            "type": "string",
            "format": "date",
            "description": "record_hearing: the (last) day of the hearing",
        },
        "decided_at": {
            "type": "string",
            "format": "date-time",
            "description": "record_interim_steps: when the interim steps were decided",
        },
        "interim_steps": {
            "type": "string",
            "description": "record_interim_steps: the steps taken (or none)",
        },
        "notified_on": {
            "type": "string",
            "format": "date",
            "description": "record_decision_notified: the day the decision was notified",
        },
        "appeal_stage": {
            "type": "string",
            "enum": list(workflow.APPEAL_STAGES),
            "description": "record_appeal: lodged, then dismissed, allowed or withdrawn",
        },
        "appeal_date": {"type": "string", "format": "date", "description": "record_appeal"},
    }
    event_props: dict[str, Any] = {
        "id": {"type": "integer"},
        "seq": {"type": "integer", "minimum": 1, "description": "Position in the premises' chain"},
        "event": {"type": "string"},
        "occurred_at": {"type": "string", "format": "date-time"},
        "actor": {"type": "string", "description": "Name of the person, or System"},
        "from_state": _nullable("string"),
        "to_state": _nullable("string"),
        "reason": _nullable("string"),
        "payload": {
            "type": "object",
            "description": 'Non-personal facts; personal fields appear as {"personal": true}',
        },
        "prev_hash": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "hash": {"type": "string", "pattern": "^[0-9a-f]{64}$", "description": "SHA-256"},
    }
    return {
        "Error": {
            "type": "object",
            "properties": {
                "error": {"type": "string", "description": "A stable code, e.g. not_found"},
                "message": {"type": "string", "description": "Why, for a person to read"},
                "fields": {
                    "type": "object",
                    "additionalProperties": {"type": "string"},
                    "description": "Validation errors by field name",
                },
                "results": {
                    "type": "array",
                    "items": _ref("BatchItemResult"),
                    "description": "An atomic incident batch refused: each invalid item",
                },
                "scope": {
                    "type": "string",
                    "enum": list(API_SCOPES),
                    "description": "insufficient_scope: the scope the operation needs",
                },
            },
            "required": ["error", "message"],
            "additionalProperties": False,
        },
        "Premises": premises,
        "PremisesTransitioned": {
            "type": "object",
            "properties": transitioned_props,
            "required": list(transitioned_props),
            "additionalProperties": False,
        },
        "PremisesCreate": {
            "type": "object",
            "properties": create_props,
            "required": ["authority", "licence_number", "name"],
            "additionalProperties": False,
        },
        "Transition": {
            "type": "object",
            "properties": transition_props,
            "required": ["event", "version", "reason"],
            "additionalProperties": False,
        },
        "PremisesPage": {
            "type": "object",
            "properties": {
                "items": {"type": "array", "items": _ref("Premises")},
                "next_cursor": _nullable("string", description="Pass as cursor; null at the end"),
            },
            "required": ["items", "next_cursor"],
            "additionalProperties": False,
        },
        "HistoryEvent": {
            "type": "object",
            "properties": event_props,
            "required": list(event_props),
            "additionalProperties": False,
        },
        "HistoryPage": {
            "type": "object",
            "properties": {
                "items": {"type": "array", "items": _ref("HistoryEvent")},
                "next_cursor": _nullable("string", description="Pass as cursor; null at the end"),
            },
            "required": ["items", "next_cursor"],
            "additionalProperties": False,
        },
        "OpenApiDocument": {
            "type": "object",
            "properties": {"openapi": {"type": "string"}, "paths": {"type": "object"}},
            "required": ["openapi", "info", "paths"],
        },
    }


def _incident_schemas() -> dict[str, Any]:
    person: dict[str, Any] = {
        "type": "object",
        "properties": {
            "role": {"type": "string", "enum": list(PERSON_ROLES)},
            **{
                name: {"type": "string", "maxLength": limit}
                for name, limit in PERSON_FIELD_LIMITS.items()
            },
        },
        "required": ["role"],
        "additionalProperties": False,
    }
    # What a sender may give: text fields may be null (as if left out).
    person_input = copy.deepcopy(person)
    for name in PERSON_FIELD_LIMITS:
        person_input["properties"][name]["type"] = ["string", "null"]
    personal = {
        "type": "object",
        "description": "Victims, witnesses, reporters and suspects: held apart, police only, "
        "redacted from anything shared",
        "properties": {
            "people": {"type": "array", "items": _ref("Person"), "maxItems": MAX_PEOPLE}
        },
        "required": ["people"],
        "additionalProperties": False,
    }
    # A field sent as null counts as absent (the same as leaving it out).
    create = {
        "source": {"type": ["string", "null"], "enum": [*SOURCES, None], "default": "manual"},
        "source_ref": {
            "type": "string",
            "minLength": 1,
            "maxLength": 128,
            "description": "With source, the identity that makes a retry safe",
        },
        "occurred_at": _nullable("string", format="date-time", description="ISO 8601"),
        "month": _nullable(
            "string",
            # YYYY-MM, year 0001 to 9999: the calendar has no year 0.
            pattern=r"^([1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])-(0[1-9]|1[0-2])$",
            description="When only the month is known (data.police.uk): YYYY-MM",
        ),
        "category": {"type": "string", "enum": list(CATEGORIES)},
        "description": _nullable("string", maxLength=10000),
        "location": _nullable("string", maxLength=300),
        "latitude": _nullable("number", minimum=-90, maximum=90),
        "longitude": _nullable("number", minimum=-180, maximum=180),
        "outcome": _nullable("string", maxLength=200),
        "licence_number": _nullable(
            "string",
            maxLength=64,
            description="With authority: links the incident to that premises, confirmed",
        ),
        "authority": _nullable("string", maxLength=32, description="Licensing authority code"),
        "uprn": _nullable(
            "string", maxLength=16, description="Links the incident to that premises"
        ),
        "personal_data": _ref("PersonalDataInput"),
    }
    incident = {
        "id": {"type": "integer", "minimum": 1},
        "source": {"type": "string", "enum": list(SOURCES)},
        "source_ref": {"type": "string"},
        "occurred_at": _nullable("string", format="date-time"),
        "month": _nullable("string"),
        "approximate": {"type": "boolean", "description": "Only the month is known"},
        "category": {"type": "string"},
        "description": {"type": "string"},
        "location": {"type": "string"},
        "latitude": _nullable("number"),
        "longitude": _nullable("number"),
        "outcome": {"type": "string"},
        "personal_data": _ref("PersonalData"),
    }
    required = [k for k in incident if k != "personal_data"]
    link = {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "status": {"type": "string", "enum": ["confirmed", "suggested"]},
            "method": {"type": "string", "enum": list(LINK_METHODS)},
            "distance_m": _nullable("number"),
        },
        "required": ["id", "status", "method", "distance_m"],
        "additionalProperties": False,
    }
    result = {
        "type": "object",
        "properties": {
            "index": {"type": "integer", "minimum": 0},
            "status": {"type": "string", "enum": ["created", "duplicate", "error"]},
            "id": {"type": "integer"},
            "message": {"type": "string"},
            "fields": {"type": "object", "additionalProperties": {"type": "string"}},
        },
        "required": ["index", "status"],
        "additionalProperties": False,
    }
    # What a sender may give: the same, or null or {} when there are no people.
    personal_input = {k: v for k, v in personal.items() if k != "required"} | {
        "type": ["object", "null"],
        "description": f"{personal['description']}; null or {{}} when there are none",
        "properties": {
            "people": {"type": "array", "items": _ref("PersonInput"), "maxItems": MAX_PEOPLE}
        },
    }
    return {
        "Person": person,
        "BatchItemResult": result,
        "PersonalData": personal,
        "PersonInput": person_input,
        "PersonalDataInput": personal_input,
        "IncidentCreate": {
            "type": "object",
            "properties": create,
            "required": ["source_ref", "category"],
            "description": "Give occurred_at or month",
        },
        "IncidentBatch": {
            "type": "object",
            "properties": {
                "items": {
                    "type": "array",
                    "items": _ref("IncidentCreate"),
                    "minItems": 1,
                    "maxItems": 1000,
                },
                "atomic": {
                    "type": "boolean",
                    "default": False,
                    "description": "true: store none unless all are valid",
                },
            },
            "required": ["items"],
            "additionalProperties": False,
        },
        "IncidentSubmission": {"oneOf": [_ref("IncidentBatch"), _ref("IncidentCreate")]},
        "IncidentRecorded": {
            "type": "object",
            "properties": incident | {"created": {"type": "boolean"}},
            "required": [*required, "created"],
            "additionalProperties": False,
        },
        "BatchResult": {
            "type": "object",
            "properties": {
                "results": {"type": "array", "items": _ref("BatchItemResult")},
                "created": {"type": "integer"},
                "duplicate": {"type": "integer"},
                "error": {"type": "integer"},
            },
            "required": ["results", "created", "duplicate", "error"],
            "additionalProperties": False,
        },
        "LinkedIncident": {
            "type": "object",
            "properties": incident | {"link": link},
            "required": [*required, "link"],
            "additionalProperties": False,
        },
        "LinkedIncidentPage": {
            "type": "object",
            "properties": {
                "items": {"type": "array", "items": _ref("LinkedIncident")},
                "next_cursor": _nullable("string"),
            },
            "required": ["items", "next_cursor"],
            "additionalProperties": False,
        },
    }


def _incident_paths() -> dict[str, Any]:
    return {
        "/api/v1/incidents": {
            "post": {
                "operationId": "recordIncidents",
                "summary": "Record one incident, or a batch of up to 1,000 (police)",
                "description": "Idempotent on (source, source_ref): a retry answers 200 with "
                "the incident already held. A batch stores the valid items and reports "
                "each invalid one; with atomic true it stores none unless all are valid "
                "(422 with per-item results).",
                "security": _bearer("ingest"),
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": _ref("IncidentSubmission")}},
                },
                "responses": {
                    "200": {
                        "description": "The incident already held, or the batch's results",
                        "content": {
                            JSON: {
                                "schema": {"oneOf": [_ref("IncidentRecorded"), _ref("BatchResult")]}
                            }
                        },
                    },
                    "201": _ok("The incident, newly recorded", "IncidentRecorded"),
                    "401": _response("Unauthorised"),
                    "403": _response("Forbidden"),
                    "404": _response("NotFound"),
                    "409": _error_response(
                        "Another request stored the same record at the same moment; "
                        "nothing was stored: retry"
                    ),
                    "422": _response("Unprocessable"),
                },
            },
        },
        "/api/v1/premises/{premises_id}/incidents": {
            "parameters": [_param("PremisesId")],
            "get": {
                "operationId": "premisesIncidents",
                "summary": "Incidents linked to a premises, newest first",
                "parameters": [
                    {
                        "name": "status",
                        "in": "query",
                        "required": False,
                        "description": "confirmed (default) or suggested (police only)",
                        "allowEmptyValue": True,
                        "schema": {
                            "type": "string",
                            "enum": ["confirmed", "suggested"],
                            "default": "confirmed",
                        },
                    },
                    _param("Limit"),
                    _param("Cursor"),
                ],
                "security": _bearer("read"),
                "responses": {
                    "200": _ok("The linked incidents", "LinkedIncidentPage"),
                    "400": _response("BadRequest"),
                    "401": _response("Unauthorised"),
                    "404": _response("NotFound"),
                },
            },
        },
    }


def _deadline_schemas() -> dict[str, Any]:
    deadline = {
        "kind": {"type": "string", "enum": list(DEADLINE_KINDS)},
        "due": {
            "type": "string",
            "description": "An ISO date for day rules; an ISO date-time in UTC (Z) for hour rules",
        },
        "rule": {"type": "string", "description": "The rule and the date it was computed from"},
        "status": {"type": "string", "enum": ["open", "closed", "cancelled"]},
        "review_id": {"type": "integer"},
    }
    return {
        "Deadline": {
            "type": "object",
            "properties": deadline,
            "required": list(deadline),
            "additionalProperties": False,
        },
        "DeadlinePage": {
            "type": "object",
            "properties": {
                "items": {"type": "array", "items": _ref("Deadline")},
                "next_cursor": _nullable("string"),
            },
            "required": ["items", "next_cursor"],
            "additionalProperties": False,
        },
    }


def _deadline_paths() -> dict[str, Any]:
    return {
        "/api/v1/premises/{premises_id}/deadlines": {
            "parameters": [_param("PremisesId")],
            "get": {
                "operationId": "premisesDeadlines",
                "summary": "The statutory deadlines of the premises' reviews, soonest first",
                "security": _bearer("read"),
                "responses": {
                    "200": _ok("The deadlines", "DeadlinePage"),
                    "401": _response("Unauthorised"),
                    "404": _response("NotFound"),
                },
            },
        },
    }


def _bundle_schemas() -> dict[str, Any]:
    from licensing.evidence.models import BUNDLE_STATUSES, ITEM_KINDS, REVIEW_KINDS

    moment = _nullable("string", format="date-time")
    bundle = {
        "id": {"type": "integer"},
        "premises_id": {"type": "integer"},
        "reference": {"type": "string"},
        "version": {"type": "integer", "minimum": 1},
        "status": {"type": "string", "enum": list(BUNDLE_STATUSES)},
        "review_kind": {"type": "string", "enum": list(REVIEW_KINDS)},
        "from": {"type": "string", "format": "date"},
        "to": {"type": "string", "format": "date"},
        "page_count": {"type": "integer"},
        "built_at": {"type": "string", "format": "date-time"},
        "issued_at": moment,
        "shared_at": moment,
        "acknowledged_at": moment,
        "shared_pdf_sha256": {"type": "string"},
        "shared_zip_sha256": {"type": "string"},
        "audit_head_hash": {
            "type": "string",
            "description": "The premises' audit-chain head when the bundle was built",
        },
        "lock_version": {
            "type": "integer",
            "description": "Changes with every rebuild; send it to issue only what you saw",
        },
    }
    with_index = dict(bundle)
    with_index["index"] = {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {"title": {"type": "string"}, "page": {"type": "integer"}},
            "required": ["title", "page"],
            "additionalProperties": False,
        },
    }
    shared = dict(bundle)
    shared["emailed"] = {"type": "integer", "description": "Council users emailed now"}
    return {
        "Bundle": {
            "type": "object",
            "properties": bundle,
            "required": list(bundle),
            "additionalProperties": False,
        },
        "BundleWithIndex": {
            "type": "object",
            "properties": with_index,
            "required": list(with_index),
            "additionalProperties": False,
        },
        "BundleShared": {
            "type": "object",
            "properties": shared,
            "required": list(shared),
            "additionalProperties": False,
        },
        "NewBundle": {
            "type": "object",
            "properties": {
                "from": _nullable("string", format="date", description="Default: a year ago"),
                "to": _nullable("string", format="date", description="Default: today"),
                "review_kind": {"type": "string", "enum": list(REVIEW_KINDS)},
                "statement": {"type": "string"},
                "exclude": {
                    "type": ["array", "null"],
                    "description": "Items to leave out, each with the reason (it goes on the "
                    "police-only schedule of unused material)",
                    "items": {
                        "type": "object",
                        "properties": {
                            "kind": {"type": "string", "enum": list(ITEM_KINDS)},
                            "id": {"type": "integer", "maximum": MAX_ID},
                            "reason": {"type": "string", "minLength": 1},
                        },
                        "required": ["kind", "id", "reason"],
                        "additionalProperties": False,
                    },
                },
            },
            "additionalProperties": False,
        },
        "LockVersion": {
            "type": "object",
            "description": "Optional (null is the same as leaving it out). Issue: a "
            "lock_version other than the draft's answers 409. Share: an issued bundle never "
            "changes, so it is not compared",
            "properties": {"lock_version": {"type": ["integer", "null"]}},
            "additionalProperties": False,
        },
    }


def _bundle_paths() -> dict[str, Any]:
    bundle_id = {
        "name": "bundle_id",
        "in": "path",
        "required": True,
        "schema": {"type": "integer", "minimum": 0, "maximum": MAX_ID},
    }
    copy = {
        "name": "copy",
        "in": "query",
        "required": False,
        "description": "shared (default; personal data redacted) or police (police only)",
        "allowEmptyValue": True,
        "schema": {"type": "string", "enum": ["shared", "police"]},
    }

    def download(operation: str, summary: str, media: str) -> dict[str, Any]:
        return {
            "parameters": [bundle_id, copy],
            "get": {
                "operationId": operation,
                "summary": summary,
                "security": _bearer("read"),
                "responses": {
                    "200": {
                        "description": summary,
                        "content": {media: {"schema": {"type": "string", "format": "binary"}}},
                    },
                    "401": _response("Unauthorised"),
                    "404": _response("NotFound"),
                    "422": _response("Unprocessable"),
                },
            },
        }

    def action(operation: str, summary: str, schema: str) -> dict[str, Any]:
        return {
            "parameters": [bundle_id],
            "post": {
                "operationId": operation,
                "summary": summary,
                "security": _bearer("workflow"),
                "requestBody": {
                    "required": False,
                    "content": {JSON: {"schema": _ref("LockVersion")}},
                },
                "responses": {
                    "200": _ok("The bundle", schema),
                    "401": _response("Unauthorised"),
                    "403": _response("Forbidden"),
                    "404": _response("NotFound"),
                    "409": _response("Conflict"),
                    "422": _response("Unprocessable"),
                },
            },
        }

    return {
        "/api/v1/premises/{premises_id}/bundles": {
            "parameters": [_param("PremisesId")],
            "post": {
                "operationId": "buildBundle",
                "summary": "Build a draft evidence bundle for the premises (police)",
                "security": _bearer("workflow"),
                "requestBody": {
                    "required": False,
                    "content": {JSON: {"schema": _ref("NewBundle")}},
                },
                "responses": {
                    "201": _ok("The draft bundle", "Bundle"),
                    "401": _response("Unauthorised"),
                    "403": _response("Forbidden"),
                    "404": _response("NotFound"),
                    "422": _response("Unprocessable"),
                },
            },
        },
        "/api/v1/bundles/{bundle_id}": {
            "parameters": [bundle_id],
            "get": {
                "operationId": "getBundle",
                "summary": "A bundle's facts, hashes and index (council: only bundles shared "
                "with their authority)",
                "security": _bearer("read"),
                "responses": {
                    "200": _ok("The bundle", "BundleWithIndex"),
                    "401": _response("Unauthorised"),
                    "404": _response("NotFound"),
                },
            },
        },
        "/api/v1/bundles/{bundle_id}/pdf": download(
            "getBundlePdf", "The bundle as one PDF", "application/pdf"
        ),
        "/api/v1/bundles/{bundle_id}/zip": download(
            "getBundleZip",
            "The bundle ZIP: the PDF, the attachments and manifest.json",
            "application/zip",
        ),
        "/api/v1/bundles/{bundle_id}/issue": action(
            "issueBundle", "Issue a draft: it never changes again (supervisor)", "Bundle"
        ),
        "/api/v1/bundles/{bundle_id}/share": action(
            "shareBundle",
            "Share an issued bundle with the premises' licensing authority (supervisor)",
            "BundleShared",
        ),
    }


def _parameters() -> dict[str, Any]:
    return {
        "PremisesId": {
            "name": "premises_id",
            "in": "path",
            "required": True,
            "schema": {"type": "integer", "minimum": 0, "maximum": MAX_ID},
        },
        "Limit": {
            "name": "limit",
            "in": "query",
            "required": False,
            "description": "Page size (default 50)",
            "allowEmptyValue": True,
            "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
        },
        "Cursor": {
            "name": "cursor",
            "in": "query",
            "required": False,
            "description": "The next_cursor of the previous page",
            "allowEmptyValue": True,
            "schema": {"type": "string", "pattern": "^[0-9]{1,18}$"},
        },
        "State": {
            "name": "state",
            "in": "query",
            "required": False,
            "allowEmptyValue": True,
            "schema": {"type": "string", "enum": list(workflow.STATES)},
        },
        "Authority": {
            "name": "authority",
            "in": "query",
            "required": False,
            "description": "Licensing authority code",
            "schema": {"type": "string"},
        },
        "Query": {
            "name": "q",
            "in": "query",
            "required": False,
            "description": "Matches name or licence number (any case), or postcode (any spacing)",
            "schema": {"type": "string"},
        },
    }


def _param(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/parameters/{name}"}


def _response(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/responses/{name}"}


def _ok(description: str, schema: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": _ref(schema)}}}


def _paths() -> dict[str, Any]:
    return {
        "/api/v1/premises": {
            "get": {
                "operationId": "listPremises",
                "summary": "List the premises you may see, by id, one keyset page at a time",
                "parameters": [
                    _param("State"),
                    _param("Authority"),
                    _param("Query"),
                    _param("Limit"),
                    _param("Cursor"),
                ],
                "security": _bearer("read"),
                "responses": {
                    "200": _ok("A page of premises", "PremisesPage"),
                    "400": _response("BadRequest"),
                    "401": _response("Unauthorised"),
                },
            },
            "post": {
                "operationId": "createPremises",
                "summary": "Register a premises (police users); it starts monitored",
                "security": _bearer("workflow"),
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": _ref("PremisesCreate")}},
                },
                "responses": {
                    "201": _ok("The new premises", "Premises"),
                    "401": _response("Unauthorised"),
                    "403": _response("Forbidden"),
                    "404": _response("NotFound"),
                    "409": _response("Conflict"),
                    "422": _response("Unprocessable"),
                },
            },
        },
        "/api/v1/premises/{premises_id}": {
            "parameters": [_param("PremisesId")],
            "get": {
                "operationId": "getPremises",
                "summary": "One premises, with its state and version",
                "security": _bearer("read"),
                "responses": {
                    "200": _ok("The premises", "Premises"),
                    "401": _response("Unauthorised"),
                    "404": _response("NotFound"),
                },
            },
        },
        "/api/v1/premises/{premises_id}/transitions": {
            "parameters": [_param("PremisesId")],
            "post": {
                "operationId": "transitionPremises",
                "summary": "Take a workflow event; parameters are top-level fields",
                "description": "Events: "
                + "; ".join(
                    f"{rule.name} ({', '.join(sorted(rule.roles))}"
                    + (f"; parameters {', '.join(rule.parameters)}" if rule.parameters else "")
                    + ")"
                    for rule in workflow.EVENT_RULES.values()
                ),
                "security": _bearer("workflow"),
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": _ref("Transition")}},
                },
                "responses": {
                    "200": _ok("The premises in its new state", "PremisesTransitioned"),
                    "401": _response("Unauthorised"),
                    "403": _response("Forbidden"),
                    "404": _response("NotFound"),
                    "409": _response("Conflict"),
                    "422": _response("Unprocessable"),
                },
            },
        },
        "/api/v1/premises/{premises_id}/history": {
            "parameters": [_param("PremisesId")],
            "get": {
                "operationId": "premisesHistory",
                "summary": "The premises' audit events, newest first, with their hashes",
                "parameters": [_param("Limit"), _param("Cursor")],
                "security": _bearer("read"),
                "responses": {
                    "200": _ok("A page of events", "HistoryPage"),
                    "400": _response("BadRequest"),
                    "401": _response("Unauthorised"),
                    "404": _response("NotFound"),
                },
            },
        },
        "/api/v1/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document",
                "security": _bearer("read"),
                "responses": {
                    "200": _ok("The OpenAPI 3.1 document", "OpenApiDocument"),
                    "401": _response("Unauthorised"),
                },
            },
        },
    }


def openapi_document() -> dict[str, Any]:
    """Describe every API route, its parameters, bodies and responses."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Licensing enforcement API",
            "version": "1",
            "description": "For police systems. Every request needs a bearer token "
            "(`licensing tokens create EMAIL`) carrying the scope the operation needs "
            "(`read`, `ingest` or `workflow`: see the bearerAuth scheme); the session cookie "
            "is never accepted. "
            "Council users see, read-only, only their own authority's premises in review "
            "or action: everything else answers 404 to them. Errors are "
            '{"error": CODE, "message": TEXT}. A query parameter sent empty counts as '
            "absent.",
        },
        "servers": [{"url": "/"}],
        "security": BEARER,
        "paths": _declare_scopes(
            _paths() | _incident_paths() | _deadline_paths() | _bundle_paths()
        ),
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": SCOPES_DESCRIPTION,
                }
            },
            "parameters": _parameters(),
            "schemas": _schemas() | _incident_schemas() | _deadline_schemas() | _bundle_schemas(),
            "responses": {
                "BadRequest": _error_response(
                    "A query parameter is invalid (cursor, limit, state, status)"
                ),
                "Unauthorised": {
                    **_error_response("Missing, unknown, revoked or expired bearer token"),
                    "headers": {
                        "WWW-Authenticate": {
                            "description": 'Bearer realm="licensing", with '
                            'error="invalid_token" when a token was sent',
                            "schema": {"type": "string"},
                        },
                    },
                },
                "Forbidden": {
                    **_error_response(
                        "Your role may not do this (forbidden), or the token lacks the "
                        "operation's scope (insufficient_scope)"
                    ),
                    "headers": {
                        "WWW-Authenticate": {
                            "description": "On insufficient_scope: "
                            'Bearer realm="licensing", error="insufficient_scope", '
                            'scope="SCOPE"',
                            "schema": {"type": "string"},
                        },
                    },
                },
                "InsufficientScope": {
                    **_error_response(
                        'The token lacks the operation\'s scope: {"error": '
                        '"insufficient_scope", "scope": SCOPE}'
                    ),
                    "headers": {
                        "WWW-Authenticate": {
                            "description": 'Bearer realm="licensing", '
                            'error="insufficient_scope", scope="SCOPE"',
                            "schema": {"type": "string"},
                        },
                    },
                },
                "NotFound": _error_response(
                    "No such premises, or one you may not see (council users get this "
                    "instead of 403)"
                ),
                "Conflict": _error_response("The version you sent is stale: reload and retry"),
                "Unprocessable": _error_response(
                    "Malformed body, invalid field, or a workflow rule refuses the event "
                    "(message says why)"
                ),
            },
        },
    }
