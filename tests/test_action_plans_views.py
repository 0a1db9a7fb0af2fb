"""Action plan pages, the visit form's plan items, and the overdue/missed-review alerts
through the outbox to a real SMTP server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import time_machine
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from licensing.actionplans import services
from licensing.actionplans.models import ActionPlan
from licensing.audit.models import AuditEvent
from licensing.notifications.models import OutboxEmail
from licensing.notifications.scheduler import run_sweep
from licensing.timeutil import LONDON, london_today
from licensing.visits import services as visit_services
from tests import smtp_support
from tests.conftest import cancel_proposed_visits, csrf_from, move, sign_in
from tests.smtp_support import SmtpServer

smtp_server = smtp_support.smtp_server

TODAY = london_today()


def text(response: Any) -> str:
    return str(response.get_data(as_text=True))


def boxes(day: Any) -> list[str]:
    return [str(day.day), str(day.month), str(day.year)]


def post_form(client: FlaskClient, page_url: str, data: dict[str, Any], url: str) -> Any:
    token = csrf_from(text(client.get(page_url)))
    return client.post(url, data={"csrf_token": token, **data})


def agree_data(**extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "agreed_with": "Dee Supervisor",
        "agreed_on": boxes(TODAY),
        "review_on": boxes(TODAY + timedelta(days=28)),
        "reason": "Fights at closing time",
    }
    for n, (what, due) in enumerate(
        [("Two SIA door staff", 7), ("CCTV kept 31 days", 14), ("Challenge 25 training", 21)],
        start=1,
    ):
        data[f"item_{n}_description"] = what
        data[f"item_{n}_owner"] = "Licence holder"
        data[f"item_{n}_due_on"] = boxes(TODAY + timedelta(days=due))
    data.update(extra)
    return data


def test_officer_agrees_a_plan_and_sees_it_on_the_premises_page(
    client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    premises = world["premises"]
    move(session, premises, world["officer"], "warn")
    sign_in(client, world["officer"])
    page = text(client.get(f"/premises/{premises.id}"))
    assert 'id="no-action-plan"' in page and 'id="agree-plan-link"' in page
    url = f"/premises/{premises.id}/action-plans/new"
    response = post_form(client, url, agree_data(), url)
    assert response.status_code == 302, text(response)[:3000]
    plan = session.scalars(select(ActionPlan)).one()
    assert [i.description for i in plan.items] == [
        "Two SIA door staff",
        "CCTV kept 31 days",
        "Challenge 25 training",
    ]
    page = text(client.get(f"/premises/{premises.id}"))
    assert 'id="action-plan-items"' in page and "Challenge 25 training" in page
    assert 'id="agree-plan-link"' not in page  # one open plan at a time


def test_bad_plan_form_shows_errors_and_saves_nothing(
    client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    premises = world["premises"]
    sign_in(client, world["officer"])
    url = f"/premises/{premises.id}/action-plans/new"
    data = agree_data(item_2_due_on=boxes(TODAY + timedelta(days=60)), item_3_owner="")
    response = post_form(client, url, data, url)
    assert response.status_code == 422
    page = text(response)
    assert "An item must be due by the review date" in page and "Enter who will do it" in page
    assert "Dee Supervisor" in page  # what was typed is kept
    assert session.scalars(select(ActionPlan)).all() == []


def test_update_items_with_a_stale_version_gets_the_conflict_message(
    client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    plan = services.agree_plan(
        session,
        world["officer"],
        world["premises"],
        agreed_on=TODAY,
        review_on=TODAY + timedelta(days=28),
        agreed_with="Dee",
        items=[services.ItemInput("CCTV", "DPS", TODAY + timedelta(days=3))],
        reason="r",
    )
    item_id = plan.items[0].id
    sign_in(client, world["officer"])
    url = f"/action-plans/{plan.id}"
    token = csrf_from(text(client.get(url)))
    services.add_item(  # someone else changes the plan meanwhile
        session,
        world["supervisor"],
        plan,
        1,
        services.ItemInput("Door staff", "DPS", TODAY + timedelta(days=3)),
        "phone",
    )
    response = client.post(
        f"{url}/items",
        data={"csrf_token": token, "version": "1", f"item_{item_id}": "done", "reason": "seen"},
    )
    assert response.status_code == 409
    assert "Someone else changed this action plan" in text(response)
    session.expire_all()
    assert plan.items[0].status == "agreed"
    response = post_form(
        client, url, {"version": "2", f"item_{item_id}": "done", "reason": "seen"}, f"{url}/items"
    )
    assert response.status_code == 302
    session.expire_all()
    assert plan.items[0].status == "done"


def test_council_and_admin_cannot_see_plans(
    client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    plan = services.agree_plan(
        session,
        world["officer"],
        world["premises"],
        agreed_on=TODAY,
        review_on=TODAY + timedelta(days=28),
        agreed_with="Dee",
        items=[services.ItemInput("CCTV", "DPS", TODAY + timedelta(days=3))],
        reason="r",
    )
    sign_in(client, world["council"])
    assert client.get(f"/action-plans/{plan.id}").status_code == 404
    client.post("/sign-out", data={"csrf_token": csrf_from(text(client.get("/")))})
    admin = FlaskClient(client.application, response_wrapper=client.response_wrapper)
    sign_in(admin, world["admin"])
    assert admin.get(f"/action-plans/{plan.id}").status_code == 403


def test_a_visit_records_item_statuses_attributed_to_it(
    client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    premises = world["premises"]
    move(session, premises, world["officer"], "warn")
    plan = services.agree_plan(
        session,
        world["officer"],
        premises,
        agreed_on=TODAY,
        review_on=TODAY + timedelta(days=28),
        agreed_with="Dee",
        items=[
            services.ItemInput("Door staff", "Licence holder", TODAY + timedelta(days=7)),
            services.ItemInput("CCTV", "DPS", TODAY + timedelta(days=7)),
        ],
        reason="r",
    )
    door, cctv = plan.items
    visit = visit_services.schedule_visit(
        session,
        world["officer"],
        premises,
        scheduled_at=datetime.now(UTC) + timedelta(hours=1),
        visit_type="compliance_check",
        officer_id=world["officer"].id,
    )
    sign_in(client, world["officer"])
    url = f"/visits/{visit.id}"
    page = text(client.get(url))
    assert 'id="plan-items"' in page and "Door staff" in page
    now = datetime.now(UTC).astimezone(LONDON) - timedelta(minutes=1)
    response = post_form(
        client,
        url,
        {
            "version": str(visit.version),
            "outcome": "issues_found",
            "visited_date": boxes(now.date()),
            "visited_time": now.strftime("%H:%M"),
            "findings_crime_and_disorder": "No door staff on at 23:00",
            f"plan_item_{door.id}": "not_done",
            f"plan_item_{cctv.id}": "",
        },
        f"{url}/outcome",
    )
    assert response.status_code == 302, text(response)[:3000]
    session.expire_all()
    assert (door.status, door.status_visit_id, cctv.status) == ("not_done", visit.id, "agreed")
    assert plan.status == "failed"
    changed = session.scalars(
        select(AuditEvent).where(AuditEvent.event == "action_plan_item_status_changed")
    ).one()
    assert changed.reason == f"Recorded at visit {visit.id}"
    assert f'"visit_id":{visit.id}' in changed.payload


def test_overdue_item_and_missed_review_alert_the_case_officer_once(
    app: Flask,
    session: Session,
    world: dict[str, Any],
    smtp_server: SmtpServer,
) -> None:
    premises = world["premises"]
    move(session, premises, world["officer"], "warn")
    cancel_proposed_visits(session, premises, world["officer"])
    services.agree_plan(
        session,
        world["officer"],
        premises,
        agreed_on=TODAY,
        review_on=TODAY + timedelta(days=10),
        agreed_with="Dee",
        items=[services.ItemInput("Door staff", "Licence holder", TODAY + timedelta(days=3))],
        reason="r",
    )
    premises.case_officer_id = world["officer"].id
    session.commit()
    start = datetime.now(UTC)

    def subjects(user: Any) -> list[str]:
        return sorted(m["Subject"] for m in smtp_server.to(user.email))

    with time_machine.travel(start + timedelta(days=5), tick=False):
        run_sweep(app)
        run_sweep(app)  # a second tick adds nothing
    assert subjects(world["officer"]) == ["Action plan item overdue – The Crown"]
    assert subjects(world["supervisor"]) == []  # there is a case officer
    with time_machine.travel(start + timedelta(days=12), tick=False):
        run_sweep(app)
        run_sweep(app)
    got = subjects(world["officer"])
    assert got.count("Action plan review date missed – The Crown") == 1
    assert got.count("Action plan item overdue – The Crown") == 1
    assert any(s.startswith("Recommendation: apply for review") for s in got), got
    plan = session.scalars(select(ActionPlan)).one()
    session.refresh(plan)
    assert plan.status == "failed"
    keys = session.scalars(select(OutboxEmail.dedupe_key)).all()
    assert len(keys) == len(set(keys))


def test_with_no_case_officer_every_supervisor_is_alerted(
    app: Flask, session: Session, world: dict[str, Any], smtp_server: SmtpServer, make_user: Any
) -> None:
    premises = world["premises"]
    premises.case_officer_id = None
    session.commit()
    cancel_proposed_visits(session, premises, world["officer"])
    second = make_user("supervisor")
    services.agree_plan(
        session,
        world["officer"],
        premises,
        agreed_on=TODAY,
        review_on=TODAY + timedelta(days=10),
        agreed_with="Dee",
        items=[services.ItemInput("Door staff", "Licence holder", TODAY + timedelta(days=3))],
        reason="r",
    )
    with time_machine.travel(datetime.now(UTC) + timedelta(days=5), tick=False):
        run_sweep(app)
    for user in (world["supervisor"], second):
        assert [m["Subject"] for m in smtp_server.to(user.email)] == [
            "Action plan item overdue – The Crown"
        ]
    assert smtp_server.to(world["officer"].email) == []
