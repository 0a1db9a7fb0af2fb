"""The evidence bundle API: build, read, download, issue and share, with the council rule
(404 until a bundle is shared with their authority, the shared copy only) and every JSON
answer checked against the OpenAPI document by the validator of tests/test_openapi.py."""

from __future__ import annotations

import io
import re
import zipfile
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from licensing.api.openapi import openapi_document
from licensing.auth.models import User
from licensing.auth.services import create_token
from licensing.evidence import services as bundles
from licensing.evidence.attachments import add_attachment
from licensing.evidence.models import Bundle, BundleAccess, BundleItem
from licensing.incidents.services import record_incident
from licensing.notifications.models import OutboxEmail
from tests.test_attachments import text_pdf
from tests.test_openapi import Recorder, _resolve, validate

BUILD = "/api/v1/premises/{premises_id}/bundles"
ONE = "/api/v1/bundles/{bundle_id}"
PDF = ONE + "/pdf"
ZIP = ONE + "/zip"
ISSUE = ONE + "/issue"
SHARE = ONE + "/share"


class Api(Recorder):
    """The OpenAPI recorder, plus downloads: a binary 200 must carry the documented media
    type; an error answer of a download is JSON and is validated like any other."""

    def download(self, url: str, user: User, template: str) -> Any:
        operation = self.document["paths"][template]["get"]
        headers = {}
        if user.id not in self.tokens:
            from licensing.auth.services import create_token

            self.tokens[user.id] = create_token(self.session, user.email)
        headers["Authorization"] = f"Bearer {self.tokens[user.id]}"
        response = self.app.test_client().get(url, headers=headers)
        status = str(response.status_code)
        assert status in operation["responses"], f"GET {template} answered undocumented {status}"
        documented = operation["responses"][status]
        if "$ref" in documented:
            documented = _resolve(self.document, documented["$ref"])
        if response.status_code == 200:
            assert set(documented["content"]) == {response.mimetype}, response.mimetype
        else:
            schema = documented["content"]["application/json"]["schema"]
            assert validate(self.document, schema, response.get_json()) == [], url
        self.seen.add(("get", template, response.status_code))
        return response


@pytest.fixture
def api(app: Flask, session: Session) -> Api:
    return Api(app, session, openapi_document())


def _error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body["error"] == code, body
    return dict(body)


def _build(api: Api, user: User, premises_id: int, **kwargs: Any) -> Any:
    return api("POST", f"/api/v1/premises/{premises_id}/bundles", user, BUILD, **kwargs)


def _incident_id(session: Session, bundle_id: int) -> int:
    return int(
        session.scalars(
            select(BundleItem.ref_id).where(
                BundleItem.bundle_id == bundle_id, BundleItem.kind == "incident"
            )
        ).first()
        or 0
    )


# ---- building --------------------------------------------------------------------------


def test_build_with_defaults(api: Api, session: Session, world: dict[str, Any]) -> None:
    premises = world["premises"]
    response = _build(api, world["officer"], premises.id, json={})
    assert response.status_code == 201
    body = response.get_json()
    assert response.headers["Location"] == f"/api/v1/bundles/{body['id']}"
    start, end = bundles.default_period()
    assert (body["from"], body["to"]) == (start.isoformat(), end.isoformat())
    assert body["status"] == "draft" and body["version"] == 1
    assert body["review_kind"] == "standard" and body["premises_id"] == premises.id
    assert body["issued_at"] is None and body["shared_at"] is None
    assert body["reference"] == f"EB-{premises.id:05d}-01"
    bundle = session.get(Bundle, body["id"])
    assert bundle is not None and bundle.lock_version == body["lock_version"]
    assert body["shared_pdf_sha256"] == bundle.shared_pdf_sha256

    # No body at all is the same as an empty object; the reference numbering moves on.
    again = _build(api, world["supervisor"], premises.id)
    assert again.status_code == 201
    assert again.get_json()["reference"] == f"EB-{premises.id:05d}-02"


def test_build_with_a_period_kind_statement_and_exclusions(
    api: Api, session: Session, world: dict[str, Any]
) -> None:
    premises, officer = world["premises"], world["officer"]
    first = _build(api, officer, premises.id, json={}).get_json()
    incident_id = _incident_id(session, first["id"])
    assert incident_id
    end = datetime.now(UTC).date() - timedelta(days=1)
    start = end - timedelta(days=30)
    body = {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "review_kind": "summary",
        "statement": "Serious disorder.",
        "exclude": [{"kind": "incident", "id": incident_id, "reason": "Duplicate record"}],
    }
    response = _build(api, officer, premises.id, json=body)
    assert response.status_code == 201, response.get_json()
    made = response.get_json()
    assert (made["from"], made["to"], made["review_kind"]) == (
        start.isoformat(),
        end.isoformat(),
        "summary",
    )
    item = session.scalars(
        select(BundleItem).where(
            BundleItem.bundle_id == made["id"],
            BundleItem.kind == "incident",
            BundleItem.ref_id == incident_id,
        )
    ).one()
    assert item.included is False and item.exclusion_reason == "Duplicate record"
    assert session.get(Bundle, made["id"]).statement == "Serious disorder."  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"colour": "red"}, "colour"),
        ({"from": "2025-13-01"}, "from"),
        ({"to": "yesterday"}, "to"),
        ({"from": "2025-06-01", "to": "2025-01-01"}, "from"),
        ({"to": "2999-01-01"}, "to"),
        ({"exclude": [{"kind": "incident", "id": 1}]}, "exclude[0]"),
        ({"exclude": [{"kind": "incident", "id": 1, "reason": "  "}]}, "exclude[0]"),
        ({"exclude": [{"kind": "meal", "id": 1, "reason": "x"}]}, "exclude[0]"),
        ({"exclude": [{"kind": "incident", "id": 999999, "reason": "x"}]}, "exclude"),
        ({"review_kind": "quick"}, "review_kind"),
    ],
)
def test_build_refuses_bad_bodies_with_422_and_builds_nothing(
    api: Api, session: Session, world: dict[str, Any], body: dict[str, Any], field: str
) -> None:
    response = _build(api, world["officer"], world["premises"].id, json=body, valid_request=False)
    error = _error(response, 422, "invalid")
    assert field in error["fields"], error
    assert session.scalars(select(Bundle)).all() == []


def test_build_is_404_to_council_users_and_403_to_admin(
    api: Api, session: Session, world: dict[str, Any]
) -> None:
    premises = world["premises"]
    for user in (world["council"], world["other_council"]):
        _error(_build(api, user, premises.id, json={}), 404, "not_found")
    _error(_build(api, world["admin"], premises.id, json={}), 403, "forbidden")
    _error(_build(api, world["officer"], 999999, json={}), 404, "not_found")
    assert session.scalars(select(Bundle)).all() == []


# ---- reading and downloading -----------------------------------------------------------


def test_council_reads_a_bundle_only_once_it_is_shared_with_their_authority(
    api: Api, session: Session, world: dict[str, Any]
) -> None:
    council, other, officer = world["council"], world["other_council"], world["officer"]
    bundle_id = _build(api, officer, world["premises"].id, json={}).get_json()["id"]
    url = f"/api/v1/bundles/{bundle_id}"

    shown = api("GET", url, officer, ONE)
    assert shown.status_code == 200
    assert shown.get_json()["index"] and all(e["page"] >= 1 for e in shown.get_json()["index"])
    for user in (council, other):
        _error(api("GET", url, user, ONE), 404, "not_found")

    bundle = session.get(Bundle, bundle_id)
    assert bundle is not None
    bundles.issue_bundle(session, world["supervisor"], bundle, bundle.lock_version)
    for user in (council, other):
        _error(api("GET", url, user, ONE), 404, "not_found")  # issued is not shared

    bundles.share_bundle(session, world["supervisor"], bundle)
    seen = api("GET", url, council, ONE)
    assert seen.status_code == 200 and seen.get_json()["shared_at"]
    _error(api("GET", url, other, ONE), 404, "not_found")
    _error(api("GET", "/api/v1/bundles/999999", officer, ONE), 404, "not_found")
    views = session.scalars(
        select(BundleAccess.variant).where(
            BundleAccess.bundle_id == bundle_id, BundleAccess.action == "view"
        )
    ).all()
    assert sorted(views) == ["police", "shared"]  # the officer's and the council user's


def test_downloads_of_each_copy_and_the_council_gets_only_the_shared_one(
    api: Api, session: Session, world: dict[str, Any]
) -> None:
    officer, council = world["officer"], world["council"]
    bundle_id = _build(api, officer, world["premises"].id, json={}).get_json()["id"]
    base = f"/api/v1/bundles/{bundle_id}"

    for copy in ("shared", "police"):
        pdf = api.download(f"{base}/pdf?copy={copy}", officer, PDF)
        assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
        assert f"-{copy}.pdf" in pdf.headers["Content-Disposition"]
        archive = api.download(f"{base}/zip?copy={copy}", officer, ZIP)
        assert archive.status_code == 200
        names = zipfile.ZipFile(io.BytesIO(archive.data)).namelist()
        assert "manifest.json" in names and any(n.endswith(f"-{copy}.pdf") for n in names)
    assert (
        api.download(f"{base}/pdf", officer, PDF)
        .headers["Content-Disposition"]
        .endswith("-shared.pdf")
    )  # the default copy
    _error(api.download(f"{base}/pdf?copy=everything", officer, PDF), 422, "invalid")

    # Before sharing: nothing for the council, whichever copy.
    for copy in ("shared", "police"):
        _error(api.download(f"{base}/pdf?copy={copy}", council, PDF), 404, "not_found")
        _error(api.download(f"{base}/zip?copy={copy}", council, ZIP), 404, "not_found")

    bundle = session.get(Bundle, bundle_id)
    assert bundle is not None
    bundles.issue_bundle(session, world["supervisor"], bundle, bundle.lock_version)
    bundles.share_bundle(session, world["supervisor"], bundle)
    assert api.download(f"{base}/pdf?copy=shared", council, PDF).data.startswith(b"%PDF")
    assert api.download(f"{base}/zip?copy=shared", council, ZIP).status_code == 200
    _error(api.download(f"{base}/pdf?copy=police", council, PDF), 404, "not_found")
    _error(api.download(f"{base}/zip?copy=police", council, ZIP), 404, "not_found")
    _error(api.download(f"{base}/pdf?copy=shared", world["other_council"], PDF), 404, "not_found")

    council_accesses = session.scalars(
        select(BundleAccess.action).where(
            BundleAccess.bundle_id == bundle_id, BundleAccess.user_id == council.id
        )
    ).all()
    assert sorted(council_accesses) == ["pdf", "zip"]  # refused downloads are not logged


# ---- issuing and sharing ---------------------------------------------------------------


def test_issue_and_share(api: Api, session: Session, world: dict[str, Any]) -> None:
    officer, supervisor, council = world["officer"], world["supervisor"], world["council"]
    made = _build(api, officer, world["premises"].id, json={}).get_json()
    issue, share = f"/api/v1/bundles/{made['id']}/issue", f"/api/v1/bundles/{made['id']}/share"
    lock = {"lock_version": made["lock_version"]}

    _error(api("POST", issue, officer, ISSUE, json=lock), 403, "forbidden")
    _error(api("POST", issue, council, ISSUE, json=lock), 404, "not_found")
    _error(api("POST", share, supervisor, SHARE, json={}), 422, "refused")  # not issued
    _error(
        api("POST", issue, supervisor, ISSUE, json={"lock_version": made["lock_version"] + 1}),
        409,
        "conflict",
    )
    assert session.get(Bundle, made["id"]).status == "draft"  # type: ignore[union-attr]

    issued = api("POST", issue, supervisor, ISSUE, json=lock)
    assert issued.status_code == 200
    assert issued.get_json()["status"] == "issued" and issued.get_json()["issued_at"]
    _error(api("POST", issue, supervisor, ISSUE, json={}), 422, "refused")  # already issued

    _error(api("POST", share, officer, SHARE, json={}), 403, "forbidden")
    _error(api("POST", share, council, SHARE, json={}), 404, "not_found")
    shared = api("POST", share, supervisor, SHARE, json={})
    assert shared.status_code == 200
    assert shared.get_json()["emailed"] == 1 and shared.get_json()["shared_at"]
    assert [e.recipient for e in session.scalars(select(OutboxEmail))] == [council.email]
    again = api("POST", share, supervisor, SHARE)
    assert again.status_code == 200 and again.get_json()["emailed"] == 0  # once only
    assert len(session.scalars(select(OutboxEmail)).all()) == 1


def test_issue_is_refused_while_a_blocker_is_open(
    api: Api, session: Session, world: dict[str, Any]
) -> None:
    incident = record_incident(
        session,
        world["officer"],
        {
            "source": "rms",
            "source_ref": "RMS-API-1",
            "occurred_at": (datetime.now(UTC) - timedelta(days=4)).isoformat(),
            "category": "Public order",
            "description": "Disorder at the bar.",
            "personal_data": {"people": [{"role": "witness", "name": "Moira Pendleton"}]},
        },
        premises=world["premises"],
    ).incident
    add_attachment(
        session,
        world["officer"],
        incident=incident,
        data=text_pdf("Statement of Moira Pendleton"),
        file_name="statement.pdf",
        description="Witness statement",
        holds_personal_data=True,
    )
    made = _build(api, world["officer"], world["premises"].id, json={}).get_json()
    response = api(
        "POST",
        f"/api/v1/bundles/{made['id']}/issue",
        world["supervisor"],
        ISSUE,
        json={"lock_version": made["lock_version"]},
    )
    error = _error(response, 422, "refused")
    assert "cannot be issued" in error["message"] and "Moira" not in error["message"]
    assert session.get(Bundle, made["id"]).status == "draft"  # type: ignore[union-attr]


def test_bad_lock_versions_are_422(api: Api, session: Session, world: dict[str, Any]) -> None:
    made = _build(api, world["officer"], world["premises"].id, json={}).get_json()
    url = f"/api/v1/bundles/{made['id']}/issue"
    for body in ({"lock_version": "1"}, {"lock_version": True}):
        response = api("POST", url, world["supervisor"], ISSUE, json=body, valid_request=False)
        _error(response, 422, "invalid")
    response = api(
        "POST", url, world["supervisor"], ISSUE, data="[1]", content_type="application/json"
    )
    _error(response, 422, "invalid")
    assert session.get(Bundle, made["id"]).status == "draft"  # type: ignore[union-attr]


# ---- the document covers the bundle API ------------------------------------------------


def test_every_bundle_api_route_is_in_the_document(app: Flask) -> None:
    document = openapi_document()
    routes = {
        (re.sub(r"<(?:[a-z_]+:)?([a-z_]+)>", r"{\1}", rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1") and "bundles" in rule.rule
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    }
    assert routes == {
        (BUILD, "post"),
        (ONE, "get"),
        (PDF, "get"),
        (ZIP, "get"),
        (ISSUE, "post"),
        (SHARE, "post"),
    }
    for path, method in routes:
        assert method in document["paths"][path], (path, method)


def test_the_recorder_saw_every_documented_bundle_answer(
    api: Api, session: Session, world: dict[str, Any]
) -> None:
    """One pass over every bundle operation; each documented status is produced (and
    validated) at least once, except 401 (tests/test_api.py covers tokens) and the
    statuses an operation cannot reach from this data."""
    officer, supervisor, council = world["officer"], world["supervisor"], world["council"]
    premises = world["premises"]
    made = _build(api, officer, premises.id, json={}).get_json()
    _build(api, council, premises.id, json={})
    _build(api, world["admin"], premises.id, json={})
    _build(api, officer, premises.id, json={"x": 1}, valid_request=False)
    base = f"/api/v1/bundles/{made['id']}"
    api("GET", base, officer, ONE)
    api("GET", base, council, ONE)
    api.download(f"{base}/pdf", officer, PDF)
    api.download(f"{base}/pdf", council, PDF)
    api.download(f"{base}/pdf?copy=x", officer, PDF)
    api.download(f"{base}/zip", officer, ZIP)
    api.download(f"{base}/zip", council, ZIP)
    api.download(f"{base}/zip?copy=x", officer, ZIP)
    for template, url in ((ISSUE, f"{base}/issue"), (SHARE, f"{base}/share")):
        api("POST", url, officer, template, json={})
        api("POST", url, council, template, json={})
    api("POST", f"{base}/share", supervisor, SHARE, json={})  # 422: not issued
    api("POST", f"{base}/issue", supervisor, ISSUE, json={"lock_version": -1})  # 409
    api("POST", f"{base}/issue", supervisor, ISSUE, json={})  # 200
    api("POST", f"{base}/issue", supervisor, ISSUE, json={})  # 422: issued
    api("POST", f"{base}/share", supervisor, SHARE, json={"lock_version": 1})  # 200
    api("GET", base, None, ONE)  # 401
    expected = {
        ("post", BUILD, 201),
        ("post", BUILD, 403),
        ("post", BUILD, 404),
        ("post", BUILD, 422),
        ("get", ONE, 200),
        ("get", ONE, 401),
        ("get", ONE, 404),
        ("get", PDF, 200),
        ("get", PDF, 404),
        ("get", PDF, 422),
        ("get", ZIP, 200),
        ("get", ZIP, 404),
        ("get", ZIP, 422),
        ("post", ISSUE, 200),
        ("post", ISSUE, 403),
        ("post", ISSUE, 404),
        ("post", ISSUE, 409),
        ("post", ISSUE, 422),
        ("post", SHARE, 200),
        ("post", SHARE, 403),
        ("post", SHARE, 404),
        ("post", SHARE, 422),
    }
    assert expected <= api.seen, sorted(expected - api.seen)


def test_admins_are_refused_bundles_as_on_the_pages(
    app: Flask, session: Session, world: dict[str, Any]
) -> None:
    bundle = bundles.create_bundle(session, world["officer"], world["premises"])
    token = create_token(session, world["admin"].email)
    response = app.test_client().get(
        f"/api/v1/bundles/{bundle.id}", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 403
    assert response.get_json()["error"] == "forbidden"
