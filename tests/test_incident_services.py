"""Recording incidents, linking them to premises, and deciding suggested links."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from licensing.audit.models import AuditEvent
from licensing.audit.services import verify_chains
from licensing.errors import NotFound, ValidationFailed
from licensing.incidents import services
from licensing.incidents.models import Incident, IncidentPerson, PremisesIncidentLink

LAT, LON = 53.404, -2.979
NORTH_PER_M = 1 / 111_195


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


def incident_data(**overrides):
    data = {
        "source": "rms",
        "source_ref": "RMS-100",
        "occurred_at": "2026-11-20T23:30:00Z",
        "category": "Violence and sexual offences",
        "description": "Assault at closing time",
        "location": "Outside the front door",
    }
    data.update(overrides)
    return data


def events_of(session, premises_id):
    return [
        e.event
        for e in session.scalars(
            select(AuditEvent).where(AuditEvent.premises_id == premises_id).order_by(AuditEvent.seq)
        )
    ]


def test_recording_is_idempotent_on_source_and_reference(session, world):
    first = services.record_incident(session, world["officer"], incident_data())
    again = services.record_incident(
        session, world["officer"], incident_data(description="changed")
    )
    assert first.created and not again.created
    assert again.incident.id == first.incident.id
    assert again.incident.description == "Assault at closing time"
    assert (
        session.scalar(
            select(func.count()).select_from(Incident).where(Incident.source_ref == "RMS-100")
        )
        == 1
    )


def test_licence_number_links_confirmed_and_writes_a_premises_event(session, world, premises):
    version = premises.version
    recorded = services.record_incident(
        session,
        world["officer"],
        incident_data(licence_number=premises.licence_number, authority="liv"),
    )
    link = session.scalar(
        select(PremisesIncidentLink).where(PremisesIncidentLink.premises_id == premises.id)
    )
    assert (link.premises_id, link.incident_id, link.status, link.method) == (
        premises.id,
        recorded.incident.id,
        "confirmed",
        "licence_number",
    )
    assert events_of(session, premises.id)[-1] == "incident_linked"
    session.refresh(premises)
    assert premises.version == version  # links never change the premises version
    assert verify_chains(session).ok


def test_uprn_links_confirmed(session, world, premises):
    premises.uprn = "100012345678"
    session.commit()
    services.record_incident(session, world["officer"], incident_data(uprn="100012345678"))
    assert (
        session.scalar(
            select(PremisesIncidentLink.method).where(
                PremisesIncidentLink.premises_id == premises.id
            )
        )
        == "uprn"
    )


def test_proximity_suggests_within_the_radius_with_the_distance(session, world, premises):
    premises.latitude, premises.longitude = LAT, LON
    session.commit()
    services.record_incident(
        session,
        world["officer"],
        incident_data(source_ref="near", latitude=LAT + 20 * NORTH_PER_M, longitude=LON),
    )
    services.record_incident(
        session,
        world["officer"],
        incident_data(source_ref="far", latitude=LAT + 70 * NORTH_PER_M, longitude=LON),
    )
    links = session.scalars(
        select(PremisesIncidentLink).where(PremisesIncidentLink.premises_id == premises.id)
    ).all()
    assert len(links) == 1
    assert links[0].status == "suggested" and links[0].distance_m == pytest.approx(20, abs=0.5)


def test_personal_data_is_held_apart_and_never_in_the_audit_trail(session, world, premises):
    data = incident_data(
        licence_number=premises.licence_number,
        authority="LIV",
        personal_data={
            "people": [
                {
                    "role": "witness",
                    "name": "Wendy Witness",
                    "phone": "07700 900123",
                    "email": "w@example.test",
                }
            ]
        },
    )
    recorded = services.record_incident(session, world["officer"], data)
    person = session.scalar(select(IncidentPerson))
    assert (person.incident_id, person.role, person.name) == (
        recorded.incident.id,
        "witness",
        "Wendy Witness",
    )
    stored = " ".join(e.payload + (e.reason or "") for e in session.scalars(select(AuditEvent)))
    assert "Wendy" not in stored and "07700" not in stored


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"category": "Jaywalking"}, "category"),
        ({"occurred_at": "yesterday"}, "occurred_at"),
        ({"occurred_at": None, "month": "2026-13"}, "month"),
        ({"occurred_at": None}, "occurred_at"),
        ({"latitude": 91, "longitude": 0}, "latitude"),
        ({"latitude": 53.4}, "latitude"),
        ({"source": "twitter"}, "source"),
        ({"personal_data": {"people": [{"role": "bystander"}]}}, "personal_data.people[0]"),
        ({"occurred_at": (datetime.now(UTC) + timedelta(days=2)).isoformat()}, "occurred_at"),
    ],
)
def test_invalid_fields_are_named(session, world, override, field):
    with pytest.raises(ValidationFailed) as raised:
        services.record_incident(session, world["officer"], incident_data(**override))
    assert field in raised.value.errors
    session.rollback()
    assert (
        session.scalar(
            select(func.count()).select_from(Incident).where(Incident.source_ref == "RMS-100")
        )
        == 0
    )


def test_month_only_incidents_count_at_mid_month_and_are_approximate(session, world):
    recorded = services.record_incident(
        session, world["officer"], incident_data(occurred_at=None, month="2026-02")
    )
    incident = recorded.incident
    assert incident.approximate and incident.month == "2026-02"
    assert incident.counted_at == datetime(2026, 2, 15, tzinfo=UTC)  # 28 days / 2


def test_bulk_confirm_and_reject_write_one_event_per_link(session, world, premises):
    premises.latitude, premises.longitude = LAT, LON
    session.commit()
    for n in range(3):
        services.record_incident(
            session,
            world["officer"],
            incident_data(source_ref=f"s{n}", latitude=LAT, longitude=LON),
        )
    ids = session.scalars(
        select(PremisesIncidentLink.id)
        .where(PremisesIncidentLink.premises_id == premises.id)
        .order_by(PremisesIncidentLink.id)
    ).all()
    assert services.decide_links(session, world["officer"], ids[:2], "confirmed") == 2
    assert (
        services.decide_links(session, world["officer"], ids[2:], "rejected", "Different premises")
        == 1
    )
    statuses = session.scalars(
        select(PremisesIncidentLink.status)
        .where(PremisesIncidentLink.premises_id == premises.id)
        .order_by(PremisesIncidentLink.id)
    ).all()
    assert statuses == ["confirmed", "confirmed", "rejected"]
    assert events_of(session, premises.id)[-3:] == [
        "link_confirmed",
        "link_confirmed",
        "link_rejected",
    ]
    # Deciding again changes nothing and writes nothing.
    assert services.decide_links(session, world["officer"], ids, "confirmed") == 0
    assert verify_chains(session).ok


def test_council_and_admin_cannot_decide_links(session, world, premises):
    premises.latitude, premises.longitude = LAT, LON
    session.commit()
    services.record_incident(session, world["officer"], incident_data(latitude=LAT, longitude=LON))
    link_id = session.scalar(
        select(PremisesIncidentLink.id).where(PremisesIncidentLink.premises_id == premises.id)
    )
    with pytest.raises(NotFound):
        services.decide_links(session, world["council"], [link_id], "confirmed")
    assert (
        session.scalar(
            select(PremisesIncidentLink.status).where(
                PremisesIncidentLink.premises_id == premises.id
            )
        )
        == "suggested"
    )


def test_unlink_keeps_the_link_as_rejected_with_the_reason_in_the_trail(session, world, premises):
    services.record_incident(
        session,
        world["officer"],
        incident_data(licence_number=premises.licence_number, authority="LIV"),
    )
    link = session.scalar(
        select(PremisesIncidentLink).where(PremisesIncidentLink.premises_id == premises.id)
    )
    services.unlink(session, world["officer"], link.id, "Wrong premises: it was next door")
    session.refresh(link)
    assert link.status == "rejected"
    event = session.scalar(
        select(AuditEvent)
        .where(AuditEvent.premises_id == premises.id)
        .order_by(AuditEvent.seq.desc())
        .limit(1)
    )
    assert event.event == "incident_unlinked" and event.reason == "Wrong premises: it was next door"
    assert json.loads(event.payload)["link_id"] == link.id


def test_weekly_counts_by_category(session, world, premises):
    now = datetime(2026, 11, 25, 12, tzinfo=UTC)  # a Wednesday
    for n, (when, category) in enumerate(
        [
            ("2026-11-23T10:00:00Z", "Public order"),  # this week (Monday)
            ("2026-11-24T10:00:00Z", "Public order"),
            ("2026-11-17T10:00:00Z", "Drugs"),  # last week
        ]
    ):
        services.record_incident(
            session,
            world["officer"],
            incident_data(
                source_ref=f"w{n}",
                occurred_at=when,
                category=category,
                licence_number=premises.licence_number,
                authority="LIV",
            ),
        )
    starts, series = services.weekly_counts(session, premises.id, weeks=4, now=now)
    assert [s.date().isoformat() for s in starts] == [
        "2026-11-02",
        "2026-11-09",
        "2026-11-16",
        "2026-11-23",
    ]
    assert series == {"Drugs": [0, 0, 1, 0], "Public order": [0, 0, 0, 2]}


def test_weekly_counts_put_each_incident_in_its_week_at_the_edges(session, world, premises):
    now = datetime(2026, 11, 25, 12, tzinfo=UTC)  # a Wednesday; weeks from Mon 2 Nov
    for n, when in enumerate(
        [
            "2026-11-01T23:59:59Z",  # the Sunday before the first week: not counted
            "2026-11-02T00:00:00Z",  # the first instant of the first week
            "2026-11-15T23:59:59.999999Z",  # the last instant of the second week
            "2026-11-16T00:00:00Z",  # the first instant of the third week
            "2026-11-29T23:59:59Z",  # the Sunday ending this week
            "2026-11-30T00:00:00Z",  # next week: not counted
        ]
    ):
        services.record_incident(
            session,
            world["officer"],
            incident_data(
                source_ref=f"edge{n}",
                occurred_at=when,
                category="Drugs",
                licence_number=premises.licence_number,
                authority="LIV",
            ),
        )
    _starts, series = services.weekly_counts(session, premises.id, weeks=4, now=now)
    assert series == {"Drugs": [1, 1, 1, 1]}


def test_council_sees_only_incidents_of_premises_they_may_see(session, world, premises):
    from tests.conftest import move

    recorded = services.record_incident(
        session,
        world["officer"],
        incident_data(licence_number=premises.licence_number, authority="LIV"),
    )
    with pytest.raises(NotFound):
        services.incident_visible_to(session, world["council"], recorded.incident.id)
    move(
        session,
        premises,
        world["supervisor"],
        "apply_for_summary_review",
        received_at="2026-11-20T10:00:00Z",
        certificate_reference="SUPT-1",
    )
    assert (
        services.incident_visible_to(session, world["council"], recorded.incident.id).id
        == recorded.incident.id
    )
    with pytest.raises(NotFound):
        services.incident_visible_to(session, world["other_council"], recorded.incident.id)
