"""The dashboard at `/`: live counts that match the database and the pages they link to,
the council rule, the admin page, and a fixed number of SQL statements however much data.

The world is built through the real services on fixed dates (time-machine): set up on
Monday 2 November 2026, looked at on Thursday 12 November 2026 (London is on GMT, so
UTC and London days agree at noon). Expected figures are worked out in Python from
the rows themselves, never with the dashboard's own SQL.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from html import unescape
from typing import Any

import pytest
import time_machine
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from licensing.auth.models import User
from licensing.deadlines.models import Deadline
from licensing.evidence import services as bundles
from licensing.evidence.models import Bundle
from licensing.incidents import recommendations
from licensing.incidents.importer import import_incidents
from licensing.incidents.models import Incident, PremisesIncidentLink, Recommendation
from licensing.premises import services as premises_services
from licensing.premises.models import Premises, ReviewApplication
from licensing.timeutil import to_london
from licensing.visits import services as visit_services
from licensing.visits.models import OPEN_STATUSES, Visit
from tests.conftest import move, record_evidence, sign_in

SET_UP = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # a Monday
INCIDENTS_IN = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)
LOOK = datetime(2026, 11, 12, 12, 0, tzinfo=UTC)  # the Thursday of the next week
TODAY = date(2026, 11, 12)
NEAR = (53.4000, -2.9800)

LIV_VISIBLE = ("Rowan Rooms", "Redwood Bar", "Sycamore Late Bar", "Ash Off-Licence")
SEF_VISIBLE = ("Rosewood Club",)
NEVER_TO_COUNCIL = ("Maple Inn", "Birch Bar", "Cedar Club", "Walnut Arms", "Willow Lounge")


# ---- the world -------------------------------------------------------------------------


def _schedule(session: Session, actor: User, premises: Premises, day: date, officer: User) -> None:
    visit_services.schedule_visit(
        session,
        actor,
        premises,
        scheduled_at=visit_services.london_instant(day, "10:00"),
        visit_type="routine",
        officer_id=officer.id,
    )


@pytest.fixture
def town(  # type: ignore[no-untyped-def]
    session, make_authority, make_user, make_premises
) -> Iterator[dict[str, Any]]:
    """Premises in every state over two authorities, reviews with deadlines overdue and
    due soon (a summary review's hour deadline too), visits today, this week and overdue,
    open recommendations, shared bundles (one acknowledged), and recent incidents with
    suggested links beside older confirmed ones."""
    with time_machine.travel(SET_UP, tick=False):
        liv = make_authority("LIV", "Liverpool City Council")
        sef = make_authority("SEF", "Sefton Council")
        officer = make_user("officer")
        officer2 = make_user("officer")
        supervisor = make_user("supervisor")
        admin = make_user("admin")
        council = make_user("council", "LIV")
        other_council = make_user("council", "SEF")

        def add(authority: Any, name: str, owner: User = officer, **details: Any) -> Premises:
            return make_premises(authority, owner, name=name, **details)

        maple, birch, cedar = (
            add(liv, "Maple Inn"),
            add(liv, "Birch Bar", officer2),
            add(sef, "Cedar Club"),
        )
        near = add(liv, "Near Tavern", latitude=NEAR[0], longitude=NEAR[1])
        walnut, willow, wisteria = (
            add(liv, "Walnut Arms"),
            add(sef, "Willow Lounge", officer2),
            add(liv, "Wisteria Pub"),
        )
        for premises in (walnut, willow, wisteria):
            move(session, premises, officer, "warn")
        rowan, redwood, rosewood = (
            add(liv, "Rowan Rooms"),
            add(liv, "Redwood Bar", officer2),
            add(sef, "Rosewood Club"),
        )
        ash = add(liv, "Ash Off-Licence")
        applied = {
            rowan: "2026-10-01",
            redwood: "2026-10-20",
            rosewood: "2026-10-25",
            ash: "2026-09-01",
        }
        for premises, day in applied.items():
            move(session, premises, officer, "warn")
            move(session, premises, supervisor, "apply_for_review", application_date=day)
        move(
            session,
            ash,
            supervisor,
            "record_determination",
            outcome="modify_conditions",
            decision_date="2026-11-02",
        )
        sycamore = add(liv, "Sycamore Late Bar")
        move(
            session,
            sycamore,
            supervisor,
            "apply_for_summary_review",
            received_at="2026-11-02T08:00:00+00:00",
            certificate_reference="SUPT-1",
        )
        # Three serious incidents in 28 days while monitored: a recommendation to warn.
        for premises in (maple, cedar, maple, cedar):
            record_evidence(session, premises)
        recommendations.evaluate(session)

        _schedule(session, officer, maple, date(2026, 11, 5), officer)
        _schedule(session, officer, birch, date(2026, 11, 10), officer2)
        _schedule(session, officer, cedar, date(2026, 11, 12), officer)
        _schedule(session, officer, near, date(2026, 11, 12), supervisor)
        _schedule(session, officer, walnut, date(2026, 11, 14), officer)
        _schedule(session, officer, wisteria, date(2026, 11, 20), officer)

        for premises in (rowan, rosewood, ash):
            bundle = bundles.latest_issued_bundle(session, premises.id)
            assert bundle is not None
            bundles.share_bundle(session, supervisor, bundle)
        rowan_bundle = bundles.latest_issued_bundle(session, rowan.id)
        assert rowan_bundle is not None
        bundles.acknowledge(session, council, rowan_bundle)

    with time_machine.travel(INCIDENTS_IN, tick=False):
        rows = ["source_ref,occurred_at,category,latitude,longitude,licence_number,authority"]
        for n in range(3):
            rows.append(
                f"NEAR-{n},2026-11-09T22:00:00Z,Public order,{NEAR[0] + 0.00005 * n},{NEAR[1]},,"
            )
        rows.append("BYLICENCE-1,2026-11-09T23:00:00Z,Drugs,,,PL/0001,LIV")
        rows.append("NOWHERE-1,2026-11-09T23:30:00Z,Other theft,,,,")
        result = import_incidents(session, "\n".join(rows).encode(), "recent.csv", "generic", None)
        assert result.suggested == 3 and result.linked == 1, result

    with time_machine.travel(LOOK, tick=False):
        yield {
            "officer": officer,
            "officer2": officer2,
            "supervisor": supervisor,
            "admin": admin,
            "council": council,
            "other_council": other_council,
            "rowan_bundle": rowan_bundle,
        }


# ---- what the database says, worked out in Python ----------------------------------------


def _deadline_day(deadline: Deadline) -> date:
    if deadline.due_at is not None:
        return to_london(deadline.due_at).date()
    assert deadline.due_date is not None
    return deadline.due_date


def expected(session: Session, user: User) -> dict[str, int]:
    """Every figure on the police dashboard, from the rows."""
    session.expire_all()
    premises = list(session.scalars(select(Premises)))
    figures: dict[str, int] = {
        f"state-{s}": n for s, n in Counter(p.state for p in premises).items()
    }
    figures["recommendations"] = sum(
        r.status == "open" for r in session.scalars(select(Recommendation))
    )
    days = [_deadline_day(d) for d in session.scalars(select(Deadline)) if d.status == "open"]
    figures["deadlines-overdue"] = sum(day < TODAY for day in days)
    figures["deadlines-soon"] = sum(TODAY <= day <= TODAY + timedelta(days=14) for day in days)
    monday = TODAY - timedelta(days=TODAY.weekday())
    visits = [v for v in session.scalars(select(Visit)) if v.status in OPEN_STATUSES]
    for prefix, chosen in (
        ("visits", visits),
        ("mine", [v for v in visits if v.officer_id == user.id]),
    ):
        figures[f"{prefix}-today"] = sum(v.visit_date == TODAY for v in chosen)
        figures[f"{prefix}-week"] = sum(
            monday <= v.visit_date <= monday + timedelta(days=6) for v in chosen
        )
        figures[f"{prefix}-overdue"] = sum(visit_services.is_overdue(v, TODAY) for v in chosen)
    since = LOOK - timedelta(days=7)
    recent = [i for i in session.scalars(select(Incident)) if i.created_at >= since]
    suggested = {
        link.incident_id
        for link in session.scalars(select(PremisesIncidentLink))
        if link.status == "suggested"
    }
    figures["incidents-recent"] = len(recent)
    figures["incidents-suggested"] = sum(i.id in suggested for i in recent)
    figures["caseload"] = sum(p.case_officer_id == user.id for p in premises)
    return figures


# ---- reading the pages -------------------------------------------------------------------

COUNT_LINK = re.compile(r'id="count-([a-z-]+)" href="([^"]+)">(\d+)<')


def dashboard_counts(client: FlaskClient) -> dict[str, tuple[str, int]]:
    """Each count link on the dashboard: its name, where it goes and its number."""
    response = client.get("/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    return {name: (unescape(href), int(n)) for name, href, n in COUNT_LINK.findall(html)}


def result_count(client: FlaskClient, href: str) -> int:
    """The total a list page (premises, visits, incidents) says it holds."""
    response = client.get(href)
    assert response.status_code == 200, href
    match = re.search(r'id="result-count">(\d+)', response.get_data(as_text=True))
    assert match, href
    return int(match.group(1))


def calendar_deadlines(client: FlaskClient, href: str) -> tuple[int, list[date]]:
    """The calendar's overdue deadlines, and the days of its upcoming ones."""
    html = client.get(href).get_data(as_text=True)
    overdue_part, _, upcoming_part = html.partition('id="calendar-upcoming"')
    row = re.compile(r'data-kind="deadline">\s*<td class="govuk-table__cell">([^<]+)</td>')
    overdue = len(row.findall(overdue_part)) if 'id="calendar-overdue"' in overdue_part else 0
    upcoming = [
        datetime.strptime(day.strip(), "%d %b %Y").date() for day in row.findall(upcoming_part)
    ]
    return overdue, upcoming


# ---- the police dashboard ------------------------------------------------------------------


@pytest.mark.parametrize("who", ["officer", "supervisor"])
def test_police_counts_match_the_database_and_the_pages_they_link_to(
    client: FlaskClient, session: Session, town: dict[str, Any], who: str
) -> None:
    user = town[who]
    sign_in(client, user)
    counts = dashboard_counts(client)
    want = expected(session, user)

    # The world has something in every box, so a wrong filter cannot hide behind zeros.
    for state in ("monitored", "warned", "review", "action"):
        assert counts[f"state-{state}"] == (f"/premises?state={state}", want[f"state-{state}"])
        assert want[f"state-{state}"] >= 1
        assert result_count(client, counts[f"state-{state}"][0]) == want[f"state-{state}"]

    href, n = counts["recommendations"]
    assert href == "/recommendations" and n == want["recommendations"] == 2
    page = client.get(href).get_data(as_text=True)
    assert len(re.findall(r"/recommendations/\d+/dismiss", page)) == n

    assert counts["deadlines-overdue"][1] == want["deadlines-overdue"] >= 3
    assert counts["deadlines-soon"][1] == want["deadlines-soon"] >= 2
    overdue_on_calendar, upcoming = calendar_deadlines(client, counts["deadlines-overdue"][0])
    assert counts["deadlines-overdue"][0] == "/calendar"
    assert overdue_on_calendar == want["deadlines-overdue"]
    assert sum(day <= TODAY + timedelta(days=14) for day in upcoming) == want["deadlines-soon"]

    assert counts["visits-today"] == ("#visits-today", want["visits-today"])
    assert want["visits-today"] == 2
    for name, href in (
        ("visits-week", "/visits?week=1"),
        ("visits-overdue", "/visits?overdue=1"),
        ("mine-week", "/visits?mine=1&week=1"),
        ("mine-overdue", "/visits?mine=1&overdue=1"),
    ):
        assert counts[name] == (href, want[name]), name
        assert result_count(client, href) == want[name], name
    assert want["visits-week"] >= 3 and want["visits-overdue"] >= 2

    assert counts["incidents-recent"] == ("/incidents", want["incidents-recent"])
    assert want["incidents-recent"] == 5  # the older evidence is 10 days old
    assert counts["incidents-suggested"] == ("/incidents/suggestions", want["incidents-suggested"])
    assert want["incidents-suggested"] == 3
    # Every suggestion in this world is recent, so the incidents list agrees.
    assert result_count(client, "/incidents?linked=suggested") == want["incidents-suggested"]
    assert "Near Tavern" in client.get("/incidents/suggestions").get_data(as_text=True)


def test_the_caseload_lists_the_users_premises_with_their_next_deadline(
    client: FlaskClient, session: Session, town: dict[str, Any]
) -> None:
    sign_in(client, town["officer"])
    html = client.get("/").get_data(as_text=True)
    want = expected(session, town["officer"])
    assert f"You are case officer for {want['caseload']} premises" in html
    table = html.split('id="caseload-table"')[1].split("</table>")[0]
    names = re.findall(r'href="/premises/\d+">([^<]+)</a>', table)
    mine = {
        p.name
        for p in session.scalars(
            select(Premises).where(Premises.case_officer_id == town["officer"].id)
        )
    }
    assert set(names) == mine
    assert names[0] == "Ash Off-Licence"  # action first
    assert "Birch Bar" not in names  # officer2's
    rowan_row = table.split("Rowan Rooms")[1].split("</tr>")[0]
    assert "Representations close: 29 Oct 2026" in rowan_row and "Overdue" in rowan_row
    my_visits = html.split('id="my-visits"')[1].split("</table>")[0]
    assert "Maple Inn" in my_visits and "Birch Bar" not in my_visits
    # Officer 2's own page shows their premises, not the first officer's.
    client2 = client.application.test_client()
    sign_in(client2, town["officer2"])
    other = client2.get("/").get_data(as_text=True)
    assert "Birch Bar" in other.split('id="caseload-table"')[1].split("</table>")[0]


def test_counts_are_live(client: FlaskClient, session: Session, town: dict[str, Any]) -> None:
    sign_in(client, town["supervisor"])
    before = dashboard_counts(client)
    recommendation = session.scalars(
        select(Recommendation).where(Recommendation.status == "open")
    ).first()
    assert recommendation is not None
    recommendations.dismiss(session, town["officer"], recommendation.id, "Spoken to the DPS")
    maple = session.scalar(select(Premises).where(Premises.name == "Maple Inn"))
    assert maple is not None
    move(session, maple, town["officer"], "warn")
    after = dashboard_counts(client)
    assert after["recommendations"][1] == before["recommendations"][1] - 1
    assert after["state-warned"][1] == before["state-warned"][1] + 1
    assert after["state-monitored"][1] == before["state-monitored"][1] - 1


def test_the_page_is_accessible_markup(client: FlaskClient, town: dict[str, Any]) -> None:
    for who in ("officer", "council", "admin"):
        fresh = client.application.test_client()
        sign_in(fresh, town[who])
        html = fresh.get("/").get_data(as_text=True)
        main = html.split('id="main-content"')[1]
        levels = [int(n) for n in re.findall(r"<h([1-6])", main)]
        assert levels[0] == 1 and levels.count(1) == 1
        assert all(b - a <= 1 for a, b in zip(levels, levels[1:], strict=False)), levels
        assert " style=" not in main and "<script" not in main.split("govuk-footer")[0]
        assert main.count("<table") == main.count("<caption")


# ---- the council dashboard -----------------------------------------------------------------


def test_council_users_see_only_their_authority(
    client: FlaskClient, session: Session, town: dict[str, Any]
) -> None:
    sign_in(client, town["council"])
    html = client.get("/").get_data(as_text=True)
    for name in LIV_VISIBLE:
        assert name in html, name
    for name in SEF_VISIBLE + NEVER_TO_COUNCIL + ("Your caseload", "Recommendations"):
        assert name not in html, name
    shared = session.scalars(select(Bundle).where(Bundle.shared_at.is_not(None))).all()
    liv_bundles = [b for b in shared if b.premises.authority.code == "LIV"]
    sef_bundles = [b for b in shared if b.premises.authority.code == "SEF"]
    assert len(liv_bundles) == 2 and len(sef_bundles) == 1
    for bundle in liv_bundles:
        assert f'id="bundle-{bundle.id}"' in html
        assert client.get(f"/bundles/{bundle.id}").status_code == 200
    assert f'id="bundle-{sef_bundles[0].id}"' not in html
    acknowledged = html.split(f'id="bundle-{town["rowan_bundle"].id}"')[1].split("</tr>")[0]
    assert "Not yet" not in acknowledged
    assert "</a> shared with you, 1 not acknowledged yet." in html
    # Deadlines of each premises under review: the standard review's, and the summary
    # review's hour deadline in London time.
    ids = {p.name: p.id for p in session.scalars(select(Premises))}

    def card(name: str) -> str:
        return html.split(f'id="premises-{ids[name]}"')[1].split("</dl>")[0]

    rowan = card("Rowan Rooms")
    assert "Representations close: 29 Oct 2026" in rowan and "Overdue" in rowan
    sycamore = card("Sycamore Late Bar")
    assert "Interim steps to be considered by: 4 Nov 2026, 08:00" in sycamore
    counts = {name: (href, n) for name, (href, n) in dashboard_counts(client).items()}
    assert set(counts) == {"bundles", "state-review", "state-action"}
    assert counts["bundles"] == ("/bundles", 2)
    assert counts["state-review"][1] == 3 and counts["state-action"][1] == 1
    for name in ("state-review", "state-action"):
        assert result_count(client, counts[name][0]) == counts[name][1]

    other = client.application.test_client()
    sign_in(other, town["other_council"])
    page = other.get("/").get_data(as_text=True)
    assert "Rosewood Club" in page and f'id="bundle-{sef_bundles[0].id}"' in page
    for name in LIV_VISIBLE + NEVER_TO_COUNCIL:
        assert name not in page, name
    for bundle in liv_bundles:
        assert f'id="bundle-{bundle.id}"' not in page


def test_a_council_user_with_nothing_shared_sees_an_empty_page(
    client: FlaskClient, make_authority: Callable[..., Any], make_user: Callable[..., User]
) -> None:
    make_authority("WIR", "Wirral Council")
    sign_in(client, make_user("council", "WIR"))
    html = client.get("/").get_data(as_text=True)
    assert 'id="no-bundles"' in html and 'id="no-premises"' in html


# ---- the admin dashboard -------------------------------------------------------------------


def test_admin_sees_the_register_and_the_outbox(
    client: FlaskClient, session: Session, town: dict[str, Any]
) -> None:
    sign_in(client, town["admin"])
    response = client.get("/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'href="/admin/outbox"' in html and 'href="/premises/import"' in html
    assert "Your caseload" not in html
    counts = dashboard_counts(client)
    want = expected(session, town["admin"])
    for state in ("monitored", "warned", "review", "action"):
        assert counts[f"state-{state}"][1] == want[f"state-{state}"]
    assert counts["failed-emails"] == ("/admin/outbox", 0)
    assert client.get("/admin/outbox").status_code == 200


def test_anonymous_users_are_sent_to_sign_in(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code in (302, 401)


# ---- the number of statements does not grow with the data ------------------------------------


def _populate(session: Session, officer: User, authority: Any, n: int, tag: str) -> None:
    """`n` premises in each state with deadlines, visits, recommendations, incidents with
    suggested links and shared bundles. Volume only: rows are written directly (states
    included), since how they came about does not change what the page must query."""
    now = datetime.now(UTC)
    today = to_london(now).date()
    for state in ("monitored", "warned", "review", "action"):
        for i in range(n):
            premises = premises_services.add_premises(
                session, officer, authority, f"{tag}/{state}/{i}", {"name": f"{tag} {state} {i}"}
            )
            session.execute(update(Premises).where(Premises.id == premises.id).values(state=state))
            review = ReviewApplication(
                premises_id=premises.id, kind="standard", application_date=today
            )
            session.add(review)
            session.flush()
            session.add_all(
                [
                    Deadline(
                        premises_id=premises.id,
                        review_id=review.id,
                        kind="representations_close",
                        due_date=today - timedelta(days=2),
                        rule="r",
                    ),
                    Deadline(
                        premises_id=premises.id,
                        review_id=review.id,
                        kind="hearing_start_by",
                        due_date=today + timedelta(days=3),
                        rule="r",
                    ),
                    Deadline(
                        premises_id=premises.id,
                        review_id=review.id,
                        kind="interim_steps_by",
                        due_at=now + timedelta(hours=30),
                        rule="r",
                    ),
                    Visit(
                        premises_id=premises.id,
                        visit_type="routine",
                        status="scheduled",
                        visit_date=today,
                        officer_id=officer.id,
                    ),
                    Visit(
                        premises_id=premises.id,
                        visit_type="routine",
                        status="scheduled",
                        visit_date=today - timedelta(days=3),
                        officer_id=officer.id,
                    ),
                    Recommendation(
                        premises_id=premises.id,
                        rule="serious_while_monitored",
                        recommended_event="warn",
                        summary="s",
                    ),
                    Bundle(
                        premises_id=premises.id,
                        reference=f"{tag}-{premises.id}",
                        period_from=today,
                        period_to=today,
                        status="issued",
                        shared_at=now,
                    ),
                ]
            )
            incident = Incident(
                source="rms", source_ref=f"{tag}-{premises.id}", counted_at=now, category="Drugs"
            )
            session.add(incident)
            session.flush()
            session.add(
                PremisesIncidentLink(
                    premises_id=premises.id,
                    incident_id=incident.id,
                    status="suggested",
                    method="proximity",
                )
            )
    session.commit()


def _statements(app: Flask, client: FlaskClient) -> int:
    engine = app.extensions["db_engine"]
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        response = client.get("/")
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert response.status_code == 200
    return len(seen)


def test_the_number_of_statements_does_not_grow_with_the_data(
    app: Flask, session: Session, make_authority: Callable[..., Any], make_user: Callable[..., User]
) -> None:
    liv = make_authority("LIV", "Liverpool City Council")
    users = {
        "officer": make_user("officer"),
        "supervisor": make_user("supervisor"),
        "council": make_user("council", "LIV"),
        "admin": make_user("admin"),
    }
    clients = {}
    for role, user in users.items():
        clients[role] = app.test_client()
        sign_in(clients[role], user)
    _populate(session, users["officer"], liv, 2, "S")
    small = {role: _statements(app, c) for role, c in clients.items()}
    small_page = clients["officer"].get("/").get_data(as_text=True)
    _populate(session, users["officer"], liv, 8, "L")  # 2 + 8: five times as many rows
    large = {role: _statements(app, c) for role, c in clients.items()}
    assert large == small, (small, large)
    assert small == {"officer": 10, "supervisor": 10, "council": 5, "admin": 3}, small
    # The larger world really is on the page (the counts moved, the lists filled up).
    large_counts = dashboard_counts(clients["officer"])
    assert large_counts["state-review"][1] == 10
    assert large_counts["recommendations"][1] == 40
    assert large_counts["visits-overdue"][1] == 40
    assert large_counts["deadlines-overdue"][1] == 40
    assert large_counts["incidents-suggested"][1] == 40
    assert small_page != clients["officer"].get("/").get_data(as_text=True)


# ---- the recent incidents' counts -------------------------------------------------------------


def test_recent_incidents_counts_each_suggested_incident_once_and_stops_at_the_cap(
    session: Session,
    make_authority: Callable[..., Any],
    make_user: Callable[..., User],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An incident suggested for two premises is one incident with a suggestion; links
    made before the window do not count; each count stops one past the cap."""
    from licensing.dashboard.services import RecentIncidents, recent_incidents

    liv = make_authority("LIV", "Liverpool City Council")
    officer = make_user("officer")
    places = [
        premises_services.add_premises(session, officer, liv, f"R/{n}", {"name": f"Recent {n}"})
        for n in range(3)
    ]
    now = datetime.now(UTC)
    old = now - timedelta(days=30)

    def incident(ref: str, created: datetime, suggested_for: list[Premises]) -> None:
        row = Incident(
            source="rms", source_ref=ref, counted_at=created, category="Drugs", created_at=created
        )
        session.add(row)
        session.flush()
        for place in suggested_for:
            session.add(
                PremisesIncidentLink(
                    premises_id=place.id,
                    incident_id=row.id,
                    status="suggested",
                    method="proximity",
                    created_at=created,
                )
            )

    incident("two-premises", now, places[:2])  # suggested twice: one incident
    incident("three-premises", now, places)
    incident("one-premises", now, places[2:])
    incident("none", now, [])
    incident("old", old, places)  # outside the week
    session.commit()

    seen = recent_incidents(session, now + timedelta(minutes=1))
    want_added = sum(
        1 for i in session.scalars(select(Incident)) if i.created_at >= old + timedelta(days=1)
    )
    assert (seen.added, seen.with_suggestions) == (want_added, 3)

    # With a cap of one, both counts stop at two ("more than 1").
    monkeypatch.setattr(RecentIncidents, "cap", 1)
    capped = recent_incidents(session, now + timedelta(minutes=1))
    assert (capped.added, capped.with_suggestions) == (2, 2)
