"""Threshold rules raise recommendations with their incidents; they never change a state."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from licensing.errors import NotFound, ValidationFailed
from licensing.incidents import recommendations, services
from licensing.incidents.models import Recommendation

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


@pytest.fixture
def premises(world, make_premises):
    """A premises with nothing linked to it yet."""
    return make_premises(
        world["liv"],
        world["officer"],
        evidence=False,
        name="The Albert",
        licence_number="LIV/ALBERT",
    )


def serious(session, world, premises, n, days_ago=1, category="Public order"):
    ids = []
    for i in range(n):
        recorded = services.record_incident(
            session,
            world["officer"],
            {
                "source": "rms",
                "source_ref": f"{premises.id}-{category}-{days_ago}-{i}",
                "occurred_at": (NOW - timedelta(days=days_ago, minutes=i)).isoformat(),
                "category": category,
                "licence_number": premises.licence_number,
                "authority": premises.authority.code,
            },
        )
        ids.append(recorded.incident.id)
    return ids


def test_three_serious_incidents_in_28_days_recommend_a_warning(session, world, premises):
    ids = serious(session, world, premises, 3)
    raised = recommendations.evaluate(session, now=NOW)
    assert [(r.premises_id, r.rule, r.recommended_event) for r in raised] == [
        (premises.id, "serious_while_monitored", "warn")
    ]
    assert sorted(json.loads(raised[0].incident_ids)) == sorted(ids)
    session.refresh(premises)
    assert premises.state == "monitored"  # a recommendation changes nothing by itself


def test_two_are_not_enough_and_old_ones_do_not_count(session, world, premises):
    serious(session, world, premises, 2)
    serious(session, world, premises, 2, days_ago=40)
    assert recommendations.evaluate(session, now=NOW) == []


def test_asb_needs_five_and_other_crime_does_not_count(session, world, premises):
    serious(session, world, premises, 4, category="Anti-social behaviour")
    serious(session, world, premises, 5, category="Bicycle theft")
    assert recommendations.evaluate(session, now=NOW) == []
    serious(session, world, premises, 1, days_ago=2, category="ASB - nuisance")
    assert [r.rule for r in recommendations.evaluate(session, now=NOW)] == ["asb_while_monitored"]


def test_no_second_open_recommendation_for_the_same_rule(session, world, premises):
    serious(session, world, premises, 4)
    assert len(recommendations.evaluate(session, now=NOW)) == 1
    assert recommendations.evaluate(session, now=NOW) == []
    assert len(recommendations.open_recommendations(session, premises.id)) == 1


def test_dismissing_needs_a_reason_and_is_audited(session, world, premises):
    serious(session, world, premises, 3)
    (raised,) = recommendations.evaluate(session, now=NOW)
    with pytest.raises(ValidationFailed):
        recommendations.dismiss(session, world["officer"], raised.id, "  ")
    session.rollback()
    with pytest.raises(NotFound):
        recommendations.dismiss(session, world["council"], raised.id, "no")
    recommendations.dismiss(
        session, world["officer"], raised.id, "Incidents were a single private party"
    )
    assert session.get(Recommendation, raised.id).status == "dismissed"
    from licensing.audit.models import AuditEvent

    last = session.scalar(
        select(AuditEvent)
        .where(AuditEvent.premises_id == premises.id)
        .order_by(AuditEvent.seq.desc())
        .limit(1)
    )
    assert last.event == "recommendation_dismissed" and "private party" in last.reason
