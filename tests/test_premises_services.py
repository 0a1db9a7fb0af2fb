"""Premises register services: adding, editing (events, versions, validation), the
council visibility rule, and finding premises (filters and keyset pages)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from licensing.audit.models import AuditEvent, AuditPersonalValue, premises_chain
from licensing.audit.services import verify_chains
from licensing.errors import Conflict, Forbidden, NotFound, Refused, ValidationFailed
from licensing.premises import services
from licensing.premises.models import Premises
from licensing.premises.services import PremisesFilter
from tests.conftest import move


def events_of(session, premises: Premises) -> list[AuditEvent]:
    return list(
        session.scalars(
            select(AuditEvent)
            .where(AuditEvent.chain == premises_chain(premises.id))
            .order_by(AuditEvent.seq)
        )
    )


def personal_of(session, event: AuditEvent) -> dict[str, tuple[str | None, str | None]]:
    return {
        v.field: (v.old_value, v.new_value)
        for v in session.scalars(
            select(AuditPersonalValue).where(AuditPersonalValue.event_id == event.id)
        )
    }


@pytest.fixture
def team(session, make_authority, make_user):
    return {
        "liv": make_authority("LIV", "Liverpool City Council"),
        "officer": make_user("officer"),
    }


# ---- add_premises ---------------------------------------------------------------


def test_add_premises_registers_in_monitoring_with_one_event(session, team):
    officer = team["officer"]
    premises = services.add_premises(
        session,
        officer,
        team["liv"],
        "  LIV/PL/0001 ",
        {
            "name": " The Crown ",
            "postcode": "l1 8jq",
            "licence_holder": "Crown Pubs Ltd",
            "dps": "Alice Example",
            "uprn": "38123456",
        },
    )
    session.expire_all()
    stored = session.get(Premises, premises.id)
    assert (stored.state, stored.version) == ("monitored", 1)
    assert (stored.licence_number, stored.name, stored.postcode) == (
        "LIV/PL/0001",
        "The Crown",
        "L1 8JQ",
    )
    assert stored.case_officer_id == officer.id  # the police user who added it

    [event] = events_of(session, stored)
    assert (event.event, event.seq, event.to_state, event.actor_id) == (
        "premises_registered",
        1,
        "monitored",
        officer.id,
    )
    payload = json.loads(event.payload)
    assert payload["licence_number"] == "LIV/PL/0001"
    assert payload["authority"] == "LIV"
    assert payload["fields"]["name"] == {"old": None, "new": "The Crown"}
    assert payload["fields"]["postcode"] == {"old": None, "new": "L1 8JQ"}
    assert payload["fields"]["licence_holder"] == {"personal": True}
    assert payload["fields"]["dps"] == {"personal": True}
    assert "Alice Example" not in event.payload and "Crown Pubs Ltd" not in event.payload
    assert personal_of(session, event) == {
        "licence_holder": (None, "Crown Pubs Ltd"),
        "dps": (None, "Alice Example"),
    }


def test_add_premises_refuses_a_duplicate_licence_number_in_one_authority(
    session, team, make_authority, make_premises
):
    make_premises(team["liv"], team["officer"], licence_number="PL/1")
    with pytest.raises(Refused):
        make_premises(team["liv"], team["officer"], licence_number="PL/1")
    # the same number in another authority is a different licence
    other = make_premises(make_authority("SEF"), team["officer"], licence_number="PL/1")
    assert other.licence_number == "PL/1"
    assert session.scalar(select(func.count()).select_from(Premises)) == 2


def test_add_premises_needs_licence_number_and_name(session, team, subtests):
    cases = [
        ("", {"name": "X"}, "licence_number"),
        ("  ", {"name": "X"}, "licence_number"),
        ("PL/9", {}, "name"),
        ("PL/9", {"name": "   "}, "name"),
        ("PL/9", {"name": "X", "latitude": "99"}, "latitude"),
    ]
    for licence, details, field in cases:
        with subtests.test(licence=licence, details=details):
            with pytest.raises(ValidationFailed) as raised:
                services.add_premises(session, team["officer"], team["liv"], licence, details)
            assert field in raised.value.errors
            assert session.scalar(select(func.count()).select_from(Premises)) == 0
            on_premises = select(func.count()).where(AuditEvent.premises_id.is_not(None))
            assert session.scalar(on_premises) == 0


def test_council_users_cannot_add_premises(session, team, make_user):
    council = make_user("council", "LIV")
    with pytest.raises(Forbidden):
        services.add_premises(session, council, team["liv"], "PL/1", {"name": "X"})
    assert session.scalar(select(func.count()).select_from(Premises)) == 0


# ---- update_details -------------------------------------------------------------


@pytest.fixture
def crown(session, team, make_premises):
    premises = make_premises(
        team["liv"],
        team["officer"],
        name="The Crown",
        licence_holder="Crown Pubs Ltd",
        dps="Alice Example",
        postcode="L1 8JQ",
    )
    return {**team, "premises": premises}


def test_update_names_the_event_after_what_changed(
    session, crown, make_user, make_premises, subtests
):
    officer = crown["officer"]
    other_officer = make_user("supervisor")
    cases = [
        ({"dps": "Bob Newman"}, "dps_changed"),
        ({"licence_holder": "New Owner Ltd"}, "licence_transferred"),
        ({"case_officer_id": str(other_officer.id)}, "case_officer_changed"),
        ({"opening_hours": "Mon-Sun 10:00-23:00"}, "details_changed"),
        ({"name": "Renamed"}, "details_changed"),
        ({"dps": "Bob Newman", "opening_hours": "Mon-Sun 10:00-23:00"}, "details_changed"),
        ({"dps": "Bob Newman", "licence_holder": "New Owner Ltd"}, "details_changed"),
    ]
    for changes, event_name in cases:
        with subtests.test(changes=changes):
            premises = make_premises(crown["liv"], officer, dps="Alice", licence_holder="Old Ltd")
            assert services.update_details(session, premises, officer, 1, changes, "Update")
            assert premises.version == 2
            events = events_of(session, premises)
            assert len(events) == 2
            assert (events[-1].event, events[-1].reason) == (event_name, "Update")
            assert json.loads(events[-1].payload)["version"] == 2
            assert set(json.loads(events[-1].payload)["changes"]) == set(changes)


def test_update_payload_old_and_new_for_plain_fields_personal_flag_for_people(
    session, crown, make_user
):
    premises, officer = crown["premises"], crown["officer"]
    supervisor = make_user("supervisor")
    services.update_details(
        session,
        premises,
        officer,
        1,
        {
            "name": "The Crown & Anchor",
            "dps": "Bob Newman",
            "licence_holder": "New Owner Ltd",
            "latitude": "53.4",
            "case_officer_id": supervisor.id,
        },
        "Transfer",
    )
    last = events_of(session, premises)[-1]
    changes = json.loads(last.payload)["changes"]
    assert changes == {
        "name": {"old": "The Crown", "new": "The Crown & Anchor"},
        "latitude": {"old": None, "new": 53.4},
        "case_officer_id": {"old": officer.id, "new": supervisor.id},
        "dps": {"personal": True},
        "licence_holder": {"personal": True},
    }
    assert personal_of(session, last) == {
        "dps": ("Alice Example", "Bob Newman"),
        "licence_holder": ("Crown Pubs Ltd", "New Owner Ltd"),
    }
    assert "Bob Newman" not in last.payload and "Alice Example" not in last.payload
    session.expire_all()
    assert (premises.name, premises.dps, premises.case_officer_id) == (
        "The Crown & Anchor",
        "Bob Newman",
        supervisor.id,
    )


def test_update_with_a_stale_version_is_a_conflict(session, crown, subtests):
    premises, officer = crown["premises"], crown["officer"]
    for seen in (0, 2):
        with subtests.test(seen=seen):
            with pytest.raises(Conflict) as raised:
                services.update_details(session, premises, officer, seen, {"name": "Late"}, "x")
            assert raised.value.status == 409
            session.expire_all()
            assert (premises.name, premises.version) == ("The Crown", 1)
            assert len(events_of(session, premises)) == 1


def test_update_after_someone_elses_edit_is_a_conflict(session, crown):
    premises, officer = crown["premises"], crown["officer"]
    services.update_details(session, premises, officer, 1, {"name": "First"}, "x")
    with pytest.raises(Conflict):
        services.update_details(session, premises, officer, 1, {"name": "Second"}, "x")
    session.expire_all()
    assert (premises.name, premises.version) == ("First", 2)


def test_a_no_op_edit_writes_nothing(session, crown):
    premises, officer = crown["premises"], crown["officer"]
    same = {
        "name": " The Crown ",
        "postcode": "l18jq",
        "dps": "Alice Example",
        "licence_holder": "Crown Pubs Ltd",
        "licence_status": "current",
        "case_officer_id": str(officer.id),
    }
    assert services.update_details(session, premises, officer, 1, same, "Nothing") is False
    session.commit()
    session.expire_all()
    assert premises.version == 1
    assert len(events_of(session, premises)) == 1


def test_workflow_events_and_edits_share_one_version(session, crown):
    premises, officer = crown["premises"], crown["officer"]
    move(session, premises, officer, "warn")
    assert premises.version == 2
    with pytest.raises(Conflict):
        services.update_details(session, premises, officer, 1, {"name": "Late"}, "x")
    services.update_details(session, premises, officer, 2, {"name": "Now"}, "x")
    assert premises.version == 3
    assert premises.state == "warned"
    assert verify_chains(session).ok


VALIDATION_CASES = [
    ({"latitude": "91"}, "latitude"),
    ({"latitude": "-90.5"}, "latitude"),
    ({"latitude": "north"}, "latitude"),
    ({"longitude": "180.01"}, "longitude"),
    ({"uprn": "12AB"}, "uprn"),
    ({"uprn": "1234567890123"}, "uprn"),
    ({"uprn": "-1"}, "uprn"),
    ({"licence_status": "expired"}, "licence_status"),
    ({"licence_status": ""}, "licence_status"),
    ({"name": ""}, "name"),
    ({"case_officer_id": "999999"}, "case_officer_id"),
    ({"case_officer_id": "abc"}, "case_officer_id"),
]


def test_update_validation_names_the_field_and_changes_nothing(session, crown, subtests):
    premises, officer = crown["premises"], crown["officer"]
    for raw, field in VALIDATION_CASES:
        with subtests.test(raw=raw):
            with pytest.raises(ValidationFailed) as raised:
                services.update_details(session, premises, officer, 1, raw, "x")
            assert field in raised.value.errors
            session.expire_all()
            assert premises.version == 1
            assert len(events_of(session, premises)) == 1


def test_validation_reports_every_bad_field_at_once(session, crown):
    premises, officer = crown["premises"], crown["officer"]
    with pytest.raises(ValidationFailed) as raised:
        services.update_details(
            session, premises, officer, 1, {"latitude": "100", "uprn": "x", "name": ""}, "x"
        )
    assert set(raised.value.errors) == {"latitude", "uprn", "name"}


def test_case_officer_must_be_police(session, crown, make_user):
    premises, officer = crown["premises"], crown["officer"]
    council = make_user("council", "LIV")
    with pytest.raises(ValidationFailed) as raised:
        services.update_details(session, premises, officer, 1, {"case_officer_id": council.id}, "x")
    assert "case_officer_id" in raised.value.errors


ACCEPTED_CASES = [
    ({"latitude": "90", "longitude": "-180"}, {"latitude": 90.0, "longitude": -180.0}),
    ({"latitude": " 53.41 "}, {"latitude": 53.41}),
    ({"uprn": "000012345678"}, {"uprn": "000012345678"}),
    ({"licence_status": "suspended"}, {"licence_status": "suspended"}),
    ({"postcode": "  l2 2ab "}, {"postcode": "L2 2AB"}),
    ({"postcode": "sw1a1aa"}, {"postcode": "SW1A 1AA"}),
    ({"postcode": "M1  1AE"}, {"postcode": "M1 1AE"}),
    ({"postcode": "not a postcode"}, {"postcode": "NOT A POSTCODE"}),
]


def test_update_accepts_and_normalises(session, crown, make_premises, subtests):
    officer = crown["officer"]
    for raw, expected in ACCEPTED_CASES:
        with subtests.test(raw=raw):
            premises = make_premises(crown["liv"], officer, postcode="L1 8JQ")
            assert services.update_details(session, premises, officer, 1, raw, "x")
            session.expire_all()
            assert {name: getattr(premises, name) for name in expected} == expected
            assert premises.version == 2


@pytest.mark.parametrize(
    ("given", "normal"),
    [("l1 8jq", "L1 8JQ"), ("SW1A1AA", "SW1A 1AA"), ("ec1a 1bb", "EC1A 1BB"), ("", "")],
)
def test_normalise_postcode(given, normal):
    assert services.normalise_postcode(given) == normal


def test_council_users_cannot_edit(session, crown, make_user):
    premises = crown["premises"]
    council = make_user("council", "LIV")
    with pytest.raises(Forbidden):
        services.update_details(session, premises, council, 1, {"name": "X"}, "x")
    session.expire_all()
    assert (premises.name, premises.version) == ("The Crown", 1)


# ---- the council visibility rule ------------------------------------------------


def test_council_sees_only_own_authority_in_review_or_action(session, world, subtests):
    council, supervisor = world["council"], world["supervisor"]
    own, other = world["premises"], world["other_premises"]
    path = [
        ("monitored", None, {}),
        ("warned", "warn", {}),
        ("review", "apply_for_review", {"application_date": "2025-01-02"}),
        ("action", "record_determination", {"outcome": "revoke", "decision_date": "2025-01-03"}),
    ]
    for state, event, params in path:
        if event:
            move(session, own, supervisor, event, **params)
            move(session, other, supervisor, event, **params)
        with subtests.test(state=state):
            assert own.state == other.state == state
            with pytest.raises(NotFound):
                services.get_premises(session, council, other.id)
            listed = services.list_premises(session, council, PremisesFilter(), 1, 50)
            if state in ("review", "action"):
                assert services.get_premises(session, council, own.id) is own
                assert [p.id for p in listed[0]] == [own.id] and listed[1] == 1
            else:
                with pytest.raises(NotFound):
                    services.get_premises(session, council, own.id)
                assert listed == ([], 0)
            # police and admin see everything
            for user in (world["officer"], world["supervisor"], world["admin"]):
                assert services.get_premises(session, user, other.id) is other
    with pytest.raises(NotFound):
        services.get_premises(session, world["officer"], 999_999)


def test_council_visibility_follows_the_state_back(session, world):
    council, supervisor, own = world["council"], world["supervisor"], world["premises"]
    move(session, own, supervisor, "warn")
    move(session, own, supervisor, "apply_for_review", application_date="2025-01-02")
    assert services.get_premises(session, council, own.id) is own
    move(session, own, supervisor, "withdraw_review")
    with pytest.raises(NotFound):
        services.get_premises(session, council, own.id)
    assert services.premises_after(session, council, PremisesFilter(), None, 10) == ([], None)


# ---- finding premises -----------------------------------------------------------


@pytest.fixture
def register(session, make_authority, make_user, make_premises):
    liv = make_authority("LIV")
    sef = make_authority("SEF")
    officer = make_user("officer")
    rows = [
        (liv, "LIV/001", "The Crown", "L1 8JQ"),
        (liv, "LIV/002", "Crown and Anchor", "L2 2AB"),
        (liv, "LIV/003", "The Swan", "L18 1AA"),
        (sef, "SEF/001", "The Lamb", "PR8 1AB"),
        (sef, "SEF/002", "Bootle Arms", "L20 3CD"),
    ]
    premises = {
        name: make_premises(authority, officer, licence_number=number, name=name, postcode=pc)
        for authority, number, name, pc in rows
    }
    move(session, premises["The Swan"], officer, "warn")
    move(session, premises["Bootle Arms"], officer, "warn")
    return {"officer": officer, **premises}


def names(items) -> list[str]:
    return [p.name for p in items]


FILTER_CASES = [
    (
        PremisesFilter(),
        ["Bootle Arms", "Crown and Anchor", "The Crown", "The Lamb", "The Swan"],
    ),
    (PremisesFilter(state="warned"), ["Bootle Arms", "The Swan"]),
    (PremisesFilter(state="review"), []),
    (PremisesFilter(authority="sef"), ["Bootle Arms", "The Lamb"]),
    (PremisesFilter(authority=" LIV ", state="monitored"), ["Crown and Anchor", "The Crown"]),
    (PremisesFilter(q="crown"), ["Crown and Anchor", "The Crown"]),
    (PremisesFilter(q="  CROWN "), ["Crown and Anchor", "The Crown"]),
    (PremisesFilter(q="sef/00"), ["Bootle Arms", "The Lamb"]),
    (PremisesFilter(q="LIV/003"), ["The Swan"]),
    (PremisesFilter(q="L1 8JQ"), ["The Crown"]),
    (PremisesFilter(q="l18jq"), ["The Crown"]),
    (PremisesFilter(q="L18"), ["The Crown", "The Swan"]),  # L1 8.. and L18 ..
    (PremisesFilter(q="pr8 1"), ["The Lamb"]),
    (PremisesFilter(q="nowhere"), []),
    (PremisesFilter(q="crown", state="warned"), []),
]


def test_list_premises_filters(session, register, subtests):
    for filters, expected in FILTER_CASES:
        with subtests.test(filters=filters):
            items, total = services.list_premises(session, register["officer"], filters, 1, 50)
            assert names(items) == expected
            assert total == len(expected)


def test_list_premises_pages_by_name(session, register):
    officer = register["officer"]
    first, total = services.list_premises(session, officer, PremisesFilter(), 1, 2)
    second, _ = services.list_premises(session, officer, PremisesFilter(), 2, 2)
    third, _ = services.list_premises(session, officer, PremisesFilter(), 3, 2)
    assert total == 5
    assert names(first + second + third) == [
        "Bootle Arms",
        "Crown and Anchor",
        "The Crown",
        "The Lamb",
        "The Swan",
    ]


def walk(session, user, filters: PremisesFilter, limit: int) -> tuple[list[int], list]:
    seen: list[int] = []
    cursors: list = []
    after = None
    for _ in range(50):
        items, after = services.premises_after(session, user, filters, after, limit)
        seen.extend(p.id for p in items)
        cursors.append(after)
        if after is None:
            return seen, cursors
        assert len(items) == limit  # a page with a next cursor is full
        assert after == items[-1].id
    raise AssertionError("keyset pagination did not end")


def test_premises_after_walks_every_premises_once(session, register, subtests):
    officer = register["officer"]
    every = sorted(p.id for p in session.scalars(select(Premises)))
    assert len(every) == 5
    for limit in (1, 2, 3, 5, 6):
        with subtests.test(limit=limit):
            seen, cursors = walk(session, officer, PremisesFilter(), limit)
            assert seen == every  # no duplicates, no gaps, in id order
            assert cursors[-1] is None
            assert len(cursors) == -(-len(every) // limit)
    warned = select(Premises.id).where(Premises.state == "warned").order_by(Premises.id)
    seen, _ = walk(session, officer, PremisesFilter(state="warned"), 1)
    assert seen == list(session.scalars(warned)) and len(seen) == 2


def test_premises_after_with_filters_and_new_rows_between_pages(
    session, register, make_premises, make_authority
):
    officer = register["officer"]
    first, cursor = services.premises_after(session, officer, PremisesFilter(q="crown"), None, 1)
    assert names(first) == ["The Crown"] and cursor == first[0].id
    # a premises added between pages has a higher id, so it appears later, once
    liv = register["The Crown"].authority
    late = make_premises(liv, officer, licence_number="LIV/999", name="Crown Late")
    rest, end = services.premises_after(session, officer, PremisesFilter(q="crown"), cursor, 5)
    assert names(rest) == ["Crown and Anchor", "Crown Late"]
    assert rest[-1].id == late.id
    assert end is None
    # an exactly full last page has no next cursor
    two, none = services.premises_after(session, officer, PremisesFilter(state="warned"), None, 2)
    assert names(two) == ["The Swan", "Bootle Arms"] and none is None
