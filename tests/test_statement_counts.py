"""Every page a signed-in user reaches in normal work runs a fixed number of SQL
statements, however much data there is (issue 8: "no query whose count grows with page
size").

Each page is requested as each role over a small world, the world is then grown (more
premises in every state, many more incidents, suggested links, visits, deadlines,
history events and bundle items at the premises the pages look at, more rows than one
page shows), and each page is requested again. A page's statements are counted on the
engine (`before_cursor_execute`), as tests/test_dashboard.py does for the dashboard.
The status each role gets must not change either (a 403 stays a 403).

GET routes left out, and why:
- `/assets/…`, `/healthz`, `/readyz`, `/metrics`: no signed-in user; fixed queries.
- `/sign-in`, `/sign-in/oidc…`, `/password-reset…`: before signing in (OIDC is off here).
- `/calendar/<token>.ics`: a calendar client's feed, not a page; tested in test_ics.py.
- `/bundles/<id>/pdf`, `/bundles/<id>/zip`, `/attachments/<id>`, the `rejected.csv`
  downloads, `/api/v1/bundles/<id>/pdf|zip`: they send a stored file by its hash.
- `/attachments/<id>/redacted-copy`, `/incidents/<id>/attachments`,
  `/visits/<id>/attachments`: upload forms over one record, no lists.
- `/bundles/<id>/items/<id>` (GET): the one-item exclusion form.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from html import unescape
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event
from sqlalchemy.orm import Session

from licensing.audit.services import append_event
from licensing.auth.models import User
from licensing.auth.services import create_token
from licensing.deadlines.models import Deadline
from licensing.evidence import services as bundles
from licensing.incidents import services as incident_services
from licensing.incidents.models import (
    Incident,
    IncidentPerson,
    PremisesIncidentLink,
    Recommendation,
)
from licensing.premises import services as premises_services
from licensing.premises.models import LicensingAuthority, Premises, ReviewApplication
from licensing.timeutil import to_london
from licensing.visits.models import Visit
from tests.conftest import sign_in

ROLES = ("officer", "supervisor", "council", "admin")
PAGE_SIZE = 5  # small pages, so the grown world has many more rows than one page shows


def _premises(
    session: Session, authority: LicensingAuthority, officer: User, tag: str, state: str
) -> Premises:
    premises = premises_services.add_premises(
        session,
        officer,
        authority,
        f"{tag}/{state}",
        {"name": f"{tag} {state}", "postcode": "L1 1AA", "latitude": 53.4, "longitude": -2.98},
    )
    premises.state = state
    session.commit()
    return premises


def _incidents(
    session: Session,
    premises: Premises,
    officer: User,
    tag: str,
    n: int,
    status: str = "confirmed",
) -> list[Incident]:
    """`n` incidents from yesterday, each with a person, linked to `premises`."""
    now = datetime.now(UTC)
    made = []
    for i in range(n):
        incident = Incident(
            source="rms",
            source_ref=f"{tag}-{premises.id}-{status}-{i}",
            occurred_at=now - timedelta(days=1, minutes=i),
            counted_at=now - timedelta(days=1, minutes=i),
            category="Public order" if i % 2 else "Drugs",
            location_text="Outside",
            latitude=53.4,
            longitude=-2.98,
            authority_id=premises.authority_id,
        )
        session.add(incident)
        session.flush()
        session.add(IncidentPerson(incident_id=incident.id, role="victim", name=f"Person {i}"))
        session.add(
            PremisesIncidentLink(
                premises_id=premises.id,
                incident_id=incident.id,
                status=status,
                method="officer" if status == "confirmed" else "proximity",
                distance_m=None if status == "confirmed" else 12.0,
                decided_by_id=officer.id if status == "confirmed" else None,
            )
        )
        made.append(incident)
    session.commit()
    return made


def _casework(session: Session, premises: Premises, officer: User, tag: str, n: int) -> None:
    """`n` visits, deadlines, recommendations and history events at `premises`."""
    today = to_london(datetime.now(UTC)).date()
    review = ReviewApplication(premises_id=premises.id, kind="standard", application_date=today)
    session.add(review)
    session.flush()
    for i in range(n):
        session.add_all(
            [
                Visit(
                    premises_id=premises.id,
                    visit_type="routine",
                    status="scheduled" if i % 2 else "completed",
                    visit_date=today + timedelta(days=i % 10 - 3),
                    officer_id=officer.id,
                ),
                Deadline(
                    premises_id=premises.id,
                    review_id=review.id,
                    kind=f"{tag}-kind-{i}",
                    due_date=today + timedelta(days=i % 20 - 5),
                    rule="r",
                ),
                Recommendation(
                    premises_id=premises.id,
                    rule="serious_while_monitored",
                    recommended_event="warn",
                    summary="s",
                ),
            ]
        )
    session.flush()
    for i in range(n):
        append_event(
            session,
            event="details_changed",
            actor_id=officer.id,
            premises_id=premises.id,
            reason=f"{tag} change {i}",
            payload={"changes": {"case_officer_id": {"old": None, "new": officer.id}}},
        )
    session.commit()


def _grow(session: Session, world: dict[str, Any], tag: str, n: int) -> None:
    """`n` more premises in each state in both authorities, and `n` more incidents,
    suggested links, visits, deadlines, recommendations and history events at the
    premises the pages look at."""
    officer = world["officer"]
    for authority in (world["liv"], world["sef"]):
        for state in ("monitored", "warned", "review", "action"):
            for i in range(n):
                extra = _premises(session, authority, officer, f"{tag}{i}-{authority.code}", state)
                _incidents(session, extra, officer, f"{tag}x", 1)
    subject = world["premises"]
    _incidents(session, subject, officer, tag, n * 3)
    _incidents(session, subject, officer, tag, n, status="suggested")
    _casework(session, subject, officer, tag, n)
    # The incident page's incident gains suggested links to more premises.
    for i in range(n):
        other = _premises(session, world["liv"], officer, f"{tag}-near-{i}", "review")
        session.add(
            PremisesIncidentLink(
                premises_id=other.id,
                incident_id=world["incident"].id,
                status="suggested",
                method="proximity",
                distance_m=20.0 + i,
            )
        )
    session.commit()


def _bundle(session: Session, world: dict[str, Any]) -> int:
    """An issued, shared bundle of the subject premises, holding what it has now."""
    bundle = bundles.create_bundle(session, world["supervisor"], world["premises"])
    bundle = bundles.issue_bundle(session, world["supervisor"], bundle, bundle.lock_version)
    bundles.share_bundle(session, world["supervisor"], bundle)
    return bundle.id


def _pages(world: dict[str, Any], bundle_id: int) -> list[str]:
    p = world["premises"].id
    incident = world["incident"].id
    visit = world["visit"].id
    user = world["officer"].id
    return [
        "/",
        "/premises",
        "/premises?state=review",
        "/premises?authority=LIV&state=review&q=review",
        "/premises?q=l1",
        "/premises?page=2",
        f"/premises/{p}",
        f"/premises/{p}/timeline",
        f"/premises/{p}/edit",
        "/premises/new",
        "/premises/import",
        "/premises/export.csv?state=review",
        "/incidents",
        "/incidents?linked=linked&category=Drugs",
        "/incidents?page=2",
        f"/incidents/{incident}",
        "/incidents/new",
        "/incidents/import",
        "/incidents/suggestions",
        "/incidents/export.csv?category=Drugs",
        "/recommendations",
        "/asb-reports/new",
        "/visits",
        "/visits?status=all",
        "/visits?mine=1&status=all",
        f"/visits/{visit}",
        f"/premises/{p}/visits/new",
        "/calendar",
        "/calendar-feed",
        "/bundles",
        f"/bundles/{bundle_id}",
        f"/premises/{p}/bundles/new",
        "/reports",
        "/reports?authority=LIV",
        "/map",
        "/map?state=review",
        "/account/alerts",
        "/account/password",
        "/admin/users",
        f"/admin/users/{user}",
        "/admin/outbox",
        "/api/v1/premises",
        "/api/v1/premises?state=review&authority=LIV",
        f"/api/v1/premises/{p}",
        f"/api/v1/premises/{p}/history",
        f"/api/v1/premises/{p}/incidents",
        f"/api/v1/premises/{p}/incidents?status=suggested",
        f"/api/v1/premises/{p}/deadlines",
        f"/api/v1/bundles/{bundle_id}",
    ]


def _count(app: Flask, client: FlaskClient, path: str, headers: dict[str, str]) -> tuple[int, int]:
    """(status, statements) of one GET."""
    engine = app.extensions["db_engine"]
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        response = client.get(path, headers=headers)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return response.status_code, len(seen)


def _measure(
    app: Flask, clients: dict[str, FlaskClient], tokens: dict[str, str], pages: list[str]
) -> dict[tuple[str, str], tuple[int, int]]:
    out = {}
    for role, client in clients.items():
        for path in pages:
            headers = (
                {"Authorization": f"Bearer {tokens[role]}"} if path.startswith("/api/") else {}
            )
            out[(role, path)] = _count(app, client, path, headers)
    return out


@pytest.fixture
def world(
    app: Flask,
    session: Session,
    make_authority: Callable[..., LicensingAuthority],
    make_user: Callable[..., User],
) -> dict[str, Any]:
    """Two authorities, a user of each role, one premises of each state in each authority,
    and the premises the pages look at (in review, so the council sees it too) with a few
    incidents, a suggested link, visits, deadlines and history."""
    app.config["PAGE_SIZE"] = PAGE_SIZE
    app.config["API_PAGE_SIZE"] = PAGE_SIZE
    liv = make_authority("LIV", "Liverpool City Council")
    sef = make_authority("SEF", "Sefton Council")
    officer = make_user("officer")
    world: dict[str, Any] = {
        "liv": liv,
        "sef": sef,
        "officer": officer,
        "supervisor": make_user("supervisor"),
        "council": make_user("council", "LIV"),
        "admin": make_user("admin"),
    }
    subject = _premises(session, liv, officer, "Subject", "review")
    world["premises"] = subject
    world["incident"] = _incidents(session, subject, officer, "first", 2)[0]
    _incidents(session, subject, officer, "first", 1, status="suggested")
    _casework(session, subject, officer, "first", 2)
    world["visit"] = session.query(Visit).filter_by(premises_id=subject.id).first()
    for authority in (liv, sef):
        for state in ("monitored", "warned", "review", "action"):
            extra = _premises(session, authority, officer, f"first-{authority.code}", state)
            _incidents(session, extra, officer, "firstx", 1)
    return world


def test_no_page_runs_more_statements_with_more_data(
    app: Flask, session: Session, world: dict[str, Any]
) -> None:
    clients = {}
    tokens = {}
    for role in ROLES:
        clients[role] = app.test_client()
        sign_in(clients[role], world[role])
        tokens[role] = create_token(session, world[role].email)
        # A token's first use records when it was last used (then at most every few
        # minutes): done here, so it is not counted against the first API page.
        clients[role].get(
            "/api/v1/openapi.json", headers={"Authorization": f"Bearer {tokens[role]}"}
        )
    small_bundle = _bundle(session, world)
    small = _measure(app, clients, tokens, _pages(world, small_bundle))

    _grow(session, world, "grown", 8)
    large_bundle = _bundle(session, world)
    large = _measure(app, clients, tokens, _pages(world, large_bundle))

    # The grown world really is bigger than a page where it matters.
    assert (
        session.query(PremisesIncidentLink)
        .filter_by(premises_id=world["premises"].id, status="confirmed")
        .count()
        > 5 * PAGE_SIZE
    )
    assert len(bundles.items_of(session, session.get(bundles.Bundle, large_bundle))) > 5 * PAGE_SIZE

    def by_page(measured: dict[tuple[str, str], tuple[int, int]]) -> dict[tuple[str, str], Any]:
        return {
            (role, path.replace(f"/{small_bundle}", "/B").replace(f"/{large_bundle}", "/B")): v
            for (role, path), v in measured.items()
        }

    small_pages, large_pages = by_page(small), by_page(large)
    grew = {
        key: (small_pages[key], large_pages[key])
        for key in small_pages
        if small_pages[key] != large_pages[key]
    }
    assert not grew, "\n".join(f"{k}: {s} -> {g}" for k, (s, g) in sorted(grew.items()))
    # Every page was really served to someone (not all refused).
    served = {path for (_role, path), (status, _n) in small_pages.items() if status == 200}
    assert served == {path for (_role, path) in small_pages}, sorted(
        {path for (_role, path) in small_pages} - served
    )


# ---- keyset pages: what keeps a long list's statements and rows to one page ----------------


def test_a_premises_incident_history_pages_by_keyset(
    app: Flask, client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    """The premises page shows 50 confirmed incidents at a time, newest first, with the
    total; "Older incidents" carries the last one shown and the pages join up."""
    subject = world["premises"]
    _incidents(session, subject, world["officer"], "many", 120)
    total = (
        session.query(PremisesIncidentLink)
        .filter_by(premises_id=subject.id, status="confirmed")
        .count()
    )
    sign_in(client, world["officer"])
    seen: list[int] = []
    path = f"/premises/{subject.id}"
    pages = 0
    while path:
        html = client.get(path).get_data(as_text=True)
        table = html.split('id="linked-incidents"')[1].split("</table>")[0]
        ids = [int(i) for i in re.findall(r'href="/incidents/(\d+)"', table)]
        assert 0 < len(ids) <= 50
        assert f"({total} in all;" in table
        seen.extend(ids)
        pages += 1
        older = re.search(r'id="older-incidents" href="([^"#]+)', html)
        path = unescape(older.group(1)) if older else ""
    expected = [
        link.incident_id
        for link in incident_services.linked_incidents(session, subject.id, "confirmed")
    ]
    assert seen == expected and len(seen) == total
    assert pages == -(-total // 50)


def test_the_api_pages_a_premises_incidents_with_people_for_the_police(
    app: Flask, session: Session, world: dict[str, Any]
) -> None:
    subject = world["premises"]
    _incidents(session, subject, world["officer"], "api", 12)
    token = create_token(session, world["officer"].email)
    client = app.test_client()
    seen: list[int] = []
    cursor = ""
    while True:
        body = client.get(
            f"/api/v1/premises/{subject.id}/incidents?limit=5&cursor={cursor}",
            headers={"Authorization": f"Bearer {token}"},
        ).get_json()
        assert len(body["items"]) <= 5
        assert all(item["personal_data"]["people"] for item in body["items"])
        seen.extend(item["id"] for item in body["items"])
        if body["next_cursor"] is None:
            break
        cursor = body["next_cursor"]
    expected = [
        link.incident_id
        for link in incident_services.linked_incidents(session, subject.id, "confirmed")
    ]
    assert seen == expected and len(seen) == 14


def test_the_register_list_next_link_is_a_keyset_page(
    app: Flask, client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    """ "Next" carries the last premises shown; its page is the one the page number
    names, and walking every page lists each premises once, in name order."""
    app.config["PAGE_SIZE"] = 3
    for i in range(5):  # same names in another authority: the id breaks the tie
        _premises(
            session, world["liv" if i % 2 else "sef"], world["officer"], f"more{i % 3}", "review"
        )
    sign_in(client, world["officer"])
    names: list[str] = []
    path = "/premises?state=review"
    while path:
        html = client.get(path).get_data(as_text=True)
        page_names = re.findall(r'<a class="govuk-link" href="/premises/\d+">([^<]+)</a>', html)
        if "after=" in path:
            by_number = client.get(re.sub(r"&?after=\d+", "", path)).get_data(as_text=True)
            assert page_names == re.findall(
                r'<a class="govuk-link" href="/premises/\d+">([^<]+)</a>', by_number
            )
        names.extend(page_names)
        following = re.search(
            r'<a class="govuk-link govuk-pagination__link" href="([^"]+)" rel="next"', html
        )
        path = unescape(following.group(1)) if following else ""
    in_review = sorted(
        (p.name, p.id) for p in session.query(Premises).filter_by(state="review").all()
    )
    assert names == [name for name, _id in in_review]
    assert len(names) == 8
