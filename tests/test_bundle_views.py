"""Evidence bundle pages through the test client: who may reach which route in which state
of a bundle, and the flows an officer, a supervisor and a council user go through (real
sign-in, real forms, real CSRF tokens, real database). The services have their own tests
in tests/test_bundles.py."""

from __future__ import annotations

import io
import re
import zipfile
from datetime import date
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from licensing.evidence import services as bundles
from licensing.evidence.models import Bundle, BundleAccess, BundleItem
from licensing.notifications.models import OutboxEmail
from tests.conftest import csrf_from, move, sign_in
from tests.test_views import Page, assert_error_page, event_form, text

# ---- the access matrix -----------------------------------------------------------------

ROLES = ("officer", "supervisor", "admin", "council", "other_council", "anonymous")
STATES = ("draft", "issued", "shared")

# One row per route: what each role gets, as one status for every state of the bundle or
# a (draft, issued, shared) triple. 302 from a POST is "done, redirected"; 422 is the
# service refusing (a draft cannot be shared, an issued bundle cannot change). Anonymous
# requests are sent to the sign-in page; council users of another authority learn
# nothing (404); council users of the bundle's authority see only a shared bundle, and
# police-only routes answer them 404 as well.
DRAFT_ONLY = (302, 422, 422)  # a change to a draft: refused once issued
AFTER_ISSUE = (422, 302, 302)  # needs an issued bundle
SHARED_ONLY = (404, 404, 302)  # council, once shared
AFTER_SHARE = (422, 422, 302)  # police: comments open once the bundle is shared
SHARED_PAGE = (404, 404, 200)

Row = dict[str, int | tuple[int, int, int]]


def row(officer: Any, supervisor: Any, admin: Any, council: Any, other: Any, anon: Any) -> Row:
    return dict(zip(ROLES, (officer, supervisor, admin, council, other, anon), strict=True))


# fmt: off
EXPECTED: dict[str, Row] = {
    #                           officer      supervisor   admin council      other anon
    "GET /bundles":         row(200,         200,         403,  200,         200,  302),
    "GET new":              row(200,         200,         403,  404,         404,  302),
    "POST new":             row(302,         302,         403,  404,         404,  302),
    "GET show":             row(200,         200,         403,  SHARED_PAGE, 404,  302),
    "GET pdf shared":       row(200,         200,         403,  SHARED_PAGE, 404,  302),
    "GET pdf police":       row(200,         200,         403,  404,         404,  302),
    "GET zip shared":       row(200,         200,         403,  SHARED_PAGE, 404,  302),
    "GET zip police":       row(200,         200,         403,  404,         404,  302),
    "GET item":             row(200,         200,         403,  404,         404,  302),
    "POST item":            row(DRAFT_ONLY,  DRAFT_ONLY,  403,  404,         404,  302),
    "POST include":         row(DRAFT_ONLY,  DRAFT_ONLY,  403,  404,         404,  302),
    "POST statement":       row(DRAFT_ONLY,  DRAFT_ONLY,  403,  404,         404,  302),
    "POST rebuild":         row(DRAFT_ONLY,  DRAFT_ONLY,  403,  404,         404,  302),
    "POST comments":        row(AFTER_SHARE, AFTER_SHARE, 403,  SHARED_ONLY, 404,  302),
    "POST acknowledge":     row(403,         403,         403,  SHARED_ONLY, 404,  302),
    "POST new-version":     row(AFTER_ISSUE, AFTER_ISSUE, 403,  404,         404,  302),
    # Last: sharing an issued bundle and issuing a draft change the bundle's state.
    "POST share":           row(403,         AFTER_ISSUE, 403,  404,         404,  302),
    "POST issue":           row(403,         DRAFT_ONLY,  403,  404,         404,  302),
}
# fmt: on


def expected_status(route: str, role: str, state: str) -> int:
    value = EXPECTED[route][role]
    return value[STATES.index(state)] if isinstance(value, tuple) else value


def test_the_table_covers_every_bundle_route_of_the_app(app: Flask) -> None:
    """A bundle route added to the blueprint without a row in the table fails here."""
    methods = {
        (method, rule.endpoint)
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("evidence.")
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    }
    endpoints = {
        "GET /bundles": "evidence.list_bundles",
        "GET new": "evidence.build",
        "POST new": "evidence.build",
        "GET show": "evidence.show",
        "GET pdf shared": "evidence.pdf",
        "GET pdf police": "evidence.pdf",
        "GET zip shared": "evidence.zip_file",
        "GET zip police": "evidence.zip_file",
        "GET item": "evidence.exclude_item",
        "POST item": "evidence.exclude_item",
        "POST include": "evidence.include_item",
        "POST statement": "evidence.statement",
        "POST rebuild": "evidence.rebuild",
        "POST comments": "evidence.comment",
        "POST acknowledge": "evidence.acknowledge",
        "POST new-version": "evidence.new_version",
        "POST share": "evidence.share",
        "POST issue": "evidence.issue",
    }
    assert set(endpoints) == set(EXPECTED)
    assert {(route.split()[0], endpoint) for route, endpoint in endpoints.items()} == methods


def _bundle_in(session: Session, world: dict[str, Any], state: str) -> Bundle:
    bundle = bundles.create_bundle(session, world["officer"], world["premises"])
    if state in ("issued", "shared"):
        bundles.issue_bundle(session, world["supervisor"], bundle, bundle.lock_version)
    if state == "shared":
        bundles.share_bundle(session, world["supervisor"], bundle)
    return bundle


def _request(
    client: FlaskClient, session: Session, route: str, bundle: Bundle, item: BundleItem, token: str
) -> Any:
    """Send one route's request as its page would: the form's fields, the session's CSRF
    token and the lock version the bundle has now."""
    session.expire_all()
    lock = str(session.get(Bundle, bundle.id).lock_version)  # type: ignore[union-attr]
    base = f"/bundles/{bundle.id}"
    gets = {
        "GET /bundles": "/bundles",
        "GET new": f"/premises/{bundle.premises_id}/bundles/new",
        "GET show": base,
        "GET pdf shared": f"{base}/pdf?copy=shared",
        "GET pdf police": f"{base}/pdf?copy=police",
        "GET zip shared": f"{base}/zip?copy=shared",
        "GET zip police": f"{base}/zip?copy=police",
        "GET item": f"{base}/items/{item.id}",
    }
    if route in gets:
        return client.get(gets[route])
    posts: dict[str, tuple[str, dict[str, Any]]] = {
        "POST new": (
            f"/premises/{bundle.premises_id}/bundles/new",
            {
                "period_from": ["", "", ""],
                "period_to": ["", "", ""],
                "review_kind": "standard",
                "statement": "",
            },
        ),
        "POST item": (f"{base}/items/{item.id}", {"lock_version": lock, "reason": "Not needed"}),
        "POST include": (f"{base}/items/{item.id}/include", {"lock_version": lock}),
        "POST statement": (f"{base}/statement", {"lock_version": lock, "statement": "Updated"}),
        "POST rebuild": (f"{base}/rebuild", {"lock_version": lock}),
        "POST comments": (f"{base}/comments", {"body": "Seen, thank you"}),
        "POST acknowledge": (f"{base}/acknowledge", {}),
        "POST new-version": (f"{base}/new-version", {}),
        "POST share": (f"{base}/share", {}),
        "POST issue": (f"{base}/issue", {"lock_version": lock}),
    }
    url, data = posts[route]
    return client.post(url, data={"csrf_token": token, **data})


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("role", ROLES)
def test_access_matrix(
    client: FlaskClient, session: Session, world: dict[str, Any], role: str, state: str
) -> None:
    bundle = _bundle_in(session, world, state)
    item = bundles.items_of(session, bundle)[0]
    if role == "anonymous":
        token = csrf_from(text(client.get("/sign-in")))
    else:
        sign_in(client, world[role])
        token = csrf_from(text(client.get("/bundles")))  # any page: one token per session

    wrong: list[str] = []
    for route in EXPECTED:  # in the table's order: state-changing routes come last
        response = _request(client, session, route, bundle, item, token)
        expected = expected_status(route, role, state)
        if response.status_code != expected:
            wrong.append(f"{route}: {response.status_code}, expected {expected}")
        elif expected == 302 and role == "anonymous":
            location = urlsplit(response.headers["Location"])
            if location.path != "/sign-in":
                wrong.append(f"{route}: redirected to {location.path}, not to sign in")
        elif expected == 302:
            # Done: back to a bundle page (or the new bundle's), never to sign in.
            if not urlsplit(response.headers["Location"]).path.startswith("/bundles/"):
                wrong.append(f"{route}: redirected to {response.headers['Location']}")
        elif expected in (403, 404) and "The Crown" in text(response):
            wrong.append(f"{route}: the refusal names the premises")
    assert wrong == [], f"{role} on a {state} bundle"

    # A refused request changed nothing; the police and council changes did happen.
    session.expire_all()
    current = session.get(Bundle, bundle.id)
    assert current is not None
    if role in ("admin", "other_council", "anonymous") or (role == "council" and state != "shared"):
        assert current.status == ("draft" if state == "draft" else "issued")
        assert (current.shared_at is not None) == (state == "shared")
        assert current.acknowledged_at is None
        assert not bundles.comments_of(session, current)
    if role == "officer":  # could neither issue nor share; started a new version once issued
        assert current.status == ("draft" if state == "draft" else "issued")
        assert (current.shared_at is not None) == (state == "shared")
        versions = session.scalars(
            select(Bundle.version).where(Bundle.reference == current.reference)
        )
        assert sorted(versions) == ([1] if state == "draft" else [1, 2])
    if role == "supervisor":
        assert current.status == "issued" and (current.shared_at is not None) == (state != "draft")
    if role == "council" and state == "shared":
        assert current.acknowledged_by_id == world["council"].id


# ---- flows -----------------------------------------------------------------------------


def _form_fields(html: str, action: str) -> dict[str, str]:
    """The hidden fields of the form posting to `action` on a page."""
    start = html.index(f'action="{action}"')
    form = html[start : html.index("</form>", start)]
    fields = {}
    for tag in re.findall(r"<input[^>]*>", form):
        name = re.search(r'name="([^"]+)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if name and 'type="hidden"' in tag:
            fields[name.group(1)] = value.group(1) if value else ""
    return fields


def _item_row(html: str, item: BundleItem) -> str:
    start = html.index(f'data-item="{item.kind}-{item.ref_id}"')
    return html[start : html.index("</tr>", start)]


def _accesses(session: Session, bundle: Bundle) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(BundleAccess)
            .where(BundleAccess.bundle_id == bundle.id)
        )
        or 0
    )


def test_an_officer_builds_a_bundle_through_the_form(
    client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    premises = world["premises"]
    sign_in(client, world["officer"])
    page = client.get(f"/premises/{premises.id}/bundles/new")
    assert page.status_code == 200
    html = text(page)
    start, end = bundles.default_period()
    for name, day in (("period_from", start), ("period_to", end)):
        for part, value in (("day", day.day), ("month", day.month), ("year", day.year)):
            box = re.search(rf'<input[^>]*id="{name}-{part}"[^>]*value="0*(\d+)"', html)
            # The date widget pads days and months to two digits ("04").
            assert box and int(box.group(1)) == value, (name, part, box)

    reversed_period = {
        "csrf_token": csrf_from(html),
        "period_from": ["1", "6", str(end.year)],
        "period_to": ["1", "1", str(end.year)],
        "review_kind": "standard",
        "statement": "",
    }
    response = client.post(f"/premises/{premises.id}/bundles/new", data=reversed_period)
    assert_error_page(response, 422, "period_from-day")
    assert "The period must start before it ends" in text(response)
    assert session.scalar(select(func.count()).select_from(Bundle)) == 0

    good = reversed_period | {
        "period_from": ["1", "1", str(end.year - 1)],
        "period_to": [str(end.day), str(end.month), str(end.year)],
        "statement": "Repeated disorder at closing time.",
    }
    response = client.post(f"/premises/{premises.id}/bundles/new", data=good)
    assert response.status_code == 302, text(response)[:2000]
    bundle = session.scalars(select(Bundle)).one()
    assert urlsplit(response.headers["Location"]).path == f"/bundles/{bundle.id}"
    assert (bundle.period_from, bundle.period_to) == (date(end.year - 1, 1, 1), end)
    assert bundle.statement == "Repeated disorder at closing time." and bundle.status == "draft"
    shown = text(client.get(f"/bundles/{bundle.id}"))
    assert f"Bundle {bundle.label} built" in shown
    assert '<strong class="govuk-tag govuk-tag--yellow" id="bundle-status">Draft' in shown


def test_an_officer_leaves_an_item_out_with_a_reason_and_puts_it_back(
    client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    bundle = bundles.create_bundle(session, world["officer"], world["premises"])
    item = next(i for i in bundles.items_of(session, bundle) if i.kind == "incident")
    sign_in(client, world["officer"])
    shown = text(client.get(f"/bundles/{bundle.id}"))
    assert "Yes" in _item_row(shown, item)
    url = f"/bundles/{bundle.id}/items/{item.id}"
    assert f'href="{url}"' in shown  # the "Leave out" link

    form_page = text(client.get(url))
    token, lock = csrf_from(form_page), str(bundle.lock_version)
    assert f'name="lock_version" type="hidden" value="{lock}"' in form_page
    response = client.post(url, data={"csrf_token": token, "lock_version": lock, "reason": " "})
    assert_error_page(response, 422, "reason")
    assert "Say why this item is left out" in text(response)
    session.expire_all()
    assert session.get(BundleItem, item.id).included is True  # type: ignore[union-attr]

    reason = "Duplicate of the RMS record"
    response = client.post(url, data={"csrf_token": token, "lock_version": lock, "reason": reason})
    assert response.status_code == 302
    shown = text(client.get(f"/bundles/{bundle.id}"))
    assert f"No: {reason}" in _item_row(shown, item)
    assert f"{item.reference} is left out" in shown

    action = f"/bundles/{bundle.id}/items/{item.id}/include"
    put_back = _form_fields(shown, action)
    assert set(put_back) == {"csrf_token", "lock_version"}
    response = client.post(action, data=put_back)
    assert response.status_code == 302
    shown = text(client.get(f"/bundles/{bundle.id}"))
    assert "Yes" in _item_row(shown, item) and "No:" not in _item_row(shown, item)
    session.expire_all()
    again = session.get(BundleItem, item.id)
    assert again is not None and again.included and again.exclusion_reason is None


def test_a_stale_statement_form_is_a_conflict_not_a_silent_overwrite(
    app: Flask, client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    bundle = bundles.create_bundle(
        session, world["officer"], world["premises"], statement="First words"
    )
    sign_in(client, world["officer"])
    stale = _form_fields(
        text(client.get(f"/bundles/{bundle.id}")), f"/bundles/{bundle.id}/statement"
    )
    assert stale["lock_version"] == str(bundle.lock_version)

    # Someone else saves a statement in the meantime, through their own browser.
    other = app.test_client()
    sign_in(other, world["supervisor"])
    theirs = _form_fields(
        text(other.get(f"/bundles/{bundle.id}")), f"/bundles/{bundle.id}/statement"
    )
    response = other.post(
        f"/bundles/{bundle.id}/statement", data=theirs | {"statement": "The supervisor's words"}
    )
    assert response.status_code == 302

    response = client.post(
        f"/bundles/{bundle.id}/statement", data=stale | {"statement": "My overwrite"}
    )
    assert response.status_code == 409
    assert 'id="conflict-message"' in text(response)
    assert bundles.STALE_MESSAGE.split(":")[0] in text(response)
    session.expire_all()
    assert session.get(Bundle, bundle.id).statement == "The supervisor's words"  # type: ignore[union-attr]


def test_issue_share_and_the_council_opens_downloads_acknowledges_and_comments(
    app: Flask, client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    council_user, supervisor = world["council"], world["supervisor"]
    bundle = bundles.create_bundle(session, world["officer"], world["premises"])
    show = f"/bundles/{bundle.id}"

    # The supervisor issues from the bundle page...
    sign_in(client, supervisor)
    html = text(client.get(show))
    response = client.post(f"{show}/issue", data=_form_fields(html, f"{show}/issue"))
    assert response.status_code == 302
    html = text(client.get(show))
    assert '<strong class="govuk-tag govuk-tag--green" id="bundle-status">Issued' in html
    assert f'action="{show}/statement"' not in html  # an issued bundle cannot change

    # ... and shares it: the council user of the premises' authority is emailed.
    response = client.post(f"{show}/share", data=_form_fields(html, f"{show}/share"))
    assert response.status_code == 302
    html = text(client.get(show))
    assert 'id="bundle-shared"' in html and f'action="{show}/share"' not in html
    emails = session.scalars(select(OutboxEmail)).all()
    assert [e.recipient for e in emails] == [council_user.email]
    assert bundle.reference in emails[0].subject

    # The council user finds it under the bundles shared with them.
    council = app.test_client()
    sign_in(council, council_user)
    listing = text(council.get("/bundles"))
    assert "Bundles shared with you" in listing
    assert f'href="{show}"' in listing
    accesses = _accesses(session, bundle)

    page = council.get(show)
    assert page.status_code == 200
    html = text(page)
    assert 'id="open-police-pdf"' not in html and 'id="bundle-items"' not in html
    assert _accesses(session, bundle) == accesses + 1
    pdf = council.get(f"{show}/pdf?copy=shared")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert pdf.data.startswith(b"%PDF")
    assert _accesses(session, bundle) == accesses + 2
    archive = council.get(f"{show}/zip?copy=shared")
    assert archive.status_code == 200 and archive.mimetype == "application/zip"
    assert "manifest.json" in zipfile.ZipFile(io.BytesIO(archive.data)).namelist()
    assert _accesses(session, bundle) == accesses + 3
    assert council.get(f"{show}/pdf?copy=police").status_code == 404
    assert _accesses(session, bundle) == accesses + 3  # a refused download is no access

    response = council.post(f"{show}/acknowledge", data=_form_fields(html, f"{show}/acknowledge"))
    assert response.status_code == 302
    html = text(council.get(show))
    assert 'id="bundle-acknowledged"' in html and f'action="{show}/acknowledge"' not in html
    comment = _form_fields(html, f"{show}/comments") | {"body": "Listed for the hearing on 3 June."}
    response = council.post(f"{show}/comments", data=comment)
    assert response.status_code == 302
    assert "Listed for the hearing on 3 June." in text(council.get(show))

    # The supervisor sees every council access in the access log.
    html = text(client.get(show))
    start = html.index('id="accesses"')
    log = html[start : html.index("</table>", start)]
    council_rows = [r for r in log.split("<tr")[1:] if council_user.name in r]
    for label in (
        "Viewed the bundle page",
        "Downloaded the PDF",
        "Downloaded the ZIP",
        "Acknowledged receipt",
    ):
        assert any(label in r for r in council_rows), label
    assert "Listed for the hearing on 3 June." in html

    # The officer's page has no access log.
    officer = app.test_client()
    sign_in(officer, world["officer"])
    html = text(officer.get(show))
    assert 'id="accesses"' not in html and 'id="access-log"' not in html
    rows = session.scalars(
        select(BundleAccess.action).where(
            BundleAccess.bundle_id == bundle.id, BundleAccess.user_id == council_user.id
        )
    ).all()
    assert sorted(rows) == ["acknowledge", "pdf", "view", "view", "view", "zip"]


def test_form_errors_on_the_bundle_page_link_to_their_fields(
    app: Flask, client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    bundle = _bundle_in(session, world, "shared")
    show = f"/bundles/{bundle.id}"
    council = app.test_client()
    sign_in(council, world["council"])
    fields = _form_fields(text(council.get(show)), f"{show}/comments")
    response = council.post(f"{show}/comments", data=fields | {"body": "   "})
    assert_error_page(response, 422, "body")
    assert "Enter a comment" in text(response)
    assert not bundles.comments_of(session, bundle)

    draft = bundles.create_bundle(session, world["officer"], world["premises"])
    sign_in(client, world["officer"])
    action = f"/bundles/{draft.id}/statement"
    fields = _form_fields(text(client.get(f"/bundles/{draft.id}")), action)
    response = client.post(action, data=fields | {"statement": "x" * 20001})
    assert_error_page(response, 422, "statement")
    session.expire_all()
    assert session.get(Bundle, draft.id).statement == ""  # type: ignore[union-attr]

    # A form without its CSRF token changes nothing either.
    lock = fields["lock_version"]
    response = client.post(f"/bundles/{draft.id}/rebuild", data={"lock_version": lock})
    assert response.status_code == 400
    session.expire_all()
    assert str(session.get(Bundle, draft.id).lock_version) == lock  # type: ignore[union-attr]


def test_every_view_and_download_adds_an_access_row(
    client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    bundle = bundles.create_bundle(session, world["officer"], world["premises"])
    sign_in(client, world["officer"])
    for number, (url, action, copy) in enumerate(
        [
            (f"/bundles/{bundle.id}", "view", "police"),
            (f"/bundles/{bundle.id}/pdf?copy=shared", "pdf", "shared"),
            (f"/bundles/{bundle.id}/pdf?copy=police", "pdf", "police"),
            (f"/bundles/{bundle.id}/zip?copy=shared", "zip", "shared"),
            (f"/bundles/{bundle.id}/zip?copy=police", "zip", "police"),
        ],
        start=1,
    ):
        assert client.get(url).status_code == 200
        session.expire_all()
        assert _accesses(session, bundle) == number
        latest = session.scalars(select(BundleAccess).order_by(BundleAccess.id.desc())).first()
        assert latest is not None
        assert (latest.action, latest.variant, latest.user_id) == (
            action,
            copy,
            world["officer"].id,
        )
    assert client.get(f"/bundles/{bundle.id}/pdf?copy=other").status_code == 404
    assert _accesses(session, bundle) == 5


def test_the_premises_page_lists_bundles_and_offers_a_build_link_to_the_police(
    app: Flask, client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    premises, supervisor = world["premises"], world["supervisor"]
    sign_in(client, world["officer"])
    html = text(client.get(f"/premises/{premises.id}"))
    assert ">Evidence bundles</h2>" in html
    assert f'href="/premises/{premises.id}/bundles/new"' in html
    assert "Build an evidence bundle" in html and "No bundle yet" in html

    # In review (the application rests on an issued bundle), with a second bundle shared.
    move(session, premises, supervisor, "warn")
    move(session, premises, supervisor, "apply_for_review", application_date="2025-01-06")
    issued_only = bundles.latest_issued_bundle(session, premises.id)
    assert issued_only is not None
    shared = bundles.create_bundle(session, supervisor, premises)
    bundles.issue_bundle(session, supervisor, shared, shared.lock_version)
    bundles.share_bundle(session, supervisor, shared)
    draft = bundles.create_bundle(session, world["officer"], premises)

    html = text(client.get(f"/premises/{premises.id}"))
    start = html.index('id="premises-bundles"')
    listed = html[start : html.index("</ul>", start)]
    for b in (issued_only, shared, draft):
        assert f'href="/bundles/{b.id}"' in listed

    council = app.test_client()
    sign_in(council, world["council"])
    page = council.get(f"/premises/{premises.id}")
    assert page.status_code == 200
    html = text(page)
    assert ">Evidence bundles</h2>" in html
    start = html.index('id="premises-bundles"')
    listed = html[start : html.index("</ul>", start)]
    assert f'href="/bundles/{shared.id}"' in listed
    assert f'href="/bundles/{issued_only.id}"' not in listed
    assert f'href="/bundles/{draft.id}"' not in listed
    assert "Build an evidence bundle" not in html and 'id="build-bundle"' not in html

    # The council user of another authority does not see the premises at all.
    other = app.test_client()
    sign_in(other, world["other_council"])
    assert other.get(f"/premises/{premises.id}").status_code == 404


def test_the_council_sees_no_bundle_section_when_nothing_is_shared(
    app: Flask, client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    premises, supervisor = world["premises"], world["supervisor"]
    move(session, premises, supervisor, "warn")
    move(session, premises, supervisor, "apply_for_review", application_date="2025-01-06")
    sign_in(client, world["council"])
    page = client.get(f"/premises/{premises.id}")
    assert page.status_code == 200
    html = text(page)
    assert "The Crown" in html  # the page itself is shown
    assert ">Evidence bundles</h2>" not in html and 'id="build-bundle"' not in html


def test_a_review_application_without_an_issued_bundle_is_refused(
    client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    premises, supervisor = world["premises"], world["supervisor"]
    move(session, premises, supervisor, "warn")
    bundles.create_bundle(session, world["officer"], premises)  # a draft is not enough
    sign_in(client, supervisor)
    data = event_form(client, premises, "apply_for_review", reason="Repeated disorder")
    data["apply_for_review-application_date"] = ["6", "1", "2025"]
    response = client.post(f"/premises/{premises.id}/events/apply_for_review", data=data)
    page = assert_error_page(response, 422)
    assert "A review application needs an issued evidence bundle" in text(response)
    assert page.summary_links
    session.expire_all()
    session.refresh(premises)
    assert premises.state == "warned"


def test_the_page_parser_helper_finds_hidden_fields() -> None:
    html = (
        '<form method="post" action="/x"><input type="hidden" name="csrf_token" value="t">'
        '<input type="hidden" name="lock_version" value="3"><input name="body"></form>'
    )
    assert _form_fields(html, "/x") == {"csrf_token": "t", "lock_version": "3"}
    assert Page("<title>Error: x</title>").title == "Error: x"


def test_the_bundle_list_pages_newest_first_by_keyset(
    client: FlaskClient,
    session: Session,
    world: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bundles, "BUNDLES_PER_PAGE", 2)
    made = [
        bundles.create_bundle(session, world["officer"], world["premises"]).id for _ in range(3)
    ]
    sign_in(client, world["officer"])

    def listed(html: str) -> list[int]:
        table = html.split('id="bundles-table"')[1].split("</table>")[0]
        return [int(i) for i in re.findall(r'href="/bundles/(\d+)"', table)]

    first = text(client.get("/bundles"))
    assert listed(first) == [made[2], made[1]]
    older = re.search(r'id="older-bundles" href="([^"]+)"', first)
    assert older is not None and "Newest bundles" not in first
    second = text(client.get(older.group(1).replace("&amp;", "&")))
    assert listed(second) == [made[0]]
    assert "Newest bundles" in second and 'id="older-bundles"' not in second
    # A crafted cursor beyond the row id range is ignored: the first page.
    assert listed(text(client.get("/bundles?before=99999999999"))) == [made[2], made[1]]
