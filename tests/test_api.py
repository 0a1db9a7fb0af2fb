"""The JSON API: bearer tokens, the council rule, workflow events, keyset pagination."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from licensing.audit.models import AuditEvent
from licensing.auth.models import ApiToken, User
from licensing.auth.services import create_token
from licensing.db import utcnow
from licensing.premises.models import Premises
from tests.conftest import ensure_issued_bundle, move, sign_in

PAST = "2024-03-01"
LATER = "2024-03-20"


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


def assert_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json, response.get_data(as_text=True)[:300]
    body = response.get_json()
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["message"], str) and body["message"]
    if code is not None:
        assert body["error"] == code
    return dict(body)


def snapshot(call: Any, user: User, premises_id: int) -> tuple[int, str, list[int]]:
    """(version, state, history event ids) of a premises, read through the API."""
    shown = call("GET", f"/api/v1/premises/{premises_id}", user).get_json()
    history = call("GET", f"/api/v1/premises/{premises_id}/history", user).get_json()
    return shown["version"], shown["state"], [e["id"] for e in history["items"]]


def new_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "authority": "liv",
        "licence_number": "API/0001",
        "name": "The Baltic Fleet",
        "address": "33A Wapping, Liverpool",
        "postcode": "l1 8dq",
        "uprn": "38012345",
        "latitude": 53.3989,
        "longitude": -2.9900,
        "licence_holder": "Fleet Taverns Ltd",
        "dps": "Jane Example",
    }
    body.update(overrides)
    return body


# ---- authentication -------------------------------------------------------------------

ROUTES = [
    ("GET", "/api/v1/premises"),
    ("POST", "/api/v1/premises"),
    ("GET", "/api/v1/premises/{id}"),
    ("POST", "/api/v1/premises/{id}/transitions"),
    ("GET", "/api/v1/premises/{id}/history"),
    ("GET", "/api/v1/openapi.json"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_route_refuses_a_request_without_a_token(call, world, method, path):
    url = path.format(id=world["premises"].id)
    response = call(method, url, json={"event": "warn", "version": 1, "reason": "x"})
    assert_error(response, 401, "unauthorised")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "header",
    [
        "Bearer lic_not-a-real-token",
        "Bearer ",
        "Bearer not-even-prefixed",
        "Basic b2ZmaWNlcjpwdw==",
        "lic_x",
    ],
)
def test_unknown_or_malformed_tokens_are_refused(call, world, header):
    response = call("GET", "/api/v1/premises", headers={"Authorization": header})
    assert_error(response, 401, "unauthorised")


def test_revoked_expired_and_disabled_users_tokens_are_refused(app, session, world):
    officer = world["officer"]
    client = app.test_client()
    tokens = {
        name: create_token(session, officer.email, name) for name in ("live", "revoked", "expired")
    }

    def status(token: str) -> int:
        return client.get(
            "/api/v1/premises", headers={"Authorization": f"Bearer {token}"}
        ).status_code

    assert status(tokens["live"]) == 200
    by_label = {t.label: t for t in session.scalars(select(ApiToken)).all()}
    by_label["revoked"].revoked_at = utcnow()
    by_label["expired"].expires_at = utcnow() - timedelta(minutes=1)
    session.commit()
    assert status(tokens["revoked"]) == 401
    assert status(tokens["expired"]) == 401
    assert status(tokens["live"]) == 200

    officer.active = False
    session.commit()
    assert status(tokens["live"]) == 401


def test_a_signed_in_browser_session_is_not_enough(client, world):
    sign_in(client, world["officer"])
    assert client.get("/premises").status_code == 200  # the cookie works for pages
    assert_error(client.get("/api/v1/premises"), 401, "unauthorised")
    response = client.post(
        f"/api/v1/premises/{world['premises'].id}/transitions",
        json={"event": "warn", "version": 1, "reason": "Cookie only"},
    )
    assert_error(response, 401)
    assert world["premises"].version == 1


def test_the_token_works_without_the_prefix_case(call, app, session, world):
    token = create_token(session, world["officer"].email)
    response = app.test_client().get(
        "/api/v1/premises", headers={"Authorization": f"bearer {token}"}
    )
    assert response.status_code == 200


# ---- listing and keyset pagination ------------------------------------------------------


def test_list_shows_every_premises_to_police_and_admin(call, world):
    for role in ("officer", "supervisor", "admin"):
        response = call("GET", "/api/v1/premises", world[role])
        assert response.status_code == 200
        body = response.get_json()
        assert [p["name"] for p in body["items"]] == ["The Crown", "The Swan"]
        assert body["next_cursor"] is None
    crown = body["items"][0]
    assert crown["authority"] == "LIV"
    assert crown["state"] == "monitored" and crown["version"] == 1
    assert crown["case_officer"] == world["officer"].email
    assert crown["id"] == world["premises"].id


def test_each_listed_premises_is_what_its_own_page_shows(call, session, world, make_premises):
    """The list reads flat rows (authority code and case officer's email beside the
    premises' own columns), the single premises the objects: both must say the same,
    a premises without a case officer or coordinates included, filtered or not."""
    bare = make_premises(world["liv"], None, name="The Bare Bones", latitude=None, longitude=None)
    assert bare.case_officer is None and bare.latitude is None
    move(session, world["premises"], world["officer"], "warn")
    for query in ("", "?authority=liv", "?state=warned", "?q=bones&authority=LIV"):
        items = call("GET", f"/api/v1/premises{query}", world["officer"]).get_json()["items"]
        assert items, query
        for item in items:
            shown = call("GET", f"/api/v1/premises/{item['id']}", world["officer"]).get_json()
            assert item == shown, (query, item["name"])
            assert list(item) == list(shown)
    listed = call("GET", "/api/v1/premises?q=bones", world["officer"]).get_json()["items"]
    assert listed[0]["case_officer"] is None and listed[0]["authority"] == "LIV"
    warned = call("GET", "/api/v1/premises?state=warned", world["officer"]).get_json()["items"]
    assert [p["name"] for p in warned] == ["The Crown"] and warned[0]["version"] == 2


def _walk(call: Any, user: User, query: str) -> tuple[list[list[int]], list[str | None]]:
    pages: list[list[int]] = []
    cursors: list[str | None] = []
    cursor: str | None = None
    while True:
        url = f"/api/v1/premises?{query}" + (f"&cursor={cursor}" if cursor else "")
        response = call("GET", url, user)
        assert response.status_code == 200, response.get_data(as_text=True)
        body = response.get_json()
        pages.append([p["id"] for p in body["items"]])
        cursors.append(body["next_cursor"])
        cursor = body["next_cursor"]
        if cursor is None or len(pages) > 10:
            return pages, cursors


def test_keyset_pagination_visits_every_premises_once(
    call, session, make_authority, make_user, make_premises
):
    liv = make_authority("LIV")
    officer = make_user("officer")
    ids = [make_premises(liv, officer, name=f"Bar {n}").id for n in range(7)]
    pages, cursors = _walk(call, officer, "limit=3")
    assert [len(page) for page in pages] == [3, 3, 1]
    assert [i for page in pages for i in page] == sorted(ids)
    assert cursors[-1] is None and all(c is not None for c in cursors[:-1])


def test_exactly_full_last_page_has_no_next_cursor(call, make_authority, make_user, make_premises):
    liv = make_authority("LIV")
    officer = make_user("officer")
    ids = [make_premises(liv, officer).id for _ in range(6)]
    pages, cursors = _walk(call, officer, "limit=3")
    assert pages == [sorted(ids)[:3], sorted(ids)[3:]]
    assert cursors[-1] is None


def test_keyset_pagination_with_filters(call, session, make_authority, make_user, make_premises):
    liv, sef = make_authority("LIV"), make_authority("SEF")
    officer = make_user("officer")
    liv_ids = [make_premises(liv, officer, name=f"Liv {n}").id for n in range(7)]
    sef_ids = [make_premises(sef, officer, name=f"Sef {n}").id for n in range(3)]
    warned = set(liv_ids[::2]) | {sef_ids[0]}  # four in LIV, one in SEF
    for premises_id in warned:
        move(session, session.get(Premises, premises_id), officer, "warn")

    pages, _ = _walk(call, officer, "authority=liv&state=warned&limit=3")
    assert [len(page) for page in pages] == [3, 1]
    assert [i for page in pages for i in page] == sorted(set(liv_ids) & warned)

    pages, _ = _walk(call, officer, "authority=LIV&limit=3")
    assert [i for page in pages for i in page] == liv_ids

    pages, _ = _walk(call, officer, "state=monitored&limit=2")
    assert [i for page in pages for i in page] == sorted(set(liv_ids + sef_ids) - warned)


def test_a_premises_added_between_pages_is_not_skipped_or_repeated(
    call, make_authority, make_user, make_premises
):
    liv = make_authority("LIV")
    officer = make_user("officer")
    ids = [make_premises(liv, officer).id for _ in range(4)]
    first = call("GET", "/api/v1/premises?limit=2", officer).get_json()
    ids.append(make_premises(liv, officer).id)
    rest = call(
        "GET", f"/api/v1/premises?limit=10&cursor={first['next_cursor']}", officer
    ).get_json()
    assert [p["id"] for p in first["items"] + rest["items"]] == ids
    assert rest["next_cursor"] is None


def test_q_matches_name_licence_number_and_postcode(call, make_authority, make_user, make_premises):
    liv = make_authority("LIV")
    officer = make_user("officer")
    anchor = make_premises(
        liv, officer, name="The Anchor", licence_number="LIV/PL/77", postcode="L1 8DQ"
    )
    make_premises(liv, officer, name="The Bell", postcode="L3 5TF")

    def found(q: str) -> list[int]:
        return [
            p["id"] for p in call("GET", f"/api/v1/premises?q={q}", officer).get_json()["items"]
        ]

    assert found("anchor") == [anchor.id]
    assert found("liv/pl/77") == [anchor.id]
    assert found("l18dq") == [anchor.id]
    assert found("nothing-like-this") == []


@pytest.mark.parametrize(
    "query",
    [
        "cursor=abc",
        "cursor=-1",
        "cursor=1.5",
        "cursor=%C2%B2",  # a superscript two: isdigit() but not a number
        "cursor=" + "9" * 40,
        "limit=0",
        "limit=abc",
        "limit=100000",
        "state=closed",
    ],
)
def test_bad_query_parameters_answer_400(call, world, query):
    assert_error(call("GET", f"/api/v1/premises?{query}", world["officer"]), 400)


# ---- the council rule -----------------------------------------------------------------


@pytest.fixture
def council_world(session, world, make_premises):  # type: ignore[no-untyped-def]
    """LIV: one premises in each state; SEF: one in review."""
    officer, supervisor = world["officer"], world["supervisor"]
    liv, sef = world["liv"], world["sef"]
    monitored = world["premises"]
    warned = move(session, make_premises(liv, officer, name="Warned Inn"), officer, "warn")
    review = make_premises(liv, officer, name="Review Rooms")
    move(session, review, officer, "warn")
    move(session, review, supervisor, "apply_for_review", application_date=PAST)
    action = make_premises(liv, officer, name="Action Arms")
    move(
        session,
        action,
        supervisor,
        "apply_for_summary_review",
        received_at=f"{PAST}T10:00:00Z",
        certificate_reference="C/1",
    )
    move(session, action, supervisor, "record_determination", outcome="revoke", decision_date=LATER)
    other = make_premises(sef, officer, name="Sefton Review")
    move(
        session,
        other,
        supervisor,
        "apply_for_summary_review",
        received_at=f"{PAST}T10:00:00Z",
        certificate_reference="C/2",
    )
    return world | {
        "monitored": monitored,
        "warned": warned,
        "review": review,
        "action": action,
        "sef_review": other,
    }


def test_council_lists_only_their_own_authoritys_review_and_action_premises(call, council_world):
    w = council_world
    body = call("GET", "/api/v1/premises", w["council"]).get_json()
    assert [p["id"] for p in body["items"]] == [w["review"].id, w["action"].id]
    assert {p["state"] for p in body["items"]} == {"review", "action"}
    other = call("GET", "/api/v1/premises", w["other_council"]).get_json()
    assert [p["id"] for p in other["items"]] == [w["sef_review"].id]
    # filters cannot widen what they see
    assert call("GET", "/api/v1/premises?state=monitored", w["council"]).get_json()["items"] == []
    assert call("GET", "/api/v1/premises?authority=SEF", w["council"]).get_json()["items"] == []
    paged = call("GET", "/api/v1/premises?limit=1", w["council"]).get_json()
    assert [p["id"] for p in paged["items"]] == [w["review"].id] and paged["next_cursor"]


def test_council_reads_visible_premises_and_gets_404_for_everything_else(call, council_world):
    w = council_world
    council = w["council"]
    for name in ("review", "action"):
        pid = w[name].id
        assert call("GET", f"/api/v1/premises/{pid}", council).get_json()["id"] == pid
        history = call("GET", f"/api/v1/premises/{pid}/history", council)
        assert history.status_code == 200 and history.get_json()["items"]
    for name in ("monitored", "warned", "sef_review"):
        pid = w[name].id
        assert_error(call("GET", f"/api/v1/premises/{pid}", council), 404, "not_found")
        assert_error(call("GET", f"/api/v1/premises/{pid}/history", council), 404, "not_found")
    missing = call("GET", "/api/v1/premises/999999", council)
    hidden = call("GET", f"/api/v1/premises/{w['monitored'].id}", council)
    assert missing.get_json() == hidden.get_json()  # nothing tells them it exists


def test_council_gets_404_not_403_for_writes(call, session, council_world):
    w = council_world
    council = w["council"]
    before = session.scalar(select(func.count()).select_from(Premises))
    assert_error(call("POST", "/api/v1/premises", council, json=new_body()), 404, "not_found")
    assert session.scalar(select(func.count()).select_from(Premises)) == before
    action = w["action"]
    before_snapshot = snapshot(call, w["officer"], action.id)
    for name, event in (
        ("action", "close_action"),
        ("review", "withdraw_review"),
        ("monitored", "warn"),
    ):
        premises = w[name]
        response = call(
            "POST",
            f"/api/v1/premises/{premises.id}/transitions",
            council,
            json={"event": event, "version": premises.version, "reason": "Council says"},
        )
        assert_error(response, 404, "not_found")
    assert snapshot(call, w["officer"], action.id) == before_snapshot


# ---- reading one premises -------------------------------------------------------------


def test_show_returns_the_premises_with_state_and_version(call, session, world):
    premises = move(session, world["premises"], world["officer"], "warn")
    response = call("GET", f"/api/v1/premises/{premises.id}", world["admin"])
    assert response.status_code == 200
    body = response.get_json()
    assert body["id"] == premises.id and body["name"] == "The Crown"
    assert body["state"] == "warned" and body["version"] == 2
    assert body["licence_number"] == premises.licence_number


def test_show_of_a_missing_premises_is_a_json_404(call, world):
    assert_error(call("GET", "/api/v1/premises/424242", world["officer"]), 404, "not_found")


# ---- creating -------------------------------------------------------------------------


def test_create_registers_a_premises_and_records_an_audit_event(call, session, world):
    officer = world["officer"]
    response = call("POST", "/api/v1/premises", officer, json=new_body())
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    assert body["authority"] == "LIV"
    assert body["licence_number"] == "API/0001"
    assert body["postcode"] == "L1 8DQ"
    assert body["uprn"] == "38012345"
    assert body["latitude"] == pytest.approx(53.3989) and body["longitude"] == pytest.approx(-2.99)
    assert body["licence_holder"] == "Fleet Taverns Ltd" and body["dps"] == "Jane Example"
    assert body["case_officer"] == officer.email  # defaults to the creator
    assert body["state"] == "monitored" and body["version"] == 1

    assert call("GET", f"/api/v1/premises/{body['id']}", officer).get_json() == body
    events = session.scalars(select(AuditEvent).where(AuditEvent.premises_id == body["id"])).all()
    assert [(e.event, e.actor_id, e.to_state) for e in events] == [
        ("premises_registered", officer.id, "monitored")
    ]
    payload = json.loads(events[0].payload)
    assert payload["source"] == "api" and payload["licence_number"] == "API/0001"
    assert "Jane Example" not in events[0].payload  # personal values stay off the chain


def test_create_with_a_named_police_case_officer(call, world):
    body = new_body(case_officer=world["supervisor"].email.upper(), uprn=12345)
    response = call("POST", "/api/v1/premises", world["officer"], json=body)
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json()["case_officer"] == world["supervisor"].email
    assert response.get_json()["uprn"] == "12345"


@pytest.mark.parametrize("who", ["council", "admin", "nobody", "number", "inactive"])
def test_create_refuses_a_case_officer_who_is_not_an_active_police_user(
    call, session, world, make_user, who
):
    emails = {
        "council": world["council"].email,
        "admin": world["admin"].email,
        "nobody": "nobody@example.test",
        "number": 42,
    }
    if who == "inactive":
        retired = make_user("officer")
        retired.active = False
        session.commit()
        emails["inactive"] = retired.email
    response = call(
        "POST", "/api/v1/premises", world["officer"], json=new_body(case_officer=emails[who])
    )
    body = assert_error(response, 422, "invalid")
    assert "case_officer" in body["fields"]
    assert session.scalar(select(func.count()).select_from(Premises)) == 2


def test_admin_may_not_create(call, session, world):
    assert_error(
        call("POST", "/api/v1/premises", world["admin"], json=new_body()), 403, "forbidden"
    )
    assert session.scalar(select(func.count()).select_from(Premises)) == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"licence_number": "X/1", "name": "No authority"}, "authority"),
        ({"authority": "LIV", "name": "No licence"}, "licence_number"),
        ({"authority": "LIV", "licence_number": "   ", "name": "Blank licence"}, "licence_number"),
        ({"authority": "LIV", "licence_number": "X/1"}, "name"),
        ({"authority": "LIV", "licence_number": "X/1", "name": None}, "name"),
        ({"authority": "NOPE", "licence_number": "X/1", "name": "Unknown council"}, "authority"),
        (new_body(dps=5), "dps"),
        (new_body(name="N" * 301), "name"),
        (new_body(licence_number="L" * 65), "licence_number"),
        (new_body(postcode="P" * 40), "postcode"),
        (new_body(latitude=91), "latitude"),
        (new_body(longitude="east"), "longitude"),
        (new_body(latitude=True), "latitude"),
        (new_body(uprn="12-34"), "uprn"),
        (new_body(licence_status="closed"), "licence_status"),
        (new_body(state="action"), "state"),
        (new_body(id=1), "id"),
    ],
)
def test_create_refuses_invalid_fields_with_422(call, session, world, body, field):
    response = call("POST", "/api/v1/premises", world["officer"], json=body)
    error = assert_error(response, 422)
    assert field in error.get("fields", {}), error
    assert session.scalar(select(func.count()).select_from(Premises)) == 2


def test_create_refuses_a_duplicate_licence_number(call, session, world):
    licence = world["premises"].licence_number
    response = call(
        "POST", "/api/v1/premises", world["officer"], json=new_body(licence_number=licence)
    )
    error = assert_error(response, 422, "refused")
    assert licence in error["message"]
    assert session.scalar(select(func.count()).select_from(Premises)) == 2


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        ("{not json", "application/json"),
        ("[1, 2, 3]", "application/json"),
        ('"a string"', "application/json"),
        ("null", "application/json"),
        ("", "application/json"),
        ('{"authority": "LIV"}', "text/plain"),
        ("[" * 100_000 + "]" * 100_000, "application/json"),
        (b"\xff\xfe{}", "application/json"),
    ],
)
def test_malformed_bodies_answer_422_never_500(call, session, world, data, content_type):
    officer = world["officer"]
    premises = world["premises"]
    response = call("POST", "/api/v1/premises", officer, data=data, content_type=content_type)
    assert_error(response, 422, "invalid")
    response = call(
        "POST",
        f"/api/v1/premises/{premises.id}/transitions",
        officer,
        data=data,
        content_type=content_type,
    )
    assert_error(response, 422, "invalid")
    assert snapshot(call, officer, premises.id)[0] == 1
    assert session.scalar(select(func.count()).select_from(Premises)) == 2


# ---- workflow transitions -------------------------------------------------------------


def _transition(call: Any, user: User, premises_id: int, **body: Any) -> Any:
    return call("POST", f"/api/v1/premises/{premises_id}/transitions", user, json=body)


def test_an_officer_warns_a_premises(call, world):
    pid = world["premises"].id
    response = _transition(
        call, world["officer"], pid, event="warn", version=1, reason="Two assaults"
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["state"] == "warned" and body["version"] == 2 and body["id"] == pid
    history = call("GET", f"/api/v1/premises/{pid}/history", world["officer"]).get_json()["items"]
    assert history[0]["id"] == body["event_id"]
    assert (history[0]["event"], history[0]["from_state"], history[0]["to_state"]) == (
        "warn",
        "monitored",
        "warned",
    )
    assert history[0]["reason"] == "Two assaults"


def test_a_supervisor_takes_a_premises_through_review_to_action_and_back(call, world, session):
    sup, pid = world["supervisor"], world["premises"].id
    ensure_issued_bundle(session, world["premises"], sup)  # a review rests on one
    steps = [
        ({"event": "warn"}, "warned"),
        ({"event": "apply_for_review", "application_date": PAST}, "review"),
        (
            {
                "event": "record_determination",
                "outcome": "suspend",
                "decision_date": PAST,
                "suspended_until": LATER,
            },
            "action",
        ),
        ({"event": "close_action"}, "monitored"),
        (
            {
                "event": "apply_for_summary_review",
                "received_at": "2024-03-02T09:30:00",
                "certificate_reference": "SC/9",
            },
            "review",
        ),
        ({"event": "withdraw_review"}, "warned"),
        ({"event": "stand_down"}, "monitored"),
    ]
    for version, (body, state) in enumerate(steps, start=1):
        response = _transition(call, sup, pid, version=version, reason=f"Step {version}", **body)
        assert response.status_code == 200, response.get_data(as_text=True)
        assert (response.get_json()["state"], response.get_json()["version"]) == (
            state,
            version + 1,
        )
    history = call("GET", f"/api/v1/premises/{pid}/history", sup).get_json()["items"]
    # The bundle the review relied on was issued before the steps began.
    assert [e["event"] for e in history] == [b["event"] for b, _ in reversed(steps)] + [
        "bundle_issued",
        "premises_registered",
    ]
    determination = next(e for e in history if e["event"] == "record_determination")
    assert determination["payload"]["outcome"] == "suspend"
    assert determination["payload"]["suspended_until"] == LATER


def test_a_stale_version_answers_409_and_changes_nothing(call, session, world):
    officer, pid = world["officer"], world["premises"].id
    move(session, world["premises"], world["supervisor"], "warn")
    before = snapshot(call, officer, pid)
    response = _transition(call, officer, pid, event="stand_down", version=1, reason="Old page")
    assert_error(response, 409, "conflict")
    assert snapshot(call, officer, pid) == before == (2, "warned", before[2])


@pytest.mark.parametrize(
    ("user", "body", "status", "code"),
    [
        ("officer", {"event": "stand_down"}, 422, "refused"),  # not possible while monitored
        ("officer", {"event": "close_action"}, 403, "forbidden"),  # supervisor only
        (
            "officer",
            {
                "event": "apply_for_summary_review",
                "received_at": PAST,
                "certificate_reference": "C",
            },
            403,
            "forbidden",
        ),
        (
            "supervisor",
            {"event": "record_determination", "outcome": "revoke", "decision_date": PAST},
            422,
            "refused",
        ),
        ("supervisor", {"event": "explode"}, 422, "refused"),
        ("supervisor", {"event": "apply_for_summary_review"}, 422, "invalid"),  # parameters missing
        (
            "supervisor",
            {
                "event": "apply_for_summary_review",
                "received_at": "soon",
                "certificate_reference": "C",
            },
            422,
            "invalid",
        ),
        ("officer", {"event": "warn", "reason": ""}, 422, "invalid"),
        ("officer", {"event": "warn", "reason": None}, 422, "invalid"),
        ("officer", {"event": "warn", "reason": 7}, 422, "invalid"),
        ("officer", {"event": "warn", "version": "1"}, 422, "invalid"),
        ("officer", {"event": "warn", "version": True}, 422, "invalid"),
        ("officer", {"event": "warn", "version": None}, 422, "invalid"),
        ("officer", {"event": None}, 422, "invalid"),
        ("officer", {"event": "warn", "state": "action"}, 422, "invalid"),  # unknown field
        ("officer", {"event": "warn", "override_reason": 12}, 422, "invalid"),
        ("admin", {"event": "warn"}, 403, "forbidden"),
    ],
)
def test_a_refused_transition_changes_nothing(call, world, user, body, status, code):
    pid = world["premises"].id
    before = snapshot(call, world["officer"], pid)
    payload = {"version": 1, "reason": "Because"} | body
    response = _transition(call, world[user], pid, **payload)
    error = assert_error(response, status, code)
    assert snapshot(call, world["officer"], pid) == before
    if body["event"] == "stand_down":
        assert "not possible" in error["message"] and "warn" in error["message"]


def test_a_future_application_date_is_refused_with_the_field_named(call, world):
    sup, pid = world["supervisor"], world["premises"].id
    assert _transition(call, sup, pid, event="warn", version=1, reason="x").status_code == 200
    response = _transition(
        call,
        sup,
        pid,
        event="apply_for_review",
        version=2,
        reason="x",
        application_date="2999-01-01",
    )
    error = assert_error(response, 422, "invalid")
    assert "application_date" in error["fields"]
    assert snapshot(call, sup, pid)[:2] == (2, "warned")


def test_transition_on_a_missing_premises_is_404(call, world):
    response = _transition(call, world["officer"], 999999, event="warn", version=1, reason="x")
    assert_error(response, 404, "not_found")


# ---- history --------------------------------------------------------------------------


def test_history_is_newest_first_with_linked_hashes(call, session, world):
    officer, pid = world["officer"], world["premises"].id
    move(session, world["premises"], officer, "warn", reason="First")
    move(session, world["premises"], officer, "stand_down", reason="Second")
    response = call("GET", f"/api/v1/premises/{pid}/history", officer)
    assert response.status_code == 200
    body = response.get_json()
    items = body["items"]
    assert body["next_cursor"] is None
    assert [e["event"] for e in items] == ["stand_down", "warn", "premises_registered"]
    assert [e["seq"] for e in items] == [3, 2, 1]
    assert items[0]["reason"] == "Second" and items[0]["actor"] == officer.name
    for newer, older in zip(items, items[1:], strict=False):
        assert newer["prev_hash"] == older["hash"]
    assert items[-1]["prev_hash"] == "0" * 64
    for item in items:
        assert len(item["hash"]) == 64 and int(item["hash"], 16) >= 0
    stored = {
        e.id: e.content_hash
        for e in session.scalars(select(AuditEvent).where(AuditEvent.premises_id == pid))
    }
    assert {e["id"]: e["hash"] for e in items} == stored
    # the DPS's name is personal: the history says it was set, not what it was
    assert items[-1]["payload"]["fields"]["dps"] == {"personal": True}
    assert "Supervisor" not in json.dumps(items[-1]["payload"])


def test_history_pages_by_keyset(call, session, world):
    officer, premises = world["officer"], world["premises"]
    for _ in range(2):
        move(session, premises, officer, "warn")
        move(session, premises, officer, "stand_down")
    seqs: list[int] = []
    cursor = ""
    for _ in range(5):
        body = call(
            "GET", f"/api/v1/premises/{premises.id}/history?limit=2&cursor={cursor}", officer
        ).get_json()
        seqs += [e["seq"] for e in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seqs == [5, 4, 3, 2, 1]
    assert_error(
        call("GET", f"/api/v1/premises/{premises.id}/history?cursor=x", officer), 400, "bad_cursor"
    )


def test_history_of_a_missing_premises_is_404(call, world):
    assert_error(call("GET", "/api/v1/premises/999999/history", world["officer"]), 404, "not_found")


# ---- outside the API ------------------------------------------------------------------


def test_healthz_needs_no_token(call, world):
    response = call("GET", "/healthz")
    assert response.status_code == 200 and response.get_json()["status"] == "ok"


def test_openapi_is_served_to_a_token_holder(call, world):
    response = call("GET", "/api/v1/openapi.json", world["council"])
    assert response.status_code == 200
    assert response.get_json()["openapi"].startswith("3.1")
