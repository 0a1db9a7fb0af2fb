"""Partnership meetings: record one for a premises or an area, attendees by
organisation, and an action that becomes an item of the premises' action plan."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from licensing.actionplans import meetings, services
from licensing.actionplans.models import MeetingAction, PartnershipMeeting
from licensing.audit.models import AuditEvent
from licensing.errors import Refused, ValidationFailed
from licensing.timeutil import london_today
from tests.conftest import csrf_from, sign_in

TODAY = london_today()


def text(response: Any) -> str:
    return str(response.get_data(as_text=True))


def record(session: Session, world: dict[str, Any], premises: Any = None, **extra: Any) -> Any:
    return meetings.create_meeting(
        session,
        world["officer"],
        premises=premises,
        authority=None if premises else world["liv"],
        held_on=TODAY,
        title="Problem-solving meeting",
        minutes="Discussed disorder at closing time",
        decisions="An action plan will be agreed",
        attendees=[
            meetings.AttendeeInput("police", "PC Jones"),
            meetings.AttendeeInput("council_licensing", "Ms Shah"),
            meetings.AttendeeInput("licence_holder", "Dee Supervisor"),
        ],
        actions=[meetings.ActionInput("Fit CCTV at the door", "Licence holder", None)],
        **extra,
    )


def test_a_premises_meeting_is_recorded_and_audited(session, world):
    meeting = record(session, world, world["premises"])
    assert [a.organisation for a in meeting.attendees] == [
        "police",
        "council_licensing",
        "licence_holder",
    ]
    event = session.scalars(
        select(AuditEvent).where(AuditEvent.event == "partnership_meeting_recorded")
    ).one()
    assert event.premises_id == world["premises"].id
    assert "Dee Supervisor" not in event.payload and "PC Jones" not in event.payload


def test_bad_meeting_input_names_the_fields(session, world):
    with pytest.raises(ValidationFailed) as error:
        meetings.create_meeting(
            session,
            world["officer"],
            premises=None,
            authority=None,
            held_on=None,
            title="",
            minutes="",
            decisions="",
            attendees=[meetings.AttendeeInput("the press", "x")],
            actions=[meetings.ActionInput("", "someone", None)],
        )
    assert {"authority_id", "held_on", "title", "attendees-0-organisation"} <= set(
        error.value.errors
    )
    assert "actions-0-description" in error.value.errors
    assert session.scalars(select(PartnershipMeeting)).all() == []


def test_an_action_becomes_a_plan_item_once(session, world):
    premises = world["premises"]
    meeting = record(session, world, premises)
    action = meeting.actions[0]
    with pytest.raises(Refused, match="no open action plan"):
        meetings.action_to_plan_item(session, world["officer"], action, seen_lock_version=1)
    plan = services.agree_plan(
        session,
        world["officer"],
        premises,
        agreed_on=TODAY,
        review_on=TODAY + timedelta(days=28),
        agreed_with="Dee",
        items=[services.ItemInput("Door staff", "DPS", TODAY + timedelta(days=7))],
        reason="r",
        meeting_id=meeting.id,
    )
    item = meetings.action_to_plan_item(session, world["officer"], action, seen_lock_version=1)
    assert item.plan_id == plan.id and item.due_on == plan.review_on
    assert action.plan_item_id == item.id and len(plan.items) == 2
    added = session.scalars(
        select(AuditEvent).where(AuditEvent.event == "action_plan_item_added")
    ).one()
    assert f'"meeting_action_id":{action.id}' in added.payload
    with pytest.raises(Refused, match="already"):
        meetings.action_to_plan_item(session, world["officer"], action, seen_lock_version=2)


def test_meeting_pages_area_meeting_and_the_button(
    client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    premises = world["premises"]
    plan = services.agree_plan(
        session,
        world["officer"],
        premises,
        agreed_on=TODAY,
        review_on=TODAY + timedelta(days=28),
        agreed_with="Dee",
        items=[services.ItemInput("Door staff", "DPS", TODAY + timedelta(days=7))],
        reason="r",
    )
    sign_in(client, world["officer"])
    page = text(client.get(f"/premises/{premises.id}"))
    assert 'id="meetings-link"' in page
    new = "/meetings/new"
    token = csrf_from(text(client.get(new)))
    response = client.post(
        new,
        data={
            "csrf_token": token,
            "authority_id": str(world["liv"].id),
            "held_on": [str(TODAY.day), str(TODAY.month), str(TODAY.year)],
            "title": "Night-time economy area meeting",
            "attendee_1_organisation": "fire",
            "attendee_1_name": "Station manager",
            "action_1_description": "Keep the fire exit clear",
            "action_1_owner": "Licence holder",
        },
    )
    assert response.status_code == 302, text(response)[:3000]
    meeting = session.scalars(select(PartnershipMeeting)).one()
    assert meeting.premises_id is None and meeting.authority_id == world["liv"].id
    page = text(client.get(f"/meetings/{meeting.id}"))
    assert "Fire and rescue: Station manager" in page
    assert f"of {premises.name}" in page  # the button for the area's open plan
    action = session.scalars(select(MeetingAction)).one()
    response = client.post(
        f"/meetings/{meeting.id}/actions/{action.id}/plan-item",
        data={"csrf_token": csrf_from(page), "version": "1", "premises_id": str(premises.id)},
    )
    assert response.status_code == 302, text(response)[:3000]
    session.expire_all()
    assert action.plan_item_id is not None and len(plan.items) == 2
    listing = text(client.get("/meetings"))
    assert "Night-time economy area meeting" in listing


def test_council_users_get_404_on_meetings(
    client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    meeting = record(session, world, world["premises"])
    sign_in(client, world["council"])
    assert client.get(f"/meetings/{meeting.id}").status_code == 404
    assert client.get("/meetings").status_code == 404
