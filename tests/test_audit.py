"""The hash-chained audit trail: chains, verification, tamper evidence, append-only
storage, the `audit verify` command, and personal data kept off the chain."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import DBAPIError

from licensing.audit.models import SYSTEM_CHAIN, AuditEvent, AuditPersonalValue, premises_chain
from licensing.audit.services import GENESIS_HASH, content_hash, verify_chains
from licensing.premises import services
from tests.conftest import ON_POSTGRES, move

HOLDER = "Jemima Quayle-Holder"
DPS = "Bartholomew Dpsname"
NEW_DPS = "Cressida Newsupervisor"
NEW_HOLDER = "Ignatius Transferee"


@pytest.fixture
def history(session, world):
    """The Crown: registered, warned, stood down, warned again (4 events on its chain)."""
    premises, officer = world["premises"], world["officer"]
    move(session, premises, officer, "warn", "Fights outside")
    move(session, premises, officer, "stand_down", "Calmer now")
    move(session, premises, officer, "warn", "Fights again")
    session.commit()
    return world


def chain(session, name: str) -> list[AuditEvent]:
    return list(
        session.scalars(select(AuditEvent).where(AuditEvent.chain == name).order_by(AuditEvent.seq))
    )


def tamper(app, sql: str, params: dict) -> None:
    """Change audit_events behind the triggers' back, as an attacker with the database
    would: SQLite drops the trigger, PostgreSQL switches triggers off for one transaction."""
    engine = app.extensions["db_engine"]
    with engine.begin() as conn:
        if ON_POSTGRES:
            conn.execute(text("SET LOCAL session_replication_role = replica"))
        else:
            conn.execute(text("DROP TRIGGER IF EXISTS audit_events_no_update"))
            conn.execute(text("DROP TRIGGER IF EXISTS audit_events_no_delete"))
        result = conn.execute(text(sql), params)
        assert result.rowcount == 1


def test_one_chain_per_premises_and_a_system_chain(session, history):
    crown, swan = history["premises"], history["other_premises"]
    chains = set(session.scalars(select(AuditEvent.chain).distinct()))
    assert chains == {SYSTEM_CHAIN, premises_chain(crown.id), premises_chain(swan.id)}

    crown_chain = chain(session, premises_chain(crown.id))
    assert [e.event for e in crown_chain] == ["premises_registered", "warn", "stand_down", "warn"]
    assert [e.seq for e in crown_chain] == [1, 2, 3, 4]
    assert {e.premises_id for e in crown_chain} == {crown.id}
    assert crown_chain[0].prev_hash == GENESIS_HASH
    for earlier, later in zip(crown_chain, crown_chain[1:], strict=False):
        assert later.prev_hash == earlier.content_hash
    for event in crown_chain:
        assert content_hash(event) == event.content_hash

    swan_chain = chain(session, premises_chain(swan.id))
    assert [(e.seq, e.prev_hash) for e in swan_chain] == [(1, GENESIS_HASH)]

    system = chain(session, SYSTEM_CHAIN)
    # two authorities and five users, none tied to a premises
    assert [e.event for e in system].count("authority_created") == 2
    assert [e.event for e in system].count("user_created") == 5
    assert {e.premises_id for e in system} == {None}
    assert [e.seq for e in system] == list(range(1, len(system) + 1))


def test_verify_says_ok_on_a_valid_history(session, history):
    result = verify_chains(session)
    total = session.scalar(select(func.count()).select_from(AuditEvent))
    assert result.ok
    assert (result.events_checked, result.chains_checked) == (total, 3)
    assert result.describe() == f"OK: {total} events in 3 chains verified"


def test_verify_on_an_empty_trail_is_ok(session):
    result = verify_chains(session)
    assert result.ok and result.events_checked == 0


@pytest.mark.parametrize(
    ("column", "value"),
    [("reason", "Nothing happened"), ("to_state", "monitored"), ("payload", '{"version":9}')],
)
def test_an_altered_event_is_detected_and_named(app, session, history, column, value):
    crown = history["premises"]
    target = chain(session, premises_chain(crown.id))[1]
    tamper(
        app, f"UPDATE audit_events SET {column} = :v WHERE id = :id", {"v": value, "id": target.id}
    )

    result = verify_chains(session)
    assert not result.ok
    assert (result.chain, result.seq) == (premises_chain(crown.id), 2)
    assert "altered" in result.problem
    assert result.describe().startswith(f"BROKEN: chain premises:{crown.id} at event 2")


def test_an_event_rehashed_after_alteration_breaks_the_next_link(app, session, history):
    crown = history["premises"]
    target = chain(session, premises_chain(crown.id))[1]
    target.reason = "Rewritten"
    forged = content_hash(target)
    session.rollback()  # the forged hash is computed; nothing is written by this session
    tamper(
        app,
        "UPDATE audit_events SET reason = 'Rewritten', content_hash = :h WHERE id = :id",
        {"h": forged, "id": target.id},
    )
    result = verify_chains(session)
    assert not result.ok
    assert (result.chain, result.seq) == (premises_chain(crown.id), 3)
    assert "link" in result.problem


def test_a_deleted_middle_event_is_detected(app, session, history):
    crown = history["premises"]
    target = chain(session, premises_chain(crown.id))[2]  # seq 3, no personal values
    tamper(app, "DELETE FROM audit_events WHERE id = :id", {"id": target.id})

    result = verify_chains(session)
    assert not result.ok
    assert (result.chain, result.seq) == (premises_chain(crown.id), 4)
    assert "missing" in result.problem


def test_a_tampered_system_event_is_named_on_the_system_chain(app, session, history):
    first = chain(session, SYSTEM_CHAIN)[0]
    tamper(app, "UPDATE audit_events SET payload = '{}' WHERE id = :id", {"id": first.id})
    result = verify_chains(session)
    assert (result.ok, result.chain, result.seq) == (False, SYSTEM_CHAIN, 1)


def test_database_refuses_update_of_audit_events(session, history):
    crown = history["premises"]
    target = chain(session, premises_chain(crown.id))[1]
    with pytest.raises(DBAPIError) as raised:
        session.execute(update(AuditEvent).where(AuditEvent.id == target.id).values(reason="x"))
        session.flush()
    assert "append-only" in str(raised.value)
    session.rollback()
    session.expire_all()
    assert session.get(AuditEvent, target.id).reason == "Fights outside"
    assert verify_chains(session).ok


def test_database_refuses_update_through_the_orm(session, history):
    crown = history["premises"]
    target = chain(session, premises_chain(crown.id))[1]
    target.reason = "Rewritten"
    with pytest.raises(DBAPIError) as raised:
        session.commit()
    assert "append-only" in str(raised.value)
    session.rollback()
    assert session.get(AuditEvent, target.id).reason == "Fights outside"


def test_database_refuses_delete_of_audit_events(session, history):
    crown = history["premises"]
    before = chain(session, premises_chain(crown.id))
    with pytest.raises(DBAPIError) as raised:
        session.execute(delete(AuditEvent).where(AuditEvent.id == before[2].id))
    assert "append-only" in str(raised.value)
    session.rollback()
    assert [e.id for e in chain(session, premises_chain(crown.id))] == [e.id for e in before]


@pytest.mark.skipif(not ON_POSTGRES, reason="TRUNCATE is a PostgreSQL statement")
def test_database_refuses_truncate_of_audit_events(session, history):
    with pytest.raises(DBAPIError) as raised:
        session.execute(text("TRUNCATE audit_events CASCADE"))
    assert "append-only" in str(raised.value)
    session.rollback()
    assert session.scalar(select(func.count()).select_from(AuditEvent)) > 0


def test_cli_verify_ok_then_broken(app, session, history):
    runner = app.test_cli_runner()
    good = runner.invoke(args=["audit", "verify"])
    assert good.exit_code == 0, good.output
    assert good.output.startswith("OK: ")

    crown = history["premises"]
    target = chain(session, premises_chain(crown.id))[1]
    tamper(app, "UPDATE audit_events SET reason = 'x' WHERE id = :id", {"id": target.id})
    bad = runner.invoke(args=["audit", "verify"])
    assert bad.exit_code != 0
    assert f"BROKEN: chain premises:{crown.id} at event 2" in bad.output


def test_cli_verify_reports_a_missing_event(app, session, history):
    crown = history["premises"]
    target = chain(session, premises_chain(crown.id))[1]
    tamper(app, "DELETE FROM audit_events WHERE id = :id", {"id": target.id})
    bad = app.test_cli_runner().invoke(args=["audit", "verify"])
    assert bad.exit_code == 1
    assert f"chain premises:{crown.id} at event 3" in bad.output
    assert "missing" in bad.output


# ---- personal data ---------------------------------------------------------------


@pytest.fixture
def personal_history(session, make_authority, make_user, make_premises):
    authority = make_authority("LIV")
    officer = make_user("officer")
    supervisor = make_user("supervisor")
    premises = make_premises(authority, officer, licence_holder=HOLDER, dps=DPS)
    services.update_details(
        session, premises, officer, premises.version, {"dps": NEW_DPS}, "New DPS"
    )
    services.update_details(
        session, premises, officer, premises.version, {"licence_holder": NEW_HOLDER}, "Transfer"
    )
    services.update_details(
        session,
        premises,
        officer,
        premises.version,
        {"dps": DPS, "licence_holder": HOLDER, "opening_hours": "Mon-Sun 10:00-23:00"},
        "Register correction",
    )
    move(session, premises, officer, "warn", "Fights outside")
    move(session, premises, supervisor, "apply_for_review", "Review", application_date="2025-01-02")
    return premises


def test_personal_values_never_reach_the_chain(session, personal_history):
    rows = session.execute(select(AuditEvent.event, AuditEvent.payload, AuditEvent.reason)).all()
    assert {"premises_registered", "dps_changed", "licence_transferred", "details_changed"} <= {
        r.event for r in rows
    }
    for row in rows:
        for value in (HOLDER, DPS, NEW_DPS, NEW_HOLDER):
            assert value not in row.payload, (row.event, value)
            assert value not in (row.reason or ""), (row.event, value)
    dps_event = session.scalar(select(AuditEvent).where(AuditEvent.event == "dps_changed"))
    assert json.loads(dps_event.payload)["changes"] == {"dps": {"personal": True}}

    kept = {
        (v.field, v.old_value, v.new_value) for v in session.scalars(select(AuditPersonalValue))
    }
    assert kept == {
        ("licence_holder", None, HOLDER),
        ("dps", None, DPS),
        ("dps", DPS, NEW_DPS),
        ("licence_holder", HOLDER, NEW_HOLDER),
        ("dps", NEW_DPS, DPS),
        ("licence_holder", NEW_HOLDER, HOLDER),
    }


def test_erasing_personal_values_keeps_the_chain_valid(session, personal_history):
    premises = personal_history
    assert any(entry.personal for entry in services.history(session, premises))
    session.execute(delete(AuditPersonalValue))
    session.commit()

    assert session.scalar(select(func.count()).select_from(AuditPersonalValue)) == 0
    result = verify_chains(session)
    assert result.ok, result.describe()
    entries = services.history(session, premises)
    assert [e.event.event for e in entries][-1] == "premises_registered"
    assert all(entry.personal == {} for entry in entries)
