"""Two people take an event on the same premises at the same moment: one wins, the other
gets Conflict, and the record and its chain stay whole.

Each thread has its own Session (its own connection). A barrier makes both load the
premises at the same version before either writes, so the race is real on every round.
On PostgreSQL the loser waits on the winner's row lock; on SQLite on the database write
lock (busy timeout). Either way it then finds the version moved on.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import func, select

from licensing.audit.models import AuditEvent, premises_chain
from licensing.audit.services import verify_chains
from licensing.auth.models import User
from licensing.errors import Conflict
from licensing.premises import services, workflow
from licensing.premises.models import Premises, ReviewApplication
from tests.conftest import ensure_issued_bundle

ROUNDS = 4
JOIN_TIMEOUT = 60  # seconds; only reached if a thread hangs (then the test fails)
SUMMARY = {"received_at": "2025-03-01T10:30:00Z", "certificate_reference": "SUP/9"}


def _contender(
    app, premises_id: int, actor_id: int, event: str, params: dict[str, Any], barrier, out: dict
) -> None:
    session = app.extensions["db_sessionmaker"]()
    try:
        premises = session.get(Premises, premises_id)
        actor = session.get(User, actor_id)
        seen = premises.version
        session.commit()  # end the read; each side now holds only what it loaded
        out["seen"] = seen
        barrier.wait()
        try:
            result = services.apply_event(session, premises, actor, event, seen, "Race", params)
        except Conflict as error:
            out["outcome"] = "conflict"
            out["status"] = error.status
            out["state_after"] = (premises.state, premises.version)
        else:
            out["outcome"] = "ok"
            out["event_id"] = result.event.id
    except BaseException as error:  # reported by the test, never swallowed
        out["outcome"] = "error"
        out["error"] = repr(error)
        barrier.abort()
    finally:
        session.close()


def race(app, premises_id: int, takers: list[tuple[int, str, dict[str, Any]]]) -> list[dict]:
    barrier = threading.Barrier(len(takers), timeout=JOIN_TIMEOUT)
    results: list[dict] = [{} for _ in takers]
    threads = [
        threading.Thread(
            target=_contender,
            args=(app, premises_id, actor_id, event, params, barrier, results[i]),
            daemon=True,
        )
        for i, (actor_id, event, params) in enumerate(takers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT)
    assert not any(thread.is_alive() for thread in threads), "a contender hung"
    return results


def chain_length(session, premises_id: int) -> int:
    return session.scalar(
        select(func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.chain == premises_chain(premises_id))
    )


def stored(session, premises_id: int) -> tuple[str, int]:
    row = session.execute(
        select(Premises.state, Premises.version).where(Premises.id == premises_id)
    ).one()
    return row.state, row.version


@pytest.fixture
def contenders(session, make_authority, make_user):
    return {
        "authority": make_authority("LIV"),
        "officer": make_user("officer"),
        "supervisor": make_user("supervisor"),
    }


def test_two_warnings_at_once_one_wins_one_conflicts(app, session, contenders, make_premises):
    officer, supervisor = contenders["officer"], contenders["supervisor"]
    for _round in range(ROUNDS):
        premises = make_premises(contenders["authority"], officer)
        start_version, start_events = premises.version, chain_length(session, premises.id)
        session.commit()

        results = race(app, premises.id, [(officer.id, "warn", {}), (supervisor.id, "warn", {})])

        assert all(r["seen"] == start_version for r in results), results
        assert sorted(r["outcome"] for r in results) == ["conflict", "ok"], results
        loser = next(r for r in results if r["outcome"] == "conflict")
        assert loser["status"] == 409
        # The loser's session was rolled back: its copy shows what the winner stored.
        assert loser["state_after"] == ("warned", start_version + 1)
        session.expire_all()
        assert stored(session, premises.id) == ("warned", start_version + 1)
        assert chain_length(session, premises.id) == start_events + 1
        winner = next(r for r in results if r["outcome"] == "ok")
        last = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.chain == premises_chain(premises.id))
            .order_by(AuditEvent.seq.desc())
        ).first()
        assert (last.id, last.event, last.from_state, last.to_state) == (
            winner["event_id"],
            "warn",
            "monitored",
            "warned",
        )
    assert workflow.machine.models == []
    result = verify_chains(session)
    assert result.ok, result.describe()


def test_different_events_at_once_leave_no_half_done_loser(app, session, contenders, make_premises):
    """A summary review (which also writes a review application) against a warning:
    whichever loses leaves neither its state nor its review application behind."""
    officer, supervisor = contenders["officer"], contenders["supervisor"]
    winners = set()
    for _round in range(ROUNDS):
        premises = make_premises(contenders["authority"], officer)
        ensure_issued_bundle(session, premises, supervisor)  # a review rests on one
        start_version, start_events = premises.version, chain_length(session, premises.id)
        session.commit()

        results = race(
            app,
            premises.id,
            [(officer.id, "warn", {}), (supervisor.id, "apply_for_summary_review", SUMMARY)],
        )

        assert sorted(r["outcome"] for r in results) == ["conflict", "ok"], results
        warned_won = results[0]["outcome"] == "ok"
        winners.add("warn" if warned_won else "summary")
        session.expire_all()
        reviews = session.scalar(
            select(func.count())
            .select_from(ReviewApplication)
            .where(ReviewApplication.premises_id == premises.id)
        )
        if warned_won:
            assert stored(session, premises.id) == ("warned", start_version + 1)
            assert reviews == 0
        else:
            assert stored(session, premises.id) == ("review", start_version + 1)
            assert reviews == 1
        assert chain_length(session, premises.id) == start_events + 1
    assert winners  # at least one round ran to a winner
    result = verify_chains(session)
    assert result.ok, result.describe()


def test_events_on_different_premises_do_not_conflict(app, session, contenders, make_premises):
    officer, supervisor = contenders["officer"], contenders["supervisor"]
    first = make_premises(contenders["authority"], officer)
    second = make_premises(contenders["authority"], officer)
    session.commit()
    barrier = threading.Barrier(2, timeout=JOIN_TIMEOUT)
    results: list[dict] = [{}, {}]
    threads = [
        threading.Thread(
            target=_contender,
            args=(app, pid, actor.id, "warn", {}, barrier, results[i]),
            daemon=True,
        )
        for i, (pid, actor) in enumerate([(first.id, officer), (second.id, supervisor)])
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT)
    assert not any(thread.is_alive() for thread in threads)
    assert [r["outcome"] for r in results] == ["ok", "ok"], results
    session.expire_all()
    assert stored(session, first.id) == ("warned", 2)
    assert stored(session, second.id) == ("warned", 2)
    assert verify_chains(session).ok
