"""Deadlines follow the workflow events: created with the rule, recomputed, closed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from licensing.auth.services import create_token
from licensing.deadlines import rules
from licensing.deadlines.calendar import calendar_from_package
from licensing.deadlines.services import premises_deadlines
from licensing.timeutil import london_today
from tests.conftest import move

CAL = calendar_from_package()


def by_kind(session, premises):
    return {d.kind: d for d in premises_deadlines(session, premises.id)}


def test_a_standard_review_application_sets_its_deadlines(session, world):
    premises = world["premises"]
    move(session, premises, world["officer"], "warn")
    applied = london_today() - timedelta(days=3)
    move(
        session,
        premises,
        world["supervisor"],
        "apply_for_review",
        application_date=applied.isoformat(),
    )
    deadlines = by_kind(session, premises)
    assert set(deadlines) == {"representations_close", "hearing_start_by"}
    closed = applied + timedelta(days=28)
    assert deadlines["representations_close"].due_date == closed
    assert deadlines["hearing_start_by"].due_date == rules.hearing_start_by(closed, CAL)
    assert "20 working days" in deadlines["hearing_start_by"].rule
    assert all(d.status == "open" for d in deadlines.values())


def test_a_summary_review_sets_hour_and_day_deadlines(session, world):
    premises = world["premises"]
    received = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    move(
        session,
        premises,
        world["supervisor"],
        "apply_for_summary_review",
        received_at=received.isoformat(),
        certificate_reference="SUPT-9",
    )
    deadlines = by_kind(session, premises)
    assert deadlines["interim_steps_by"].due_at == rules.interim_steps_by(received, CAL)
    assert deadlines["interim_steps_by"].due_date is None
    assert deadlines["summary_determination_by"].due_date == rules.summary_determination_by(
        received
    )


def test_withdrawal_cancels_and_determination_closes_and_adds_its_own(session, world):
    premises = world["premises"]
    move(session, premises, world["officer"], "warn")
    move(
        session,
        premises,
        world["supervisor"],
        "apply_for_review",
        application_date=london_today().isoformat(),
    )
    move(session, premises, world["supervisor"], "withdraw_review")
    assert {d.status for d in premises_deadlines(session, premises.id)} == {"cancelled"}
    move(
        session,
        premises,
        world["supervisor"],
        "apply_for_review",
        application_date=london_today().isoformat(),
    )
    decided = london_today()
    until = decided + timedelta(days=60)
    move(
        session,
        premises,
        world["supervisor"],
        "record_determination",
        outcome="suspend",
        decision_date=decided.isoformat(),
        suspended_until=until.isoformat(),
    )
    current = [d for d in premises_deadlines(session, premises.id) if d.status != "cancelled"]
    kinds = {d.kind: d for d in current}
    assert kinds["suspension_ends"].due_date == until and kinds["suspension_ends"].status == "open"
    assert kinds["compliance_visit_due"].due_date == decided + timedelta(days=7)
    assert kinds["hearing_start_by"].status == "closed"


def test_the_api_lists_deadlines_with_iso_dates_and_utc_instants(app, session, world):
    premises = world["premises"]
    received = datetime(2026, 10, 23, 14, 30, tzinfo=UTC)
    move(
        session,
        premises,
        world["supervisor"],
        "apply_for_summary_review",
        received_at=received.isoformat(),
        certificate_reference="SUPT-10",
    )
    token = create_token(session, world["officer"].email)
    response = app.test_client().get(
        f"/api/v1/premises/{premises.id}/deadlines", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200
    items = {i["kind"]: i for i in response.get_json()["items"]}
    assert items["interim_steps_by"]["due"] == "2026-10-27T15:30:00Z"
    assert items["summary_determination_by"]["due"] == "2026-11-20"
    assert (
        items["interim_steps_by"]["status"] == "open"
        and "s.53B" in items["interim_steps_by"]["rule"]
    )
    # The council of another authority may not see this premises' deadlines.
    other = create_token(session, world["other_council"].email)
    refused = app.test_client().get(
        f"/api/v1/premises/{premises.id}/deadlines", headers={"Authorization": f"Bearer {other}"}
    )
    assert refused.status_code == 404
    # Its own council may, now that it is under review.
    own = create_token(session, world["council"].email)
    allowed = app.test_client().get(
        f"/api/v1/premises/{premises.id}/deadlines", headers={"Authorization": f"Bearer {own}"}
    )
    assert allowed.status_code == 200 and allowed.get_json()["items"]


def test_the_premises_page_shows_the_deadlines(client, session, world):
    from tests.conftest import sign_in

    premises = world["premises"]
    move(session, premises, world["officer"], "warn")
    move(
        session,
        premises,
        world["supervisor"],
        "apply_for_review",
        application_date=london_today().isoformat(),
    )
    sign_in(client, world["officer"])
    html = client.get(f"/premises/{premises.id}").get_data(as_text=True)
    assert 'id="deadlines-table"' in html
    assert "Hearing must start by" in html and "Representations close" in html


def _standard_review(session, world, applied):
    premises = world["premises"]
    move(session, premises, world["officer"], "warn")
    move(
        session,
        premises,
        world["supervisor"],
        "apply_for_review",
        application_date=applied.isoformat(),
    )
    return premises


def test_recording_the_hearing_sets_the_determination_deadline_and_closes_the_hearing_one(
    session, world
):
    today = london_today()
    premises = _standard_review(session, world, today - timedelta(days=40))
    heard = today - timedelta(days=1)
    move(session, premises, world["officer"], "record_hearing", hearing_date=heard.isoformat())
    assert premises.state == "review"
    deadlines = by_kind(session, premises)
    assert deadlines["determination_by"].due_date == rules.determination_by(heard, CAL)
    assert deadlines["hearing_start_by"].status == "closed"
    # Correcting the hearing date recomputes the deadline that hangs on it.
    earlier = heard - timedelta(days=1)
    move(session, premises, world["officer"], "record_hearing", hearing_date=earlier.isoformat())
    assert by_kind(session, premises)["determination_by"].due_date == rules.determination_by(
        earlier, CAL
    )


def test_notification_sets_the_appeal_period_and_an_appeal_settles_when_the_decision_takes_effect(
    session, world
):
    from sqlalchemy import select

    from licensing.deadlines.services import decision_takes_effect
    from licensing.premises.models import ReviewApplication
    from licensing.premises.services import open_review

    today = london_today()
    premises = _standard_review(session, world, today - timedelta(days=40))
    move(
        session,
        premises,
        world["supervisor"],
        "record_determination",
        outcome="revoke",
        decision_date=(today - timedelta(days=3)).isoformat(),
    )
    assert open_review(session, premises.id) is None
    notified = today - timedelta(days=2)
    move(
        session,
        premises,
        world["officer"],
        "record_decision_notified",
        notified_on=notified.isoformat(),
    )
    deadlines = by_kind(session, premises)
    assert deadlines["appeal_by"].due_date == notified + timedelta(days=20)
    review = session.scalar(
        select(ReviewApplication).where(ReviewApplication.premises_id == premises.id)
    )
    assert decision_takes_effect(review) == (
        notified + timedelta(days=21),
        "the day after the appeal period ends, if no appeal is lodged",
    )
    move(
        session,
        premises,
        world["officer"],
        "record_appeal",
        appeal_stage="lodged",
        appeal_date=today.isoformat(),
    )
    assert by_kind(session, premises)["appeal_by"].status == "closed"
    assert decision_takes_effect(review)[0] is None
    move(
        session,
        premises,
        world["supervisor"],
        "record_appeal",
        appeal_stage="dismissed",
        appeal_date=today.isoformat(),
    )
    session.refresh(review)
    assert decision_takes_effect(review)[0] == today
    assert premises.state == "action"


def test_an_appeal_outcome_needs_the_appeal_lodged_first(session, world):
    import pytest

    from licensing.errors import Refused

    today = london_today()
    premises = _standard_review(session, world, today - timedelta(days=40))
    move(
        session,
        premises,
        world["supervisor"],
        "record_determination",
        outcome="revoke",
        decision_date=today.isoformat(),
    )
    with pytest.raises(Refused, match="lodged before its outcome"):
        move(
            session,
            premises,
            world["officer"],
            "record_appeal",
            appeal_stage="allowed",
            appeal_date=today.isoformat(),
        )


def test_interim_steps_close_their_deadline_on_a_summary_review(session, world):
    premises = world["premises"]
    received = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=5)
    move(
        session,
        premises,
        world["supervisor"],
        "apply_for_summary_review",
        received_at=received.isoformat(),
        certificate_reference="SUPT-11",
    )
    decided = received + timedelta(hours=3)
    move(
        session,
        premises,
        world["officer"],
        "record_interim_steps",
        decided_at=decided.isoformat(),
        interim_steps="Licence suspended pending the review",
    )
    assert by_kind(session, premises)["interim_steps_by"].status == "closed"
    assert by_kind(session, premises)["summary_determination_by"].status == "open"


def test_events_that_the_records_rule_out_are_not_offered(session, world):
    from licensing.premises import workflow

    officer = world["officer"]
    premises = _standard_review(session, world, london_today() - timedelta(days=30))
    offered = {r.name for r in workflow.events_offered(session, premises, officer)}
    assert "record_hearing" in offered and "record_interim_steps" not in offered
    summary = world["other_premises"]
    move(
        session,
        summary,
        world["supervisor"],
        "apply_for_summary_review",
        received_at=datetime.now(UTC).isoformat(),
        certificate_reference="S-1",
    )
    assert "record_interim_steps" in {
        r.name for r in workflow.events_offered(session, summary, officer)
    }
    move(
        session,
        premises,
        world["supervisor"],
        "record_determination",
        outcome="no_action",
        decision_date=london_today().isoformat(),
    )
    assert premises.state == "monitored"
    offered = {r.name for r in workflow.events_offered(session, premises, officer)}
    assert {"record_decision_notified", "record_appeal", "warn"} <= offered


def test_the_team_calendar_follows_the_council_rule(client, session, world):
    from tests.conftest import sign_in

    # Applied 20 days ago: representations close in about a week, the hearing is due
    # within the calendar's eight weeks.
    premises = _standard_review(session, world, london_today() - timedelta(days=20))
    sign_in(client, world["officer"])
    html = client.get("/calendar").get_data(as_text=True)
    assert "Team calendar" in html and premises.name in html
    assert "Hearing must start by" in html
    assert 'data-kind="visit"' in html  # the review proposed a visit (police only)

    council = client.application.test_client()
    sign_in(council, world["council"])
    page = council.get("/calendar").get_data(as_text=True)
    assert premises.name in page and 'data-kind="visit"' not in page

    other = client.application.test_client()
    sign_in(other, world["other_council"])
    assert premises.name not in other.get("/calendar").get_data(as_text=True)

    admin = client.application.test_client()
    sign_in(admin, world["admin"])
    assert admin.get("/calendar").status_code == 403


def test_correcting_the_application_date_recomputes_its_deadlines(session, world):
    import pytest

    from licensing.errors import Forbidden, Refused

    wrong = london_today() - timedelta(days=5)
    premises = _standard_review(session, world, wrong)
    right = wrong - timedelta(days=2)
    with pytest.raises(Forbidden):
        move(
            session,
            premises,
            world["officer"],
            "correct_review_dates",
            application_date=right.isoformat(),
        )
    move(
        session,
        premises,
        world["supervisor"],
        "correct_review_dates",
        application_date=right.isoformat(),
    )
    deadlines = by_kind(session, premises)
    closed = rules.representations_close(right)
    assert deadlines["representations_close"].due_date == closed
    assert deadlines["hearing_start_by"].due_date == rules.hearing_start_by(closed, CAL)
    assert f"application of {right.isoformat()}" in deadlines["representations_close"].rule
    with pytest.raises(Refused, match="standard review has an application date"):
        move(
            session,
            premises,
            world["supervisor"],
            "correct_review_dates",
            received_at=datetime.now(UTC).isoformat(),
        )
