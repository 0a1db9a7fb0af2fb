"""Standard letters (issue 9): templates edited by admins in a sandbox, every version
kept; letters issued as PDFs (read back here with pypdf), filed in the evidence store
under their SHA-256 with an event on the premises' chain; pages and permissions."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from licensing.audit.models import AuditEvent
from licensing.audit.services import verify_chains
from licensing.errors import Conflict, Forbidden, NotFound, Refused, ValidationFailed
from licensing.evidence import store
from licensing.letters import services
from licensing.letters.defaults import (
    ACTION_PLAN_CONFIRMATION,
    DEFAULT_TEMPLATES,
    FIRST_WARNING,
    MEETING_INVITATION,
    MINDED_TO_REVIEW,
)
from licensing.letters.models import Letter
from licensing.timeutil import london_today
from tests.conftest import agree_plan, csrf_from, sign_in


def pdf_text(data: bytes) -> str:
    """All the text of a PDF, whitespace folded (lines wrap anywhere)."""
    reader = PdfReader(io.BytesIO(data))
    return " ".join(" ".join(page.extract_text() or "" for page in reader.pages).split())


def stored_text(letter: Letter) -> str:
    return pdf_text(store.get(letter.sha256))


def meeting() -> services.MeetingDetails:
    return services.MeetingDetails(
        london_today() + timedelta(days=10), "10:30", "Room 4, Canning Place Police Station"
    )


# ---- templates -------------------------------------------------------------------------


def test_the_four_standard_letters_exist_with_their_default_wording(session):
    templates = services.list_templates(session)
    assert [t.key for t in templates] == [
        FIRST_WARNING,
        MEETING_INVITATION,
        ACTION_PLAN_CONFIRMATION,
        MINDED_TO_REVIEW,
    ]
    for template, default in zip(templates, DEFAULT_TEMPLATES, strict=True):
        wording = services.current_wording(session, template)
        assert (template.current_version, wording.version) == (1, 1)
        assert wording.body == default.body
        assert "Licensing Act 2003" in wording.body
        # Every default passes the check an admin's edit must pass.
        services.check_wording(template.key, wording.subject, wording.body)


def test_saving_makes_a_new_version_and_keeps_the_old(session, world):
    admin = world["admin"]
    template = services.template_by_key(session, FIRST_WARNING)
    first = services.current_wording(session, template)
    saved = services.save_template(
        session,
        admin,
        template,
        template.lock_version,
        "Warning: {{ premises.name }}",
        "Dear {{ premises.dps }},\n\nPlease call me about {{ premises.licence_number }}.",
    )
    assert saved.version == 2
    assert template.current_version == 2
    versions = services.template_versions(session, template)
    assert [v.version for v in versions] == [2, 1]
    assert versions[1].body == first.body  # the old wording is untouched
    event = session.scalars(
        select(AuditEvent).where(AuditEvent.event == "letter_template_changed")
    ).one()
    assert '"version":2' in event.payload


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("{{ ''.__class__ }}", "not allowed"),
        ("{{ premises.name.__class__.__mro__ }}", "not allowed"),
        ("{{ premises.name|attr('__class__') }}", "not allowed"),
        ("{{ premises.licence_holder.upper() }}", "not a placeholder"),
        ("{{ premises.nmae }}", "not a placeholder"),
        ("{{ licensee }}", "not a placeholder"),
        ("{{ meeting.place }}", "not a placeholder"),  # the invitation's, not the warning's
        ("{% for i in range(10) %}{% endfor %}", "not a placeholder"),
        ("{{ 'x' * 100000000 }}", "not allowed"),
        ("{{ premises.name|center(100000000) }}", "not allowed"),
        ("{% set x = premises.name ~ premises.name %}{{ x }}", "not allowed"),
        ("{% macro m() %}{% endmacro %}", "not allowed"),
        ("{% if premises.name %}unclosed", "cannot be read"),
    ],
)
def test_a_bad_template_is_refused_and_nothing_is_saved(session, world, body, expected):
    template = services.template_by_key(session, FIRST_WARNING)
    with pytest.raises(ValidationFailed) as refused:
        services.save_template(
            session, world["admin"], template, template.lock_version, "Subject", body
        )
    assert expected in refused.value.errors["body"].lower()
    session.rollback()
    assert template.current_version == 1
    assert [v.version for v in services.template_versions(session, template)] == [1]


def test_a_stale_editor_gets_a_conflict(session, world):
    template = services.template_by_key(session, MINDED_TO_REVIEW)
    seen = template.lock_version
    services.save_template(session, world["admin"], template, seen, "First", "One")
    with pytest.raises(Conflict):
        services.save_template(session, world["admin"], template, seen, "Second", "Two")
    assert services.current_wording(session, template).subject == "First"


def test_only_admins_edit_templates(session, world):
    template = services.template_by_key(session, FIRST_WARNING)
    for role in ("officer", "supervisor"):
        with pytest.raises(Forbidden, match="may not edit the standard letters"):
            services.save_template(session, world[role], template, template.lock_version, "S", "B")


# ---- issuing ---------------------------------------------------------------------------


def test_first_warning_pdf_names_the_premises_and_is_filed_with_an_event(session, world):
    premises = world["premises"]
    template = services.template_by_key(session, FIRST_WARNING)
    letter = services.issue_letter(
        session, world["officer"], premises, template, template.current_version
    )
    data = store.get(letter.sha256)  # checks the bytes against the hash
    assert letter.size == len(data)
    assert store.sha256_of(data) == letter.sha256
    text = pdf_text(data)
    for expected in (
        premises.name,
        premises.licence_number,
        premises.licence_holder,
        premises.dps,
        premises.authority.name,
        "Licensing Act 2003",
        world["officer"].name,
        services.long_date(london_today()),
        "OFFICIAL",
        "Page 1 of 1",
    ):
        assert expected in text, expected
    assert (letter.template_key, letter.template_version) == (FIRST_WARNING, 1)
    assert letter.issued_by_id == world["officer"].id
    events = session.scalars(
        select(AuditEvent).where(
            AuditEvent.premises_id == premises.id, AuditEvent.event == "letter_issued"
        )
    ).all()
    assert len(events) == 1
    assert f'"letter_id":{letter.id}' in events[0].payload
    assert letter.sha256 in events[0].payload
    assert verify_chains(session).ok


def test_a_letter_records_the_version_it_used(session, world):
    premises = world["premises"]
    template = services.template_by_key(session, FIRST_WARNING)
    before = services.issue_letter(session, world["officer"], premises, template, 1)
    services.save_template(
        session,
        world["admin"],
        template,
        template.lock_version,
        "Second warning wording for {{ premises.name }}",
        "New wording for licence {{ premises.licence_number }} at {{ premises.address }}.",
    )
    with pytest.raises(Conflict):  # the officer saw version 1
        services.issue_letter(session, world["officer"], premises, template, 1)
    after = services.issue_letter(session, world["officer"], premises, template, 2)
    assert (before.template_version, after.template_version) == (1, 2)
    assert "New wording for licence" in stored_text(after)
    assert "New wording for licence" not in stored_text(before)
    assert [x.id for x in services.premises_letters(session, premises.id)] == [after.id, before.id]


def test_the_invitation_needs_the_meeting_and_prints_it(session, world):
    template = services.template_by_key(session, MEETING_INVITATION)
    with pytest.raises(ValidationFailed) as missing:
        services.issue_letter(session, world["officer"], world["premises"], template, 1)
    assert "meeting_date" in missing.value.errors
    details = meeting()
    letter = services.issue_letter(
        session, world["officer"], world["premises"], template, 1, details
    )
    text = stored_text(letter)
    assert "Room 4, Canning Place Police Station" in text
    assert services.long_date(details.day) in text
    assert "10:30" in text


def test_the_confirmation_is_refused_without_an_open_plan(session, world):
    template = services.template_by_key(session, ACTION_PLAN_CONFIRMATION)
    with pytest.raises(Refused, match="no open action plan"):
        services.issue_letter(session, world["officer"], world["premises"], template, 1)
    assert services.premises_letters(session, world["premises"].id) == []


def test_the_confirmation_lists_each_item_of_the_plan(session, world):
    premises = world["premises"]
    items = [
        "Two SIA door supervisors from 21:00 on Fridays and Saturdays",
        "CCTV recordings kept for 31 days and supplied to police on request",
        "Challenge 25 training for all bar staff, with a refusals log",
    ]
    plan = agree_plan(session, world["officer"], premises, items)
    template = services.template_by_key(session, ACTION_PLAN_CONFIRMATION)
    letter = services.issue_letter(session, world["officer"], premises, template, 1)
    text = stored_text(letter)
    for number, description in enumerate(items, start=1):
        assert f"{number}. {description}" in text
    assert services.long_date(plan.review_on) in text
    assert premises.name in text and premises.licence_number in text


def test_text_typed_into_the_register_is_printed_literally(session, world, make_premises):
    premises = make_premises(
        world["liv"],
        world["officer"],
        name="Bar <b>Bold</b> & Grill £5 — café",
        licence_holder='O\'Neill & "Sons"',
        address="1 Dock Road\nLiverpool",
        postcode="L3 4AA",
    )
    template = services.template_by_key(session, FIRST_WARNING)
    text = stored_text(services.issue_letter(session, world["officer"], premises, template, 1))
    assert "Bar <b>Bold</b> & Grill £5 — café" in text
    assert 'O\'Neill & "Sons"' in text
    assert "1 Dock Road, Liverpool, L3 4AA" in text


def test_the_same_letter_gives_the_same_pdf(session, world):
    template = services.template_by_key(session, MINDED_TO_REVIEW)
    first = services.issue_letter(session, world["officer"], world["premises"], template, 1)
    second = services.issue_letter(session, world["officer"], world["premises"], template, 1)
    assert first.sha256 == second.sha256  # deterministic, and stored once
    assert first.id != second.id


def test_only_the_police_issue_letters(session, world):
    template = services.template_by_key(session, FIRST_WARNING)
    for role, refusal in (("admin", Forbidden), ("council", NotFound)):
        with pytest.raises(refusal):
            services.issue_letter(session, world[role], world["premises"], template, 1)
    assert session.scalars(select(Letter)).all() == []


# ---- pages -----------------------------------------------------------------------------


def _issue_page(client, premises_id: int, key: str) -> str:
    page = client.get(f"/premises/{premises_id}/letters/new?template={key}")
    assert page.status_code == 200
    return page.get_data(as_text=True)


def test_an_officer_issues_a_letter_from_the_premises_page(client, session, world):
    premises = world["premises"]
    sign_in(client, world["officer"])
    detail = client.get(f"/premises/{premises.id}").get_data(as_text=True)
    assert 'id="no-letters"' in detail and 'id="issue-letter"' in detail
    choose = client.get(f"/premises/{premises.id}/letters/new").get_data(as_text=True)
    assert "Invitation to a meeting" in choose
    html = _issue_page(client, premises.id, MEETING_INVITATION)
    day = london_today() + timedelta(days=7)
    form = {
        "csrf_token": csrf_from(html),
        "template_version": "1",
        "meeting_date": [str(day.day), str(day.month), str(day.year)],
        "meeting_time": "14:00",
        "meeting_place": "Licensing Unit, Canning Place",
    }
    url = f"/premises/{premises.id}/letters/new?template={MEETING_INVITATION}"
    preview = client.post(url, data={**form, "preview": "Preview"})
    assert preview.status_code == 200
    assert "Licensing Unit, Canning Place" in preview.get_data(as_text=True)
    assert session.scalars(select(Letter)).all() == []  # a preview issues nothing

    issued = client.post(url, data={**form, "submit": "Issue letter"})
    assert issued.status_code == 302
    letter = session.scalars(select(Letter)).one()
    detail = client.get(f"/premises/{premises.id}").get_data(as_text=True)
    link = f"/premises/{premises.id}/letters/{letter.id}"
    assert link in detail and "Invitation to a meeting" in detail
    download = client.get(link)
    assert download.status_code == 200
    assert download.mimetype == "application/pdf"
    assert store.sha256_of(download.data) == letter.sha256
    assert "Licensing Unit, Canning Place" in pdf_text(download.data)


def test_the_invitation_form_says_what_is_missing(client, session, world):
    premises = world["premises"]
    sign_in(client, world["officer"])
    html = _issue_page(client, premises.id, MEETING_INVITATION)
    response = client.post(
        f"/premises/{premises.id}/letters/new?template={MEETING_INVITATION}",
        data={"csrf_token": csrf_from(html), "template_version": "1", "meeting_time": "25:99"},
    )
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Enter the date of the meeting" in body
    assert "Enter a time such as 10:30" in body
    assert session.scalars(select(Letter)).all() == []


def test_a_confirmation_without_a_plan_is_refused_on_the_page(client, session, world):
    premises = world["premises"]
    sign_in(client, world["officer"])
    html = _issue_page(client, premises.id, ACTION_PLAN_CONFIRMATION)
    response = client.post(
        f"/premises/{premises.id}/letters/new?template={ACTION_PLAN_CONFIRMATION}",
        data={"csrf_token": csrf_from(html), "template_version": "1", "submit": "Issue letter"},
    )
    assert response.status_code == 422
    assert "no open action plan" in response.get_data(as_text=True)


def test_a_changed_template_stops_the_issue_with_a_conflict(client, session, world):
    premises = world["premises"]
    sign_in(client, world["officer"])
    html = _issue_page(client, premises.id, FIRST_WARNING)
    template = services.template_by_key(session, FIRST_WARNING)
    services.save_template(
        session,
        world["admin"],
        template,
        template.lock_version,
        "Changed subject for {{ premises.name }}",
        "Changed body for {{ premises.licence_number }}.",
    )
    response = client.post(
        f"/premises/{premises.id}/letters/new?template={FIRST_WARNING}",
        data={"csrf_token": csrf_from(html), "template_version": "1", "submit": "Issue letter"},
    )
    body = response.get_data(as_text=True)
    assert response.status_code == 409
    assert "changed this template since you opened" in body
    assert "Changed body for" in body  # the new wording, to check before issuing again
    assert session.scalars(select(Letter)).all() == []


def test_a_download_whose_file_changed_is_refused(client, session, world):
    template = services.template_by_key(session, FIRST_WARNING)
    letter = services.issue_letter(session, world["officer"], world["premises"], template, 1)
    sign_in(client, world["officer"])
    path = store.path_for(letter.sha256)
    path.write_bytes(path.read_bytes() + b"% tampered")
    response = client.get(f"/premises/{world['premises'].id}/letters/{letter.id}")
    assert response.status_code == 500
    assert "no longer matches its hash" in response.get_data(as_text=True)
    path.unlink()
    response = client.get(f"/premises/{world['premises'].id}/letters/{letter.id}")
    assert response.status_code == 500
    assert "missing from the evidence store" in response.get_data(as_text=True)


def test_letter_pages_answer_by_role(app, session, world):
    premises, other = world["premises"], world["other_premises"]
    template = services.template_by_key(session, FIRST_WARNING)
    letter = services.issue_letter(session, world["officer"], premises, template, 1)
    download = f"/premises/{premises.id}/letters/{letter.id}"
    expected = {
        # role: (issue page, download, templates list, template editor)
        "officer": (200, 200, 403, 403),
        "supervisor": (200, 200, 403, 403),
        "admin": (403, 403, 200, 200),
        "council": (404, 404, 404, 404),
    }
    for role, statuses in expected.items():
        client = app.test_client()
        sign_in(client, world[role])
        answers = tuple(
            client.get(url).status_code
            for url in (
                f"/premises/{premises.id}/letters/new",
                download,
                "/letter-templates",
                f"/letter-templates/{template.id}",
            )
        )
        assert answers == statuses, role
    client = app.test_client()
    sign_in(client, world["officer"])
    # Another premises' letter is not found under this one's address.
    assert client.get(f"/premises/{other.id}/letters/{letter.id}").status_code == 404
    # Council users see no letters section on a premises they may see.
    from tests.conftest import move

    move(session, premises, world["officer"], "warn")
    council = app.test_client()
    sign_in(council, world["council"])
    move(
        session,
        premises,
        world["supervisor"],
        "apply_for_summary_review",
        received_at="2025-01-06T10:00:00+00:00",
        certificate_reference="CERT-9",
    )
    page = council.get(f"/premises/{premises.id}")
    assert page.status_code == 200
    assert 'id="letters"' not in page.get_data(as_text=True)


def test_an_admin_edits_a_template_in_the_browser(client, session, world):
    sign_in(client, world["admin"])
    template = services.template_by_key(session, FIRST_WARNING)
    url = f"/letter-templates/{template.id}"
    html = client.get(url).get_data(as_text=True)
    assert "{{ premises.licence_number }}" in html  # the placeholders are listed
    token = csrf_from(html)
    bad = "Dear {{ premises.dps }}, {{ ''.__class__.__mro__ }}"
    refused = client.post(
        url, data={"csrf_token": token, "version": "1", "subject": "Warning", "body": bad}
    )
    body = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert "Not allowed in a letter template" in body
    assert "__mro__" in body  # the admin's text is still in the box
    assert services.template_by_key(session, FIRST_WARNING).current_version == 1

    good = "Dear {{ premises.dps }},\n\nWe need to talk about {{ premises.name }}."
    saved = client.post(
        url, data={"csrf_token": token, "version": "1", "subject": "Warning", "body": good}
    )
    assert saved.status_code == 302
    page = client.get(url).get_data(as_text=True)
    assert "saved as version 2" in page
    assert re.search(r'data-version="1"', page) and re.search(r'data-version="2"', page)

    # A second admin who opened the editor at version 1 gets a conflict, text kept.
    stale = client.post(
        url,
        data={"csrf_token": token, "version": "1", "subject": "Mine", "body": "My own text"},
    )
    body = stale.get_data(as_text=True)
    assert stale.status_code == 409
    assert "someone else saved a new version" in body
    assert "My own text" in body
    session.expire_all()
    assert services.template_by_key(session, FIRST_WARNING).current_version == 2


def test_an_issued_letter_is_in_the_bundle_chronology_of_both_copies(session, world):
    """A failed engagement is evidence at a hearing: the letters the licence holder was
    sent appear in the bundle, in time order, with the filed PDF's hash."""
    from licensing.evidence import services as bundles

    premises, officer = world["premises"], world["officer"]
    template = services.template_by_key(session, FIRST_WARNING)
    letter = services.issue_letter(session, officer, premises, template, template.current_version)
    bundle = bundles.create_bundle(session, officer, premises)
    items = bundles.items_of(session, bundle)
    letter_items = [item for item in items if item.kind == "letter"]
    assert [item.ref_id for item in letter_items] == [letter.id]
    assert letter_items[0].reference.startswith(letter.title)
    assert [item.occurred_at for item in items] == sorted(item.occurred_at for item in items)
    for sha in (bundle.police_pdf_sha256, bundle.shared_pdf_sha256):
        text = " ".join(pdf_text(store.get(sha)).split())
        assert f"Letter issued: {letter.title}" in text
        assert letter.sha256 in text.replace(" ", "")  # a long hash wraps in the PDF
        assert officer.name in text
