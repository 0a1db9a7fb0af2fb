"""The web pages through the test client: real sign-in, real CSRF tokens, real database."""

from __future__ import annotations

import csv
import io
import re
from html.parser import HTMLParser
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from licensing.audit.models import AuditEvent
from licensing.premises.models import Premises
from tests.conftest import PASSWORD, csrf_from, ensure_issued_bundle, move, sign_in

LGA_HEADER = (
    "EXTRACTDATE,ORGANISATIONURI,ORGANISATIONLABEL,CASEREFERENCE,CASEDATE,SERVICETYPEURI,"
    "SERVICETYPELABEL,PREMISESNAME,LOCATIONTEXT,POSTCODE,ENTERTAINMENTTYPEURI,"
    "ENTERTAINMENTTYPELABEL,LATENIGHTREFRESHMENT,ALCOHOLSUPPLY,OPENINGHOURS,STATUSURI,"
    "STATUSLABEL,LICENCESTARTDATE,LICENCEENDDATE,ONPREMISESALCOHOLSALE,OFFPREMISESALCOHOLSALE,"
    "LICENCEHOLDER,LICENCEHOLDERADDRESS,LICENCEHOLDERPOSTCODE,APPLICANTTYPEURI,APPLICANTTYPELABEL,"
    "DESIGNATEDPREMISESSUPERVISOR,SUPERVISORLICENCENO,SUPERVISORADDRESS,SUPERVISORPOSTCODE,"
    "CONDITIONS,DECISIONDATE,DECIDEDBY,LICENCEURL,UPRN,GEOPOINTLICENSINGURL"
)


@pytest.fixture
def other_client(app: Flask, client: FlaskClient) -> FlaskClient:
    """A second browser, for someone else acting at the same time."""
    return app.test_client()


class Page(HTMLParser):
    """The parts of a page the tests look at: title, ids, error summary links, headings."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.title = ""
        self.ids: set[str] = set()
        self.summary_links: list[str] = []
        self.headings: list[int] = []
        self._in_title = False
        self._summary_depth = 0
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

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag == "ul" and self._summary_depth:
            self._summary_depth = 0

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data


def text(response: Any) -> str:
    return response.get_data(as_text=True)


def assert_error_page(response: Any, status: int, *field_ids: str) -> Page:
    """The response re-renders with `status`, "Error:" in the title and an error summary
    whose links all point at elements that exist on the page (including `field_ids`)."""
    assert response.status_code == status, text(response)[:2000]
    page = Page(text(response))
    assert page.title.strip().startswith("Error:"), page.title
    assert "govuk-error-summary" in text(response)
    for field_id in field_ids:
        assert f"#{field_id}" in page.summary_links, page.summary_links
    for href in page.summary_links:
        assert href.startswith("#") and href[1:] in page.ids, (href, page.summary_links)
    return page


def event_form(
    client: FlaskClient, premises: Premises, event: str, **fields: Any
) -> dict[str, Any]:
    """The data a browser would post from the event's form, as rendered now."""
    html = text(client.get(f"/premises/{premises.id}"))
    assert f'action="/premises/{premises.id}/events/{event}"' in html, (
        f"no {event} form on the page"
    )
    marker = f'id="{event}-version" name="{event}-version" type="hidden" value="'
    start = html.index(marker) + len(marker)
    version = html[start : html.index('"', start)]
    data = {f"{event}-csrf_token": csrf_from(html), f"{event}-version": version}
    data.update({f"{event}-{k}": v for k, v in fields.items()})
    return data


def history_events(session: Any, premises: Premises) -> list[str]:
    session.expire_all()
    return list(
        session.scalars(
            select(AuditEvent.event)
            .where(AuditEvent.premises_id == premises.id)
            .order_by(AuditEvent.seq)
        )
    )


# ---- signing in and out ------------------------------------------------------------------


def test_wrong_password_shows_error_summary_and_error_title(
    client: FlaskClient, world: dict[str, Any]
) -> None:
    token = csrf_from(text(client.get("/sign-in")))
    response = client.post(
        "/sign-in",
        data={
            "email": world["officer"].email,
            "password": "wrong-password-here",
            "csrf_token": token,
        },
    )
    page = assert_error_page(response, 200, "email")
    assert page.title.startswith("Error: Sign in")
    assert "Enter a correct email address and password" in text(response)
    assert client.get("/premises").status_code == 302  # still signed out


def test_sign_in_with_empty_fields_links_both_errors(
    client: FlaskClient, world: dict[str, Any]
) -> None:
    token = csrf_from(text(client.get("/sign-in")))
    response = client.post("/sign-in", data={"email": "", "password": "", "csrf_token": token})
    assert_error_page(response, 200, "email", "password")


def test_sign_in_returns_to_the_page_asked_for(client: FlaskClient, world: dict[str, Any]) -> None:
    premises = world["premises"]
    first = client.get(f"/premises/{premises.id}")
    assert first.status_code == 302
    login_url = first.headers["Location"]
    token = csrf_from(text(client.get(login_url)))
    response = client.post(
        login_url, data={"email": world["officer"].email, "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/premises/{premises.id}")


def test_sign_out_is_post_only(client: FlaskClient, world: dict[str, Any]) -> None:
    sign_in(client, world["officer"])
    assert client.get("/sign-out").status_code == 405
    assert client.get("/premises").status_code == 200  # the GET did not sign out
    token = csrf_from(text(client.get("/premises")))
    response = client.post("/sign-out", data={"csrf_token": token})
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/sign-in")
    assert client.get("/premises").status_code == 302


def test_post_without_csrf_token_is_refused(
    client: FlaskClient, world: dict[str, Any], session: Any
) -> None:
    premises = world["premises"]
    sign_in(client, world["officer"])
    response = client.post(
        f"/premises/{premises.id}/events/warn",
        data={"warn-version": str(premises.version), "warn-reason": "No token"},
    )
    assert response.status_code == 400
    session.refresh(premises)
    assert premises.state == "monitored"
    assert client.post("/sign-out").status_code == 400
    assert client.get("/premises").status_code == 200  # still signed in


# ---- the list --------------------------------------------------------------------------


@pytest.fixture
def register(world: dict[str, Any], make_premises: Any, session: Any) -> dict[str, Any]:
    """More premises in both authorities and several states."""
    liv, sef, officer, supervisor = (
        world["liv"],
        world["sef"],
        world["officer"],
        world["supervisor"],
    )
    anchor = make_premises(liv, officer, name="The Anchor", postcode="L1 8JQ")
    bell = make_premises(liv, officer, name="The Bell", postcode="L2 2AA")
    globe = make_premises(sef, officer, name="The Globe", postcode="PR8 1AA")
    move(session, bell, officer, "warn")
    move(session, globe, officer, "warn")
    move(
        session,
        anchor,
        supervisor,
        "apply_for_summary_review",
        received_at="2025-01-06T10:00:00+00:00",
        certificate_reference="CERT-1",
    )
    return {"anchor": anchor, "bell": bell, "globe": globe}


def _names_listed(html: str) -> set[str]:
    names = {"The Crown", "The Swan", "The Anchor", "The Bell", "The Globe"}
    return {n for n in names if f">{n}</a>" in html}


def test_list_filters_by_state_authority_and_search(
    client: FlaskClient, world: dict[str, Any], register: Any
) -> None:
    sign_in(client, world["officer"])
    everything = text(client.get("/premises"))
    assert _names_listed(everything) == {
        "The Crown",
        "The Swan",
        "The Anchor",
        "The Bell",
        "The Globe",
    }
    assert "5 premises" in everything

    assert _names_listed(text(client.get("/premises?state=warned"))) == {"The Bell", "The Globe"}
    assert _names_listed(text(client.get("/premises?authority=SEF"))) == {"The Swan", "The Globe"}
    assert _names_listed(text(client.get("/premises?state=warned&authority=liv"))) == {"The Bell"}
    assert _names_listed(text(client.get("/premises?q=anch"))) == {"The Anchor"}
    assert _names_listed(text(client.get("/premises?q=L18JQ"))) == {
        "The Anchor"
    }  # postcode, no space
    assert _names_listed(text(client.get("/premises?q=nothing-like-this"))) == set()
    assert _names_listed(text(client.get("/premises?state=bogus"))) == _names_listed(everything)


def test_list_paginates_and_keeps_filters(
    app: Flask, client: FlaskClient, world: dict[str, Any], register: Any
) -> None:
    app.config["PAGE_SIZE"] = 2
    sign_in(client, world["officer"])
    first = text(client.get("/premises"))
    second = text(client.get("/premises?page=2"))
    third = text(client.get("/premises?page=3"))
    # Ordered by name: Anchor, Bell | Crown, Globe | Swan
    assert _names_listed(first) == {"The Anchor", "The Bell"}
    assert _names_listed(second) == {"The Crown", "The Globe"}
    assert _names_listed(third) == {"The Swan"}
    assert 'href="/premises?page=2' in first and "govuk-pagination" in first
    filtered = text(client.get("/premises?authority=LIV"))  # Anchor, Bell | Crown
    assert "page=2" in filtered and "authority=LIV" in filtered
    assert _names_listed(text(client.get("/premises?authority=LIV&page=2"))) == {"The Crown"}
    # The "next" links carry the last premises shown, and the page after it is read by
    # keyset from there (after the Anchor: the Bell on, where page 2 by number would start
    # at the Crown).
    assert f"after={register['bell'].id}" in first
    anchor = register["anchor"].id
    assert _names_listed(text(client.get(f"/premises?page=2&after={anchor}"))) == {
        "The Bell",
        "The Crown",
    }
    assert _names_listed(text(client.get(f"/premises?state=warned&page=2&after={anchor}"))) == {
        "The Bell",
        "The Globe",
    }


def test_council_user_sees_only_own_authority_review_and_action(
    client: FlaskClient, world: dict[str, Any], register: Any, session: Any
) -> None:
    globe = register["globe"]
    move(session, globe, world["supervisor"], "apply_for_review", application_date="2025-01-06")
    sign_in(client, world["council"])
    listing = text(client.get("/premises"))
    assert _names_listed(listing) == {"The Anchor"}  # LIV and under review; Globe is SEF
    assert 'name="authority"' not in listing  # no authority filter for a council user
    assert "Add a premises" not in listing and "Import register" not in listing
    assert client.get(f"/premises/{register['anchor'].id}").status_code == 200
    for hidden in (world["premises"], register["bell"], globe, world["other_premises"]):
        response = client.get(f"/premises/{hidden.id}")
        assert response.status_code == 404, hidden.name
        assert hidden.name not in text(response)


# ---- the premises page -------------------------------------------------------------------


def test_premises_page_shows_details_state_and_history(
    client: FlaskClient, world: dict[str, Any], session: Any
) -> None:
    premises = world["premises"]
    move(session, premises, world["officer"], "warn", reason="Two assaults in a week")
    sign_in(client, world["officer"])
    html = text(client.get(f"/premises/{premises.id}"))
    page = Page(html)
    assert '<h1 class="govuk-heading-l">The Crown</h1>' in html
    assert "Liverpool City Council" in html and premises.licence_number in html
    assert "Holder Ltd" in html
    assert 'id="premises-state"' in html and ">Warned</strong>" in html
    assert 'data-event="warn"' in html and "Two assaults in a week" in html
    assert 'data-event="premises_registered"' in html
    assert html.index('data-event="warn"') < html.index(
        'data-event="premises_registered"'
    )  # newest first
    assert "Officer 1" in html  # the actor's name
    assert page.headings[0] == 1
    assert all(b - a <= 1 for a, b in zip(page.headings, page.headings[1:], strict=False)), (
        page.headings
    )


def test_premises_page_shows_the_latest_history_and_links_to_the_rest(
    client: FlaskClient, world: dict[str, Any], session: Any
) -> None:
    """A long history: the page shows the latest entries (newest first) and how many
    there are in all, with a link to the timeline, which still has every entry."""
    from licensing.audit.services import append_event
    from licensing.premises.views import HISTORY_SHOWN

    premises = world["premises"]
    append_event(
        session,
        event="details_changed",
        actor_id=world["officer"].id,
        premises_id=premises.id,
        reason="Oldest change",
        payload={"changes": {"licence_holder": {"personal": True}}},
        personal_values={"licence_holder": ("Erstwhile Holder", "Later Holder")},
    )
    for n in range(HISTORY_SHOWN + 4):
        append_event(
            session,
            event="details_changed",
            actor_id=world["officer"].id,
            premises_id=premises.id,
            reason=f"Change number {n}",
            payload={"changes": {"opening_hours": {"old": str(n), "new": str(n + 1)}}},
        )
    session.commit()
    total = len(history_events(session, premises))
    assert total > HISTORY_SHOWN + 4

    sign_in(client, world["officer"])
    html = text(client.get(f"/premises/{premises.id}"))
    listed = html.split('id="history-list"', 1)[1].split("</ol>", 1)[0]
    assert listed.count("<li ") == HISTORY_SHOWN
    newest = f"Change number {HISTORY_SHOWN + 3}"
    assert newest in listed and listed.index(newest) < listed.index(
        f"Change number {HISTORY_SHOWN + 2}"
    )
    # Older entries, and the personal values of the oldest, are left to the timeline.
    assert "Oldest change" not in html and "Erstwhile Holder" not in html
    shown = Page(html)
    assert "history-shown" in shown.ids
    assert f"The latest {HISTORY_SHOWN} of {total} entries" in html
    assert f'href="/premises/{premises.id}/timeline"' in html.split('id="history-shown"', 1)[1]

    timeline = text(client.get(f"/premises/{premises.id}/timeline"))
    assert timeline.count('data-kind="event"') == total
    assert "Oldest change" in timeline and "Erstwhile Holder" in timeline


def test_premises_page_with_a_short_history_shows_it_all(
    client: FlaskClient, world: dict[str, Any], session: Any
) -> None:
    """No "latest N of M" line when every entry is on the page."""
    premises = world["premises"]
    move(session, premises, world["officer"], "warn", reason="Two assaults in a week")
    sign_in(client, world["officer"])
    html = text(client.get(f"/premises/{premises.id}"))
    listed = html.split('id="history-list"', 1)[1].split("</ol>", 1)[0]
    assert listed.count("<li ") == len(history_events(session, premises))
    assert 'id="history-shown"' not in html


def test_officer_sees_warn_but_not_apply_for_review(
    client: FlaskClient, world: dict[str, Any], session: Any
) -> None:
    premises = world["premises"]
    sign_in(client, world["officer"])
    html = text(client.get(f"/premises/{premises.id}"))
    assert 'id="event-warn"' in html
    assert 'id="event-apply_for_summary_review"' not in html
    move(session, premises, world["officer"], "warn")
    html = text(client.get(f"/premises/{premises.id}"))
    assert 'id="event-stand_down"' in html
    assert 'id="event-apply_for_review"' not in html
    assert "Change details" in html


def test_supervisor_sees_the_supervisor_events(
    client: FlaskClient, world: dict[str, Any], session: Any
) -> None:
    premises = world["premises"]
    sign_in(client, world["supervisor"])
    html = text(client.get(f"/premises/{premises.id}"))
    assert 'id="event-warn"' in html and 'id="event-apply_for_summary_review"' in html
    assert 'id="event-apply_for_review"' not in html  # not from monitored
    assert 'id="warn-override_reason"' in html  # supervisors may override
    move(session, premises, world["supervisor"], "warn")
    html = text(client.get(f"/premises/{premises.id}"))
    assert 'id="event-apply_for_review"' in html and 'id="event-stand_down"' in html
    assert 'id="event-warn"' not in html


def test_council_user_sees_no_event_forms_or_edit_link(
    client: FlaskClient, world: dict[str, Any], session: Any
) -> None:
    premises = world["premises"]
    move(
        session,
        premises,
        world["supervisor"],
        "apply_for_summary_review",
        received_at="2025-01-06T10:00:00+00:00",
        certificate_reference="CERT-9",
    )
    sign_in(client, world["council"])
    html = text(client.get(f"/premises/{premises.id}"))
    assert "What you can do now" not in html and "/events/" not in html
    assert "Change details" not in html
    assert "CERT-9" in html and "Summary review (s.53A)" in html


def test_open_review_hides_empty_rows(
    client: FlaskClient, world: dict[str, Any], session: Any
) -> None:
    premises = world["premises"]
    move(session, premises, world["supervisor"], "warn")
    move(session, premises, world["supervisor"], "apply_for_review", application_date="2025-01-06")
    sign_in(client, world["officer"])
    html = text(client.get(f"/premises/{premises.id}"))
    review = html[
        html.index('id="open-review"') : html.index("</dl>", html.index('id="open-review"'))
    ]
    assert "Standard review (s.51)" in review and "6 Jan 2025" in review
    assert "Received" not in review and "certificate" not in review


# ---- taking events through the forms -----------------------------------------------------


def test_warn_with_a_reason_redirects_and_shows_in_history(
    client: FlaskClient, world: dict[str, Any], session: Any
) -> None:
    premises = world["premises"]
    sign_in(client, world["officer"])
    data = event_form(client, premises, "warn", reason="Fight outside at closing time")
    response = client.post(f"/premises/{premises.id}/events/warn", data=data)
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/premises/{premises.id}")
    html = text(client.get(response.headers["Location"]))
    assert "Warn: done. The premises is now warned." in html
    assert ">Warned</strong>" in html
    assert 'data-event="warn"' in html and "Fight outside at closing time" in html
    session.refresh(premises)
    assert premises.state == "warned"
    assert history_events(session, premises)[-1] == "warn"


def test_missing_reason_rerenders_with_422_and_linked_error(
    client: FlaskClient, world: dict[str, Any], session: Any
) -> None:
    premises = world["premises"]
    sign_in(client, world["officer"])
    data = event_form(client, premises, "warn", reason="")
    response = client.post(f"/premises/{premises.id}/events/warn", data=data)
    assert_error_page(response, 422, "warn-reason")
    html = text(response)
    assert "Give a reason" in html
    assert '<details class="govuk-details" id="event-warn" open>' in html  # the form is open
    session.refresh(premises)
    assert premises.state == "monitored"
    assert history_events(session, premises) == ["premises_registered"]


def test_blank_reason_is_refused_by_the_service_too(
    client: FlaskClient, world: dict[str, Any], session: Any
) -> None:
    premises = world["premises"]
    sign_in(client, world["officer"])
    data = event_form(client, premises, "warn", reason="   ")
    response = client.post(f"/premises/{premises.id}/events/warn", data=data)
    assert_error_page(response, 422, "warn-reason")
    session.refresh(premises)
    assert premises.state == "monitored"


def test_missing_date_links_to_the_day_box(
    client: FlaskClient, world: dict[str, Any], session: Any
) -> None:
    premises = world["premises"]
    move(session, premises, world["supervisor"], "warn")
    sign_in(client, world["supervisor"])
    data = event_form(client, premises, "apply_for_review", reason="Repeated disorder")
    response = client.post(f"/premises/{premises.id}/events/apply_for_review", data=data)
    page = assert_error_page(response, 422, "apply_for_review-application_date-day")
    assert "apply_for_review-application_date-day" in page.ids


def test_future_date_from_the_service_links_to_the_day_box(
    client: FlaskClient, world: dict[str, Any], session: Any
) -> None:
    premises = world["premises"]
    move(session, premises, world["supervisor"], "warn")
    sign_in(client, world["supervisor"])
    data = event_form(client, premises, "apply_for_review", reason="Repeated disorder")
    data["apply_for_review-application_date"] = ["1", "1", "2999"]
    response = client.post(f"/premises/{premises.id}/events/apply_for_review", data=data)
    assert_error_page(response, 422, "apply_for_review-application_date-day")
    assert "cannot be in the future" in text(response)
    session.refresh(premises)
    assert premises.state == "warned"


def test_supervisor_applies_for_review_with_a_date(
    client: FlaskClient, world: dict[str, Any], session: Any
) -> None:
    premises = world["premises"]
    move(session, premises, world["supervisor"], "warn")
    ensure_issued_bundle(session, premises, world["supervisor"])
    sign_in(client, world["supervisor"])
    data = event_form(client, premises, "apply_for_review", reason="Repeated disorder")
    data["apply_for_review-application_date"] = ["6", "1", "2025"]
    response = client.post(f"/premises/{premises.id}/events/apply_for_review", data=data)
    assert response.status_code == 302
    session.refresh(premises)
    assert premises.state == "review"
    assert "6 Jan 2025" in text(client.get(f"/premises/{premises.id}"))


def test_stale_version_is_a_conflict_and_changes_nothing(
    client: FlaskClient, other_client: FlaskClient, world: dict[str, Any], session: Any
) -> None:
    premises = world["premises"]
    sign_in(client, world["officer"])
    stale = event_form(client, premises, "warn", reason="Officer's warning")

    # Meanwhile the supervisor warns and then stands it down again (same state, new version).
    sign_in(other_client, world["supervisor"])
    for event in ("warn", "stand_down"):
        fresh = event_form(other_client, premises, event, reason=f"Supervisor {event}")
        assert (
            other_client.post(f"/premises/{premises.id}/events/{event}", data=fresh).status_code
            == 302
        )

    response = client.post(f"/premises/{premises.id}/events/warn", data=stale)
    assert response.status_code == 409
    html = text(response)
    page = Page(html)
    assert page.title.startswith("Error:")
    assert "conflict-message" in page.ids
    assert "Warn was not done: someone else changed this premises since you opened it" in html
    assert "Supervisor stand_down" in html  # the page shows their change
    session.refresh(premises)
    assert premises.state == "monitored" and premises.version == 3
    assert history_events(session, premises) == ["premises_registered", "warn", "stand_down"]
    assert 'data-event="warn"' not in html.split('data-event="stand_down"')[0]  # nothing new on top
    # The form is open again with the current version and the reason already typed.
    assert '<details class="govuk-details" id="event-warn" open>' in html
    assert 'id="warn-version" name="warn-version" type="hidden" value="3"' in html
    assert "Officer&#39;s warning</textarea>" in html
    retry = event_form(client, premises, "warn", reason="Officer's warning")
    assert client.post(f"/premises/{premises.id}/events/warn", data=retry).status_code == 302


def test_unknown_event_is_404(client: FlaskClient, world: dict[str, Any]) -> None:
    premises = world["premises"]
    sign_in(client, world["officer"])
    token = csrf_from(text(client.get(f"/premises/{premises.id}")))
    response = client.post(f"/premises/{premises.id}/events/demolish", data={"csrf_token": token})
    assert response.status_code == 404


def test_event_not_possible_in_this_state_is_refused(
    client: FlaskClient, world: dict[str, Any], session: Any
) -> None:
    premises = world["premises"]
    sign_in(client, world["officer"])
    data = event_form(client, premises, "warn", reason="x")
    data = {k.replace("warn-", "stand_down-"): v for k, v in data.items()}
    response = client.post(f"/premises/{premises.id}/events/stand_down", data=data)
    assert_error_page(response, 422)
    page = Page(text(response))
    assert "conflict-message" in page.ids
    assert "Stand down is not possible while the premises is monitored" in text(response)
    session.refresh(premises)
    assert premises.state == "monitored"


# ---- editing -------------------------------------------------------------------------------


def edit_form(client: FlaskClient, premises: Premises) -> dict[str, Any]:
    html = text(client.get(f"/premises/{premises.id}/edit"))
    page = Page(html)
    fields = [
        "name",
        "address",
        "postcode",
        "uprn",
        "latitude",
        "longitude",
        "licence_holder",
        "dps",
        "licensable_activities",
        "opening_hours",
        "licence_status",
        "case_officer_id",
        "reason",
    ]
    for field in fields:
        assert field in page.ids, field
        assert f'for="{field}"' in html, f"{field} has no label"
    marker = 'id="version" name="version" type="hidden" value="'
    start = html.index(marker) + len(marker)
    return {
        "csrf_token": csrf_from(html),
        "version": html[start : html.index('"', start)],
        "name": premises.name,
        "address": premises.address,
        "postcode": premises.postcode,
        "uprn": premises.uprn or "",
        "latitude": "",
        "longitude": "",
        "licence_holder": premises.licence_holder,
        "dps": premises.dps,
        "licensable_activities": premises.licensable_activities,
        "opening_hours": premises.opening_hours,
        "licence_status": premises.licence_status,
        "case_officer_id": str(premises.case_officer_id or ""),
        "reason": "",
    }


def test_edit_saves_changes_as_an_event(
    client: FlaskClient, world: dict[str, Any], session: Any
) -> None:
    premises = world["premises"]
    sign_in(client, world["officer"])
    data = edit_form(client, premises)
    data.update(
        opening_hours="Mon-Sun 10:00-23:00",
        postcode="l1 1aa",
        reason="Variation granted",
        case_officer_id=str(world["supervisor"].id),
    )
    response = client.post(f"/premises/{premises.id}/edit", data=data)
    assert response.status_code == 302
    html = text(client.get(response.headers["Location"]))
    assert "Changes saved." in html
    assert 'data-event="details_changed"' in html and "Variation granted" in html
    assert "Opening hours: (none) → Mon-Sun 10:00-23:00" in html
    assert "Postcode: (none) → L1 1AA" in html
    # The case officer by name, not by id.
    assert f"Case officer: {world['officer'].name} → {world['supervisor'].name}" in html
    session.refresh(premises)
    assert premises.opening_hours == "Mon-Sun 10:00-23:00" and premises.version == 2
    assert history_events(session, premises)[-1] == "details_changed"


def test_edit_with_nothing_changed_records_nothing(
    client: FlaskClient, world: dict[str, Any], session: Any
) -> None:
    premises = world["premises"]
    sign_in(client, world["officer"])
    response = client.post(f"/premises/{premises.id}/edit", data=edit_form(client, premises))
    assert response.status_code == 302
    assert "Nothing changed." in text(client.get(response.headers["Location"]))
    assert history_events(session, premises) == ["premises_registered"]


def test_edit_with_invalid_value_is_422_with_linked_error(
    client: FlaskClient, world: dict[str, Any]
) -> None:
    premises = world["premises"]
    sign_in(client, world["officer"])
    data = edit_form(client, premises)
    data.update(name="", latitude="north")
    response = client.post(f"/premises/{premises.id}/edit", data=data)
    assert_error_page(response, 422, "name")


def test_stale_edit_is_a_conflict(
    client: FlaskClient, other_client: FlaskClient, world: dict[str, Any], session: Any
) -> None:
    premises = world["premises"]
    sign_in(client, world["officer"])
    stale = edit_form(client, premises)
    sign_in(other_client, world["supervisor"])
    theirs = edit_form(other_client, premises)
    theirs.update(name="The Crown and Anchor", reason="Renamed")
    assert other_client.post(f"/premises/{premises.id}/edit", data=theirs).status_code == 302

    stale.update(opening_hours="24 hours", reason="Mine")
    response = client.post(f"/premises/{premises.id}/edit", data=stale)
    assert response.status_code == 409
    html = text(response)
    assert Page(html).title.startswith("Error:")
    assert "Your changes were not saved: someone else changed this premises" in html
    assert "Reload the current details" in html
    session.refresh(premises)
    assert premises.name == "The Crown and Anchor" and premises.opening_hours == ""
    assert history_events(session, premises) == ["premises_registered", "details_changed"]


# ---- register import -----------------------------------------------------------------------


def _lga_row(reference: str, name: str, postcode: str) -> str:
    values = dict.fromkeys(LGA_HEADER.split(","), "")
    values.update(
        CASEREFERENCE=reference,
        PREMISESNAME=name,
        POSTCODE=postcode,
        STATUSLABEL="Granted",
        LOCATIONTEXT="1 High Street, Liverpool",
        LICENCEHOLDER="Pubco Ltd",
    )
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(values.values())
    return out.getvalue()


def test_register_import_shows_counts_and_rejected_rows(
    client: FlaskClient, world: dict[str, Any], session: Any
) -> None:
    sign_in(client, world["officer"])
    html = text(client.get("/premises/import"))
    assert 'for="register_file"' in html and 'for="authority"' in html
    body = (
        LGA_HEADER
        + "\r\n"
        + _lga_row("LIV/100", "The Lamb", "L1 2AB")
        + _lga_row("", "No Number Bar", "L1 3AB")  # line 3: rejected
        + _lga_row("LIV/101", "The Lion", "L1 4AB")
    )
    response = client.post(
        "/premises/import",
        data={
            "csrf_token": csrf_from(html),
            "authority": "LIV",
            "register_file": (io.BytesIO(body.encode("utf-8")), "liverpool.csv"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 302, text(response)[:2000]
    run_page = text(client.get(response.headers["Location"]))
    assert "Register imported: read 3, created 2" in run_page
    counts = dict(
        re.findall(
            r'<dt class="govuk-summary-list__key">\s*(.*?)\s*</dt>\s*'
            r'<dd class="govuk-summary-list__value">\s*(.*?)\s*</dd>',
            run_page,
            re.S,
        )
    )
    assert counts["Rows read"] == "3" and counts["Created"] == "2" and counts["Rejected"] == "1"
    assert "CASEREFERENCE (licence number) is empty" in run_page

    link_start = run_page.index('href="', run_page.index("Download the rejected rows") - 200)
    href = run_page[link_start + 6 : run_page.index('"', link_start + 6)]
    download = client.get(href)
    assert download.status_code == 200
    assert download.mimetype == "text/csv"
    assert "attachment" in download.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(text(download))))
    assert len(rows) == 1
    assert rows[0]["line_number"] == "3"
    assert rows[0]["reason"] == "CASEREFERENCE (licence number) is empty"
    assert "No Number Bar" in rows[0]["row"]

    session.expire_all()
    names = set(
        session.scalars(select(Premises.name).where(Premises.authority_id == world["liv"].id))
    )
    assert {"The Lamb", "The Lion"} <= names and "No Number Bar" not in names


def test_register_import_of_a_non_register_file_is_422(
    client: FlaskClient, world: dict[str, Any]
) -> None:
    sign_in(client, world["officer"])
    html = text(client.get("/premises/import"))
    response = client.post(
        "/premises/import",
        data={
            "csrf_token": csrf_from(html),
            "authority": "LIV",
            "register_file": (io.BytesIO(b"a,b\r\n1,2\r\n"), "other.csv"),
        },
        content_type="multipart/form-data",
    )
    assert_error_page(response, 422, "register_file")
    assert "not a PremisesLicences register" in text(response)


def test_register_import_without_a_file_is_422(client: FlaskClient, world: dict[str, Any]) -> None:
    sign_in(client, world["officer"])
    html = text(client.get("/premises/import"))
    response = client.post(
        "/premises/import",
        data={"csrf_token": csrf_from(html), "authority": ""},
        content_type="multipart/form-data",
    )
    assert_error_page(response, 422, "authority", "register_file")


def test_add_premises_page(client: FlaskClient, world: dict[str, Any], session: Any) -> None:
    sign_in(client, world["officer"])
    html = text(client.get("/premises/new"))
    response = client.post(
        "/premises/new",
        data={
            "csrf_token": csrf_from(html),
            "authority": "SEF",
            "licence_number": "SEF/1",
            "name": "The Ship",
            "licence_status": "current",
            "case_officer_id": str(world["officer"].id),
        },
    )
    assert response.status_code == 302
    assert "The Ship" in text(client.get(response.headers["Location"]))
    missing = client.post(
        "/premises/new", data={"csrf_token": csrf_from(html), "licence_status": "current"}
    )
    assert_error_page(missing, 422, "authority", "licence_number", "name")
