"""Password reset by an emailed single-use link that expires, and the change of one's own
password. Each test is named after the attack or failure it shuts out.

Links go out through the real outbox and, where the email itself matters, over real
SMTP (aiosmtpd); pages are driven through the test client with real CSRF tokens."""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
import time_machine
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from licensing.audit.models import AuditEvent
from licensing.audit.services import verify_chains
from licensing.auth import reset
from licensing.auth.models import PasswordResetToken, User
from licensing.auth.services import authenticate
from licensing.db import get_session
from licensing.errors import Refused
from licensing.notifications.models import OutboxEmail
from licensing.notifications.sender import SmtpSettings, send_due
from tests import smtp_support
from tests.conftest import PASSWORD, csrf_from, sign_in
from tests.smtp_support import SmtpServer, html_part, text_part

smtp_server = smtp_support.smtp_server  # the fixture, shared by the SMTP test modules

NEW_PASSWORD = "tangerine-lighthouse-orbit-47"
LINK_RE = re.compile(r"https?://[^\s\"<>]+/password-reset/([A-Za-z0-9_\-]+)")
SENT_MESSAGE = "If an account exists for that email address, we have sent it a link"


# ---- helpers: what a person does with a browser ------------------------------------------


def ask_for_link(client: FlaskClient, email: str) -> TestResponse:
    """Fill in and send the "Forgot your password?" form."""
    page = client.get("/password-reset")
    assert page.status_code == 200
    return client.post(
        "/password-reset",
        data={"email": email, "csrf_token": csrf_from(page.get_data(as_text=True))},
    )


def outbox_links(session: Session, user: User) -> list[str]:
    """The reset links queued for `user`, oldest first (read from the outbox rows)."""
    session.expire_all()
    bodies = session.scalars(
        select(OutboxEmail.text_body)
        .where(OutboxEmail.user_id == user.id, OutboxEmail.dedupe_key.like("password-reset:%"))
        .order_by(OutboxEmail.id)
    )
    links = []
    for body in bodies:
        match = LINK_RE.search(body)
        assert match, body
        links.append(match.group(0))
    return links


def open_link(client: FlaskClient, link: str) -> TestResponse:
    """Open an emailed link (the app is served at BASE_URL; the test client at its path)."""
    return client.get(urlsplit(link).path)


def set_new_password(
    client: FlaskClient, link: str, password: str = NEW_PASSWORD, confirm: str | None = None
) -> TestResponse:
    """Open the link and choose a password: the answer to the form's POST."""
    opened = open_link(client, link)
    assert opened.status_code == 302, opened.status_code
    assert opened.headers["Location"] == "/password-reset/new-password"
    form = client.get("/password-reset/new-password")
    assert form.status_code == 200
    return client.post(
        "/password-reset/new-password",
        data={
            "password": password,
            "confirm": password if confirm is None else confirm,
            "csrf_token": csrf_from(form.get_data(as_text=True)),
        },
    )


def can_sign_in(app: Flask, user: User, password: str) -> bool:
    """Whether the sign-in form accepts the password (a fresh browser each time)."""
    browser = app.test_client()
    page = browser.get("/sign-in")
    response = browser.post(
        "/sign-in",
        data={
            "email": user.email,
            "password": password,
            "csrf_token": csrf_from(page.get_data(as_text=True)),
        },
    )
    return response.status_code == 302


def events(session: Session, name: str) -> list[AuditEvent]:
    """The audit events of one kind, oldest first."""
    session.expire_all()
    return list(
        session.scalars(select(AuditEvent).where(AuditEvent.event == name).order_by(AuditEvent.id))
    )


@pytest.fixture
def officer(make_user: Callable[..., User]) -> User:
    """An active officer with the test password."""
    return make_user("officer", email="pc.reset@police.example")


# ---- the email ---------------------------------------------------------------------------


def test_reset_email_goes_out_over_smtp(
    app: Flask, client: FlaskClient, session: Session, officer: User, smtp_server: SmtpServer
) -> None:
    response = ask_for_link(client, officer.email)
    assert response.status_code == 302
    assert response.headers["Location"] == "/sign-in"
    # Persisted in the outbox before any sending.
    assert session.scalar(select(func.count()).select_from(OutboxEmail)) == 1
    assert smtp_server.messages == []

    result = send_due(session, SmtpSettings.from_config(app.config))
    assert result.sent == 1
    [message] = smtp_server.to(officer.email)
    assert message["Subject"] == reset.RESET_SUBJECT
    text = text_part(message)
    html = html_part(message)
    # The absolute link at BASE_URL, and nothing else to click or read about the account.
    [link] = re.findall(r"https?://\S+", text)
    assert link.startswith(app.config["BASE_URL"].rstrip("/") + "/password-reset/")
    assert f'href="{link}"' in html
    assert set(re.findall(r'href="([^"]+)"', html)) == {link}
    for personal in (officer.name, officer.email, officer.role):
        assert personal not in text and personal not in html
    assert "60 minutes" in text and "works once" in text
    assert "did not ask" in text

    # The link from the email really sets the password; the old one stops working.
    assert set_new_password(client, link).status_code == 302
    assert can_sign_in(app, officer, NEW_PASSWORD)
    assert not can_sign_in(app, officer, PASSWORD)


def test_forgot_password_link_is_on_the_sign_in_page(client: FlaskClient) -> None:
    page = client.get("/sign-in").get_data(as_text=True)
    assert 'href="/password-reset"' in page
    assert "Forgot your password?" in page


# ---- enumeration --------------------------------------------------------------------------


def test_reset_request_does_not_reveal_accounts(
    app: Flask, session: Session, officer: User, make_user: Callable[..., User]
) -> None:
    disabled = make_user("officer", email="gone@police.example")
    session.execute(update(User).where(User.id == disabled.id).values(active=False))
    session.commit()

    answers = []
    for email in (
        officer.email,
        disabled.email,
        "nobody@police.example",
        "  PC.Reset@Police.Example ",
    ):
        browser = app.test_client()
        response = ask_for_link(browser, email)
        landing = browser.get(response.headers["Location"]).get_data(as_text=True)
        answers.append(
            (
                response.status_code,
                response.headers["Location"],
                # The page differs only by its CSRF token and the nonce of its script.
                re.sub(r'(value|nonce)="[^"]+"', "", landing),
            )
        )
    assert answers[0][0] == 302
    assert SENT_MESSAGE in answers[0][2]
    assert all(answer == answers[0] for answer in answers)

    # Only the active account got mail (twice: the address is matched as stored).
    session.expire_all()
    recipients = session.scalars(select(OutboxEmail.recipient)).all()
    assert recipients == [officer.email, officer.email]
    assert events(session, "password_reset.requested")[0].payload == (
        f'{{"reset_id":1,"user_id":{officer.id}}}'
    )


# ---- single use, expiry, supersession ------------------------------------------------------


def test_reset_link_works_once(
    app: Flask, client: FlaskClient, session: Session, officer: User
) -> None:
    ask_for_link(client, officer.email)
    [link] = outbox_links(session, officer)
    assert set_new_password(client, link).status_code == 302

    # The same link again, in another browser: refused, and the password stays.
    attacker = app.test_client()
    again = open_link(attacker, link)
    assert again.status_code == 404
    assert "This link does not work" in again.get_data(as_text=True)
    assert attacker.get("/password-reset/new-password").status_code == 404
    assert can_sign_in(app, officer, NEW_PASSWORD)
    session.expire_all()
    [record] = session.scalars(select(PasswordResetToken)).all()
    assert record.used_at is not None


def test_a_link_opened_but_not_used_stays_usable(
    app: Flask, client: FlaskClient, session: Session, officer: User
) -> None:
    # Mail scanners open links: opening must not spend it.
    ask_for_link(client, officer.email)
    [link] = outbox_links(session, officer)
    assert open_link(app.test_client(), link).status_code == 302
    assert set_new_password(client, link).status_code == 302
    assert can_sign_in(app, officer, NEW_PASSWORD)


def test_expired_reset_link_refused(
    app: Flask, client: FlaskClient, session: Session, officer: User
) -> None:
    start = datetime.now(UTC)
    with time_machine.travel(start, tick=False) as clock:
        ask_for_link(client, officer.email)
        [link] = outbox_links(session, officer)
        # Opened in time (at 59 minutes), submitted too late: still refused.
        clock.move_to(start + timedelta(minutes=59))
        assert open_link(client, link).status_code == 302
        form = client.get("/password-reset/new-password")
        assert form.status_code == 200
        clock.move_to(start + timedelta(minutes=60, seconds=1))
        late = client.post(
            "/password-reset/new-password",
            data={
                "password": NEW_PASSWORD,
                "confirm": NEW_PASSWORD,
                "csrf_token": csrf_from(form.get_data(as_text=True)),
            },
        )
        assert late.status_code == 404
        assert open_link(app.test_client(), link).status_code == 404
    assert not can_sign_in(app, officer, NEW_PASSWORD)
    assert can_sign_in(app, officer, PASSWORD)


def test_reset_lifetime_is_configurable(
    app: Flask, client: FlaskClient, session: Session, officer: User
) -> None:
    app.config["PASSWORD_RESET_MINUTES"] = "15"  # as the environment gives it
    start = datetime.now(UTC)
    with time_machine.travel(start, tick=False) as clock:
        ask_for_link(client, officer.email)
        [link] = outbox_links(session, officer)
        assert "15 minutes" in session.scalar(select(OutboxEmail.text_body))
        clock.move_to(start + timedelta(minutes=14))
        assert open_link(app.test_client(), link).status_code == 302
        clock.move_to(start + timedelta(minutes=15, seconds=1))
        assert open_link(app.test_client(), link).status_code == 404


def test_new_link_invalidates_old(
    app: Flask, client: FlaskClient, session: Session, officer: User
) -> None:
    ask_for_link(client, officer.email)
    ask_for_link(client, officer.email)
    old, new = outbox_links(session, officer)
    assert old != new
    assert open_link(app.test_client(), old).status_code == 404
    assert set_new_password(client, new).status_code == 302
    assert can_sign_in(app, officer, NEW_PASSWORD)


def test_a_disabled_accounts_outstanding_link_is_refused(
    app: Flask, client: FlaskClient, session: Session, officer: User
) -> None:
    ask_for_link(client, officer.email)
    [link] = outbox_links(session, officer)
    session.execute(update(User).where(User.id == officer.id).values(active=False))
    session.commit()
    assert open_link(client, link).status_code == 404


def test_mailbox_flooding_is_capped_per_account(
    app: Flask, session: Session, officer: User
) -> None:
    for _ in range(reset.MAX_LINKS_PER_HOUR + 3):
        response = ask_for_link(app.test_client(), officer.email)
        assert response.status_code == 302  # the same answer throughout
    assert len(outbox_links(session, officer)) == reset.MAX_LINKS_PER_HOUR


def test_concurrent_double_submit_uses_the_link_once(
    app: Flask, session: Session, officer: User
) -> None:
    assert reset.request_reset(session, officer.email)
    [link] = outbox_links(session, officer)
    digest = reset.token_digest(urlsplit(link).path.rsplit("/", 1)[1])
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def submit(password: str) -> None:
        with app.app_context():
            db = get_session()
            barrier.wait()
            try:
                reset.complete_reset(db, digest, password)
                outcomes.append(password)
            except Refused:
                outcomes.append("refused")

    threads = [
        threading.Thread(target=submit, args=(p,))
        for p in ("first-candidate-passphrase", "second-candidate-passphrase")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes).count("refused") == 1, outcomes
    [winner] = [o for o in outcomes if o != "refused"]
    assert can_sign_in(app, officer, winner)
    assert len(events(session, "password_reset.completed")) == 1


# ---- the new password ------------------------------------------------------------------------


def test_weak_password_refused_on_reset(
    app: Flask, client: FlaskClient, session: Session, officer: User
) -> None:
    ask_for_link(client, officer.email)
    [link] = outbox_links(session, officer)
    short = set_new_password(client, link, password="short")
    assert short.status_code == 422
    page = short.get_data(as_text=True)
    assert "Error:" in page and "There is a problem" in page
    mismatch = set_new_password(client, link, confirm=NEW_PASSWORD + "x")
    assert mismatch.status_code == 422
    assert "The two passwords are not the same" in mismatch.get_data(as_text=True)
    # Neither spent the link: a good password still goes through with it.
    assert set_new_password(client, link).status_code == 302
    assert can_sign_in(app, officer, NEW_PASSWORD)


def test_reset_does_not_sign_the_user_in(
    client: FlaskClient, session: Session, officer: User
) -> None:
    ask_for_link(client, officer.email)
    [link] = outbox_links(session, officer)
    done = set_new_password(client, link)
    assert done.headers["Location"] == "/sign-in"
    landing = client.get("/sign-in").get_data(as_text=True)
    assert "Sign in with your new password" in landing
    assert client.get("/premises").status_code == 302
    with client.session_transaction() as stored:
        assert "_user_id" not in stored
        assert reset.SESSION_KEY not in stored


def test_reset_does_not_unlock_an_account_locked_for_guessing(
    app: Flask, client: FlaskClient, session: Session, officer: User
) -> None:
    for _ in range(int(app.config["ACCOUNT_LOCKOUT_FAILURES"])):
        assert authenticate(session, officer.email, "a-wrong-guess-000") is None
    session.expire_all()
    assert officer.locked_at is not None
    ask_for_link(client, officer.email)
    [link] = outbox_links(session, officer)  # a locked account may still reset
    assert set_new_password(client, link).status_code == 302
    session.expire_all()
    assert officer.locked_at is not None  # an admin unlocks
    assert officer.failed_sign_ins == 0
    assert officer.password_changed_at is not None
    assert not can_sign_in(app, officer, NEW_PASSWORD)


def test_reset_ends_sessions_signed_in_with_the_old_password(
    app: Flask, session: Session, officer: User
) -> None:
    intruder = app.test_client()
    sign_in(intruder, officer)
    assert intruder.get("/premises").status_code == 200
    owner = app.test_client()
    ask_for_link(owner, officer.email)
    [link] = outbox_links(session, officer)
    # A later second: sessions begun in the same second as the change are kept.
    with time_machine.travel(datetime.now(UTC) + timedelta(seconds=2), tick=False):
        assert set_new_password(owner, link).status_code == 302
        shut_out = intruder.get("/premises")
        assert shut_out.status_code == 302
        assert urlsplit(shut_out.headers["Location"]).path == "/sign-in"
        assert intruder.get("/premises").status_code == 302
        # The owner signs in with the new password and stays signed in.
        sign_in(owner, officer, NEW_PASSWORD)
        assert owner.get("/premises").status_code == 200


# ---- secrecy of the token ------------------------------------------------------------------


def test_reset_token_not_stored_in_clear(
    client: FlaskClient, session: Session, officer: User, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    ask_for_link(client, officer.email)
    [link] = outbox_links(session, officer)
    token = urlsplit(link).path.rsplit("/", 1)[1]
    assert len(token) >= 43  # 32 random bytes, base64url
    assert set_new_password(client, link).status_code == 302

    [record] = session.scalars(select(PasswordResetToken)).all()
    assert record.token_hash == hashlib.sha256(token.encode()).hexdigest()
    stored = " ".join(
        str(value)
        for row in session.execute(select(PasswordResetToken.__table__)).all()
        for value in row
    )
    assert token not in stored
    # The audit trail holds ids only: no token, no email address.
    for event in events(session, "password_reset.requested") + events(
        session, "password_reset.completed"
    ):
        assert token not in event.payload and officer.email not in event.payload
        assert event.payload == f'{{"reset_id":{record.id},"user_id":{officer.id}}}'
    assert verify_chains(session).ok
    # The outbox keys and Message-ID name the row, not the token. (The queued body
    # holds the link until it is sent; the link is single-use and expires.)
    outbox_row = session.scalar(select(OutboxEmail))
    assert outbox_row is not None
    assert token not in outbox_row.dedupe_key and token not in outbox_row.message_id
    # Never logged, by our code or the libraries it calls.
    assert all(token not in record.getMessage() for record in caplog.records)
    # The browser keeps the token's digest while choosing a password, not the token.
    with client.session_transaction() as stored_session:
        assert token not in str(dict(stored_session))


# ---- public pages ----------------------------------------------------------------------------


def test_reset_request_page_is_public_and_asks_only_for_an_email(client: FlaskClient) -> None:
    page = client.get("/password-reset")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Reset your password" in html
    assert 'name="email"' in html and 'name="password"' not in html
    assert "Sign out" not in html


def test_reset_link_page_with_an_unknown_token_is_refused(client: FlaskClient) -> None:
    response = client.get("/password-reset/" + "A" * 43)
    assert response.status_code == 404
    assert "Ask for a new link" in response.get_data(as_text=True)


def test_new_password_page_without_an_opened_link_is_refused(client: FlaskClient) -> None:
    assert client.get("/password-reset/new-password").status_code == 404
    page = client.get("/sign-in")
    response = client.post(
        "/password-reset/new-password",
        data={
            "password": NEW_PASSWORD,
            "confirm": NEW_PASSWORD,
            "csrf_token": csrf_from(page.get_data(as_text=True)),
        },
    )
    assert response.status_code == 404


def test_reset_forms_need_the_csrf_token(
    client: FlaskClient, officer: User, session: Session
) -> None:
    response = client.post("/password-reset", data={"email": officer.email})
    assert response.status_code == 400
    assert session.scalar(select(func.count()).select_from(OutboxEmail)) == 0


# ---- a signed-in user's change of password -----------------------------------------------------


def _change(client: FlaskClient, current: str, new: str) -> TestResponse:
    page = client.get("/account/password")
    assert page.status_code == 200
    return client.post(
        "/account/password",
        data={
            "current_password": current,
            "password": new,
            "confirm": new,
            "csrf_token": csrf_from(page.get_data(as_text=True)),
        },
    )


def test_change_password_needs_the_current_one(
    app: Flask, client: FlaskClient, session: Session, officer: User
) -> None:
    sign_in(client, officer)
    wrong = _change(client, "not-my-password-at-all", NEW_PASSWORD)
    assert wrong.status_code == 422
    assert "Enter your current password correctly" in wrong.get_data(as_text=True)
    weak = _change(client, PASSWORD, "short")
    assert weak.status_code == 422
    assert can_sign_in(app, officer, PASSWORD)


def test_change_password_keeps_this_session_and_ends_the_others(
    app: Flask, client: FlaskClient, session: Session, officer: User
) -> None:
    other = app.test_client()
    sign_in(other, officer)
    sign_in(client, officer)
    with time_machine.travel(datetime.now(UTC) + timedelta(seconds=2), tick=False):
        done = _change(client, PASSWORD, NEW_PASSWORD)
        assert done.status_code == 302
        assert client.get("/premises").status_code == 200
        assert other.get("/premises").status_code == 302
    assert can_sign_in(app, officer, NEW_PASSWORD)
    [changed] = events(session, "password.changed")
    assert changed.payload == f'{{"user_id":{officer.id}}}'
    assert changed.actor_id == officer.id


def test_change_password_page_needs_sign_in(client: FlaskClient) -> None:
    response = client.get("/account/password")
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/sign-in"


def test_reset_audit_events_name_the_account(
    client: FlaskClient, session: Session, officer: User, world: dict[str, Any]
) -> None:
    ask_for_link(client, officer.email)
    [link] = outbox_links(session, officer)
    set_new_password(client, link)
    [requested] = events(session, "password_reset.requested")
    [completed] = events(session, "password_reset.completed")
    assert requested.actor_id is None and completed.actor_id == officer.id
    assert requested.premises_id is None and requested.chain == "system"
    assert completed.occurred_at >= requested.occurred_at


# ---- in a real browser ---------------------------------------------------------------------------


@pytest.mark.e2e
def test_reset_pages_pass_axe_and_the_flow_works_in_chromium(
    app: Flask, session: Session, officer: User
) -> None:
    from playwright.sync_api import expect, sync_playwright

    from tests.e2e_support import browser_page, serve
    from tests.test_e2e_accessibility import _axe_violations

    with (
        serve(app) as base_url,
        sync_playwright() as playwright,
        browser_page(playwright, base_url) as page,
    ):
        page.goto("/sign-in")
        page.get_by_role("link", name="Forgot your password?").click()
        assert _axe_violations(page) == []
        page.get_by_role("button", name="Send me a link").click()
        expect(page.locator(".govuk-error-summary")).to_be_visible()
        assert _axe_violations(page) == []
        page.get_by_label("Email address").fill(officer.email)
        page.get_by_role("button", name="Send me a link").click()
        expect(page.get_by_text(SENT_MESSAGE)).to_be_visible()
        assert _axe_violations(page) == []

        [link] = outbox_links(session, officer)
        page.goto(urlsplit(link).path)
        expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
        assert _axe_violations(page) == []
        page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
        page.get_by_label("Type the new password again").fill("something else entirely")
        page.get_by_role("button", name="Set password").click()
        expect(page.locator(".govuk-error-summary")).to_be_visible()
        assert _axe_violations(page) == []
        page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
        page.get_by_label("Type the new password again").fill(NEW_PASSWORD)
        page.get_by_role("button", name="Set password").click()
        expect(page.get_by_text("Sign in with your new password")).to_be_visible()

        page.goto(urlsplit(link).path)  # used: refused
        expect(page.get_by_role("heading", name="This link does not work")).to_be_visible()
        assert _axe_violations(page) == []

        page.goto("/sign-in")
        page.get_by_label("Email address").fill(officer.email)
        page.get_by_label("Password", exact=True).fill(NEW_PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("button", name="Sign out")).to_be_visible()
        page.goto("/account/password")
        assert _axe_violations(page) == []


def test_reset_token_not_in_the_servers_access_log(
    app: Flask, session: Session, officer: User, caplog: pytest.LogCaptureFixture
) -> None:
    import requests

    from tests.e2e_support import serve

    caplog.set_level(logging.INFO, logger="werkzeug")
    assert reset.request_reset(session, officer.email)
    [link] = outbox_links(session, officer)
    token = urlsplit(link).path.rsplit("/", 1)[1]
    with serve(app) as base_url:
        opened = requests.get(base_url + urlsplit(link).path, allow_redirects=False, timeout=10)
    assert opened.status_code == 302
    request_lines = [r.getMessage() for r in caplog.records if r.name == "werkzeug"]
    assert any("/password-reset/[redacted]" in line for line in request_lines), request_lines
    assert all(token not in line for line in request_lines)
