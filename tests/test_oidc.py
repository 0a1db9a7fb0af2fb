"""OpenID Connect sign-in against a real (minimal) identity provider.

The provider is a small Flask app served on a loopback port by werkzeug in a thread: it
publishes its discovery document and JWKS, approves every authorisation request (back to
the redirect URI with a code), and at its token endpoint checks the client's secret, the
code (once), the redirect URI and the PKCE verifier before returning an RS256-signed ID
token made with a key generated here. Each test can make the provider misbehave (another
audience, nonce, issuer or signing key, an expired or unsigned token) to show that the app
refuses it. The browser is the Flask test client for our app and `requests` for the
provider's authorisation page.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
import requests
from flask import Flask, jsonify, redirect, request
from flask.testing import FlaskClient
from joserfc import jwt
from joserfc.jwk import RSAKey
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from werkzeug.serving import make_server
from werkzeug.test import TestResponse

from config import ConfigError
from licensing import create_app
from licensing.audit.models import AuditEvent
from licensing.auth.models import User
from tests.conftest import IsolatedClient

CLIENT_ID = "licensing-enforcement"
CLIENT_SECRET = "provider-issued-secret"
PROVIDER_NAME = "Merseyside Police account"


@pytest.fixture(scope="module")
def signing_keys() -> dict[str, RSAKey]:
    """The provider's key and an attacker's key with the same key id."""
    params = {"kid": "provider-key-1", "use": "sig", "alg": "RS256"}
    return {
        "provider": RSAKey.generate_key(2048, parameters=params, private=True),
        "attacker": RSAKey.generate_key(2048, parameters=params, private=True),
    }


class Provider:
    """A minimal OpenID provider (authorisation code flow with PKCE)."""

    def __init__(self, keys: dict[str, RSAKey]) -> None:
        self.keys = keys
        self.codes: dict[str, dict[str, Any]] = {}
        self.identity: dict[str, Any] = {}
        self.tamper: dict[str, Any] = {}  # claims to overwrite in the next ID tokens
        self.sign_with = "provider"
        self.unsigned = False
        self.algorithms = ["RS256"]
        self.token_requests = 0
        self.app = self._build()
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _build(self) -> Flask:
        app = Flask("test_oidc_provider")

        @app.get("/.well-known/openid-configuration")
        def discovery() -> Any:
            return jsonify(
                issuer=self.url,
                authorization_endpoint=f"{self.url}/authorize",
                token_endpoint=f"{self.url}/token",
                jwks_uri=f"{self.url}/jwks",
                response_types_supported=["code"],
                subject_types_supported=["public"],
                id_token_signing_alg_values_supported=self.algorithms,
                token_endpoint_auth_methods_supported=["client_secret_basic"],
                code_challenge_methods_supported=["S256"],
            )

        @app.get("/jwks")
        def jwks() -> Any:
            return jsonify(keys=[self.keys["provider"].as_dict(private=False)])

        @app.get("/authorize")
        def authorize() -> Any:
            args = request.args
            if (
                args.get("client_id") != CLIENT_ID
                or args.get("response_type") != "code"
                or "openid" not in (args.get("scope") or "").split()
                or args.get("code_challenge_method") != "S256"
            ):
                return jsonify(error="invalid_request"), 400
            code = secrets.token_urlsafe(16)
            self.codes[code] = {
                "nonce": args.get("nonce"),
                "redirect_uri": args["redirect_uri"],
                "challenge": args.get("code_challenge"),
            }
            query = urlencode({"code": code, "state": args.get("state", "")})
            return redirect(f"{args['redirect_uri']}?{query}")

        @app.post("/token")
        def token() -> Any:
            self.token_requests += 1
            auth = request.authorization
            if auth is None or (auth.username, auth.password) != (CLIENT_ID, CLIENT_SECRET):
                return jsonify(error="invalid_client"), 401
            grant = self.codes.pop(request.form.get("code", ""), None)  # a code works once
            if grant is None or request.form.get("redirect_uri") != grant["redirect_uri"]:
                return jsonify(error="invalid_grant"), 400
            verifier = request.form.get("code_verifier", "")
            challenge = (
                base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
                .rstrip(b"=")
                .decode()
            )
            if challenge != grant["challenge"]:
                return jsonify(error="invalid_grant", error_description="PKCE"), 400
            now = int(time.time())
            claims = {
                "iss": self.url,
                "sub": "subject-0001",
                "aud": CLIENT_ID,
                "iat": now,
                "exp": now + 300,
                "nonce": grant["nonce"],
                **self.identity,
                **self.tamper,
            }
            return jsonify(
                access_token=secrets.token_urlsafe(16),
                token_type="Bearer",
                expires_in=300,
                id_token=self._sign(claims),
            )

        return app

    def _sign(self, claims: dict[str, Any]) -> str:
        if self.unsigned:

            def part(value: dict[str, Any]) -> str:
                raw = json.dumps(value).encode()
                return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

            return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."
        header = {"alg": "RS256", "kid": "provider-key-1", "typ": "JWT"}
        return jwt.encode(header, claims, self.keys[self.sign_with])


@pytest.fixture
def provider(signing_keys: dict[str, RSAKey]) -> Iterator[Provider]:
    """The identity provider, listening on a loopback port for this test."""
    server = Provider(signing_keys)
    server.thread.start()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.thread.join(timeout=10)


@pytest.fixture
def app(database_url: str, tmp_path: Path, provider: Provider) -> Iterator[Flask]:
    """The app on this test's database with OIDC switched on, pointing at `provider`."""
    application = create_app(
        {
            "ENV_NAME": "testing",
            "DATABASE_URL": database_url,
            "EVIDENCE_DIR": str(tmp_path / "evidence"),
            "OIDC_ENABLED": "true",  # as the environment gives it
            "OIDC_ISSUER": provider.url,
            "OIDC_CLIENT_ID": CLIENT_ID,
            "OIDC_CLIENT_SECRET": CLIENT_SECRET,
            "OIDC_PROVIDER_NAME": PROVIDER_NAME,
        }
    )
    application.test_client_class = IsolatedClient
    yield application
    application.extensions["db_engine"].dispose()


@pytest.fixture
def officer(make_user: Any) -> User:
    """An active officer whose address the provider will vouch for."""
    return make_user("officer", email="pc.smith@police.example")


def through_provider(client: FlaskClient) -> tuple[TestResponse, str]:
    """Click "Sign in with …", let the provider approve, and follow it back: the app's
    answer to the callback, and the callback's URL (path and query)."""
    start = client.get("/sign-in/oidc")
    assert start.status_code == 302, start.status_code
    approval = requests.get(start.headers["Location"], allow_redirects=False, timeout=10)
    assert approval.status_code == 302, approval.text
    back = urlsplit(approval.headers["Location"])
    assert back.path == "/sign-in/oidc/callback"
    callback = f"{back.path}?{back.query}"
    return client.get(callback), callback


def signed_in(client: FlaskClient) -> bool:
    """Whether the browser can open a page that needs sign-in."""
    return client.get("/premises").status_code == 200


def audit(session: Session, event: str) -> list[dict[str, Any]]:
    """The payloads of the audit events of one kind, oldest first."""
    session.expire_all()
    rows = session.scalars(
        select(AuditEvent.payload).where(AuditEvent.event == event).order_by(AuditEvent.id)
    )
    return [json.loads(row) for row in rows]


def assert_refused(
    client: FlaskClient, response: TestResponse, session: Session, reason: str
) -> None:
    """The callback sent the browser back to sign in, signed out, and the refusal is
    on the audit trail with its reason."""
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/sign-in"
    assert not signed_in(client)
    assert audit(session, "oidc_sign_in.succeeded") == []
    assert [event["reason"] for event in audit(session, "oidc_sign_in.failed")] == [reason]


# ---- the happy paths -------------------------------------------------------------------------


def test_first_sign_in_links_the_account_by_verified_email_then_by_subject(
    client: FlaskClient, session: Session, officer: User, provider: Provider
) -> None:
    provider.identity = {
        "sub": "a1b2c3",
        "email": "PC.Smith@police.example",
        "email_verified": True,
    }
    client.get("/sign-in")
    with client.session_transaction() as planted:
        planted["fixation"] = "attacker-chosen"
    response, _ = through_provider(client)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert signed_in(client)
    with client.session_transaction() as fresh:
        # A fresh session, timed like a password sign-in's.
        assert "fixation" not in fresh
        assert fresh["_user_id"] == str(officer.id)
        assert fresh["signed_in_at"] == fresh["last_seen_at"]
        assert not any(key.startswith("_state_") for key in fresh)
    session.expire_all()
    assert officer.oidc_subject == "a1b2c3"
    assert audit(session, "oidc_sign_in.succeeded") == [{"linked": True, "user_id": officer.id}]

    # Later: the subject decides, whatever the email now says.
    browser = client.application.test_client()
    provider.identity = {
        "sub": "a1b2c3",
        "email": "renamed@elsewhere.example",
        "email_verified": False,
    }
    response, _ = through_provider(browser)
    assert response.headers["Location"] == "/"
    assert signed_in(browser)
    assert audit(session, "oidc_sign_in.succeeded")[-1] == {"linked": False, "user_id": officer.id}


def test_sign_in_page_offers_the_provider_when_on(client: FlaskClient) -> None:
    page = client.get("/sign-in").get_data(as_text=True)
    assert f"Sign in with {PROVIDER_NAME}" in page
    assert 'href="/sign-in/oidc"' in page


def test_the_provider_gets_pkce_and_the_client_secret(
    client: FlaskClient, officer: User, provider: Provider
) -> None:
    # The provider refuses the code exchange without the right secret and verifier; a
    # successful sign-in shows both were sent (and the code was spent).
    provider.identity = {"email": officer.email, "email_verified": True}
    response, _ = through_provider(client)
    assert response.headers["Location"] == "/"
    assert provider.token_requests == 1 and provider.codes == {}


# ---- forged or replayed answers ---------------------------------------------------------------


def test_wrong_audience_refused(
    client: FlaskClient, session: Session, officer: User, provider: Provider
) -> None:
    provider.identity = {"email": officer.email, "email_verified": True}
    provider.tamper = {"aud": "some-other-service"}
    response, _ = through_provider(client)
    assert_refused(client, response, session, "id_token")


def test_audience_of_several_without_us_refused_even_with_our_azp(
    client: FlaskClient, session: Session, officer: User, provider: Provider
) -> None:
    provider.identity = {"email": officer.email, "email_verified": True}
    provider.tamper = {"aud": ["some-other-service", "another"], "azp": CLIENT_ID}
    response, _ = through_provider(client)
    assert_refused(client, response, session, "id_token")


def test_wrong_nonce_refused(
    client: FlaskClient, session: Session, officer: User, provider: Provider
) -> None:
    provider.identity = {"email": officer.email, "email_verified": True}
    provider.tamper = {"nonce": "a-nonce-from-another-sign-in"}
    response, _ = through_provider(client)
    assert_refused(client, response, session, "id_token")


def test_wrong_issuer_refused(
    client: FlaskClient, session: Session, officer: User, provider: Provider
) -> None:
    provider.identity = {"email": officer.email, "email_verified": True}
    provider.tamper = {"iss": "https://idp.attacker.example"}
    response, _ = through_provider(client)
    assert_refused(client, response, session, "id_token")


def test_expired_token_refused(
    client: FlaskClient, session: Session, officer: User, provider: Provider
) -> None:
    provider.identity = {"email": officer.email, "email_verified": True}
    now = int(time.time())
    provider.tamper = {"iat": now - 900, "exp": now - 300}  # well past the clock skew
    response, _ = through_provider(client)
    assert_refused(client, response, session, "id_token")


def test_token_signed_with_another_key_refused(
    client: FlaskClient, session: Session, officer: User, provider: Provider
) -> None:
    provider.identity = {"email": officer.email, "email_verified": True}
    provider.sign_with = "attacker"  # same key id, not the published key
    response, _ = through_provider(client)
    assert_refused(client, response, session, "id_token")


def test_unsigned_token_refused_even_if_the_provider_lists_none(
    client: FlaskClient, session: Session, officer: User, provider: Provider
) -> None:
    provider.identity = {"email": officer.email, "email_verified": True}
    provider.algorithms = ["RS256", "none"]
    provider.unsigned = True
    response, _ = through_provider(client)
    assert_refused(client, response, session, "id_token")


def test_replayed_callback_refused(
    app: Flask, client: FlaskClient, session: Session, officer: User, provider: Provider
) -> None:
    provider.identity = {"email": officer.email, "email_verified": True}
    response, callback = through_provider(client)
    assert response.headers["Location"] == "/"
    # Someone who captured the callback URL (a log, a shoulder) replays it: their
    # browser never started this sign-in, so it holds no state for it.
    attacker = app.test_client()
    replay = attacker.get(callback)
    assert replay.status_code == 302
    assert not signed_in(attacker)
    # Nor does the same browser accept its own callback twice.
    again = client.get(callback)
    assert again.status_code == 302
    assert [event["reason"] for event in audit(session, "oidc_sign_in.failed")] == [
        "state",
        "state",
    ]
    assert provider.token_requests == 1  # refused before the code was even tried


def test_callback_without_a_started_sign_in_refused(
    client: FlaskClient, session: Session, officer: User
) -> None:
    response = client.get("/sign-in/oidc/callback?code=guessed&state=guessed")
    assert_refused(client, response, session, "state")


# ---- who may sign in ------------------------------------------------------------------------------


def test_unknown_subject_with_unverified_email_refused(
    client: FlaskClient, session: Session, officer: User, provider: Provider
) -> None:
    provider.identity = {"sub": "new-person", "email": officer.email, "email_verified": False}
    response, _ = through_provider(client)
    assert_refused(client, response, session, "unknown_subject")
    session.expire_all()
    assert officer.oidc_subject is None


def test_email_verified_as_text_is_not_verified(
    client: FlaskClient, session: Session, officer: User, provider: Provider
) -> None:
    provider.identity = {"sub": "new-person", "email": officer.email, "email_verified": "true"}
    response, _ = through_provider(client)
    assert_refused(client, response, session, "unknown_subject")


def test_no_account_is_created_for_a_stranger(
    client: FlaskClient, session: Session, officer: User, provider: Provider
) -> None:
    users_before = session.scalar(select(func.count()).select_from(User))
    provider.identity = {"sub": "stranger", "email": "new@police.example", "email_verified": True}
    response, _ = through_provider(client)
    assert_refused(client, response, session, "no_account")
    assert session.scalar(select(func.count()).select_from(User)) == users_before
    landing = client.get("/sign-in").get_data(as_text=True)
    assert "Ask an administrator for access" in landing


def test_an_account_bound_to_one_subject_is_not_claimed_by_another(
    client: FlaskClient, session: Session, officer: User, provider: Provider
) -> None:
    session.execute(update(User).where(User.id == officer.id).values(oidc_subject="original"))
    session.commit()
    provider.identity = {"sub": "impostor", "email": officer.email, "email_verified": True}
    response, _ = through_provider(client)
    assert_refused(client, response, session, "subject_mismatch")
    session.expire_all()
    assert officer.oidc_subject == "original"


@pytest.mark.parametrize("linked", [True, False], ids=["by-subject", "by-email"])
def test_disabled_user_refused(
    client: FlaskClient, session: Session, officer: User, provider: Provider, linked: bool
) -> None:
    values: dict[str, Any] = {"active": False}
    if linked:
        values["oidc_subject"] = "subject-0001"
    session.execute(update(User).where(User.id == officer.id).values(**values))
    session.commit()
    provider.identity = {"email": officer.email, "email_verified": True}
    response, _ = through_provider(client)
    assert_refused(client, response, session, "disabled")
    assert audit(session, "oidc_sign_in.failed")[0]["user_id"] == officer.id
    session.expire_all()
    assert officer.oidc_subject == ("subject-0001" if linked else None)


def test_locked_user_refused(
    client: FlaskClient, session: Session, officer: User, provider: Provider
) -> None:
    session.execute(
        update(User)
        .where(User.id == officer.id)
        .values(oidc_subject="subject-0001", locked_at=datetime.now(UTC))
    )
    session.commit()
    response, _ = through_provider(client)
    assert_refused(client, response, session, "locked")


def test_refusals_are_audited_without_personal_data(
    client: FlaskClient, session: Session, officer: User, provider: Provider
) -> None:
    provider.identity = {
        "sub": "stranger-77",
        "email": "someone@police.example",
        "email_verified": True,
    }
    through_provider(client)
    session.expire_all()
    [row] = session.scalars(select(AuditEvent).where(AuditEvent.event == "oidc_sign_in.failed"))
    assert row.chain == "system" and row.actor_id is None
    assert "stranger-77" not in row.payload and "someone@" not in row.payload


# ---- switched off, misconfigured, unreachable -------------------------------------------------------


def test_oidc_off_answers_404(database_url: str, tmp_path: Path) -> None:
    plain = create_app(
        {"ENV_NAME": "testing", "DATABASE_URL": database_url, "EVIDENCE_DIR": str(tmp_path)}
    )
    try:
        assert plain.config["OIDC_ENABLED"] is False  # the default
        browser = plain.test_client()
        assert browser.get("/sign-in/oidc").status_code == 404
        assert browser.get("/sign-in/oidc/callback?code=x&state=y").status_code == 404
        page = browser.get("/sign-in").get_data(as_text=True)
        assert "Sign in with" not in page and "/sign-in/oidc" not in page
    finally:
        plain.extensions["db_engine"].dispose()


def test_oidc_enabled_as_false_text_stays_off(database_url: str, tmp_path: Path) -> None:
    plain = create_app(
        {
            "ENV_NAME": "testing",
            "DATABASE_URL": database_url,
            "EVIDENCE_DIR": str(tmp_path),
            "OIDC_ENABLED": "false",
        }
    )
    try:
        assert plain.test_client().get("/sign-in/oidc").status_code == 404
    finally:
        plain.extensions["db_engine"].dispose()


@pytest.mark.parametrize("missing", ["OIDC_ISSUER", "OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET"])
def test_oidc_on_without_its_settings_refuses_to_start(
    database_url: str, tmp_path: Path, missing: str
) -> None:
    settings = {
        "ENV_NAME": "testing",
        "DATABASE_URL": database_url,
        "EVIDENCE_DIR": str(tmp_path),
        "OIDC_ENABLED": True,
        "OIDC_ISSUER": "https://idp.police.example",
        "OIDC_CLIENT_ID": CLIENT_ID,
        "OIDC_CLIENT_SECRET": CLIENT_SECRET,
        missing: None,
    }
    with pytest.raises(ConfigError, match=missing):
        create_app(settings)


def test_provider_down_sends_the_user_back_to_sign_in(
    client: FlaskClient, provider: Provider
) -> None:
    provider.server.shutdown()
    provider.server.server_close()
    response = client.get("/sign-in/oidc")
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/sign-in"
    assert "is not available just now" in client.get("/sign-in").get_data(as_text=True)


# ---- in a real browser ----------------------------------------------------------------------------


@pytest.mark.e2e
def test_sign_in_with_the_provider_in_chromium(
    app: Flask, officer: User, provider: Provider
) -> None:
    from playwright.sync_api import expect, sync_playwright

    from tests.e2e_support import browser_page, serve
    from tests.test_e2e_accessibility import _axe_violations

    provider.identity = {"email": officer.email, "email_verified": True}
    with (
        serve(app) as base_url,
        sync_playwright() as playwright,
        browser_page(playwright, base_url) as page,
    ):
        app.config["BASE_URL"] = base_url  # the provider sends the browser back here
        page.goto("/sign-in")
        assert _axe_violations(page) == []
        page.get_by_role("button", name=f"Sign in with {PROVIDER_NAME}").click()
        expect(page.get_by_role("button", name="Sign out")).to_be_visible()
        assert urlsplit(page.url).path == "/"
