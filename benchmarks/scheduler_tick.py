"""Benchmark: one scheduler tick over the large data set with 10,000 due alerts (issue 8).

Works in the database it is given (a copy of the large data set: it is modified):

1. Picks `now`: 06:30 London on the first Tuesday at least a week ahead (a working day,
   before the 07:00 digest: the tick measured is the minute sweep's work plus the
   recommendation rules, as `scheduler tick` runs them). Some officers and a supervisor
   choose "digest only" (through `set_alert_mode`).
2. Warm-up (not timed): one `tick` at `now` over the data set as loaded, then every
   outbox row marked sent. That is the steady state of a scheduler that has been
   running: whatever the loaded data calls for at `now` (overdue deadlines and visits,
   recent recommendations) is already in the outbox.
3. Makes exactly `--alerts` new alerts due at `now`, by a bulk insert of the rows the
   services would write (no audit events: the tick never reads them): open deadlines on
   existing reviews, due in 7 or 2 working days, today, or at 17:00 today (to the case
   officer and every supervisor who is not digest-only), and booked visits for tomorrow
   or the last ten days spread over the premises and officers (to the booked officer);
   some visits are booked for digest-only officers, which must raise nothing. The
   benchmark works out the dedupe key of every alert it expects from its own plan.
4. Times one `tick` at `now` (with the time of each part, and of the garbage collector's
   pauses), then checks that exactly the expected outbox rows exist, key for key; times
   a second tick at the same `now`, which must enqueue nothing.
5. Bare: the same selects by hand-written SQL, the stages, keys, subjects and bodies
   (Python string formatting) and one `INSERT … ON CONFLICT (dedupe_key) DO NOTHING`
   (executemany) through the raw DBAPI connection of the same driver, into a copy of the
   outbox taken just before the timed tick; run twice, like the tick. Its new keys must
   be the tick's.
6. Sending: `send_due` of `--send` emails to a real aiosmtpd server on loopback (its
   own process), against a bare loop over the same number of rows of the copy (build the
   message, send it over one connection, UPDATE and commit each), both as emails/s.

    .venv/bin/python benchmarks/scheduler_tick.py --database-url URL --evidence-dir DIR
        [--json PATH] [--alerts 10000] [--deadlines 200] [--send 1000] [--profile DIR]

`--profile DIR` writes cProfile statistics of the timed tick, the second tick and the
send (first.prof, second.prof, send.prof: read them with `python -m pstats`); the
profiler slows what it watches, so figures from such a run are not the results.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import hashlib
import html
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, insert, select, text, update  # noqa: E402

from benchmarks.common import (  # noqa: E402
    Record,
    add_common_options,
    database_kind,
    load_average,
    record,
    write_records,
)
from licensing import create_app  # noqa: E402
from licensing.auth.models import Role, User  # noqa: E402
from licensing.cli import upgrade_database  # noqa: E402
from licensing.db import get_session  # noqa: E402
from licensing.deadlines.models import Deadline  # noqa: E402
from licensing.deadlines.services import calendar  # noqa: E402
from licensing.notifications import scheduler  # noqa: E402
from licensing.notifications.alerts import set_alert_mode  # noqa: E402
from licensing.notifications.models import OutboxEmail  # noqa: E402
from licensing.notifications.sender import SmtpSettings, send_due  # noqa: E402
from licensing.premises.models import Premises, ReviewApplication  # noqa: E402
from licensing.templating import DEADLINE_LABELS  # noqa: E402
from licensing.timeutil import LONDON  # noqa: E402
from licensing.visits.models import Visit  # noqa: E402

DATA = "large"
BENCHMARK = "scheduler_tick"
TARGET_SECONDS = 2.0
BASE_URL = "https://licensing.example.test"
MAIL_FROM = "licensing@police.example"
BARE_TABLE = "bench_outbox_bare"

# A real SMTP server in its own process (so it does not share the sender's GIL): counts
# what it accepts, prints its port, answers "count" on stdin, stops at end of input.
SMTP_SERVER = r"""
import socket, sys, threading
from aiosmtpd.controller import Controller
class Count:
    def __init__(self): self.n = 0; self.lock = threading.Lock()
    async def handle_DATA(self, server, session, envelope):
        with self.lock: self.n += 1
        return "250 OK"
with socket.socket() as s:
    s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
handler = Count()
controller = Controller(handler, hostname="127.0.0.1", port=port)
controller.start()
print(port, flush=True)
for line in sys.stdin:
    print(handler.n, flush=True)
controller.stop()
"""


class SmtpProcess:
    """aiosmtpd on loopback in a child process."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and code
            [sys.executable, "-c", SMTP_SERVER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())

    def received(self) -> int:
        """How many messages the server has accepted."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("count\n")
        self.process.stdin.flush()
        return int(self.process.stdout.readline())

    def stop(self) -> None:
        """End the server."""
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=30)


# ---- the plan: what is due at `now` -----------------------------------------------------


def pick_now(today: date) -> datetime:
    """06:30 London on the first Tuesday at least seven days after `today`, as UTC."""
    day = today + timedelta(days=7)
    while day.weekday() != 1:
        day += timedelta(days=1)
    return datetime(day.year, day.month, day.day, 6, 30, tzinfo=LONDON).astimezone(UTC)


def nth_working_day_after(day: date, n: int, is_working: Callable[[date], bool]) -> date:
    """The n-th working day after `day`."""
    counted, current = 0, day
    while counted < n:
        current += timedelta(days=1)
        counted += is_working(current)
    return current


@dataclass
class Plan:
    """What the benchmark made due, and the dedupe keys it expects."""

    expected: set[str] = field(default_factory=set)
    deadlines: int = 0
    visits: int = 0
    silent_visits: int = 0
    digest_only: set[int] = field(default_factory=set)


def choose_digest_only(session: Any) -> set[int]:
    """Three officers and (when there are several) one supervisor choose "digest only"."""
    officers = list(
        session.scalars(
            select(User)
            .where(User.role == Role.OFFICER, User.active.is_(True))
            .order_by(User.id)
            .limit(3)
        )
    )
    supervisors = list(
        session.scalars(
            select(User)
            .where(User.role == Role.SUPERVISOR, User.active.is_(True))
            .order_by(User.id)
        )
    )
    chosen = officers + (supervisors[-1:] if len(supervisors) > 1 else [])
    for user in chosen:
        set_alert_mode(session, user, "digest")
    return {user.id for user in chosen}


def make_due(session: Any, now: datetime, alerts: int, deadlines: int, seed: int) -> Plan:
    """Insert deadlines and visits that call for exactly `alerts` new alerts at `now`."""
    rng = random.Random(seed)  # noqa: S311 - repeatable benchmark data
    cal = calendar()
    today = now.astimezone(LONDON).date()
    tomorrow = today + timedelta(days=1)
    plan = Plan()
    plan.digest_only = set(
        session.scalars(text("SELECT user_id FROM alert_preferences WHERE mode = 'digest'"))
    )
    supervisors = [
        user_id
        for user_id in session.scalars(
            select(User.id).where(User.role == Role.SUPERVISOR, User.active.is_(True))
        )
        if user_id not in plan.digest_only
    ]
    officers = list(
        session.scalars(
            select(User.id)
            .where(User.role == Role.OFFICER, User.active.is_(True))
            .order_by(User.id)
        )
    )
    creator = officers[0]
    stamp = now - timedelta(days=3)

    # Deadlines on existing reviews whose premises have a case officer, of kinds the
    # review does not have yet (a review has one deadline of each kind).
    taken = set(session.execute(select(Deadline.review_id, Deadline.kind)))
    reviews = list(
        session.execute(
            select(ReviewApplication.id, ReviewApplication.premises_id, Premises.case_officer_id)
            .join(Premises, Premises.id == ReviewApplication.premises_id)
            .where(Premises.case_officer_id.is_not(None))
            .order_by(ReviewApplication.id)
        )
    )
    rng.shuffle(reviews)
    free = [
        (review, kind)
        for review in reviews
        for kind in sorted(DEADLINE_LABELS)
        if (review[0], kind) not in taken
    ]
    rng.shuffle(free)
    hour = datetime(today.year, today.month, today.day, 17, 0, tzinfo=LONDON).astimezone(UTC)
    dates = [
        (nth_working_day_after(today, 7, cal.is_working_day), "T-7"),
        (nth_working_day_after(today, 2, cal.is_working_day), "T-2"),
        (today, "due"),
    ]
    rows: list[dict[str, Any]] = []
    recipients: list[list[int]] = []
    stages: list[str] = []
    for n, ((review_id, premises_id, case_officer_id), kind) in enumerate(free[:deadlines]):
        # Interim steps are due at an hour (17:00 today: still "due" at 06:30).
        due_date, stage = dates[n % len(dates)]
        due_at = hour if kind == "interim_steps_by" else None
        if due_at is not None:
            due_date, stage = None, "due"  # type: ignore[assignment]
        rows.append(
            {
                "premises_id": premises_id,
                "review_id": review_id,
                "kind": kind,
                "due_date": due_date,
                "due_at": due_at,
                "rule": "Benchmark deadline: the Hearings Regulations 2005, regulation 5",
                "status": "open",
                "created_at": stamp,
                "updated_at": stamp,
            }
        )
        people = {case_officer_id} if case_officer_id not in plan.digest_only else set()
        recipients.append(sorted(people | set(supervisors)))
        stages.append(stage)
    if rows:
        ids = list(
            session.scalars(
                insert(Deadline).returning(Deadline.id, sort_by_parameter_order=True), rows
            )
        )
        for deadline_id, row, people, stage in zip(ids, rows, recipients, stages, strict=True):
            due_iso = (
                row["due_at"].isoformat().replace("+00:00", "Z")
                if row["due_at"]
                else row["due_date"].isoformat()
            )
            for user_id in people:
                plan.expected.add(f"deadline:{deadline_id}:{due_iso}:{stage}:user:{user_id}")
        plan.deadlines = len(rows)

    # Booked visits for the rest: two in three tomorrow, the others overdue.
    needed = alerts - len(plan.expected)
    if needed < 0:
        raise SystemExit(f"{deadlines} deadlines already make {len(plan.expected)} alerts")
    premises_ids = list(session.scalars(select(Premises.id).order_by(Premises.id)))
    alerting = [o for o in officers if o not in plan.digest_only]
    silent = [o for o in officers if o in plan.digest_only]
    visits: list[dict[str, Any]] = []
    n = 0
    while len(visits) < needed + plan.silent_visits:
        quiet = bool(silent) and n % 20 == 19  # one in twenty for a digest-only officer
        officer = silent[n % len(silent)] if quiet else alerting[n % len(alerting)]
        day = tomorrow if n % 3 else today - timedelta(days=1 + n % 10)
        visits.append(
            {
                "premises_id": rng.choice(premises_ids),
                "visit_type": "routine",
                "status": "scheduled",
                "visit_date": day,
                "scheduled_at": datetime(day.year, day.month, day.day, 20, 0, tzinfo=LONDON),
                "officer_id": officer,
                "created_by_id": creator,
                "created_at": stamp,
                "updated_at": stamp,
                "version": 1,
                "_quiet": quiet,
            }
        )
        plan.silent_visits += quiet
        n += 1
    quiet_flags = [row.pop("_quiet") for row in visits]
    ids = (
        list(
            session.scalars(insert(Visit).returning(Visit.id, sort_by_parameter_order=True), visits)
        )
        if visits
        else []
    )
    for visit_id, row, quiet in zip(ids, visits, quiet_flags, strict=True):
        if quiet:
            continue
        stage = "tomorrow" if row["visit_date"] == tomorrow else "overdue"
        plan.expected.add(
            f"visit:{visit_id}:{row['visit_date'].isoformat()}:{stage}:user:{row['officer_id']}"
        )
    plan.visits = len(visits) - plan.silent_visits
    session.commit()
    assert len(plan.expected) == alerts, (len(plan.expected), alerts)
    return plan


# ---- timing the app's tick ---------------------------------------------------------------


class PartTimer:
    """Wraps the functions `scheduler.tick` calls, adding up the time of each."""

    NAMES = ("run_recommendations", "enqueue_due_alerts", "enqueue_digests", "send_due")

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def installed(self) -> Iterator[dict[str, float]]:
        """Time the parts while the block runs."""
        originals = {name: getattr(scheduler, name) for name in self.NAMES}
        self.seconds = dict.fromkeys(self.NAMES, 0.0)

        def wrap(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
            def timed(*args: Any, **kwargs: Any) -> Any:
                started = time.perf_counter()
                try:
                    return fn(*args, **kwargs)
                finally:
                    self.seconds[name] += time.perf_counter() - started

            return timed

        for name, fn in originals.items():
            setattr(scheduler, name, wrap(name, fn))
        # The cyclic garbage collector's pauses, which land on whatever allocates.
        self.seconds["(garbage collection)"] = 0.0
        began: list[float] = []

        def collecting(phase: str, _info: dict[str, Any]) -> None:
            if phase == "start":
                began.append(time.perf_counter())
            elif began:
                self.seconds["(garbage collection)"] += time.perf_counter() - began.pop()

        gc.callbacks.append(collecting)
        try:
            yield self.seconds
        finally:
            gc.callbacks.remove(collecting)
            for name, fn in originals.items():
                setattr(scheduler, name, fn)


@contextmanager
def profiled(directory: Path | None, name: str) -> Iterator[None]:
    """cProfile the block into DIRECTORY/NAME.prof when a directory is given."""
    if directory is None:
        yield
        return
    profile = cProfile.Profile()
    profile.enable()
    try:
        yield
    finally:
        profile.disable()
        directory.mkdir(parents=True, exist_ok=True)
        profile.dump_stats(str(directory / f"{name}.prof"))


def outbox_keys(session: Any) -> set[str]:
    """Every dedupe key in the outbox."""
    return set(session.scalars(select(OutboxEmail.dedupe_key)))


# ---- bare --------------------------------------------------------------------------------


class Bare:
    """The enqueue by hand: the same selects, the same keys, subjects and bodies by string
    formatting, one INSERT … ON CONFLICT DO NOTHING through the raw DBAPI connection."""

    def __init__(self, engine: Any, kind: str, cal: Any) -> None:
        self.engine = engine
        self.kind = kind
        self.cal = cal
        self.mark = "?" if kind == "sqlite" else "%s"

    def _when(self, value: datetime) -> Any:
        naive = value.astimezone(UTC).replace(tzinfo=None)
        # SQLAlchemy keeps SQLite timestamps as text in this form.
        return naive.strftime("%Y-%m-%d %H:%M:%S.%f") if self.kind == "sqlite" else naive

    @staticmethod
    def _date(value: Any) -> date:
        return date.fromisoformat(value) if isinstance(value, str) else value

    @staticmethod
    def _instant(value: Any) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC)

    def copy_outbox(self) -> None:
        """The copy the bare enqueue writes to: the outbox's columns, its unique key, and
        its rows as they are now."""
        with self.engine.begin() as connection:
            connection.execute(text(f"DROP TABLE IF EXISTS {BARE_TABLE}"))
            serial = "INTEGER PRIMARY KEY" if self.kind == "sqlite" else "SERIAL PRIMARY KEY"
            stamp = "DATETIME" if self.kind == "sqlite" else "TIMESTAMP"
            connection.execute(
                text(
                    f"CREATE TABLE {BARE_TABLE} (id {serial}, dedupe_key VARCHAR(200) NOT NULL"
                    " UNIQUE, recipient VARCHAR(254) NOT NULL, user_id INTEGER, subject"
                    " VARCHAR(300) NOT NULL, text_body TEXT NOT NULL, html_body TEXT NOT NULL,"
                    " message_id VARCHAR(100) NOT NULL, status VARCHAR(16) NOT NULL, attempts"
                    f" INTEGER NOT NULL, next_attempt_at {stamp} NOT NULL, last_error TEXT,"
                    f" claimed_by VARCHAR(100), claimed_at {stamp}, sent_at {stamp},"
                    f" created_at {stamp} NOT NULL)"
                )
            )
            connection.execute(
                text(f"CREATE INDEX ix_{BARE_TABLE}_due ON {BARE_TABLE} (status, next_attempt_at)")
            )
            connection.execute(
                text(
                    f"INSERT INTO {BARE_TABLE} SELECT id, dedupe_key, recipient, user_id,"
                    " subject, text_body, html_body, message_id, status, attempts,"
                    " next_attempt_at, last_error, claimed_by, claimed_at, sent_at, created_at"
                    " FROM outbox_emails"
                )
            )
            if self.kind == "postgresql":
                connection.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{BARE_TABLE}', 'id'),"
                        f" (SELECT coalesce(max(id), 0) + 1 FROM {BARE_TABLE}))"
                    )
                )

    def keys(self) -> set[str]:
        """Every dedupe key in the copy."""
        with self.engine.connect() as connection:
            return set(connection.scalars(text(f"SELECT dedupe_key FROM {BARE_TABLE}")))

    def enqueue(self, now: datetime) -> int:
        """One bare pass; the number of rows inserted."""
        raw = self.engine.raw_connection()
        try:
            return self._enqueue(raw, now)
        finally:
            raw.close()

    def _stage(
        self, due_date: date, due_at: datetime | None, now: datetime, today: date
    ) -> str | None:
        if due_at is not None and now > due_at:
            return "overdue"
        if today > due_date:
            return "overdue"
        if today == due_date:
            return "due"
        for n in (2, 7):
            counted, current = 0, due_date
            while counted < n:
                current -= timedelta(days=1)
                counted += self.cal.is_working_day(current)
            if today >= current:
                return f"T-{n}"
        return None

    def _enqueue(self, raw: Any, now: datetime) -> int:
        m = self.mark
        today = now.astimezone(LONDON).date()
        tomorrow = today + timedelta(days=1)
        cursor = raw.cursor()
        cursor.execute("SELECT user_id FROM alert_preferences WHERE mode = 'digest'")
        skip = {row[0] for row in cursor.fetchall()}
        cursor.execute(
            "SELECT id, email, name FROM users WHERE role = 'supervisor' AND active = "
            + ("1" if self.kind == "sqlite" else "true")
            + " ORDER BY id"
        )
        supervisors = [row for row in cursor.fetchall() if row[0] not in skip]
        rows: list[tuple[Any, ...]] = []
        created = self._when(now)

        def add(key: str, user: tuple[Any, ...], subject: str, body: str, body_html: str) -> None:
            user_id, email, name = user
            text_body = f"Dear {name},\n\n{body}\n\n{FOOTER}"
            html_body = HTML.format(
                subject=html.escape(subject), name=html.escape(name), body=body_html
            )
            digest = hashlib.sha256(key.encode()).hexdigest()[:32]
            rows.append(
                (
                    key,
                    email,
                    user_id,
                    subject,
                    text_body,
                    html_body,
                    f"<{digest}@licensing.local>",
                    "created",
                    0,
                    created,
                    created,
                )
            )

        cursor.execute(
            "SELECT d.id, d.kind, d.due_date, d.due_at, d.rule, p.id, p.name,"
            " p.licence_number, u.id, u.email, u.name, u.active FROM deadlines d"
            " JOIN premises p ON p.id = d.premises_id"
            " LEFT JOIN users u ON u.id = p.case_officer_id"
            " WHERE d.status = 'open' ORDER BY d.id"
        )
        day_cache: dict[tuple[Any, Any], str | None] = {}
        for (
            d_id,
            kind,
            due_date,
            due_at,
            rule,
            p_id,
            p_name,
            licence,
            u_id,
            u_email,
            u_name,
            u_active,
        ) in cursor.fetchall():
            at = self._instant(due_at)
            day = at.astimezone(LONDON).date() if at is not None else self._date(due_date)
            cache_key = (day, at if at is not None and now > at else None)
            if cache_key not in day_cache:
                day_cache[cache_key] = self._stage(day, at, now, today)
            stage = day_cache[cache_key]
            if stage is None:
                continue
            label = DEADLINE_LABELS.get(kind, kind.replace("_", " "))
            left = self.cal.working_days_between(tomorrow, day)
            if stage == "overdue":
                subject = f"Overdue: {label.lower()} – {p_name}"
            elif stage == "due":
                subject = f"Due today: {label.lower()} – {p_name}"
            else:
                subject = f"{left} working days left: {label.lower()} – {p_name}"
            due_text = at.isoformat() if at is not None else day.isoformat()
            url = f"{BASE_URL}/premises/{p_id}"
            body = (
                f"A deadline: {stage}.\n\nPremises: {p_name} ({licence})\nDeadline: {label}\n"
                f"Due: {due_text}\nRule: {rule}\n\nOpen the premises: {url}"
            )
            body_html = DEADLINE_HTML.format(
                stage=stage,
                premises=html.escape(f"{p_name} ({licence})"),
                label=html.escape(label),
                due=html.escape(due_text),
                rule=html.escape(rule),
                url=url,
                name=html.escape(p_name),
            )
            people = {}
            if u_id is not None and u_active and u_id not in skip:
                people[u_id] = (u_id, u_email, u_name)
            for user in supervisors:
                people.setdefault(user[0], user)
            due_iso = at.isoformat().replace("+00:00", "Z") if at is not None else day.isoformat()
            for user in people.values():
                add(
                    f"deadline:{d_id}:{due_iso}:{stage}:user:{user[0]}",
                    user,
                    subject,
                    body,
                    body_html,
                )

        cursor.execute(
            "SELECT r.id, r.recommended_event, r.summary, p.id, p.name, p.licence_number,"
            " u.id, u.email, u.name, u.active FROM recommendations r"
            " JOIN premises p ON p.id = r.premises_id"
            " LEFT JOIN users u ON u.id = p.case_officer_id"
            f" WHERE r.status = 'open' AND r.created_at >= {m} ORDER BY r.id",
            (self._when(now - timedelta(days=14)),),
        )
        for (
            r_id,
            event,
            summary,
            p_id,
            p_name,
            licence,
            u_id,
            u_email,
            u_name,
            u_active,
        ) in cursor.fetchall():
            if u_id is not None:
                people_list = [(u_id, u_email, u_name)] if u_active and u_id not in skip else []
            else:
                people_list = list(supervisors)
            event_text = event.replace("_", " ")
            subject = f"Recommendation: {event_text} – {p_name}"
            url = f"{BASE_URL}/premises/{p_id}"
            body = f"A threshold rule recommends: {event_text}.\n\nPremises: {p_name} ({licence})\nWhy: {summary}\n\nOpen the premises: {url}"
            body_html = f"<p>{html.escape(body)}</p>"
            for user in people_list:
                add(f"recommendation:{r_id}:user:{user[0]}", user, subject, body, body_html)

        cursor.execute(
            "SELECT v.id, v.visit_date, p.id, p.name, p.licence_number,"
            " o.id, o.email, o.name, o.active, c.id, c.email, c.name, c.active FROM visits v"
            " JOIN premises p ON p.id = v.premises_id"
            " LEFT JOIN users o ON o.id = v.officer_id"
            " LEFT JOIN users c ON c.id = p.case_officer_id"
            f" WHERE v.status IN ('proposed', 'scheduled') AND v.visit_date <= {m}"
            " ORDER BY v.id",
            (tomorrow.isoformat() if self.kind == "sqlite" else tomorrow,),
        )
        for (
            v_id,
            visit_date,
            p_id,
            p_name,
            licence,
            o_id,
            o_email,
            o_name,
            o_active,
            c_id,
            c_email,
            c_name,
            c_active,
        ) in cursor.fetchall():
            day = self._date(visit_date)
            if day == tomorrow:
                stage, subject = "tomorrow", f"Visit due tomorrow – {p_name}"
            elif day < today:
                stage, subject = "overdue", f"Visit overdue – {p_name}"
            else:
                continue
            person = (
                (o_id, o_email, o_name, o_active)
                if o_id is not None
                else (c_id, c_email, c_name, c_active)
            )
            if person[0] is None or not person[3] or person[0] in skip:
                continue
            url = f"{BASE_URL}/premises/{p_id}"
            body = f"A visit is {stage}.\n\nPremises: {p_name} ({licence})\nDue: {day.isoformat()}\n\nOpen the premises: {url}"
            body_html = VISIT_HTML.format(
                stage=stage,
                premises=html.escape(f"{p_name} ({licence})"),
                due=day.isoformat(),
                url=url,
                name=html.escape(p_name),
            )
            add(
                f"visit:{v_id}:{day.isoformat()}:{stage}:user:{person[0]}",
                person[:3],
                subject,
                body,
                body_html,
            )

        before = self._count(cursor)
        cursor.executemany(
            f"INSERT INTO {BARE_TABLE} (dedupe_key, recipient, user_id, subject, text_body,"
            " html_body, message_id, status, attempts, next_attempt_at, created_at)"
            f" VALUES ({', '.join([m] * 11)}) ON CONFLICT (dedupe_key) DO NOTHING",
            rows,
        )
        raw.commit()
        return self._count(cursor) - before

    @staticmethod
    def _count(cursor: Any) -> int:
        cursor.execute(f"SELECT count(*) FROM {BARE_TABLE}")
        return int(cursor.fetchone()[0])

    def send(self, port: int, limit: int, now: datetime) -> int:
        """Send `limit` created rows of the copy over one SMTP connection, recording each
        as sent with its own commit; the number sent."""
        import smtplib

        m = self.mark
        raw = self.engine.raw_connection()
        try:
            cursor = raw.cursor()
            cursor.execute(
                f"SELECT id, recipient, subject, text_body, html_body, message_id FROM"
                f" {BARE_TABLE} WHERE status = 'created' ORDER BY next_attempt_at, id LIMIT {m}",
                (limit,),
            )
            rows = cursor.fetchall()
            raw.commit()
            client = smtplib.SMTP("127.0.0.1", port, timeout=10)
            try:
                for email_id, recipient, subject, text_body, html_body, message_id in rows:
                    message = EmailMessage()
                    message["From"] = MAIL_FROM
                    message["To"] = recipient
                    message["Subject"] = subject
                    message["Date"] = format_datetime(now)
                    message["Message-ID"] = message_id
                    message.set_content(text_body)
                    message.add_alternative(html_body, subtype="html")
                    client.send_message(message)
                    cursor.execute(
                        f"UPDATE {BARE_TABLE} SET status = 'sent', sent_at = {m},"
                        f" attempts = attempts + 1 WHERE id = {m}",
                        (self._when(now), email_id),
                    )
                    raw.commit()
            finally:
                client.quit()
            return len(rows)
        finally:
            raw.close()


FOOTER = (
    "--\nYou get this email because you are a user of the licensing enforcement service.\n"
    f"To choose between every alert and a daily digest only: {BASE_URL}/account/alerts"
)
HTML = (
    '<!DOCTYPE html>\n<html lang="en">\n<head><meta charset="utf-8"><title>{subject}</title>'
    '</head>\n<body style="font-family: Arial, sans-serif; font-size: 16px;">\n'
    '<p style="font-weight: bold; font-size: 19px;">Licensing enforcement</p>\n'
    "<p>Dear {name},</p>\n{body}\n<hr>\n<p>You get this email because you are a user of the"
    f' licensing enforcement service. <a href="{BASE_URL}/account/alerts">'
    f"{BASE_URL}/account/alerts</a>.</p>\n</body>\n</html>\n"
)
DEADLINE_HTML = (
    "<p>A deadline: {stage}.</p>\n<table>\n<tr><th>Premises</th><td>{premises}</td></tr>\n"
    "<tr><th>Deadline</th><td>{label}</td></tr>\n<tr><th>Due</th><td>{due}</td></tr>\n"
    '<tr><th>Rule</th><td>{rule}</td></tr>\n</table>\n<p><a href="{url}">Open {name}</a></p>'
)
VISIT_HTML = (
    "<p>A visit is {stage}.</p>\n<table>\n<tr><th>Premises</th><td>{premises}</td></tr>\n"
    '<tr><th>Due</th><td>{due}</td></tr>\n</table>\n<p><a href="{url}">Open {name}</a></p>'
)


# ---- the run -----------------------------------------------------------------------------


def main() -> None:
    """Set up the due alerts, time the tick, its repeat and the bare equivalents, and send."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_options(parser)
    parser.add_argument("--alerts", type=int, default=10_000, help="new alerts due at now")
    parser.add_argument("--deadlines", type=int, default=200, help="of them, from deadlines")
    parser.add_argument("--send", type=int, default=1_000, help="emails for the send rate")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--profile", type=Path, help="write cProfile statistics here")
    args = parser.parse_args()
    if not args.database_url:
        parser.error("--database-url is required (a copy: this benchmark modifies it)")
    kind = database_kind(args.database_url)
    evidence = args.evidence_dir or tempfile.mkdtemp(prefix="scheduler-tick-evidence-")

    smtp = SmtpProcess()
    app = create_app(
        {
            "ENV_NAME": "testing",
            "DATABASE_URL": args.database_url,
            "EVIDENCE_DIR": evidence,
            "BASE_URL": BASE_URL,
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": smtp.port,
            "SMTP_TLS": "none",
            "MAIL_FROM": MAIL_FROM,
            # The tick as first measured: one send of 50 (the sweep's own pass is bounded
            # by OUTBOX_SEND_SECONDS instead; sending is measured on its own below).
            "OUTBOX_SEND_BATCH": 50,
        }
    )
    records: list[Record] = []
    try:
        with app.app_context():
            upgrade_database(args.database_url)
            session = get_session()
            engine = session.get_bind()
            now = pick_now(datetime.now(LONDON).date())
            print(f"{kind}: now = {now.astimezone(LONDON):%A %Y-%m-%d %H:%M} London")
            digest_only = choose_digest_only(session)

            timer = PartTimer()
            with timer.installed() as parts:
                started = time.perf_counter()
                warm = scheduler.tick(app, now)
                warm_seconds = time.perf_counter() - started
            warm_parts = ", ".join(f"{k} {v:.2f} s" for k, v in parts.items())
            session.execute(
                update(OutboxEmail)
                .where(OutboxEmail.status.in_(("created", "sending")))
                .values(status="sent", sent_at=now - timedelta(minutes=1), claimed_by=None)
            )
            session.commit()
            existing = session.scalar(select(func.count()).select_from(OutboxEmail)) or 0
            print(
                f"warm-up tick over the data as loaded: {warm.describe()} in {warm_seconds:.2f} s;"
                f" outbox {existing:,} rows, all marked sent ({warm_parts})"
            )

            plan = make_due(session, now, args.alerts, args.deadlines, args.seed)
            plan.digest_only = digest_only
            print(
                f"made due: {len(plan.expected):,} alerts from {plan.deadlines} deadlines and"
                f" {plan.visits:,} visits (+{plan.silent_visits} visits of digest-only officers)"
            )
            bare = Bare(engine, kind, calendar())
            bare.copy_outbox()
            before_keys = outbox_keys(session)
            session.close()

            load = load_average()
            with timer.installed() as parts, profiled(args.profile, "first"):
                started = time.perf_counter()
                first = scheduler.tick(app, now)
                tick_seconds = time.perf_counter() - started
            first_parts = dict(parts)
            session = get_session()
            new_keys = outbox_keys(session) - before_keys
            if new_keys != plan.expected:
                raise SystemExit(
                    f"the tick enqueued {len(new_keys):,} rows; expected {len(plan.expected):,}"
                    f" ({len(new_keys - plan.expected)} unexpected,"
                    f" {len(plan.expected - new_keys)} missing)"
                )
            enqueued = sum(first.enqueued.values())
            print(f"tick: {first.describe()} in {tick_seconds:.3f} s (load {load})")
            print("  " + ", ".join(f"{k} {v:.3f} s" for k, v in first_parts.items()))

            with timer.installed() as parts, profiled(args.profile, "second"):
                started = time.perf_counter()
                second = scheduler.tick(app, now)
                second_seconds = time.perf_counter() - started
            second_parts = dict(parts)
            again = sum(second.enqueued.values()) + second.digests
            after_second = outbox_keys(session) - before_keys
            if again or after_second != plan.expected:
                raise SystemExit(f"the second tick enqueued {again} more")
            print(f"second tick: {second.describe()} in {second_seconds:.3f} s")
            print("  " + ", ".join(f"{k} {v:.3f} s" for k, v in second_parts.items()))

            started = time.perf_counter()
            bare_added = bare.enqueue(now)
            bare_seconds = time.perf_counter() - started
            bare_new = bare.keys() - before_keys
            if bare_added != len(plan.expected) or bare_new != plan.expected:
                raise SystemExit(
                    f"bare enqueue added {bare_added:,}, {len(bare_new ^ plan.expected)} keys differ"
                )
            started = time.perf_counter()
            bare_again = bare.enqueue(now)
            bare_second_seconds = time.perf_counter() - started
            if bare_again:
                raise SystemExit(f"the second bare pass added {bare_again}")
            print(f"bare enqueue: {bare_seconds:.3f} s; again: {bare_second_seconds:.3f} s")

            received_before = smtp.received()
            settings = SmtpSettings.from_config(app.config)
            with profiled(args.profile, "send"):
                started = time.perf_counter()
                sent = send_due(session, settings, now=now, limit=args.send)
                send_seconds = time.perf_counter() - started
            started = time.perf_counter()
            bare_sent = bare.send(smtp.port, args.send, now)
            bare_send_seconds = time.perf_counter() - started
            received = smtp.received() - received_before
            if sent.sent != args.send or bare_sent != args.send or received != 2 * args.send:
                raise SystemExit(
                    f"sent {sent.sent} and {bare_sent} bare; the server received {received}"
                )
            send_rate, bare_send_rate = sent.sent / send_seconds, bare_sent / bare_send_seconds
            print(
                f"send: {sent.sent} in {send_seconds:.2f} s ({send_rate:.0f}/s); bare"
                f" {bare_sent} in {bare_send_seconds:.2f} s ({bare_send_rate:.0f}/s)"
            )
            load_after = load_average()
            with engine.begin() as connection:
                connection.execute(text(f"DROP TABLE {BARE_TABLE}"))
    finally:
        smtp.stop()

    alerts = len(plan.expected)
    setup = (
        f"{alerts:,} new alerts due at {now.astimezone(LONDON):%a %d %b %Y %H:%M} London"
        f" ({plan.deadlines} deadlines to case officers and supervisors, {plan.visits:,}"
        f" booked visits, {len(plan.digest_only)} digest-only users and"
        f" {plan.silent_visits} of their visits) on top of {existing:,} outbox rows"
        f" already enqueued; load {load}"
    )
    part_text = ", ".join(f"{k} {v:.3f} s" for k, v in first_parts.items())
    records.append(
        record(
            BENCHMARK,
            kind,
            f"tick with {alerts:,} due alerts",
            tick_seconds,
            "s",
            target=f"< {TARGET_SECONDS:g} s",
            met=tick_seconds < TARGET_SECONDS,
            notes=f"{setup}; parts: {part_text}; enqueued {enqueued:,} (checked key by key)",
        )
    )
    records.append(
        record(
            BENCHMARK,
            kind,
            f"enqueue of {alerts:,} due alerts",
            first_parts["enqueue_due_alerts"],
            "s",
            bare=bare_seconds,
            notes="the tick's enqueue_due_alerts against the same selects and one INSERT … ON"
            " CONFLICT DO NOTHING (executemany) through the raw DBAPI connection",
        )
    )
    second_text = ", ".join(f"{k} {v:.3f} s" for k, v in second_parts.items())
    records.append(
        record(
            BENCHMARK,
            kind,
            "second tick at the same now (enqueues nothing)",
            second_seconds,
            "s",
            target=f"< {TARGET_SECONDS:g} s",
            met=second_seconds < TARGET_SECONDS,
            notes=f"parts: {second_text}",
        )
    )
    records.append(
        record(
            BENCHMARK,
            kind,
            "second enqueue at the same now (nothing new)",
            second_parts["enqueue_due_alerts"],
            "s",
            bare=bare_second_seconds,
            notes="the second tick's enqueue_due_alerts against a second bare pass (nothing"
            " inserted)",
        )
    )
    records.append(
        record(
            BENCHMARK,
            kind,
            "sending to aiosmtpd on loopback",
            send_rate,
            "emails/s",
            bare=bare_send_rate,
            notes=f"send_due of {args.send:,} (claim, send, record each with its own commit)"
            " against a bare loop (send, UPDATE, commit each) over one connection; load"
            f" {load_after}",
        )
    )
    write_records(args.json, records)


if __name__ == "__main__":
    main()
