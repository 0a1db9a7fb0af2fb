"""Running on several machines (issue #8): readiness, the request id, JSON logs and
`/metrics`. The multi-node test itself is tests/test_multinode.py."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.orm import Session

from config import load_config
from licensing import create_app
from licensing.health import schema_heads
from licensing.notifications import outbox
from licensing.notifications.scheduler import tick
from licensing.observability import (
    ACCESS_LOGGER,
    JsonFormatter,
    RequestContextFilter,
    bearer_token_matches,
    install_json_logging,
    request_id_from,
)
from tests.conftest import sign_in

METRICS_TOKEN = "metrics-token-for-tests-0123456789"  # noqa: S105 - a test value


@pytest.fixture
def json_log(app: Flask) -> Iterator[io.StringIO]:
    """What the app's loggers write while the test runs, as the JSON handler writes it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestContextFilter())
    logger = logging.getLogger("licensing")
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


def lines_of(stream: io.StringIO) -> list[dict[str, Any]]:
    """Each line of the log as the JSON object it must be."""
    return [json.loads(line) for line in stream.getvalue().splitlines() if line]


def access_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    """The access lines only."""
    return [line for line in lines_of(stream) if line["logger"] == ACCESS_LOGGER]


# ---- readiness ------------------------------------------------------------------------


def test_readyz_is_ready_when_database_schema_and_evidence_store_are(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {
        "status": "ready",
        "checks": {"database": "ok", "schema": "ok", "evidence_store": "ok"},
    }


def test_readyz_fails_when_the_schema_is_behind_the_code(app: Flask, session: Session) -> None:
    [head] = schema_heads()
    session.execute(text("UPDATE alembic_version SET version_num = '0009'"))
    session.commit()
    try:
        response = app.test_client().get("/readyz")
        assert response.status_code == 503
        assert response.get_json()["checks"] == {
            "database": "ok",
            "schema": "failed",
            "evidence_store": "ok",
        }
        assert app.test_client().get("/healthz").status_code == 200  # alive, not ready
    finally:  # the database is shared by the run's other tests on PostgreSQL
        session.execute(text("UPDATE alembic_version SET version_num = :head"), {"head": head})
        session.commit()
    assert app.test_client().get("/readyz").status_code == 200


def test_readyz_fails_when_the_evidence_directory_is_not_writable(
    app: Flask, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the mount should be")
    app.config["EVIDENCE_DIR"] = str(blocker / "evidence")
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["checks"] == {"database": "ok", "schema": "ok", "evidence_store": "failed"}
    assert str(tmp_path) not in response.get_data(as_text=True)  # no paths in the body


def test_readyz_fails_when_the_database_does_not_answer(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-directory" / "licensing.db"
    app = create_app(
        {
            "ENV_NAME": "testing",
            "DATABASE_URL": f"sqlite:///{missing}",
            "EVIDENCE_DIR": str(tmp_path / "evidence"),
        }
    )
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {
        "status": "unavailable",
        "checks": {"database": "failed", "schema": "failed", "evidence_store": "ok"},
    }
    assert "no-such-directory" not in response.get_data(as_text=True)
    app.extensions["db_engine"].dispose()


# ---- the request id ---------------------------------------------------------------------


def test_every_response_carries_a_fresh_request_id(client: FlaskClient) -> None:
    first = client.get("/sign-in").headers["X-Request-ID"]
    second = client.get("/healthz").headers["X-Request-ID"]
    assert len(first) == 32 and int(first, 16) >= 0
    assert first != second
    # Refused and unknown requests get one too.
    assert client.get("/premises").headers["X-Request-ID"]
    assert client.get("/no-such-page").headers["X-Request-ID"]


def test_a_well_formed_incoming_request_id_is_kept(client: FlaskClient) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": "proxy-7f3a.1:42"})
    assert response.headers["X-Request-ID"] == "proxy-7f3a.1:42"


@pytest.mark.parametrize(
    "incoming",
    ["short", "x" * 129, "abc def ghij", 'abcdefgh"}{', "abcdefgh\nfake log line"],
)
def test_a_malformed_incoming_request_id_is_replaced(incoming: str) -> None:
    replaced = request_id_from(incoming)
    assert replaced != incoming
    assert len(replaced) == 32


# ---- JSON logs ----------------------------------------------------------------------------


def test_the_access_line_is_json_with_the_request_fields_and_no_query_string(
    client: FlaskClient, world: dict[str, Any], json_log: io.StringIO
) -> None:
    sign_in(client, world["officer"])
    json_log.truncate(0)
    json_log.seek(0)
    response = client.get(
        "/premises?q=Jane+Victim-Smith&state=warned", headers={"X-Request-ID": "trace-123456"}
    )
    assert response.status_code == 200
    [line] = access_lines(json_log)
    assert line["request_id"] == "trace-123456"
    assert (line["method"], line["path"], line["status"]) == ("GET", "/premises", 200)
    assert line["endpoint"] == "premises.list_premises"
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["level"] == "INFO"
    assert line["time"].endswith("+00:00")  # UTC, ISO 8601
    assert "Victim" not in json_log.getvalue() and "state=" not in json_log.getvalue()


def test_every_record_written_during_a_request_carries_its_id(
    app: Flask, json_log: io.StringIO
) -> None:
    with app.test_request_context("/premises/7?q=private", headers={"X-Request-ID": "req-abcdef"}):
        app.preprocess_request()
        logging.getLogger("licensing.premises").warning("something about premises 7")
    [line] = lines_of(json_log)
    assert line["request_id"] == "req-abcdef"
    assert (line["method"], line["path"]) == ("GET", "/premises/7")
    assert line["message"] == "something about premises 7"


def test_a_token_in_the_path_is_blanked_in_the_access_line(
    client: FlaskClient, json_log: io.StringIO
) -> None:
    token = "Zx9" * 12
    client.get(f"/password-reset/{token}")
    client.get(f"/calendar/{token}.ics")
    paths = [line["path"] for line in access_lines(json_log)]
    assert paths == ["/password-reset/[redacted]", "/calendar/[redacted].ics"]
    assert token not in json_log.getvalue()


def test_an_exception_is_logged_as_one_json_line() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("licensing.tests.observability")
    logger.addHandler(handler)
    try:
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logger.exception("the job failed")
    finally:
        logger.removeHandler(handler)
    [line] = lines_of(stream)
    assert line["message"] == "the job failed"
    assert "RuntimeError: boom" in line["exception"]
    assert "request_id" not in line  # outside a request


def test_log_format_is_json_in_production_and_text_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SECRET_KEY", "a-real-secret-for-this-test")
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://db.example/licensing")
    monkeypatch.delenv("LOG_FORMAT", raising=False)
    assert load_config("production")["LOG_FORMAT"] == "json"
    assert load_config("development")["LOG_FORMAT"] == "text"
    assert load_config("testing")["LOG_FORMAT"] == "text"
    monkeypatch.setenv("LOG_FORMAT", "json")
    assert load_config("development")["LOG_FORMAT"] == "json"


def test_json_logging_is_installed_once_on_the_root_logger(tmp_path: Path) -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    level = root.level
    try:
        settings = {"ENV_NAME": "testing", "DATABASE_URL": "sqlite://", "LOG_FORMAT": "json"}
        create_app(settings)
        create_app(settings)
        added = [h for h in root.handlers if h not in before]
        assert len(added) == 1 and isinstance(added[0].formatter, JsonFormatter)
        assert install_json_logging() is added[0]
    finally:
        for handler in root.handlers[:]:
            if handler not in before:
                root.removeHandler(handler)
        root.setLevel(level)


def test_an_unknown_log_format_is_refused() -> None:
    with pytest.raises(ValueError, match="LOG_FORMAT"):
        create_app({"ENV_NAME": "testing", "DATABASE_URL": "sqlite://", "LOG_FORMAT": "xml"})


# ---- metrics ------------------------------------------------------------------------------


def scrape(client: FlaskClient) -> dict[str, Any]:
    """The metrics as parsed by Prometheus' own parser: {(name, labels): value}."""
    response = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    samples: dict[Any, float] = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    """One sample's value (0 when absent)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_answer_404_when_no_token_is_configured(client: FlaskClient) -> None:
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers={"Authorization": "Bearer x"}).status_code == 404


def test_metrics_refuse_a_missing_or_wrong_token(app: Flask, client: FlaskClient) -> None:
    app.config["METRICS_TOKEN"] = METRICS_TOKEN
    assert client.get("/metrics").status_code == 401
    for header in (f"Bearer {METRICS_TOKEN}x", f"Basic {METRICS_TOKEN}", "Bearer ", METRICS_TOKEN):
        response = client.get("/metrics", headers={"Authorization": header})
        assert response.status_code == 401, header
        assert b"licensing_" not in response.data


def test_bearer_token_comparison() -> None:
    assert bearer_token_matches("Bearer abc", "abc")
    assert bearer_token_matches("bearer abc", "abc")
    assert not bearer_token_matches("Bearer abd", "abc")
    assert not bearer_token_matches(None, "abc")
    assert not bearer_token_matches("abc", "abc")


def test_requests_are_counted_by_endpoint_not_by_path(
    app: Flask, client: FlaskClient, world: dict[str, Any]
) -> None:
    app.config["METRICS_TOKEN"] = METRICS_TOKEN
    sign_in(client, world["officer"])
    before = scrape(client)
    for premises in (world["premises"], world["other_premises"]):
        assert client.get(f"/premises/{premises.id}").status_code == 200
    client.get("/no-such-page-1")
    client.get("/no-such-page-2")
    after = scrape(client)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    shown = {"endpoint": "premises.show", "method": "GET", "status": "200"}
    assert grew("licensing_http_requests_total", **shown) == 2
    assert (
        grew("licensing_http_requests_total", endpoint="unmatched", method="GET", status="404") == 2
    )
    assert grew("licensing_http_request_duration_seconds_count", endpoint="premises.show") == 2
    paths = {dict(labels).get("endpoint", "") for _, labels in after}
    assert not any(p.startswith("/") for p in paths)  # no raw path ever becomes a label


def test_outbox_depth_and_scheduler_age_come_from_the_database(
    app: Flask, client: FlaskClient, session: Session
) -> None:
    app.config["METRICS_TOKEN"] = METRICS_TOKEN
    samples = scrape(client)
    assert value(samples, "licensing_outbox_emails", status="created") == 0
    assert not any(name == "licensing_scheduler_seconds_since_success" for name, _ in samples)

    for n in range(3):
        outbox.enqueue(
            session,
            recipient=f"officer{n}@example.test",
            subject="Test",
            text="Body",
            html="<p>Body</p>",
            dedupe_key=f"metrics:{n}",
        )
    session.commit()
    samples = scrape(client)
    assert value(samples, "licensing_outbox_emails", status="created") == 3
    assert value(samples, "licensing_outbox_emails", status="sent") == 0

    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=1)  # nothing listens: all retry
    tick(app)  # a real pass of the scheduler: it records its success
    samples = scrape(client)
    age = value(samples, "licensing_scheduler_seconds_since_success", job="sweep")
    assert ("licensing_scheduler_seconds_since_success", (("job", "sweep"),)) in samples
    assert 0 <= age < 60
    assert value(samples, "licensing_scheduler_seconds_since_success", job="recommendations") < 60
    assert value(samples, "licensing_outbox_emails", status="created") == 3  # to retry
    assert value(samples, "licensing_bundles") == 0
