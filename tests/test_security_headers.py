"""Security headers on every response: pages, the API, static files, errors, redirects.

The Content Security Policy allows no inline script or style; GOV.UK's one inline
script carries a per-request nonce. HSTS is sent in production only, and a view's own
stricter policy (the attachment download's sandbox) is kept.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from licensing import create_app
from licensing.auth.services import create_token
from licensing.evidence import attachments
from licensing.incidents.models import Incident, PremisesIncidentLink
from licensing.security import content_security_policy, tile_origin
from tests.conftest import sign_in
from tests.test_attachments import image_bytes

EXPECTED = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "X-Frame-Options": "DENY",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}
NONCE_RE = re.compile(r"'nonce-([A-Za-z0-9_-]+)'")
SCRIPT_RE = re.compile(r"<script([^>]*)>(.*?)</script>", re.S)


def directives(response: TestResponse) -> dict[str, list[str]]:
    """The response's CSP as {directive: [sources]}."""
    policy = response.headers["Content-Security-Policy"]
    parsed: dict[str, list[str]] = {}
    for part in policy.split(";"):
        name, *sources = part.split()
        parsed[name] = sources
    return parsed


def assert_secure_headers(response: TestResponse) -> None:
    for name, value in EXPECTED.items():
        assert response.headers.get(name) == value, (name, response.headers.get(name))
    policy = response.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in policy
    assert "unsafe-eval" not in policy
    csp = directives(response)
    assert csp["default-src"] == ["'self'"]
    assert csp["script-src"][0] == "'self'"
    assert len(csp["script-src"]) == 2 and NONCE_RE.fullmatch(csp["script-src"][1])
    assert csp["style-src"] == ["'self'"]
    assert csp["img-src"][:2] == ["'self'", "data:"]
    assert csp["connect-src"] == ["'self'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["form-action"] == ["'self'"]
    assert csp["base-uri"] == ["'self'"]
    assert csp["object-src"] == ["'none'"]
    # Testing is not production: no HSTS.
    assert "Strict-Transport-Security" not in response.headers


@pytest.fixture
def signed_in(client: FlaskClient, world: dict[str, Any]) -> FlaskClient:
    sign_in(client, world["officer"])
    return client


def test_a_page_has_every_header(signed_in: FlaskClient) -> None:
    response = signed_in.get("/")
    assert response.status_code == 200
    assert_secure_headers(response)


def test_the_sign_in_page_and_a_redirect_have_every_header(client: FlaskClient) -> None:
    page = client.get("/sign-in")
    assert page.status_code == 200
    assert_secure_headers(page)
    redirect = client.get("/premises")
    assert redirect.status_code == 302
    assert_secure_headers(redirect)


def test_api_responses_have_every_header(
    client: FlaskClient, session: Any, world: dict[str, Any]
) -> None:
    refused = client.get("/api/v1/premises")
    assert refused.status_code == 401
    assert_secure_headers(refused)
    token = create_token(session, world["officer"].email)
    answered = client.get("/api/v1/premises", headers={"Authorization": f"Bearer {token}"})
    assert answered.status_code == 200
    assert answered.is_json
    assert_secure_headers(answered)
    missing = client.get("/api/v1/no-such-thing")
    assert missing.status_code == 404
    assert_secure_headers(missing)


def test_static_files_have_every_header(client: FlaskClient) -> None:
    for path in ("/assets/govuk-frontend.min.css", "/assets/app/map.js"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert_secure_headers(response)
        response.close()


def test_error_pages_have_every_header(signed_in: FlaskClient) -> None:
    missing = signed_in.get("/premises/999999")
    assert missing.status_code == 404
    assert_secure_headers(missing)
    unknown = signed_in.get("/no-such-page")
    assert unknown.status_code == 404
    assert_secure_headers(unknown)


def test_the_nonce_is_fresh_per_request_and_on_the_inline_script(client: FlaskClient) -> None:
    nonces = []
    for _ in range(2):
        response = client.get("/sign-in")
        (nonce,) = NONCE_RE.findall(response.headers["Content-Security-Policy"])
        html = response.get_data(as_text=True)
        inline = [
            (attrs, body)
            for attrs, body in SCRIPT_RE.findall(html)
            if "src=" not in attrs and "application/json" not in attrs
        ]
        assert inline, "GOV.UK's js-enabled script is missing"
        for attrs, body in inline:
            assert f'nonce="{nonce}"' in attrs, (attrs, body[:80])
        nonces.append(nonce)
    assert nonces[0] != nonces[1]
    assert len(nonces[0]) >= 16


def test_no_template_has_inline_script_or_style_without_a_nonce() -> None:
    """Every page template: no inline event handler, <style> or style attribute, and no
    inline <script> except JSON data blocks (not run, so not governed by the CSP)."""
    root = Path(__file__).resolve().parent.parent / "templates"
    offences = []
    for path in root.rglob("*.html"):
        if "email" in path.relative_to(root).parts:
            continue  # emails are not served as pages
        text = path.read_text()
        for attrs, _body in SCRIPT_RE.findall(text):
            if "src=" not in attrs and "application/json" not in attrs and "nonce" not in attrs:
                offences.append(f"{path.name}: inline <script{attrs}>")
        if re.search(r"<style\b", text) or re.search(r"\sstyle=", text):
            offences.append(f"{path.name}: inline style")
        if re.search(r"\son[a-z]+=", text):
            offences.append(f"{path.name}: inline event handler")
    assert offences == []


def test_map_tile_host_is_allowed_for_images(app: Flask, signed_in: FlaskClient) -> None:
    app.config["MAP_TILE_URL"] = "http://127.0.0.1:9/{z}/{x}/{y}.png"
    assert directives(signed_in.get("/map"))["img-src"] == [
        "'self'",
        "data:",
        "http://127.0.0.1:9",
    ]
    app.config["MAP_TILE_URL"] = ""
    assert directives(signed_in.get("/map"))["img-src"] == ["'self'", "data:"]


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://tile.openstreetmap.org/{z}/{x}/{y}.png", "https://tile.openstreetmap.org"),
        ("https://{s}.tiles.example:8443/{z}/{x}/{y}.png", "https://*.tiles.example:8443"),
        ("https://user:pw@tiles.example/{z}/{x}/{y}.png", "https://tiles.example"),
        ("", None),
        (None, None),
        ("/tiles/{z}/{x}/{y}.png", None),
        ("javascript:alert(1)", None),
        ("https://evil.example;script-src *", None),
    ],
)
def test_tile_origin(url: str | None, origin: str | None) -> None:
    assert tile_origin(url) == origin
    policy = content_security_policy("abc", url)
    assert policy.count(";") == 9  # nothing in the URL can add a directive


def test_hsts_only_in_production(
    monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path
) -> None:
    monkeypatch.setenv("SECRET_KEY", "a-real-secret-from-the-vault")
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.delenv("HSTS_SECONDS", raising=False)
    production = create_app({"ENV_NAME": "production", "EVIDENCE_DIR": str(tmp_path)})
    response = production.test_client().get("/sign-in")
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
    static = production.test_client().get("/assets/app/app.css")
    assert static.headers["Strict-Transport-Security"] == "max-age=31536000"
    static.close()
    production.extensions["db_engine"].dispose()

    for profile in ("development", "testing"):
        other = create_app({"ENV_NAME": profile, "EVIDENCE_DIR": str(tmp_path)})
        assert "Strict-Transport-Security" not in other.test_client().get("/sign-in").headers
        other.extensions["db_engine"].dispose()

    monkeypatch.setenv("HSTS_SECONDS", "600")
    tuned = create_app({"ENV_NAME": "production", "EVIDENCE_DIR": str(tmp_path)})
    assert tuned.test_client().get("/sign-in").headers["Strict-Transport-Security"] == (
        "max-age=600"
    )
    tuned.extensions["db_engine"].dispose()


def test_the_attachment_download_keeps_its_own_policy(
    signed_in: FlaskClient, session: Any, world: dict[str, Any]
) -> None:
    record = session.scalars(
        select(Incident)
        .join(PremisesIncidentLink, PremisesIncidentLink.incident_id == Incident.id)
        .where(PremisesIncidentLink.premises_id == world["premises"].id)
    ).one()  # the confirmed incident every test premises has
    attachment = attachments.add_attachment(
        session,
        world["officer"],
        incident=record,
        data=image_bytes("PNG"),
        file_name="still.png",
        description="CCTV still",
        holds_personal_data=False,
    )
    download = signed_in.get(f"/attachments/{attachment.id}")
    assert download.status_code == 200
    assert download.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert download.headers.getlist("Content-Security-Policy") == ["default-src 'none'; sandbox"]
    for name, value in EXPECTED.items():
        assert download.headers.get(name) == value
