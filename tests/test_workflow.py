"""The escalation workflow: every (state, event, role), the refusals, and the machine.

The table below is written from the specification, not read from the workflow module, so
a change to the machine or to the role rules that the specification does not allow fails
here. Each combination runs through `services.apply_event` on a real database.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from licensing.audit.models import AuditEvent, premises_chain
from licensing.errors import Conflict, Forbidden, Refused, ValidationFailed
from licensing.premises import services, workflow
from licensing.premises.models import Premises
from licensing.timeutil import london_today
from tests.conftest import ensure_issued_bundle, move

STATES = ["monitored", "warned", "review", "action"]
ROLES = ["officer", "supervisor", "council", "admin"]

TODAY = london_today()
YESTERDAY = TODAY - timedelta(days=1)

# (label, event, params) — record_determination appears twice: one per kind of outcome.
EVENTS: list[tuple[str, str, dict[str, Any]]] = [
    ("warn", "warn", {}),
    ("stand_down", "stand_down", {}),
    ("apply_for_review", "apply_for_review", {"application_date": YESTERDAY.isoformat()}),
    (
        "apply_for_summary_review",
        "apply_for_summary_review",
        {"received_at": "2025-03-01T10:30:00+00:00", "certificate_reference": "CERT-1"},
    ),
    ("withdraw_review", "withdraw_review", {}),
    (
        "record_determination:no_action",
        "record_determination",
        {"outcome": "no_action", "decision_date": YESTERDAY.isoformat()},
    ),
    (
        "record_determination:revoke",
        "record_determination",
        {"outcome": "revoke", "decision_date": YESTERDAY.isoformat()},
    ),
    ("close_action", "close_action", {}),
    # Internal transitions: the state stays, the review records a fact.
    ("correct_review_dates", "correct_review_dates", {"application_date": TODAY.isoformat()}),
    ("record_hearing", "record_hearing", {"hearing_date": YESTERDAY.isoformat()}),
    (
        "record_interim_steps",
        "record_interim_steps",
        {"decided_at": "2025-03-02T16:00:00+00:00", "interim_steps": "Licence suspended"},
    ),
    (
        "record_decision_notified",
        "record_decision_notified",
        {"notified_on": YESTERDAY.isoformat()},
    ),
    (
        "record_appeal",
        "record_appeal",
        {"appeal_stage": "lodged", "appeal_date": YESTERDAY.isoformat()},
    ),
]

# (state, event label) -> the state it leads to. Anything absent is refused.
ALLOWED: dict[tuple[str, str], str] = {
    ("monitored", "warn"): "warned",
    ("warned", "stand_down"): "monitored",
    ("warned", "apply_for_review"): "review",
    ("monitored", "apply_for_summary_review"): "review",
    ("warned", "apply_for_summary_review"): "review",
    ("review", "withdraw_review"): "warned",
    ("review", "record_determination:no_action"): "monitored",
    ("review", "record_determination:revoke"): "action",
    ("action", "close_action"): "monitored",
    ("review", "record_hearing"): "review",
    ("review", "correct_review_dates"): "review",
    ("action", "record_decision_notified"): "action",
    ("action", "record_appeal"): "action",
}
# (state, event label) the machine allows but a guard refuses on these premises, with a
# word of the guard's reason: the "review" premises here are under a standard review, and
# the "monitored" ones were never determined.
GUARD_REFUSED: dict[tuple[str, str], str] = {
    ("review", "record_interim_steps"): "summary review",
    ("monitored", "record_decision_notified"): "no determined review",
    ("monitored", "record_appeal"): "no determined review",
}
POLICE = {"officer", "supervisor"}
# event -> the roles that may take it. Council and admin take none.
ROLES_FOR = {
    "warn": POLICE,
    "stand_down": POLICE,
    "apply_for_review": {"supervisor"},
    "apply_for_summary_review": {"supervisor"},
    "withdraw_review": {"supervisor"},
    "record_determination": {"supervisor"},
    "close_action": {"supervisor"},
    "correct_review_dates": {"supervisor"},
    "record_hearing": POLICE,
    "record_interim_steps": POLICE,
    "record_decision_notified": POLICE,
    "record_appeal": POLICE,
}
STATE_WORDS = {
    "monitored": "monitored",
    "warned": "warned",
    "review": "under review",
    "action": "action",
}

# How to bring a new premises into each state, through the services.
PATH_TO: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "monitored": [],
    "warned": [("warn", {})],
    "review": [("warn", {}), ("apply_for_review", {"application_date": YESTERDAY.isoformat()})],
    "action": [
        ("warn", {}),
        ("apply_for_review", {"application_date": YESTERDAY.isoformat()}),
        ("record_determination", {"outcome": "revoke", "decision_date": YESTERDAY.isoformat()}),
    ],
}


def bring_to(session, premises: Premises, supervisor, state: str) -> Premises:
    for event, params in PATH_TO[state]:
        move(session, premises, supervisor, event, "Setting up", **params)
    assert premises.state == state
    return premises


def chain_events(session, premises: Premises) -> list[AuditEvent]:
    return list(
        session.scalars(
            select(AuditEvent)
            .where(AuditEvent.chain == premises_chain(premises.id))
            .order_by(AuditEvent.seq)
        )
    )


def stored(session, premises: Premises) -> tuple[str, int]:
    """The state and version as the database holds them (not the session's copy)."""
    row = session.execute(
        select(Premises.state, Premises.version).where(Premises.id == premises.id)
    ).one()
    return row.state, row.version


def expected_outcome(state: str, label: str, role: str) -> str | type[Exception]:
    event = label.split(":")[0]
    if role not in ROLES_FOR[event]:
        return Forbidden
    return ALLOWED.get((state, label), Refused)


@pytest.fixture
def setup(session, make_authority, make_user):
    """One authority and a supervisor to move premises into their starting states."""
    authority = make_authority("LIV")
    return {"authority": authority, "supervisor": make_user("supervisor")}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("state", STATES)
def test_every_event_from_every_state_for_every_role(
    session, setup, make_user, make_premises, subtests, state, role
):
    supervisor = setup["supervisor"]
    actor = (
        supervisor
        if role == "supervisor"
        else make_user(role, "LIV" if role == "council" else None)
    )
    for label, event, params in EVENTS:
        with subtests.test(state=state, event=label, role=role):
            premises = bring_to(
                session, make_premises(setup["authority"], supervisor), supervisor, state
            )
            expected = expected_outcome(state, label, role)
            if isinstance(expected, str) and event.startswith("apply_for"):
                ensure_issued_bundle(session, premises, supervisor)
            version = premises.version
            before = chain_events(session, premises)
            reason = f"{label} by {role}"

            if isinstance(expected, str):
                result = services.apply_event(
                    session, premises, actor, event, version, reason, params
                )
                assert result.premises is premises
                assert premises.state == expected
                assert premises.version == version + 1
                assert stored(session, premises) == (expected, version + 1)
                after = chain_events(session, premises)
                assert len(after) == len(before) + 1
                recorded = after[-1]
                assert recorded.id == result.event.id
                assert recorded.event == event
                assert (recorded.from_state, recorded.to_state) == (state, expected)
                assert recorded.actor_id == actor.id
                assert recorded.reason == reason
                assert recorded.seq == before[-1].seq + 1
                assert recorded.prev_hash == before[-1].content_hash
                assert json.loads(recorded.payload)["version"] == version + 1
            else:
                with pytest.raises(expected) as raised:
                    services.apply_event(session, premises, actor, event, version, reason, params)
                if expected is Forbidden:
                    assert role in raised.value.message
                elif (state, label) in GUARD_REFUSED:
                    assert GUARD_REFUSED[(state, label)] in raised.value.message
                else:
                    # Refused names the event and the state that stops it.
                    assert workflow.EVENT_RULES[event].label in raised.value.message
                    assert f"while the premises is {STATE_WORDS[state]}" in raised.value.message
                assert (premises.state, premises.version) == (state, version)
                assert stored(session, premises) == (state, version)
                assert [e.id for e in chain_events(session, premises)] == [e.id for e in before]
            assert premises not in workflow.machine.models


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("state", STATES)
def test_events_offered_match_the_table(state, role):
    offered = {rule.name for rule in workflow.events_available(state, role)}
    expected = {
        label.split(":")[0]
        for label, _event, _params in EVENTS
        if ((state, label) in ALLOWED or (state, label) in GUARD_REFUSED)
        and role in ROLES_FOR[label.split(":")[0]]
    }
    assert offered == expected


# ---- stale versions, reasons, parameters -------------------------------------------


@pytest.fixture
def crown(session, make_authority, make_user, make_premises):
    authority = make_authority("LIV")
    supervisor = make_user("supervisor")
    return {"premises": make_premises(authority, supervisor), "supervisor": supervisor}


def assert_nothing_changed(session, premises: Premises, state: str, version: int, events: int):
    assert (premises.state, premises.version) == (state, version)
    assert stored(session, premises) == (state, version)
    assert len(chain_events(session, premises)) == events
    assert premises not in workflow.machine.models


def test_stale_version_is_a_conflict_and_changes_nothing(session, crown, subtests):
    premises, supervisor = crown["premises"], crown["supervisor"]
    assert premises.version == 1
    for seen in (0, 2, 99):
        with subtests.test(seen=seen), pytest.raises(Conflict) as raised:
            services.apply_event(session, premises, supervisor, "warn", seen, "Late", {})
        assert raised.value.status == 409
        assert_nothing_changed(session, premises, "monitored", 1, 1)


def test_version_from_before_an_earlier_event_is_a_conflict(session, crown):
    premises, supervisor = crown["premises"], crown["supervisor"]
    move(session, premises, supervisor, "warn")
    with pytest.raises(Conflict):
        services.apply_event(session, premises, supervisor, "stand_down", 1, "Late", {})
    assert_nothing_changed(session, premises, "warned", 2, 2)


def test_missing_version_is_a_validation_failure(session, crown):
    premises, supervisor = crown["premises"], crown["supervisor"]
    with pytest.raises(ValidationFailed) as raised:
        services.apply_event(session, premises, supervisor, "warn", None, "Why", {})
    assert "version" in raised.value.errors
    assert_nothing_changed(session, premises, "monitored", 1, 1)


def test_a_reason_is_required(session, crown, subtests):
    premises, supervisor = crown["premises"], crown["supervisor"]
    for reason in (None, "", "   \n"):
        with subtests.test(reason=reason):
            with pytest.raises(ValidationFailed) as raised:
                services.apply_event(session, premises, supervisor, "warn", 1, reason, {})
            assert "reason" in raised.value.errors
            assert_nothing_changed(session, premises, "monitored", 1, 1)


def test_the_reason_is_recorded_trimmed(session, crown):
    premises, supervisor = crown["premises"], crown["supervisor"]
    result = services.apply_event(session, premises, supervisor, "warn", 1, "  Fights  ", {})
    assert result.event.reason == "Fights"


def test_unknown_event_is_refused(session, crown):
    premises, supervisor = crown["premises"], crown["supervisor"]
    with pytest.raises(Refused) as raised:
        services.apply_event(session, premises, supervisor, "to_warned", 1, "Why", {})
    assert raised.value.status == 422
    assert "to_warned" in raised.value.message
    assert_nothing_changed(session, premises, "monitored", 1, 1)


FUTURE = (TODAY + timedelta(days=2)).isoformat()  # stays future across midnight
WARNED_CASES = [
    ("apply_for_review", {}, "application_date"),
    ("apply_for_review", {"application_date": ""}, "application_date"),
    ("apply_for_review", {"application_date": "31/01/2025"}, "application_date"),
    ("apply_for_review", {"application_date": "2025-02-30"}, "application_date"),
    ("apply_for_review", {"application_date": FUTURE}, "application_date"),
    ("apply_for_summary_review", {"certificate_reference": "C1"}, "received_at"),
    (
        "apply_for_summary_review",
        {"received_at": "yesterday", "certificate_reference": "C1"},
        "received_at",
    ),
    ("apply_for_summary_review", {"received_at": "2025-03-01T10:00:00Z"}, "certificate_reference"),
    (
        "apply_for_summary_review",
        {"received_at": "2025-03-01T10:00:00Z", "certificate_reference": "  "},
        "certificate_reference",
    ),
]


def test_review_applications_need_their_parameters(session, crown, subtests):
    premises, supervisor = crown["premises"], crown["supervisor"]
    move(session, premises, supervisor, "warn")
    for event, params, field in WARNED_CASES:
        with subtests.test(event=event, params=params):
            with pytest.raises(ValidationFailed) as raised:
                services.apply_event(session, premises, supervisor, event, 2, "Apply", params)
            assert raised.value.status == 422
            assert set(raised.value.errors) == {field}
            assert_nothing_changed(session, premises, "warned", 2, 2)


def test_application_dated_today_is_accepted(session, crown):
    premises, supervisor = crown["premises"], crown["supervisor"]
    move(session, premises, supervisor, "warn")
    move(session, premises, supervisor, "apply_for_review", application_date=TODAY.isoformat())
    assert premises.state == "review"


DECIDED = date(2025, 1, 31)
DETERMINATION_CASES = [
    ({"decision_date": "2025-01-31"}, "outcome"),
    ({"outcome": "close_it_down", "decision_date": "2025-01-31"}, "outcome"),
    ({"outcome": 7, "decision_date": "2025-01-31"}, "outcome"),
    ({"outcome": "revoke"}, "decision_date"),
    ({"outcome": "revoke", "decision_date": FUTURE}, "decision_date"),
    ({"outcome": "no_action", "decision_date": FUTURE}, "decision_date"),
    ({"outcome": "suspend", "decision_date": "2025-01-31"}, "suspended_until"),
    # more than three months (31 Jan + 3 months is 30 April)
    (
        {"outcome": "suspend", "decision_date": "2025-01-31", "suspended_until": "2025-05-01"},
        "suspended_until",
    ),
    # not after the decision
    (
        {"outcome": "suspend", "decision_date": "2025-01-31", "suspended_until": "2025-01-31"},
        "suspended_until",
    ),
    (
        {"outcome": "suspend", "decision_date": "2025-01-31", "suspended_until": "2025-01-01"},
        "suspended_until",
    ),
]


@pytest.fixture
def in_review(session, crown):
    premises, supervisor = crown["premises"], crown["supervisor"]
    move(session, premises, supervisor, "warn")
    move(session, premises, supervisor, "apply_for_review", application_date="2025-01-02")
    assert (premises.state, premises.version) == ("review", 3)
    return crown


def test_determination_needs_valid_parameters(session, in_review, subtests):
    premises, supervisor = in_review["premises"], in_review["supervisor"]
    for params, field in DETERMINATION_CASES:
        with subtests.test(params=params):
            with pytest.raises(ValidationFailed) as raised:
                services.apply_event(
                    session, premises, supervisor, "record_determination", 3, "Decided", params
                )
            assert set(raised.value.errors) == {field}
            # created, warned, bundle issued, review applied
            assert_nothing_changed(session, premises, "review", 3, 4)


def test_suspension_of_up_to_three_months_is_accepted(session, crown, make_premises, subtests):
    supervisor = crown["supervisor"]
    for until in ("2025-02-01", "2025-04-30"):
        with subtests.test(until=until):
            premises = bring_to(
                session, make_premises(crown["premises"].authority), supervisor, "review"
            )
            result = services.apply_event(
                session,
                premises,
                supervisor,
                "record_determination",
                3,
                "Suspended",
                {
                    "outcome": "suspend",
                    "decision_date": DECIDED.isoformat(),
                    "suspended_until": until,
                },
            )
            assert stored(session, premises) == ("action", 4)
            payload = json.loads(result.event.payload)
            assert payload["outcome"] == "suspend"
            assert payload["suspended_until"] == until
            assert services.open_review(session, premises.id) is None  # determined


def test_every_other_outcome_leads_to_action(session, crown, make_premises, subtests):
    supervisor = crown["supervisor"]
    for outcome in ("modify_conditions", "exclude_activity", "remove_dps", "revoke"):
        with subtests.test(outcome=outcome):
            premises = bring_to(
                session, make_premises(crown["premises"].authority), supervisor, "review"
            )
            move(
                session,
                premises,
                supervisor,
                "record_determination",
                outcome=outcome,
                decision_date="2025-02-01",
            )
            assert stored(session, premises) == ("action", 4)
            assert chain_events(session, premises)[-1].to_state == "action"


def test_review_records_follow_the_events(session, in_review):
    premises, supervisor = in_review["premises"], in_review["supervisor"]
    review = services.open_review(session, premises.id)
    assert review is not None
    assert (review.kind, review.application_date) == ("standard", date(2025, 1, 2))
    move(session, premises, supervisor, "withdraw_review")
    session.refresh(review)
    assert review.status == "withdrawn"
    assert services.open_review(session, premises.id) is None
    move(
        session,
        premises,
        supervisor,
        "apply_for_summary_review",
        received_at="2025-03-01T10:30:00Z",
        certificate_reference="SUP/1",
    )
    summary = services.open_review(session, premises.id)
    assert summary is not None and summary.id != review.id
    assert (summary.kind, summary.certificate_reference) == ("summary", "SUP/1")
    move(
        session,
        premises,
        supervisor,
        "record_determination",
        outcome="no_action",
        decision_date="2025-03-02",
    )
    session.refresh(summary)
    assert (summary.status, summary.outcome) == ("determined", "no_action")
    assert premises.state == "monitored"


def test_open_and_determined_review_are_the_newest_of_each(session, in_review):
    """The premises page's one read of review applications: the open one and the latest
    determined one; a withdrawn application is neither."""
    premises, supervisor = in_review["premises"], in_review["supervisor"]
    first = services.open_review(session, premises.id)
    assert services.open_and_determined_review(session, premises.id) == (first, None)
    move(session, premises, supervisor, "withdraw_review")
    assert services.open_and_determined_review(session, premises.id) == (None, None)
    determined = []
    for round_, decided in enumerate(("2025-03-02", "2025-06-02")):
        if round_:
            move(session, premises, supervisor, "warn")
        move(
            session,
            premises,
            supervisor,
            "apply_for_summary_review",
            received_at=f"{decided[:8]}01T10:30:00Z",
            certificate_reference=f"SUP/{round_}",
        )
        current = services.open_review(session, premises.id)
        assert current is not None
        expected_determined = determined[-1] if determined else None
        assert services.open_and_determined_review(session, premises.id) == (
            current,
            expected_determined,
        )
        move(
            session,
            premises,
            supervisor,
            "record_determination",
            outcome="no_action",
            decision_date=decided,
        )
        determined.append(current)
        assert services.open_and_determined_review(session, premises.id) == (None, current)
    assert determined[0].id != determined[1].id


# ---- the machine itself ------------------------------------------------------------


def test_machine_has_no_auto_transitions():
    assert workflow.machine.auto_transitions is False
    for state in STATES:
        triggers = workflow.machine.get_triggers(state)
        assert not [t for t in triggers if t.startswith("to_")]
        assert set(triggers) <= set(workflow.EVENT_RULES)


def test_premises_is_detached_and_carries_no_triggers_after_an_event(session, crown):
    premises, supervisor = crown["premises"], crown["supervisor"]
    move(session, premises, supervisor, "warn")
    assert premises not in workflow.machine.models
    for name in (
        "to_warned",
        "to_monitored",
        "trigger",
        "warn",
        "stand_down",
        "may_warn",
        "is_warned",
    ):
        assert not hasattr(premises, name), name
    # A second event still works (the machine binds afresh each time).
    move(session, premises, supervisor, "stand_down")
    assert stored(session, premises) == ("monitored", 3)
    assert premises not in workflow.machine.models


class Boom(Exception):
    pass


def _boom(_event) -> None:
    raise Boom("failure inside the transition")


@pytest.mark.parametrize("hook", ["before_state_change", "after_state_change"])
def test_premises_is_detached_and_unchanged_when_the_event_raises(
    session, crown, monkeypatch, hook
):
    # Fault injection on the library's callback hooks: the transition itself fails,
    # before or after the machine has set the new state on the object.
    premises, supervisor = crown["premises"], crown["supervisor"]
    monkeypatch.setattr(workflow.machine, hook, [_boom])
    with pytest.raises(Boom):
        services.apply_event(session, premises, supervisor, "warn", 1, "Why", {})
    monkeypatch.undo()
    assert premises not in workflow.machine.models
    assert not hasattr(premises, "trigger")
    # Nothing half-done is left in the session for a later commit to persist.
    session.commit()
    assert_nothing_changed(session, premises, "monitored", 1, 1)
    move(session, premises, supervisor, "warn")
    assert stored(session, premises) == ("warned", 2)


def test_forbidden_and_refused_carry_their_http_status(session, crown, make_user):
    premises = crown["premises"]
    admin = make_user("admin")
    with pytest.raises(Forbidden) as forbidden:
        services.apply_event(session, premises, admin, "warn", 1, "Why", {})
    assert forbidden.value.status == 403
    with pytest.raises(Refused) as refused:
        services.apply_event(session, premises, crown["supervisor"], "close_action", 1, "Why", {})
    assert refused.value.status == 422
    assert "possible now: warn, apply_for_summary_review" in refused.value.message
    assert (
        session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.premises_id == premises.id)
        )
        == 1
    )
