"""Action plans: the lifecycle (agree, update, complete, fail, withdraw), conflicts,
refusals in the wrong states, the recommendations raised, and the audit chain."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import time_machine
from sqlalchemy import select
from sqlalchemy.orm import Session

from licensing.actionplans import services
from licensing.actionplans.models import ActionPlan
from licensing.audit.models import AuditEvent, AuditPersonalValue
from licensing.audit.services import verify_chains
from licensing.errors import Conflict, NotFound, Refused, ValidationFailed
from licensing.incidents.models import Recommendation
from licensing.incidents.recommendations import evaluate
from licensing.timeutil import london_today
from tests.conftest import move, record_evidence

TODAY = london_today()


def items(*due_days: int) -> list[services.ItemInput]:
    """Items due the given number of days from today."""
    names = ["Two SIA door staff Fri/Sat", "CCTV kept 31 days", "Challenge 25 training"]
    return [
        services.ItemInput(names[n % 3], "Licence holder", TODAY + timedelta(days=d))
        for n, d in enumerate(due_days)
    ]


def agree(
    session: Session, world: dict[str, Any], due: tuple[int, ...] = (7, 14, 21)
) -> ActionPlan:
    """A plan agreed today with the premises' DPS, reviewed in four weeks."""
    return services.agree_plan(
        session,
        world["officer"],
        world["premises"],
        agreed_on=TODAY,
        review_on=TODAY + timedelta(days=28),
        agreed_with="Dee Supervisor",
        items=items(*due),
        reason="Fights at closing time",
    )


def events(session: Session, premises_id: int) -> list[AuditEvent]:
    return list(
        session.scalars(
            select(AuditEvent).where(AuditEvent.premises_id == premises_id).order_by(AuditEvent.seq)
        )
    )


def open_recommendations(session: Session, premises_id: int) -> list[Recommendation]:
    return list(
        session.scalars(
            select(Recommendation).where(
                Recommendation.premises_id == premises_id, Recommendation.status == "open"
            )
        )
    )


@pytest.fixture
def warned(session: Session, world: dict[str, Any]) -> dict[str, Any]:
    move(session, world["premises"], world["officer"], "warn")
    return world


def test_agree_records_plan_items_and_audit_without_names_on_the_chain(session, warned):
    plan = agree(session, warned)
    assert plan.status == "open" and plan.lock_version == 1
    assert [i.status for i in plan.items] == ["agreed"] * 3
    assert [i.id for i in plan.items] == sorted(i.id for i in plan.items)
    agreed = [e for e in events(session, plan.premises_id) if e.event == "action_plan_agreed"]
    assert len(agreed) == 1 and agreed[0].actor_id == warned["officer"].id
    assert agreed[0].reason == "Fights at closing time"
    payload = json.loads(agreed[0].payload)
    assert [i["item_id"] for i in payload["items"]] == [i.id for i in plan.items]
    assert "Dee Supervisor" not in agreed[0].payload
    personal = session.scalars(
        select(AuditPersonalValue).where(AuditPersonalValue.event_id == agreed[0].id)
    ).all()
    assert ("agreed_with", "Dee Supervisor") in {(p.field, p.new_value) for p in personal}
    assert verify_chains(session).ok
    assert services.agreed_plans(session) == [(plan.premises_id, TODAY)]
    # The premises page asks for one premises' plans only.
    assert services.agreed_plans(session, [plan.premises_id]) == [(plan.premises_id, TODAY)]
    assert services.agreed_plans(session, [warned["other_premises"].id]) == []
    assert services.count_plans(session, plan.premises_id) == 1
    assert services.count_plans(session, warned["other_premises"].id) == 0


def test_agree_is_refused_under_review_and_with_an_open_plan(session, warned):
    agree(session, warned)
    with pytest.raises(Refused, match="already has an open action plan"):
        agree(session, warned)
    other = warned["other_premises"]
    move(session, other, warned["officer"], "warn")
    applied = (TODAY - timedelta(days=1)).isoformat()
    move(session, other, warned["supervisor"], "apply_for_review", application_date=applied)
    with pytest.raises(Refused, match="monitored or warned"):
        services.agree_plan(
            session,
            warned["officer"],
            other,
            agreed_on=TODAY,
            review_on=TODAY + timedelta(days=28),
            agreed_with="X",
            items=items(7),
            reason="r",
        )


def test_agree_while_monitored_is_allowed(session, world):
    plan = agree(session, world)
    assert world["premises"].state == "monitored" and plan.is_open


def test_bad_input_names_each_field_and_saves_nothing(session, warned):
    with pytest.raises(ValidationFailed) as error:
        services.agree_plan(
            session,
            warned["officer"],
            warned["premises"],
            agreed_on=TODAY + timedelta(days=1),
            review_on=None,
            agreed_with="",
            items=[],
            reason="",
        )
    assert {"agreed_on", "review_on", "agreed_with", "reason", "items"} <= set(error.value.errors)
    with pytest.raises(ValidationFailed) as error:
        services.agree_plan(
            session,
            warned["officer"],
            warned["premises"],
            agreed_on=TODAY,
            review_on=TODAY + timedelta(days=10),
            agreed_with="Dee",
            items=[services.ItemInput("", "", TODAY + timedelta(days=30))],
            reason="r",
        )
    assert set(error.value.errors) == {
        "items-0-description",
        "items-0-owner",
        "items-0-due_on",
    }
    # A date at the end of the calendar is a field error, never an overflow.
    with pytest.raises(ValidationFailed) as error:
        services.agree_plan(
            session,
            warned["officer"],
            warned["premises"],
            agreed_on=date(9999, 12, 31),
            review_on=date(9999, 12, 31),
            agreed_with="Dee",
            items=items(7),
            reason="r",
        )
    assert set(error.value.errors) == {"agreed_on"}
    assert session.scalars(select(ActionPlan)).all() == []


def test_council_user_learns_nothing(session, warned):
    with pytest.raises(NotFound):
        services.agree_plan(
            session,
            warned["council"],
            warned["premises"],
            agreed_on=TODAY,
            review_on=TODAY,
            agreed_with="x",
            items=items(0),
            reason="r",
        )


def test_every_item_done_or_withdrawn_completes_the_plan(session, warned):
    plan = agree(session, warned)
    a, b, c = plan.items
    services.update_items(session, warned["officer"], plan, 1, {a.id: "done"}, "Seen at visit")
    assert plan.status == "open" and plan.lock_version == 2
    services.update_items(
        session, warned["officer"], plan, 2, {b.id: "done", c.id: "withdrawn"}, "Checked"
    )
    assert plan.status == "completed" and plan.closed_at is not None
    names = [e.event for e in events(session, plan.premises_id)]
    assert names.count("action_plan_item_status_changed") == 3
    assert names[-1] == "action_plan_completed"
    with pytest.raises(Refused, match="completed"):
        services.update_items(session, warned["officer"], plan, plan.lock_version, {}, "x")


def test_all_withdrawn_closes_without_success(session, warned):
    plan = agree(session, warned, due=(7,))
    services.update_items(
        session, warned["officer"], plan, 1, {plan.items[0].id: "withdrawn"}, "Not needed"
    )
    assert plan.status == "withdrawn"
    assert open_recommendations(session, plan.premises_id) == []


def test_an_item_not_done_fails_the_plan_and_recommends_review_once(session, warned):
    plan = agree(session, warned)
    services.update_items(
        session, warned["officer"], plan, 1, {plan.items[0].id: "not_done"}, "No door staff"
    )
    assert plan.status == "failed"
    [recommendation] = open_recommendations(session, plan.premises_id)
    assert recommendation.rule == "action_plan_failed"
    assert recommendation.recommended_event == "apply_for_review"
    failed = [e for e in events(session, plan.premises_id) if e.event == "action_plan_failed"]
    assert json.loads(failed[0].payload)["failed_because"] == "item_not_done"
    # A second failed plan while the first recommendation is open raises no second one.
    second = agree(session, warned)
    services.update_items(
        session, warned["officer"], second, 1, {second.items[0].id: "not_done"}, "Again"
    )
    assert len(open_recommendations(session, plan.premises_id)) == 1


def test_a_failed_plan_while_monitored_recommends_a_warning(session, world):
    plan = agree(session, world)
    services.update_items(session, world["officer"], plan, 1, {plan.items[0].id: "not_done"}, "x")
    [recommendation] = open_recommendations(session, plan.premises_id)
    assert recommendation.recommended_event == "warn"


def test_a_stale_version_is_a_conflict_and_changes_nothing(session, warned):
    plan = agree(session, warned)
    services.update_items(session, warned["officer"], plan, 1, {plan.items[0].id: "done"}, "ok")
    with pytest.raises(Conflict):
        services.update_items(
            session, warned["supervisor"], plan, 1, {plan.items[1].id: "not_done"}, "stale"
        )
    session.expire_all()
    assert [i.status for i in plan.items] == ["done", "agreed", "agreed"]


def test_add_item_and_move_review_date(session, warned):
    plan = agree(session, warned)
    services.add_item(
        session,
        warned["officer"],
        plan,
        1,
        services.ItemInput("Last entry 01:00", "DPS", TODAY + timedelta(days=20)),
        "Agreed by phone",
    )
    assert len(plan.items) == 4 and plan.lock_version == 2
    with pytest.raises(ValidationFailed) as error:
        services.move_review_date(session, warned["officer"], plan, 2, TODAY, "sooner")
    assert "review_on" in error.value.errors
    services.move_review_date(
        session, warned["officer"], plan, 2, TODAY + timedelta(days=40), "Holiday"
    )
    assert plan.review_on == TODAY + timedelta(days=40) and plan.lock_version == 3
    assert verify_chains(session).ok


def test_the_sweep_fails_a_plan_past_its_review_date(session, warned):
    plan = agree(session, warned, due=(1, 2))
    services.update_items(session, warned["officer"], plan, 1, {plan.items[0].id: "done"}, "ok")
    later = datetime.combine(TODAY + timedelta(days=29), datetime.min.time(), UTC) + timedelta(
        hours=12
    )
    # The day of the review itself: still open.
    assert services.close_plans_past_review(session, later - timedelta(days=1)) == []
    closed = services.close_plans_past_review(session, later)
    session.commit()
    assert closed == [plan] and plan.status == "failed"
    failed = [e for e in events(session, plan.premises_id) if e.event == "action_plan_failed"]
    assert failed[0].actor_id is None
    assert json.loads(failed[0].payload)["failed_because"] == "review_date_missed"
    assert [r.rule for r in open_recommendations(session, plan.premises_id)] == [
        "action_plan_failed"
    ]


def test_completed_plan_then_quiet_period_recommends_stand_down_once(session, warned, app):
    app.config["ACTION_PLAN_QUIET_DAYS"] = 10
    plan = agree(session, warned, due=(1,))
    services.update_items(session, warned["officer"], plan, 1, {plan.items[0].id: "done"}, "ok")
    assert plan.status == "completed"
    # Too soon: the quiet period has not passed since completion.
    assert [r.rule for r in evaluate(session, now=datetime.now(UTC) + timedelta(days=5))] == []
    after = datetime.now(UTC) + timedelta(days=11)
    raised = evaluate(session, now=after)
    assert [(r.rule, r.recommended_event) for r in raised] == [
        ("action_plan_completed", "stand_down")
    ]
    assert evaluate(session, now=after + timedelta(hours=1)) == []  # never a second one


def test_an_incident_in_the_quiet_period_holds_the_stand_down_back(session, warned, app):
    app.config["ACTION_PLAN_QUIET_DAYS"] = 10
    plan = agree(session, warned, due=(1,))
    services.update_items(session, warned["officer"], plan, 1, {plan.items[0].id: "done"}, "ok")
    with time_machine.travel(datetime.now(UTC) + timedelta(days=6), tick=False):
        record_evidence(session, warned["premises"])  # counted the day before: day 5
    raised = evaluate(session, now=datetime.now(UTC) + timedelta(days=11))
    assert [r.rule for r in raised if r.rule.startswith("action_plan")] == []
    raised = evaluate(session, now=datetime.now(UTC) + timedelta(days=16))
    assert [r.rule for r in raised if r.rule.startswith("action_plan")] == ["action_plan_completed"]


def test_derive_status_rules():
    plan = ActionPlan(review_on=date(2026, 5, 1), agreed_on=date(2026, 4, 1))
    from licensing.actionplans.models import ActionPlanItem

    def with_items(*statuses: str) -> ActionPlan:
        plan.items = [ActionPlanItem(status=s, due_on=date(2026, 4, 20)) for s in statuses]
        return plan

    before, after = date(2026, 5, 1), date(2026, 5, 2)
    assert services.derive_status(with_items("agreed", "done"), before) == "open"
    assert services.derive_status(with_items("agreed", "done"), after) == "failed"
    assert services.derive_status(with_items("done", "not_done"), before) == "failed"
    assert services.derive_status(with_items("done", "withdrawn"), after) == "completed"
    assert services.derive_status(with_items("withdrawn", "withdrawn"), before) == "withdrawn"
