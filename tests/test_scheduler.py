"""The scheduler: its jobs (ids and triggers), the one-active lock, and `tick`, which
catches up after downtime and, run twice at once, still sends every email once."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from licensing.notifications.models import OutboxEmail
from licensing.notifications.scheduler import (
    AdvisoryLock,
    FileLock,
    build_scheduler,
    make_lock,
    tick,
    wait_for_lock,
)
from licensing.timeutil import LONDON, parse_instant
from tests import smtp_support
from tests.conftest import ON_POSTGRES, cancel_proposed_visits, move
from tests.smtp_support import SmtpServer

smtp_server = smtp_support.smtp_server  # the fixture, shared by the SMTP test modules


@pytest.fixture(autouse=True)
def _instance_in_tmp(app: Flask, tmp_path: Path) -> None:
    # The lock file goes under the app's instance folder: keep the real one clean.
    app.instance_path = str(tmp_path / "instance")


# ---- the jobs -------------------------------------------------------------------------


def test_the_jobs_have_their_ids_and_triggers(app: Flask) -> None:
    scheduler = build_scheduler(app)
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert set(jobs) == {"sweep", "digest", "recommendations"}

    sweep = jobs["sweep"].trigger
    assert isinstance(sweep, IntervalTrigger) and sweep.interval == timedelta(minutes=1)
    hourly = jobs["recommendations"].trigger
    assert isinstance(hourly, IntervalTrigger) and hourly.interval == timedelta(hours=1)

    digest = jobs["digest"].trigger
    assert isinstance(digest, CronTrigger)
    assert str(digest.timezone) == "Europe/London"
    fields = {f.name: str(f) for f in digest.fields}
    assert (fields["hour"], fields["minute"]) == ("7", "0")
    # 07:00 London: 07:00 UTC in winter, 06:00 UTC in summer.
    winter = digest.get_next_fire_time(None, datetime(2027, 1, 15, 1, tzinfo=LONDON))
    summer = digest.get_next_fire_time(None, datetime(2027, 7, 15, 1, tzinfo=LONDON))
    assert winter is not None and winter.astimezone(UTC).hour == 7
    assert summer is not None and summer.astimezone(UTC).hour == 6

    assert all(job.max_instances == 1 and job.coalesce for job in jobs.values())
    # The job store is the in-memory one: never shared between processes.
    assert isinstance(scheduler._jobstores["default"], MemoryJobStore)  # noqa: SLF001
    assert not scheduler.running


def test_with_a_lock_the_scheduler_also_checks_it_still_holds_it(app: Flask) -> None:
    lock = make_lock(app)
    scheduler = build_scheduler(app, lock)
    assert {job.id for job in scheduler.get_jobs()} == {
        "sweep",
        "digest",
        "recommendations",
        "lock_check",
    }


# ---- the lock -------------------------------------------------------------------------


def test_only_one_scheduler_holds_the_lock(app: Flask) -> None:
    first, second = make_lock(app), make_lock(app)
    assert isinstance(first, AdvisoryLock if ON_POSTGRES else FileLock)
    try:
        assert first.acquire() is True
        assert first.still_held()
        assert second.acquire() is False
        assert not second.still_held()
        first.release()
        assert not first.still_held()
        assert second.acquire() is True
        assert first.acquire() is False
    finally:
        first.release()
        second.release()


def test_a_standby_waits_then_takes_over(app: Flask) -> None:
    active, standby = make_lock(app), make_lock(app)
    said: list[str] = []
    tries = {"n": 0}

    def stop_after_three() -> bool:
        tries["n"] += 1
        return tries["n"] > 3

    try:
        assert active.acquire()
        assert not wait_for_lock(standby, 0, stop_after_three, said.append)
        assert tries["n"] == 4 and said == ["Another scheduler is active: waiting as a standby."]
        active.release()  # the active scheduler dies
        assert wait_for_lock(standby, 0, lambda: False, said.append)
        assert standby.still_held()
    finally:
        active.release()
        standby.release()


@pytest.mark.skipif(ON_POSTGRES, reason="the lock file is SQLite's lock")
def test_the_lock_file_lives_under_instance_per_database(app: Flask, tmp_path: Path) -> None:
    lock = make_lock(app)
    assert isinstance(lock, FileLock)
    assert lock.path.parent == tmp_path / "instance"
    assert lock.path.name.startswith("scheduler-") and lock.path.suffix == ".lock"
    other = FileLock(tmp_path / "elsewhere.lock")
    try:
        assert lock.acquire() and other.acquire()  # different databases do not contend
    finally:
        lock.release()
        other.release()


@pytest.mark.skipif(not ON_POSTGRES, reason="the advisory lock is PostgreSQL's")
def test_the_advisory_lock_goes_with_its_connection(app: Flask) -> None:
    first, second = make_lock(app), make_lock(app)
    assert isinstance(first, AdvisoryLock)
    try:
        assert first.acquire()
        assert first.connection is not None
        first.connection.invalidate()  # the process died: its session ends
        assert not first.still_held()
        assert second.acquire()
    finally:
        first.connection = None
        second.release()


# ---- tick -----------------------------------------------------------------------------


@pytest.fixture
def warned_with_review(session: Session, world: dict[str, Any]) -> None:
    """The Crown under review: representations close on Tuesday 29 December 2026."""
    move(session, world["premises"], world["officer"], "warn")
    with time_machine.travel(datetime(2026, 12, 1, 12, tzinfo=UTC), tick=False):
        move(
            session,
            world["premises"],
            world["supervisor"],
            "apply_for_review",
            application_date="2026-12-01",
        )
    cancel_proposed_visits(session, world["premises"], world["officer"])


def test_tick_catches_up_after_downtime_without_duplicates(
    app: Flask,
    session: Session,
    world: dict[str, Any],
    warned_with_review: None,
    smtp_server: SmtpServer,
) -> None:
    # Down since before the 16th (T-7); back at 09:00 on the 23rd (T-2, after 07:00).
    now = parse_instant("2026-12-23T09:00")
    first = tick(app, now)
    second = tick(app, now + timedelta(minutes=1))
    assert first.enqueued["deadlines"] == 2 and first.digests == 2
    assert first.sent.sent == 4
    assert (second.enqueued["deadlines"], second.digests, second.sent.sent) == (0, 0, 0)
    subjects = sorted(m["Subject"] for m in smtp_server.to(world["officer"].email))
    assert subjects == [
        "2 working days left: representations close – The Crown",
        "Licensing digest for Wednesday 23 December 2026",
    ]


def test_two_ticks_at_once_send_each_email_once(
    app: Flask,
    session: Session,
    world: dict[str, Any],
    warned_with_review: None,
    smtp_server: SmtpServer,
) -> None:
    now = parse_instant("2026-12-23T09:00")
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            tick(app, now)
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    tick(app, now)  # whatever one thread left for the other is finished here
    ids = [m["Message-ID"] for m in smtp_server.messages]
    assert len(ids) == 4 and len(set(ids)) == 4
    assert session.scalar(select(func.count()).where(OutboxEmail.status == "sent")) == 4


def test_the_tick_command(app: Flask, world: dict[str, Any], smtp_server: SmtpServer) -> None:
    runner = app.test_cli_runner()
    result = runner.invoke(args=["scheduler", "tick", "--now", "2026-12-23T09:00"])
    assert result.exit_code == 0, result.output
    assert "recommendations raised 0" in result.output
    assert "digests enqueued 0" in result.output  # nothing under escalation yet
    bad = runner.invoke(args=["scheduler", "tick", "--now", "yesterday"])
    assert bad.exit_code != 0 and "ISO 8601" in bad.output
