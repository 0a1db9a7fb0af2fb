"""The large demo data set (`licensing demo load --scale large`), loaded at a small scale."""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import DateTime, create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from licensing import create_app, demo, demo_large
from licensing.audit.services import verify_chains
from licensing.auth.models import User
from licensing.cli import upgrade_database
from licensing.db import Base, get_session
from licensing.deadlines.models import Deadline
from licensing.deadlines.services import calendar, deadlines_for
from licensing.demo import DEMO_PASSWORD, USERS
from licensing.demo_large import (
    AUTHORITIES,
    demo_premises_name,
    load_large,
    read_snap_points,
    snap_points_dir,
    snap_points_from,
)
from licensing.errors import ValidationFailed
from licensing.evidence import store
from licensing.evidence.models import Bundle
from licensing.incidents.models import Incident
from licensing.premises.models import LicensingAuthority, Premises, ReviewApplication
from licensing.timeutil import LONDON, london_today
from licensing.visits.bulk import VisitEntry, record_visits
from licensing.visits.models import Visit
from licensing.visits.services import Outcome, record_outcome, schedule_visit
from tests.conftest import ON_POSTGRES, TEST_DATABASE_URL
from tests.test_cli import run

FIXTURES = Path(__file__).parent / "fixtures"
SIZE = {"premises": 50, "incidents": 5_000, "visits": 200, "reviews": 10, "users": 20}
# Columns whose values are the wall clock at loading time, or hashes over it (argon2's
# salt, the audit chain's links, rendered files that carry their build time): they differ
# between any two loads and are left out of the digest.
UNSTABLE = ("hash", "sha256", "salt")


def load(session: Session, seed: int = 7) -> Any:
    """The loader at the test scale, with the demo's fixed sign-ins."""
    return load_large(
        session, **SIZE, seed=seed, password=DEMO_PASSWORD, fixed_users=USERS, snap_points=None
    )


def _stable(value: Any) -> Any:
    """A JSON payload without the keys that carry hashes or instants (`..._at`)."""
    if isinstance(value, dict):
        return {
            k: _stable(v)
            for k, v in value.items()
            if not any(u in k for u in UNSTABLE) and not k.endswith("_at")
        }
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def digest(session: Session) -> dict[str, str]:
    """A SHA-256 per table over every row in id order, leaving out the unstable columns."""
    out = {}
    for table in Base.metadata.sorted_tables:
        columns = [
            c
            for c in table.columns
            if not isinstance(c.type, DateTime)
            and "DateTime" not in type(c.type).__name__  # UTCDateTime, a TypeDecorator
            and not any(u in c.name for u in UNSTABLE)
            and c.name not in ("index_json",)
        ]
        order = list(table.primary_key.columns) or columns
        hasher = hashlib.sha256()
        for row in session.execute(select(*columns).order_by(*order)):
            values = []
            for column, value in zip(columns, row, strict=True):
                if column.name == "payload" and isinstance(value, str):
                    value = json.dumps(_stable(json.loads(value)), sort_keys=True)
                values.append(repr(value))
            hasher.update("\x1f".join(values).encode() + b"\n")
        out[table.name] = hasher.hexdigest()
    return out


@pytest.fixture
def other_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Flask]]:
    """Apps on further fresh databases, built by the migrations like the `app` fixture's."""
    made: list[tuple[Flask, str | None]] = []

    def make() -> Flask:
        name = None
        if ON_POSTGRES:
            name = f"licensing_demo_{uuid.uuid4().hex[:10]}"
            server = make_url(TEST_DATABASE_URL)
            admin = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            admin.dispose()
            url = server.set(database=name).render_as_string(hide_password=False)
            upgrade_database(url)
        else:
            template = request.getfixturevalue("_database_template")
            path = tmp_path / f"other-{len(made)}.db"
            shutil.copyfile(template, path)
            url = f"sqlite:///{path}"
        application = create_app(
            {
                "ENV_NAME": "testing",
                "DATABASE_URL": url,
                "EVIDENCE_DIR": str(tmp_path / f"evidence-{len(made)}"),
            }
        )
        made.append((application, name))
        return application

    yield make
    for application, name in made:
        application.extensions["db_engine"].dispose()
        if name is not None:
            server = make_url(TEST_DATABASE_URL)
            admin = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


def count(session: Session, model: Any, *where: Any) -> int:
    return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def test_loads_the_asked_counts_in_every_state(session: Session) -> None:
    result = load(session)

    assert count(session, LicensingAuthority) == len(AUTHORITIES) == 5
    assert count(session, User) == 20
    for email, _name, role, _authority in USERS:
        assert session.scalar(select(User.role).where(User.email == email)) == role
    roles = dict(session.execute(select(User.role, func.count()).group_by(User.role)).all())
    assert set(roles) == {"officer", "supervisor", "council", "admin"}
    council_authorities = session.scalars(
        select(func.distinct(User.authority_id)).where(User.role == "council")
    ).all()
    assert len(council_authorities) == 5
    assert count(session, Premises) == 50
    assert count(session, Incident) == 5_000
    assert count(session, Visit, Visit.status.in_(["scheduled", "completed"])) == 200
    assert count(session, Visit, Visit.status == "completed") == 160
    assert count(session, ReviewApplication) == 10
    states = set(session.scalars(select(Premises.state)).all())
    assert states == {"monitored", "warned", "review", "action"}
    assert result.counts["incidents"] == 5_000 and result.counts["reviews"] == 10
    assert set(result.seconds) == {
        "authorities",
        "users",
        "premises",
        "incidents",
        "workflow",
        "visits",
        "statistics",
    }
    # The planner's statistics were refreshed over what was loaded.
    if ON_POSTGRES:
        analysed = session.scalar(
            text(
                "SELECT last_analyze IS NOT NULL AND last_vacuum IS NOT NULL"
                " FROM pg_stat_user_tables WHERE relname = 'incidents'"
            )
        )
        assert analysed is True
    else:
        stats = session.scalar(text("SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'incidents'"))
        assert stats and stats > 0
    # The imported incidents were linked by the real linker (suggested near premises).
    links = session.scalar(text("SELECT count(*) FROM premises_incident_links"))
    assert links and links > 1_000


def test_audit_chains_verify_and_states_have_their_events(session: Session) -> None:
    load(session)

    verdict = verify_chains(session)
    assert verdict.ok, verdict.describe()
    for premises in session.scalars(select(Premises)):
        last = session.execute(
            text(
                "SELECT to_state FROM audit_events WHERE premises_id = :id AND to_state IS NOT"
                " NULL ORDER BY seq DESC LIMIT 1"
            ),
            {"id": premises.id},
        ).scalar_one()
        assert last == premises.state


def test_every_review_has_an_issued_bundle_with_files_and_its_deadlines(
    session: Session, app: Flask
) -> None:
    load(session)

    reviews = session.scalars(select(ReviewApplication)).all()
    assert {r.kind for r in reviews} == {"standard", "summary"}
    assert {r.status for r in reviews} >= {"open", "determined"}
    under_review = session.scalars(
        select(Premises.id).where(Premises.state.in_(["review", "action"]))
    ).all()
    assert set(under_review) <= {r.premises_id for r in reviews}
    cal = calendar()
    for review in reviews:
        assert review.bundle_id is not None
        bundle = session.get(Bundle, review.bundle_id)
        assert bundle is not None and bundle.premises_id == review.premises_id
        assert bundle.status == "issued" and bundle.shared_at is not None
        for digest_value in (bundle.shared_pdf_sha256, bundle.police_zip_sha256):
            assert digest_value and store.get(digest_value)  # the real file, checked
        stored = {
            d.kind: (d.due_date, d.due_at)
            for d in session.scalars(select(Deadline).where(Deadline.review_id == review.id))
        }
        expected = {
            due.kind: (None, due.due) if hasattr(due.due, "hour") else (due.due, None)
            for due in deadlines_for(review, cal)
        }
        assert stored and stored == expected


def test_same_seed_same_data_and_another_seed_other_data(
    session: Session, other_app: Callable[[], Flask]
) -> None:
    load(session, seed=7)
    first = digest(session)
    second_app, third_app = other_app(), other_app()
    with second_app.app_context():
        load(get_session(), seed=7)
        second = digest(get_session())
    with third_app.app_context():
        load(get_session(), seed=8)
        third = digest(get_session())

    assert first == second
    differing = {name for name in first if first[name] != third[name]}
    assert {"premises", "incidents", "visits", "review_applications"} <= differing


def test_command_refuses_a_database_that_is_not_empty(app: Flask) -> None:
    assert run(app, "demo", "load", "--premises", "2").exit_code == 0

    refused = run(app, "demo", "load", "--scale", "large")
    assert refused.exit_code != 0
    assert "not empty" in refused.output
    skipped = run(app, "demo", "load", "--scale", "large", "--if-empty")
    assert skipped.exit_code == 0
    assert "Demo data already loaded." in skipped.output
    with app.app_context():
        assert count(get_session(), Premises) == 2


def test_snap_point_reader_keeps_distinct_positions(tmp_path: Path) -> None:
    points = read_snap_points([FIXTURES / "snap-points-street.csv"])

    assert points == [
        (53.37, -3.07, "On or near Argyle Street"),
        (53.405, -2.98, "On or near Bold Street"),
        (53.49, -3.01, "On or near Stanley Road"),
    ]
    # The shared folder is found by its configured name and read by its known file names.
    shutil.copyfile(FIXTURES / "snap-points-street.csv", tmp_path / "2021-12-merseyside-street.csv")
    assert snap_points_dir(str(tmp_path)) == tmp_path
    assert snap_points_from(tmp_path) == points
    assert snap_points_from(None) == []


def _visit_plan(session: Session) -> list[VisitEntry]:
    """Visits over premises in every state: several to one premises, bookings ahead of a
    visit done today (so the policy finds a booking and proposes nothing), compliance
    checks after a determination, issues found."""
    officers = session.scalars(select(User.id).where(User.role == "officer").order_by(User.id))
    officer_ids = list(officers)
    premises = session.execute(select(Premises.id, Premises.state).order_by(Premises.id)).all()
    now = datetime.now(UTC).replace(microsecond=0)
    entries: list[VisitEntry] = []
    for n, (premises_id, state) in enumerate(premises):
        kind = "compliance_check" if state == "action" else "routine"
        officer = officer_ids[n % len(officer_ids)]
        ahead = london_today() + timedelta(days=3 + n % 20)
        booked = datetime(ahead.year, ahead.month, ahead.day, 19, 30, tzinfo=LONDON)
        findings = {"public_safety": "Fire exit blocked"} if n % 3 == 0 else {}
        done = Outcome("issues_found" if findings else "compliant", now, findings)
        if n % 4 == 0:
            entries.append(VisitEntry(premises_id, officer, kind, booked))
        entries.append(VisitEntry(premises_id, officer, kind, now, done))
        if n % 2 == 0:
            entries.append(VisitEntry(premises_id, officer, kind, now, done))
        if n % 5 == 1:
            entries.append(VisitEntry(premises_id, officer, kind, booked))
    return entries


def test_record_visits_writes_what_the_services_write_one_at_a_time(
    session: Session, other_app: Callable[[], Flask]
) -> None:
    size = {**SIZE, "incidents": 0, "visits": 0, "premises": 30, "reviews": 8}
    load_large(session, **size, seed=3, password=DEMO_PASSWORD, fixed_users=USERS)
    entries = _visit_plan(session)
    assert {e.visit_type for e in entries} == {"routine", "compliance_check"}
    actor = session.scalars(select(User).where(User.role == "officer").order_by(User.id)).first()
    assert actor is not None
    for entry in entries:
        premises = session.get(Premises, entry.premises_id)
        assert premises is not None
        visit = schedule_visit(
            session,
            actor,
            premises,
            scheduled_at=entry.scheduled_at,
            visit_type=entry.visit_type,
            officer_id=entry.officer_id,
        )
        if entry.outcome is not None:
            record_outcome(session, actor, visit, visit.version, entry.outcome)
    one_by_one = digest(session)

    with other_app().app_context():
        bulk_session = get_session()
        load_large(bulk_session, **size, seed=3, password=DEMO_PASSWORD, fixed_users=USERS)
        bulk_actor = bulk_session.get(User, actor.id)
        assert bulk_actor is not None
        made = record_visits(bulk_session, bulk_actor, entries)
        bulk_session.commit()
        assert len(made) == len(entries)
        in_bulk = digest(bulk_session)
        assert verify_chains(bulk_session).ok
        kinds = set(bulk_session.scalars(select(Visit.status)))
        assert kinds == {"completed", "scheduled", "proposed"}
        closed = bulk_session.scalar(
            select(func.count())
            .select_from(Deadline)
            .where(Deadline.kind == "compliance_visit_due", Deadline.status == "closed")
        )
        assert closed

    for table in ("visits", "audit_events", "deadlines", "premises"):
        assert in_bulk[table] == one_by_one[table], table


def test_record_visits_checks_every_entry_before_writing(session: Session) -> None:
    load_large(
        session,
        **{**SIZE, "incidents": 0, "visits": 0, "premises": 5, "reviews": 0},
        seed=3,
        password=DEMO_PASSWORD,
        fixed_users=USERS,
    )
    actor = session.scalars(select(User).where(User.role == "officer")).first()
    assert actor is not None
    premises_id = session.scalars(select(Premises.id)).first()
    assert premises_id is not None
    now = datetime.now(UTC)
    good = VisitEntry(premises_id, actor.id, "routine", now, Outcome("compliant", now))
    past = VisitEntry(premises_id, actor.id, "routine", now - timedelta(days=3))
    before = count(session, Visit)

    with pytest.raises(ValidationFailed) as refused:
        record_visits(session, actor, [good, past])

    assert "Visit 2" in str(refused.value) and "visit_date" in refused.value.errors
    assert count(session, Visit) == before


@pytest.mark.parametrize("module", [demo, demo_large], ids=["small", "large"])
def test_demo_premises_names_never_repeat_their_kind(module: Any) -> None:
    """A name that already says its kind keeps it once ("Pier Head Bar", never "Pier Head
    Bar Bar"); every other name gets each kind in turn."""
    kinds = [kind.strip() for kind in module.KINDS if kind.strip()]
    names = [
        demo_premises_name(module.NAMES, module.KINDS, n)
        for n in range(len(module.NAMES) * len(module.KINDS))
    ]
    for name in names:
        assert all(name.split().count(kind) <= 1 for kind in kinds), name
    assert "Pier Head Bar" in names and "Pier Head Bar Bar" not in names
    assert "The Crown Bar" in names and "The Crown Club" in names
