"""Deny by default: every route refuses an anonymous request unless it is listed public.

The meta-test enumerates `app.url_map`, so a route added without protection fails here
without anyone having to remember to add it to a list. The public endpoints each get
their own test of what they do, and the role tests check that council users learn
nothing (404) while officers are told they may not (403).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing import IntegerConverter, Rule

from licensing import create_app
from licensing.auth.public import PUBLIC_ENDPOINTS, SECRET_BEARING_ENDPOINTS
from licensing.premises.register_import import import_register
from tests.conftest import csrf_from, move, sign_in

IGNORED_METHODS = {"HEAD", "OPTIONS"}
EXPECTED_PUBLIC = {
    "auth.login",
    "static",
    "health.healthz",
    "health.readyz",  # tested in tests/test_observability.py
    # Password reset and OpenID Connect sign-in: each tested in tests/test_password_reset.py
    # and tests/test_oidc.py (the OIDC routes answer 404 unless OIDC_ENABLED).
    "reset.request_link",
    "reset.open_link",
    "reset.set_password",
    "oidc.start",
    "oidc.callback",
}


def _route_table(app: Flask) -> list[tuple[Rule, str]]:
    return [
        (rule, method)
        for rule in app.url_map.iter_rules()
        for method in sorted((rule.methods or set()) - IGNORED_METHODS)
    ]


# Enumerated at collection time from an app that never touches its (in-memory) database,
# so each route and method is its own test case; `test_enumeration_matches_the_app`
# checks the live test app has exactly the same table.
_COLLECTION_APP = create_app({"ENV_NAME": "testing", "DATABASE_URL": "sqlite://"})
PROTECTED = [
    (rule.rule, rule.endpoint, method)
    for rule, method in _route_table(_COLLECTION_APP)
    if rule.endpoint not in PUBLIC_ENDPOINTS | SECRET_BEARING_ENDPOINTS
]


def test_enumeration_matches_the_app(app: Flask) -> None:
    live = {(r.rule, r.endpoint, m) for r, m in _route_table(app)}
    public = {key for key in live if key[1] in PUBLIC_ENDPOINTS | SECRET_BEARING_ENDPOINTS}
    assert live - public == set(PROTECTED)
    assert len(PROTECTED) >= 15  # the register, workflow, import and API routes at least


@pytest.fixture
def path_values(world: dict[str, Any], session: Any) -> dict[str, Any]:
    """Plausible values for every path argument: ints name rows that exist."""
    csv = (
        b"CASEREFERENCE,PREMISESNAME,POSTCODE\r\n"
        b"PL/9001,The Anchor,L1 1AA\r\n"
        b",No Licence Number,L1 1AB\r\n"
    )
    run = import_register(session, csv, "guard.csv", world["liv"], world["officer"])
    return {
        "premises_id": world["premises"].id,
        "run_id": run.run_id,
        "event": "warn",
        "filename": "govuk-frontend.min.css",
    }


def _fill(rule: Rule, values: dict[str, Any]) -> dict[str, Any]:
    filled: dict[str, Any] = {}
    for name in rule.arguments:
        if name in values:
            filled[name] = values[name]
        else:  # a new argument: an int converter gets an id that exists, others text
            converter = rule._converters[name]  # noqa: SLF001
            filled[name] = 1 if isinstance(converter, IntegerConverter) else "x"
    return filled


def _anonymous_csrf_token(client: FlaskClient) -> str:
    # A real token in an anonymous session, so CSRF passes and the login check decides.
    return csrf_from(client.get("/sign-in").get_data(as_text=True))


@pytest.mark.parametrize(("rule_text", "endpoint", "method"), PROTECTED)
def test_protected_route_refuses_anonymous(
    app: Flask,
    client: FlaskClient,
    path_values: dict[str, Any],
    rule_text: str,
    endpoint: str,
    method: str,
) -> None:
    rule = next(
        r for r in app.url_map.iter_rules() if r.rule == rule_text and r.endpoint == endpoint
    )
    url = app.url_map.bind("localhost").build(endpoint, _fill(rule, path_values), method=method)
    token = _anonymous_csrf_token(client)
    data = {"csrf_token": token, "reason": "anonymous", "version": "1"}
    response = client.open(url, method=method, data=None if method == "GET" else data)

    if rule_text.startswith("/api/"):
        assert response.status_code == 401, (method, url, response.status_code)
        assert response.is_json
        assert response.get_json()["error"] == "unauthorised"
    else:
        assert response.status_code in (302, 401), (method, url, response.status_code)
        if response.status_code == 302:
            location = urlsplit(response.headers["Location"])
            assert location.path == "/sign-in", (method, url, response.headers["Location"])
    body = response.get_data(as_text=True)
    assert "The Crown" not in body and "The Anchor" not in body


def test_anonymous_post_without_csrf_token_is_refused_too(
    client: FlaskClient, world: dict[str, Any]
) -> None:
    premises = world["premises"]
    response = client.post(
        f"/premises/{premises.id}/events/warn", data={"reason": "x", "version": "1"}
    )
    assert response.status_code == 400


# ---- the public list itself ------------------------------------------------------------


def test_public_list_contains_only_the_expected_endpoints() -> None:
    assert set(PUBLIC_ENDPOINTS) == EXPECTED_PUBLIC
    # Each checks a secret of its own, tested where it is built (tests/test_ics.py).
    # /metrics checks METRICS_TOKEN (tests/test_observability.py).
    assert set(SECRET_BEARING_ENDPOINTS) == {"visits.feed", "metrics.metrics"}


def test_every_public_endpoint_exists(app: Flask) -> None:
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert set(PUBLIC_ENDPOINTS) <= endpoints


def test_public_routes_are_read_only_except_sign_in(app: Flask) -> None:
    methods = {
        rule.endpoint: (rule.methods or set()) - IGNORED_METHODS
        for rule in app.url_map.iter_rules()
        if rule.endpoint in PUBLIC_ENDPOINTS
    }
    assert methods == {
        "auth.login": {"GET", "POST"},
        "static": {"GET"},
        "health.healthz": {"GET"},
        "health.readyz": {"GET"},
        # Asking for a reset link and choosing the new password (with a live link) post.
        "reset.request_link": {"GET", "POST"},
        "reset.open_link": {"GET"},
        "reset.set_password": {"GET", "POST"},
        "oidc.start": {"GET"},
        "oidc.callback": {"GET"},
    }


# ---- each public endpoint does only what it says ---------------------------------------


def test_sign_in_page_is_public_and_shows_only_the_form(
    client: FlaskClient, world: dict[str, Any]
) -> None:
    response = client.get("/sign-in")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert '<h1 class="govuk-heading-l">Sign in</h1>' in page
    assert 'name="email"' in page and 'name="password"' in page
    assert "The Crown" not in page and "Sign out" not in page


def test_sign_in_post_with_correct_password_signs_in(
    client: FlaskClient, world: dict[str, Any]
) -> None:
    assert client.get("/premises").status_code == 302
    sign_in(client, world["officer"])
    assert client.get("/premises").status_code == 200


@pytest.mark.parametrize(
    "target", ["//evil.example/x", "https://evil.example/", "/\\evil.example", "/\t/evil.example"]
)
def test_sign_in_refuses_an_off_site_next(
    client: FlaskClient, world: dict[str, Any], target: str
) -> None:
    page = client.get("/sign-in").get_data(as_text=True)
    response = client.post(
        "/sign-in",
        query_string={"next": target},
        data={
            "email": world["officer"].email,
            "password": "correct-horse-battery-staple",
            "csrf_token": csrf_from(page),
        },
    )
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).netloc in ("", "localhost")
    assert urlsplit(response.headers["Location"]).path == "/"


def test_static_assets_are_public(client: FlaskClient) -> None:
    response = client.get("/assets/govuk-frontend.min.css")
    assert response.status_code == 200
    assert response.mimetype == "text/css"
    assert client.get("/assets/app/app.css").status_code == 200


def test_static_does_not_serve_outside_its_folder(client: FlaskClient) -> None:
    assert client.get("/assets/../__init__.py").status_code == 404
    assert client.get("/assets/%2e%2e/__init__.py").status_code == 404


def test_healthz_is_public_and_says_only_that_the_database_answers(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "up"}


# ---- roles: council users learn nothing; officers are told no ---------------------------


@pytest.fixture
def council_client(
    client: FlaskClient, world: dict[str, Any], session: Any
) -> Iterator[FlaskClient]:
    """A council user of the premises' own authority, with that premises under review."""
    move(
        session,
        world["premises"],
        world["supervisor"],
        "apply_for_summary_review",
        received_at="2025-01-06T10:00:00+00:00",
        certificate_reference="CERT-1",
    )
    sign_in(client, world["council"])
    yield client


def test_council_user_can_see_own_review_premises(
    council_client: FlaskClient, world: dict[str, Any]
) -> None:
    # The control for the 404s below: the premises is visible to this council user.
    assert council_client.get(f"/premises/{world['premises'].id}").status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/premises/import"),
        ("POST", "/premises/import"),
        ("GET", "/premises/new"),
        ("POST", "/premises/new"),
        ("GET", "/premises/{id}/edit"),
        ("POST", "/premises/{id}/edit"),
        ("POST", "/premises/{id}/events/warn"),
        ("POST", "/premises/{id}/events/withdraw_review"),
        ("GET", "/premises/import/{run}"),
        ("GET", "/premises/import/{run}/rejected.csv"),
    ],
)
def test_council_user_gets_404_on_police_pages(
    council_client: FlaskClient, path_values: dict[str, Any], method: str, path: str
) -> None:
    url = path.format(id=path_values["premises_id"], run=path_values["run_id"])
    token = csrf_from(council_client.get("/premises").get_data(as_text=True))
    data = {"csrf_token": token, "reason": "Council trying", "version": "2", "name": "Changed"}
    response = council_client.open(url, method=method, data=None if method == "GET" else data)
    assert response.status_code == 404
    assert "Page not found" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("state_events", "event", "extra"),
    [
        ([], "apply_for_summary_review", {}),
        (["warn"], "apply_for_review", {"apply_for_review-application_date": ["6", "1", "2025"]}),
        (["warn"], "stand_down", None),  # control: an officer may stand down
    ],
)
def test_officer_gets_403_on_supervisor_only_events(
    client: FlaskClient,
    world: dict[str, Any],
    session: Any,
    state_events: list[str],
    event: str,
    extra: dict | None,
) -> None:
    premises = world["premises"]
    for name in state_events:
        move(session, premises, world["supervisor"], name)
    sign_in(client, world["officer"])
    page = client.get(f"/premises/{premises.id}").get_data(as_text=True)
    data: dict[str, Any] = {
        f"{event}-csrf_token": csrf_from(page),
        f"{event}-version": str(premises.version),
        f"{event}-reason": "Officer trying",
        **(extra or {}),
    }
    response = client.post(f"/premises/{premises.id}/events/{event}", data=data)
    if extra is None:
        assert response.status_code == 302
    else:
        assert response.status_code == 403
        assert "may not" in response.get_data(as_text=True)
        session.expire_all()
        assert premises.state == ("warned" if state_events else "monitored")
