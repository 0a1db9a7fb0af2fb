"""The plans of the hot queries, kept (issue 8: indexes justified by EXPLAIN).

A register is built with bulk INSERTs (3,000 premises over five authorities, 40,000
incidents, one premises with a 5,000-incident history, links in every status, visits,
deadlines, history events), the statistics are refreshed, and the statements the app
runs for its hot reads are captured as they are sent to the database (by calling the
services the pages call), then explained with the same parameters:

- PostgreSQL: `EXPLAIN (FORMAT JSON)`; each plan's shape (every node's type, relation
  and index, depth first, less how the small lookup tables are joined in) must equal
  the one kept in tests/query_plans/postgresql.json,
  and no big table may be read by a Seq Scan. A changed plan is a test failure to look
  at: if the new plan is right, rewrite the file with
  `UPDATE_QUERY_PLANS=1 TEST_DATABASE_URL=… pytest tests/test_query_plans.py`
  (and `PRINT_QUERY_PLANS=1` prints each plan in full).
- SQLite (the default database): `EXPLAIN QUERY PLAN`; no big table may be SCANned
  whole (a SEARCH along an index, or a SCAN of a covering index for counts in index
  order, is what is wanted).
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event, func, insert, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from licensing.assessment.services import find_interventions
from licensing.audit.models import AuditEvent
from licensing.auth.models import User
from licensing.dashboard import services as dashboard
from licensing.deadlines.models import Deadline
from licensing.incidents import services as incident_services
from licensing.incidents.models import Incident, PremisesIncidentLink
from licensing.premises import exports
from licensing.premises import services as premises_services
from licensing.premises.models import LicensingAuthority, Premises, ReviewApplication
from licensing.visits import services as visit_services
from licensing.visits.models import OBJECTIVES, Visit
from tests.conftest import ON_POSTGRES

POSTGRES_ONLY = "PostgreSQL {}: run with TEST_DATABASE_URL naming a PostgreSQL server"
EXPECTED_FILE = Path(__file__).parent / "query_plans" / "postgresql.json"
# Tables the test fills with 10,000 rows or more, as a live register has many times
# that: none may be read whole. (The premises and deadlines are fewer here, so a Seq
# Scan of them can be the cheaper plan; their plans are kept all the same.)
BIG_TABLES = {"incidents", "premises_incident_links", "audit_events", "visits"}
# A handful of rows each: how they are joined in is left out of the kept shapes.
LOOKUP_TABLES = {"users", "licensing_authorities"}
JOIN_NODES = {"Hash Join", "Nested Loop", "Merge Join"}
PASS_THROUGH_NODES = {"Hash", "Memoize", "Materialize"}
# Plans as good as the kept one, which the planner takes on some runs: their costs are
# within a few per cent of each other on this register, so which wins turns on small
# differences in the statistics. Each still reads only by index and stops at the page.
EQUALLY_GOOD_PLANS: dict[str, list[list[list[str]]]] = {
    # The API's keyset page by id, filtered by state and authority: walk the primary key
    # from the cursor, filtering, instead of gathering the state's rows by
    # ix_premises_state_id and sorting them (PostgreSQL 15: cost 255 against 277).
    "api_premises_list": [[["Limit", "  Index Scan on premises using pk_premises"]]],
}
# SQLite has no cost-based choice between them: it must search all of these by index.
SQLITE_INDEXED = BIG_TABLES | {"premises", "deadlines"}
PREMISES = 3_000
INCIDENTS = 40_000
OTHER_EVENTS = (
    "details_changed",
    "visit_scheduled",
    "visit_recorded",
    "bundle_built",
    "bundle_issued",
    "letter_issued",
    "recommendation_made",
    "engage",
)
HOT_HISTORY = 5_000  # confirmed incidents of the one premises whose history is paged
NOW = datetime(2026, 11, 12, 12, 0, tzinfo=UTC)
STATES = ("monitored",) * 12 + ("warned",) * 4 + ("review",) * 3 + ("action",)
CATEGORIES = ("Anti-social behaviour", "Public order", "Drugs", "Violence and sexual offences")


# ---- the register ----------------------------------------------------------------------


def _build(connection: Connection) -> dict[str, int]:
    """Fill the empty, migrated database; returns ids the queries ask about."""
    rng = random.Random(8)  # noqa: S311 (test data, not secrets)
    now = NOW
    authorities = [
        {"id": n + 1, "code": code, "name": f"{code} Council"}
        for n, code in enumerate(("LIV", "SEF", "WIR", "KNO", "STH"))
    ]
    connection.execute(insert(LicensingAuthority.__table__), authorities)
    officers = [
        {
            "id": n + 1,
            "email": f"officer{n}@police.example",
            "name": f"Officer {n}",
            "password_hash": "x",
            "role": "officer",
            "active": True,
            "created_at": now,
            "failed_sign_ins": 0,
        }
        for n in range(20)
    ]
    connection.execute(insert(User.__table__), officers)
    premises = []
    for n in range(PREMISES):
        premises.append(
            {
                "id": n + 1,
                "authority_id": n % 5 + 1,
                "licence_number": f"PL/{n:05d}",
                "name": f"Premises {rng.randrange(10**6):06d}",
                "address": f"{n} High Street",
                "postcode": f"L{n % 40} {n % 9}AB",
                "latitude": 53.3 + rng.random() * 0.3,
                "longitude": -3.1 + rng.random() * 0.4,
                "licence_holder": "",
                "dps": "",
                "licensable_activities": "",
                "opening_hours": "",
                "licence_status": "granted",
                "state": STATES[n % len(STATES)],
                "case_officer_id": n % 20 + 1,
                "version": 1,
                "created_at": now,
                "updated_at": now,
            }
        )
    connection.execute(insert(Premises.__table__), premises)
    incidents = []
    for n in range(INCIDENTS):
        counted = now - timedelta(minutes=rng.randrange(3 * 365 * 24 * 60))
        incidents.append(
            {
                "id": n + 1,
                "source": "police-uk",
                "source_ref": f"ref-{n:06d}",
                "counted_at": counted,
                "month": counted.strftime("%Y-%m"),
                "category": CATEGORIES[n % len(CATEGORIES)],
                "description": "",
                "location_text": "On or near High Street",
                "latitude": 53.3 + rng.random() * 0.3,
                "longitude": -3.1 + rng.random() * 0.4,
                "lsoa_code": "",
                "lsoa_name": "",
                "outcome": "",
                "reported_by": "",
                "context": "",
                "authority_id": n % 5 + 1,
                "created_at": counted + timedelta(days=20),
            }
        )
    connection.execute(insert(Incident.__table__), incidents)
    hot = 7  # a premises in review with a long history
    links = []
    for n in range(INCIDENTS):
        if n < HOT_HISTORY:
            premises_id, status = hot, "confirmed"
        elif n % 2:
            continue  # about half the rest are linked to nothing
        else:
            premises_id = rng.randrange(1, PREMISES + 1)
            status = ("confirmed",) * 16 + ("suggested",) * 3 + ("rejected",)
            status = status[n % 20]
        links.append(
            {
                "premises_id": premises_id,
                "incident_id": n + 1,
                "status": status,
                "method": "proximity",
                "created_at": incidents[n]["created_at"],
                "incident_counted_at": incidents[n]["counted_at"],
            }
        )
    connection.execute(insert(PremisesIncidentLink.__table__), links)
    events = []
    for n in range(PREMISES):
        # Four events a premises of the kinds a register's chains hold, one premises in
        # ten warned; the hot premises has an event for each incident linked to it, as
        # recording them does.
        names = ["premises_added", "warn" if n % 10 == 0 else OTHER_EVENTS[n % 8]]
        names += [OTHER_EVENTS[(n + 3) % 8], OTHER_EVENTS[(n + 5) % 8]]
        if n + 1 == hot:
            names += ["incident_linked"] * HOT_HISTORY
        for seq, name in enumerate(names, start=1):
            events.append(
                {
                    "chain": f"premises:{n + 1}",
                    "seq": seq,
                    "premises_id": n + 1,
                    "occurred_at": now,
                    "event": name,
                    "payload": "{}",
                    "prev_hash": "0" * 64,
                    "content_hash": f"{n:032d}{seq:032d}",
                }
            )
    connection.execute(insert(AuditEvent.__table__), events)
    today = NOW.date()
    visits = []
    for n in range(10_000):
        status = ("completed",) * 6 + ("scheduled",) * 2 + ("cancelled",)
        visits.append(
            {
                "premises_id": n % PREMISES + 1,
                "visit_type": "routine",
                "status": status[n % len(status)],
                "visit_date": today + timedelta(days=rng.randrange(-700, 60)),
                "officer_id": n % 20 + 1,
                "findings_crime_and_disorder": "",
                "findings_public_safety": "",
                "findings_public_nuisance": "",
                "findings_protection_of_children": "",
                "follow_up_actions": "",
                "created_at": now,
                "updated_at": now,
                "version": 1,
            }
        )
    connection.execute(insert(Visit.__table__), visits)
    reviews = [
        {
            "id": n + 1,
            "premises_id": p["id"],
            "kind": "standard",
            "status": "open",
            "created_at": now,
        }
        for n, p in enumerate(p for p in premises if p["state"] in ("review", "action"))
    ]
    connection.execute(insert(ReviewApplication.__table__), reviews)
    deadlines = []
    for review in reviews:
        for k, kind in enumerate(("representations_close", "hearing_start_by", "decision_by")):
            deadlines.append(
                {
                    "premises_id": review["premises_id"],
                    "review_id": review["id"],
                    "kind": kind,
                    "due_date": today + timedelta(days=rng.randrange(-200, 60) + k),
                    "rule": "r",
                    "status": "open" if rng.random() < 0.3 else "closed",
                    "created_at": now,
                    "updated_at": now,
                }
            )
    connection.execute(insert(Deadline.__table__), deadlines)
    return {"hot": hot, "officer": 3}


# ---- capturing and explaining ----------------------------------------------------------


@dataclass
class Captured:
    """One statement the app sent, with its parameters."""

    statement: str
    parameters: Any


@pytest.fixture
def capture(app: Flask) -> Iterator[Callable[[Callable[[], Any]], list[Captured]]]:
    """Run a callable and return the statements it sent to the database."""
    engine: Engine = app.extensions["db_engine"]

    def run(work: Callable[[], Any]) -> list[Captured]:
        seen: list[Captured] = []

        def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_a: Any) -> None:
            if statement.lstrip().upper().startswith("SELECT"):
                seen.append(Captured(statement, parameters))

        event.listen(engine, "before_cursor_execute", record)
        try:
            work()
        finally:
            event.remove(engine, "before_cursor_execute", record)
        return seen

    yield run


def _hot_queries(session: Session, ids: dict[str, int]) -> dict[str, Callable[[], Any]]:
    """The reads behind the hot pages, by name (each may send several statements)."""
    officer = session.get(User, ids["officer"])
    assert officer is not None
    hot = ids["hot"]
    page_one, cursor = incident_services.incident_history_page(session, hot, limit=50)
    assert cursor is not None and len(page_one) == 50
    in_review = premises_services.PremisesFilter(state="review", authority="LIV")
    hot_premises = session.get(Premises, hot)
    assert hot_premises is not None
    return {
        "premises_list_state_authority": lambda: premises_services.list_premises(
            session, officer, in_review, 3, 25
        ),
        "premises_list_state": lambda: premises_services.list_premises(
            session, officer, premises_services.PremisesFilter(state="warned"), 1, 25
        ),
        "premises_list_next_page": lambda: premises_services.list_premises(
            session, officer, in_review, 2, 25, after_id=hot
        ),
        "incident_history_first_page": lambda: incident_services.incident_history_page(
            session, hot, limit=50
        ),
        "incident_history_later_page": lambda: incident_services.incident_history_page(
            session, hot, after_incident_id=cursor, limit=50
        ),
        "incident_history_counts": lambda: incident_services.count_links_by_status(session, hot),
        "incident_chart_weeks": lambda: incident_services.weekly_counts(session, hot, now=NOW),
        "premises_interventions": lambda: find_interventions(session, [hot]),
        "interventions_overview": lambda: find_interventions(session),
        "premises_audit_history": lambda: premises_services.history(
            session, session.get(Premises, hot), limit=51
        ),
        "api_premises_list": lambda: premises_services.premises_after(
            session, officer, in_review, 100, 50
        ),
        "dashboard": lambda: dashboard.police_dashboard(session, officer, NOW),
        "linking_near": lambda: incident_services.premises_near(session, 53.45, -2.9, 50.0),
        "linking_licence_number": lambda: incident_services.premises_for_hints(
            session, {"licence_number": "PL/00123", "authority": "SEF"}
        ),
        "incidents_list_first_page": lambda: exports.incidents_page(
            session, exports.IncidentFilter(category="Drugs"), None, 25
        ),
        "incidents_list_count_category": lambda: exports.count_incidents(
            session, exports.IncidentFilter(category="Drugs")
        ),
        "incidents_list_next_page": lambda: exports.incidents_page(
            session, exports.IncidentFilter(), 20_000, 25, 2
        ),
        "premises_visits": lambda: visit_services.premises_visits_context(
            session, officer, hot_premises
        ),
    }


def _relations(node: dict[str, Any]) -> set[str]:
    found = {node["Relation Name"]} if "Relation Name" in node else set()
    for child in node.get("Plans", []):
        found |= _relations(child)
    return found


def _shape(node: dict[str, Any], depth: int = 0) -> list[str]:
    """A plan as lines of node type, relation and index, depth first. How the few rows
    of a lookup table are joined in (hash or nested loop, with or without Memoize) is
    the planner's choice by statistics that vary from run to run and costs nothing, so
    those subtrees, and the joins that only bring them in, are left out; every other
    join is written "Join"."""
    kind = node["Node Type"]
    children = [
        child
        for child in node.get("Plans", [])
        if not (_relations(child) and _relations(child) <= LOOKUP_TABLES)
    ]
    if kind in PASS_THROUGH_NODES and len(children) == 1:
        # Which side of a join is hashed or memoised turns on the same statistics.
        return _shape(children[0], depth)
    if kind in JOIN_NODES:
        if len(children) == 1:
            # A join that only brings in a lookup table: the planner nests these in
            # any order, so the join itself is left out too.
            return _shape(children[0], depth)
        kind = "Join"
    line = "  " * depth + kind
    if "Relation Name" in node:
        line += f" on {node['Relation Name']}"
    if "Index Name" in node:
        line += f" using {node['Index Name']}"
    lines = [line]
    for child in children:
        lines.extend(_shape(child, depth + 1))
    return lines


def _seq_scans(node: dict[str, Any]) -> list[str]:
    found = []
    if node["Node Type"] == "Seq Scan" and node.get("Relation Name") in BIG_TABLES:
        found.append(node["Relation Name"])
    for child in node.get("Plans", []):
        found.extend(_seq_scans(child))
    return found


@pytest.fixture
def register(app: Flask, session: Session) -> dict[str, int]:
    """The bulk-built register, with fresh statistics."""
    engine: Engine = app.extensions["db_engine"]
    with engine.begin() as connection:
        ids = _build(connection)
    if engine.dialect.name == "postgresql":
        # As autovacuum leaves a live database: statistics and the visibility map (which
        # lets counts read an index alone).
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE")
    else:
        with engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE")
    return ids


@pytest.mark.skipif(not ON_POSTGRES, reason=POSTGRES_ONLY.format("plans"))
def test_postgresql_plans_of_the_hot_queries_are_the_kept_ones(
    app: Flask, session: Session, register: dict[str, int], capture: Any
) -> None:
    engine: Engine = app.extensions["db_engine"]
    actual: dict[str, list[list[str]]] = {}
    seq_scans: dict[str, list[str]] = {}
    for name, work in _hot_queries(session, register).items():
        statements = capture(work)
        assert statements, f"{name} sent no SELECT"
        actual[name] = []
        with engine.connect() as connection:
            for captured in statements:
                plan = connection.exec_driver_sql(
                    "EXPLAIN (FORMAT JSON) " + captured.statement, captured.parameters
                ).scalar_one()
                root = (plan if isinstance(plan, list) else json.loads(plan))[0]["Plan"]
                actual[name].append(_shape(root))
                if os.environ.get("PRINT_QUERY_PLANS"):
                    print(f"\n-- {name}\n{captured.statement}\n" + "\n".join(_shape(root)))
                if _seq_scans(root):
                    seq_scans.setdefault(name, []).extend(_seq_scans(root))
    if os.environ.get("UPDATE_QUERY_PLANS"):
        EXPECTED_FILE.parent.mkdir(exist_ok=True)
        EXPECTED_FILE.write_text(json.dumps(actual, indent=1, sort_keys=True) + "\n")
    expected = json.loads(EXPECTED_FILE.read_text())
    assert not seq_scans, f"Seq Scan on a big table: {seq_scans}"
    assert sorted(actual) == sorted(expected)
    for name in expected:
        if actual[name] in EQUALLY_GOOD_PLANS.get(name, []):
            continue
        assert actual[name] == expected[name], (
            f"{name}: the plan changed.\nexpected:\n"
            + "\n---\n".join("\n".join(p) for p in expected[name])
            + "\nactual:\n"
            + "\n---\n".join("\n".join(p) for p in actual[name])
        )


@pytest.mark.skipif(ON_POSTGRES, reason="SQLite plans: this run is on PostgreSQL")
def test_sqlite_searches_the_big_tables_along_an_index(
    app: Flask, session: Session, register: dict[str, int], capture: Any
) -> None:
    engine: Engine = app.extensions["db_engine"]
    scans: dict[str, list[str]] = {}
    searched: set[str] = set()
    for name, work in _hot_queries(session, register).items():
        statements = capture(work)
        assert statements, f"{name} sent no SELECT"
        with engine.connect() as connection:
            for captured in statements:
                rows = connection.exec_driver_sql(
                    "EXPLAIN QUERY PLAN " + captured.statement, captured.parameters
                ).all()
                details = [str(row[-1]) for row in rows]
                if os.environ.get("PRINT_QUERY_PLANS"):
                    print(f"\n-- {name}\n{captured.statement}\n" + "\n".join(details))
                for detail in details:
                    words = detail.split()
                    if len(words) > 1 and words[1] in SQLITE_INDEXED and "INDEX" in detail:
                        searched.add(name)  # a SEARCH along an index, or an ordered walk
                    if words[0] == "SEARCH" and len(words) > 1 and words[1] in SQLITE_INDEXED:
                        searched.add(name)  # by primary key
                    # A plain SCAN of a big table reads it all; "USING COVERING INDEX" or
                    # "USING INDEX" scans read an index in the order wanted and stop early.
                    if words[0] == "SCAN" and words[1] in SQLITE_INDEXED and "INDEX" not in detail:
                        scans.setdefault(name, []).append(detail)
    assert not scans, f"whole-table scans: {scans}"
    # Every hot read finds its rows along an index (a SEARCH, or an ordered walk of an
    # index that stops at the page's end), not only by avoiding whole-table scans.
    assert searched == set(_hot_queries(session, register)), sorted(
        set(_hot_queries(session, register)) - searched
    )


def test_the_history_pages_join_up(app: Flask, session: Session, register: dict[str, int]) -> None:
    """Keyset pages of the 5,000-incident history: every link once, newest first, read as
    links (the API) or as the premises page's lines, and the page's counts."""
    whole = [
        link.incident_id for link in incident_services.linked_incidents(session, register["hot"])
    ]
    for read in (incident_services.linked_incidents_page, incident_services.incident_history_page):
        seen: list[int] = []
        cursor = None
        while True:
            page, cursor = read(session, register["hot"], after_incident_id=cursor, limit=200)
            seen.extend(line.incident_id for line in page)
            if cursor is None:
                break
        assert len(seen) == len(set(seen)) >= HOT_HISTORY, read.__name__
        assert seen == whole, read.__name__
    confirmed, suggested = incident_services.count_links_by_status(session, register["hot"])
    assert confirmed == len(whole)
    assert suggested == session.scalar(
        select(func.count()).where(
            PremisesIncidentLink.premises_id == register["hot"],
            PremisesIncidentLink.status == "suggested",
        )
    )


@pytest.mark.skipif(not ON_POSTGRES, reason=POSTGRES_ONLY.format("statistics"))
def test_postgresql_finds_todays_open_visits_on_a_day_of_many_completed_ones(
    app: Flask, session: Session
) -> None:
    """The dashboard's visits today, on a day when most visits are done: 20,000 completed
    today, a few open today and many open on other days. Planned as if status and day
    were independent, PostgreSQL expected thousands of open visits today and walked the
    visits' primary key, reading them all; migration 0015's extended statistics show it
    that few are, and it searches (status, visit_date)."""
    engine: Engine = app.extensions["db_engine"]
    today = NOW.date()
    with engine.begin() as connection:
        connection.execute(
            insert(LicensingAuthority.__table__), [{"id": 1, "code": "LIV", "name": "LIV"}]
        )
        connection.execute(
            insert(Premises.__table__),
            [
                {
                    "id": n,
                    "authority_id": 1,
                    "licence_number": f"PL/{n:05d}",
                    "name": f"Premises {n}",
                    "address": "1 High Street",
                    "postcode": "L1 1AA",
                    "state": "monitored",
                    "version": 1,
                    "created_at": NOW,
                    "updated_at": NOW,
                }
                for n in range(1, 201)
            ],
        )
        blank = {f"findings_{o}": "" for o in OBJECTIVES} | {"follow_up_actions": ""}
        rows = (
            [{"status": "completed", "visit_date": today} for _ in range(20_000)]
            + [
                {"status": "scheduled", "visit_date": today + timedelta(days=1 + n % 60)}
                for n in range(5_000)
            ]
            + [{"status": "scheduled", "visit_date": today} for _ in range(3)]
        )
        connection.execute(
            insert(Visit.__table__),
            [
                {
                    "premises_id": n % 200 + 1,
                    "visit_type": "routine",
                    "created_at": NOW,
                    "updated_at": NOW,
                    "version": 1,
                    **blank,
                    **row,
                }
                for n, row in enumerate(rows)
            ],
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM ANALYZE visits")
    seen: list[Captured] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_a: Any) -> None:
        seen.append(Captured(statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        lines = dashboard.visits_on(session, today)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert len(lines) == 3
    [captured] = seen
    with engine.connect() as connection:
        plan = connection.exec_driver_sql(
            "EXPLAIN (FORMAT JSON) " + captured.statement, captured.parameters
        ).scalar_one()
    shape = _shape((plan if isinstance(plan, list) else json.loads(plan))[0]["Plan"])
    visits_read = [line.strip() for line in shape if " on visits" in line]
    assert visits_read and all("ix_visits_status_visit_date" in line for line in visits_read), shape
