"""The incidents API: idempotent ingest (one or a batch), linking, who may call it, the
council rule, personal data, and responses that match the OpenAPI document."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from licensing.api.openapi import openapi_document
from licensing.audit.models import AuditEvent, AuditPersonalValue
from licensing.auth.models import User
from licensing.auth.services import create_token
from licensing.incidents.models import Incident, IncidentPerson, PremisesIncidentLink
from tests.conftest import move
from tests.test_openapi import Recorder, validate

URL = "/api/v1/incidents"
LAT, LON = 53.404, -2.979
NORTH_PER_M = 1 / 111_195  # degrees of latitude per metre
PEOPLE = [
    {
        "role": "victim",
        "name": "Alice Victimson",
        "phone": "07700 900123",
        "email": "alice.victimson@example.org",
        "address": "12 Secret Lane, Liverpool",
    },
    {"role": "witness", "name": "Walter Witnessby"},
]
PERSONAL_STRINGS = [
    "Alice Victimson",
    "07700 900123",
    "alice.victimson@example.org",
    "12 Secret Lane",
    "Walter Witnessby",
]


@pytest.fixture
def call(app, session):  # type: ignore[no-untyped-def]
    """Make an API request as a user (a fresh client each time: no cookies)."""
    tokens: dict[int, str] = {}

    def request(method: str, path: str, user: User | None = None, **kwargs: Any) -> Any:
        headers = dict(kwargs.pop("headers", {}))
        if user is not None:
            if user.id not in tokens:
                tokens[user.id] = create_token(session, user.email)
            headers["Authorization"] = f"Bearer {tokens[user.id]}"
        return app.test_client().open(path, method=method, headers=headers, **kwargs)

    return request


@pytest.fixture
def albert(world, make_premises):
    """A LIV premises with coordinates, a UPRN, and nothing linked to it yet."""
    return make_premises(
        world["liv"],
        world["officer"],
        evidence=False,
        name="The Albert",
        licence_number="LIV/ALBERT",
        uprn="38000001",
        latitude=LAT,
        longitude=LON,
    )


def incident(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "source": "rms",
        "source_ref": "RMS-100",
        "occurred_at": (datetime.now(UTC) - timedelta(days=2)).isoformat(),
        "category": "Violence and sexual offences",
        "description": "Assault at closing time",
        "location": "Outside the front door",
    }
    body.update(overrides)
    return body


def assert_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.is_json, response.get_data(as_text=True)[:300]
    body = response.get_json()
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["message"], str) and body["message"]
    if code is not None:
        assert body["error"] == code
    return dict(body)


def incident_count(session) -> int:  # type: ignore[no-untyped-def]
    """Incidents the test sent (the fixtures' evidence incidents left out)."""
    session.expire_all()
    return (
        session.scalar(
            select(func.count())
            .select_from(Incident)
            .where(Incident.source_ref.not_like("EVIDENCE-%"))
        )
        or 0
    )


def links_of(session, premises_id: int) -> list[tuple[int, str, str]]:  # type: ignore[no-untyped-def]
    session.expire_all()
    return [
        (link.incident_id, link.status, link.method)
        for link in session.scalars(
            select(PremisesIncidentLink)
            .where(PremisesIncidentLink.premises_id == premises_id)
            .order_by(PremisesIncidentLink.id)
        )
    ]


# ---- one incident: idempotent ---------------------------------------------------------


def test_a_new_incident_answers_201_and_a_retry_200_with_the_same_id(call, session, world):
    first = call("POST", URL, world["officer"], json=incident())
    assert first.status_code == 201, first.get_data(as_text=True)
    created = first.get_json()
    assert created["created"] is True
    assert created["source"] == "rms" and created["source_ref"] == "RMS-100"
    assert created["category"] == "Violence and sexual offences"
    assert created["approximate"] is False and created["month"] is None

    retry = call("POST", URL, world["officer"], json=incident(description="Sent again"))
    assert retry.status_code == 200
    again = retry.get_json()
    assert again["created"] is False
    assert again["id"] == created["id"]
    assert again["description"] == "Assault at closing time"  # the one already held
    assert incident_count(session) == 1

    # the same reference from another source is another incident
    other = call("POST", URL, world["officer"], json=incident(source="police-uk"))
    assert other.status_code == 201
    assert other.get_json()["id"] != created["id"]
    assert incident_count(session) == 2


def test_a_month_only_incident_is_approximate(call, world):
    body = incident(source="police-uk", source_ref="PUK-1", month="2024-02")
    del body["occurred_at"]
    response = call("POST", URL, world["supervisor"], json=body)
    assert response.status_code == 201, response.get_data(as_text=True)
    shown = response.get_json()
    assert shown["month"] == "2024-02"
    assert shown["occurred_at"] is None
    assert shown["approximate"] is True


def test_every_category_spelling_is_accepted(call, session, world):
    for n, category in enumerate(
        [
            "Violence and sexual offences",
            "Anti-social behaviour",
            "Criminal damage and arson",
            "ASB - personal",
            "ASB - nuisance",
            "ASB - environmental",
        ]
    ):
        response = call(
            "POST", URL, world["officer"], json=incident(source_ref=f"C-{n}", category=category)
        )
        assert response.status_code == 201, (category, response.get_data(as_text=True))
        assert response.get_json()["category"] == category
    wrong = call("POST", URL, world["officer"], json=incident(source_ref="C-x", category="Assault"))
    assert "category" in assert_error(wrong, 422, "invalid")["fields"]
    assert incident_count(session) == 6


# ---- linking ------------------------------------------------------------------------


def test_a_licence_number_links_it_confirmed_and_the_history_shows_it(call, session, world, albert):
    body = incident(licence_number="LIV/ALBERT", authority="liv")
    response = call("POST", URL, world["officer"], json=body)
    assert response.status_code == 201, response.get_data(as_text=True)
    incident_id = response.get_json()["id"]
    assert links_of(session, albert.id) == [(incident_id, "confirmed", "licence_number")]

    listed = call("GET", f"/api/v1/premises/{albert.id}/incidents", world["officer"]).get_json()
    assert [i["id"] for i in listed["items"]] == [incident_id]
    assert listed["items"][0]["link"]["status"] == "confirmed"
    assert listed["items"][0]["link"]["method"] == "licence_number"
    assert listed["next_cursor"] is None

    history = call("GET", f"/api/v1/premises/{albert.id}/history", world["officer"]).get_json()
    linked = [e for e in history["items"] if e["event"] == "incident_linked"]
    assert len(linked) == 1
    assert linked[0]["payload"]["incident_id"] == incident_id
    assert linked[0]["payload"]["method"] == "licence_number"

    # the premises' version does not move: a link is not an edit of the record
    shown = call("GET", f"/api/v1/premises/{albert.id}", world["officer"]).get_json()
    assert shown["version"] == 1


def test_a_licence_number_of_another_authority_does_not_link(call, session, world, albert):
    body = incident(licence_number="LIV/ALBERT", authority="SEF")
    assert call("POST", URL, world["officer"], json=body).status_code == 201
    assert links_of(session, albert.id) == []


def test_a_uprn_links_it_confirmed(call, session, world, albert):
    response = call("POST", URL, world["officer"], json=incident(uprn="38000001"))
    assert response.status_code == 201
    assert links_of(session, albert.id) == [(response.get_json()["id"], "confirmed", "uprn")]


def test_an_incident_20_metres_away_is_suggested_with_its_distance(call, session, world, albert):
    body = incident(latitude=LAT + 20 * NORTH_PER_M, longitude=LON)
    response = call("POST", URL, world["officer"], json=body)
    assert response.status_code == 201
    incident_id = response.get_json()["id"]
    assert links_of(session, albert.id) == [(incident_id, "suggested", "proximity")]

    base = f"/api/v1/premises/{albert.id}/incidents"
    assert call("GET", base, world["officer"]).get_json()["items"] == []  # not confirmed
    suggested = call("GET", f"{base}?status=suggested", world["officer"]).get_json()["items"]
    assert [i["id"] for i in suggested] == [incident_id]
    assert suggested[0]["link"]["status"] == "suggested"
    assert suggested[0]["link"]["method"] == "proximity"
    assert 19.0 <= suggested[0]["link"]["distance_m"] <= 21.0

    # a suggestion is not on the premises' chain until an officer decides it
    history = call("GET", f"/api/v1/premises/{albert.id}/history", world["officer"]).get_json()
    assert "incident_linked" not in [e["event"] for e in history["items"]]


def test_an_incident_80_metres_away_is_not_suggested(call, session, world, albert):
    body = incident(latitude=LAT + 80 * NORTH_PER_M, longitude=LON)
    assert call("POST", URL, world["officer"], json=body).status_code == 201
    assert links_of(session, albert.id) == []


# ---- batches --------------------------------------------------------------------------


def test_a_batch_stores_the_valid_items_and_reports_each_invalid_one(call, session, world):
    items = [
        incident(source_ref="B-1"),
        incident(source_ref="B-2", latitude="abc", longitude=-2.9),
        incident(source_ref="B-3"),
        "not an object",
        incident(source_ref="B-1"),  # the first again, in the same batch
        incident(source_ref="B-4", category=5),
    ]
    response = call("POST", URL, world["officer"], json={"items": items})
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    results = body["results"]
    assert [(r["index"], r["status"]) for r in results] == [
        (0, "created"),
        (1, "error"),
        (2, "created"),
        (3, "error"),
        (4, "duplicate"),
        (5, "error"),
    ]
    assert (body["created"], body["duplicate"], body["error"]) == (2, 1, 3)
    assert results[4]["id"] == results[0]["id"]
    assert "latitude" in results[1]["fields"] and results[1]["message"]
    assert "category" in results[5]["fields"]
    assert results[3]["message"]
    for result in (results[1], results[3], results[5]):
        assert "id" not in result
    assert incident_count(session) == 2
    stored = set(
        session.scalars(
            select(Incident.source_ref).where(Incident.source_ref.not_like("EVIDENCE-%"))
        )
    )
    assert stored == {"B-1", "B-3"}

    # the whole batch sent again: nothing new, the same ids
    retry = call("POST", URL, world["officer"], json={"items": items}).get_json()
    assert (retry["created"], retry["duplicate"], retry["error"]) == (0, 3, 3)
    assert [r.get("id") for r in retry["results"]] == [r.get("id") for r in results]
    assert incident_count(session) == 2


def test_an_atomic_batch_with_an_invalid_item_stores_none(call, session, world):
    items = [
        incident(source_ref="A-1"),
        incident(source_ref="A-2", occurred_at="last Tuesday"),
        incident(source_ref="A-3"),
    ]
    response = call("POST", URL, world["officer"], json={"items": items, "atomic": True})
    body = assert_error(response, 422, "invalid")
    assert [(r["index"], r["status"]) for r in body["results"]] == [(1, "error")]
    assert "occurred_at" in body["results"][0]["fields"]
    assert incident_count(session) == 0

    valid = [incident(source_ref="A-1"), incident(source_ref="A-3")]
    response = call("POST", URL, world["officer"], json={"items": valid, "atomic": True})
    assert response.status_code == 200
    assert response.get_json()["created"] == 2
    assert incident_count(session) == 2


def test_a_batch_links_and_raises_recommendations(call, session, world, albert):
    items = [
        incident(source_ref=f"R-{n}", licence_number="LIV/ALBERT", authority="LIV")
        for n in range(3)
    ]
    assert call("POST", URL, world["officer"], json={"items": items}).status_code == 200
    assert [s for _i, s, _m in links_of(session, albert.id)] == ["confirmed"] * 3
    events = [
        e.event
        for e in session.scalars(
            select(AuditEvent).where(AuditEvent.premises_id == albert.id).order_by(AuditEvent.seq)
        )
    ]
    assert events.count("incident_linked") == 3
    assert events[-1] == "recommendation_raised"


def test_a_batch_of_1000_is_accepted_and_1001_is_refused(call, session, world):
    too_many = [incident(source_ref=f"N-{n}") for n in range(1001)]
    body = assert_error(call("POST", URL, world["officer"], json={"items": too_many}), 422)
    assert "items" in body["fields"]
    assert incident_count(session) == 0

    response = call("POST", URL, world["officer"], json={"items": too_many[:1000]})
    assert response.status_code == 200
    assert response.get_json()["created"] == 1000
    assert incident_count(session) == 1000


@pytest.mark.parametrize("items", [[], "B-1", {"source_ref": "B-1"}, None])
def test_items_must_be_a_non_empty_list(call, session, world, items):
    body = assert_error(call("POST", URL, world["officer"], json={"items": items}), 422)
    assert "items" in body["fields"]
    assert incident_count(session) == 0


def test_a_blank_source_ref_is_an_item_error_not_a_failed_batch(call, session, world):
    items = [incident(source_ref="OK-1"), incident(source_ref="   ")]
    response = call("POST", URL, world["officer"], json={"items": items})
    assert response.status_code == 200, response.get_data(as_text=True)
    results = response.get_json()["results"]
    assert [r["status"] for r in results] == ["created", "error"]
    assert "source_ref" in results[1]["fields"]
    assert incident_count(session) == 1


# ---- who may call it ------------------------------------------------------------------


def test_only_the_police_may_send_incidents(call, session, world):
    assert_error(call("POST", URL, world["council"], json=incident()), 404, "not_found")
    assert_error(call("POST", URL, world["admin"], json=incident()), 403, "forbidden")
    anonymous = call("POST", URL, json=incident())
    assert_error(anonymous, 401, "unauthorised")
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    wrong = call("POST", URL, json=incident(), headers={"Authorization": "Bearer nope"})
    assert_error(wrong, 401)
    assert incident_count(session) == 0
    for role in ("officer", "supervisor"):
        response = call("POST", URL, world[role], json=incident(source_ref=f"ROLE-{role}"))
        assert response.status_code == 201
    assert incident_count(session) == 2


# ---- malformed input is a 422, never a 500 ----------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "[]",
        "[1, 2]",
        '"text"',
        "42",
        "null",
        "{not json",
        "",
        "[" * 100_000 + "]" * 100_000,
        '{"items": ' + "[" * 100_000 + "]" * 100_000 + "}",
        '{"source_ref": "X", "personal_data": ' + '{"a": ' * 50_000 + "1" + "}" * 50_001,
    ],
    ids=[
        "empty-list",
        "list",
        "string",
        "number",
        "null",
        "broken",
        "empty",
        "deep-list",
        "deep-items",
        "deep-object",
    ],
)
def test_a_body_that_is_not_a_json_object_answers_422(call, session, world, raw):
    response = call(
        "POST", URL, world["officer"], data=raw, headers={"Content-Type": "application/json"}
    )
    assert_error(response, 422, "invalid")
    assert incident_count(session) == 0


@pytest.mark.parametrize("atomic", ["false", 1, None, "yes"])
def test_atomic_must_be_a_boolean(call, session, world, atomic):
    items = [incident(source_ref="T-1"), incident(source_ref="T-2", latitude="abc")]
    body = assert_error(
        call("POST", URL, world["officer"], json={"items": items, "atomic": atomic}), 422
    )
    assert "atomic" in body["fields"]
    assert incident_count(session) == 0


def test_a_person_at_the_column_limits_is_stored_whole(call, session, world):
    person = {
        "role": "reporter",
        "name": "n" * 200,
        "phone": "1" * 50,
        "email": "e" * 254,
        "address": "a" * 1000,
    }
    body = incident(personal_data={"people": [person] * 50})
    response = call("POST", URL, world["officer"], json=body)
    assert response.status_code == 201, response.get_data(as_text=True)[:300]
    people = response.get_json()["personal_data"]["people"]
    assert len(people) == 50 and people[0] == person


def test_a_body_without_a_json_content_type_answers_422(call, world):
    response = call("POST", URL, world["officer"], data=json.dumps(incident()))
    assert_error(response, 422)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"latitude": "abc", "longitude": -2.9}, "latitude"),
        ({"latitude": 53.4, "longitude": "west"}, "longitude"),
        ({"latitude": 91, "longitude": 0}, "latitude"),
        ({"latitude": True, "longitude": 0}, "latitude"),
        ({"latitude": 10**400, "longitude": 0}, "latitude"),
        ({"latitude": [53.4], "longitude": 0}, "latitude"),
        ({"latitude": 53.4}, "latitude"),
        ({"category": 5}, "category"),
        ({"category": None}, "category"),
        ({"category": "Burglary "}, None),  # trimmed: accepted
        ({"source": "fax"}, "source"),
        ({"source": ["rms"]}, "source"),
        ({"source_ref": 12345}, "source_ref"),
        ({"source_ref": "x" * 129}, "source_ref"),
        ({"source_ref": None}, "source_ref"),
        ({"occurred_at": 5}, "occurred_at"),
        ({"occurred_at": "2024-02-30T10:00:00Z"}, "occurred_at"),
        ({"occurred_at": {"when": "now"}}, "occurred_at"),
        ({"occurred_at": "2999-01-01T00:00:00Z"}, "occurred_at"),
        ({"occurred_at": None, "month": "2024-13"}, "month"),
        ({"occurred_at": None, "month": 202401}, "month"),
        ({"occurred_at": None}, "occurred_at"),
        ({"description": 5}, "description"),
        ({"description": "x" * 10_001}, "description"),
        ({"location": {"street": "x"}}, "location"),
        ({"licence_number": 77, "authority": "LIV"}, "licence_number"),
        ({"uprn": ["1"]}, "uprn"),
        ({"personal_data": "Alice"}, "personal_data"),
        ({"personal_data": {"people": "Alice"}}, "personal_data"),
        ({"personal_data": [1]}, "personal_data"),
        ({"personal_data": {"people": [{"role": "boss", "name": "A"}]}}, "personal_data"),
        ({"personal_data": {"people": [{"role": ["victim"]}]}}, "personal_data"),
        ({"personal_data": {"people": ["Alice"]}}, "personal_data"),
        ({"personal_data": {"people": [{"role": "victim", "name": 7}]}}, "personal_data"),
        ({"personal_data": {"people": [{"role": "victim", "name": "n" * 201}]}}, "personal_data"),
        ({"personal_data": {"people": [{"role": "victim", "phone": "1" * 51}]}}, "personal_data"),
        ({"personal_data": {"people": [{"role": "witness"}] * 51}}, "personal_data"),
        ({"occurred_at": "9999-12-31T23:59:59-01:00"}, "occurred_at"),
        ({"occurred_at": "0001-01-01T00:30:00+01:00"}, "occurred_at"),
    ],
)
def test_wrong_types_and_values_answer_422_naming_the_field(call, session, world, overrides, field):
    response = call("POST", URL, world["officer"], json=incident(**overrides))
    if field is None:
        assert response.status_code == 201, response.get_data(as_text=True)
        return
    body = assert_error(response, 422, "invalid")
    assert any(name.startswith(field) for name in body["fields"]), body
    assert incident_count(session) == 0
    # and inside a batch it is a per-item error, not a failed request
    batch = call("POST", URL, world["officer"], json={"items": [incident(**overrides)]})
    assert batch.status_code == 200, batch.get_data(as_text=True)
    result = batch.get_json()["results"][0]
    assert result["status"] == "error"
    assert any(name.startswith(field) for name in result["fields"]), result
    assert incident_count(session) == 0


# ---- personal data --------------------------------------------------------------------


def test_personal_data_is_held_apart_and_never_on_the_audit_trail(call, session, world, albert):
    body = incident(
        licence_number="LIV/ALBERT",
        authority="LIV",
        personal_data={"people": PEOPLE},
    )
    response = call("POST", URL, world["officer"], json=body)
    assert response.status_code == 201, response.get_data(as_text=True)
    people = response.get_json()["personal_data"]["people"]
    assert [(p["role"], p["name"]) for p in people] == [
        ("victim", "Alice Victimson"),
        ("witness", "Walter Witnessby"),
    ]
    assert people[0]["email"] == "alice.victimson@example.org"
    assert people[1]["phone"] == ""
    assert session.scalar(select(func.count()).select_from(IncidentPerson)) == 2

    # three more serious incidents raise a recommendation: more events to check
    for n in range(3):
        extra = incident(
            source_ref=f"P-{n}",
            licence_number="LIV/ALBERT",
            authority="LIV",
            personal_data={"people": PEOPLE},
        )
        assert call("POST", URL, world["officer"], json=extra).status_code == 201
    events = list(session.scalars(select(AuditEvent)))
    assert {"incident_linked", "recommendation_raised"} <= {e.event for e in events}
    for event in events:
        stored = f"{event.payload} {event.reason or ''}"
        for secret in PERSONAL_STRINGS:
            assert secret not in stored, (event.event, secret)
    for value in session.scalars(select(AuditPersonalValue)):
        for secret in PERSONAL_STRINGS:
            assert secret not in f"{value.old_value} {value.new_value}"


def test_personal_data_is_shown_to_the_police_only(call, session, world, albert):
    move(
        session,
        albert,
        world["supervisor"],
        "apply_for_summary_review",
        received_at="2024-01-01T12:00:00Z",
        certificate_reference="C/1",
    )
    body = incident(licence_number="LIV/ALBERT", authority="LIV", personal_data={"people": PEOPLE})
    assert call("POST", URL, world["officer"], json=body).status_code == 201
    url = f"/api/v1/premises/{albert.id}/incidents"

    for role in ("officer", "supervisor"):
        items = call("GET", url, world[role]).get_json()["items"]
        assert items[0]["personal_data"]["people"][0]["name"] == "Alice Victimson"

    council = call("GET", url, world["council"])
    assert council.status_code == 200
    items = council.get_json()["items"]
    assert len(items) == 1
    assert "personal_data" not in items[0]
    text = council.get_data(as_text=True)
    for secret in PERSONAL_STRINGS:
        assert secret not in text
    admin_items = call("GET", url, world["admin"]).get_json()["items"]
    assert len(admin_items) == 1 and "personal_data" not in admin_items[0]


# ---- the council rule on GET /premises/<id>/incidents ----------------------------------


def test_the_council_sees_only_their_own_review_and_action_premises(call, session, world):
    crown, swan = world["premises"], world["other_premises"]  # LIV and SEF, monitored
    url = f"/api/v1/premises/{crown.id}/incidents"
    assert_error(call("GET", url, world["council"]), 404)  # monitored
    move(session, crown, world["officer"], "warn")
    assert_error(call("GET", url, world["council"]), 404)  # warned
    move(session, crown, world["supervisor"], "apply_for_review", application_date="2024-01-02")
    listed = call("GET", url, world["council"])
    assert listed.status_code == 200
    assert len(listed.get_json()["items"]) == 1  # the fixture's evidence
    assert_error(call("GET", url, world["other_council"]), 404)  # another authority
    assert_error(call("GET", f"{url}?status=suggested", world["council"]), 404)
    assert call("GET", f"{url}?status=suggested", world["officer"]).status_code == 200

    move(
        session,
        crown,
        world["supervisor"],
        "record_determination",
        outcome="revoke",
        decision_date="2024-02-01",
    )
    assert call("GET", url, world["council"]).status_code == 200  # action
    assert_error(call("GET", f"/api/v1/premises/{swan.id}/incidents", world["council"]), 404)
    assert_error(call("GET", "/api/v1/premises/999999/incidents", world["officer"]), 404)
    assert_error(call("GET", url), 401)


def test_a_bad_status_answers_400(call, world):
    url = f"/api/v1/premises/{world['premises'].id}/incidents?status=rejected"
    assert_error(call("GET", url, world["officer"]), 400)


def test_incidents_are_listed_newest_first(call, session, world, albert):
    now = datetime.now(UTC)
    for n, days in enumerate((10, 1, 5)):
        body = incident(
            source_ref=f"O-{n}",
            occurred_at=(now - timedelta(days=days)).isoformat(),
            licence_number="LIV/ALBERT",
            authority="LIV",
        )
        assert call("POST", URL, world["officer"], json=body).status_code == 201
    items = call("GET", f"/api/v1/premises/{albert.id}/incidents", world["officer"]).get_json()
    assert [i["source_ref"] for i in items["items"]] == ["O-1", "O-2", "O-0"]


# ---- every response matches the OpenAPI document ---------------------------------------


def test_incident_responses_match_the_openapi_document(app, session, world, albert):
    document = openapi_document()
    api = Recorder(app, session, document)
    officer, admin, council = world["officer"], world["admin"], world["council"]
    post = "/api/v1/incidents"
    listing = "/api/v1/premises/{premises_id}/incidents"

    linked = incident(
        licence_number="LIV/ALBERT",
        authority="LIV",
        latitude=LAT,
        longitude=LON,
        personal_data={"people": PEOPLE},
    )
    assert api("POST", URL, officer, post, json=linked).status_code == 201
    assert api("POST", URL, officer, post, json=linked).status_code == 200
    month_only = incident(source="police-uk", source_ref="PUK-9", month="2024-05")
    del month_only["occurred_at"]
    assert api("POST", URL, officer, post, json=month_only).status_code == 201
    near = incident(source_ref="NEAR-1", latitude=LAT + 20 * NORTH_PER_M, longitude=LON)
    batch = {"items": [near, incident(source_ref="NEAR-1"), incident(source_ref="B-2")]}
    assert api("POST", URL, officer, post, json=batch).status_code == 200
    mixed = {"items": [incident(source_ref="M-1"), incident(source_ref="M-2", latitude="abc")]}
    assert api("POST", URL, officer, post, json=mixed, valid_request=False).status_code == 200
    atomic = dict(mixed, atomic=True)
    assert api("POST", URL, officer, post, json=atomic, valid_request=False).status_code == 422
    bad = incident(latitude="abc", longitude=1)
    assert api("POST", URL, officer, post, json=bad, valid_request=False).status_code == 422
    huge = {"items": [incident(source_ref=f"H-{n}") for n in range(1001)]}
    assert api("POST", URL, officer, post, json=huge, valid_request=False).status_code == 422
    assert api("POST", URL, admin, post, json=linked).status_code == 403
    assert api("POST", URL, council, post, json=linked).status_code == 404
    assert api("POST", URL, None, post, json=linked).status_code == 401

    own = f"/api/v1/premises/{albert.id}/incidents"
    confirmed = api("GET", own, officer, listing).get_json()["items"]
    assert len(confirmed) == 1 and confirmed[0]["personal_data"]["people"]
    suggested = api("GET", f"{own}?status=suggested", officer, listing).get_json()["items"]
    assert [i["source_ref"] for i in suggested] == ["NEAR-1"]
    assert api("GET", own, council, listing).status_code == 404
    assert api("GET", f"{own}?status=everything", officer, listing).status_code == 400
    assert api("GET", own, None, listing).status_code == 401
    move(
        session,
        albert,
        world["supervisor"],
        "apply_for_summary_review",
        received_at="2024-01-01T12:00:00Z",
        certificate_reference="C/9",
    )
    shown = api("GET", own, council, listing).get_json()["items"]
    assert len(shown) == 1 and "personal_data" not in shown[0]

    expected = {
        ("post", post, 200),
        ("post", post, 201),
        ("post", post, 401),
        ("post", post, 403),
        ("post", post, 404),
        ("post", post, 422),
        ("get", listing, 200),
        ("get", listing, 400),
        ("get", listing, 401),
        ("get", listing, 404),
    }
    assert expected <= api.seen


def test_the_documented_schemas_refuse_what_the_api_must_not_send(world):
    """The checks above can fail: the incident schemas are strict."""
    document = openapi_document()
    schemas = document["components"]["schemas"]
    good = {
        "id": 1,
        "source": "rms",
        "source_ref": "R",
        "occurred_at": None,
        "month": "2024-01",
        "approximate": True,
        "category": "Drugs",
        "description": "",
        "location": "",
        "latitude": None,
        "longitude": None,
        "outcome": "",
        "created": True,
    }
    assert validate(document, schemas["IncidentRecorded"], good) == []
    assert validate(document, schemas["IncidentRecorded"], good | {"secret": 1})
    assert validate(document, schemas["IncidentRecorded"], good | {"source": "fax"})
    people = {"people": [{"role": "victim", "name": "A", "nickname": "B"}]}
    assert validate(document, schemas["IncidentRecorded"], good | {"personal_data": people})
    assert validate(document, schemas["BatchItemResult"], {"index": 0, "status": "stored"})


@pytest.mark.parametrize(
    "overrides",
    [
        {"description": "before\u0000after"},
        {"source_ref": "REF\u0000"},
        {"location": "\u0000"},
        {"personal_data": {"people": [{"role": "victim", "name": "A\u0000B"}]}},
    ],
)
def test_a_nul_character_answers_422_on_every_database(call, session, world, overrides):
    """PostgreSQL text cannot hold NUL: it must be refused as input, not fail as a 500."""
    response = call("POST", URL, world["officer"], json=incident(**overrides))
    body = assert_error(response, 422, "invalid")
    assert body["fields"]
    assert incident_count(session) == 0


def test_the_same_batch_posted_twice_at_once_stores_each_incident_once(app, session, world):
    """Two police-system workers retry the same batch at the same instant: each answer
    is a success or a 409 (never a 500), and every incident is stored exactly once."""
    import threading

    from licensing.auth.services import create_token
    from licensing.incidents.models import Incident

    token = create_token(session, world["officer"].email)
    batch = {
        "items": [
            {
                "source": "rms",
                "source_ref": f"RACE-{n}",
                "occurred_at": "2026-11-20T22:00:00Z",
                "category": "Public order",
            }
            for n in range(20)
        ]
    }
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def post() -> None:
        client = app.test_client()
        barrier.wait(timeout=10)
        response = client.post(
            "/api/v1/incidents", json=batch, headers={"Authorization": f"Bearer {token}"}
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(statuses) == 2 and set(statuses) <= {200, 409}
    assert 200 in statuses
    session.expire_all()
    refs = session.scalars(
        select(Incident.source_ref).where(Incident.source_ref.like("RACE-%"))
    ).all()
    assert sorted(refs) == sorted(f"RACE-{n}" for n in range(20))
