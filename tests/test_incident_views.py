"""The incident pages through the test client: real sign-in, real CSRF tokens, real
database. Lists and filters, one incident, recording, council ASB reports, importing,
the suggestions queue, recommendations, and the incident parts of the premises page."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from licensing.audit.models import AuditEvent
from licensing.incidents import recommendations, services
from licensing.incidents.importer import POLICE_UK_COLUMNS
from licensing.incidents.models import (
    Incident,
    IncidentImportRun,
    IncidentPerson,
    PremisesIncidentLink,
    Recommendation,
)
from licensing.premises.models import Premises
from licensing.templating import format_london
from tests.conftest import csrf_from, sign_in

LAT, LON = 53.404, -2.979  # where the premises with coordinates stands
NORTH_PER_M = 1 / 111_195  # degrees of latitude in one metre


# ---- reading pages -----------------------------------------------------------------------


class Page(HTMLParser):
    """What the tests read from a page: title, ids, error summary links, headings, the
    text of every table (by id) and every summary list (key → value)."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.title = ""
        self.ids: set[str] = set()
        self.summary_links: list[str] = []
        self.headings: list[int] = []
        self.tables: dict[str, list[list[str]]] = {}
        self.summary: dict[str, str] = {}
        self._in_title = False
        self._summary_depth = 0
        self._table: str | None = None
        self._cell: list[str] | None = None
        self._dt: list[str] | None = None
        self._dd: list[str] | None = None
        self._key = ""
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("id"):
            self.ids.add(str(values["id"]))
        if tag == "title" and not self.title:
            self._in_title = True
        if tag in ("h1", "h2", "h3", "h4"):
            self.headings.append(int(tag[1]))
        if "govuk-error-summary__list" in (values.get("class") or ""):
            self._summary_depth = 1
        elif self._summary_depth and tag == "a":
            self.summary_links.append(str(values.get("href")))
        if tag == "table":
            self._table = str(values.get("id") or f"table-{len(self.tables)}")
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag in ("th", "td") and self._table is not None:
            self._cell = []
        elif tag == "dt":
            self._dt = []
        elif tag == "dd" and "govuk-summary-list__value" in (values.get("class") or ""):
            self._dd = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag == "ul" and self._summary_depth:
            self._summary_depth = 0
        if tag in ("th", "td") and self._cell is not None and self._table is not None:
            self.tables[self._table][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table":
            self._table = None
        elif tag == "dt" and self._dt is not None:
            self._key = " ".join("".join(self._dt).split())
            self._dt = None
        elif tag == "dd" and self._dd is not None:
            self.summary[self._key] = " ".join("".join(self._dd).split())
            self._dd = None

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        for buffer in (self._cell, self._dt, self._dd):
            if buffer is not None:
                buffer.append(data)


def text(response: Any) -> str:
    return response.get_data(as_text=True)


def page_of(response: Any, status: int = 200) -> Page:
    assert response.status_code == status, text(response)[:2000]
    return Page(text(response))


def assert_error_page(response: Any, status: int, *field_ids: str) -> Page:
    """Re-rendered with `status`, "Error:" in the title, and an error summary whose links
    all point at elements on the page (including `field_ids`)."""
    page = page_of(response, status)
    assert page.title.strip().startswith("Error:"), page.title
    assert "govuk-error-summary" in text(response)
    for field_id in field_ids:
        assert f"#{field_id}" in page.summary_links, page.summary_links
    for href in page.summary_links:
        assert href.startswith("#") and href[1:] in page.ids, (href, page.summary_links)
    return page


def assert_headings_in_order(page: Page) -> None:
    """One h1, first, and no level skipped on the way down."""
    assert page.headings[:1] == [1] and page.headings.count(1) == 1, page.headings
    for before, after in zip(page.headings, page.headings[1:], strict=False):
        assert after <= before + 1, page.headings


def incident_ids_listed(response: Any) -> list[int]:
    """The incidents a list page shows, in order."""
    assert response.status_code == 200
    return [int(i) for i in re.findall(r'href="/incidents/(\d+)"', text(response))]


def post_form(client: FlaskClient, url: str, data: dict[str, Any], **kwargs: Any) -> Any:
    """Post to `url` the way its form would, with the CSRF token of the page."""
    token = csrf_from(text(client.get(url)))
    return client.post(url, data={"csrf_token": token, **data}, **kwargs)


# ---- making incidents ---------------------------------------------------------------------


def police_row(
    crime_id: str = "",
    month: str = "2026-09",
    lat: float = LAT,
    lon: float = LON,
    crime: str = "Anti-social behaviour",
    location: str = "On or near Bold Street",
) -> str:
    return (
        f"{crime_id},{month},Merseyside Police,Merseyside Police,{lon:.6f},{lat:.6f},"
        f"{location},E01006512,Liverpool 060A,{crime},Under investigation,"
    )


def police_csv(*rows: str) -> bytes:
    """A data.police.uk street-level file as published: CRLF line ends."""
    return ("\r\n".join([",".join(POLICE_UK_COLUMNS), *rows]) + "\r\n").encode()


def upload(client: FlaskClient, data: bytes, name: str = "street.csv", fmt: str = "police-uk"):  # type: ignore[no-untyped-def]
    return post_form(
        client,
        "/incidents/import",
        {"format": fmt, "incident_file": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
    )


def record(session: Any, actor: Any, **data: Any) -> Incident:
    data.setdefault("category", "Public order")
    data.setdefault("occurred_at", (datetime.now(UTC) - timedelta(days=2)).isoformat())
    return services.record_incident(session, actor, data).incident


@pytest.fixture
def corner(world: dict[str, Any], make_premises: Any) -> Premises:
    """A premises with coordinates and nothing linked to it."""
    return make_premises(
        world["liv"],
        world["officer"],
        evidence=False,
        name="The Corner House",
        licence_number="LIV/CORNER",
        latitude=LAT,
        longitude=LON,
    )


# ---- the incident list --------------------------------------------------------------------


def test_list_filters_by_category_source_and_link_status(
    client: FlaskClient, session: Any, world: dict[str, Any], corner: Premises
) -> None:
    officer = world["officer"]
    evidence = sorted(
        link.incident_id
        for link in session.scalars(select(PremisesIncidentLink))  # the world's two
    )
    drugs = record(session, officer, category="Drugs", source_ref="D1").id
    near = record(session, officer, source_ref="NEAR", latitude=LAT, longitude=LON).id
    alone = record(session, officer, category="Drugs", source_ref="ALONE").id
    sign_in(client, officer)

    assert sorted(incident_ids_listed(client.get("/incidents"))) == sorted(
        [*evidence, drugs, near, alone]
    )
    assert sorted(incident_ids_listed(client.get("/incidents?category=Drugs"))) == [drugs, alone]
    assert sorted(incident_ids_listed(client.get("/incidents?source=rms"))) == evidence
    assert sorted(incident_ids_listed(client.get("/incidents?source=manual"))) == sorted(
        [drugs, near, alone]
    )
    assert sorted(incident_ids_listed(client.get("/incidents?linked=confirmed"))) == evidence
    assert incident_ids_listed(client.get("/incidents?linked=suggested")) == [near]
    assert sorted(incident_ids_listed(client.get("/incidents?linked=none"))) == [drugs, alone]
    combined = client.get("/incidents?category=Drugs&source=manual&linked=none")
    assert sorted(incident_ids_listed(combined)) == [drugs, alone]
    assert 'id="result-count">2 incidents<' in text(combined)
    assert '<option value="Drugs" selected' in text(combined)  # the filter stays chosen

    empty = client.get("/incidents?category=Robbery")
    assert incident_ids_listed(empty) == []
    assert "No incidents match these filters" in text(empty)
    # An unknown filter value is ignored, not an error.
    assert len(incident_ids_listed(client.get("/incidents?category=Nonsense"))) == 5


def test_list_pages_newest_first_and_keeps_the_filters(
    app: Flask, client: FlaskClient, session: Any, world: dict[str, Any]
) -> None:
    app.config["PAGE_SIZE"] = 2
    now = datetime.now(UTC)
    made = [
        record(
            session,
            world["officer"],
            category="Drugs",
            source_ref=f"P{i}",
            occurred_at=(now - timedelta(days=10 + i)).isoformat(),
        ).id
        for i in range(5)
    ]  # newest first already
    sign_in(client, world["officer"])

    first = client.get("/incidents?category=Drugs")
    assert incident_ids_listed(first) == made[:2]
    assert "page 1 of 3" in text(first)
    # "Next" carries the last incident shown: the next page is read by keyset.
    assert f'href="/incidents?page=2&amp;after={made[1]}&amp;category=Drugs"' in text(first)
    second = client.get(f"/incidents?page=2&after={made[1]}&category=Drugs")
    assert incident_ids_listed(second) == made[2:4]
    assert "page 2 of 3" in text(second)
    assert 'href="/incidents?page=1&amp;category=Drugs"' in text(second)
    assert f'href="/incidents?page=3&amp;after={made[3]}&amp;category=Drugs"' in text(second)
    last = client.get(f"/incidents?category=Drugs&page=3&after={made[3]}")
    assert incident_ids_listed(last) == made[4:]
    assert "page=4" not in text(last)
    # A page by number alone (an old bookmark, the "previous" link) is the same page.
    assert incident_ids_listed(client.get("/incidents?category=Drugs&page=2")) == made[2:4]
    assert incident_ids_listed(client.get("/incidents?category=Drugs&page=3")) == made[4:]


# ---- one incident -------------------------------------------------------------------------


def test_incident_page_shows_its_fields_and_people_only_to_police(
    app: Flask, session: Any, world: dict[str, Any], make_user: Any
) -> None:
    from tests.conftest import move

    premises = world["premises"]
    incident = services.record_incident(
        session,
        world["officer"],
        {
            "source": "rms",
            "source_ref": "RMS-777",
            "category": "Violence and sexual offences",
            "occurred_at": "2026-11-20T23:40:00",
            "description": "Assault at the door",
            "location": "Outside the front door",
            "latitude": "53.40000",
            "longitude": "-2.97000",
            "outcome": "Suspect charged",
            "licence_number": premises.licence_number,
            "authority": "LIV",
            "personal_data": {"people": [{"role": "victim", "name": "Vera Victim"}]},
        },
    ).incident
    # The council sees incidents of its premises under review only.
    move(session, premises, world["officer"], "warn")
    move(session, premises, world["supervisor"], "apply_for_review", application_date="2026-11-24")

    officer = app.test_client()
    sign_in(officer, world["officer"])
    page = page_of(officer.get(f"/incidents/{incident.id}"))
    assert page.summary["When"] == "20 Nov 2026, 23:40"
    assert page.summary["Reference"] == "RMS-777"
    assert page.summary["Location"] == "Outside the front door"
    assert page.summary["Coordinates"] == "53.400000, -2.970000"
    assert page.summary["Outcome"] == "Suspect charged"
    assert page.summary["Description"] == "Assault at the door"
    assert "Victim: Vera Victim" in text(officer.get(f"/incidents/{incident.id}"))
    assert_headings_in_order(page)

    for user in (world["admin"], world["council"]):
        other = app.test_client()
        sign_in(other, user)
        response = other.get(f"/incidents/{incident.id}")
        assert response.status_code == 200
        assert "Assault at the door" in text(response)
        assert "Vera Victim" not in text(response)
        assert "People involved" not in text(response)

    # A council user of another authority may not even learn it exists.
    stranger = app.test_client()
    sign_in(stranger, world["other_council"])
    assert stranger.get(f"/incidents/{incident.id}").status_code == 404


def test_a_data_police_uk_incident_is_shown_as_month_only(
    client: FlaskClient, session: Any, world: dict[str, Any]
) -> None:
    sign_in(client, world["officer"])
    response = upload(client, police_csv(police_row("CRIME-1", month="2026-09", crime="Drugs")))
    assert response.status_code == 302
    incident = session.scalar(select(Incident).where(Incident.source_ref == "CRIME-1"))
    assert incident is not None and incident.occurred_at is None

    page = page_of(client.get(f"/incidents/{incident.id}"))
    assert page.summary["When"].startswith("September 2026 (month only")
    assert "data.police.uk gives only the month" in page.summary["When"]
    assert page.summary["Reported by"] == "Merseyside Police"
    assert page.summary["LSOA"] == "E01006512 Liverpool 060A"
    listed = text(client.get("/incidents?source=police-uk"))
    assert "2026-09 (month only)" in listed


# ---- council users ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/incidents",
        "/incidents/new",
        "/incidents/import",
        "/incidents/suggestions",
        "/recommendations",
    ],
)
def test_council_users_get_404_for_police_incident_pages(
    client: FlaskClient, world: dict[str, Any], path: str
) -> None:
    sign_in(client, world["council"])
    assert client.get(path).status_code == 404


def asb_fields(licence_number: str, **overrides: str) -> dict[str, str]:
    yesterday = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%d 22:15")
    return {
        "licence_number": licence_number,
        "category": "ASB - nuisance",
        "occurred_at": yesterday,
        "description": "Loud music and shouting in the beer garden",
        "reporter_name": "Rita Resident",
        "reporter_phone": "0151 000 0000",
    } | overrides


def test_council_logs_an_asb_report_against_a_premises_of_its_authority(
    client: FlaskClient, session: Any, world: dict[str, Any]
) -> None:
    premises, council = world["premises"], world["council"]
    sign_in(client, council)
    form = client.get("/asb-reports/new")
    assert form.status_code == 200
    assert "Liverpool City Council" in text(form)

    response = post_form(client, "/asb-reports/new", asb_fields(f" {premises.licence_number} "))
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/asb-reports/new")
    assert f"ASB report logged against {premises.name}" in text(client.get("/asb-reports/new"))

    session.expire_all()
    incident = session.scalar(select(Incident).where(Incident.source == "council-asb"))
    assert incident is not None
    assert incident.category == "ASB - nuisance"
    assert incident.authority_id == world["liv"].id
    assert incident.created_by_id == council.id
    assert "Rita" not in incident.description
    people = session.scalars(
        select(IncidentPerson).where(IncidentPerson.incident_id == incident.id)
    ).all()
    assert [(p.role, p.name, p.phone) for p in people] == [
        ("reporter", "Rita Resident", "0151 000 0000")
    ]
    links = session.scalars(
        select(PremisesIncidentLink).where(PremisesIncidentLink.incident_id == incident.id)
    ).all()
    assert [(x.premises_id, x.status, x.method, x.decided_by_id) for x in links] == [
        (premises.id, "confirmed", "officer", council.id)
    ]
    event = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.premises_id == premises.id, AuditEvent.event == "incident_linked")
        .order_by(AuditEvent.seq.desc())
    ).first()
    assert event is not None and event.actor_id == council.id
    assert "Rita" not in str(event.payload)

    # The council user may read their own report, but the reporter's details stay police-only.
    own = client.get(f"/incidents/{incident.id}")
    assert own.status_code == 200
    assert "Loud music" in text(own) and "Rita Resident" not in text(own)


def test_council_cannot_log_against_another_authoritys_licence_number(
    client: FlaskClient, session: Any, world: dict[str, Any]
) -> None:
    sign_in(client, world["council"])
    before = session.scalar(select(func.count()).select_from(Incident))
    response = post_form(
        client, "/asb-reports/new", asb_fields(world["other_premises"].licence_number)
    )
    assert_error_page(response, 422, "licence_number")
    assert "Your authority has no premises with that licence number" in text(response)
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Incident)) == before
    assert session.scalar(select(func.count()).select_from(IncidentPerson)) == 0


def test_asb_report_errors_link_to_their_fields(client: FlaskClient, world: dict[str, Any]) -> None:
    sign_in(client, world["council"])
    response = post_form(
        client, "/asb-reports/new", {"licence_number": "", "occurred_at": "last night"}
    )
    assert_error_page(response, 422, "licence_number", "category", "occurred_at", "description")
    assert "for example 2026-11-21 23:40" in text(response)


# ---- recording an incident ----------------------------------------------------------------


def test_officer_records_an_incident_with_a_person_held_apart(
    client: FlaskClient, session: Any, world: dict[str, Any]
) -> None:
    premises = world["premises"]
    sign_in(client, world["officer"])
    response = post_form(
        client,
        "/incidents/new",
        {
            "category": "Violence and sexual offences",
            "occurred_at": (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%d 23:40"),
            "source_ref": "",
            "description": "Fight at closing time",
            "location": "Beer garden",
            "latitude": "",
            "longitude": "",
            "licence_number": premises.licence_number,
            "authority": "LIV",
            "person_role": "witness",
            "person_name": "Wendy Witness",
            "person_phone": "07700 900000",
            "person_email": "",
        },
    )
    assert response.status_code == 302, text(response)[:2000]
    incident = session.scalar(select(Incident).where(Incident.description.like("Fight%")))
    assert incident is not None
    assert response.headers["Location"].endswith(f"/incidents/{incident.id}")
    assert incident.source == "manual"
    assert incident.description == "Fight at closing time"
    people = session.scalars(
        select(IncidentPerson).where(IncidentPerson.incident_id == incident.id)
    ).all()
    assert [(p.role, p.name, p.phone) for p in people] == [
        ("witness", "Wendy Witness", "07700 900000")
    ]
    link = session.scalar(
        select(PremisesIncidentLink).where(PremisesIncidentLink.incident_id == incident.id)
    )
    assert link is not None
    assert (link.premises_id, link.status, link.method) == (
        premises.id,
        "confirmed",
        "licence_number",
    )
    shown = text(client.get(f"/incidents/{incident.id}"))
    assert "Incident recorded." in shown and "Witness: Wendy Witness, 07700 900000" in shown


def test_recording_errors_show_the_summary_linked_to_the_fields(
    client: FlaskClient, session: Any, world: dict[str, Any]
) -> None:
    sign_in(client, world["officer"])
    response = post_form(client, "/incidents/new", {"category": "", "description": ""})
    page = assert_error_page(response, 422, "category", "occurred_at", "description")
    assert page.title.strip().startswith("Error: Record an incident")

    tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%d 12:00")
    response = post_form(
        client,
        "/incidents/new",
        {
            "category": "Drugs",
            "occurred_at": tomorrow,
            "description": "Dealing",
            "latitude": "north",
            "longitude": "-2.9",
            "licence_number": "NO/SUCH",
            "authority": "LIV",
            "person_name": "Nameless Role",
        },
    )
    assert_error_page(response, 422, "occurred_at", "licence_number", "person_role")
    assert "must be now or in the past" in text(response)
    assert "There is no premises with that licence number" in text(response)

    response = post_form(
        client,
        "/incidents/new",
        {
            "category": "Drugs",
            "occurred_at": "2026-11-01 12:00",
            "description": "Dealing",
            "latitude": "north",
            "longitude": "-2.9",
            "licence_number": world["premises"].licence_number,
            "authority": "",
            "person_role": "suspect",
        },
    )
    assert_error_page(response, 422, "latitude", "authority", "person_name")
    assert (
        session.scalar(
            select(func.count()).select_from(Incident).where(Incident.source == "manual")
        )
        == 0
    )


# ---- importing ----------------------------------------------------------------------------


def test_import_shows_the_run_and_rejections_download_and_a_second_upload_adds_nothing(
    client: FlaskClient, session: Any, world: dict[str, Any], corner: Premises
) -> None:
    far = LAT + 0.05
    data = police_csv(
        police_row("CRIME-NEAR", crime="Public order", lat=LAT + 20 * NORTH_PER_M),
        police_row(lat=far),  # ASB: no Crime ID
        police_row(lat=far),  # the same again: a second report, not a duplicate
        police_row("CRIME-BAD", month="2026-13"),
        police_row("CRIME-FAR", crime="Drugs", lat=far),
    )
    sign_in(client, world["officer"])

    response = upload(client, data)
    assert response.status_code == 302, text(response)[:2000]
    run = session.scalars(
        select(IncidentImportRun).where(IncidentImportRun.file_name == "street.csv")
    ).one()
    assert response.headers["Location"].endswith(f"/incidents/import/{run.id}")
    page = page_of(client.get(response.headers["Location"]))
    assert page.summary["Rows read"] == "5"
    assert page.summary["Created"] == "4"
    assert page.summary["Duplicates (already held)"] == "0"
    assert page.summary["Rejected"] == "1"
    assert page.summary["Suggested links (nearby premises)"] == "1"
    assert page.tables["rejected-rows"][1:] == [["5", "Month '2026-13' is not in the form YYYY-MM"]]

    download = client.get(f"/incidents/import/{run.id}/rejected.csv")
    assert download.status_code == 200
    assert download.mimetype == "text/csv"
    assert "attachment" in download.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(text(download))))
    assert rows[0] == ["line_number", "reason", "row"]
    assert [(r[0], r[1]) for r in rows[1:]] == [("5", "Month '2026-13' is not in the form YYYY-MM")]
    assert rows[1][2].startswith("CRIME-BAD,2026-13,")

    again = upload(client, data)
    assert again.status_code == 302
    second = page_of(client.get(again.headers["Location"]))
    assert second.summary["Created"] == "0"
    assert second.summary["Duplicates (already held)"] == "4"
    assert second.summary["Rejected"] == "1"
    assert second.summary["Suggested links (nearby premises)"] == "0"
    session.expire_all()
    assert (
        session.scalar(
            select(func.count()).select_from(Incident).where(Incident.source == "police-uk")
        )
        == 4
    )

    listing = page_of(client.get("/incidents/import"))
    assert [row[2:] for row in listing.tables["recent-imports"][1:3]] == [
        ["0", "4", "1"],
        ["4", "0", "1"],
    ]


def test_a_file_with_the_wrong_header_is_refused_on_the_file_field(
    client: FlaskClient, session: Any, world: dict[str, Any]
) -> None:
    sign_in(client, world["officer"])
    runs = session.scalar(select(func.count()).select_from(IncidentImportRun))
    response = upload(client, b"id,when,what\r\n1,2026-09,Drugs\r\n")
    assert_error_page(response, 422, "incident_file")
    assert "This is not a data.police.uk street-level CSV" in text(response)
    assert session.scalar(select(func.count()).select_from(IncidentImportRun)) == runs
    assert (
        session.scalar(
            select(func.count()).select_from(Incident).where(Incident.source == "police-uk")
        )
        == 0
    )

    response = upload(client, b"", name="notes.pdf")
    assert_error_page(response, 422, "incident_file")


# ---- the suggestions queue ----------------------------------------------------------------


def link_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'name="link" type="checkbox" value="(\d+)"', html)]


def test_the_queue_shows_the_newest_suggestions_of_a_busy_premises_and_then_the_next(
    client: FlaskClient,
    session: Any,
    world: dict[str, Any],
    corner: Premises,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(services, "SUGGESTIONS_PER_PREMISES", 4)
    # Six months of one crime each near the premises: the newest are the latest months.
    months = [f"2026-0{m}" for m in range(1, 7)]
    data = police_csv(*(police_row(f"BUSY-{m}", month=m, crime="Drugs") for m in months))
    sign_in(client, world["officer"])
    assert upload(client, data).status_code == 302

    queue = text(client.get("/incidents/suggestions"))
    assert "6 suggested, the newest 4 shown" in queue
    shown = link_ids(queue)
    months_shown = dict(
        session.execute(
            select(PremisesIncidentLink.id, Incident.month)
            .join(Incident)
            .where(PremisesIncidentLink.id.in_(shown))
        ).all()
    )
    assert [months_shown[i] for i in shown] == ["2026-06", "2026-05", "2026-04", "2026-03"]

    confirmed = client.post(
        "/incidents/suggestions",
        data={"csrf_token": csrf_from(queue), "decision": "confirmed", "link": shown},
    )
    assert confirmed.status_code == 302
    rest = text(client.get("/incidents/suggestions"))
    assert "2 suggested" in rest and "shown" not in rest.split("2 suggested")[1][:20]
    assert len(link_ids(rest)) == 2 and not set(link_ids(rest)) & set(shown)


def test_suggestions_are_confirmed_and_rejected_in_bulk_and_rejections_stay_rejected(
    client: FlaskClient, session: Any, world: dict[str, Any], corner: Premises
) -> None:
    data = police_csv(
        *(police_row(f"NEAR-{i}", crime="Drugs", lat=LAT + i * 5 * NORTH_PER_M) for i in range(3))
    )
    sign_in(client, world["officer"])
    assert upload(client, data).status_code == 302

    queue = client.get("/incidents/suggestions")
    assert queue.status_code == 200
    ids = link_ids(text(queue))
    assert len(ids) == 3
    assert "The Corner House" in text(queue)

    token = csrf_from(text(queue))
    confirmed = client.post(
        "/incidents/suggestions",
        data={"csrf_token": token, "decision": "confirmed", "link": ids[:2]},
    )
    assert confirmed.status_code == 302
    assert "2 suggestions confirmed." in text(client.get(confirmed.headers["Location"]))
    token = csrf_from(text(client.get("/incidents/suggestions")))
    rejected = client.post(
        "/incidents/suggestions",
        data={"csrf_token": token, "decision": "rejected", "link": [ids[2]]},
    )
    assert rejected.status_code == 302
    after = client.get("/incidents/suggestions")
    assert "1 suggestion rejected." in text(after)
    assert "There are no suggestions to review." in text(after)

    session.expire_all()
    statuses = dict(
        session.execute(
            select(PremisesIncidentLink.id, PremisesIncidentLink.status).where(
                PremisesIncidentLink.id.in_(ids)
            )
        ).all()
    )
    assert statuses == {ids[0]: "confirmed", ids[1]: "confirmed", ids[2]: "rejected"}
    events = session.scalars(
        select(AuditEvent.event)
        .where(AuditEvent.premises_id == corner.id, AuditEvent.event.like("link_%"))
        .order_by(AuditEvent.seq)
    ).all()
    assert events == ["link_confirmed", "link_confirmed", "link_rejected"]

    # Importing the file again (or a re-issue of the month) brings nothing back.
    assert upload(client, data).status_code == 302
    assert link_ids(text(client.get("/incidents/suggestions"))) == []
    session.expire_all()
    assert (
        dict(
            session.execute(
                select(PremisesIncidentLink.id, PremisesIncidentLink.status).where(
                    PremisesIncidentLink.premises_id == corner.id
                )
            ).all()
        )
        == statuses
    )


def test_deciding_nothing_or_with_a_foreign_next_stays_on_the_site(
    client: FlaskClient, session: Any, world: dict[str, Any], corner: Premises
) -> None:
    sign_in(client, world["officer"])
    assert upload(client, police_csv(police_row("NEAR", crime="Drugs"))).status_code == 302
    queue = text(client.get("/incidents/suggestions"))
    token = csrf_from(queue)

    nothing = client.post(
        "/incidents/suggestions", data={"csrf_token": token, "decision": "confirmed"}
    )
    assert nothing.status_code == 302
    assert "Choose at least one suggested link" in text(client.get("/incidents/suggestions"))

    response = client.post(
        "/incidents/suggestions",
        data={
            "csrf_token": token,
            "decision": "confirmed",
            "link": link_ids(queue),
            "next": "https://evil.example/",
        },
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/incidents/suggestions"


# ---- recommendations ----------------------------------------------------------------------


@pytest.fixture
def recommendation(session: Any, world: dict[str, Any]) -> Recommendation:
    """Three serious incidents at The Crown in a week (with the world's one) recommend a
    warning."""
    premises = world["premises"]
    for i in range(2):
        record(
            session,
            world["officer"],
            source_ref=f"SERIOUS-{i}",
            licence_number=premises.licence_number,
            authority="LIV",
            occurred_at=(datetime.now(UTC) - timedelta(days=3 + i)).isoformat(),
        )
    raised = recommendations.evaluate(session, [premises.id])
    assert len(raised) == 1
    return raised[0]


def test_recommendations_page_lists_open_ones(
    app: Flask, client: FlaskClient, world: dict[str, Any], recommendation: Recommendation
) -> None:
    sign_in(client, world["officer"])
    page = page_of(client.get("/recommendations"))
    rows = page.tables["recommendations-table"]
    assert rows[1][:3] == [
        "The Crown",
        "warn",
        "3 serious incidents in 28 days (threshold 3)",
    ]
    assert f'href="/recommendations/{recommendation.id}/dismiss"' in text(
        client.get("/recommendations")
    )
    admin = app.test_client()
    sign_in(admin, world["admin"])
    seen = admin.get("/recommendations")
    assert "The Crown" in text(seen) and "/dismiss" not in text(seen)  # admin reads only


def test_dismissing_needs_a_reason_then_dismisses(
    client: FlaskClient, session: Any, world: dict[str, Any], recommendation: Recommendation
) -> None:
    url = f"/recommendations/{recommendation.id}/dismiss"
    sign_in(client, world["officer"])
    response = post_form(client, url, {"reason": "  "})
    assert_error_page(response, 422, "reason")
    assert "Give a reason" in text(response)
    session.expire_all()
    assert session.get(Recommendation, recommendation.id).status == "open"

    response = post_form(client, url, {"reason": "Spoke to the DPS; new door staff start Friday"})
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/premises/{world['premises'].id}")
    session.expire_all()
    dismissed = session.get(Recommendation, recommendation.id)
    assert dismissed.status == "dismissed"
    assert dismissed.decision_reason == "Spoke to the DPS; new door staff start Friday"
    premises_page = text(client.get(response.headers["Location"]))
    assert "Recommendation dismissed." in premises_page
    assert url not in premises_page
    assert "There are no open recommendations." in text(client.get("/recommendations"))


# ---- the premises page --------------------------------------------------------------------


def monday(moment: datetime) -> datetime:
    return (moment - timedelta(days=moment.weekday())).replace(
        hour=0, minute=0, second=0, microsecond=0
    )


def test_premises_page_shows_chart_table_linked_incidents_and_recommendations(
    client: FlaskClient, session: Any, world: dict[str, Any], recommendation: Recommendation
) -> None:
    premises = world["premises"]
    officer = world["officer"]
    now = datetime.now(UTC)
    for i in range(2):
        record(
            session,
            officer,
            category="Drugs",
            source_ref=f"DRUGS-{i}",
            licence_number=premises.licence_number,
            authority="LIV",
            occurred_at=(now - timedelta(days=15, hours=i)).isoformat(),
        )
    # Neither a suggestion nor another premises' incident counts.
    record(session, officer, category="Robbery", source_ref="ELSEWHERE")
    other = world["other_premises"]
    record(
        session,
        officer,
        category="Robbery",
        source_ref="SWAN",
        licence_number=other.licence_number,
        authority="SEF",
    )
    confirmed = session.scalars(
        select(Incident)
        .join(PremisesIncidentLink)
        .where(
            PremisesIncidentLink.premises_id == premises.id,
            PremisesIncidentLink.status == "confirmed",
        )
    ).all()
    assert len(confirmed) == 5

    expected: dict[datetime, dict[str, int]] = {}
    for incident in confirmed:
        week = monday(incident.counted_at.astimezone(UTC))
        expected.setdefault(week, {"Drugs": 0, "Public order": 0})[incident.category] += 1

    sign_in(client, officer)
    response = client.get(f"/premises/{premises.id}")
    page = page_of(response)
    table = page.tables["incident-chart-table"]
    assert table[0] == ["Week starting", "Drugs", "Public order"]
    assert table[1:] == [
        [f"{week:%-d %b %Y}", str(counts["Drugs"]), str(counts["Public order"])]
        for week, counts in sorted(expected.items())
    ]
    html = text(response)
    assert "5 in all" in html  # the chart's caption
    assert html.count('<rect x="') == sum(  # one bar segment per category and week
        1 for counts in expected.values() for n in counts.values() if n
    )

    linked = page.tables["linked-incidents"]
    assert linked[0] == ["When", "Category", "Where", "Linked by"]
    assert sorted(row[1] for row in linked[1:]) == [
        "Drugs",
        "Drugs",
        "Public order",
        "Public order",
        "Public order",
    ]
    assert all(row[3] == "licence number" for row in linked[1:])
    assert "Robbery" not in html

    assert "Recommended: warn" in html
    assert "3 serious incidents in 28 days (threshold 3)" in html
    assert f'href="/recommendations/{recommendation.id}/dismiss"' in html


def test_premises_page_empty_states_without_incidents(
    client: FlaskClient, world: dict[str, Any], corner: Premises
) -> None:
    sign_in(client, world["officer"])
    response = client.get(f"/premises/{corner.id}")
    page = page_of(response)
    assert "incident-chart-table" not in page.tables
    assert "linked-incidents" not in page.tables
    assert "No confirmed incidents in this period." in text(response)
    assert "No incidents are linked to this premises." in text(response)
    assert 'id="recommendations"' not in text(response)


def test_the_chart_bars_carry_their_figures_and_escape_category_names() -> None:
    from licensing.incidents.charts import weekly_chart

    weeks = [datetime(2026, 1, 5, tzinfo=UTC), datetime(2026, 1, 12, tzinfo=UTC)]
    chart = weekly_chart(weeks, {'<img src=x onerror="alert(1)">': [1, 2], "Drugs": [0, 3]})
    svg = str(chart.bars_svg())
    assert svg.count("<rect ") == 3  # no bar for a week's zero
    assert "<img" not in svg and "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in svg
    assert "<title>Week of 12 Jan 2026: 3 Drugs</title>" in svg
    # The tallest week (5 incidents) fills the plot; its two segments stack up from 160.
    tops = sorted(float(y) for y in re.findall(r' y="([\d.]+)"', svg))
    assert tops[0] == 0.0


def test_the_chart_table_escapes_category_names_and_lists_only_active_weeks() -> None:
    from licensing.incidents.charts import weekly_chart

    weeks = [
        datetime(2026, 3, 23, tzinfo=UTC),
        datetime(2026, 3, 30, tzinfo=UTC),  # after the clocks go forward: still the Monday
        datetime(2026, 4, 6, tzinfo=UTC),
    ]
    chart = weekly_chart(weeks, {"<b>Drugs</b>": [1, 0, 2], "Public order": [4, 0, 0]})
    head = str(chart.table_header_cells())
    assert "<b>" not in head and "&lt;b&gt;Drugs&lt;/b&gt;" in head
    assert head.count("<th ") == 2
    rows = re.findall(r"<tr [^>]*>(.*?)</tr>", str(chart.table_rows()))
    assert [re.findall(r">([^<>]+)</t[hd]>", row) for row in rows] == [
        ["23 Mar 2026", "1", "4"],
        ["6 Apr 2026", "2", "0"],
    ]


def test_premises_history_names_each_linked_incident_exact_or_month_only(
    client: FlaskClient, session: Any, world: dict[str, Any], corner: Premises
) -> None:
    when = datetime(2026, 7, 4, 22, 15, tzinfo=UTC)
    exact = services.record_incident(
        session,
        world["officer"],
        {
            "category": "Violence and sexual offences",
            "occurred_at": when.isoformat(),
            "location": "Beer garden",
        },
        premises=corner,
    ).incident
    month_only = services.record_incident(
        session,
        world["officer"],
        {"category": "Drugs", "occurred_at": when.isoformat(), "location": ""},
        premises=corner,
    ).incident
    month_only.occurred_at, month_only.month = None, "2026-06"  # as data.police.uk gives it
    session.commit()

    sign_in(client, world["officer"])
    body = text(client.get(f"/premises/{corner.id}"))
    assert f"Violence and sexual offences, {format_london(when)}, Beer garden</a>" in body
    assert f'href="/incidents/{exact.id}"' in body
    assert "Drugs, 2026-06</a>" in body
    assert f'href="/incidents/{month_only.id}"' in body
