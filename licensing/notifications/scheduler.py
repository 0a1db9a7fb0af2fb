"""The one scheduler process: APScheduler 3.x jobs defined here, in code, with ids.

The jobs hold no state of their own: they turn what is due into outbox rows (whose
dedupe keys make every alert happen once) and send what the outbox says is due. So a
restart, a catch-up pass, or even two schedulers at once never duplicate an email.
Still, exactly one scheduler should run: it holds a lock (a PostgreSQL session-level
advisory lock on a dedicated connection, or an exclusive flock on a file under
instance/ for SQLite), and a second one waits as a standby, retrying every few seconds,
until the first dies and the lock is released with its connection or file.

APScheduler's job store is its default in-memory one, never a shared database store:
the jobs are rebuilt from this module whenever the process starts.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from flask import Flask
from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session

from licensing.db import utcnow
from licensing.notifications.alerts import DEFAULT_DIGEST_HOUR, enqueue_digests, enqueue_due_alerts
from licensing.notifications.scheduler_runs import record_success
from licensing.notifications.sender import SendResult, SmtpSettings, send_due
from licensing.timeutil import LONDON

log = logging.getLogger(__name__)

STANDBY_RETRY_SECONDS = 5.0
LOCK_CHECK_SECONDS = 30
# The advisory lock's key: any fixed 64-bit number; derived from a name so it is
# recognisable and unlikely to collide with another application's locks.
ADVISORY_LOCK_KEY = int.from_bytes(
    hashlib.sha256(b"licensing-scheduler").digest()[:8], "big", signed=True
)


# ---- the lock -------------------------------------------------------------------------


class SchedulerLock:
    """The right to be the active scheduler; `acquire` never blocks."""

    def acquire(self) -> bool:
        """Take the lock if it is free; True when this process now holds it."""
        raise NotImplementedError

    def still_held(self) -> bool:
        """Whether the lock is still ours (False once its connection is lost)."""
        raise NotImplementedError

    def release(self) -> None:
        """Give the lock up (safe to call when not held)."""
        raise NotImplementedError


class AdvisoryLock(SchedulerLock):
    """A PostgreSQL session-level advisory lock on a connection kept for it alone: the
    server releases it when that connection ends, however the process dies."""

    def __init__(self, engine: Engine, key: int = ADVISORY_LOCK_KEY) -> None:
        self.engine = engine
        self.key = key
        self.connection: Connection | None = None

    def acquire(self) -> bool:
        """Try pg_try_advisory_lock on a fresh dedicated connection."""
        if self.connection is not None:
            return True
        connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            got = bool(
                connection.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key})
            )
        except Exception:
            connection.close()
            raise
        if not got:
            connection.close()
            return False
        self.connection = connection
        return True

    def still_held(self) -> bool:
        """A session-level lock lasts as long as its session and only we can unlock it,
        so it is ours while the dedicated connection answers."""
        if self.connection is None:
            return False
        try:
            self.connection.scalar(text("SELECT 1"))
        except Exception:  # the connection is gone, and the lock with it
            log.exception("lost the scheduler lock's connection")
            return False
        return True

    def release(self) -> None:
        """Unlock and close the dedicated connection."""
        if self.connection is None:
            return
        try:
            self.connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
        except Exception:  # closing the connection releases it anyway
            log.exception("could not unlock the scheduler lock; closing its connection")
        finally:
            self.connection.close()
            self.connection = None


class FileLock(SchedulerLock):
    """An exclusive flock on a file: the kernel releases it when the process dies."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle: IO[str] | None = None

    def acquire(self) -> bool:
        """Try a non-blocking exclusive flock; write our pid into the file for people."""
        if self.handle is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self.handle = handle
        return True

    def still_held(self) -> bool:
        """A flock lasts as long as our open file."""
        return self.handle is not None and not self.handle.closed

    def release(self) -> None:
        """Unlock and close the file (the file itself stays: deleting it would race)."""
        if self.handle is None:
            return
        try:
            fcntl.flock(self.handle.fileno(), fcntl.LOCK_UN)
        finally:
            self.handle.close()
            self.handle = None


def lock_file_for(app: Flask) -> Path:
    """instance/scheduler-<hash of the database URL>.lock: one scheduler per database,
    and schedulers of different SQLite databases do not block each other."""
    digest = hashlib.sha256(str(app.config["DATABASE_URL"]).encode()).hexdigest()[:12]
    return Path(app.instance_path) / f"scheduler-{digest}.lock"


def make_lock(app: Flask) -> SchedulerLock:
    """The lock for the app's database: advisory on PostgreSQL, a file on SQLite."""
    engine: Engine = app.extensions["db_engine"]
    if engine.dialect.name == "postgresql":
        return AdvisoryLock(engine)
    return FileLock(lock_file_for(app))


# ---- the jobs -------------------------------------------------------------------------


def _session(app: Flask) -> Session:
    session: Session = app.extensions["db_sessionmaker"]()
    return session


def run_recommendations(app: Flask, now: datetime | None = None) -> int:
    """Apply the recommendation rules (the hourly job); how many were raised."""
    from licensing.incidents.recommendations import evaluate

    with app.app_context():
        session = _session(app)
        try:
            raised = len(evaluate(session, now=now or utcnow()))
            record_success(session, "recommendations")
            return raised
        finally:
            session.close()


def run_sweep(app: Flask, now: datetime | None = None) -> tuple[dict[str, int], SendResult]:
    """Enqueue the alerts due now, then send the outbox's due emails (every minute)."""
    now = now or utcnow()
    with app.app_context():
        session = _session(app)
        try:
            enqueued = enqueue_due_alerts(session, now)
            sent = send_due(session, SmtpSettings.from_config(app.config), now=now)
            record_success(session, "sweep")
            return enqueued, sent
        finally:
            session.close()


def run_digest(app: Flask, now: datetime | None = None) -> int:
    """Enqueue today's digests (from 07:00 London), then send them; how many were new."""
    now = now or utcnow()
    with app.app_context():
        session = _session(app)
        try:
            added = enqueue_digests(session, now)
            send_due(session, SmtpSettings.from_config(app.config), now=now)
            record_success(session, "digest")
            return added
        finally:
            session.close()


@dataclass
class TickResult:
    """What one pass of every job did."""

    recommendations: int = 0
    enqueued: dict[str, int] = field(default_factory=dict)
    digests: int = 0
    sent: SendResult = field(default_factory=SendResult)

    def describe(self) -> str:
        """One line for the CLI."""
        alerts = ", ".join(f"{k} {v}" for k, v in self.enqueued.items())
        return (
            f"recommendations raised {self.recommendations}; alerts enqueued: {alerts}; "
            f"digests enqueued {self.digests}; sent {self.sent.sent}, "
            f"retrying {self.sent.retrying}, failed {self.sent.failed}"
        )


def tick(app: Flask, now: datetime | None = None) -> TickResult:
    """One pass of every job, in dependency order: rules, then alerts and digests (so a
    new recommendation is in them), then one send of everything due."""
    now = now or utcnow()
    result = TickResult()
    result.recommendations = run_recommendations(app, now)
    with app.app_context():
        session = _session(app)
        try:
            result.enqueued = enqueue_due_alerts(session, now)
            result.digests = enqueue_digests(session, now)
            result.sent = send_due(session, SmtpSettings.from_config(app.config), now=now)
            record_success(session, "sweep")  # a tick does all a sweep does, and more
        finally:
            session.close()
    return result


# ---- the scheduler --------------------------------------------------------------------


def add_jobs(scheduler: BaseScheduler, app: Flask, lock: SchedulerLock | None = None) -> None:
    """The jobs, by id. coalesce: runs missed while busy collapse into one;
    max_instances=1: a slow sweep is never overlapped by the next."""
    hour = int(app.config.get("ALERT_DIGEST_HOUR") or DEFAULT_DIGEST_HOUR)
    common: dict[str, Any] = {"coalesce": True, "max_instances": 1, "replace_existing": True}
    scheduler.add_job(
        run_sweep,
        IntervalTrigger(minutes=1),
        id="sweep",
        name="enqueue due alerts, then send the outbox",
        args=[app],
        misfire_grace_time=60,
        **common,
    )
    scheduler.add_job(
        run_digest,
        CronTrigger(hour=hour, minute=0, timezone=LONDON),
        id="digest",
        name="daily digest, London time",
        args=[app],
        # A digest late by up to 12 hours (the process was busy or starting) still goes;
        # the dedupe key keeps it to one a day.
        misfire_grace_time=12 * 3600,
        **common,
    )
    scheduler.add_job(
        run_recommendations,
        IntervalTrigger(hours=1),
        id="recommendations",
        name="apply the recommendation rules",
        args=[app],
        misfire_grace_time=3600,
        **common,
    )
    if lock is not None:

        def check_lock() -> None:
            # If the lock's connection dropped, another scheduler may now be active:
            # step down to standby rather than run alongside it.
            if not lock.still_held():
                log.error("scheduler lock lost: stopping to go back to standby")
                scheduler.shutdown(wait=False)

        scheduler.add_job(
            check_lock,
            IntervalTrigger(seconds=LOCK_CHECK_SECONDS),
            id="lock_check",
            name="step down if the scheduler lock is lost",
            **common,
        )


def build_scheduler(app: Flask, lock: SchedulerLock | None = None) -> BlockingScheduler:
    """A BlockingScheduler (not started) with the jobs, in London time."""
    # Said explicitly: the in-memory store, never a shared database job store.
    scheduler = BlockingScheduler(jobstores={"default": MemoryJobStore()}, timezone=LONDON)
    add_jobs(scheduler, app, lock)
    return scheduler


def wait_for_lock(
    lock: SchedulerLock,
    retry_seconds: float = STANDBY_RETRY_SECONDS,
    should_stop: Callable[[], bool] = lambda: False,
    say: Callable[[str], None] = log.info,
) -> bool:
    """Standby: retry the lock every few seconds until it is ours (True) or we are told
    to stop (False)."""
    announced = False
    while not should_stop():
        if lock.acquire():
            return True
        if not announced:
            say("Another scheduler is active: waiting as a standby.")
            announced = True
        time.sleep(retry_seconds)
    return False


def run_forever(app: Flask, say: Callable[[str], None] = log.info) -> None:
    """Be the scheduler: wait for the lock, catch up with one tick, run the jobs until
    stopped (SIGTERM or SIGINT), and release the lock. If the lock is lost while
    running, go back to standby."""
    lock = make_lock(app)
    stopping = {"now": False}
    current: dict[str, BlockingScheduler | None] = {"scheduler": None}

    def stop(_signum: int, _frame: Any) -> None:
        stopping["now"] = True
        scheduler = current["scheduler"]
        if scheduler is not None and scheduler.running:
            scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        while not stopping["now"]:
            if not wait_for_lock(lock, should_stop=lambda: stopping["now"], say=say):
                break
            say("Scheduler active: catching up, then running sweep, digest, recommendations.")
            try:
                say(tick(app).describe())
            except Exception:  # a failed catch-up must not stop the scheduler
                log.exception("catch-up tick failed")
            scheduler = build_scheduler(app, lock)
            current["scheduler"] = scheduler
            scheduler.start()  # blocks until shutdown
            current["scheduler"] = None
            lock.release()
    finally:
        lock.release()
        say("Scheduler stopped.")
