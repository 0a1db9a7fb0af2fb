"""Benchmark: the police dashboard at `/` on a large register, against its bare queries.

Builds (once; cached under /tmp, keyed by the parameters and today's date) a SQLite
database migrated with the real migrations and filled with raw `executemany`:
P premises (default 10,000) over five authorities in all four states, I incidents
(default 1,000,000) in monthly import batches (the newest three days old), about half
linked to a premises (confirmed, suggested or rejected), review applications with open
and closed deadlines (day rules and the summary review's hour rule), a proposed visit
per premises plus scheduled and completed ones, recommendations and shared bundles.

Then, signed in as an officer with a caseload of about a tenth of the register, it
renders the dashboard server-side through the Flask test client N times (default 50,
after a warm-up) and prints the median and p95 in ms, beside the same figures for the
dashboard's queries hand-written in SQL and run bare through the same sqlite3 driver,
and the ratio. Target (issue 6): under 50 ms median. Counts are live: nothing is cached.

With --database-url (as `make bench` runs it) it uses that database instead, a copy of
the large demo data set, signed in as the demo officer; on PostgreSQL the bare queries
go through psycopg. --json writes the figures as records (benchmarks/common.py).

    .venv/bin/python benchmarks/dashboard.py [--premises P] [--incidents I] [--runs N]
        [--rebuild] [--explain] [--database-url URL --evidence-dir DIR --json PATH]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (  # noqa: E402
    SqlCapture,
    add_common_options,
    bare_connection,
    database_kind,
    record,
    write_records,
)
from licensing import create_app  # noqa: E402
from licensing.auth.services import create_authority, create_user  # noqa: E402
from licensing.cli import upgrade_database  # noqa: E402
from licensing.dashboard.services import london_midnight  # noqa: E402
from licensing.db import get_session  # noqa: E402
from licensing.demo import DEMO_PASSWORD  # noqa: E402
from licensing.incidents.models import POLICE_UK_CATEGORIES  # noqa: E402
from licensing.timeutil import to_london  # noqa: E402

PASSWORD = "benchmark-password-2026"  # noqa: S105 (a throwaway benchmark database)
AUTHORITIES = [
    ("LIV", "Liverpool"),
    ("SEF", "Sefton"),
    ("WIR", "Wirral"),
    ("KNO", "Knowsley"),
    ("STH", "St Helens"),
]
STATE_SHARES = [("monitored", 0.60), ("warned", 0.20), ("review", 0.12), ("action", 0.08)]
OFFICERS = 10
MONTHS = 36
# What `make bench` gives it (benchmarks/run_all.py): a copy of the large demo data set.
DATA = "large"


def ts(moment: datetime) -> str:
    """A UTC instant as SQLAlchemy stores it in SQLite (naive, with microseconds)."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", timespec="microseconds")


def insert(db: sqlite3.Connection, table: str, rows: Iterable[dict[str, Any]]) -> int:
    """executemany `rows` into `table`, filling NOT NULL columns the rows leave out (the
    model's Python-side defaults: '' for text, 0 for numbers)."""
    info = db.execute(f"PRAGMA table_info({table})").fetchall()
    rows = list(rows)
    if not rows:
        return 0
    given = list(rows[0])
    fill = {
        name: (0 if any(t in kind.upper() for t in ("INT", "FLOAT", "NUMERIC", "BOOL")) else "")
        for _cid, name, kind, notnull, default, pk in info
        if notnull and default is None and not pk and name not in given
    }
    columns = given + list(fill)
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    db.executemany(sql, ([*(r[c] for c in given), *fill.values()] for r in rows))
    return len(rows)


def build(path: Path, premises_count: int, incident_count: int, seed: int) -> None:
    """Migrate a fresh database at `path` and fill it (see the module docstring)."""
    url = f"sqlite:///{path}"
    upgrade_database(url)
    app = create_app({"ENV_NAME": "testing", "DATABASE_URL": url})
    with app.app_context():
        session = get_session()
        for code, name in AUTHORITIES:
            create_authority(session, code, f"{name} Council")
        for n in range(1, OFFICERS + 1):
            create_user(
                session, f"officer{n}@police.example", f"Officer {n}", "officer", PASSWORD, None
            )
        create_user(session, "sergeant@police.example", "Sergeant", "supervisor", PASSWORD, None)
        create_user(session, "lo@liverpool.example", "LO", "council", PASSWORD, "LIV")
        session.commit()
    app.extensions["db_engine"].dispose()

    rng = random.Random(seed)
    now = datetime.now(UTC)
    today = to_london(now).date()
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    officer_ids = [
        r[0] for r in db.execute("SELECT id FROM users WHERE role = 'officer' ORDER BY id")
    ]
    authority_ids = [r[0] for r in db.execute("SELECT id FROM licensing_authorities ORDER BY id")]

    started = time.perf_counter()
    states = [s for s, share in STATE_SHARES for _ in range(round(share * premises_count))]
    states = (states + ["monitored"] * premises_count)[:premises_count]
    rng.shuffle(states)
    insert(
        db,
        "premises",
        (
            {
                "id": i + 1,
                "authority_id": authority_ids[i % len(authority_ids)],
                "licence_number": f"BEN/{i + 1}",
                "name": f"Premises {i + 1:05d}",
                "postcode": "L1 1AA",
                "licence_status": "current",
                "case_officer_id": rng.choice(officer_ids),
                "state": states[i],
                "version": 1,
                "created_at": ts(now),
                "updated_at": ts(now),
            }
            for i in range(premises_count)
        ),
    )
    premises_ids = list(range(1, premises_count + 1))
    by_state = {
        s: [i + 1 for i in range(premises_count) if states[i] == s] for s, _ in STATE_SHARES
    }

    # Reviews and their deadlines: two day rules each (one a few weeks either side of
    # today), a summary review's hour rule for one in five, closed ones from the past.
    reviews, deadlines = [], []
    for n, premises_id in enumerate(by_state["review"] + by_state["action"]):
        review_id = n + 1
        applied = today - timedelta(days=rng.randint(5, 60))
        summary = n % 5 == 0
        reviews.append(
            {
                "id": review_id,
                "premises_id": premises_id,
                "kind": "summary" if summary else "standard",
                "application_date": None if summary else applied.isoformat(),
                "received_at": ts(london_midnight(applied)) if summary else None,
                "status": "open" if premises_id in by_state["review"] else "determined",
                "created_at": ts(now),
            }
        )
        kinds = (
            ["representations_close", "hearing_start_by"]
            if not summary
            else ["summary_determination_by"]
        )
        for kind in kinds:
            due = applied + timedelta(days=28 + rng.randint(0, 30))
            deadlines.append((premises_id, review_id, kind, due.isoformat(), None))
        if summary:
            due_at = london_midnight(applied) + timedelta(hours=48 + rng.randint(0, 72))
            deadlines.append((premises_id, review_id, "interim_steps_by", None, ts(due_at)))
        if premises_id in by_state["action"]:
            deadlines.append(
                (
                    premises_id,
                    review_id,
                    "compliance_visit_due",
                    (applied + timedelta(days=50)).isoformat(),
                    None,
                )
            )
    insert(db, "review_applications", reviews)
    insert(
        db,
        "deadlines",
        (
            {
                "premises_id": p,
                "review_id": r,
                "kind": k,
                "due_date": d,
                "due_at": a,
                "rule": "benchmark",
                "status": "closed"
                if (d or a or "") < (today - timedelta(days=20)).isoformat()
                else "open",
                "created_at": ts(now),
                "updated_at": ts(now),
            }
            for p, r, k, d, a in deadlines
        ),
    )

    # Visits: the policy's proposal for every premises, bookings around today, history.
    visits = []
    for premises_id in premises_ids:
        visits.append(
            (premises_id, "proposed", today + timedelta(days=rng.randint(-20, 180)), None)
        )
    for _ in range(premises_count // 5):
        visits.append(
            (
                rng.choice(premises_ids),
                "scheduled",
                today + timedelta(days=rng.randint(-10, 30)),
                rng.choice(officer_ids),
            )
        )
    for _ in range(premises_count * 2):
        visits.append(
            (
                rng.choice(premises_ids),
                "completed",
                today - timedelta(days=rng.randint(1, 700)),
                rng.choice(officer_ids),
            )
        )
    insert(
        db,
        "visits",
        (
            {
                "premises_id": p,
                "visit_type": "routine",
                "status": s,
                "visit_date": d.isoformat(),
                "officer_id": o,
                "outcome": "compliant" if s == "completed" else None,
                "created_at": ts(now),
                "updated_at": ts(now),
                "version": 1,
            }
            for p, s, d, o in visits
        ),
    )

    insert(
        db,
        "recommendations",
        (
            {
                "premises_id": rng.choice(premises_ids),
                "rule": "serious_while_monitored",
                "recommended_event": "warn",
                "summary": "3 serious incidents in 28 days",
                "incident_ids": "[]",
                "status": "open" if n % 5 == 0 else rng.choice(["acted", "dismissed"]),
                "created_at": ts(now - timedelta(hours=rng.randint(1, 24 * 365))),
            }
            for n in range(premises_count // 3)
        ),
    )

    insert(
        db,
        "bundles",
        (
            {
                "premises_id": premises_id,
                "reference": f"EB-{premises_id:05d}-01",
                "version": 1,
                "status": "issued",
                "period_from": (today - timedelta(days=365)).isoformat(),
                "period_to": today.isoformat(),
                "review_kind": "standard",
                "built_at": ts(now),
                "index_json": "[]",
                "shared_at": ts(now - timedelta(days=rng.randint(0, 60))) if n % 2 == 0 else None,
                "acknowledged_at": ts(now) if n % 4 == 0 else None,
                "lock_version": 1,
            }
            for n, premises_id in enumerate(by_state["review"] + by_state["action"])
        ),
    )
    db.commit()
    print(
        f"  premises, reviews, deadlines, visits, recommendations, bundles: {time.perf_counter() - started:.1f}s"
    )

    # Incidents in monthly import batches, the newest imported three days ago; half linked.
    started = time.perf_counter()
    db.execute(
        "INSERT INTO incident_import_runs (id, file_name, sha256, format, started_at, rows_read, created,"
        " duplicate, rejected, linked, suggested) VALUES (1, 'bench.csv', '', 'police-uk', ?, 0, 0, 0, 0, 0, 0)",
        (ts(now),),
    )
    per_batch = incident_count // MONTHS + 1
    incident_sql = (
        "INSERT INTO incidents (id, source, source_ref, month, counted_at, category, description,"
        " location_text, latitude, longitude, lsoa_code, lsoa_name, outcome, reported_by, context,"
        " import_run_id, created_at) VALUES (?, 'police-uk', ?, ?, ?, ?, '', 'On or near Pub / Bar',"
        " 53.4, -2.98, '', '', '', 'Merseyside Police', '', 1, ?)"
    )
    link_sql = (
        "INSERT INTO premises_incident_links (premises_id, incident_id, status, method, distance_m,"
        " created_at, incident_counted_at) VALUES (?, ?, ?, 'proximity', 20.0, ?, ?)"
    )
    categories = list(POLICE_UK_CATEGORIES)
    next_id = 1
    for batch in range(MONTHS):
        age = (MONTHS - 1 - batch) * 30 + 3
        created = ts(now - timedelta(days=age))
        counted_day = today - timedelta(days=age + 45)
        month = counted_day.strftime("%Y-%m")
        counted = f"{month}-15 00:00:00.000000"
        recent = age <= 7
        size = min(per_batch, incident_count - next_id + 1)
        rows, links = [], []
        for n in range(next_id, next_id + size):
            rows.append((n, f"{n:064x}", month, counted, categories[n % len(categories)], created))
            if rng.random() < 0.5:
                roll = rng.random()
                if recent:
                    status = "suggested" if roll < 0.8 else "confirmed"
                else:
                    status = (
                        "suggested" if roll < 0.1 else "confirmed" if roll < 0.7 else "rejected"
                    )
                links.append((rng.choice(premises_ids), n, status, created, counted))
        db.executemany(incident_sql, rows)
        db.executemany(link_sql, links)
        next_id += size
    db.commit()
    db.execute("ANALYZE")
    db.commit()
    db.close()
    print(f"  {incident_count:,} incidents and their links: {time.perf_counter() - started:.1f}s")


# ---- the bare queries ------------------------------------------------------------------


def bare_queries(officer_id: int, now: datetime) -> list[tuple[str, Sequence[Any]]]:
    """The dashboard's statements, hand-written: the same filters, bounds and LIMITs."""
    today = to_london(now).date()
    monday = today - timedelta(days=today.weekday())
    sunday = monday + timedelta(days=6)
    until = today + timedelta(days=14)
    midnight = ts(london_midnight(today))
    after_until = ts(london_midnight(until + timedelta(days=1)))
    t, m, s = today.isoformat(), monday.isoformat(), sunday.isoformat()
    since = ts(now - timedelta(days=7))
    open_visits = "FROM visits WHERE status IN ('proposed', 'scheduled')"
    return [
        (
            "SELECT u.*, a.* FROM users u LEFT JOIN licensing_authorities a"
            " ON a.id = u.authority_id WHERE u.id = ?",
            (officer_id,),
        ),
        ("SELECT state, count(*) FROM premises GROUP BY state", ()),
        (
            "SELECT r.id, r.premises_id, p.name, r.recommended_event, r.summary, r.created_at,"
            " (SELECT count(*) FROM recommendations WHERE status = 'open')"
            " FROM recommendations r JOIN premises p ON p.id = r.premises_id WHERE r.id IN"
            " (SELECT id FROM recommendations WHERE status = 'open'"
            " ORDER BY created_at DESC, id DESC LIMIT 5) ORDER BY r.created_at DESC, r.id DESC",
            (),
        ),
        (
            "SELECT d.id, d.premises_id, p.name, d.kind, d.due_date, d.due_at,"
            " (SELECT count(*) FROM deadlines WHERE status = 'open' AND due_date < ?)"
            " + (SELECT count(*) FROM deadlines WHERE status = 'open' AND due_date IS NULL AND due_at < ?),"
            " (SELECT count(*) FROM deadlines WHERE status = 'open' AND due_date >= ? AND due_date <= ?)"
            " + (SELECT count(*) FROM deadlines WHERE status = 'open' AND due_date IS NULL"
            " AND due_at >= ? AND due_at < ?)"
            " FROM deadlines d JOIN premises p ON p.id = d.premises_id WHERE d.id IN ("
            " SELECT id FROM (SELECT id FROM deadlines WHERE status = 'open' AND due_date < ?"
            " ORDER BY due_date, id LIMIT 10) AS overdue_day"
            " UNION ALL SELECT id FROM (SELECT id FROM deadlines WHERE status = 'open'"
            " AND due_date IS NULL AND due_at < ? ORDER BY due_at, id LIMIT 10) AS overdue_hour"
            " UNION ALL SELECT id FROM (SELECT id FROM deadlines WHERE status = 'open'"
            " AND due_date >= ? AND due_date <= ? ORDER BY due_date, id LIMIT 10) AS soon_day"
            " UNION ALL SELECT id FROM (SELECT id FROM deadlines WHERE status = 'open'"
            " AND due_date IS NULL AND due_at >= ? AND due_at < ? ORDER BY due_at, id LIMIT 10) AS soon_hour)",
            (t, midnight, t, until.isoformat(), midnight, after_until)
            + (t, midnight, t, until.isoformat(), midnight, after_until),
        ),
        (
            f"SELECT (SELECT count(*) {open_visits} AND visit_date = ?),"
            f" (SELECT count(*) {open_visits} AND visit_date BETWEEN ? AND ?),"
            f" (SELECT count(*) {open_visits} AND visit_date < ?),"
            f" (SELECT count(*) {open_visits} AND officer_id = ? AND visit_date = ?),"
            f" (SELECT count(*) {open_visits} AND officer_id = ? AND visit_date BETWEEN ? AND ?),"
            f" (SELECT count(*) {open_visits} AND officer_id = ? AND visit_date < ?)",
            (t, m, s, t, officer_id, t, officer_id, m, s, officer_id, t),
        ),
        (
            "SELECT v.id, v.premises_id, p.name, v.visit_date, v.visit_type, v.status, u.name"
            " FROM visits v JOIN premises p ON p.id = v.premises_id"
            " LEFT JOIN users u ON u.id = v.officer_id"
            " WHERE v.status IN ('proposed', 'scheduled') AND v.visit_date = ?"
            " ORDER BY v.visit_date, v.id LIMIT 10",
            (t,),
        ),
        (
            # Both counts stop one past the dashboard's cap, as the page's do; an
            # incident suggested for several premises counts once, by its first link.
            "SELECT (SELECT count(*) FROM (SELECT id FROM incidents WHERE created_at >= ?"
            " LIMIT 10001) AS added),"
            " (SELECT count(*) FROM (SELECT l.incident_id FROM premises_incident_links l"
            " WHERE l.status = 'suggested' AND l.created_at >= ? AND NOT EXISTS (SELECT 1"
            " FROM premises_incident_links o WHERE o.incident_id = l.incident_id"
            " AND o.premises_id < l.premises_id AND o.status = 'suggested'"
            " AND o.created_at >= ?) LIMIT 10001) AS suggested)",
            (since, since, since),
        ),
        (
            "SELECT state, count(*) FROM premises WHERE case_officer_id = ? GROUP BY state",
            (officer_id,),
        ),
        (
            "SELECT p.id, p.name, p.state, nd.kind, nd.due_date, nd.due_at FROM premises p"
            " LEFT JOIN (SELECT premises_id, kind, due_date, due_at, row_number() OVER"
            " (PARTITION BY premises_id ORDER BY coalesce(due_at, due_date), id) AS rank"
            " FROM deadlines WHERE status = 'open'"
            " AND premises_id IN (SELECT id FROM premises WHERE case_officer_id = ?)) nd"
            " ON nd.premises_id = p.id AND nd.rank = 1 WHERE p.case_officer_id = ?"
            " ORDER BY CASE p.state WHEN 'action' THEN 0 WHEN 'review' THEN 1 WHEN 'warned' THEN 2"
            " WHEN 'monitored' THEN 3 ELSE 4 END, coalesce(nd.due_at, nd.due_date) IS NULL,"
            " coalesce(nd.due_at, nd.due_date), p.name, p.id LIMIT 20",
            (officer_id, officer_id),
        ),
        (
            "SELECT v.id, v.premises_id, p.name, v.visit_date, v.visit_type, v.status, u.name"
            " FROM visits v JOIN premises p ON p.id = v.premises_id"
            " LEFT JOIN users u ON u.id = v.officer_id"
            " WHERE v.status IN ('proposed', 'scheduled') AND v.officer_id = ?"
            " ORDER BY v.visit_date, v.id LIMIT 10",
            (officer_id,),
        ),
    ]


def timed(
    fn: Callable[[], object], runs: int, clock: Callable[[], float] = time.perf_counter
) -> list[float]:
    """Milliseconds for each of `runs` calls, after one warm-up call (wall clock, or
    `time.process_time` for this process's CPU time: SQLite runs in-process, so that is
    the work itself, without the waits of a machine shared with other jobs)."""
    fn()
    out = []
    for _ in range(runs):
        started = clock()
        fn()
        out.append((clock() - started) * 1000)
    return out


def p95(values: list[float]) -> float:
    """The 95th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[max(0, round(0.95 * len(ordered)) - 1)]


def main() -> None:
    """Build or reuse the database, then time the dashboard and its bare queries."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--premises", type=int, default=10_000)
    parser.add_argument("--incidents", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--rebuild", action="store_true", help="build the database again")
    parser.add_argument("--explain", action="store_true", help="print each bare query's plan")
    add_common_options(parser)
    args = parser.parse_args()

    now = datetime.now(UTC)
    path = (
        Path(tempfile.gettempdir())
        / f"licensing-bench-dashboard-p{args.premises}-i{args.incidents}-s{args.seed}-{to_london(now).date():%Y%m%d}.db"
    )
    url = f"sqlite:///{path}"
    email, password = "officer1@police.example", PASSWORD
    if args.database_url:
        # The given database (make bench: a copy of the large demo data set).
        url, email, password = args.database_url, "officer@police.example", DEMO_PASSWORD
        print(f"using the given database ({database_kind(url)})")
    elif args.rebuild or not path.exists():
        for stale in path.parent.glob(path.name + "*"):
            stale.unlink()
        print(f"building {path.name} ({args.premises:,} premises, {args.incidents:,} incidents)")
        started = time.perf_counter()
        build(path, args.premises, args.incidents, args.seed)
        print(f"built in {time.perf_counter() - started:.1f}s")
    else:
        print(f"reusing {path}")
    upgrade_database(url)  # a cached file gets any newer migration (an index, say)

    config = {"ENV_NAME": "testing", "DATABASE_URL": url}
    if args.evidence_dir:
        config["EVIDENCE_DIR"] = args.evidence_dir
    app = create_app(config)
    client = app.test_client()
    page = client.get("/sign-in").get_data(as_text=True)
    token = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page)
    assert token, "no CSRF token on the sign-in page"
    response = client.post(
        "/sign-in",
        data={
            "email": email,
            "password": password,
            "csrf_token": token.group(1),
        },
    )
    assert response.status_code == 302, response.status_code

    def render() -> None:
        response = client.get("/")
        assert response.status_code == 200
        response.get_data()

    capture = SqlCapture(app.extensions["db_engine"])
    with capture.capturing() as statements:
        html = client.get("/").get_data(as_text=True)
    statement_count = len(statements)
    figures = dict(re.findall(r'id="count-([a-z-]+)" href="[^"]*">(\d+)<', html))
    print("dashboard figures: " + ", ".join(f"{k} {v}" for k, v in figures.items()))
    page_ms = timed(render, args.runs)
    page_cpu = timed(render, args.runs, time.process_time)

    kind = database_kind(url)
    db = (
        sqlite3.connect(path)
        if kind == "sqlite" and not args.database_url
        else bare_connection(url)
    )
    officer_id = db.execute(
        "SELECT id FROM users WHERE email = ?".replace("?", mark(kind)), (email,)
    ).fetchone()[0]
    queries = [
        (sql.replace("?", mark(kind)), params)
        for sql, params in bare_queries(officer_id, datetime.now(UTC))
    ]
    if args.explain:
        for sql, params in queries:
            print(sql)
            explain = "EXPLAIN QUERY PLAN" if kind == "sqlite" else "EXPLAIN"
            for row in db.execute(f"{explain} {sql}", params):
                print("   ", row[-1])

    def bare() -> None:
        for sql, params in queries:
            db.execute(sql, params).fetchall()

    bare_ms = timed(bare, args.runs)
    bare_cpu = timed(bare, args.runs, time.process_time)
    slowest = sorted(
        (
            (
                statistics.median(timed(lambda s=sql, p=params: db.execute(s, p).fetchall(), 10)),
                sql[:60],
            )
            for sql, params in queries
        ),
        reverse=True,
    )[:3]
    db.close()

    page_median, bare_median = statistics.median(page_ms), statistics.median(bare_ms)
    print()
    print(
        f"police dashboard, {args.premises:,} premises, {args.incidents:,} incidents, {args.runs} runs (SQLite)"
    )
    print("| measure | median ms | p95 ms | CPU median ms |")
    print("|---|---:|---:|---:|")
    print(
        f"| GET / (Flask test client, signed in, rendered) | {page_median:.1f} | {p95(page_ms):.1f}"
        f" | {statistics.median(page_cpu):.1f} |"
    )
    print(
        f"| the same {len(queries)} queries, bare {'sqlite3' if kind == 'sqlite' else 'psycopg (CPU: client side only)'} | {bare_median:.1f} | {p95(bare_ms):.1f}"
        f" | {statistics.median(bare_cpu):.1f} |"
    )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"ratio page/bare: {page_median / bare_median:.2f} (CPU {statistics.median(page_cpu) / statistics.median(bare_cpu):.2f});"
        f" target median < 50 ms: {'met' if page_median < 50 else 'NOT met'}"
        f" (load average {load:.1f} on {os.cpu_count()} CPUs)"
    )
    print(
        "slowest bare queries (median ms): "
        + "; ".join(f"{ms:.1f} {sql}..." for ms, sql in slowest)
    )
    write_records(
        args.json,
        [
            record(
                "dashboard",
                kind,
                "GET / in-process (test client, rendered), median",
                page_median,
                "ms",
                bare=bare_median,
                target="median < 50 ms",
                met=page_median < 50,
                notes=f"p95 {p95(page_ms):.1f} ms; CPU median {statistics.median(page_cpu):.1f} ms"
                f" page, {statistics.median(bare_cpu):.1f} ms bare; {runs_note(args.runs)};"
                f" {statement_count} SQL statements; bare: the same {len(queries)} queries"
                f" hand-written, {'sqlite3' if kind == 'sqlite' else 'psycopg'}, fetchall"
                f" (ratio includes template rendering)",
            )
        ],
    )


def mark(kind: str) -> str:
    """The driver's parameter mark: sqlite3's ? or psycopg's %s."""
    return "?" if kind == "sqlite" else "%s"


def runs_note(runs: int) -> str:
    """How many timed runs a figure is over."""
    return f"{runs} runs after a warm-up"


if __name__ == "__main__":
    main()
