"""When each scheduler job last finished without error: what `/metrics` reports as the
seconds since the last successful tick (issue #8).

One row per job id, overwritten by whichever scheduler is active, so a standby taking
over carries the record on and the age is the same whichever web node is scraped.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from licensing.db import Base, UTCDateTime, utcnow


class SchedulerRun(Base):
    """The last successful run of one scheduler job ("sweep", "digest", "recommendations")."""

    __tablename__ = "scheduler_runs"

    job: Mapped[str] = mapped_column(String(40), primary_key=True)
    last_success_at: Mapped[datetime] = mapped_column(UTCDateTime())


def record_success(session: Session, job: str, when: datetime | None = None) -> None:
    """Note that `job` just finished without error, and commit (its own short write)."""
    when = when or utcnow()
    session.rollback()  # the job's own work is already committed; start clean
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(SchedulerRun).values(job=job, last_success_at=when)
    # An upsert, so two passes finishing at once (a `scheduler tick` beside the running
    # scheduler) both succeed; the later time wins, whatever order they commit in.
    statement = statement.on_conflict_do_update(
        index_elements=["job"],
        set_={"last_success_at": statement.excluded.last_success_at},
        where=SchedulerRun.last_success_at < statement.excluded.last_success_at,
    )
    session.execute(statement)
    session.commit()


def last_successes(session: Session) -> dict[str, datetime]:
    """Each job's last successful run."""
    return {run.job: run.last_success_at for run in session.scalars(select(SchedulerRun))}
