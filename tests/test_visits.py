"""Visit services on a real database: scheduling, recording outcomes, the visit policy by
state (clock pinned), findings as evidence, overdue visits and the audit trail."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import time_machine
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from licensing.audit.models import AuditEvent
from licensing.audit.services import verify_chains
from licensing.deadlines.models import Deadline
from licensing.errors import Conflict, Forbidden, NotFound, Refused, ValidationFailed
from licensing.premises.models import Premises
from licensing.timeutil import LONDON
from licensing.visits import services
from licensing.visits.models import Visit
from tests.conftest import move

# A Monday in winter (GMT), 10:00 in London.
NOW = datetime(2026, 1, 12, 10, 0, tzinfo=UTC)
TODAY = date(2026, 1, 12)


@pytest.fixture
def pinned() -> Iterator[time_machine.Coordinates]:
    """The clock stopped at NOW for the whole test (set-up included)."""
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def events(session: Session, premises: Premises, name: str) -> list[AuditEvent]:
    return list(
        session.scalars(
            select(AuditEvent)
            .where(AuditEvent.premises_id == premises.id, AuditEvent.event == name)
            .order_by(AuditEvent.seq)
        )
    )


def count(session: Session, model: Any) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def at(day: date, hour: int = 21, minute: int = 0) -> datetime:
    """A London wall-clock time as a UTC instant."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=LONDON).astimezone(UTC)


def schedule(session: Session, world: dict[str, Any], day: date, **kwargs: Any) -> Visit:
    params: dict[str, Any] = {
        "scheduled_at": at(day),
        "visit_type": "routine",
        "officer_id": world["officer"].id,
    }
    params.update(kwargs)
    return services.schedule_visit(session, world["officer"], world["premises"], **params)


def issues(day: date, **findings: str) -> services.Outcome:
    return services.Outcome(
        outcome="issues_found",
        visited_at=at(day, 9),
        findings=findings or {"public_nuisance": "Music audible from the street at 23:40"},
        follow_up_actions="Licence holder to fit a noise limiter",
    )


def compliant(day: date) -> services.Outcome:
    return services.Outcome(outcome="compliant", visited_at=at(day, 9))


# ---- scheduling -----------------------------------------------------------------------------


def test_schedule_books_a_visit_and_writes_an_event(
    pinned: Any, session: Session, world: dict[str, Any]
) -> None:
    visit = schedule(session, world, TODAY + timedelta(days=3), visit_type="test_purchase")

    session.expire_all()
    stored = session.get(Visit, visit.id)
    assert stored is not None
    assert (stored.status, stored.visit_type, stored.officer_id) == (
        "scheduled",
        "test_purchase",
        world["officer"].id,
    )
    assert stored.visit_date == TODAY + timedelta(days=3)
    assert stored.scheduled_at == at(TODAY + timedelta(days=3))
    [event] = events(session, world["premises"], "visit_scheduled")
    assert json.loads(event.payload) == {
        "visit_id": visit.id,
        "visit_type": "test_purchase",
        "officer_id": world["officer"].id,
        "scheduled_at": at(TODAY + timedelta(days=3)).isoformat(),
        "from_proposal": False,
    }
    assert event.actor_id == world["officer"].id
    assert verify_chains(session).ok


def test_schedule_in_london_time_across_the_clock_change(
    pinned: Any, session: Session, world: dict[str, Any]
) -> None:
    # 21:00 on 1 July is BST: 20:00 UTC, and still 1 July in London.
    visit = schedule(session, world, date(2026, 7, 1))
    assert visit.scheduled_at == datetime(2026, 7, 1, 20, 0, tzinfo=UTC)
    assert visit.visit_date == date(2026, 7, 1)


@pytest.mark.parametrize(
    ("day_offset", "kwargs", "field"),
    [
        (-1, {}, "visit_date"),
        (800, {}, "visit_date"),
        (1, {"visit_type": "coffee"}, "visit_type"),
        (1, {"officer_id": "not-a-number"}, "officer_id"),
    ],
)
def test_schedule_refuses_bad_input_having_changed_nothing(
    pinned: Any,
    session: Session,
    world: dict[str, Any],
    day_offset: int,
    kwargs: dict[str, Any],
    field: str,
) -> None:
    before = (count(session, Visit), count(session, AuditEvent))
    with pytest.raises(ValidationFailed) as caught:
        schedule(session, world, TODAY + timedelta(days=day_offset), **kwargs)
    assert field in caught.value.errors
    assert (count(session, Visit), count(session, AuditEvent)) == before


@pytest.mark.parametrize("role", ["council", "admin"])
def test_schedule_refuses_an_assignee_who_is_not_police(
    pinned: Any, session: Session, world: dict[str, Any], role: str
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        schedule(session, world, TODAY, officer_id=world[role].id)
    assert "officer_id" in caught.value.errors
    assert count(session, Visit) == 0


def test_council_users_learn_nothing_and_admins_are_told_no(
    pinned: Any, session: Session, world: dict[str, Any]
) -> None:
    # Under review, the premises itself is visible to its council; its visits are not.
    move(
        session,
        world["premises"],
        world["supervisor"],
        "apply_for_summary_review",
        received_at=NOW.isoformat(),
        certificate_reference="CERT-2",
    )
    visit = schedule(session, world, TODAY + timedelta(days=1))
    with pytest.raises(NotFound):
        services.schedule_visit(
            session,
            world["council"],
            world["premises"],
            scheduled_at=at(TODAY),
            visit_type="routine",
            officer_id=world["officer"].id,
        )
    with pytest.raises(NotFound):
        services.get_visit(session, world["council"], visit.id)
    with pytest.raises(Forbidden):
        services.get_visit(session, world["admin"], visit.id)
    assert services.get_visit(session, world["supervisor"], visit.id).id == visit.id
    assert services.premises_visits_context(session, world["council"], world["premises"]) == {
        "visible": False
    }


# ---- recording --------------------------------------------------------------------------------


def test_record_outcome_keeps_findings_off_the_chain(
    pinned: Any, session: Session, world: dict[str, Any]
) -> None:
    visit = schedule(session, world, TODAY)
    secret = "Door supervisor J. Bloggs refused entry to officers"
    services.record_outcome(
        session,
        world["officer"],
        visit,
        visit.version,
        issues(TODAY, crime_and_disorder=secret, protection_of_children="Under-18s served"),
    )

    session.expire_all()
    stored = session.get(Visit, visit.id)
    assert stored is not None and stored.status == "completed"
    assert stored.findings_crime_and_disorder == secret
    assert stored.objectives_flagged == ["crime_and_disorder", "protection_of_children"]
    [event] = events(session, world["premises"], "visit_recorded")
    payload = json.loads(event.payload)
    assert payload == {
        "visit_id": visit.id,
        "visit_type": "routine",
        "visit_outcome": "issues_found",
        "objectives_flagged": ["crime_and_disorder", "protection_of_children"],
        "visited_at": at(TODAY, 9).isoformat(),
        "follow_up": True,
    }
    everything = " ".join(
        f"{e.payload} {e.reason or ''}"
        for e in session.scalars(
            select(AuditEvent).where(AuditEvent.premises_id == visit.premises_id)
        )
    )
    assert "Bloggs" not in everything and "Under-18s" not in everything
    assert verify_chains(session).ok


def test_issues_found_needs_findings_under_an_objective(
    pinned: Any, session: Session, world: dict[str, Any]
) -> None:
    visit = schedule(session, world, TODAY)
    with pytest.raises(ValidationFailed) as caught:
        services.record_outcome(
            session,
            world["officer"],
            visit,
            visit.version,
            services.Outcome("issues_found", at(TODAY, 9), {"public_safety": "   "}),
        )
    assert "findings_crime_and_disorder" in caught.value.errors
    session.expire_all()
    assert session.get(Visit, visit.id).status == "scheduled"  # type: ignore[union-attr]
    assert events(session, world["premises"], "visit_recorded") == []


def test_a_visit_cannot_be_recorded_before_it_happens(
    pinned: Any, session: Session, world: dict[str, Any]
) -> None:
    visit = schedule(session, world, TODAY)
    with pytest.raises(ValidationFailed) as caught:
        services.record_outcome(
            session,
            world["officer"],
            visit,
            visit.version,
            services.Outcome("compliant", at(TODAY, 10, 6)),  # six minutes from now
        )
    assert "visited_date" in caught.value.errors


def test_recording_twice_or_from_a_stale_page_is_refused(
    pinned: Any, session: Session, world: dict[str, Any]
) -> None:
    visit = schedule(session, world, TODAY - timedelta(days=0))
    seen = visit.version
    services.record_outcome(
        session, world["officer"], visit, seen, compliant(TODAY - timedelta(days=1))
    )
    with pytest.raises(Conflict):
        services.record_outcome(
            session, world["supervisor"], visit, seen, issues(TODAY - timedelta(days=1))
        )
    with pytest.raises(Refused):
        services.record_outcome(
            session, world["supervisor"], visit, visit.version, issues(TODAY - timedelta(days=1))
        )
    assert len(events(session, world["premises"], "visit_recorded")) == 1


def test_cancel_needs_a_reason_and_writes_it_on_the_chain(
    pinned: Any, session: Session, world: dict[str, Any]
) -> None:
    visit = schedule(session, world, TODAY + timedelta(days=2))
    with pytest.raises(ValidationFailed):
        services.cancel_visit(session, world["officer"], visit, visit.version, "  ")
    services.cancel_visit(
        session, world["officer"], visit, visit.version, "Premises closed for refit"
    )
    session.expire_all()
    assert session.get(Visit, visit.id).status == "cancelled"  # type: ignore[union-attr]
    [event] = events(session, world["premises"], "visit_cancelled")
    assert event.reason == "Premises closed for refit"


# ---- the visit policy ---------------------------------------------------------------------------


def proposed(session: Session, premises: Premises) -> list[Visit]:
    session.expire_all()
    return list(
        session.scalars(
            select(Visit).where(Visit.premises_id == premises.id, Visit.status == "proposed")
        )
    )


def test_policy_by_state_with_the_clock_pinned(
    pinned: Any, session: Session, world: dict[str, Any]
) -> None:
    premises, officer, supervisor = world["premises"], world["officer"], world["supervisor"]
    # Registered today, never visited: monitored means every 26 weeks from today.
    assert services.propose_next_visit(session, premises) == TODAY + timedelta(weeks=26)
    services.on_state_changed(session, premises, officer, commit=True)
    [first] = proposed(session, premises)
    assert (first.visit_date, first.visit_type) == (TODAY + timedelta(weeks=26), "routine")
    assert first.officer_id == officer.id  # the case officer

    pinned.move_to(NOW + timedelta(days=10))
    move(session, premises, officer, "warn")
    services.on_state_changed(session, premises, officer, commit=True)
    [warned] = proposed(session, premises)
    assert warned.id == first.id  # moved, not added
    assert warned.visit_date == TODAY + timedelta(days=10, weeks=4)

    pinned.move_to(NOW + timedelta(days=20))
    move(
        session,
        premises,
        supervisor,
        "apply_for_review",
        application_date=(TODAY + timedelta(days=19)).isoformat(),
    )
    services.on_state_changed(session, premises, supervisor, commit=True)
    [review] = proposed(session, premises)
    assert review.visit_date == TODAY + timedelta(days=20, weeks=2)

    pinned.move_to(NOW + timedelta(days=60))
    decided = TODAY + timedelta(days=58)
    move(
        session,
        premises,
        supervisor,
        "record_determination",
        outcome="modify_conditions",
        decision_date=decided.isoformat(),
    )
    services.on_state_changed(session, premises, supervisor, commit=True)
    [action] = proposed(session, premises)
    assert (action.visit_date, action.visit_type) == (
        decided + timedelta(days=7),
        "compliance_check",
    )
    assert "7 days of the determination" in (action.policy_rule or "")

    # The workflow events moved the proposal as they happened; the events themselves are
    # the record, so no proposal events of their own were written.
    assert events(session, premises, "visit_proposal_moved") == []
    assert verify_chains(session).ok


def test_determination_of_no_action_goes_back_to_the_monitored_pace(
    pinned: Any, session: Session, world: dict[str, Any]
) -> None:
    premises, supervisor = world["premises"], world["supervisor"]
    move(
        session,
        premises,
        supervisor,
        "apply_for_summary_review",
        received_at=NOW.isoformat(),
        certificate_reference="CERT-9",
    )
    pinned.move_to(NOW + timedelta(days=30))
    move(
        session,
        premises,
        supervisor,
        "record_determination",
        outcome="no_action",
        decision_date=(TODAY + timedelta(days=29)).isoformat(),
    )
    assert premises.state == "monitored"
    assert services.propose_next_visit(session, premises) == TODAY + timedelta(days=30, weeks=26)


def test_completing_a_visit_proposes_the_next_from_the_visit(
    pinned: Any, session: Session, world: dict[str, Any]
) -> None:
    premises, officer = world["premises"], world["officer"]
    move(session, premises, officer, "warn")
    services.on_state_changed(session, premises, officer, commit=True)
    [proposal] = proposed(session, premises)

    pinned.move_to(NOW + timedelta(days=14))
    visit = services.schedule_visit(
        session,
        officer,
        premises,
        scheduled_at=at(TODAY + timedelta(days=14)),
        visit_type="night_time_economy_patrol",
        officer_id=officer.id,
    )
    assert visit.id == proposal.id  # the booking took the proposal's place
    assert visit.policy_due_date == TODAY + timedelta(weeks=4)
    assert proposed(session, premises) == []
    pinned.move_to(NOW + timedelta(days=14, hours=14))  # midnight, after the visit
    services.record_outcome(
        session, officer, visit, visit.version, issues(TODAY + timedelta(days=14))
    )

    [following] = proposed(session, premises)
    assert following.id != visit.id
    assert following.visit_date == TODAY + timedelta(days=14, weeks=4)
    assert "last visit" in (following.policy_rule or "")


def test_a_booked_visit_before_the_policy_date_means_no_proposal(
    pinned: Any, session: Session, world: dict[str, Any]
) -> None:
    premises, officer = world["premises"], world["officer"]
    services.on_state_changed(session, premises, officer, commit=True)  # 26 weeks out
    schedule(session, world, TODAY + timedelta(days=5))  # takes over the proposal
    extra = schedule(session, world, TODAY + timedelta(days=6))  # a second, separate one
    assert extra.status == "scheduled"
    move(session, premises, officer, "warn")
    services.on_state_changed(session, premises, officer, commit=True)
    assert proposed(session, premises) == []  # 4 weeks out: the booked visits meet it


def test_action_after_the_compliance_check_visits_every_two_weeks_and_closes_the_deadline(
    pinned: Any, session: Session, world: dict[str, Any]
) -> None:
    premises, officer, supervisor = world["premises"], world["officer"], world["supervisor"]
    move(
        session,
        premises,
        supervisor,
        "apply_for_summary_review",
        received_at=NOW.isoformat(),
        certificate_reference="CERT-1",
    )
    move(
        session,
        premises,
        supervisor,
        "record_determination",
        outcome="exclude_activity",
        decision_date=TODAY.isoformat(),
    )
    services.on_state_changed(session, premises, supervisor, commit=True)
    deadline = session.scalar(
        select(Deadline).where(
            Deadline.premises_id == premises.id, Deadline.kind == "compliance_visit_due"
        )
    )
    assert deadline is not None and deadline.status == "open"
    assert deadline.due_date == services.propose_next_visit(session, premises)

    pinned.move_to(NOW + timedelta(days=3, hours=14))
    [check] = proposed(session, premises)
    services.record_outcome(
        session, officer, check, check.version, compliant(TODAY + timedelta(days=3))
    )
    session.expire_all()
    assert session.get(Deadline, deadline.id).status == "closed"  # type: ignore[union-attr]
    [event] = events(session, premises, "visit_recorded")
    assert json.loads(event.payload)["deadline_ids_closed"] == [deadline.id]
    assert services.propose_next_visit(session, premises) == TODAY + timedelta(days=3, weeks=2)


# ---- findings as evidence --------------------------------------------------------------------


def test_findings_since_counts_only_issues_found_within_the_window(
    pinned: Any, session: Session, world: dict[str, Any]
) -> None:
    premises, officer = world["premises"], world["officer"]
    since = at(TODAY - timedelta(days=30), 22)

    def visit_and_record(day: date, outcome: services.Outcome) -> None:
        visit = services.schedule_visit(
            session,
            officer,
            premises,
            scheduled_at=at(TODAY),
            visit_type="routine",
            officer_id=officer.id,
        )
        outcome.visited_at = at(day, 22)
        services.record_outcome(session, officer, visit, visit.version, outcome)

    assert services.findings_since(session, premises.id, since) == 0
    visit_and_record(TODAY - timedelta(days=31), issues(TODAY))  # before the window
    visit_and_record(TODAY - timedelta(days=5), compliant(TODAY))  # compliant
    assert services.findings_since(session, premises.id, since) == 0
    visit_and_record(TODAY - timedelta(days=30), issues(TODAY))  # exactly at `since`
    assert services.findings_since(session, premises.id, since) == 1
    visit_and_record(TODAY - timedelta(days=1), issues(TODAY))
    assert services.findings_since(session, premises.id, since) == 2
    # Another premises' findings are its own.
    assert services.findings_since(session, world["other_premises"].id, since) == 0


# ---- overdue and the list ---------------------------------------------------------------------


def test_overdue_visits_are_flagged_and_filtered(
    pinned: Any, session: Session, world: dict[str, Any]
) -> None:
    premises, officer = world["premises"], world["officer"]
    booked = schedule(session, world, TODAY + timedelta(days=1))
    other = services.schedule_visit(
        session,
        world["supervisor"],
        world["other_premises"],
        scheduled_at=at(TODAY + timedelta(days=9)),
        visit_type="joint_with_council",
        officer_id=world["supervisor"].id,
    )
    assert not services.is_overdue(booked)

    pinned.move_to(NOW + timedelta(days=2))  # Wednesday: the booked visit's day has passed
    assert services.is_overdue(booked)
    context = services.premises_visits_context(session, officer, premises)
    assert [v.id for v in context["overdue"]] == [booked.id]
    assert context["next"].id == booked.id

    def listed(**flags: Any) -> list[int]:
        items, total = services.list_visits(session, officer, services.VisitFilter(**flags), 1, 50)
        assert total == len(items)
        return [v.id for v in items]

    assert listed() == [booked.id, other.id]
    assert listed(overdue=True) == [booked.id]
    assert listed(mine=True) == [booked.id]
    assert listed(this_week=True) == [booked.id]  # the other is next week
    pinned.move_to(NOW + timedelta(days=7))
    assert listed(this_week=True) == [other.id]

    services.record_outcome(session, officer, booked, booked.version, compliant(TODAY))
    assert not services.is_overdue(booked)
    assert booked.id not in listed(overdue=True)
    assert listed(status="completed") == [booked.id]
