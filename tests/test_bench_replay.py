"""benchmarks/common: the pages benchmark's replays of a request's captured reads, bare
(the DBAPI driver) and through SQLAlchemy's Connection (its floor), give the same rows."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Integer, String, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from benchmarks.common import (
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
