"""The OpenAPI document describes every API route, and real responses match it."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from licensing.api.openapi import openapi_document
from licensing.auth.models import User
from licensing.auth.services import create_token
from licensing.premises import workflow
from tests.conftest import ensure_issued_bundle, move

HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


# ---- a small JSON Schema validator for the subset the document uses --------------------


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"only local $refs are used: {ref}"
    node: Any = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"$ref does not resolve: {ref}"
        node = node[part]
    return node


def _type_ok(value: Any, name: str) -> bool:
    checks = {
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, list),
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "null": lambda v: v is None,
    }
    assert name in checks, f"validator does not know type {name!r}"
    return bool(checks[name](value))


SUPPORTED = {
    "$ref", "type", "enum", "properties", "required", "additionalProperties", "items",
    "minimum", "maximum", "minLength", "maxLength", "pattern", "format", "description",
    "default", "oneOf", "minItems", "maxItems",
}  # fmt: skip


def validate(
    document: dict[str, Any], schema: dict[str, Any], value: Any, where: str = "$"
) -> list[str]:
    """Errors (empty when valid) of `value` against `schema`, resolving $refs in `document`."""
    unknown = set(schema) - SUPPORTED
    assert not unknown, f"validator does not support {unknown} at {where}"
    if "$ref" in schema:
        return validate(document, _resolve(document, schema["$ref"]), value, where)
    if "oneOf" in schema:
        matches = [alt for alt in schema["oneOf"] if not validate(document, alt, value, where)]
        if len(matches) != 1:
            return [f"{where}: matches {len(matches)} of the oneOf alternatives, not exactly 1"]
        return []
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_type_ok(value, t) for t in types):
            return [f"{where}: {value!r} is not of type {types}"]
    errors: list[str] = []
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: {value!r} not in {schema['enum']}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{where}: {value} < {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{where}: {value} > {schema['maximum']}")
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            errors.append(f"{where}: shorter than {schema['minLength']}")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errors.append(f"{where}: longer than {schema['maxLength']}")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append(f"{where}: {value!r} does not match {schema['pattern']}")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                errors.append(f"{where}: missing required {name!r}")
        extra = schema.get("additionalProperties", True)
        for name, item in value.items():
            if name in properties:
                errors += validate(document, properties[name], item, f"{where}.{name}")
            elif extra is False:
                errors.append(f"{where}: undocumented property {name!r}")
            elif isinstance(extra, dict):
                errors += validate(document, extra, item, f"{where}.{name}")
    if isinstance(value, list) and "minItems" in schema and len(value) < schema["minItems"]:
        errors.append(f"{where}: fewer than {schema['minItems']} items")
    if isinstance(value, list) and "maxItems" in schema and len(value) > schema["maxItems"]:
        errors.append(f"{where}: more than {schema['maxItems']} items")
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            errors += validate(document, schema["items"], item, f"{where}[{index}]")
    return errors


def test_the_validator_rejects_what_it_should():
    doc = {"components": {"schemas": {"N": {"type": ["integer", "null"], "minimum": 1}}}}
    schema = {
        "type": "object",
        "properties": {
            "n": {"$ref": "#/components/schemas/N"},
            "s": {"type": "string", "enum": ["a", "b"], "pattern": "^[ab]$"},
            "xs": {"type": "array", "items": {"type": "integer"}},
        },
        "required": ["n"],
        "additionalProperties": False,
    }
    assert validate(doc, schema, {"n": None, "s": "a", "xs": [1, 2]}) == []
    assert validate(doc, schema, {"n": 0})  # below minimum
    assert validate(doc, schema, {"n": True})  # a bool is not an integer
    assert validate(doc, schema, {"s": "a"})  # required missing
    assert validate(doc, schema, {"n": 1, "s": "c"})  # not in enum
    assert validate(doc, schema, {"n": 1, "xs": [1, "2"]})  # bad item
    assert validate(doc, schema, {"n": 1, "other": 1})  # undocumented
    assert validate(doc, schema, [])  # not an object
    with pytest.raises(AssertionError):
        validate(doc, {"$ref": "#/components/schemas/Missing"}, 1)


# ---- the document's structure ----------------------------------------------------------


@pytest.fixture
def document() -> dict[str, Any]:
    doc = openapi_document()
    json.dumps(doc)  # it must be plain JSON
    return doc


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    ]


def _openapi_path(rule: str) -> str:
    return re.sub(r"<(?:[a-z_]+(?:\([^)]*\))?:)?([a-z_]+)>", r"{\1}", rule)


def test_the_path_conversion_helper():
    assert (
        _openapi_path("/api/v1/premises/<int:premises_id>/history")
        == "/api/v1/premises/{premises_id}/history"
    )
    assert _openapi_path("/a/<name>") == "/a/{name}"


def test_every_api_route_and_method_is_documented_and_nothing_else(app, document):
    routes: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1"):
            methods = {m.lower() for m in rule.methods or ()} - {"head", "options"}
            routes.setdefault(_openapi_path(rule.rule), set()).update(methods)
    assert len(routes) >= 5
    documented = {
        path: {m for m in item if m in HTTP_METHODS} for path, item in document["paths"].items()
    }
    assert documented == routes


def test_document_header_and_bearer_scheme(document):
    assert document["openapi"].startswith("3.1")
    assert document["info"]["title"] and document["info"]["version"]
    schemes = document["components"]["securitySchemes"]
    bearer = [
        name for name, s in schemes.items() if s["type"] == "http" and s["scheme"] == "bearer"
    ]
    assert bearer


def test_every_operation_has_security_responses_and_a_documented_401(document):
    schemes = document["components"]["securitySchemes"]
    operation_ids = []
    for path, method, operation in _operations(document):
        where = f"{method.upper()} {path}"
        assert operation.get("security"), where
        for requirement in operation["security"]:
            assert requirement and set(requirement) <= set(schemes), where
        responses = operation["responses"]
        assert any(code.startswith("2") for code in responses), where
        assert "401" in responses, where
        operation_ids.append(operation["operationId"])
        assert operation.get("summary"), where
    assert len(operation_ids) == len(set(operation_ids))


def test_every_error_response_uses_the_error_shape(document):
    error = document["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"error", "message"}
    for path, method, operation in _operations(document):
        for code, response in operation["responses"].items():
            if code.startswith(("4", "5")):
                resolved = _resolve(document, response["$ref"]) if "$ref" in response else response
                schema = resolved["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, f"{method} {path} {code}"


def test_every_ref_resolves(document):
    refs: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.append(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)
    assert len(refs) > 20
    for ref in refs:
        assert _resolve(document, ref) is not None


def _parameters(document: dict[str, Any], path: str, method: str) -> list[dict[str, Any]]:
    item = document["paths"][path]
    raw = item.get("parameters", []) + item[method].get("parameters", [])
    return [_resolve(document, p["$ref"]) if "$ref" in p else p for p in raw]


def test_path_parameters_match_the_path_and_query_parameters_are_listed(document):
    for path, method, _operation in _operations(document):
        params = _parameters(document, path, method)
        in_path = {p["name"] for p in params if p["in"] == "path"}
        assert in_path == set(re.findall(r"{([^}]+)}", path)), f"{method} {path}"
        for param in params:
            assert param.get("schema"), param
            if param["in"] == "path":
                assert param["required"] is True
    listing = {
        p["name"] for p in _parameters(document, "/api/v1/premises", "get") if p["in"] == "query"
    }
    assert listing == {"state", "authority", "q", "limit", "cursor"}
    history = "/api/v1/premises/{premises_id}/history"
    assert {p["name"] for p in _parameters(document, history, "get") if p["in"] == "query"} == {
        "limit",
        "cursor",
    }


def test_request_bodies_are_documented_for_every_post(document):
    for path, method, operation in _operations(document):
        if method == "post":
            body = operation["requestBody"]
            schema = _resolve(document, body["content"]["application/json"]["schema"]["$ref"])
            if body["required"] is not True:
                # An optional body (issue, share, build with defaults) has no required field.
                assert not schema.get("required"), path
            for alternative in schema.get("oneOf", [schema]):
                if "$ref" in alternative:
                    alternative = _resolve(document, alternative["$ref"])
                assert set(alternative.get("required", [])) <= set(alternative["properties"]), path
    transition = document["components"]["schemas"]["Transition"]
    parameters = {p for rule in workflow.EVENT_RULES.values() for p in rule.parameters}
    assert parameters | {"event", "version", "reason"} == set(transition["properties"])
    assert transition["properties"]["event"]["enum"] == list(workflow.EVENT_RULES)
    create = document["components"]["schemas"]["PremisesCreate"]
    for field in (
        "authority", "licence_number", "name", "address", "postcode", "uprn", "latitude",
        "longitude", "licence_holder", "dps", "case_officer",
    ):  # fmt: skip
        assert field in create["properties"], field


# ---- real responses validate against the document --------------------------------------


class Recorder:
    """Calls the API and checks each response against the documented schema for its
    operation and status code."""

    def __init__(self, app: Any, session: Any, document: dict[str, Any]) -> None:
        self.app, self.session, self.document = app, session, document
        self.tokens: dict[int, str] = {}
        self.seen: set[tuple[str, str, int]] = set()

    def __call__(
        self, method: str, url: str, user: User | None, template: str, **kwargs: Any
    ) -> Any:
        headers = {}
        if user is not None:
            if user.id not in self.tokens:
                self.tokens[user.id] = create_token(self.session, user.email)
            headers["Authorization"] = f"Bearer {self.tokens[user.id]}"
        body = kwargs.get("json")
        valid_request = kwargs.pop("valid_request", True)
        operation = self.document["paths"][template][method.lower()]
        if body is not None and "requestBody" in operation and valid_request:
            schema = operation["requestBody"]["content"]["application/json"]["schema"]
            assert validate(self.document, schema, body) == [], f"sample request body: {body}"
        response = self.app.test_client().open(url, method=method, headers=headers, **kwargs)
        status = str(response.status_code)
        assert status in operation["responses"], (
            f"{method} {template} answered undocumented {status}"
        )
        documented = operation["responses"][status]
        if "$ref" in documented:
            documented = _resolve(self.document, documented["$ref"])
        schema = documented["content"]["application/json"]["schema"]
        errors = validate(self.document, schema, response.get_json())
        assert errors == [], f"{method} {url} {status}: {errors}"
        self.seen.add((method.lower(), template, response.status_code))
        return response


def test_real_responses_match_their_documented_schemas(app, session, world):
    document = openapi_document()
    api = Recorder(app, session, document)
    officer, supervisor, admin, council = (
        world[r] for r in ("officer", "supervisor", "admin", "council")
    )
    crown = world["premises"]
    one = "/api/v1/premises/{premises_id}"
    transitions = one + "/transitions"
    history = one + "/history"

    # list
    assert api("GET", "/api/v1/premises?limit=1", officer, "/api/v1/premises").get_json()[
        "next_cursor"
    ]
    api("GET", "/api/v1/premises?cursor=nope", officer, "/api/v1/premises")
    api("GET", "/api/v1/premises", None, "/api/v1/premises")

    # create
    body = {
        "authority": "LIV",
        "licence_number": "OA/1",
        "name": "The Schema Arms",
        "address": "1 Example Street",
        "postcode": "L1 1AA",
        "uprn": "1234",
        "latitude": 53.4,
        "longitude": -2.98,
        "licence_holder": "Schema Ltd",
        "dps": "A Person",
        "case_officer": supervisor.email,
    }
    created = api("POST", "/api/v1/premises", officer, "/api/v1/premises", json=body).get_json()
    assert created["case_officer"] == supervisor.email
    bad = {"authority": "LIV", "licence_number": "OA/2", "name": "", "latitude": 300}
    error = api(
        "POST", "/api/v1/premises", officer, "/api/v1/premises", json=bad, valid_request=False
    )
    assert error.status_code == 422 and error.get_json()["fields"]
    api("POST", "/api/v1/premises", admin, "/api/v1/premises", json=body)
    api("POST", "/api/v1/premises", council, "/api/v1/premises", json=body)

    # show
    api("GET", f"/api/v1/premises/{crown.id}", officer, one)
    api("GET", f"/api/v1/premises/{crown.id}", council, one)  # 404: monitored

    # transitions
    url = f"/api/v1/premises/{crown.id}/transitions"
    warned = api(
        "POST", url, officer, transitions, json={"event": "warn", "version": 1, "reason": "x"}
    )
    assert warned.status_code == 200 and warned.get_json()["state"] == "warned"
    api(
        "POST", url, officer, transitions, json={"event": "stand_down", "version": 1, "reason": "x"}
    )
    api("POST", url, officer, transitions, json={"event": "warn", "version": 2, "reason": "x"})
    api(
        "POST",
        url,
        officer,
        transitions,
        json={"event": "close_action", "version": 2, "reason": "x"},
    )
    ensure_issued_bundle(session, crown, supervisor)
    review = {
        "event": "apply_for_review",
        "version": 2,
        "reason": "x",
        "application_date": "2024-01-02",
    }
    assert api("POST", url, supervisor, transitions, json=review).status_code == 200
    determination = {
        "event": "record_determination",
        "version": 3,
        "reason": "Committee",
        "outcome": "suspend",
        "decision_date": "2024-02-01",
        "suspended_until": "2024-04-01",
    }
    assert (
        api("POST", url, supervisor, transitions, json=determination).get_json()["state"]
        == "action"
    )

    # history, including for the council now that the premises is in action
    items = api("GET", f"/api/v1/premises/{crown.id}/history", council, history).get_json()["items"]
    assert len(items) == 5  # registered, warned, bundle issued, review, determination
    api("GET", f"/api/v1/premises/{crown.id}/history?limit=1", officer, history)
    api("GET", f"/api/v1/premises/{crown.id}/history?limit=x", officer, history)
    api("GET", "/api/v1/premises/999999/history", officer, history)

    # the document itself
    served = api("GET", "/api/v1/openapi.json", officer, "/api/v1/openapi.json").get_json()
    assert served == document

    expected = {
        ("get", "/api/v1/premises", 200),
        ("get", "/api/v1/premises", 400),
        ("get", "/api/v1/premises", 401),
        ("post", "/api/v1/premises", 201),
        ("post", "/api/v1/premises", 403),
        ("post", "/api/v1/premises", 404),
        ("post", "/api/v1/premises", 422),
        ("get", one, 200),
        ("get", one, 404),
        ("post", transitions, 200),
        ("post", transitions, 403),
        ("post", transitions, 409),
        ("post", transitions, 422),
        ("get", history, 200),
        ("get", history, 400),
        ("get", history, 404),
        ("get", "/api/v1/openapi.json", 200),
    }
    assert expected <= api.seen


def test_council_list_and_transition_404_match_the_document(app, session, world, make_premises):
    document = openapi_document()
    api = Recorder(app, session, document)
    sup = world["supervisor"]
    premises = make_premises(world["liv"], world["officer"])
    move(
        session,
        premises,
        sup,
        "apply_for_summary_review",
        received_at="2024-01-01T12:00:00Z",
        certificate_reference="X",
    )
    listed = api("GET", "/api/v1/premises", world["council"], "/api/v1/premises").get_json()
    assert [p["id"] for p in listed["items"]] == [premises.id]
    template = "/api/v1/premises/{premises_id}/transitions"
    response = api(
        "POST",
        f"/api/v1/premises/{premises.id}/transitions",
        world["council"],
        template,
        json={"event": "withdraw_review", "version": premises.version, "reason": "x"},
    )
    assert response.status_code == 404
