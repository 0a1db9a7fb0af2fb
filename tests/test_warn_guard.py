"""The warn guard: a warning rests on a confirmed incident in the last 90 days, or a
supervisor's override reason; taking it settles the recommendation that asked for it."""

from __future__ import annotations

import calendar
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from licensing.audit.models import AuditEvent
from licensing.audit.services import verify_chains
from licensing.auth.services import create_token
from licensing.errors import Refused, ValidationFailed
from licensing.incidents import recommendations
from licensing.incidents import services as incident_services
from licensing.incidents.models import Incident, PremisesIncidentLink, Recommendation
from licensing.premises import services
from licensing.premises.models import Premises
from tests.conftest import move

LAT, LON = 53.404, -2.979
NORTH_PER_M = 1 / 111_195
WINDOW = timedelta(days=90)


@pytest.fixture
def bare(world, make_premises):
    """A LIV premises with no incidents at all."""
    return make_premises(
        world["liv"],
        world["officer"],
        evidence=False,
        name="The Bare Bones",
        licence_number="LIV/BARE",
        latitude=LAT,
        longitude=LON,
    )


@pytest.fixture
def call(app, session):  # type: ignore[no-untyped-def]
    tokens: dict[int, str] = {}

    def request(method: str, path: str, user: Any, **kwargs: Any) -> Any:
        if user.id not in tokens:
            tokens[user.id] = create_token(session, user.email)
        headers = {"Authorization": f"Bearer {tokens[user.id]}"}
        return app.test_client().open(path, method=method, headers=headers, **kwargs)

    return request


def record(session, actor, premises: Premises, ref: str, **fields: Any) -> Incident:  # type: ignore[no-untyped-def]
    """Record an incident through the service, linked to `premises` by licence number
    unless coordinates are given instead."""
    data: dict[str, Any] = {
        "source": "rms",
        "source_ref": ref,
        "occurred_at": (datetime.now(UTC) - timedelta(days=1)).isoformat(),
        "category": "Public order",
    }
    if "latitude" not in fields:
        data |= {"licence_number": premises.licence_number, "authority": premises.authority.code}
    data.update(fields)
    if data.get("occurred_at") is None:
        data.pop("occurred_at", None)
    return incident_services.record_incident(session, actor, data).incident


def state_of(session, premises: Premises) -> tuple[str, int, list[tuple[int, str]]]:  # type: ignore[no-untyped-def]
    """(state, version, the premises' chain as (id, hash)) read fresh from the database."""
    session.expire_all()
    fresh = session.get(Premises, premises.id)
    chain = [
        (e.id, e.content_hash)
        for e in session.scalars(
            select(AuditEvent).where(AuditEvent.premises_id == premises.id).order_by(AuditEvent.seq)
        )
    ]
    return fresh.state, fresh.version, chain


def warn(session, premises: Premises, actor, **params: Any):  # type: ignore[no-untyped-def]
    return services.apply_event(
        session, premises, actor, "warn", premises.version, "Repeated disorder", params
    )


def can_warn(session, premises: Premises, actor) -> bool:  # type: ignore[no-untyped-def]
    """Try an officer's warning; True if taken, False if the evidence rule refused it."""
    try:
        warn(session, premises, actor)
    except Refused as error:
        assert "90 days" in error.message
        return False
    return True


# ---- no evidence ----------------------------------------------------------------------


def test_an_officer_cannot_warn_without_evidence_and_nothing_changes(session, world, bare):
    before = state_of(session, bare)
    with pytest.raises(Refused) as refused:
        warn(session, bare, world["officer"])
    assert "90 days" in refused.value.message
    assert "confirmed incident" in refused.value.message
    assert state_of(session, bare) == before
    assert before[0] == "monitored" and before[1] == 1
    assert verify_chains(session).ok

    # a supervisor without an override reason is refused the same way
    with pytest.raises(Refused, match="90 days"):
        warn(session, bare, world["supervisor"])
    # and a blank override reason is no reason
    with pytest.raises(Refused, match="90 days"):
        warn(session, bare, world["supervisor"], override_reason="   ")
    assert state_of(session, bare) == before


def test_the_api_refuses_it_with_422_and_the_message(call, session, world, bare):
    before = state_of(session, bare)
    url = f"/api/v1/premises/{bare.id}/transitions"
    response = call(
        "POST", url, world["officer"], json={"event": "warn", "version": 1, "reason": "x"}
    )
    assert response.status_code == 422, response.get_data(as_text=True)
    body = response.get_json()
    assert body["error"] == "refused"
    assert "90 days" in body["message"]
    assert state_of(session, bare) == before
    shown = call("GET", f"/api/v1/premises/{bare.id}", world["officer"]).get_json()
    assert (shown["state"], shown["version"]) == ("monitored", 1)


def test_only_a_supervisor_may_give_an_override_reason(call, session, world, bare):
    before = state_of(session, bare)
    with pytest.raises(Refused) as refused:
        warn(session, bare, world["officer"], override_reason="Intelligence report 44")
    assert "Only a supervisor" in refused.value.message
    assert state_of(session, bare) == before

    url = f"/api/v1/premises/{bare.id}/transitions"
    body = {"event": "warn", "version": 1, "reason": "x", "override_reason": "Intel 44"}
    response = call("POST", url, world["officer"], json=body)
    assert response.status_code == 422
    assert "Only a supervisor" in response.get_json()["message"]
    assert state_of(session, bare) == before


def test_a_supervisors_override_reason_allows_it_and_is_recorded(session, world, bare):
    result = warn(session, bare, world["supervisor"], override_reason="  Intelligence report 44 ")
    assert result.premises.state == "warned" and result.premises.version == 2
    payload = json.loads(result.event.payload)
    assert payload["override_reason"] == "Intelligence report 44"
    assert result.event.event == "warn"
    assert verify_chains(session).ok


def test_a_supervisors_override_through_the_api(call, session, world, bare):
    url = f"/api/v1/premises/{bare.id}/transitions"
    body = {"event": "warn", "version": 1, "reason": "x", "override_reason": "Intel 44"}
    response = call("POST", url, world["supervisor"], json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["state"] == "warned"
    history = call("GET", f"/api/v1/premises/{bare.id}/history", world["officer"]).get_json()
    assert history["items"][0]["event"] == "warn"
    assert history["items"][0]["payload"]["override_reason"] == "Intel 44"


def test_an_override_reason_must_be_text(call, session, world, bare):
    url = f"/api/v1/premises/{bare.id}/transitions"
    body = {"event": "warn", "version": 1, "reason": "x", "override_reason": 44}
    response = call("POST", url, world["supervisor"], json=body)
    assert response.status_code == 422
    assert "override_reason" in response.get_json()["fields"]
    with pytest.raises(ValidationFailed):
        warn(session, bare, world["supervisor"], override_reason=["a"])
    assert state_of(session, bare)[:2] == ("monitored", 1)


# ---- what counts as evidence ------------------------------------------------------------


def test_a_recent_confirmed_incident_allows_an_officer_to_warn(session, world, bare):
    record(session, world["officer"], bare, "RECENT-1")
    result = warn(session, bare, world["officer"])
    assert result.premises.state == "warned"
    assert "override_reason" not in json.loads(result.event.payload)


def test_evidence_older_than_90_days_does_not_count(session, world, bare):
    old = (datetime.now(UTC) - timedelta(days=100)).isoformat()
    record(session, world["officer"], bare, "OLD-1", occurred_at=old)
    assert not can_warn(session, bare, world["officer"])
    assert state_of(session, bare)[:2] == ("monitored", 1)

    # 89 days ago is inside the window
    recent = (datetime.now(UTC) - timedelta(days=89)).isoformat()
    record(session, world["officer"], bare, "OLD-2", occurred_at=recent)
    assert can_warn(session, bare, world["officer"])


def test_evidence_at_another_premises_does_not_count(session, world, bare, make_premises):
    elsewhere = make_premises(world["liv"], world["officer"], evidence=False, name="Next Door")
    record(session, world["officer"], elsewhere, "ELSEWHERE-1")
    assert not can_warn(session, bare, world["officer"])
    assert can_warn(session, elsewhere, world["officer"])


def test_a_suggested_link_does_not_count_until_it_is_confirmed(session, world, bare):
    near = record(
        session, world["officer"], bare, "NEAR-1", latitude=LAT + 20 * NORTH_PER_M, longitude=LON
    )
    link = session.scalar(
        select(PremisesIncidentLink).where(PremisesIncidentLink.incident_id == near.id)
    )
    assert (link.premises_id, link.status) == (bare.id, "suggested")
    assert not can_warn(session, bare, world["officer"])

    incident_services.decide_links(session, world["officer"], [link.id], "confirmed")
    assert can_warn(session, bare, world["officer"])


def test_a_rejected_suggestion_does_not_count(session, world, bare):
    near = record(
        session, world["officer"], bare, "NEAR-2", latitude=LAT + 20 * NORTH_PER_M, longitude=LON
    )
    link = session.scalar(
        select(PremisesIncidentLink).where(PremisesIncidentLink.incident_id == near.id)
    )
    incident_services.decide_links(session, world["officer"], [link.id], "rejected", "Next door")
    assert not can_warn(session, bare, world["officer"])


def test_an_unlinked_incident_does_not_count(session, world, bare):
    incident = record(session, world["officer"], bare, "UNLINK-1")
    link = session.scalar(
        select(PremisesIncidentLink).where(PremisesIncidentLink.incident_id == incident.id)
    )
    assert link.status == "confirmed"
    incident_services.unlink(session, world["officer"], link.id, "Wrong premises")
    session.refresh(link)
    assert link.status == "rejected"
    assert not can_warn(session, bare, world["officer"])


def _month_middle(year: int, month: int) -> datetime:
    days = calendar.monthrange(year, month)[1]
    return datetime(year, month, 1, tzinfo=UTC) + timedelta(days=days / 2)


def _months_around(moment: datetime) -> list[tuple[int, int]]:
    year, month = moment.year, moment.month
    out = []
    for step in (-1, 0, 1):
        m = month + step
        y = year + (m - 1) // 12
        out.append((y, (m - 1) % 12 + 1))
    return out


def test_a_month_only_incident_counts_at_the_middle_of_its_month(session, world, make_premises):
    """The months either side of the window's edge: the one the edge falls in is
    decided by its middle, whichever half of the month the edge is in today (a rule on
    the month's first or last day would decide it the other way)."""
    cutoff = datetime.now(UTC) - WINDOW
    for n, (year, month) in enumerate(_months_around(cutoff)):
        middle = _month_middle(year, month)
        if abs(middle - cutoff) < timedelta(minutes=5):
            continue  # too close to call within one test run
        premises = make_premises(world["liv"], world["officer"], evidence=False, name=f"Month {n}")
        incident = record(
            session,
            world["officer"],
            premises,
            f"PUK-{year}-{month}",
            source="police-uk",
            occurred_at=None,
            month=f"{year}-{month:02d}",
        )
        assert incident.occurred_at is None and incident.approximate
        assert incident.counted_at == middle
        start = datetime(year, month, 1, tzinfo=UTC)
        end = start + timedelta(days=calendar.monthrange(year, month)[1])
        assert start < middle < end
        expected = middle >= cutoff
        assert can_warn(session, premises, world["officer"]) is expected, (year, month)


# ---- recommendations ------------------------------------------------------------------


def _serious(session, world, premises, refs, when: datetime) -> list[int]:  # type: ignore[no-untyped-def]
    return [
        record(
            session,
            world["officer"],
            premises,
            ref,
            category="Violence and sexual offences",
            occurred_at=when.isoformat(),
        ).id
        for ref in refs
    ]


def test_warning_settles_the_recommendation_and_repeat_after_warning_follows(session, world, bare):
    first = _serious(
        session, world, bare, ["S-1", "S-2", "S-3"], datetime.now(UTC) - timedelta(days=2)
    )
    raised = recommendations.evaluate(session, [bare.id])
    assert [(r.rule, r.recommended_event) for r in raised] == [("serious_while_monitored", "warn")]
    recommendation_id = raised[0].id
    assert sorted(json.loads(raised[0].incident_ids)) == sorted(first)
    assert [r.id for r in recommendations.open_recommendations(session, bare.id)] == [
        recommendation_id
    ]

    move(session, bare, world["officer"], "warn", "Three assaults in a week")
    session.expire_all()
    settled = session.get(Recommendation, recommendation_id)
    assert settled.status == "acted"
    assert settled.decided_by_id == world["officer"].id
    assert settled.decided_at is not None
    assert recommendations.open_recommendations(session, bare.id) == []

    # while warned, the monitored rule raises nothing new, however often it is asked
    assert recommendations.evaluate(session, [bare.id]) == []
    assert recommendations.evaluate(session) == []

    # serious incidents after the warning: the first is not enough, the second is
    after_warning = datetime.now(UTC) + timedelta(seconds=30)
    later = after_warning + timedelta(minutes=1)
    fourth = _serious(session, world, bare, ["S-4"], after_warning)
    assert recommendations.evaluate(session, [bare.id], now=later) == []
    fifth = _serious(session, world, bare, ["S-5"], after_warning)
    raised = recommendations.evaluate(session, [bare.id], now=later)
    assert [(r.rule, r.recommended_event) for r in raised] == [
        ("repeat_after_warning", "apply_for_review")
    ]
    assert sorted(json.loads(raised[0].incident_ids)) == sorted(fourth + fifth)
    assert recommendations.evaluate(session, [bare.id], now=later) == []  # one open at a time
    rules = session.scalars(
        select(Recommendation.rule)
        .where(Recommendation.premises_id == bare.id)
        .order_by(Recommendation.id)
    ).all()
    assert rules == ["serious_while_monitored", "repeat_after_warning"]
    assert verify_chains(session).ok


def test_a_warning_does_not_settle_a_recommendation_of_another_premises(
    session, world, bare, make_premises
):
    other = make_premises(world["liv"], world["officer"], evidence=False, name="Other")
    when = datetime.now(UTC) - timedelta(days=1)
    _serious(session, world, bare, ["X-1", "X-2", "X-3"], when)
    _serious(session, world, other, ["Y-1", "Y-2", "Y-3"], when)
    raised = {r.premises_id: r.id for r in recommendations.evaluate(session)}
    assert set(raised) == {bare.id, other.id}
    move(session, bare, world["officer"], "warn")
    session.expire_all()
    assert session.get(Recommendation, raised[bare.id]).status == "acted"
    assert session.get(Recommendation, raised[other.id]).status == "open"
