"""benchmarks/common: what the pages benchmark counts as time inside the ORM (OrmTimer),
and its replays of a request's captured reads, bare (the DBAPI driver) and through
SQLAlchemy's Connection (its floor)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Integer, String, create_engine, select
from sqlalchemy.engine import Result
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from benchmarks.common import (
    OrmTimer,
    SqlCapture,
    bare_connection,
    is_read,
    replay,
    replay_through_sqlalchemy,
)


class _Base(DeclarativeBase):
    pass


class _Thing(_Base):
    __tablename__ = "things"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(50))


@pytest.fixture
def timer() -> Iterator[OrmTimer]:
    timer = OrmTimer()
    try:
        yield timer
    finally:
        timer.uninstall()


@pytest.fixture
def session() -> Iterator[Session]:
    engine = create_engine("sqlite://")
    _Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add_all(_Thing(id=n, name=f"thing {n}") for n in range(1, 2001))
        session.commit()
        yield session
    engine.dispose()


def test_it_counts_queries_and_building_objects_not_the_time_around_them(timer, session):
    with timer.timing():
        started = time.perf_counter()
        things = session.scalars(select(_Thing)).all()  # 2,000 objects built
        time.sleep(0.05)  # the app's own work between queries: not the ORM's
        one = session.scalar(select(_Thing).where(_Thing.id == 7))
        session.expunge_all()
        by_key = session.get(_Thing, 8)
        names = session.execute(select(_Thing.name).order_by(_Thing.id)).all()
        whole = time.perf_counter() - started
    assert len(things) == 2000 and one is not None and by_key is not None and len(names) == 2000
    assert 0 < timer.seconds < whole - 0.05

    # Counted afresh for each block: a second one holds only its own query, not the
    # first block's, and not the app's work after it.
    with timer.timing():
        started = time.perf_counter()
        session.expunge_all()
        session.scalars(select(_Thing)).all()
        time.sleep(0.05)
        whole = time.perf_counter() - started
    assert 0 < timer.seconds < whole - 0.05


def test_rows_built_while_iterating_count_and_nothing_counts_when_not_timing(timer, session):
    result = session.scalars(select(_Thing))  # executed untimed
    assert timer.seconds == 0
    with timer.timing():
        count = sum(1 for _ in result)  # the objects are built here, as they are fetched
    assert count == 2000 and timer.seconds > 0
    timed = timer.seconds
    session.scalars(select(_Thing)).all()
    assert timer.seconds == timed  # not timing: unchanged


def test_core_rows_count_when_they_are_fetched_after_the_statement_ran(timer, session):
    # Plain table columns: the Session runs a Core statement, whose rows are built from
    # the cursor's only when fetched, after the Session's execute has returned.
    names = _Thing.__table__.c.name
    for fetch in (
        lambda result: result.all(),
        lambda result: list(result),
        lambda result: result.scalars().all(),
        lambda result: result.mappings().all(),
        lambda result: [result.fetchone() for _ in range(2000)],
    ):
        result = session.execute(select(names).order_by(names))  # executed untimed
        assert timer.seconds == 0
        with timer.timing():
            rows = fetch(result)
        assert len(rows) == 2000 and timer.seconds > 0
        timer.seconds = 0.0


def test_uninstall_puts_the_orm_back(session):
    original = Session._execute_internal
    original_all = Result.all
    timer = OrmTimer()
    assert Session._execute_internal is not original and Result.all is not original_all
    timer.uninstall()
    assert Session._execute_internal is original and Result.all is original_all
    assert len(session.scalars(select(_Thing)).all()) == 2000


def test_captured_reads_replay_alike_bare_and_through_sqlalchemy(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'things.sqlite'}"
    engine = create_engine(url)
    _Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add_all(_Thing(id=n, name=f"thing {n}") for n in range(1, 101))
        session.commit()
    capture = SqlCapture(engine)
    with Session(engine) as session, capture.capturing() as statements:
        wanted = session.scalars(select(_Thing).where(_Thing.id > 40)).all()
        session.get(_Thing, 7)
        session.add(_Thing(id=500, name="written"))  # a write: never replayed
        session.flush()
        session.rollback()
    reads = [s for s in statements if is_read(s)]
    assert len(reads) == 2 and len(statements) == 3

    bare = bare_connection(url)
    try:
        assert replay(bare, reads) == len(wanted) + 1 == 61
    finally:
        bare.close()
    with engine.connect() as connection:
        assert replay_through_sqlalchemy(connection, reads) == 61
        # Exactly as captured: the statements' own parameters, nothing recompiled.
        assert replay_through_sqlalchemy(connection, reads[1:]) == 1
        assert connection.exec_driver_sql("SELECT count(*) FROM things").scalar() == 100
    engine.dispose()
