"""Session cookies and lifetimes: the cookie's flags, a fresh session at sign-in, and
sign-out after 30 idle minutes or 12 hours whatever the activity (pages only: the API
takes bearer tokens)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from licensing import create_app
from licensing.auth.services import create_token
from tests.conftest import PASSWORD, csrf_from, sign_in

IDLE_MESSAGE = "You were signed out after 30 minutes without activity"


def session_cookie(response: TestResponse) -> str:
    """The Set-Cookie header of the session cookie."""
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("session=")]
    assert len(cookies) == 1, response.headers.getlist("Set-Cookie")
    return cookies[0]


def flags(set_cookie: str) -> set[str]:
    return {part.strip().lower() for part in set_cookie.split(";")[1:]}


def test_session_cookie_is_httponly_and_lax_but_not_secure_in_testing(
    client: FlaskClient,
) -> None:
    cookie = flags(session_cookie(client.get("/sign-in")))
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert "secure" not in cookie


def test_session_cookie_is_secure_in_production(
    monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path
) -> None:
    monkeypatch.setenv("SECRET_KEY", "a-real-secret-from-the-vault")
    monkeypatch.setenv("DATABASE_URL", database_url)
    production = create_app({"ENV_NAME": "production", "EVIDENCE_DIR": str(tmp_path)})
    try:
        cookie = flags(session_cookie(production.test_client().get("/sign-in")))
        assert {"httponly", "samesite=lax", "secure"} <= cookie
        assert production.config["REMEMBER_COOKIE_SECURE"] is True
        assert production.config["REMEMBER_COOKIE_HTTPONLY"] is True
        assert production.config["REMEMBER_COOKIE_SAMESITE"] == "Lax"
    finally:
        production.extensions["db_engine"].dispose()


def test_sign_in_starts_a_fresh_session(client: FlaskClient, world: dict[str, Any]) -> None:
    page = client.get("/sign-in")
    old_token = csrf_from(page.get_data(as_text=True))
    with client.session_transaction() as planted:
        planted["fixation"] = "attacker-chosen"
        old_csrf = planted["csrf_token"]
    response = client.post(
        "/sign-in",
        data={"email": world["officer"].email, "password": PASSWORD, "csrf_token": old_token},
    )
    assert response.status_code == 302
    with client.session_transaction() as fresh:
        assert "fixation" not in fresh
        assert fresh.get("csrf_token") != old_csrf
        assert fresh["_user_id"] == str(world["officer"].id)
        assert fresh["signed_in_at"] == fresh["last_seen_at"]
    # CSRF still works with the new session: sign out with the page's new token.
    home = client.get("/")
    assert home.status_code == 200
    new_token = csrf_from(home.get_data(as_text=True))
    assert new_token != old_token
    assert client.post("/sign-out", data={"csrf_token": old_token}).status_code == 400
    signed_out = client.post("/sign-out", data={"csrf_token": new_token})
    assert signed_out.status_code == 302
    assert client.get("/").status_code == 302


def test_idle_timeout_signs_out_with_a_message(client: FlaskClient, world: dict[str, Any]) -> None:
    start = datetime.now(UTC)
    with time_machine.travel(start, tick=False) as clock:
        sign_in(client, world["officer"])
        assert client.get("/premises").status_code == 200
        clock.move_to(start + timedelta(minutes=31))
        response = client.get("/premises?q=crown")
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/sign-in")
        assert response.headers["Location"] == "/sign-in?next=/premises?q%3Dcrown"
        page = client.get(response.headers["Location"])
        assert page.status_code == 200
        assert IDLE_MESSAGE in page.get_data(as_text=True)
        # Signed out for real: the next page asks for sign-in again.
        assert client.get("/premises").status_code == 302
        with client.session_transaction() as stored:
            assert "_user_id" not in stored


def test_activity_keeps_the_session_alive(client: FlaskClient, world: dict[str, Any]) -> None:
    start = datetime.now(UTC)
    with time_machine.travel(start, tick=False) as clock:
        sign_in(client, world["officer"])
        for minutes in range(25, 25 * 8, 25):  # a page every 25 minutes for nearly 3 hours
            clock.move_to(start + timedelta(minutes=minutes))
            assert client.get("/premises").status_code == 200, minutes


def test_a_post_after_the_idle_timeout_is_not_carried_out(
    client: FlaskClient, world: dict[str, Any]
) -> None:
    start = datetime.now(UTC)
    with time_machine.travel(start, tick=False) as clock:
        sign_in(client, world["officer"])
        token = csrf_from(client.get("/").get_data(as_text=True))
        clock.move_to(start + timedelta(minutes=45))
        response = client.post("/sign-out", data={"csrf_token": token})
        assert response.status_code == 302
        assert response.headers["Location"] == "/sign-in"
        assert IDLE_MESSAGE in client.get("/sign-in").get_data(as_text=True)


def test_absolute_timeout_after_twelve_hours_even_with_activity(
    client: FlaskClient, world: dict[str, Any]
) -> None:
    start = datetime.now(UTC)
    with time_machine.travel(start, tick=False) as clock:
        sign_in(client, world["officer"])
        minutes = 0
        while minutes + 20 <= 12 * 60:
            minutes += 20
            clock.move_to(start + timedelta(minutes=minutes))
            assert client.get("/").status_code == 200, minutes
        clock.move_to(start + timedelta(hours=12, minutes=1))
        response = client.get("/")
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/sign-in")
        page = client.get("/sign-in").get_data(as_text=True)
        assert "You were signed out 12 hours after signing in" in page


def test_timeouts_come_from_the_configuration(app: Flask, client: FlaskClient, world: Any) -> None:
    app.config["SESSION_IDLE_MINUTES"] = "5"  # as the environment gives it: a string
    start = datetime.now(UTC)
    with time_machine.travel(start, tick=False) as clock:
        sign_in(client, world["officer"])
        clock.move_to(start + timedelta(minutes=4))
        assert client.get("/").status_code == 200
        clock.move_to(start + timedelta(minutes=10))
        assert client.get("/").status_code == 302
        page = client.get("/sign-in").get_data(as_text=True)
        assert "You were signed out after 5 minutes without activity" in page


def test_the_api_is_not_timed_by_the_session(
    client: FlaskClient, session: Any, world: dict[str, Any]
) -> None:
    token = create_token(session, world["officer"].email)
    start = datetime.now(UTC)
    with time_machine.travel(start, tick=False) as clock:
        sign_in(client, world["officer"])
        clock.move_to(start + timedelta(hours=13))
        response = client.get("/api/v1/premises", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200
        assert not any(c.startswith("session=") for c in response.headers.getlist("Set-Cookie"))


def test_environment_overrides_the_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    from config import load_config

    defaults = load_config("testing")
    assert defaults["SESSION_IDLE_MINUTES"] == 30
    assert defaults["SESSION_ABSOLUTE_HOURS"] == 12
    assert defaults["HSTS_SECONDS"] == 0
    monkeypatch.setenv("SESSION_IDLE_MINUTES", "15")
    monkeypatch.setenv("SESSION_ABSOLUTE_HOURS", "8")
    settings = load_config("testing")
    assert (settings["SESSION_IDLE_MINUTES"], settings["SESSION_ABSOLUTE_HOURS"]) == ("15", "8")
