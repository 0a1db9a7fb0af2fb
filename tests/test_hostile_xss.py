"""Security issue #7, hostile input: stored XSS and template injection.

Each test is named after the attack it simulates. A payload set goes into every free-text
field a user can write (through the real forms, the API or the services the forms call),
then every page that shows it must render it escaped: no element, attribute or URL from
the payload, and `{{7*7}}` shown as typed (never evaluated to 49). The alert and digest
emails escape it in their HTML, and the bundle PDF shows it literally.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from markupsafe import escape
from PIL import Image
from pypdf import PdfReader
from sqlalchemy import select
from sqlalchemy.orm import Session

from licensing.auth.services import create_token
from licensing.evidence import attachments
from licensing.evidence import services as bundles
from licensing.evidence.models import Attachment
from licensing.incidents import recommendations
from licensing.incidents import services as incident_services
from licensing.incidents.models import Incident
from licensing.notifications.alerts import (
    enqueue_digests,
    recommendation_alerts,
    render_email,
)
from licensing.notifications.models import OutboxEmail
from licensing.premises.models import Premises
from licensing.visits import services as visit_services
from licensing.visits.models import ISSUES_FOUND, OBJECTIVES, Visit
from tests.conftest import csrf_from, move, record_evidence, sign_in

PAYLOADS = {
    "script_tag": "<script>alert(1)</script>",
    "attribute_breakout_img_onerror": '"><img src=x onerror=alert(1)>',
    "javascript_url": "javascript:alert(1)",
    "template_injection": "{{7*7}}",
    "textarea_breakout_svg_onload": "</textarea><svg onload=alert(1)>",
}
EVERY_PAYLOAD = " ".join(PAYLOADS.values())
# Each surface gets the whole set in every field at once (the suite stays fast), and the
# template injection alone: a field that is nothing but `{{7*7}}` is the one a template
# compiled from user text would evaluate.
INPUTS = {"every_payload_at_once": EVERY_PAYLOAD, "template_injection_alone": "{{7*7}}"}
each_payload = pytest.mark.parametrize("payload", list(INPUTS.values()), ids=list(INPUTS))


# ---- what "rendered escaped" means -------------------------------------------------------


class _Elements(HTMLParser):
    """Every start tag with its attributes, and the text inside <script> elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.script_text: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))
        self._in_script = tag == "script"

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.script_text.append(data)


def assert_inert(html: str, where: str) -> None:
    """No element, event handler, javascript: URL or script body came from a payload."""
    for raw in ("<script>alert(1)", "<img src=x", "<svg onload"):
        assert raw not in html, f"{where}: raw {raw!r} in the HTML"
    elements = _Elements()
    elements.feed(html)
    for tag, attrs in elements.tags:
        for name, value in attrs:
            assert not name.startswith("on"), f"{where}: <{tag} {name}={value!r}>"
            if name in ("href", "src", "action", "formaction", "xlink:href") and value:
                assert not value.strip().lower().startswith("javascript:"), (
                    f"{where}: <{tag} {name}={value!r}>"
                )
    assert not any("alert(1)" in text for text in elements.script_text), (
        f"{where}: a payload inside a <script> element"
    )


def assert_shown_escaped(html: str, text: str, where: str) -> None:
    """The page shows each payload in `text` as text (escaped once), and nothing from it
    became markup or was evaluated."""
    assert_inert(html, where)
    for payload in PAYLOADS.values():
        if payload in text:
            assert str(escape(payload)) in html, f"{where}: {payload!r} not shown as text"


def page(client: FlaskClient, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, f"{url}: {response.status_code}"
    return response.get_data(as_text=True)


def check_pages(client: FlaskClient, payload: str, shown: list[str], also: list[str]) -> None:
    """`shown`: pages that must show the payload; `also`: pages that must merely be inert."""
    for url in shown:
        assert_shown_escaped(page(client, url), payload, url)
    for url in also:
        assert_inert(page(client, url), url)


def signed_in(app: Flask, user: Any) -> FlaskClient:
    client = app.test_client()
    sign_in(client, user)
    return client


def post_form(client: FlaskClient, form_url: str, data: dict[str, Any], post_url: str = "") -> Any:
    token = csrf_from(page(client, form_url))
    return client.post(post_url or form_url, data={"csrf_token": token, **data})


def png_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), "white").save(out, "PNG")
    return out.getvalue()


def yesterday() -> datetime:
    return datetime.now(UTC) - timedelta(days=1)


PREMISES_TEXT_FIELDS = (
    "name",
    "address",
    "licence_holder",
    "dps",
    "licensable_activities",
    "opening_hours",
)


# ---- the surfaces -----------------------------------------------------------------------


@each_payload
def test_stored_xss_in_premises_details_through_the_add_and_edit_forms(
    app: Flask, session: Session, world: dict[str, Any], payload: str
) -> None:
    officer = signed_in(app, world["officer"])
    response = post_form(
        officer,
        "/premises/new",
        {
            "authority": "LIV",
            "licence_number": f"XSS/{payload}"[:64],
            "licence_status": "current",
            "case_officer_id": str(world["officer"].id),
            **dict.fromkeys(PREMISES_TEXT_FIELDS, payload),
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:1000]
    premises = session.scalar(select(Premises).where(Premises.name == payload))
    assert premises is not None
    assert [getattr(premises, f) for f in PREMISES_TEXT_FIELDS] == [payload] * 6
    # The edit form round-trips it (textarea and input values), with a reason that is hostile too.
    edit = f"/premises/{premises.id}/edit"
    form = page(officer, edit)
    assert_shown_escaped(form, payload, edit)
    response = post_form(
        officer,
        edit,
        {
            "version": str(premises.version),
            "licence_status": "current",
            "case_officer_id": str(world["officer"].id),
            "reason": payload,
            **dict.fromkeys(PREMISES_TEXT_FIELDS, payload),
            "postcode": payload[:16],
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:1000]
    pid = premises.id
    check_pages(
        officer,
        payload,
        shown=[
            f"/premises/{pid}",
            f"/premises/{pid}/timeline",
            "/premises",
            f"/premises?q={payload}",
        ],
        also=["/", "/map", "/reports", "/calendar", "/visits"],
    )


@each_payload
def test_stored_xss_in_workflow_event_reasons(
    app: Flask, session: Session, world: dict[str, Any], payload: str
) -> None:
    premises = world["premises"]
    officer = signed_in(app, world["officer"])
    token = csrf_from(page(officer, f"/premises/{premises.id}"))
    response = officer.post(
        f"/premises/{premises.id}/events/warn",
        data={
            "warn-csrf_token": token,
            "warn-version": str(premises.version),
            "warn-reason": payload,
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:1000]
    session.refresh(premises)
    assert premises.state == "warned"
    move(session, premises, world["officer"], "stand_down", reason=payload)
    check_pages(
        officer,
        payload,
        shown=[f"/premises/{premises.id}/timeline"],
        also=[f"/premises/{premises.id}", "/"],
    )


@each_payload
def test_stored_xss_in_an_incident_through_the_form(
    app: Flask, session: Session, world: dict[str, Any], payload: str
) -> None:
    premises = world["premises"]
    officer = signed_in(app, world["officer"])
    response = post_form(
        officer,
        "/incidents/new",
        {
            "category": "Public order",
            "occurred_at": yesterday().strftime("%Y-%m-%d 23:40"),
            "source_ref": "",
            "description": payload,
            "location": payload,
            "latitude": "",
            "longitude": "",
            "licence_number": premises.licence_number,
            "authority": "LIV",
            "person_role": "witness",
            "person_name": payload,
            "person_phone": "",
            "person_email": "",
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    incident = session.scalar(select(Incident).where(Incident.description == payload))
    assert incident is not None and incident.location_text == payload
    check_pages(
        officer,
        payload,
        shown=[f"/incidents/{incident.id}", "/incidents"],
        also=[f"/premises/{premises.id}", "/incidents/suggestions", "/map"],
    )


@each_payload
def test_stored_xss_in_an_incident_through_the_api(
    app: Flask, session: Session, world: dict[str, Any], payload: str
) -> None:
    premises = world["premises"]
    token = create_token(session, world["officer"].email)
    response = app.test_client().post(
        "/api/v1/incidents",
        headers={"Authorization": f"Bearer {token}"},
        json={
            "source": "rms",
            "source_ref": f"XSS-{payload}",
            "occurred_at": yesterday().isoformat(),
            "category": "Violence and sexual offences",
            "description": payload,
            "location": payload,
            "outcome": payload,
            "licence_number": premises.licence_number,
            "authority": "LIV",
            "people": [{"role": "victim", "name": payload}, {"role": "witness", "name": payload}],
        },
    )
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["description"] == payload and body["outcome"] == payload
    assert response.mimetype == "application/json"
    officer = signed_in(app, world["officer"])
    check_pages(
        officer,
        payload,
        shown=[f"/incidents/{body['id']}", "/incidents"],
        also=[f"/premises/{premises.id}"],
    )


@each_payload
def test_stored_xss_in_a_council_asb_report(
    app: Flask, session: Session, world: dict[str, Any], payload: str
) -> None:
    premises = world["premises"]
    council = signed_in(app, world["council"])
    response = post_form(
        council,
        "/asb-reports/new",
        {
            "licence_number": premises.licence_number,
            "category": "ASB - nuisance",
            "occurred_at": yesterday().strftime("%Y-%m-%d 23:40"),
            "description": payload,
            "reporter_name": payload,
            "reporter_phone": "",
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    incident = session.scalar(select(Incident).where(Incident.description == payload))
    assert incident is not None
    check_pages(council, payload, shown=[], also=["/"])
    officer = signed_in(app, world["officer"])
    check_pages(
        officer, payload, shown=[f"/incidents/{incident.id}"], also=[f"/premises/{premises.id}"]
    )


def _visit_with_findings(session: Session, world: dict[str, Any], text: str) -> Visit:
    premises = world["premises"]
    visit = visit_services.schedule_visit(
        session,
        world["officer"],
        premises,
        scheduled_at=datetime.now(UTC) + timedelta(hours=1),
        visit_type="routine",
        officer_id=world["officer"].id,
    )
    return visit_services.record_outcome(
        session,
        world["officer"],
        visit,
        visit.version,
        visit_services.Outcome(
            outcome=ISSUES_FOUND,
            visited_at=datetime.now(UTC) - timedelta(minutes=1),
            findings=dict.fromkeys(OBJECTIVES, text),
            follow_up_actions=text,
        ),
    )


@each_payload
def test_stored_xss_in_visit_findings_and_follow_up_actions(
    app: Flask, session: Session, world: dict[str, Any], payload: str
) -> None:
    visit = _visit_with_findings(session, world, payload)
    officer = signed_in(app, world["officer"])
    check_pages(
        officer,
        payload,
        shown=[f"/visits/{visit.id}"],
        also=["/visits", f"/premises/{visit.premises_id}", "/calendar"],
    )


@each_payload
def test_stored_xss_in_a_recommendation_dismissal_reason(
    app: Flask, session: Session, world: dict[str, Any], payload: str
) -> None:
    premises = world["premises"]
    for _ in range(2):  # with the world's evidence: three serious incidents in 28 days
        record_evidence(session, premises)
    [recommendation] = recommendations.evaluate(session)
    officer = signed_in(app, world["officer"])
    url = f"/recommendations/{recommendation.id}/dismiss"
    response = post_form(officer, url, {"reason": payload})
    assert response.status_code == 302, response.get_data(as_text=True)[:1000]
    session.refresh(recommendation)
    assert recommendation.status == "dismissed"
    check_pages(
        officer,
        payload,
        shown=[f"/premises/{premises.id}/timeline"],
        also=["/recommendations", f"/premises/{premises.id}", "/"],
    )


@each_payload
def test_stored_xss_in_an_attachment_description_and_file_name(
    app: Flask, session: Session, world: dict[str, Any], payload: str
) -> None:
    incident = incident_services.record_incident(
        session,
        world["officer"],
        {"category": "Public order", "occurred_at": yesterday().isoformat(), "source_ref": "A1"},
    ).incident
    officer = signed_in(app, world["officer"])
    url = f"/incidents/{incident.id}/attachments"
    token = csrf_from(page(officer, url))
    response = officer.post(
        url,
        data={
            "attachment-csrf_token": token,
            "attachment-description": payload,
            # A browser sends a double quote in a file name as %22; Werkzeug's test
            # client would lose the whole name, so the name drops it.
            "attachment-file": (io.BytesIO(png_bytes()), payload.replace('"', "") + ".png"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:1000]
    [attachment] = session.scalars(select(Attachment)).all()
    assert attachment.description == payload
    check_pages(officer, payload, shown=[f"/incidents/{incident.id}"], also=[url])
    download = officer.get(f"/attachments/{attachment.id}")
    assert download.status_code == 200
    assert download.headers["Content-Disposition"].startswith("attachment")
    assert "<" not in download.headers["Content-Disposition"]
    assert download.headers["X-Content-Type-Options"] == "nosniff"


@each_payload
def test_stored_xss_in_a_bundle_statement_and_council_comments(
    app: Flask, session: Session, world: dict[str, Any], payload: str
) -> None:
    premises = world["premises"]
    supervisor_user = world["supervisor"]
    bundle = bundles.create_bundle(session, supervisor_user, premises, statement=payload)
    bundle = bundles.issue_bundle(session, supervisor_user, bundle, bundle.lock_version)
    bundles.share_bundle(session, supervisor_user, bundle)
    council = signed_in(app, world["council"])
    show = f"/bundles/{bundle.id}"
    html = page(council, show)
    token = csrf_from(html)
    response = council.post(f"{show}/comments", data={"csrf_token": token, "body": payload})
    assert response.status_code == 302, response.get_data(as_text=True)[:1000]
    check_pages(council, payload, shown=[show], also=["/bundles"])
    supervisor = signed_in(app, supervisor_user)
    check_pages(supervisor, payload, shown=[show], also=["/bundles", f"/premises/{premises.id}"])


def test_stored_xss_in_a_draft_bundle_statement_through_the_statement_form(
    app: Flask, session: Session, world: dict[str, Any]
) -> None:
    premises = world["premises"]
    bundle = bundles.create_bundle(session, world["supervisor"], premises, statement="Draft")
    supervisor = signed_in(app, world["supervisor"])
    show = f"/bundles/{bundle.id}"
    token = csrf_from(page(supervisor, show))
    response = supervisor.post(
        f"{show}/statement",
        data={
            "csrf_token": token,
            "lock_version": str(bundle.lock_version),
            "statement": EVERY_PAYLOAD,
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:1000]
    html = page(supervisor, show)
    for payload in PAYLOADS.values():
        assert_shown_escaped(html, payload, show)


def _pdf_words(data: bytes) -> str:
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages)
    return " ".join(text.split())


def test_bundle_pdf_shows_every_hostile_string_literally(
    app: Flask, session: Session, world: dict[str, Any], make_premises: Any
) -> None:
    supervisor_user = world["supervisor"]
    premises = make_premises(
        world["liv"],
        world["officer"],
        name=EVERY_PAYLOAD,
        licence_holder=EVERY_PAYLOAD,
        dps=EVERY_PAYLOAD,
        address=EVERY_PAYLOAD,
    )
    incident = incident_services.record_incident(
        session,
        world["officer"],
        {
            "category": "Public order",
            "occurred_at": yesterday().isoformat(),
            "source_ref": "PDF-1",
            "description": EVERY_PAYLOAD,
            "location": EVERY_PAYLOAD,
            "outcome": EVERY_PAYLOAD,
        },
        premises=premises,
    ).incident
    attachments.add_attachment(
        session,
        world["officer"],
        incident=incident,
        data=png_bytes(),
        file_name="photo.png",
        description=EVERY_PAYLOAD,
        holds_personal_data=False,
    )
    world = {**world, "premises": premises}
    _visit_with_findings(session, world, EVERY_PAYLOAD)
    move(session, premises, world["officer"], "warn", reason=EVERY_PAYLOAD)
    bundle = bundles.create_bundle(session, supervisor_user, premises, statement=EVERY_PAYLOAD)
    supervisor = signed_in(app, supervisor_user)
    response = supervisor.get(f"/bundles/{bundle.id}/pdf?copy=police")
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    words = _pdf_words(response.data)
    expected = " ".join(EVERY_PAYLOAD.split())
    # The cover (name), the statement, the incident, the visit and the attachment at least.
    assert words.count(expected) >= 4, words[:3000]
    for payload in PAYLOADS.values():
        assert payload in words


# ---- emails -----------------------------------------------------------------------------


def _assert_email_escapes(html: str, text: str, where: str) -> None:
    assert_inert(html, where)
    for payload in PAYLOADS.values():
        assert str(escape(payload)) in html, f"{where}: {payload!r} not in the HTML body"
        assert payload in text, f"{where}: {payload!r} not literal in the text body"


def test_alert_and_digest_emails_escape_hostile_premises_names(
    app: Flask, session: Session, world: dict[str, Any], make_premises: Any
) -> None:
    hostile = make_premises(
        world["liv"],
        world["officer"],
        name=EVERY_PAYLOAD,
        licence_number="XSS/" + PAYLOADS["template_injection"],
    )
    # A recommendation alert (outbox row) for the hostile premises.
    for _ in range(2):
        record_evidence(session, hostile)
    recommendations.evaluate(session)
    assert recommendation_alerts(session) >= 1
    # A bundle shared with the council (outbox row to the council users).
    bundle = bundles.create_bundle(session, world["supervisor"], hostile, statement=EVERY_PAYLOAD)
    bundle = bundles.issue_bundle(session, world["supervisor"], bundle, bundle.lock_version)
    assert bundles.share_bundle(session, world["supervisor"], bundle) >= 1
    # The daily digest (premises under escalation, open recommendations).
    move(session, hostile, world["officer"], "warn", reason=EVERY_PAYLOAD)
    assert enqueue_digests(session, hour=0) >= 1
    session.commit()
    emails = session.scalars(select(OutboxEmail)).all()
    kinds = {e.dedupe_key.split(":")[0] for e in emails}
    assert {"recommendation", "digest"} <= kinds, kinds
    hostile_emails = [e for e in emails if escape(EVERY_PAYLOAD) in e.html_body]
    assert len(hostile_emails) >= 3, [e.dedupe_key for e in emails]
    for email in hostile_emails:
        _assert_email_escapes(email.html_body, email.text_body, email.dedupe_key)
    # The deadline and visit templates, rendered directly with the hostile premises.
    contexts: dict[str, dict[str, Any]] = {
        "deadline": {
            "stage": "due",
            "working_days_left": 0,
            "label": EVERY_PAYLOAD,
            "due_text": "today",
            "deadline": {"rule": EVERY_PAYLOAD},
        },
        "visit": {"due_text": "tomorrow"},
    }
    for name, context in contexts.items():
        text, html = render_email(
            name,
            user=world["officer"],
            subject="Alert",
            premises=hostile,
            premises_url="http://127.0.0.1:5000/premises/1",
            **context,
        )
        _assert_email_escapes(html, text, f"email/{name}")


def test_template_injection_is_not_evaluated_in_an_email_subject_or_body(
    app: Flask, session: Session, world: dict[str, Any]
) -> None:
    text, html = render_email(
        "visit",
        user=world["officer"],
        subject="{{7*7}}",
        premises=world["premises"],
        premises_url="http://127.0.0.1:5000/",
        due_text="{{ config.SECRET_KEY }}",
    )
    secret = str(app.config["SECRET_KEY"])
    assert secret not in text and secret not in html
    assert "{{ config.SECRET_KEY }}" in text


@pytest.mark.parametrize(
    "raw",
    [
        "<p><script>alert(1)</script></p>",
        '<input value=""><img src=x onerror=alert(1)>">',
        '<a href="javascript:alert(1)">x</a>',
        "<textarea></textarea><svg onload=alert(1)></textarea>",
    ],
)
def test_the_checker_itself_catches_an_unescaped_payload(raw: str) -> None:
    with pytest.raises(AssertionError):
        assert_inert(raw, "a page that got escaping wrong")
