"""PostgreSQL connections are pinged when they have been idle in the pool, not on every
checkout (licensing.db.PING_IF_IDLE_FOR): a connection the database has dropped while
idle is replaced before a request sees it; one dropped within the window fails the one
request that uses it, and the pool then replaces it."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.exc import DBAPIError

from licensing import db
from tests.conftest import ON_POSTGRES, terminate_backend

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.skipif(not ON_POSTGRES, reason="pg_terminate_backend needs PostgreSQL"),
]


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """The app's engine for the test database, with one pooled connection."""
    made = db.make_engine(database_url)
    yield made
    made.dispose()


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(text("SELECT pg_backend_pid()")))


def _pings(engine: Engine) -> list[str]:
    """Records each ping the engine's dialect sends."""
    sent: list[str] = []
    original = engine.dialect.do_ping

    def counted(dbapi_connection: object) -> bool:
        sent.append("ping")
        return original(dbapi_connection)

    engine.dialect.do_ping = counted  # type: ignore[method-assign]
    return sent


def test_a_connection_dropped_while_idle_is_replaced_before_use(
    engine: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "PING_IF_IDLE_FOR", 0.2)
    pings = _pings(engine)
    first = _backend_pid(engine)
    terminate_backend(database_url, first)
    time.sleep(0.3)  # idle longer than the window
    second = _backend_pid(engine)  # no error: the ping found it gone
    assert second != first
    assert pings == ["ping"]


def test_a_connection_in_steady_use_is_not_pinged(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "PING_IF_IDLE_FOR", 60.0)
    pings = _pings(engine)
    pids = {_backend_pid(engine) for _ in range(5)}
    assert len(pids) == 1  # the same pooled connection each time
    assert pings == []
    monkeypatch.setattr(db, "PING_IF_IDLE_FOR", 0.0)
    _backend_pid(engine)
    assert pings == ["ping"]


def test_a_connection_dropped_within_the_window_fails_once_then_the_pool_recovers(
    engine: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "PING_IF_IDLE_FOR", 60.0)
    invalidated: list[str] = []
    event.listen(engine, "invalidate", lambda *_args: invalidated.append("invalidated"))
    first = _backend_pid(engine)
    terminate_backend(database_url, first)
    with pytest.raises(DBAPIError) as raised:
        _backend_pid(engine)
    assert raised.value.connection_invalidated
    assert invalidated
    assert _backend_pid(engine) != first
