"""The authorisation matrix (licensing/auth/matrix.py) against the running app.

Every URL rule and method of the app (enumerated from `app.url_map`, so a new route is
covered without anyone adding it here) is requested as every role, on an object of the
council user's own licensing authority and of another, pages through a signed-in
session and the API with a bearer token carrying every scope; the status must be the
matrix's: allowed is anything but 401, 403, 404 (an empty form's 422 is fine, a redirect
must not be to the sign-in page), refused is 403 for the police and admin and 404 for
council users, and another authority's object is 404 (no IDOR). Nothing of the other
authority's premises may appear in what a council user is shown.

One database and one signed-in client per role serve the whole module (built with the
real migrations and the real services), so the few hundred requests stay fast.
"""

from __future__ import annotations

import io
import itertools
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pypdf import PdfWriter
from sqlalchemy import select
from werkzeug.routing import IntegerConverter, Rule

from licensing import create_app
from licensing.actionplans import meetings as plan_meetings
from licensing.actionplans import services as plan_services
from licensing.api import requires_scope
from licensing.auth.matrix import (
    MATRIX,
    README_END,
    README_START,
    SUPERVISED_EVENTS,
    Action,
    Scope,
    action_of,
    allowed,
    declared_actions,
    event_action,
    exempt_endpoint,
    matrix_markdown,
    permits,
    readme_section,
    replace_readme_section,
    roles_allowed,
)
from licensing.auth.models import Role, User
from licensing.auth.permissions import roles_required
from licensing.auth.services import create_authority, create_token, create_user
from licensing.db import get_session
from licensing.evidence import attachments
from licensing.evidence import services as bundles
from licensing.incidents import recommendations
from licensing.incidents.models import IncidentImportRun, Recommendation
from licensing.incidents.services import linked_incidents
from licensing.letters import services as letters
from licensing.notifications import outbox
from licensing.premises import services as premises_services
from licensing.premises import workflow
from licensing.premises.register_import import import_register
from licensing.timeutil import london_today
from licensing.visits.models import Visit
from tests.conftest import (
    ON_POSTGRES,
    PASSWORD,
    IsolatedClient,
    _empty_postgres,
    csrf_from,
    move,
    record_evidence,
)

ROOT = Path(__file__).resolve().parent.parent
IGNORED_METHODS = {"HEAD", "OPTIONS"}
ROLES = ("officer", "supervisor", "council", "admin")
OWN, OTHER = "own", "other"  # the council user's authority (Liverpool), and Sefton
# Path arguments that name an object of one licensing authority.
AUTHORITY_ARGS = {
    "premises_id",
    "incident_id",
    "visit_id",
    "attachment_id",
    "bundle_id",
    "item_id",
    "letter_id",
    "plan_id",
    "meeting_id",
    "action_id",
}
OWN_NAME, OTHER_NAME = "The Crown", "The Swan"
# Endpoints that end the session they are sent in: the client signs in again after.
SIGNS_OUT = {"auth.logout"}
# Actions that no endpoint declares: checks inside views (who sees the people held apart
# from an incident, a bundle's access log) or a workflow event's second check.
NOT_ENDPOINT_ACTIONS = {
    Action.VIEW_PEOPLE,
    Action.VIEW_BUNDLE_ACCESS_LOG,
    Action.SUPERVISE_WORKFLOW,
}


@dataclass(frozen=True)
class Variant:
    """One way of calling a route: path values or a query string that need a second
    action of the matrix on top of the endpoint's own."""

    name: str
    path: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    also: Action | None = None


# Routes whose request decides a further action: a workflow event needs the supervisor's
# grant for a supervisor's event; the API's suggested links need the suggestions grant.
VARIANTS: dict[str, tuple[Variant, ...]] = {
    "premises.take_event": (
        Variant("warn", {"event": "warn"}),
        Variant("withdraw_review", {"event": "withdraw_review"}, also=Action.SUPERVISE_WORKFLOW),
    ),
    "api.premises_incidents": (
        Variant("confirmed"),
        Variant("suggested", query={"status": "suggested"}, also=Action.REVIEW_LINK_SUGGESTIONS),
    ),
}


def _route_table(app: Flask) -> list[tuple[Rule, str]]:
    return [
        (rule, method)
        for rule in app.url_map.iter_rules()
        for method in sorted((rule.methods or set()) - IGNORED_METHODS)
    ]


# Enumerated at collection time from an app that never touches its (in-memory) database;
# `test_enumeration_matches_the_app` checks the live app has the same table.
_COLLECTION_APP = create_app({"ENV_NAME": "testing", "DATABASE_URL": "sqlite://"})
ROUTES = [
    (rule.rule, rule.endpoint, method)
    for rule, method in _route_table(_COLLECTION_APP)
    if not exempt_endpoint(rule.endpoint)
]
CASES = [
    pytest.param(rule, endpoint, method, variant, id=f"{method} {rule} {variant.name}".strip())
    for rule, endpoint, method in ROUTES
    for variant in VARIANTS.get(endpoint, (Variant(""),))
]


# ---- one database, one world, one client per role for the module -------------------------


@pytest.fixture(scope="module")
def matrix_database(
    _database_template: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A migrated database for this module alone (on PostgreSQL the run's database,
    emptied afterwards, as the per-test harness does)."""
    if ON_POSTGRES:
        yield _database_template
        _empty_postgres(_database_template)
    else:
        path = tmp_path_factory.mktemp("matrix") / "matrix.db"
        shutil.copyfile(_database_template, path)
        yield f"sqlite:///{path}"


def _make_app(database_url: str, evidence: Path) -> Flask:
    app = create_app(
        {"ENV_NAME": "testing", "DATABASE_URL": database_url, "EVIDENCE_DIR": str(evidence)}
    )
    app.test_client_class = IsolatedClient
    return app


@pytest.fixture(scope="module")
def matrix_app(matrix_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """The app on the module's database."""
    app = _make_app(matrix_database, tmp_path_factory.mktemp("evidence"))
    yield app
    app.extensions["db_engine"].dispose()


def _pdf() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@dataclass
class World:
    """Ids of what the module's requests name: per authority (own, other) and shared."""

    emails: dict[str, str]
    tokens: dict[str, str]
    objects: dict[str, dict[str, int]]
    register_run_id: int
    incident_run_id: int
    recommendation_id: int
    bystander_id: int


@pytest.fixture(scope="module")
def world(matrix_app: Flask) -> World:
    """Two authorities, one user of each role (the council user of Liverpool), and in
    each authority a premises under summary review (visible to its council) with a
    confirmed incident, an attachment, a proposed visit and an issued bundle shared with
    the authority; a register import, an incident import and a recommendation."""
    with matrix_app.app_context():
        session = get_session()
        liv = create_authority(session, "LIV", "Liverpool City Council")
        sef = create_authority(session, "SEF", "Sefton Council")
        users: dict[str, User] = {
            role: create_user(
                session,
                f"{role}@matrix.test",
                f"{role.title()} Matrix",
                role,
                PASSWORD,
                "LIV" if role == "council" else None,
            )
            for role in ROLES
        }
        bystander = create_user(session, "bystander@matrix.test", "By Stander", "officer", PASSWORD)
        officer, supervisor = users["officer"], users["supervisor"]
        objects: dict[str, dict[str, int]] = {}
        for key, authority, name in ((OWN, liv, OWN_NAME), (OTHER, sef, OTHER_NAME)):
            premises = premises_services.add_premises(
                session,
                officer,
                authority,
                f"PL/{key.upper()}",
                {"name": name, "licence_holder": "Holder Ltd", "dps": "A Person"},
            )
            record_evidence(session, premises)
            # An action plan (agreed while monitored) and a meeting with one action.
            today = london_today()
            plan = plan_services.agree_plan(
                session,
                officer,
                premises,
                agreed_on=today,
                review_on=today + timedelta(days=28),
                agreed_with="A Person",
                items=[plan_services.ItemInput("CCTV", "DPS", today + timedelta(days=7))],
                reason="Disorder",
            )
            meeting = plan_meetings.create_meeting(
                session,
                officer,
                premises=premises,
                authority=None,
                held_on=today,
                title="Problem-solving meeting",
                minutes="",
                decisions="",
                attendees=[plan_meetings.AttendeeInput("police", "")],
                actions=[plan_meetings.ActionInput("Door staff", "DPS", None)],
            )
            move(
                session,
                premises,
                supervisor,
                "apply_for_summary_review",
                received_at="2025-01-06T10:00:00+00:00",
                certificate_reference="CERT-1",
            )
            bundle = bundles.latest_issued_bundle(session, premises.id)
            assert bundle is not None
            bundles.share_bundle(session, supervisor, bundle)
            incident = linked_incidents(session, premises.id)[0].incident
            attachment = attachments.add_attachment(
                session,
                officer,
                incident=incident,
                data=_pdf(),
                file_name="statement.pdf",
                description="Witness statement",
                holds_personal_data=True,
            )
            visit = session.scalars(select(Visit).where(Visit.premises_id == premises.id)).first()
            assert visit is not None
            template = letters.template_by_key(session, "first_warning")
            letter = letters.issue_letter(
                session, officer, premises, template, template.current_version
            )
            objects[key] = {
                "premises_id": premises.id,
                "incident_id": incident.id,
                "attachment_id": attachment.id,
                "visit_id": visit.id,
                "bundle_id": bundle.id,
                "item_id": bundles.items_of(session, bundle)[0].id,
                "letter_id": letter.id,
                "plan_id": plan.id,
                "meeting_id": meeting.id,
                "action_id": meeting.actions[0].id,
            }
        # Three serious incidents while monitored: the threshold rule recommends a warning.
        monitored = premises_services.add_premises(
            session, officer, liv, "PL/MITRE", {"name": "The Mitre", "licence_holder": "M Ltd"}
        )
        for _ in range(3):
            record_evidence(session, monitored)
        recommendations.evaluate(session, [monitored.id])
        recommendation_id = session.scalars(select(Recommendation.id)).first()
        assert recommendation_id is not None
        run = import_register(
            session,
            b"CASEREFERENCE,PREMISESNAME,POSTCODE\r\nPL/9001,The Anchor,L1 1AA\r\n",
            "matrix.csv",
            liv,
            officer,
        )
        incident_run_id = session.scalars(select(IncidentImportRun.id)).first()
        assert incident_run_id is not None
        return World(
            emails={role: user.email for role, user in users.items()},
            tokens={role: create_token(session, user.email) for role, user in users.items()},
            objects=objects,
            register_run_id=run.run_id,
            incident_run_id=incident_run_id,
            recommendation_id=recommendation_id,
            bystander_id=bystander.id,
        )


def _sign_in(client: FlaskClient, email: str) -> str:
    """Sign in through the real form; the session's CSRF token."""
    page = client.get("/sign-in").get_data(as_text=True)
    response = client.post(
        "/sign-in", data={"email": email, "password": PASSWORD, "csrf_token": csrf_from(page)}
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    return csrf_from(client.get("/").get_data(as_text=True))


@dataclass
class Browser:
    """A role's signed-in browser and its CSRF token."""

    client: FlaskClient
    email: str
    token: str = ""

    def renew(self) -> None:
        """Sign in (again)."""
        self.token = _sign_in(self.client, self.email)


@pytest.fixture(scope="module")
def browsers(matrix_app: Flask, world: World) -> dict[str, Browser]:
    """One signed-in client per role."""
    out = {}
    for role in ROLES:
        browser = Browser(matrix_app.test_client(), world.emails[role])
        browser.renew()
        out[role] = browser
    return out


_EMAIL_NUMBERS = itertools.count(1)


def _failed_email(app: Flask) -> int:
    """A fresh email in the outbox that failed for good (what the admin may retry)."""
    with app.app_context():
        session = get_session()
        key = f"matrix-retry-{next(_EMAIL_NUMBERS)}"
        outbox.enqueue(
            session,
            recipient="unlucky@matrix.test",
            subject="Alert",
            text="An alert",
            html="<p>An alert</p>",
            dedupe_key=key,
        )
        session.commit()
        for email in outbox.claim_due(session, "matrix-test", limit=1000):
            if email.dedupe_key == key:  # the others stay claimed: no one sends here
                outbox.mark_failed(
                    session, email, "matrix-test", email.next_attempt_at, "554", permanent=True
                )
        failed = [e.id for e in outbox.failed_emails(session) if e.dedupe_key == key]
        assert failed, "the email did not fail"
        return failed[0]


# ---- what the matrix says -------------------------------------------------------------


def expected_refusal(actions: list[Action], role: str, authority: str | None) -> int | None:
    """The status the matrix gives `role` for a request needing `actions` on an object of
    `authority` (own, other, or None for no object): None when allowed."""
    grants = [MATRIX[action].grants.get(Role(role)) for action in actions]
    if any(grant is None for grant in grants):
        return 404 if role == "council" else 403
    if authority == OTHER and any(
        grant is not None and grant.scope is Scope.OWN_AUTHORITY for grant in grants
    ):
        return 404
    return None


def _path_values(
    app: Flask, world: World, rule: Rule, authority: str | None, role: str, variant: Variant
) -> dict[str, Any]:
    values: dict[str, Any] = dict(world.objects[authority or OWN])
    values.update(
        run_id=world.register_run_id
        if rule.endpoint.startswith("premises.")
        else world.incident_run_id,
        recommendation_id=world.recommendation_id,
        user_id=world.bystander_id,
        event="warn",
        # Each retry needs a failed email; only the admin's request can retry one.
        email_id=_failed_email(app) if "email_id" in rule.arguments and role == "admin" else 1,
    )
    values.update(variant.path)
    filled = {}
    for name in rule.arguments:
        if name in values:
            filled[name] = values[name]
        else:  # a new argument: an int converter gets an id that exists, others text
            converter = rule._converters[name]  # noqa: SLF001
            filled[name] = 1 if isinstance(converter, IntegerConverter) else "x"
    return filled


# ---- the meta-tests -------------------------------------------------------------------


def test_enumeration_matches_the_app(matrix_app: Flask) -> None:
    live = {
        (rule.rule, rule.endpoint, method)
        for rule, method in _route_table(matrix_app)
        if not exempt_endpoint(rule.endpoint)
    }
    assert live == set(ROUTES)
    assert len(ROUTES) >= 80  # pages and API


def test_every_endpoint_declares_exactly_one_action(matrix_app: Flask) -> None:
    """Deny by default: an endpoint without an action fails here
    (and is refused at run time, below). A view wrapped twice declares two: also a
    failure."""
    undeclared, doubled = [], []
    for endpoint, action in declared_actions(matrix_app).items():
        view = matrix_app.view_functions[endpoint]
        if action is None:
            undeclared.append(endpoint)
            continue
        chain, layer = set(), view
        while layer is not None:
            if action_of(layer) is not None:
                chain.add(action_of(layer))
            layer = getattr(layer, "__wrapped__", None)
        if len(chain) != 1:
            doubled.append(endpoint)
    assert undeclared == [], f"endpoints without @permits: {sorted(undeclared)}"
    assert doubled == [], f"endpoints declaring more than one action: {sorted(doubled)}"


def test_every_action_is_in_the_matrix_and_used(matrix_app: Flask) -> None:
    assert set(MATRIX) == set(Action)
    used = {action for action in declared_actions(matrix_app).values() if action is not None}
    assert set(Action) - used <= NOT_ENDPOINT_ACTIONS
    assert NOT_ENDPOINT_ACTIONS.isdisjoint(used)


def test_police_and_admin_grants_are_force_wide_and_council_grants_their_authority() -> None:
    for entry in MATRIX.values():
        for role, grant in entry.grants.items():
            expected = Scope.OWN_AUTHORITY if role == Role.COUNCIL else Scope.ANY
            assert grant.scope is expected, (entry.action, role)


def test_the_workflow_takes_its_roles_from_the_same_rule() -> None:
    """The workflow's per-event roles (licensing/premises/workflow.py, which the services
    enforce) are the matrix's: supervisor's events need `supervise_workflow`."""
    for name, rule in workflow.EVENT_RULES.items():
        assert set(rule.roles) == roles_allowed(event_action(name)), name
    assert set(workflow.EVENT_RULES) >= SUPERVISED_EVENTS


def test_allowed_reads_scope_and_authority() -> None:
    council = User(role="council", authority_id=1)
    officer = User(role="officer", authority_id=None)
    admin = User(role="admin", authority_id=None)
    assert allowed(council, Action.VIEW_PREMISES)
    assert allowed(council, Action.VIEW_PREMISES, 1)
    assert not allowed(council, Action.VIEW_PREMISES, 2)
    assert not allowed(council, Action.EDIT_PREMISES, 1)
    assert allowed(officer, Action.EDIT_PREMISES, 2)
    assert not allowed(officer, Action.ISSUE_BUNDLE)
    assert allowed(admin, Action.VIEW_PREMISES, 2)
    assert not allowed(admin, Action.VIEW_BUNDLE)
    assert not allowed(User(role="stranger"), Action.VIEW_DASHBOARD)
    assert not allowed(User(role="council", authority_id=None), Action.VIEW_PREMISES, 1)


# ---- every route × method × role × authority ----------------------------------------------


@pytest.mark.parametrize(("rule_text", "endpoint", "method", "variant"), CASES)
def test_route_answers_as_the_matrix_says(
    matrix_app: Flask,
    world: World,
    browsers: dict[str, Browser],
    rule_text: str,
    endpoint: str,
    method: str,
    variant: Variant,
) -> None:
    view = matrix_app.view_functions[endpoint]
    action = action_of(view)
    assert action is not None, f"{endpoint} declares no action"
    actions = [action] + ([variant.also] if variant.also else [])
    rule = next(
        r for r in matrix_app.url_map.iter_rules() if r.rule == rule_text and r.endpoint == endpoint
    )
    api = rule_text.startswith("/api/")
    authorities = (OWN, OTHER) if AUTHORITY_ARGS & set(rule.arguments) else (None,)
    adapter = matrix_app.url_map.bind("localhost")
    api_client = matrix_app.test_client()  # no cookies: the API takes bearer tokens only

    wrong: list[str] = []
    for role in ROLES:
        for authority in authorities:
            values = _path_values(matrix_app, world, rule, authority, role, variant)
            url = adapter.build(endpoint, values, method=method)
            if variant.query:
                url = f"{url}?{urlencode(variant.query)}"
            if api:
                response = api_client.open(
                    url,
                    method=method,
                    headers={"Authorization": f"Bearer {world.tokens[role]}"},
                    json=None if method == "GET" else {},
                )
            else:
                browser = browsers[role]
                response = browser.client.open(
                    url,
                    method=method,
                    data=None if method == "GET" else {"csrf_token": browser.token},
                    headers={"X-CSRFToken": browser.token},
                )
                if endpoint in SIGNS_OUT:
                    browser.renew()
            refusal = expected_refusal(actions, role, authority)
            status = response.status_code
            where = f"{role} on {authority or 'no'} object: {method} {url}"
            if refusal is None:
                location = urlsplit(response.headers.get("Location", "")).path
                if status in (401, 403, 404) or status >= 500:
                    wrong.append(f"{where}: {status}, expected allowed")
                elif status == 302 and location == "/sign-in" and endpoint not in SIGNS_OUT:
                    wrong.append(f"{where}: sent to sign in, expected allowed")
            elif status != refusal:
                wrong.append(f"{where}: {status}, expected {refusal}")
            if role == "council" and OTHER_NAME in response.get_data().decode("utf-8", "ignore"):
                wrong.append(f"{where}: shows the other authority's premises")
    assert wrong == []


def test_a_refusal_says_nothing_for_council_and_why_for_others(
    world: World, browsers: dict[str, Browser]
) -> None:
    premises_id = world.objects[OTHER]["premises_id"]
    council = browsers["council"].client.get(f"/premises/{premises_id}/edit")
    assert council.status_code == 404
    assert "Page not found" in council.get_data(as_text=True)
    admin = browsers["admin"].client.get(f"/premises/{premises_id}/edit")
    assert admin.status_code == 403
    assert "Your role (admin) may not edit a premises" in admin.get_data(as_text=True)
    assert OTHER_NAME not in admin.get_data(as_text=True)


def test_an_api_refusal_is_json_and_a_scope_never_widens_the_role(
    matrix_app: Flask, world: World
) -> None:
    client = matrix_app.test_client()
    bundle_id = world.objects[OWN]["bundle_id"]
    for role, status, code in (("admin", 403, "forbidden"), ("council", 404, "not_found")):
        response = client.post(
            f"/api/v1/bundles/{bundle_id}/share",
            headers={"Authorization": f"Bearer {world.tokens[role]}"},
            json={},
        )
        assert response.status_code == status
        assert response.get_json()["error"] == code


# ---- deny by default at run time --------------------------------------------------------


def test_an_endpoint_that_declares_no_action_is_refused(
    matrix_database: str,
    world: World,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = _make_app(matrix_database, tmp_path / "evidence")
    app.add_url_rule("/undeclared", "undeclared", lambda: "reached")
    app.add_url_rule("/roles-only", "roles_only", roles_required(Role.OFFICER)(lambda: "reached"))
    app.add_url_rule("/declared", "declared", permits(Action.VIEW_DASHBOARD)(lambda: "reached"))
    # An API view with a scope but no action: refused once the token says who asks.
    app.add_url_rule(
        "/api/v1/undeclared",
        endpoint="api.undeclared",
        view_func=requires_scope("read")(lambda: "reached"),
    )
    try:
        for role, refusal in (("officer", 403), ("council", 404)):
            client = app.test_client()
            _sign_in(client, world.emails[role])
            assert client.get("/undeclared").status_code == refusal
            assert client.get("/roles-only").status_code == refusal
            assert client.get("/declared").get_data(as_text=True) == "reached"
            api = app.test_client().get(
                "/api/v1/undeclared", headers={"Authorization": f"Bearer {world.tokens[role]}"}
            )
            assert api.status_code == refusal
            assert "reached" not in api.get_data(as_text=True)
        assert app.test_client().get("/api/v1/undeclared").status_code == 401
        assert "Endpoint undeclared declares no authorisation action" in caplog.text
        assert "Endpoint api.undeclared declares no authorisation action" in caplog.text
    finally:
        app.extensions["db_engine"].dispose()


# ---- the README shows the matrix as it is ---------------------------------------------------


def test_the_readme_table_is_the_matrix(matrix_app: Flask) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert README_START in readme and README_END in readme
    start = readme.index(README_START)
    current = readme[start : readme.index(README_END) + len(README_END)]
    assert current == readme_section(matrix_app), (
        "README.md's authorisation matrix is out of date: run "
        "`licensing authz matrix --readme README.md`"
    )
    for action in Action:
        assert f"| `{action.value}` |" in current


def test_the_command_prints_and_writes_the_section(matrix_app: Flask, tmp_path: Path) -> None:
    runner = matrix_app.test_cli_runner()
    printed = runner.invoke(args=["authz", "matrix"])
    assert printed.exit_code == 0, printed.output
    assert matrix_markdown() in printed.output
    assert "| GET | `/premises/<int:premises_id>` | `view_premises` |" in printed.output

    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\n{README_START}\nstale\n{README_END}\n\nAfter.\n")
    written = runner.invoke(args=["authz", "matrix", "--readme", str(readme)])
    assert written.exit_code == 0, written.output
    text = readme.read_text()
    assert text == replace_readme_section(
        f"# Title\n\n{README_START}\nstale\n{README_END}\n\nAfter.\n",
        readme_section(matrix_app),
    )
    assert "stale" not in text and text.endswith("\n\nAfter.\n")


def test_helpers_declare_what_they_enforce() -> None:
    """`permits` refuses an action that is not in the matrix (a typo fails at import)."""
    with pytest.raises(ValueError, match="not in the authorisation matrix"):
        permits("view_everything")  # type: ignore[arg-type]
