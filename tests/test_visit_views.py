"""The visit pages through the test client: real sign-in, real CSRF tokens, real database.
Scheduling, recording an outcome, the visits list and its filters, the premises-page
partial, the calendar feed page, and who may see any of it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import pytest
import time_machine
from flask import Flask, render_template
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from licensing.audit.models import AuditEvent
from licensing.timeutil import LONDON
from licensing.visits import services
from licensing.visits.models import CalendarFeed, Visit
from tests.conftest import csrf_from, move, sign_in

NOW = datetime(2026, 1, 12, 10, 0, tzinfo=UTC)  # a Monday, 10:00 in London (GMT)
TODAY = date(2026, 1, 12)


@pytest.fixture
def pinned() -> Iterator[time_machine.Coordinates]:
    """The clock stopped at NOW for the whole test (set-up included)."""
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


class Page(HTMLParser):
    """What the tests read from a page: its title, element ids, error summary links."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.title = ""
        self.ids: set[str] = set()
        self.summary_links: list[str] = []
        self._in_title = False
        self._in_summary = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("id"):
            self.ids.add(str(values["id"]))
        if tag == "title":
            self._in_title = True
        if "govuk-error-summary__list" in (values.get("class") or ""):
            self._in_summary = True
        elif self._in_summary and tag == "a":
            self.summary_links.append(str(values.get("href")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag == "ul":
            self._in_summary = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data


def text(response: Any) -> str:
    return str(response.get_data(as_text=True))


def assert_error_page(response: Any, status: int, *field_ids: str) -> Page:
    """Re-rendered with `status`, "Error:" in the title, and an error summary whose links
    all point at elements on the page (including `field_ids`)."""
    assert response.status_code == status, text(response)[:2000]
    page = Page(text(response))
    assert page.title.strip().startswith("Error:"), page.title
    for field_id in field_ids:
        assert f"#{field_id}" in page.summary_links, page.summary_links
    for href in page.summary_links:
        assert href.startswith("#") and href[1:] in page.ids, (href, page.summary_links)
    return page


def post_form(
    client: FlaskClient, page_url: str, data: dict[str, Any], url: str | None = None
) -> Any:
    """Post the way the page's form would, with the page's CSRF token."""
    token = csrf_from(text(client.get(page_url)))
    return client.post(url or page_url, data={"csrf_token": token, **data})


def visits(session: Session) -> list[Visit]:
    session.expire_all()
    return list(session.scalars(select(Visit).order_by(Visit.id)))


def schedule_data(day: date, officer_id: int, **extra: Any) -> dict[str, Any]:
    return {
        "visit_date": [str(day.day), str(day.month), str(day.year)],
        "visit_time": "22:30",
        "visit_type": "night_time_economy_patrol",
        "officer_id": str(officer_id),
        **extra,
    }


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=LONDON).astimezone(UTC)


# ---- scheduling -----------------------------------------------------------------------------


def test_officer_schedules_a_visit_from_the_premises(
    pinned: Any, client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    premises = world["premises"]
    sign_in(client, world["officer"])
    url = f"/premises/{premises.id}/visits/new"
    page = client.get(url)
    assert page.status_code == 200
    assert "Schedule a visit" in text(page) and premises.name in text(page)

    response = post_form(client, url, schedule_data(TODAY + timedelta(days=4), world["officer"].id))

    assert response.status_code == 302, text(response)[:2000]
    [visit] = visits(session)
    assert response.headers["Location"].endswith(f"/visits/{visit.id}")
    assert (visit.status, visit.visit_type) == ("scheduled", "night_time_economy_patrol")
    assert visit.scheduled_at == at(TODAY + timedelta(days=4), 22, 30)
    shown = client.get(f"/visits/{visit.id}")
    assert "Visit scheduled." in text(shown)
    assert "16 Jan 2026, 22:30" in text(shown)


def test_bad_schedule_shows_the_error_summary(
    pinned: Any, client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    sign_in(client, world["officer"])
    url = f"/premises/{world['premises'].id}/visits/new"

    empty = post_form(client, url, {"visit_time": "25:00"})
    assert_error_page(empty, 422, "visit_date-day", "visit_time", "visit_type")

    past = post_form(client, url, schedule_data(TODAY - timedelta(days=1), world["officer"].id))
    page = assert_error_page(past, 422, "visit_date-day")
    assert "today or in the future" in text(past)
    assert page.title

    council_assignee = post_form(client, url, schedule_data(TODAY, world["council"].id))
    assert_error_page(council_assignee, 422, "officer_id")
    assert visits(session) == []


def test_a_post_without_a_csrf_token_is_refused(
    pinned: Any, client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    sign_in(client, world["officer"])
    response = client.post(
        f"/premises/{world['premises'].id}/visits/new",
        data=schedule_data(TODAY, world["officer"].id),
    )
    assert response.status_code == 400
    assert visits(session) == []


# ---- recording --------------------------------------------------------------------------------


def test_officer_records_an_outcome(
    pinned: Any, client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    visit = services.schedule_visit(
        session,
        world["officer"],
        world["premises"],
        scheduled_at=at(TODAY, 8),
        visit_type="routine",
        officer_id=world["officer"].id,
    )
    sign_in(client, world["officer"])
    url = f"/visits/{visit.id}"
    page = text(client.get(url))
    assert 'value="08:00"' in page  # the booked time, ready to confirm
    response = post_form(
        client,
        url,
        {
            "version": str(visit.version),
            "outcome": "issues_found",
            "visited_date": ["12", "1", "2026"],
            "visited_time": "08:15",
            "findings_public_safety": "Fire exit blocked by kegs",
            "follow_up_actions": "Re-visit in a week",
        },
        url=f"{url}/outcome",
    )
    assert response.status_code == 302, text(response)[:2000]
    [done, following] = visits(session)
    assert (done.status, done.outcome) == ("completed", "issues_found")
    assert done.findings_public_safety == "Fire exit blocked by kegs"
    assert done.visited_at == at(TODAY, 8, 15)
    assert following.status == "proposed"  # the policy's next visit
    shown = text(client.get(url))
    assert "Fire exit blocked by kegs" in shown and "Record the outcome" not in shown


def test_bad_outcome_shows_the_error_summary_and_records_nothing(
    pinned: Any, client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    visit = services.schedule_visit(
        session,
        world["officer"],
        world["premises"],
        scheduled_at=at(TODAY, 8),
        visit_type="routine",
        officer_id=world["officer"].id,
    )
    sign_in(client, world["officer"])
    url = f"/visits/{visit.id}"
    missing = post_form(client, url, {"version": str(visit.version)}, url=f"{url}/outcome")
    assert_error_page(missing, 422, "outcome", "visited_date-day", "visited_time")

    no_findings = post_form(
        client,
        url,
        {
            "version": str(visit.version),
            "outcome": "issues_found",
            "visited_date": ["12", "1", "2026"],
            "visited_time": "08:15",
        },
        url=f"{url}/outcome",
    )
    assert_error_page(no_findings, 422, "findings_crime_and_disorder")
    assert [v.status for v in visits(session)] == ["scheduled"]


def test_a_stale_outcome_form_is_a_conflict(
    pinned: Any, client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    visit = services.schedule_visit(
        session,
        world["officer"],
        world["premises"],
        scheduled_at=at(TODAY, 8),
        visit_type="routine",
        officer_id=world["officer"].id,
    )
    sign_in(client, world["officer"])
    url = f"/visits/{visit.id}"
    token = csrf_from(text(client.get(url)))
    services.record_outcome(
        session,
        world["supervisor"],
        visit,
        visit.version,
        services.Outcome("compliant", at(TODAY, 8, 30)),
    )
    response = client.post(
        f"{url}/outcome",
        data={
            "csrf_token": token,
            "version": "1",
            "outcome": "compliant",
            "visited_date": ["12", "1", "2026"],
            "visited_time": "08:15",
        },
    )
    assert response.status_code == 409
    assert "Someone else changed this visit" in text(response)
    assert visits(session)[0].visited_at == at(TODAY, 8, 30)


# ---- the list -----------------------------------------------------------------------------------


def test_visits_list_filters(
    pinned: Any, client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    mine = services.schedule_visit(
        session,
        world["officer"],
        world["premises"],
        scheduled_at=at(TODAY, 21),
        visit_type="routine",
        officer_id=world["officer"].id,
    )
    theirs = services.schedule_visit(
        session,
        world["supervisor"],
        world["other_premises"],
        scheduled_at=at(TODAY + timedelta(days=10), 21),
        visit_type="test_purchase",
        officer_id=world["supervisor"].id,
    )
    pinned.move_to(NOW + timedelta(days=1))
    sign_in(client, world["officer"])

    def listed(query: str) -> list[int]:
        response = client.get(f"/visits{query}")
        assert response.status_code == 200
        return [int(i) for i in re.findall(r'data-visit="(\d+)"', text(response))]

    assert listed("") == [mine.id, theirs.id]
    assert listed("?mine=1") == [mine.id]
    assert listed("?overdue=1") == [mine.id]
    assert listed("?week=1") == [mine.id]
    assert listed("?mine=1&week=1&overdue=1") == [mine.id]
    assert listed("?status=completed") == []
    assert "Overdue" in text(client.get("/visits?overdue=1"))


# ---- the premises-page partial ----------------------------------------------------------------


def render_partial(app: Flask, session: Session, user: Any, premises: Any) -> str:
    with app.test_request_context():
        return render_template(
            "visits/_premises_visits.html",
            premises=premises,
            visits_context=services.premises_visits_context(session, user, premises),
        )


def test_partial_shows_next_visit_overdue_flag_and_recent_outcomes(
    pinned: Any, app: Flask, session: Session, world: dict[str, Any]
) -> None:
    premises, officer = world["premises"], world["officer"]
    empty = render_partial(app, session, officer, premises)
    assert "No visit is proposed or scheduled" in empty
    assert f"/premises/{premises.id}/visits/new" in empty

    done = services.schedule_visit(
        session,
        officer,
        premises,
        scheduled_at=at(TODAY, 8),
        visit_type="routine",
        officer_id=officer.id,
    )
    services.record_outcome(
        session,
        officer,
        done,
        done.version,
        services.Outcome("issues_found", at(TODAY, 8), {"public_nuisance": "Noise"}),
    )
    services.schedule_visit(
        session,
        officer,
        premises,
        scheduled_at=at(TODAY + timedelta(days=1), 21),
        visit_type="test_purchase",
        officer_id=officer.id,
    )
    pinned.move_to(NOW + timedelta(days=3))
    html = render_partial(app, session, officer, premises)
    assert 'id="visits-overdue"' in html and "1 visit overdue" in html
    assert "Test purchase" in html and "Overdue" in html
    assert "Issues found" in html and "The prevention of public nuisance" in html
    assert "Noise" not in html  # findings text stays on the visit page

    assert render_partial(app, session, world["admin"], premises).strip() == ""


# ---- who may see visits -----------------------------------------------------------------------


@pytest.fixture
def review_visit(session: Session, world: dict[str, Any]) -> Visit:
    """A visit to a premises under review, which its council can otherwise see."""
    move(
        session,
        world["premises"],
        world["supervisor"],
        "apply_for_summary_review",
        received_at=datetime.now(UTC).isoformat(),
        certificate_reference="CERT-1",
    )
    return services.schedule_visit(
        session,
        world["officer"],
        world["premises"],
        scheduled_at=datetime.now(UTC) + timedelta(days=1),
        visit_type="joint_with_council",
        officer_id=world["officer"].id,
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/visits"),
        ("GET", "/visits/{visit}"),
        ("POST", "/visits/{visit}/outcome"),
        ("POST", "/visits/{visit}/cancel"),
        ("GET", "/premises/{premises}/visits/new"),
        ("POST", "/premises/{premises}/visits/new"),
        ("GET", "/calendar-feed"),
        ("POST", "/calendar-feed"),
        ("POST", "/calendar-feed/revoke"),
    ],
)
def test_council_users_get_404_and_admins_403(
    client: FlaskClient,
    session: Session,
    world: dict[str, Any],
    review_visit: Visit,
    method: str,
    path: str,
) -> None:
    url = path.format(visit=review_visit.id, premises=world["premises"].id)
    sign_in(client, world["council"])
    # Control: the council user can see the premises itself.
    home = client.get(f"/premises/{world['premises'].id}")
    assert home.status_code == 200
    assert "Schedule a visit" not in text(home)
    data = {"csrf_token": csrf_from(text(home)), "version": "1", "reason": "x"}
    response = client.open(url, method=method, data=None if method == "GET" else data)
    assert response.status_code == 404
    assert "Page not found" in text(response)

    client.post("/sign-out", data={"csrf_token": csrf_from(text(home))})
    sign_in(client, world["admin"])
    token = csrf_from(text(client.get("/premises")))
    response = client.open(
        url, method=method, data=None if method == "GET" else {**data, "csrf_token": token}
    )
    assert response.status_code == 403
    assert [v.status for v in visits(session)] == ["scheduled"]


# ---- the calendar feed page ---------------------------------------------------------------------


def test_feed_page_shows_the_address_once_and_revokes_it(
    client: FlaskClient, session: Session, world: dict[str, Any], app: Flask
) -> None:
    sign_in(client, world["officer"])
    page = client.get("/calendar-feed")
    assert "You have no calendar address" in text(page)

    created = post_form(client, "/calendar-feed", {})
    assert created.status_code == 200
    assert created.headers["Cache-Control"] == "no-store"
    match = re.search(r'<code id="feed-url"[^>]*>([^<]+)</code>', text(created))
    assert match, text(created)[:2000]
    url = match.group(1)
    base = app.config["BASE_URL"].rstrip("/")
    assert url.startswith(f"{base}/calendar/") and url.endswith(".ics")
    token = url.removeprefix(f"{base}/calendar/").removesuffix(".ics")
    assert len(token) >= 40
    [feed] = session.scalars(select(CalendarFeed)).all()
    assert feed.token_hash != token and token not in feed.token_hash

    again = text(client.get("/calendar-feed"))
    assert token not in again and "cannot be shown again" in again
    assert client.get(f"/calendar/{token}.ics").status_code == 200

    revoked = post_form(client, "/calendar-feed", {}, url="/calendar-feed/revoke")
    assert revoked.status_code == 302
    assert "Calendar address revoked" in text(client.get("/calendar-feed"))
    assert client.get(f"/calendar/{token}.ics").status_code == 404
    assert (
        session.scalar(
            select(func.count()).where(
                AuditEvent.event.in_(["calendar_feed_created", "calendar_feed_revoked"])
            )
        )
        == 2
    )
