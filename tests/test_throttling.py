"""Sign-in throttling (Flask-Limiter), named after the attacks it slows: guessing one
account's password, spraying one password over many accounts from one address, and a
web farm whose nodes must share one count (Redis). Each test sets its own small limits;
the testing profile's are out of every other test's reach."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
import time_machine
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from config import load_config
from licensing import create_app
from licensing.audit.models import AuditEvent
from licensing.auth.models import User
from licensing.db import get_session
from tests.conftest import PASSWORD, IsolatedClient, csrf_from, sign_in

REDIS_URL = "redis://127.0.0.1:6379/0"
WRONG = "not-the-password-at-all"
FAILED_MESSAGE = "Enter a correct email address and password"


@pytest.fixture
def make_app(database_url: str, tmp_path: Path) -> Iterator[Callable[..., Flask]]:
    """Another app (a web node) on this test's database, with settings of its own."""
    made: list[Flask] = []

    def make(**settings: Any) -> Flask:
        application = create_app(
            {
                "ENV_NAME": "testing",
                "DATABASE_URL": database_url,
                "EVIDENCE_DIR": str(tmp_path / "evidence"),
                **settings,
            }
        )
        application.test_client_class = IsolatedClient
        made.append(application)
        return application

    yield make
    for application in made:
        application.extensions["db_engine"].dispose()


@pytest.fixture
def people(make_user: Callable[..., User]) -> dict[str, User]:
    """Three officers, in the test's database."""
    return {name: make_user("officer", email=f"{name}@police.example") for name in "abc"}


class Browser:
    """One browser: a client with its CSRF token, posting sign-ins from one address."""

    def __init__(self, application: Flask, address: str = "198.51.100.7") -> None:
        self.client: FlaskClient = application.test_client()
        self.address = address
        self.token = csrf_from(self.get("/sign-in").get_data(as_text=True))

    def get(self, path: str) -> TestResponse:
        """GET from this browser's address."""
        return self.client.get(path, environ_base={"REMOTE_ADDR": self.address})

    def sign_in(self, email: str, password: str, address: str | None = None) -> TestResponse:
        """POST the sign-in form (from another address if given)."""
        return self.client.post(
            "/sign-in",
            data={"email": email, "password": password, "csrf_token": self.token},
            environ_base={"REMOTE_ADDR": address or self.address},
        )

    def sign_out(self) -> None:
        """Sign out again, with the signed-in page's CSRF token."""
        token = csrf_from(self.get("/").get_data(as_text=True))
        response = self.client.post(
            "/sign-out", data={"csrf_token": token}, environ_base={"REMOTE_ADDR": self.address}
        )
        assert response.status_code == 302
        self.token = csrf_from(self.get("/sign-in").get_data(as_text=True))


def assert_throttled(response: TestResponse, max_seconds: int = 60) -> None:
    """A 429 page that says when to try again, with a Retry-After header."""
    assert response.status_code == 429, response.get_data(as_text=True)[:300]
    retry_after = int(response.headers["Retry-After"])
    assert 0 < retry_after <= max_seconds
    page = response.get_data(as_text=True)
    assert "<title>Too many attempts to sign in" in page
    assert "You can try again in 1 minute, at " in page
    assert "govuk-template" in page  # the one GOV.UK layout
    assert "Content-Security-Policy" in response.headers


def count_events(application: Flask, event: str) -> int:
    with application.app_context():
        return get_session().scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.event == event)
        )


# ---- guessing one account's password ------------------------------------------------------


def test_password_guessing_one_account_is_throttled(
    make_app: Callable[..., Flask], people: dict[str, User]
) -> None:
    node = make_app(SIGN_IN_LIMIT_PER_ACCOUNT="3 per minute")
    attacker = Browser(node)
    for _ in range(3):
        response = attacker.sign_in("a@police.example", WRONG)
        assert response.status_code == 200 and FAILED_MESSAGE in response.get_data(as_text=True)

    assert_throttled(attacker.sign_in("a@police.example", WRONG))
    # The right password is not even tried now: the guesser cannot tell it was right.
    assert_throttled(attacker.sign_in("A@Police.Example ", PASSWORD))
    # Another account is not affected, from the same address.
    assert attacker.sign_in("b@police.example", PASSWORD).status_code == 302


def test_guessing_one_account_from_many_addresses_is_throttled_too(
    make_app: Callable[..., Flask], people: dict[str, User]
) -> None:
    node = make_app(SIGN_IN_LIMIT_PER_ACCOUNT="3 per minute")
    botnet = Browser(node)
    for n in range(3):
        assert botnet.sign_in("a@police.example", WRONG, f"203.0.113.{n}").status_code == 200

    assert_throttled(botnet.sign_in("a@police.example", WRONG, "203.0.113.99"))


def test_a_throttled_attempt_is_not_checked_so_it_neither_counts_nor_is_audited(
    make_app: Callable[..., Flask], people: dict[str, User]
) -> None:
    node = make_app(SIGN_IN_LIMIT_PER_ACCOUNT="2 per minute")
    attacker = Browser(node)
    for _ in range(2):
        attacker.sign_in("a@police.example", WRONG)
    failures_before = count_events(node, "sign_in_failed")

    for _ in range(3):
        assert attacker.sign_in("a@police.example", WRONG).status_code == 429

    assert count_events(node, "sign_in_failed") == failures_before == 2
    with node.app_context():
        assert get_session().get(User, people["a"].id).failed_sign_ins == 2


def test_the_sign_in_page_itself_is_never_throttled(
    make_app: Callable[..., Flask], people: dict[str, User]
) -> None:
    node = make_app(SIGN_IN_LIMIT_PER_ACCOUNT="1 per minute", SIGN_IN_LIMIT_PER_ADDRESS="1/minute")
    browser = Browser(node)
    browser.sign_in("a@police.example", WRONG)
    assert browser.sign_in("a@police.example", WRONG).status_code == 429
    for _ in range(5):
        assert browser.get("/sign-in").status_code == 200


def test_the_limit_lifts_when_the_minute_has_passed(
    make_app: Callable[..., Flask], people: dict[str, User]
) -> None:
    node = make_app(SIGN_IN_LIMIT_PER_ACCOUNT="2 per minute")
    start = datetime.now(UTC)
    with time_machine.travel(start, tick=False) as clock:
        browser = Browser(node)
        browser.sign_in("a@police.example", WRONG)
        clock.move_to(start + timedelta(seconds=30))
        browser.sign_in("a@police.example", WRONG)
        throttled = browser.sign_in("a@police.example", PASSWORD)
        assert_throttled(throttled)
        # The oldest attempt leaves the moving window 60 s after it was made.
        assert int(throttled.headers["Retry-After"]) <= 31

        clock.move_to(start + timedelta(seconds=61))
        assert browser.sign_in("a@police.example", PASSWORD).status_code == 302


# ---- spraying one password over many accounts from one address ----------------------------


def test_password_spraying_from_one_ip_is_throttled(
    make_app: Callable[..., Flask], people: dict[str, User], make_user: Callable[..., User]
) -> None:
    node = make_app(SIGN_IN_LIMIT_PER_ADDRESS="3 per minute")
    sprayer = Browser(node, address="192.0.2.66")
    for name in "abc":
        assert sprayer.sign_in(f"{name}@police.example", "Summer2026!!!").status_code == 200

    victim = make_user("officer", email="d@police.example")
    assert_throttled(sprayer.sign_in(victim.email, "Summer2026!!!"))
    # Not a per-account limit: d was never tried, and from elsewhere d signs in.
    assert Browser(node, address="192.0.2.1").sign_in(victim.email, PASSWORD).status_code == 302


def test_successful_sign_ins_from_one_station_do_not_use_up_its_address(
    make_app: Callable[..., Flask], people: dict[str, User]
) -> None:
    node = make_app(SIGN_IN_LIMIT_PER_ADDRESS="2 per minute")
    station = Browser(node, address="192.0.2.10")  # one NAT address for a whole station
    for _ in range(3):
        for name in "abc":
            assert station.sign_in(f"{name}@police.example", PASSWORD).status_code == 302
            station.sign_out()
    # Failures do count: the control.
    station.sign_in("a@police.example", WRONG)
    station.sign_in("a@police.example", WRONG)
    assert station.sign_in("a@police.example", PASSWORD).status_code == 429


# ---- several web nodes -----------------------------------------------------------------------


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix of this test's own on the shared Redis, removed afterwards."""
    server = redis.Redis.from_url(REDIS_URL)
    try:
        server.ping()
    except redis.ConnectionError:
        pytest.fail(f"Redis is not running at {REDIS_URL}: CI and this machine run one")
    prefix = f"licensing-test-{uuid.uuid4().hex}"
    yield prefix
    for key in server.scan_iter(f"*{prefix}*"):
        server.delete(key)
    server.close()


def test_redis_store_shares_limits_between_nodes(
    make_app: Callable[..., Flask], people: dict[str, User], redis_prefix: str
) -> None:
    settings = {
        "RATELIMIT_STORAGE_URI": REDIS_URL,
        "RATELIMIT_KEY_PREFIX": redis_prefix,
        "SIGN_IN_LIMIT_PER_ACCOUNT": "3 per minute",
    }
    node_1, node_2 = make_app(**settings), make_app(**settings)
    on_1, on_2 = Browser(node_1), Browser(node_2)

    assert on_1.sign_in("a@police.example", WRONG).status_code == 200
    assert on_2.sign_in("a@police.example", WRONG).status_code == 200
    assert on_1.sign_in("a@police.example", WRONG).status_code == 200
    # Node 2 has seen one attempt itself; the shared count is three.
    assert_throttled(on_2.sign_in("a@police.example", WRONG))
    assert_throttled(on_1.sign_in("a@police.example", WRONG))
    assert list(redis.Redis.from_url(REDIS_URL).scan_iter(f"*{redis_prefix}*"))


def test_memory_store_counts_per_node(
    make_app: Callable[..., Flask], people: dict[str, User]
) -> None:
    # The control for the Redis test: without a shared store each node counts alone.
    node_1 = make_app(SIGN_IN_LIMIT_PER_ACCOUNT="3 per minute")
    node_2 = make_app(SIGN_IN_LIMIT_PER_ACCOUNT="3 per minute")
    on_1, on_2 = Browser(node_1), Browser(node_2)
    for _ in range(3):
        on_1.sign_in("a@police.example", WRONG)
    assert on_1.sign_in("a@police.example", WRONG).status_code == 429
    assert on_2.sign_in("a@police.example", WRONG).status_code == 200


def test_unreachable_redis_falls_back_to_counting_on_each_node(
    make_app: Callable[..., Flask], people: dict[str, User]
) -> None:
    # Nothing listens on port 1: the store is down from the start. Sign-in still works,
    # and guessing is still throttled, counted in the node's own memory.
    node = make_app(
        RATELIMIT_STORAGE_URI="redis://127.0.0.1:1/0", SIGN_IN_LIMIT_PER_ACCOUNT="3 per minute"
    )
    browser = Browser(node)
    assert browser.sign_in("a@police.example", WRONG).status_code == 200
    assert browser.sign_in("a@police.example", WRONG).status_code == 200
    assert browser.sign_in("a@police.example", WRONG).status_code == 200
    assert browser.sign_in("a@police.example", WRONG).status_code == 429
    assert browser.sign_in("b@police.example", PASSWORD).status_code == 302


# ---- configuration ---------------------------------------------------------------------------


def test_testing_profile_never_throttles_the_suites_own_sign_ins(
    client: FlaskClient, people: dict[str, User]
) -> None:
    for _ in range(25):
        sign_in(client, people["a"])
        token = csrf_from(client.get("/").get_data(as_text=True))
        assert client.post("/sign-out", data={"csrf_token": token}).status_code == 302
    # The defaults everywhere else would have refused the sixth within a minute.
    defaults = load_config("development")
    assert defaults["SIGN_IN_LIMIT_PER_ACCOUNT"] == "5 per minute; 20 per hour"
    assert defaults["SIGN_IN_LIMIT_PER_ADDRESS"] == "30 per minute; 300 per hour"
    assert defaults["RATELIMIT_STORAGE_URI"] == "memory://"


def test_limits_and_store_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RATELIMIT_STORAGE_URI", REDIS_URL)
    monkeypatch.setenv("SIGN_IN_LIMIT_PER_ACCOUNT", "4 per minute")
    monkeypatch.setenv("SIGN_IN_LIMIT_PER_ADDRESS", "40 per minute")
    monkeypatch.setenv("ACCOUNT_LOCKOUT_FAILURES", "6")
    settings = load_config("development")
    assert settings["RATELIMIT_STORAGE_URI"] == REDIS_URL
    assert settings["SIGN_IN_LIMIT_PER_ACCOUNT"] == "4 per minute"
    assert settings["SIGN_IN_LIMIT_PER_ADDRESS"] == "40 per minute"
    assert settings["ACCOUNT_LOCKOUT_FAILURES"] == "6"
