"""Database plumbing: the declarative base, a UTC datetime type, engines and sessions.

Plain SQLAlchemy (no Flask extension) so the CLI, the scheduler and the web app share
one way of opening a session.

Statements built once: the reads every request or every premises page makes are kept as
module-level statements with bound parameters (or `functools.cache` builders, one
statement per shape of query) and run with new values. SQLAlchemy builds a fresh
statement and works out its cache key each time one is written inline, and for a read
of a few rows that costs more than the database's own work (benchmarks/HISTORY.md,
eighth session). Elsewhere, statements are written inline where they are used.

Core rows for display-only reads: a read whose rows are only shown (a chart's counts, a
history page, a count) selects plain table columns (`Model.__table__.c`), so the Session
runs it as a Core statement and hands back Core rows, which cost a fraction of what
ORM-annotated columns or objects cost to build (benchmarks/HISTORY.md, ninth session).
Anything that is changed, or whose relationships or methods a template uses, is read as
objects.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from flask import Flask, current_app, g
from sqlalchemy import DateTime, Engine, Exists, MetaData, Select, create_engine, event, exists
from sqlalchemy.exc import DisconnectionError, IntegrityError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.types import TypeDecorator

# Stable constraint names so Alembic migrations name the same things on every database.
# The largest id a row can have: ids are INTEGER columns, 32-bit on PostgreSQL. A larger
# number names nothing, and the driver would fail to bind or compare it.
MAX_ROW_ID = 2**31 - 1

# A pooled PostgreSQL connection idle this long (seconds) is pinged before it is handed
# out; one used more recently is not (HikariCP's `aliveBypassWindowMs`, 500 ms by
# default, for the same reason): a ping is a round trip, a sixth of a short API request.
PING_IF_IDLE_FOR = 0.5

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Base class of every model."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as naive UTC and returned timezone-aware in UTC.

    SQLite has no time zones, so we normalise on the way in and mark on the way out;
    the same column behaves identically on PostgreSQL.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        """Convert an aware datetime to naive UTC; refuse naive datetimes."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where a UTC timestamp is required")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        """Mark a stored timestamp as UTC."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


def exists_of(statement: Select[Any]) -> Exists:
    """EXISTS over a read's WHERE alone (its tables are those the WHERE names; no
    columns, eager joins, order or limit): whether the read would return any row. For
    reads whose WHERE alone decides their rows (no inner join, GROUP BY or HAVING)."""
    if statement.whereclause is None:
        raise ValueError("exists_of needs a read with a WHERE clause")
    return exists().where(statement.whereclause)


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets foreign keys, WAL and a busy timeout.

    Statement parameters are hidden from SQL logging and from database error messages:
    they hold personal data (victims' names, phones, addresses) that must never reach
    a log."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"timeout": 30, "check_same_thread": False},
            hide_parameters=True,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            # With WAL, NORMAL never corrupts; it may lose the last commits on power loss.
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    engine = create_engine(url, hide_parameters=True)
    _ping_when_idle(engine)
    return engine


def _ping_when_idle(engine: Engine) -> None:
    """Ping a pooled connection on checkout when it has been idle `PING_IF_IDLE_FOR`
    seconds or more, and replace it if the database has gone (a restart, a failover, an
    idle timeout): `pool_pre_ping`, less the round trip for a connection in steady use.

    A connection that dies within the window fails the one request that uses it, as a
    request in flight at that moment would; the pool then replaces every connection it
    held before the failure (SQLAlchemy's disconnect handling)."""

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        checked_in_at = record.info.get("checked_in_at")
        if checked_in_at is None or time.monotonic() - checked_in_at < PING_IF_IDLE_FOR:
            return  # newly connected, or in use a moment ago
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            if engine.dialect.is_disconnect(error, dbapi_connection, None):
                # The pool discards this connection and checks out another (a new one).
                raise DisconnectionError("the pooled connection had gone") from error
            raise


def init_app(app: Flask) -> None:
    """Create the app's engine and session factory; close the request session on teardown."""
    engine = make_engine(str(app.config["DATABASE_URL"]))
    app.extensions["db_engine"] = engine
    app.extensions["db_sessionmaker"] = sessionmaker(bind=engine, expire_on_commit=False)

    @app.teardown_appcontext
    def _close_session(_exc: BaseException | None) -> None:
        session = g.pop("db_session", None)
        if session is not None:
            session.close()


def get_session() -> Session:
    """The session of the current app context (one per request or CLI command)."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["db_sessionmaker"]()
    session: Session = g.db_session
    return session


def get_engine() -> Engine:
    """The current app's engine."""
    engine: Engine = current_app.extensions["db_engine"]
    return engine


@contextmanager
def conflict_on(session: Session, message: str) -> Iterator[None]:
    """A write that lost a race becomes a Conflict with `message`: the ORM's version check
    (StaleDataError) or a unique index another request filled first (IntegrityError).
    Any failure rolls back, leaving nothing half-saved."""
    from licensing.errors import Conflict

    try:
        yield
    except (StaleDataError, IntegrityError):
        session.rollback()
        raise Conflict(message) from None
    except BaseException:
        session.rollback()
        raise
