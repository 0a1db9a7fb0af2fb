"""Alerts: deadlines across Christmas, recommendations, the 07:00 digest in GMT and BST,
digest-only users, and links back to BASE_URL, delivered through a real SMTP server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from licensing.deadlines.calendar import calendar_from_package
from licensing.deadlines.models import Deadline
from licensing.incidents.recommendations import evaluate
from licensing.notifications.alerts import (
    deadline_stage,
    enqueue_digests,
    set_alert_mode,
    visit_alerts,
    working_days_before,
)
from licensing.notifications.models import OutboxEmail
from licensing.notifications.outbox import message_id_for
from licensing.notifications.scheduler import run_digest, run_sweep
from tests import smtp_support
from tests.conftest import cancel_proposed_visits, move, record_evidence
from tests.smtp_support import SmtpServer, html_part, text_part

smtp_server = smtp_support.smtp_server  # the fixture, shared by the SMTP test modules

BASE = "https://licensing.example.test"
CAL = calendar_from_package()


def london(text: str) -> datetime:
    """A UTC instant from a London wall-clock time."""
    from licensing.timeutil import parse_instant

    return parse_instant(text)


@pytest.fixture
def base_url(app: Flask) -> str:
    app.config["BASE_URL"] = BASE
    return BASE


@pytest.fixture
def christmas_review(session: Session, world: dict[str, Any]) -> Deadline:
    """A review applied for on 1 December 2026: representations close on Tuesday
    29 December, the first working day after Christmas and the Boxing Day substitute."""
    premises = world["premises"]
    move(session, premises, world["officer"], "warn")
    with time_machine.travel(datetime(2026, 12, 1, 12, tzinfo=UTC), tick=False):
        move(
            session,
            premises,
            world["supervisor"],
            "apply_for_review",
            application_date="2026-12-01",
        )
    cancel_proposed_visits(session, premises, world["officer"])
    deadline = session.scalar(
        select(Deadline).where(
            Deadline.premises_id == premises.id, Deadline.kind == "representations_close"
        )
    )
    assert deadline is not None and deadline.due_date.isoformat() == "2026-12-29"
    return deadline


def test_two_working_days_before_counts_round_christmas() -> None:
    due = datetime(2026, 12, 29).date()
    assert working_days_before(due, 2, CAL).isoformat() == "2026-12-23"
    assert working_days_before(due, 7, CAL).isoformat() == "2026-12-16"
    # An ordinary week: two working days before a Thursday is the Tuesday.
    assert working_days_before(datetime(2027, 3, 11).date(), 2, CAL).isoformat() == "2027-03-09"


def test_deadline_alerts_across_christmas(
    app: Flask,
    session: Session,
    world: dict[str, Any],
    christmas_review: Deadline,
    smtp_server: SmtpServer,
    base_url: str,
) -> None:
    officer, supervisor = world["officer"], world["supervisor"]

    def subjects(user: Any) -> list[str]:
        return [m["Subject"] for m in smtp_server.to(user.email)]

    # 06:00 London, before the digest hour, so only immediate alerts go.
    with time_machine.travel(london("2026-12-15T06:00"), tick=False):
        run_sweep(app)
    assert subjects(officer) == []

    with time_machine.travel(london("2026-12-16T06:00"), tick=False):
        run_sweep(app)
        run_sweep(app)  # a second pass the same day adds nothing
    t7 = "7 working days left: representations close – The Crown"
    assert subjects(officer) == [t7]
    assert subjects(supervisor) == [t7]
    assert smtp_server.to(world["admin"].email) == []

    # The 22nd is still in the T-7 stage. Counting calendar days, or working days
    # without bank holidays (Friday 25th would be T-2), would alert too early.
    with time_machine.travel(london("2026-12-22T06:00"), tick=False):
        run_sweep(app)
    assert subjects(officer) == [t7]

    with time_machine.travel(london("2026-12-23T06:00"), tick=False):
        run_sweep(app)
    t2 = "2 working days left: representations close – The Crown"
    assert subjects(officer) == [t7, t2]

    with time_machine.travel(london("2026-12-29T06:00"), tick=False):
        run_sweep(app)
    with time_machine.travel(london("2026-12-30T06:00"), tick=False):
        run_sweep(app)
        run_sweep(app)
    due = "Due today: representations close – The Crown"
    overdue = "Overdue: representations close – The Crown"
    assert subjects(officer) == [t7, t2, due, overdue]
    assert subjects(supervisor) == [t7, t2, due, overdue]

    message = smtp_server.to(officer.email)[1]
    text = text_part(message)
    assert "A deadline is 2 working days away." in text
    assert "Due: Tuesday 29 December 2026" in text
    assert f"{BASE}/premises/{world['premises'].id}" in text
    assert f'href="{BASE}/premises/{world["premises"].id}"' in html_part(message)
    key = f"deadline:{christmas_review.id}:2026-12-29:T-2:user:{officer.id}"
    assert message["Message-ID"] == message_id_for(key)


def test_catching_up_after_downtime_sends_only_the_current_stage(
    app: Flask,
    session: Session,
    world: dict[str, Any],
    christmas_review: Deadline,
    smtp_server: SmtpServer,
) -> None:
    # The scheduler was down from before the 16th until the 24th.
    with time_machine.travel(london("2026-12-24T06:30"), tick=False):
        run_sweep(app)
    assert [m["Subject"] for m in smtp_server.to(world["officer"].email)] == [
        "1 working day left: representations close – The Crown"
    ]


def test_digest_only_users_get_no_immediate_alerts(
    app: Flask,
    session: Session,
    world: dict[str, Any],
    christmas_review: Deadline,
    smtp_server: SmtpServer,
) -> None:
    set_alert_mode(session, world["supervisor"], "digest")
    with time_machine.travel(london("2026-12-23T06:00"), tick=False):
        run_sweep(app)
    assert len(smtp_server.to(world["officer"].email)) == 1
    assert smtp_server.to(world["supervisor"].email) == []


def test_a_closed_deadline_raises_nothing(
    app: Flask,
    session: Session,
    world: dict[str, Any],
    christmas_review: Deadline,
    smtp_server: SmtpServer,
) -> None:
    christmas_review.status = "closed"
    session.commit()
    with time_machine.travel(london("2026-12-23T06:00"), tick=False):
        run_sweep(app)
    assert [m["Subject"] for m in smtp_server.to(world["officer"].email)] == []


def test_hour_deadlines_are_due_until_their_moment_then_overdue() -> None:
    moment = datetime(2026, 12, 3, 15, 30, tzinfo=UTC)
    deadline = Deadline(kind="interim_steps_by", due_at=moment, status="open")
    assert deadline_stage(deadline, moment - timedelta(hours=1), CAL) == "due"
    assert deadline_stage(deadline, moment + timedelta(minutes=1), CAL) == "overdue"
    assert deadline_stage(deadline, moment - timedelta(days=1), CAL) == "T-2"


def test_a_new_recommendation_alerts_the_case_officer_once(
    app: Flask, session: Session, world: dict[str, Any], smtp_server: SmtpServer, base_url: str
) -> None:
    premises = world["premises"]
    for _ in range(2):  # the world's evidence makes three serious incidents in 28 days
        record_evidence(session, premises)
    [recommendation] = evaluate(session)
    run_sweep(app)
    run_sweep(app)
    [message] = smtp_server.to(world["officer"].email)
    assert message["Subject"] == "Recommendation: warn – The Crown"
    text = text_part(message)
    assert "3 serious incidents in 28 days (threshold 3)" in text
    assert f"{BASE}/recommendations" in text
    assert smtp_server.to(world["supervisor"].email) == []
    assert message["Message-ID"] == message_id_for(
        f"recommendation:{recommendation.id}:user:{world['officer'].id}"
    )


def test_a_digest_only_case_officer_gets_the_recommendation_in_the_digest(
    app: Flask, session: Session, world: dict[str, Any], smtp_server: SmtpServer
) -> None:
    set_alert_mode(session, world["officer"], "digest")
    for _ in range(2):
        record_evidence(session, world["premises"])
    evaluate(session)
    run_sweep(app)
    assert smtp_server.to(world["officer"].email) == []
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    with time_machine.travel(london(f"{tomorrow}T07:00"), tick=False):
        run_digest(app)
    [digest] = smtp_server.to(world["officer"].email)
    assert "OPEN RECOMMENDATIONS (1)" in text_part(digest)


@pytest.mark.parametrize(
    ("before", "at", "utc_hour"),
    [
        ("2027-01-15T06:59", "2027-01-15T07:00", 7),  # GMT: 07:00 London is 07:00 UTC
        ("2027-07-15T06:59", "2027-07-15T07:00", 6),  # BST: 07:00 London is 06:00 UTC
    ],
)
def test_the_digest_goes_at_seven_london_time(
    app: Flask,
    session: Session,
    world: dict[str, Any],
    smtp_server: SmtpServer,
    base_url: str,
    before: str,
    at: str,
    utc_hour: int,
) -> None:
    move(session, world["premises"], world["officer"], "warn")
    assert london(at).hour == utc_hour
    with time_machine.travel(london(before), tick=False):
        assert run_digest(app) == 0
    with time_machine.travel(london(at), tick=False):
        assert run_digest(app) == 2  # the officer and the supervisor
    with time_machine.travel(london(at) + timedelta(hours=5), tick=False):
        assert run_digest(app) == 0  # once a day, however often it runs
    officer_mail = smtp_server.to(world["officer"].email)
    assert len(officer_mail) == 1
    day = london(at).strftime("%A %-d %B %Y")
    assert officer_mail[0]["Subject"] == f"Licensing digest for {day}"
    text = text_part(officer_mail[0])
    assert "The Crown" in text and "Warned" in text
    assert "The Swan" not in text  # monitored: not under escalation
    assert f"{BASE}/premises/{world['premises'].id}" in text
    # Admins and council users get no digest; nobody with nothing to report does either.
    assert smtp_server.to(world["admin"].email) == []
    assert smtp_server.to(world["council"].email) == []
    with time_machine.travel(london(at) + timedelta(days=1), tick=False):
        move(session, world["premises"], world["officer"], "stand_down")
        assert enqueue_digests(session) == 0


def test_visit_alerts_wait_for_the_visits_package(session: Session) -> None:
    # licensing.visits.models is another engineer's; until it exists, nothing happens.
    assert visit_alerts(session, datetime.now(UTC)) == 0
    assert session.scalar(select(func.count()).select_from(OutboxEmail)) == 0


def test_visit_due_tomorrow_then_overdue_alerts_go_once_to_the_booked_officer(
    app: Flask,
    session: Session,
    world: dict[str, Any],
    smtp_server: SmtpServer,
    base_url: str,
) -> None:
    from licensing.visits import services as visit_services

    premises = world["premises"]
    booked = world["officer"]
    with time_machine.travel(london("2027-03-01T09:00"), tick=False):
        visit_services.schedule_visit(
            session,
            world["supervisor"],
            premises,
            scheduled_at=london("2027-03-03T22:30"),
            visit_type="night_time_economy_patrol",
            officer_id=booked.id,
        )
    with time_machine.travel(london("2027-03-01T09:00"), tick=False):
        run_sweep(app)
    assert smtp_server.to(booked.email) == []  # due in two days: nothing yet
    with time_machine.travel(london("2027-03-02T06:00"), tick=False):
        run_sweep(app)
        run_sweep(app)  # a second pass sends nothing again
    [tomorrow] = smtp_server.to(booked.email)
    assert tomorrow["Subject"] == f"Visit due tomorrow – {premises.name}"
    assert f"{BASE}/premises/{premises.id}" in text_part(tomorrow)
    with time_machine.travel(london("2027-03-04T06:00"), tick=False):
        run_sweep(app)
    subjects = [m["Subject"] for m in smtp_server.to(booked.email)]
    assert subjects == [f"Visit due tomorrow – {premises.name}", f"Visit overdue – {premises.name}"]
    assert smtp_server.to(world["supervisor"].email) == []  # visit alerts go to the officer


def test_the_digest_lists_the_officers_visits(
    app: Flask,
    session: Session,
    world: dict[str, Any],
    smtp_server: SmtpServer,
    base_url: str,
) -> None:
    from licensing.visits import services as visit_services

    premises, officer = world["premises"], world["officer"]
    with time_machine.travel(london("2027-03-01T09:00"), tick=False):
        visit_services.schedule_visit(
            session,
            world["supervisor"],
            premises,
            scheduled_at=london("2027-03-04T21:00"),
            visit_type="test_purchase",
            officer_id=officer.id,
        )
    with time_machine.travel(london("2027-03-02T07:05"), tick=False):
        run_digest(app)
    [digest] = [
        m for m in smtp_server.to(officer.email) if m["Subject"].startswith("Licensing digest")
    ]
    text = text_part(digest)
    assert "VISITS DUE IN THE NEXT" in text
    assert f"Thursday 4 March 2027: Test purchase (scheduled), {premises.name}" in text
    assert premises.name in html_part(digest)
