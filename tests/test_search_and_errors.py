"""Search treats LIKE wildcards literally; over-long input and unknown API paths or methods
answer JSON errors, never a 500 or a redirect."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from licensing.auth.services import create_token
from licensing.premises import services
from tests.conftest import sign_in


@pytest.fixture
def call(app, session):  # type: ignore[no-untyped-def]
    tokens: dict[int, str] = {}

    def request(method: str, path: str, user: Any = None, **kwargs: Any) -> Any:
        headers = dict(kwargs.pop("headers", {}))
        if user is not None:
            if user.id not in tokens:
                tokens[user.id] = create_token(session, user.email)
            headers["Authorization"] = f"Bearer {tokens[user.id]}"
        return app.test_client().open(path, method=method, headers=headers, **kwargs)

    return request


def assert_json_error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    assert response.is_json, response.get_data(as_text=True)[:300]
    body = response.get_json()
    assert set(body) >= {"error", "message"}
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["message"], str) and body["message"]
    return dict(body)


# ---- search: % and _ mean themselves ----------------------------------------------------


@pytest.fixture
def names(world, make_premises):  # type: ignore[no-untyped-def]
    """Premises whose names hold the characters LIKE treats specially (plus the fixture's
    The Crown and The Swan)."""
    liv, officer = world["liv"], world["officer"]
    made = {
        name: make_premises(liv, officer, evidence=False, name=name).id
        for name in ("100% Proof", "Bar_One", "BarXOne", "Back\\Slash", "Plain Pub")
    }
    return made | {"The Crown": world["premises"].id, "The Swan": world["other_premises"].id}


def _api_search(call: Any, user: Any, q: str) -> set[int]:
    response = call("GET", f"/api/v1/premises?q={quote(q)}&limit=200", user)
    assert response.status_code == 200, response.get_data(as_text=True)
    return {p["id"] for p in response.get_json()["items"]}


def _service_search(session: Any, user: Any, q: str) -> set[int]:
    items, total = services.list_premises(session, user, services.PremisesFilter(q=q), 1, 200)
    assert total == len(items)
    return {p.id for p in items}


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("%", ["100% Proof"]),
        ("0%", ["100% Proof"]),
        ("%%", []),
        ("_", ["Bar_One"]),
        ("r_o", ["Bar_One"]),
        ("bar_one", ["Bar_One"]),
        ("barxone", ["BarXOne"]),
        ("\\", ["Back\\Slash"]),
        ("k\\s", ["Back\\Slash"]),
        ("%pub", []),
        ("p%b", []),
        ("pub", ["Plain Pub"]),
        ("_he", []),
    ],
)
def test_wildcards_in_a_search_mean_themselves(call, session, world, names, q, expected):
    want = {names[name] for name in expected}
    assert _api_search(call, world["officer"], q) == want
    assert _service_search(session, world["officer"], q) == want


def test_percent_matches_nothing_when_no_name_holds_one(call, session, world):
    assert _api_search(call, world["officer"], "%") == set()
    assert _api_search(call, world["officer"], "_") == set()
    assert _service_search(session, world["officer"], "%") == set()
    # the search still works for ordinary text
    assert _api_search(call, world["officer"], "crown") == {world["premises"].id}


def test_the_browser_search_treats_percent_literally(client, world, names):
    sign_in(client, world["officer"])
    page = client.get("/premises?q=%25").get_data(as_text=True)
    assert "100% Proof" in page
    assert "Plain Pub" not in page and "The Crown" not in page


# ---- over-long input --------------------------------------------------------------------


def test_a_400_character_name_answers_422_naming_the_field(call, session, world):
    body = {"authority": "LIV", "licence_number": "LONG/1", "name": "N" * 400}
    response = call("POST", "/api/v1/premises", world["officer"], json=body)
    error = assert_json_error(response, 422)
    assert "name" in error["fields"]
    listed = call("GET", "/api/v1/premises?q=LONG", world["officer"]).get_json()["items"]
    assert listed == []

    # the longest name the column holds is stored whole
    body["name"] = "N" * 300
    created = call("POST", "/api/v1/premises", world["officer"], json=body)
    assert created.status_code == 201, created.get_data(as_text=True)
    assert created.get_json()["name"] == "N" * 300


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("licence_number", "L" * 65),
        ("licence_holder", "H" * 301),
        ("dps", "D" * 301),
        ("postcode", "P" * 40),
        ("uprn", "1" * 13),
        ("latitude", "north"),
    ],
)
def test_other_over_long_or_malformed_fields_answer_422(call, world, field, value):
    body = {"authority": "LIV", "licence_number": "LONG/2", "name": "Long Bar", field: value}
    error = assert_json_error(call("POST", "/api/v1/premises", world["officer"], json=body), 422)
    assert field in error["fields"]


def test_the_service_refuses_a_400_character_name_too(session, world):
    from licensing.errors import ValidationFailed

    with pytest.raises(ValidationFailed) as refused:
        services.add_premises(
            session, world["officer"], world["liv"], "LONG/3", {"name": "N" * 400}
        )
    assert "name" in refused.value.errors


# ---- unknown paths and methods ------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/api/v1/nope", "/api/v1/premises/abc", "/api/v1/premises/1/nope", "/api/v2/premises"],
)
def test_an_unknown_api_path_answers_a_json_404(call, world, path):
    assert_json_error(call("GET", path, world["officer"]), 404)
    anonymous = call("GET", path)
    assert "Location" not in anonymous.headers
    assert_json_error(anonymous, 404)


def test_a_method_the_api_does_not_have_answers_a_json_405(call, world):
    for user in (world["officer"], None):
        assert_json_error(call("DELETE", "/api/v1/premises", user), 405)
    for method, path in (
        ("PUT", "/api/v1/incidents"),
        ("GET", "/api/v1/incidents"),
        ("DELETE", f"/api/v1/premises/{world['premises'].id}"),
        ("POST", f"/api/v1/premises/{world['premises'].id}/incidents"),
    ):
        assert_json_error(call(method, path, world["officer"]), 405)


def test_a_405_says_which_methods_are_allowed(call, world):
    response = call("DELETE", "/api/v1/premises", world["officer"])
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "POST"}
    incidents = call("GET", "/api/v1/incidents", world["officer"])
    assert "POST" in incidents.headers["Allow"].split(", ")


def test_pages_outside_the_api_keep_their_html_errors(client, world):
    sign_in(client, world["officer"])
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert not response.is_json
    assert "Page not found" in response.get_data(as_text=True)
