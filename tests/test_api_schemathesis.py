"""Schemathesis against the API's OpenAPI document (issue #7).

Every operation of the document /api/v1/openapi.json serves is exercised with generated
requests, valid and invalid, against the real app (in-process WSGI, on the test's own
database built by the migrations): as a police officer holding every scope, then the
workflow operations again as a supervisor. Every answer must pass Schemathesis's
built-in checks: no server error; a documented status code, content type, headers and
body schema; invalid input refused with a 4xx; valid input never refused as malformed
(422 stays allowed for it: it is how a rule refuses, such as an unknown authority code
or an event the state does not allow); no answer without the bearer token.

Each operation gets a fresh database seeded with premises in every state, incidents with
people, and bundles draft, issued and shared; generated path ids are drawn from the
seeded ids half the time, so the fuzzer gets past the 404s. Generation is derandomised
with a fixed seed and bounded (MAX_EXAMPLES per operation plus Schemathesis's coverage
cases), so the file is the same every run and takes 40 to 90 seconds on SQLite.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import negative_data_rejection
from sqlalchemy.orm import Session

from licensing.api.openapi import openapi_document
from licensing.auth.services import create_token
from licensing.evidence import services as bundles
from licensing.incidents.services import record_incident
from licensing.premises.models import Premises
from tests.conftest import move

SEED = 20260701
# Generated examples per operation in the fuzzing phase; the coverage phase adds its own
# deterministic boundary and negative cases.
MAX_EXAMPLES = 25
# Ids the seeded database holds (and a few past them), drawn for path parameters.
PREMISES_IDS = list(range(1, 8))
BUNDLE_IDS = list(range(1, 5))
# Hypothesis: the fixtures build one database per operation, shared by its examples on
# purpose (later requests meet what earlier ones created); no per-example deadline, as
# a bundle build renders a PDF.
SETTINGS = settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)


def seed_database(
    session: Session, world: dict[str, Any], make_premises: Callable[..., Premises]
) -> dict[str, Any]:
    """Premises in every state, incidents with people, bundles draft, issued and shared;
    returns their ids and a token of every scope for the officer and the supervisor."""
    officer, supervisor, liv = world["officer"], world["supervisor"], world["liv"]
    warned = make_premises(liv, officer, name="The Warned Arms")
    move(session, warned, officer, "warn")
    review = make_premises(liv, officer, name="The Review Tavern")
    move(session, review, officer, "warn")
    move(session, review, supervisor, "apply_for_review", application_date="2024-01-02")
    action = make_premises(liv, officer, name="The Action Inn")
    move(session, action, officer, "warn")
    move(session, action, supervisor, "apply_for_review", application_date="2024-01-02")
    move(
        session,
        action,
        supervisor,
        "record_determination",
        outcome="suspend",
        decision_date="2024-02-01",
        suspended_until="2024-04-01",
    )
    when = (datetime.now(UTC) - timedelta(days=3)).isoformat()
    for index, premises in enumerate((world["premises"], warned, review)):
        record_incident(
            session,
            officer,
            {
                "source": "rms",
                "source_ref": f"FUZZ-{index}",
                "occurred_at": when,
                "category": "Violence and sexual offences",
                "description": "Assault outside",
                "licence_number": premises.licence_number,
                "authority": "LIV",
                "personal_data": {
                    "people": [
                        {"role": "victim", "name": f"Fuzz Victim {index}", "phone": "07700 900456"}
                    ]
                },
            },
        )
    draft = bundles.create_bundle(session, supervisor, world["premises"])
    issued = bundles.latest_issued_bundle(session, review.id)
    shared = bundles.latest_issued_bundle(session, action.id)
    assert issued is not None and shared is not None
    bundles.share_bundle(session, supervisor, shared)
    return {
        "premises_ids": [
            world["premises"].id,
            world["other_premises"].id,
            warned.id,
            review.id,
            action.id,
        ],
        "bundle_ids": [draft.id, issued.id, shared.id],
        "tokens": {
            "officer": create_token(session, officer.email),
            "supervisor": create_token(session, supervisor.email),
        },
    }


class CurrentApp:
    """The WSGI app Schemathesis calls: the running test's app, each request in its own
    app context (its own `g` and database session), as in production. The `session`
    fixture keeps the test's own context pushed, which a request would otherwise share."""

    app: Flask | None = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        """Serve one request with the running test's app."""
        assert self.app is not None, "no test app: use the `target` fixture"
        with self.app.app_context():
            return self.app(environ, start_response)


CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "suppress-health-check": ["too_slow", "filter_too_much", "data_too_large"],
        "dictionaries": {
            "premises": {"values": PREMISES_IDS},
            "bundles": {"values": BUNDLE_IDS},
            "authorities": {"values": ["LIV", "SEF"]},
            "versions": {"values": [1, 2, 3, 4]},
            "past": {"values": ["2024-05-03T22:30:00Z", "2025-12-31T23:59:59+00:00"]},
        },
        # Half the time, values the seeded database knows: real ids, authority codes,
        # premises versions, and incident times that are not in the future.
        "parameters": {
            "path.premises_id": {"dictionary": "premises", "probability": 0.5},
            "path.bundle_id": {"dictionary": "bundles", "probability": 0.5},
            "body.authority": {"dictionary": "authorities", "probability": 0.5},
            "body.version": {"dictionary": "versions", "probability": 0.5},
            "body.occurred_at": {"dictionary": "past", "probability": 0.5},
            "body.items[*].occurred_at": {"dictionary": "past", "probability": 0.5},
        },
        "generation": {
            "mode": "all",  # valid and invalid requests
            "max-examples": MAX_EXAMPLES,
            "deterministic": True,
            "database": "none",  # no .hypothesis directory, nothing replayed from a past run
            # The bearer token is the test's to send, not a parameter to fuzz:
            # tests/test_api_tokens.py covers missing, unknown and narrow tokens.
            "with-security-parameters": False,
        },
        "checks": {
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "401", "403", "404", "409", "422"]
            },
        },
    }
)
CURRENT_APP = CurrentApp()
schema = schemathesis.openapi.from_dict(openapi_document(), config=CONFIG)
# Every request, the checks' own probes included, goes to the running test's app.
schema.app = CURRENT_APP


@pytest.fixture
def target(
    app: Flask,
    session: Session,
    world: dict[str, Any],
    make_premises: Callable[..., Premises],
) -> Iterator[dict[str, Any]]:
    """Seed this test's database and point Schemathesis at its app; yields the seeded
    ids and the tokens."""
    seeded = seed_database(session, world, make_premises)
    # The dictionaries above must name what was seeded, or the fuzzer meets only 404s.
    assert set(seeded["premises_ids"]) <= set(PREMISES_IDS), seeded
    assert set(seeded["bundle_ids"]) <= set(BUNDLE_IDS), seeded
    CURRENT_APP.app = app
    yield seeded
    CURRENT_APP.app = None


def partial_batch(case: Any) -> bool:
    """A batch of incidents that is not atomic: by design it stores the valid items and
    answers 200 reporting each invalid one, so an invalid item is not refused."""
    body = case.body if case.operation.label == "POST /api/v1/incidents" else None
    return isinstance(body, dict) and "items" in body and body.get("atomic") is not True


def call(case: Any, token: str) -> None:
    """Send the case with the bearer token and run every built-in check on the answer."""
    excluded = [negative_data_rejection] if partial_batch(case) else []
    case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, excluded_checks=excluded)


def needs_workflow_scope(context: Any) -> bool:
    """An operation that changes the register or its bundles."""
    return bool(context.operation.definition.raw.get("x-required-scope") == "workflow")


def test_the_document_fuzzed_is_the_one_the_app_serves(
    app: Flask, session: Session, world: dict[str, Any]
) -> None:
    token = create_token(session, world["officer"].email)
    CURRENT_APP.app = app
    try:
        served = schemathesis.openapi.from_wsgi(
            "/api/v1/openapi.json", CURRENT_APP, headers={"Authorization": f"Bearer {token}"}
        )
    finally:
        CURRENT_APP.app = None
    assert served.raw_schema == schema.raw_schema
    labels = {result.ok().label for result in schema.get_all_operations()}
    assert len(labels) >= 15 and "POST /api/v1/premises/{premises_id}/transitions" in labels


@schema.parametrize()
@SETTINGS
def test_every_operation_as_an_officer(case: Any, target: dict[str, Any]) -> None:
    """Every operation as a police officer: no 5xx, and every answer as documented."""
    call(case, target["tokens"]["officer"])


@schema.include(needs_workflow_scope).parametrize()
@SETTINGS
def test_every_workflow_operation_as_a_supervisor(case: Any, target: dict[str, Any]) -> None:
    """The operations that change things, as a supervisor, who may also issue and share
    bundles and take the review events."""
    call(case, target["tokens"]["supervisor"])
