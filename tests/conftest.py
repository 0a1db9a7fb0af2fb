"""Test harness: every database is built by the real Alembic migrations.

SQLite (default): the migrations run once into a template file; each test gets a copy.
PostgreSQL (TEST_DATABASE_URL=postgresql+psycopg://…/anydb): the harness creates a
uniquely named database, migrates it once, empties it after each test (keeping what the
migrations seeded, as a copied SQLite template does), and drops it at the end of the run.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from licensing import create_app
from licensing.auth.models import User
from licensing.auth.services import create_authority, create_user
from licensing.cli import upgrade_database
from licensing.db import get_session
from licensing.premises import services
from licensing.premises.models import LicensingAuthority, Premises

PASSWORD = "correct-horse-battery-staple"
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")
ON_POSTGRES = TEST_DATABASE_URL.startswith("postgresql")


def pytest_configure(config: pytest.Config) -> None:
    """For the whole session, keep the log output and fail the run if a personal value
    or a secret the tests gave the app turns up in it (tests/log_scan.py)."""
    from tests.log_scan import register

    register(config)


def pytest_report_header(config: pytest.Config) -> str:
    """Say which database this run uses."""
    return f"database: {'PostgreSQL' if ON_POSTGRES else 'SQLite'}"


@pytest.fixture(scope="session")
def _database_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if ON_POSTGRES:
        server = make_url(TEST_DATABASE_URL)
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        name = f"licensing_test_{worker}_{uuid.uuid4().hex[:10]}"
        admin = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = server.set(database=name).render_as_string(hide_password=False)
        try:
            upgrade_database(url)
            _seeds[url] = _migration_seeds(url)
            yield url
        finally:
            for engine in _cleanup_engines.values():
                engine.dispose()
            with admin.connect() as conn:
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": name},
                )
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            admin.dispose()
    else:
        path = tmp_path_factory.mktemp("db") / "template.db"
        upgrade_database(f"sqlite:///{path}")
        yield str(path)


_cleanup_engines: dict[str, Any] = {}


@dataclass(frozen=True)
class _Seeds:
    """What the migrations themselves put in a new database (the standard letters'
    templates, say): each non-empty table's rows and each sequence's position."""

    rows: dict[str, list[dict[str, Any]]]
    sequences: dict[str, int]


_seeds: dict[str, _Seeds] = {}


def _migration_seeds(url: str) -> _Seeds:
    """Read the seeds of a freshly migrated PostgreSQL database, so that emptying it
    after a test leaves it as the migrations did, as a copied SQLite template does."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = {}
            for table in _public_tables(conn):
                found = [
                    dict(row) for row in conn.execute(text(f'SELECT * FROM "{table}"')).mappings()
                ]
                if found:
                    rows[table] = found
            sequences = {
                name: value
                for name, value in conn.execute(
                    text(
                        "SELECT sequencename, last_value FROM pg_sequences "
                        "WHERE schemaname = 'public' AND last_value IS NOT NULL"
                    )
                )
            }
    finally:
        engine.dispose()
    return _Seeds(rows, sequences)


def _public_tables(conn: Any) -> list[str]:
    return [
        row[0]
        for row in conn.execute(
            text(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'alembic_version'"
            )
        )
    ]


def _empty_postgres(url: str) -> None:
    """Empty every table and restart the id sequences, then put back what the migrations
    seeded: DELETE under replica mode (which also switches off the append-only triggers
    and foreign-key checks, for the clean-up only) is much cheaper than TRUNCATE for
    tables this small."""
    engine = _cleanup_engines.get(url)
    if engine is None:
        engine = _cleanup_engines[url] = create_engine(url)
    seeds = _seeds.get(url, _Seeds({}, {}))
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        for table in _public_tables(conn):
            conn.execute(text(f'DELETE FROM "{table}"'))
        conn.execute(
            text(
                "SELECT setval(c.oid, 1, false) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relkind = 'S' AND n.nspname = 'public'"
            )
        )
        for table, rows in seeds.rows.items():
            columns = list(rows[0])
            conn.execute(
                text(
                    f'INSERT INTO "{table}" ({", ".join(columns)}) '
                    f"VALUES ({', '.join(':' + c for c in columns)})"
                ),
                rows,
            )
        for sequence, value in seeds.sequences.items():
            conn.execute(
                text("SELECT setval(:sequence, :value)"), {"sequence": sequence, "value": value}
            )


@pytest.fixture
def database_url(_database_template: str, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database for one test."""
    if ON_POSTGRES:
        yield _database_template
        _empty_postgres(_database_template)
    else:
        path = tmp_path / "test.db"
        shutil.copyfile(_database_template, path)
        yield f"sqlite:///{path}"


class IsolatedClient(FlaskClient):
    """A test client whose every request runs in its own app context (its own `g` and
    database session), as in production. The `session` fixture keeps an app context
    pushed for the whole test; without this, requests would share its `g`, and
    Flask-Login's cached user would leak from one client's request into another's."""

    def open(self, *args: Any, **kwargs: Any) -> Any:  # noqa: D102
        with self.application.app_context():
            return super().open(*args, **kwargs)


@pytest.fixture
def app(database_url: str, tmp_path: Path) -> Iterator[Flask]:
    """The app on this test's database."""
    application = create_app(
        {
            "ENV_NAME": "testing",
            "DATABASE_URL": database_url,
            "EVIDENCE_DIR": str(tmp_path / "evidence"),
        }
    )
    application.test_client_class = IsolatedClient
    yield application
    application.extensions["db_engine"].dispose()


@pytest.fixture
def session(app: Flask) -> Iterator[Session]:
    """A session inside an app context, as a CLI command or request would have."""
    with app.app_context():
        yield get_session()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A browser-like test client (cookies kept between requests)."""
    return app.test_client()


# ---- factories: everything goes through the domain services ------------------------


@pytest.fixture
def make_authority(session: Session) -> Callable[..., LicensingAuthority]:
    """Create a licensing authority."""

    def make(code: str = "LIV", name: str | None = None) -> LicensingAuthority:
        return create_authority(session, code, name or f"{code} Council")

    return make


@pytest.fixture
def make_user(session: Session) -> Callable[..., User]:
    """Create a user of a role (council users need an authority code)."""
    counter = {"n": 0}

    def make(role: str = "officer", authority: str | None = None, email: str | None = None) -> User:
        counter["n"] += 1
        address = email or f"{role}{counter['n']}@example.test"
        return create_user(
            session, address, f"{role.title()} {counter['n']}", role, PASSWORD, authority
        )

    return make


@pytest.fixture
def make_premises(session: Session) -> Callable[..., Premises]:
    """Create a premises through the register service.

    Like a real case file, each premises gets one confirmed incident (recorded through
    the incident service) unless `evidence=False`, so the `warn` guard's evidence rule is
    met the way an officer would meet it. Tests of that guard ask for no evidence.
    """
    counter = {"n": 0}

    def make(
        authority: LicensingAuthority,
        actor: User | None = None,
        *,
        evidence: bool = True,
        **details: Any,
    ) -> Premises:
        counter["n"] += 1
        licence = details.pop("licence_number", f"PL/{counter['n']:04d}")
        details.setdefault("name", f"Test Premises {counter['n']}")
        details.setdefault("licence_holder", "Holder Ltd")
        details.setdefault("dps", f"Supervisor {counter['n']}")
        premises = services.add_premises(session, actor, authority, licence, details)
        if evidence:
            record_evidence(session, premises)
        return premises

    return make


def record_evidence(session: Session, premises: Premises, category: str = "Public order") -> None:
    """Record a confirmed incident at the premises from yesterday, the way a nightly RMS
    export does (generic import, linked by licence number). An import records one summary
    event on the system chain, so the premises' own chain is left as the test made it."""
    from datetime import UTC, datetime, timedelta

    from licensing.incidents.importer import import_incidents

    when = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    ref = f"EVIDENCE-{premises.id}-{uuid.uuid4().hex[:8]}"
    csv_text = (
        "source_ref,occurred_at,category,description,licence_number,authority\n"
        f"{ref},{when},{category},Disorder at closing time,{premises.licence_number},{premises.authority.code}\n"
    )
    result = import_incidents(session, csv_text.encode(), "evidence.csv", "generic", None)
    assert result.linked == 1, result.rejections


def cancel_proposed_visits(session: Session, premises: Premises, officer: User) -> None:
    """Each state change proposes a visit (the visit policy); it would fall due while
    these tests move the clock on. Visit alerts have tests of their own, so these
    premises' proposals are cancelled, as an officer would with a reason."""
    from licensing.visits import services as visit_services
    from licensing.visits.models import Visit

    for visit in session.scalars(
        select(Visit).where(Visit.premises_id == premises.id, Visit.status == "proposed")
    ):
        visit_services.cancel_visit(
            session, officer, visit, visit.version, "Covered by a joint visit"
        )


@pytest.fixture
def world(make_authority, make_user, make_premises) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Two authorities, one user of each role (council users for both), one premises each."""
    liv = make_authority("LIV", "Liverpool City Council")
    sef = make_authority("SEF", "Sefton Council")
    officer = make_user("officer")
    return {
        "liv": liv,
        "sef": sef,
        "officer": officer,
        "supervisor": make_user("supervisor"),
        "admin": make_user("admin"),
        "council": make_user("council", "LIV"),
        "other_council": make_user("council", "SEF"),
        "premises": make_premises(liv, officer, name="The Crown"),
        "other_premises": make_premises(sef, officer, name="The Swan"),
    }


def move(
    session: Session,
    premises: Premises,
    actor: User,
    event: str,
    reason: str = "Because",
    **params: Any,
) -> Premises:
    """Take a workflow event through the service, with the premises' current version.

    A review application needs an issued evidence bundle: when there is none, the actor
    (a supervisor, the only role that may apply) builds and issues one first, through
    the bundle services, as they would on the premises page."""
    if event in ("apply_for_review", "apply_for_summary_review"):
        ensure_issued_bundle(session, premises, actor)
    return services.apply_event(
        session, premises, actor, event, premises.version, reason, params
    ).premises


def ensure_issued_bundle(session: Session, premises: Premises, supervisor: User) -> Any:
    """The premises' latest issued bundle; built and issued by `supervisor` if there is
    none (a non-supervisor gets the service's refusal, as in real use)."""
    from licensing.evidence import services as bundles

    existing = bundles.latest_issued_bundle(session, premises.id)
    if existing is not None or supervisor.role != "supervisor":
        return existing
    bundle = bundles.create_bundle(session, supervisor, premises)
    return bundles.issue_bundle(session, supervisor, bundle, bundle.lock_version)


CSRF_RE = re.compile(
    r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"'
)


def csrf_from(html: str) -> str:
    """The CSRF token in a rendered page."""
    match = CSRF_RE.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1) or match.group(2)


def sign_in(client: FlaskClient, user: User, password: str = PASSWORD) -> None:
    """Sign in through the real sign-in form (CSRF and all)."""
    page = client.get("/sign-in")
    response = client.post(
        "/sign-in",
        data={
            "email": user.email,
            "password": password,
            "csrf_token": csrf_from(page.get_data(as_text=True)),
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:500]


def agree_plan(session: Session, officer: User, premises: Premises, descriptions: list[str]) -> Any:
    """Agree an action plan through the service: one item a description, the licence
    holder's, due a week apart from a week today; review in twelve weeks."""
    from datetime import timedelta

    from licensing.actionplans import services as plans
    from licensing.timeutil import london_today

    today = london_today()
    return plans.agree_plan(
        session,
        officer,
        premises,
        agreed_on=today,
        review_on=today + timedelta(weeks=12),
        agreed_with="Sam Jones (DPS)",
        items=[
            plans.ItemInput(text, "Licence holder", today + timedelta(weeks=n + 1))
            for n, text in enumerate(descriptions)
        ],
        reason="Disorder at closing time",
    )


def terminate_backend(url: str, pid: int) -> None:
    """End a PostgreSQL server process from another connection, as an administrator, a
    restart or a failover would, and wait until it has really gone."""
    import time

    killer = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with killer.connect() as conn:
            assert conn.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            for _ in range(100):
                alive = conn.scalar(
                    text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
                )
                if not alive:
                    return
                time.sleep(0.05)
        raise AssertionError(f"backend {pid} still alive")
    finally:
        killer.dispose()
