"""Benchmark: four pages under load, served by gunicorn, against a copy of the large data set.

Pages: the police dashboard `/`; the premises list filtered by state and authority
(`/premises?state=warned&authority=LIV`); the page of one premises given a 5,000-incident
history; the API's premises list (`/api/v1/premises`, bearer token).

Set-up, in the database it is given (make bench: its own copy of the large demo data
set), through the app's services: 5,000 incidents recorded and linked (confirmed) to one
premises with `record_incident`, each an `incident_linked` event on its history; an API
token for the demo officer with `issue_token`.

1. In-process, through the Flask test client signed in as the demo officer, for each
   page: the SQL statements it issues (captured with `before_cursor_execute`), the time
   its data takes through the ORM (`common.OrmTimer`: inside `Session._execute_internal`,
   which every query, `get`, lazy load and eager load goes through, inside the ORM's
   building of objects and rows from the cursor, and inside every fetch from a result,
   where the Core rows of a table-column statement are built; wherever in the request
   that happens, the user's load and SQL run while rendering included), and the same
   captured reads replayed through the same DBAPI driver (sqlite3 or psycopg) with
   fetchall, right after each request: the bare figure. Target: ORM within 2x of bare.
   Beside it, the same reads through SQLAlchemy's Connection as the driver received them
   (`exec_driver_sql`: nothing compiled, no ORM, no result types), measured as the bare
   replay is: SQLAlchemy's floor, the least any use of it adds to bare; and the whole
   request less template rendering (which adds the web framework, sign-in checks, forms
   and charts).
2. gunicorn with the repo's gunicorn.conf.py and 2 workers on a loopback port, signed in
   over HTTP (POST /sign-in with its CSRF token); load from a separate process
   (benchmarks/loadgen.py, open loop): each page at 20 requests/s for --duration seconds,
   p50/p95/p99 from the scheduled send time, achieved rate, errors (any non-200). Target:
   p95 < 100 ms. Then the rate is stepped up (--step-duration seconds a step, at most
   --max-rate) until p95 reaches 100 ms or a request fails: the highest rate that still
   met it is reported. If `wrk` is on PATH its closed-loop rate (2 connections, 10 s) is
   added as a note.

    .venv/bin/python benchmarks/pages.py --database-url URL --evidence-dir DIR [--json PATH]
        [--duration 20] [--step-duration 8] [--max-rate 320] [--runs 40] [--history 5000]
        [--in-process-only]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from flask import before_render_template, template_rendered  # noqa: E402
from sqlalchemy import event, func, select  # noqa: E402

from benchmarks.common import (  # noqa: E402
    Record,
    SqlCapture,
    add_common_options,
    bare_connection,
    database_kind,
    is_read,
    load_average,
    median,
    orm_timer,
    record,
    replay,
    replay_through_sqlalchemy,
    write_records,
)
from licensing import create_app  # noqa: E402
from licensing.auth.models import User  # noqa: E402
from licensing.auth.services import issue_token  # noqa: E402
from licensing.cli import upgrade_database  # noqa: E402
from licensing.db import get_session  # noqa: E402
from licensing.demo import DEMO_PASSWORD  # noqa: E402
from licensing.incidents.models import CATEGORIES, PremisesIncidentLink  # noqa: E402
from licensing.incidents.services import record_incident  # noqa: E402
from licensing.premises.models import Premises  # noqa: E402

# What `make bench` gives it (benchmarks/run_all.py): a copy of the large demo data set.
DATA = "large"
OFFICER = "officer@police.example"
SECRET_KEY = "benchmark-secret-key-not-for-production"  # noqa: S105 - a loopback benchmark
TARGET_MS = 100.0
RATE = 20.0
STEPS = (30, 40, 60, 80, 120, 160, 240, 320, 480)
CLIENT_TIMEOUT_S = 10.0
# Flask-Login's session protection ties a session to the client's address and User-Agent:
# the load generator must send the one the session signed in with.
USER_AGENT = "licensing-bench"
CSRF = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')


@dataclass
class Page:
    """A page to measure: a label, its path, and whether it is the API (token, no HTML)."""

    label: str
    path: str
    api: bool = False


# ---- set-up --------------------------------------------------------------------------------


def give_history(session: Any, count: int, seed: int = 8) -> tuple[int, int]:
    """Record `count` incidents linked (confirmed) to one warned premises through
    `record_incident`, as an officer entering them would; (premises id, its confirmed
    links now)."""
    rng = random.Random(seed)  # noqa: S311 - repeatable benchmark data
    officer = session.scalar(select(User).where(User.email == OFFICER))
    premises = session.scalar(
        select(Premises).where(Premises.state == "warned").order_by(Premises.id).limit(1)
    ) or session.scalar(select(Premises).order_by(Premises.id).limit(1))
    assert officer is not None and premises is not None, "the data set has no officer/premises"
    now = datetime.now(UTC)
    started = time.perf_counter()
    for i in range(count):
        record_incident(
            session,
            officer,
            {
                "source": "rms",
                "source_ref": f"BENCH-PAGES-{premises.id}-{i:05d}",
                "occurred_at": (now - timedelta(hours=1 + i * 26_000 / count)).isoformat(),
                "category": rng.choice(CATEGORIES),
                "description": "Disorder outside at closing time; door staff intervened.",
                "location": "Outside the premises",
            },
            premises=premises,
            commit=False,
        )
        if i % 500 == 499:
            session.commit()
    session.commit()
    linked = session.scalar(
        select(func.count())
        .select_from(PremisesIncidentLink)
        .where(
            PremisesIncidentLink.premises_id == premises.id,
            PremisesIncidentLink.status == "confirmed",
        )
    )
    print(
        f"history: {count:,} incidents recorded and linked to premises {premises.id} in"
        f" {time.perf_counter() - started:.1f} s ({linked:,} confirmed links now)",
        flush=True,
    )
    return premises.id, int(linked or 0)


def sign_in_client(client: Any) -> None:
    """Sign the test client in as the demo officer through the real form."""
    token = CSRF.search(client.get("/sign-in").get_data(as_text=True))
    assert token, "no CSRF token on the sign-in page"
    response = client.post(
        "/sign-in",
        data={"email": OFFICER, "password": DEMO_PASSWORD, "csrf_token": token.group(1)},
    )
    assert response.status_code == 302, f"sign-in answered {response.status_code}"


# ---- 1. in-process: statements, ORM time, bare replay -----------------------------------------


@dataclass
class InProcess:
    """A page's in-process figures (ms, medians over the runs)."""

    runs: int
    statements: int
    reads: int
    render_statements: int
    outside_statements: int
    request_ms: float
    data_ms: float
    orm_ms: float
    sql_ms: float
    bare_ms: float
    floor_ms: float


def measure_in_process(
    app: Any, url: str, page: Page, headers: dict[str, str], runs: int, budget: float
) -> InProcess:
    """Statements, data-gathering time through the ORM and the bare replay of one page."""
    client = app.test_client()
    if not page.api:
        sign_in_client(client)
    capture = SqlCapture(app.extensions["db_engine"])
    timer = orm_timer()
    # Statements sent outside the ORM (through a Core connection, say) would escape the
    # timer: counted, so the figure says if any did.
    outside: list[int] = [0]

    def sent(*_args: Any) -> None:
        if capture.active and not timer.inside:
            outside[0] += 1

    event.listen(app.extensions["db_engine"], "before_cursor_execute", sent)
    render: dict[str, float] = {}

    def rendering_started(sender: Any, **extra: Any) -> None:
        render["start"], render["sql_at_start"] = time.perf_counter(), capture.cursor_seconds
        render["statements_at_start"] = len(capture.statements)

    def rendering_done(sender: Any, **extra: Any) -> None:
        render["end"], render["sql_at_end"] = time.perf_counter(), capture.cursor_seconds
        render["statements_at_end"] = len(capture.statements)

    before_render_template.connect(rendering_started, app)
    template_rendered.connect(rendering_done, app)
    try:

        def one() -> tuple[float, float, float, float, list[Any], int]:
            render.clear()
            outside[0] = 0
            with capture.capturing() as statements, timer.timing():
                started = time.perf_counter()
                response = client.get(page.path, headers=headers)
                response.get_data()
                total = time.perf_counter() - started
            assert response.status_code == 200, f"{page.path} answered {response.status_code}"
            rendering = 0.0
            in_render = 0
            if "end" in render:
                # Template time less the SQL it ran (lazy loads count as data gathering).
                rendering = (render["end"] - render["start"]) - (
                    render["sql_at_end"] - render["sql_at_start"]
                )
                in_render = int(render["statements_at_end"] - render["statements_at_start"])
            return (
                total * 1000,
                (total - rendering) * 1000,
                timer.seconds * 1000,
                capture.cursor_seconds * 1000,
                list(statements),
                in_render,
            )

        # Warm-up (caches, first connection); its statements are the ones replayed bare.
        statements = one()[4]
        reads = [s for s in statements if is_read(s)]
        # In a transaction, as each request's statements are (on PostgreSQL the first
        # statement pays for the BEGIN in both), ended untimed, as the request's is after
        # its data.
        connection = bare_connection(url, autocommit=False)
        # The app's own engine (its pool, its connect-time settings and events).
        through_sqlalchemy = app.extensions["db_engine"].connect()
        totals, datas, orms, sqls, bares, floors = [], [], [], [], [], []
        in_render = 0

        def warmed_then_timed(run: Any, through: Any) -> float:
            # Back to back: once to warm the processor's caches for the driver after the
            # request, then timed, as the bare figure has always been measured.
            run(through, reads)
            through.rollback()
            started = time.perf_counter()
            run(through, reads)
            seconds = time.perf_counter() - started
            through.rollback()
            return seconds * 1000

        # Each request is followed at once by its bare replay, so that both halves of the
        # ratio are sampled at the same moments: a shared machine's speed drifts by tens
        # of per cent within a minute, which measuring all of one and then all of the
        # other turned into the ratio. At most `runs`, and no more than `budget` seconds'
        # worth (at least 3): a slow page is slow enough to measure in a few.
        started = time.perf_counter()
        try:
            while len(totals) < runs and (
                len(totals) < 3 or time.perf_counter() - started < budget
            ):
                total, data, orm, sql, statements, in_render = one()
                totals.append(total)
                datas.append(data)
                orms.append(orm)
                sqls.append(sql)
                bares.append(warmed_then_timed(replay, connection))
                # SQLAlchemy's Connection and Result around the same driver, measured alike.
                floors.append(warmed_then_timed(replay_through_sqlalchemy, through_sqlalchemy))
        finally:
            connection.close()
            through_sqlalchemy.close()
    finally:
        before_render_template.disconnect(rendering_started, app)
        template_rendered.disconnect(rendering_done, app)
        event.remove(app.extensions["db_engine"], "before_cursor_execute", sent)
    if [s["sql"] for s in statements if is_read(s)] != [s["sql"] for s in reads]:
        raise AssertionError(f"{page.path}: its reads changed between runs (the bare replay's)")
    return InProcess(
        runs=len(totals),
        statements=len(statements),
        reads=len(reads),
        render_statements=in_render,
        outside_statements=outside[0],
        request_ms=median(totals),
        data_ms=median(datas),
        orm_ms=median(orms),
        sql_ms=median(sqls),
        bare_ms=median(bares),
        floor_ms=median(floors),
    )


# ---- 2. gunicorn and the load ------------------------------------------------------------------


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def gunicorn(url: str, evidence: str, workdir: Path) -> Iterator[str]:
    """gunicorn (gunicorn.conf.py, 2 workers) on a loopback port; yields its base URL."""
    port = free_port()
    log = workdir / "gunicorn.log"
    metrics = workdir / "metrics"
    metrics.mkdir(exist_ok=True)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("FLASK_", "PROMETHEUS_"))},
        "LICENSING_ENV": "development",
        "SECRET_KEY": SECRET_KEY,
        "DATABASE_URL": url,
        "EVIDENCE_DIR": evidence,
        "BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics),
        "LOG_FORMAT": "text",
        # Sign-in limits counted in this server alone: one sign-in per server here.
        "RATELIMIT_STORAGE_URI": "memory://",
    }
    with log.open("wb") as sink:
        process = subprocess.Popen(  # noqa: S603 - our own server, fixed arguments
            [
                str(Path(sys.executable).parent / "gunicorn"),
                "-c",
                str(ROOT / "gunicorn.conf.py"),
                "wsgi:app",
            ],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{base}/readyz", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass  # not listening yet, or its workers still starting
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"gunicorn did not become ready; its log:\n{log.read_text()[-3000:]}"
                )
            time.sleep(0.2)
        yield base
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)  # quick shutdown: drop any backlog
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        restarts = log.read_text(errors="replace").count("Booting worker") - 2
        if restarts > 0:
            print(f"gunicorn restarted a worker {restarts} time(s) (max_requests)", flush=True)


def sign_in_http(base: str) -> str:
    """A signed-in session's Cookie header value, through the real sign-in form."""
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    page = session.get(f"{base}/sign-in", timeout=10)
    token = CSRF.search(page.text)
    assert token, "no CSRF token on the sign-in page"
    response = session.post(
        f"{base}/sign-in",
        data={"email": OFFICER, "password": DEMO_PASSWORD, "csrf_token": token.group(1)},
        allow_redirects=False,
        timeout=30,
    )
    assert response.status_code == 302, f"sign-in answered {response.status_code}"
    return "; ".join(f"{c.name}={c.value}" for c in session.cookies)


def offer(url: str, rate: float, duration: float, headers: dict[str, str]) -> dict[str, Any]:
    """One open-loop run from a separate process (benchmarks/loadgen.py)."""
    argv = [
        sys.executable,
        str(Path(__file__).with_name("loadgen.py")),
        "--timeout",
        str(CLIENT_TIMEOUT_S),
        "--url",
        url,
        "--rate",
        str(rate),
        "--duration",
        str(duration),
    ]
    for name, value in headers.items():
        argv += ["--header", f"{name}: {value}"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=duration + 60)  # noqa: S603
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def meets(result: dict[str, Any]) -> bool:
    """p95 under the target and every request answered 200."""
    p95 = result["p95_ms"]
    return p95 is not None and p95 < TARGET_MS and not result["errors"]


def wrk_rate(url: str, headers: dict[str, str]) -> str:
    """wrk's closed-loop requests/s (2 connections, 10 s), or why there is none."""
    wrk = shutil.which("wrk")
    if wrk is None:
        return "wrk not installed"
    argv = [wrk, "-t2", "-c2", "-d10s"]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    try:
        out = subprocess.run([*argv, url], capture_output=True, text=True, timeout=60, check=False)  # noqa: S603
    except subprocess.TimeoutExpired:
        return "wrk timed out"
    rate = re.search(r"Requests/sec:\s*([\d.]+)", out.stdout)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out.stdout)
    if not rate:
        return "wrk gave no rate"
    return f"wrk closed loop (2 connections, 10 s): {float(rate.group(1)):.0f} req/s" + (
        f", {non_2xx.group(1)} non-2xx" if non_2xx else ""
    )


def highest_rate(
    url: str, headers: dict[str, str], first: dict[str, Any], step_seconds: float, max_rate: float
) -> tuple[float, str]:
    """The highest offered rate (of the steps tried) with p95 < 100 ms and no errors, and
    a note of the steps. Steps up from 20/s; if 20/s already fails, steps down."""
    steps = [f"20/s p95 {fmt(first['p95_ms'])}"]
    best = RATE if meets(first) else 0.0
    if not meets(first) and (first["p50_ms"] or 0) >= 10 * TARGET_MS:
        # A page whose median is ten times the target will not meet it at a lower rate.
        return best, "; ".join([*steps, "no lower rate tried (p50 over 1 s)"])
    rates = [r for r in STEPS if r <= max_rate] if meets(first) else [10, 5]
    for rate in rates:
        result = offer(url, rate, step_seconds, headers)
        ok = meets(result)
        steps.append(
            f"{rate}/s p95 {fmt(result['p95_ms'])}"
            + (f" errors {sum(result['errors'].values())}" if result["errors"] else "")
        )
        if meets(first):
            if not ok:
                break
            best = rate
        elif ok:
            best = rate
            break
    return best, "; ".join(steps)


def fmt(value: float | None) -> str:
    """A latency in ms, or 'unanswered'."""
    if value is None or (isinstance(value, float) and math.isinf(value)):
        return "unanswered"
    return f"{value:.0f} ms"


# ---- main ----------------------------------------------------------------------------------------


def main() -> None:
    """Set up, measure in-process, then under gunicorn; print and write the records."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_common_options(parser)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds at 20/s")
    parser.add_argument("--step-duration", type=float, default=8.0, help="seconds a step")
    parser.add_argument("--max-rate", type=float, default=320.0)
    parser.add_argument("--runs", type=int, default=40, help="in-process runs a page, at most")
    parser.add_argument(
        "--budget", type=float, default=20.0, help="seconds of in-process runs a page, at most"
    )
    parser.add_argument("--history", type=int, default=5000, help="incidents on one premises")
    parser.add_argument(
        "--in-process-only",
        action="store_true",
        help="only part 1 (statements, ORM time, bare replay): no gunicorn, no load",
    )
    args = parser.parse_args()
    # Stopped with SIGTERM, clean up as on Ctrl-C: copies and servers are removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if not args.database_url:
        parser.error("--database-url is required (a copy of the large data set: make bench)")
    url = args.database_url
    kind = database_kind(url)
    workdir = Path(tempfile.mkdtemp(prefix="bench-pages-"))
    evidence = args.evidence_dir or str(workdir / "evidence")
    upgrade_database(url)

    app = create_app({"ENV_NAME": "testing", "DATABASE_URL": url, "EVIDENCE_DIR": evidence})
    with app.app_context():
        session = get_session()
        premises_id, linked = give_history(session, args.history)
        _record, token = issue_token(session, OFFICER, "benchmark", scopes=["read"])
        session.commit()
    pages = [
        Page("dashboard", "/"),
        Page("premises list (warned, LIV)", "/premises?state=warned&authority=LIV"),
        Page(f"premises page ({linked:,} incidents)", f"/premises/{premises_id}"),
        Page("API premises list", "/api/v1/premises", api=True),
    ]
    api_headers = {"Authorization": f"Bearer {token}"}

    records: list[Record] = []
    print(f"in-process, {args.runs} runs a page (load average {load_average()})", flush=True)
    for page in pages:
        figures = measure_in_process(
            app, url, page, api_headers if page.api else {}, args.runs, args.budget
        )
        ratio = figures.orm_ms / figures.bare_ms if figures.bare_ms else math.inf
        whole = figures.data_ms / figures.bare_ms if figures.bare_ms else math.inf
        floor = figures.floor_ms / figures.bare_ms if figures.bare_ms else math.inf
        print(
            f"  {page.label}: {figures.statements} statements ({figures.render_statements} while"
            f" rendering, {figures.outside_statements} outside the ORM), request"
            f" {figures.request_ms:.1f} ms, less rendering"
            f" {figures.data_ms:.1f} ms, in the ORM {figures.orm_ms:.1f} ms, bare"
            f" {figures.bare_ms:.1f} ms, ratio {ratio:.2f} (SQLAlchemy's floor {floor:.2f},"
            f" request less rendering {whole:.2f})",
            flush=True,
        )
        records.append(
            record(
                "pages",
                kind,
                f"{page.label}: its data through the ORM, in-process",
                figures.orm_ms,
                "ms",
                bare=figures.bare_ms,
                target="ORM within 2x of bare",
                met=ratio <= 2.0,
                notes=f"{figures.statements} SQL statements"
                f" ({figures.render_statements} while rendering,"
                f" {figures.outside_statements} outside the ORM; {figures.reads} reads"
                f" replayed bare through {'sqlite3' if kind == 'sqlite' else 'psycopg'});"
                f" {figures.sql_ms:.1f} ms of it inside the driver's cursor; the figure is"
                " the time inside SQLAlchemy (Session.execute, and building objects or"
                " rows from the cursor's as they are fetched);"
                " SQLAlchemy's floor (the same reads through Connection.exec_driver_sql:"
                f" nothing compiled, no ORM, no result types) {figures.floor_ms:.3g} ms"
                f" ({floor:.2f}x bare);"
                f" the whole request less template rendering"
                f"{'' if not page.api else ' (none: JSON)'} is {figures.data_ms:.1f} ms"
                f" ({whole:.2f}x bare) of {figures.request_ms:.1f} ms; median of {figures.runs}",
            )
        )
    app.extensions["db_engine"].dispose()

    for page in [] if args.in_process_only else pages:
        # A fresh server per page: a page too slow for the offered rate leaves a backlog
        # of accepted requests that would otherwise be served during the next page's run.
        with gunicorn(url, evidence, workdir) as base:
            cookie = {"Cookie": sign_in_http(base), "User-Agent": USER_AGENT}
            headers = api_headers if page.api else cookie
            target_url = base + page.path
            offer(target_url, 5, 2, headers)  # warm-up: both workers' first requests
            # Closed loop first: it leaves no backlog behind for the open-loop runs.
            closed = wrk_rate(target_url, headers)
            first = offer(target_url, RATE, args.duration, headers)
            best, steps = highest_rate(
                target_url, headers, first, args.step_duration, args.max_rate
            )
        errors = ", ".join(f"{k}: {v}" for k, v in first["errors"].items()) or "none"
        print(
            f"  {page.label}: 20/s p50 {fmt(first['p50_ms'])} p95 {fmt(first['p95_ms'])}"
            f" p99 {fmt(first['p99_ms'])} achieved {first['achieved_rate']:.1f}/s errors"
            f" {errors}; highest rate with p95 < 100 ms: {best:g}/s ({steps}); {closed}"
            f" (load average {load_average()})",
            flush=True,
        )
        p95 = first["p95_ms"]
        records.append(
            record(
                "pages",
                kind,
                f"{page.label}: p95 at 20 req/s open loop, gunicorn 2 workers",
                # Unanswered requests: p95 is beyond the client's timeout, at least that.
                p95 if p95 is not None else CLIENT_TIMEOUT_S * 1000,
                "ms",
                target="p95 < 100 ms, no errors",
                met=meets(first),
                notes=("" if p95 is not None else f"p95 over the {CLIENT_TIMEOUT_S:g} s timeout; ")
                + f"p50 {fmt(first['p50_ms'])}, p99 {fmt(first['p99_ms'])}, max"
                f" {fmt(first['max_ms'])}; achieved {first['achieved_rate']:.1f} req/s over"
                f" {args.duration:g} s; errors {errors}; load average {load_average()}",
            )
        )
        records.append(
            record(
                "pages",
                kind,
                f"{page.label}: highest offered rate with p95 < 100 ms",
                best,
                "req/s",
                target="reported",
                notes=f"steps of {args.step_duration:g} s: {steps}; {closed}",
            )
        )
    shutil.rmtree(workdir, ignore_errors=True)
    write_records(args.json, records)


if __name__ == "__main__":
    main()
