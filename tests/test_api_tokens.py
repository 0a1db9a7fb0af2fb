"""API tokens (security issue #7): hashed, scoped, expiring, revocable, shown once.

The meta-test enumerates `app.url_map`, so an API route added without a declared scope
fails here (and is refused at run time: deny by default).
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from click.testing import Result
from flask import Flask
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from licensing.api import required_scope, requires_scope
from licensing.api.openapi import openapi_document
from licensing.audit.models import AuditEvent
from licensing.auth.models import API_SCOPES, ApiToken, User
from licensing.auth.services import (
    DEFAULT_TOKEN_LIFETIME,
    create_token,
    issue_token,
    list_tokens,
    parse_scopes,
    revoke_token,
)
from licensing.cli import upgrade_database
from licensing.db import utcnow
from licensing.errors import NotFound, ValidationFailed
from licensing.incidents.models import Incident
from licensing.premises.models import Premises
from tests.conftest import ON_POSTGRES, PASSWORD, TEST_DATABASE_URL

IGNORED_METHODS = {"HEAD", "OPTIONS"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def incident_body(ref: str) -> dict[str, Any]:
    return {
        "source": "rms",
        "source_ref": ref,
        "occurred_at": (datetime.now(UTC) - timedelta(days=2)).isoformat(),
        "category": "Violence and sexual offences",
        "description": "Assault at closing time",
    }


def assert_insufficient_scope(response: Any, scope: str) -> None:
    assert response.status_code == 403, response.get_data(as_text=True)
    body = response.get_json()
    assert body["error"] == "insufficient_scope"
    assert body["scope"] == scope
    assert scope in body["message"]
    assert response.headers["WWW-Authenticate"] == (
        f'Bearer realm="licensing", error="insufficient_scope", scope="{scope}"'
    )


def assert_invalid_token(response: Any) -> None:
    assert response.status_code == 401, response.get_data(as_text=True)
    assert response.get_json()["error"] == "unauthorised"
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="licensing", error="invalid_token"'


def token_row(session: Any, token: str) -> ApiToken:
    digest = hashlib.sha256(token.encode()).hexdigest()
    session.expire_all()
    record = session.scalar(select(ApiToken).where(ApiToken.token_hash == digest))
    assert record is not None
    return record


# ---- every API endpoint declares its scope ---------------------------------------------


def _api_routes(app: Flask) -> list[tuple[str, str, str]]:
    return [
        (rule.rule, rule.endpoint, method)
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("api.")
        for method in sorted((rule.methods or set()) - IGNORED_METHODS)
    ]


def expected_scope(rule: str, method: str) -> str:
    if method == "GET":
        return "read"
    if rule == "/api/v1/incidents":
        return "ingest"
    return "workflow"


def test_every_api_endpoint_declares_the_scope_it_needs(app: Flask) -> None:
    routes = _api_routes(app)
    assert len(routes) >= 15
    assert {rule for rule, _e, _m in routes} >= {"/api/v1/premises", "/api/v1/incidents"}
    with app.app_context():
        declared = {(rule, method): required_scope(endpoint) for rule, endpoint, method in routes}
    undeclared = sorted(key for key, scope in declared.items() if scope is None)
    assert undeclared == [], f"API routes without @requires_scope: {undeclared}"
    wrong = {
        key: scope for key, scope in declared.items() if scope != expected_scope(key[0], key[1])
    }
    assert wrong == {}
    # One endpoint, one scope: no endpoint answers both GET and POST.
    assert len({endpoint for _r, endpoint, _m in routes}) == len(routes)


def test_requires_scope_refuses_an_unknown_scope() -> None:
    with pytest.raises(ValueError, match="Unknown scope"):
        requires_scope("admin")


def test_an_endpoint_that_declares_no_scope_is_refused_to_every_token(
    app: Flask, session: Any, world: dict[str, Any]
) -> None:
    # Deny by default: a view added to the API without a scope serves no token.
    app.add_url_rule("/api/v1/undeclared", endpoint="api.undeclared", view_func=lambda: "secret")
    token = create_token(session, world["supervisor"].email)
    response = app.test_client().get("/api/v1/undeclared", headers=bearer(token))
    assert response.status_code == 403
    assert response.get_json()["error"] == "insufficient_scope"
    assert "secret" not in response.get_data(as_text=True)
    assert app.test_client().get("/api/v1/undeclared").status_code == 401


def test_the_openapi_document_states_each_operations_scope(app: Flask) -> None:
    document = openapi_document()
    with app.app_context():
        for rule, endpoint, method in _api_routes(app):
            path = re.sub(r"<(?:[a-z_]+:)?([a-z_]+)>", r"{\1}", rule)
            operation = document["paths"][path][method.lower()]
            scope = required_scope(endpoint)
            assert operation["x-required-scope"] == scope, (method, path)
            assert operation["security"] == [{"bearerAuth": [scope]}], (method, path)
            assert f"`{scope}` scope" in operation["description"], (method, path)
            assert "403" in operation["responses"], (method, path)
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    for scope in API_SCOPES:
        assert f"`{scope}`" in scheme["description"]
    assert "insufficient_scope" in scheme["description"]
    assert "scope" in document["components"]["schemas"]["Error"]["properties"]
    assert "InsufficientScope" in document["components"]["responses"]


# ---- scope enforcement -------------------------------------------------------------------


@pytest.fixture
def scoped(app: Flask, session: Any, world: dict[str, Any]) -> Any:
    """Requests as the supervisor (whose role may do everything) with a token of only
    the given scopes."""
    tokens: dict[tuple[str, ...], str] = {}

    def request(scopes: tuple[str, ...], method: str, path: str, **kwargs: Any) -> Any:
        if scopes not in tokens:
            tokens[scopes] = create_token(session, world["supervisor"].email, scopes=scopes)
        return app.test_client().open(path, method=method, headers=bearer(tokens[scopes]), **kwargs)

    return request


def _operations(world: dict[str, Any]) -> dict[str, tuple[str, str, str, dict[str, Any]]]:
    premises = world["premises"]
    return {
        "list premises": ("read", "GET", "/api/v1/premises", {}),
        "show premises": ("read", "GET", f"/api/v1/premises/{premises.id}", {}),
        "history": ("read", "GET", f"/api/v1/premises/{premises.id}/history", {}),
        "deadlines": ("read", "GET", f"/api/v1/premises/{premises.id}/deadlines", {}),
        "incidents of premises": ("read", "GET", f"/api/v1/premises/{premises.id}/incidents", {}),
        "openapi": ("read", "GET", "/api/v1/openapi.json", {}),
        "send incident": ("ingest", "POST", "/api/v1/incidents", {"json": incident_body("T-1")}),
        "send batch": (
            "ingest",
            "POST",
            "/api/v1/incidents",
            {"json": {"items": [incident_body("T-2"), incident_body("T-3")]}},
        ),
        "transition": (
            "workflow",
            "POST",
            f"/api/v1/premises/{premises.id}/transitions",
            {"json": {"event": "warn", "version": premises.version, "reason": "Scoped"}},
        ),
        "create premises": (
            "workflow",
            "POST",
            "/api/v1/premises",
            {"json": {"authority": "LIV", "licence_number": "TOK/1", "name": "The Token"}},
        ),
        "build bundle": (
            "workflow",
            "POST",
            f"/api/v1/premises/{premises.id}/bundles",
            {"json": {}},
        ),
    }


OPERATIONS = [
    "list premises",
    "show premises",
    "history",
    "deadlines",
    "incidents of premises",
    "openapi",
    "send incident",
    "send batch",
    "transition",
    "create premises",
    "build bundle",
]


@pytest.mark.parametrize("token_scope", API_SCOPES)
@pytest.mark.parametrize("operation", OPERATIONS)
def test_a_token_may_do_only_what_its_scope_allows(
    scoped: Any, session: Any, world: dict[str, Any], token_scope: str, operation: str
) -> None:
    needed, method, path, kwargs = _operations(world)[operation]
    premises = world["premises"]
    incidents_before = session.scalar(select(func.count()).select_from(Incident))
    premises_before = session.scalar(select(func.count()).select_from(Premises))

    response = scoped((token_scope,), method, path, **kwargs)

    if token_scope == needed:
        assert response.status_code in (200, 201), response.get_data(as_text=True)[:500]
        return
    assert_insufficient_scope(response, needed)
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Incident)) == incidents_before
    assert session.scalar(select(func.count()).select_from(Premises)) == premises_before
    assert premises.version == 1 and premises.state == "monitored"


def test_a_token_with_several_scopes_may_do_each(scoped: Any, world: dict[str, Any]) -> None:
    both = ("read", "ingest")
    assert scoped(both, "GET", "/api/v1/premises").status_code == 200
    assert scoped(both, "POST", "/api/v1/incidents", json=incident_body("S-1")).status_code == 201
    premises = world["premises"]
    response = scoped(
        both,
        "POST",
        f"/api/v1/premises/{premises.id}/transitions",
        json={"event": "warn", "version": 1, "reason": "x"},
    )
    assert_insufficient_scope(response, "workflow")


def test_bundle_issue_and_share_need_the_workflow_scope_and_reads_need_read(
    scoped: Any, session: Any, world: dict[str, Any]
) -> None:
    from licensing.evidence import services as bundles

    bundle = bundles.create_bundle(session, world["supervisor"], world["premises"])
    base = f"/api/v1/bundles/{bundle.id}"
    for path in (base, f"{base}/pdf", f"{base}/zip"):
        assert_insufficient_scope(scoped(("workflow",), "GET", path), "read")
    assert scoped(("read",), "GET", base).status_code == 200
    assert_insufficient_scope(scoped(("read", "ingest"), "POST", f"{base}/issue"), "workflow")
    session.expire_all()
    assert bundle.status == "draft"
    issued = scoped(("workflow",), "POST", f"{base}/issue", json={})
    assert issued.status_code == 200, issued.get_data(as_text=True)
    assert_insufficient_scope(scoped(("read",), "POST", f"{base}/share"), "workflow")
    shared = scoped(("workflow",), "POST", f"{base}/share", json={})
    assert shared.status_code == 200, shared.get_data(as_text=True)


def test_a_scope_never_widens_a_role(app: Flask, session: Any, world: dict[str, Any]) -> None:
    client = app.test_client()
    premises = world["premises"]
    council = create_token(session, world["council"].email)  # every scope
    officer = create_token(session, world["officer"].email, scopes=["workflow"])

    response = client.post(
        f"/api/v1/premises/{premises.id}/transitions",
        headers=bearer(council),
        json={"event": "warn", "version": 1, "reason": "Council"},
    )
    assert response.status_code == 404  # as ever: council users learn nothing
    assert (
        client.post(
            "/api/v1/incidents", headers=bearer(council), json=incident_body("C-1")
        ).status_code
        == 404
    )

    from licensing.evidence import services as bundles

    bundle = bundles.create_bundle(session, world["supervisor"], premises)
    response = client.post(f"/api/v1/bundles/{bundle.id}/issue", headers=bearer(officer), json={})
    assert response.status_code == 403
    assert response.get_json()["error"] == "forbidden"  # the role refuses, not the scope


def test_scope_is_checked_before_the_resource_is_looked_up(
    scoped: Any, world: dict[str, Any]
) -> None:
    # Same answer for a premises that exists and one that does not.
    for premises_id in (world["premises"].id, 999999):
        response = scoped(("read",), "POST", f"/api/v1/premises/{premises_id}/transitions", json={})
        assert_insufficient_scope(response, "workflow")


# ---- issuing: scopes and expiry ------------------------------------------------------------


def test_create_token_defaults_to_every_scope_and_ninety_days(
    session: Any, world: dict[str, Any]
) -> None:
    before = utcnow()
    token = create_token(session, world["officer"].email, "default")
    record = token_row(session, token)
    assert record.scopes == "read ingest workflow"
    assert record.scope_set == set(API_SCOPES)
    assert record.label == "default"
    assert DEFAULT_TOKEN_LIFETIME.days == 90
    assert before + timedelta(days=90) <= record.expires_at <= utcnow() + timedelta(days=90)
    assert record.revoked_at is None and record.last_used_at is None


def test_create_token_takes_scopes_and_a_lifetime(session: Any, world: dict[str, Any]) -> None:
    token = create_token(
        session, world["officer"].email, scopes=["workflow,read"], expires_in=timedelta(hours=1)
    )
    record = token_row(session, token)
    assert record.scopes == "read workflow"  # canonical order, no duplicates
    assert record.expires_at <= utcnow() + timedelta(hours=1)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["read"], ("read",)),
        (["ingest,read"], ("read", "ingest")),
        (["read", "workflow", "read"], ("read", "workflow")),
        (["read, ingest", "workflow"], API_SCOPES),
    ],
)
def test_parse_scopes(values: list[str], expected: tuple[str, ...]) -> None:
    assert parse_scopes(values) == expected


@pytest.mark.parametrize("values", [[], [""], [" , "], ["admin"], ["read,write"], ["READ"]])
def test_parse_scopes_refuses_unknown_and_empty(values: list[str]) -> None:
    with pytest.raises(ValidationFailed):
        parse_scopes(values)


def test_a_token_must_expire_in_the_future(session: Any, world: dict[str, Any]) -> None:
    with pytest.raises(ValidationFailed):
        create_token(session, world["officer"].email, expires_in=timedelta(0))
    assert session.scalar(select(func.count()).select_from(ApiToken)) == 0


# ---- expiry, revocation, last use ----------------------------------------------------------


def test_an_expired_token_answers_401_like_an_unknown_one(
    app: Flask, session: Any, world: dict[str, Any]
) -> None:
    client = app.test_client()
    short = create_token(session, world["officer"].email, expires_in=timedelta(days=1))
    default = create_token(session, world["officer"].email)
    now = utcnow()

    with time_machine.travel(now + timedelta(hours=23), tick=False):
        assert client.get("/api/v1/premises", headers=bearer(short)).status_code == 200
    with time_machine.travel(now + timedelta(days=1, seconds=1), tick=False):
        expired = client.get("/api/v1/premises", headers=bearer(short))
        unknown = client.get("/api/v1/premises", headers=bearer("lic_" + "x" * 43))
        assert_invalid_token(expired)
        assert_invalid_token(unknown)
        assert expired.get_json() == unknown.get_json()
        assert client.get("/api/v1/premises", headers=bearer(default)).status_code == 200
    with time_machine.travel(now + timedelta(days=89), tick=False):
        assert client.get("/api/v1/premises", headers=bearer(default)).status_code == 200
    with time_machine.travel(now + timedelta(days=90, minutes=1), tick=False):
        assert_invalid_token(client.get("/api/v1/premises", headers=bearer(default)))


def test_no_token_gets_a_challenge_without_an_error_code(app: Flask) -> None:
    response = app.test_client().get("/api/v1/premises")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="licensing"'


def test_a_revoked_token_answers_401_at_once(
    app: Flask, session: Any, world: dict[str, Any]
) -> None:
    client = app.test_client()
    record, token = issue_token(session, world["officer"].email, "to revoke")
    other = create_token(session, world["officer"].email, "kept")
    assert client.get("/api/v1/premises", headers=bearer(token)).status_code == 200

    revoked, changed = revoke_token(session, record.id)
    assert changed and revoked.revoked_at is not None

    assert_invalid_token(client.get("/api/v1/premises", headers=bearer(token)))
    assert client.get("/api/v1/premises", headers=bearer(other)).status_code == 200
    again, changed = revoke_token(session, record.id)
    assert not changed and again.revoked_at == revoked.revoked_at
    with pytest.raises(NotFound):
        revoke_token(session, 999999)
    events = session.scalars(select(AuditEvent).where(AuditEvent.event == "api_token_revoked"))
    assert len(events.all()) == 1


def test_last_used_at_is_recorded_at_most_once_a_minute(
    app: Flask, session: Any, world: dict[str, Any]
) -> None:
    client = app.test_client()
    token = create_token(session, world["officer"].email)
    assert token_row(session, token).last_used_at is None
    start = utcnow().replace(microsecond=0) + timedelta(seconds=5)

    with time_machine.travel(start, tick=False):
        assert client.get("/api/v1/premises", headers=bearer(token)).status_code == 200
    assert token_row(session, token).last_used_at == start

    with time_machine.travel(start + timedelta(seconds=50), tick=False):
        assert client.get("/api/v1/premises", headers=bearer(token)).status_code == 200
        assert client.get("/api/v1/openapi.json", headers=bearer(token)).status_code == 200
    assert token_row(session, token).last_used_at == start  # not written again

    later = start + timedelta(minutes=1, seconds=1)
    with time_machine.travel(later, tick=False):
        assert client.get("/api/v1/premises", headers=bearer(token)).status_code == 200
    assert token_row(session, token).last_used_at == later


def test_a_refused_token_is_not_marked_used(
    app: Flask, session: Any, world: dict[str, Any]
) -> None:
    record, token = issue_token(session, world["officer"].email)
    revoke_token(session, record.id)
    app.test_client().get("/api/v1/premises", headers=bearer(token))
    assert token_row(session, token).last_used_at is None


# ---- storage: the hash only ----------------------------------------------------------------


def test_only_the_tokens_hash_is_stored(app: Flask, session: Any, world: dict[str, Any]) -> None:
    token = create_token(session, world["officer"].email, "hash only")
    app.test_client().get("/api/v1/premises", headers=bearer(token))  # and after use
    secret = token.removeprefix("lic_")
    digest = hashlib.sha256(token.encode()).hexdigest()

    rows = session.execute(text("SELECT * FROM api_tokens")).mappings().all()
    assert len(rows) == 1
    assert rows[0]["token_hash"] == digest
    stored = " ".join(str(value) for value in rows[0].values())
    assert secret not in stored and secret[:16] not in stored
    audit = " ".join(str(row) for row in session.execute(text("SELECT * FROM audit_events")).all())
    assert secret[:16] not in audit


# ---- the CLI -----------------------------------------------------------------------------------


def run(app: Flask, *args: str, input: str | None = None) -> Result:  # noqa: A002
    return app.test_cli_runner().invoke(args=list(args), input=input)


@pytest.fixture
def cli_users(app: Flask) -> Iterator[None]:
    for email in ("pc@police.example", "sgt@police.example"):
        role = "officer" if email.startswith("pc") else "supervisor"
        result = run(app, "users", "create", email, "--role", role, input=PASSWORD + "\n")
        assert result.exit_code == 0, result.output
    yield


def _cli_token(app: Flask, *args: str) -> str:
    result = run(app, "tokens", "create", *args)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("lic_")  # alone on stdout, as ever
    return lines[0]


def _record(app: Flask, token: str) -> ApiToken:
    from licensing.db import get_session

    with app.app_context():
        record = token_row(get_session(), token)
        record.user  # noqa: B018 - loaded while the session is open
        return record


def test_cli_create_defaults_to_every_scope_and_ninety_days(app: Flask, cli_users: None) -> None:
    result = run(app, "tokens", "create", "pc@police.example", "--label", "rms")
    token = result.stdout.strip()
    assert "read ingest workflow" in result.stderr and "shown only once" in result.stderr
    assert token not in result.stderr
    record = _record(app, token)
    assert record.scopes == "read ingest workflow"
    assert abs(record.expires_at - (utcnow() + timedelta(days=90))) < timedelta(minutes=1)


@pytest.mark.parametrize(
    ("args", "scopes"),
    [
        (("--scope", "ingest"), "ingest"),
        (("--scope", "read,ingest"), "read ingest"),
        (("--scope", "workflow", "--scope", "read"), "read workflow"),
        (("--scope", "read", "--scope", "ingest,workflow"), "read ingest workflow"),
    ],
)
def test_cli_create_narrows_scopes(
    app: Flask, cli_users: None, args: tuple[str, ...], scopes: str
) -> None:
    token = _cli_token(app, "pc@police.example", *args)
    assert _record(app, token).scopes == scopes


def test_cli_create_ingest_only_token_cannot_read(app: Flask, cli_users: None) -> None:
    token = _cli_token(app, "sgt@police.example", "--scope", "ingest")
    client = app.test_client()
    assert_insufficient_scope(client.get("/api/v1/premises", headers=bearer(token)), "read")
    sent = client.post("/api/v1/incidents", headers=bearer(token), json=incident_body("CLI-1"))
    assert sent.status_code == 201, sent.get_data(as_text=True)


def test_cli_create_expires_days(app: Flask, cli_users: None) -> None:
    token = _cli_token(app, "pc@police.example", "--expires-days", "7")
    record = _record(app, token)
    assert abs(record.expires_at - (utcnow() + timedelta(days=7))) < timedelta(minutes=1)
    client = app.test_client()
    with time_machine.travel(utcnow() + timedelta(days=7, minutes=1), tick=False):
        assert_invalid_token(client.get("/api/v1/premises", headers=bearer(token)))


@pytest.mark.parametrize(
    ("args", "exit_code", "message"),
    [
        (("--scope", "admin"), 1, "Unknown scope admin"),
        (("--scope", ","), 1, "at least one scope"),
        (("--expires-days", "0"), 2, "--expires-days"),
        (("--expires-days", "soon"), 2, "--expires-days"),
    ],
)
def test_cli_create_refuses_bad_options(
    app: Flask, cli_users: None, args: tuple[str, ...], exit_code: int, message: str
) -> None:
    result = run(app, "tokens", "create", "pc@police.example", *args)
    assert result.exit_code == exit_code
    assert result.stdout == ""
    assert message in result.stderr
    with app.app_context():
        from licensing.db import get_session

        assert get_session().scalar(select(func.count()).select_from(ApiToken)) == 0


def test_cli_list_shows_the_records_never_the_tokens(app: Flask, cli_users: None) -> None:
    pc = _cli_token(app, "pc@police.example", "--label", "rms feed", "--scope", "ingest")
    sgt = _cli_token(app, "sgt@police.example", "--label", "case system")
    app.test_client().get("/api/v1/premises", headers=bearer(sgt))

    result = run(app, "tokens", "list")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split("\t") == [
        "id", "user", "label", "scopes", "created", "expires", "last_used", "revoked",
    ]  # fmt: skip
    rows = [line.split("\t") for line in lines[1:]]
    assert [(r[1], r[2], r[3]) for r in rows] == [
        ("pc@police.example", "rms feed", "ingest"),
        ("sgt@police.example", "case system", "read,ingest,workflow"),
    ]
    assert rows[0][6] == "-" and rows[1][6] != "-"  # last used: only the sergeant's
    assert rows[0][7] == rows[1][7] == "-"  # neither revoked
    for token in (pc, sgt):
        assert token not in result.output and token[4:20] not in result.output
        assert hashlib.sha256(token.encode()).hexdigest() not in result.output

    mine = run(app, "tokens", "list", "PC@police.example")
    assert [line.split("\t")[1] for line in mine.stdout.splitlines()[1:]] == ["pc@police.example"]
    unknown = run(app, "tokens", "list", "nobody@police.example")
    assert unknown.exit_code == 1 and "No user" in unknown.stderr


def test_cli_revoke(app: Flask, cli_users: None) -> None:
    token = _cli_token(app, "pc@police.example", "--label", "lost laptop")
    kept = _cli_token(app, "pc@police.example", "--label", "kept")
    token_id = _record(app, token).id
    client = app.test_client()
    assert client.get("/api/v1/premises", headers=bearer(token)).status_code == 200

    result = run(app, "tokens", "revoke", str(token_id))
    assert result.exit_code == 0, result.output
    assert f"Revoked token {token_id} of pc@police.example" in result.stdout

    assert_invalid_token(client.get("/api/v1/premises", headers=bearer(token)))
    assert client.get("/api/v1/premises", headers=bearer(kept)).status_code == 200
    listed = {
        row.split("\t")[0]: row.split("\t")
        for row in run(app, "tokens", "list").stdout.splitlines()
    }
    assert listed[str(token_id)][7] != "-"
    assert listed[str(_record(app, kept).id)][7] == "-"

    again = run(app, "tokens", "revoke", str(token_id))
    assert again.exit_code == 0 and "already revoked" in again.stdout
    missing = run(app, "tokens", "revoke", "999999")
    assert missing.exit_code == 1 and "No API token with id 999999" in missing.stderr


def test_list_tokens_service(session: Any, world: dict[str, Any]) -> None:
    create_token(session, world["officer"].email, "a")
    create_token(session, world["supervisor"].email, "b")
    assert [t.label for t in list_tokens(session)] == ["a", "b"]
    assert [t.label for t in list_tokens(session, world["supervisor"].email)] == ["b"]
    with pytest.raises(NotFound):
        list_tokens(session, "nobody@example.test")


# ---- migration 0008: tokens issued before it get every scope and an expiry --------------


@pytest.fixture
def scratch_database_url(tmp_path: Path) -> Iterator[str]:
    """An empty database of the run's kind, just for this test."""
    if not ON_POSTGRES:
        yield f"sqlite:///{tmp_path / 'scratch.db'}"
        return
    server = make_url(TEST_DATABASE_URL)
    name = (
        f"licensing_tokmig_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{uuid.uuid4().hex[:8]}"
    )
    admin = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _naive(value: Any) -> datetime:
    # SQLite hands raw SQL timestamps back as text.
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def test_migration_0008_gives_old_tokens_every_scope_and_an_expiry(
    scratch_database_url: str,
) -> None:
    upgrade_database(scratch_database_url, "0007")
    engine = create_engine(scratch_database_url)
    created = datetime(2025, 1, 1, 9, 0)
    set_expiry = datetime(2030, 1, 1, 0, 0)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO users (id, email, name, password_hash, role, active, created_at) "
                    "VALUES (1, 'old@police.example', 'Old', 'x', 'officer', :t, :c)"
                ),
                {"t": True, "c": created},
            )
            for n, (scopes, expires) in enumerate(
                [("", None), ("read", None), ("ingest", set_expiry)], start=1
            ):
                conn.execute(
                    text(
                        "INSERT INTO api_tokens (id, user_id, token_hash, label, scopes, "
                        "created_at, expires_at) VALUES (:id, 1, :h, '', :s, :c, :e)"
                    ),
                    {"id": n, "h": f"{n:064x}", "s": scopes, "c": created, "e": expires},
                )
        before = datetime.now(UTC).replace(tzinfo=None)
        upgrade_database(scratch_database_url, "0008")
        after = datetime.now(UTC).replace(tzinfo=None)
        with engine.connect() as conn:
            rows = [
                (row[0], row[1], _naive(row[2]))
                for row in conn.execute(
                    text("SELECT id, scopes, expires_at FROM api_tokens ORDER BY id")
                )
            ]
            revision = conn.scalar(text("SELECT version_num FROM alembic_version"))
        assert revision == "0008"
        assert [(r[0], r[1]) for r in rows] == [
            (1, "read ingest workflow"),
            (2, "read"),
            (3, "ingest"),
        ]
        for row in rows[:2]:
            assert before + timedelta(days=90) - timedelta(seconds=1) <= row[2]
            assert row[2] <= after + timedelta(days=90)
        assert rows[2][2] == set_expiry  # an expiry already set is kept
        with pytest.raises(Exception, match="(?i)null"), engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO api_tokens (user_id, token_hash, label, scopes, created_at) "
                    "VALUES (1, :h, '', 'read', :c)"
                ),
                {"h": "f" * 64, "c": created},
            )
    finally:
        engine.dispose()


def test_disabling_a_user_kills_their_tokens(session: Any, world: dict[str, Any]) -> None:
    from licensing.auth.services import user_for_token

    token = create_token(session, world["officer"].email, scopes=["read"])
    assert user_for_token(session, token) == world["officer"]
    officer: User = world["officer"]
    officer.active = False
    session.commit()
    assert user_for_token(session, token) is None
