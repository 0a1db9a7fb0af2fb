"""The suite-wide log scan (tests/log_scan.py) can fail, and is wired to the app.

The scanner is run on log records holding a personal value (through a sub-logger, in an
exception, URL-encoded in a request line) and must report each, naming the kind and the
logger but never the value. A sub-run of pytest (two xdist workers, as CI runs the suite)
that logs a personal value must exit non-zero with that report; the same sub-run without
the leak exits 0. The live session's collectors are checked against real use: a person
stored through the incident service, a password hashed for a new user, a bearer token
presented to the API.
"""

from __future__ import annotations

import logging
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from licensing.auth.services import create_token
from licensing.incidents.models import IncidentPerson
from licensing.incidents.services import record_incident
from tests.conftest import PASSWORD
from tests.e2e_support import serve
from tests.log_scan import LogScan, LogText, PersonalValues, scan

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def sub_logger() -> Iterator[tuple[logging.Logger, LogText]]:
    """A logger of the app's family whose records go to a scanner of their own only (not
    up to the session's, where the planted values would fail this very run)."""
    logger = logging.getLogger("licensing.log_scan_probe.sub")
    handler = LogText()
    logger.addHandler(handler)
    logger.propagate = False
    yield logger, handler
    logger.removeHandler(handler)
    logger.propagate = True


def test_a_personal_value_logged_through_a_sub_logger_is_reported_without_the_value(
    sub_logger: tuple[logging.Logger, LogText],
) -> None:
    logger, handler = sub_logger
    values = PersonalValues()
    values.add("victim's name", "Alice Victimson")
    values.add("witness's phone", "07700 900987")
    logger.info("Incident 12 updated")
    assert scan(values, handler.items()) == []

    logger.warning("Could not notify %s", "Alice Victimson")
    findings = scan(values, handler.items())
    assert [(f.kind, f.source) for f in findings] == [
        ("victim's name", "logger licensing.log_scan_probe.sub")
    ]
    assert "Victimson" not in str(findings[0]) and "15 characters" in str(findings[0])


def test_a_value_in_an_exception_or_a_url_encoded_request_line_is_reported(
    sub_logger: tuple[logging.Logger, LogText],
) -> None:
    logger, handler = sub_logger
    values = PersonalValues()
    values.add("witness's phone", "07700 900987")
    values.add("victim's name", "Alice Victimson")
    try:
        raise ValueError("bad phone 07700 900987")
    except ValueError:
        logger.exception("import failed")  # the value is only in the exception text
    logger.info('127.0.0.1 - - "GET /incidents?q=alice+victimson HTTP/1.1" 200 -')
    kinds = {f.kind for f in scan(values, handler.items())}
    assert kinds == {"witness's phone", "victim's name"}


def test_a_bearer_token_is_reported_by_its_shape_alone(
    sub_logger: tuple[logging.Logger, LogText],
) -> None:
    logger, handler = sub_logger
    logger.error("rejected Authorization: Bearer lic_AAAAbbbbCCCCddddEEEEffffGGGG1234")
    (finding,) = scan(PersonalValues(), handler.items())
    assert finding.kind == "bearer token (by its shape)"
    assert "GGGG1234" not in str(finding)


def test_short_and_repetitive_values_are_not_scanned_for() -> None:
    values = PersonalValues()
    for value in ("Ann", "  Bo  ", "000000", "", None):
        values.add("victim's name", value)
    assert len(values) == 0
    values.add("victim's name", "  Ann Lee ")
    assert len(values) == 1


def test_words_of_the_apps_own_code_are_not_scanned_for() -> None:
    """Hypothesis draws strings from the project's source: a fuzzed email "counted" is
    in every SQL log (incident_counted_at) and cannot be told from it."""
    values = PersonalValues()
    for value in ("counted", "COMMENT", "incident_counted_at"):
        values.add("victim's email", value)
    assert len(values) == 0
    values.add("victim's email", "jo.bloggs@example.net")
    assert len(values) == 1


def _plugin(config: pytest.Config) -> LogScan:
    plugin = config.pluginmanager.get_plugin("personal-data-log-scan")
    assert isinstance(plugin, LogScan), "tests/conftest.py must register the log scan"
    return plugin


def test_the_session_collects_what_the_tests_hand_the_app(
    request: pytest.FixtureRequest, app: Flask, session: Session, world: dict[str, Any]
) -> None:
    plugin = _plugin(request.config)
    record_incident(
        session,
        world["officer"],
        {
            "source": "rms",
            "source_ref": "SCAN-1",
            "occurred_at": "2026-01-02T22:00:00Z",
            "category": "Public order",
            "personal_data": {
                "people": [
                    {"role": "witness", "name": "Wilma Scanwell", "email": "wilma@example.org"}
                ]
            },
        },
    )
    assert plugin.values.kinds["wilma scanwell"] == "witness's name"
    assert plugin.values.kinds["wilma@example.org"] == "witness's email"
    assert plugin.values.kinds[PASSWORD.casefold()] == "password"  # world's users

    token = create_token(session, world["officer"].email)
    response = app.test_client().get(
        "/api/v1/premises", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200
    assert plugin.values.kinds[token.casefold()] == "bearer token"


def test_a_database_error_never_carries_the_values_it_was_given(session: Session) -> None:
    """The leak this scan found: statement parameters (victims' names, phones) were in
    SQL logging and in every database error's message, which an error handler logs.
    The app's engines now hide them (licensing/db.py)."""
    session.add(IncidentPerson(incident_id=999_999, role="victim", name="Dora Faultless"))
    with pytest.raises(IntegrityError) as raised:
        session.flush()  # no such incident
    session.rollback()
    assert "Dora Faultless" not in str(raised.value)
    assert "SQL parameters hidden" in str(raised.value)


def test_the_session_keeps_the_app_and_werkzeug_loggers_output(
    request: pytest.FixtureRequest,
) -> None:
    plugin = _plugin(request.config)
    before = plugin.handler.records
    logging.getLogger("licensing.log_scan_probe").debug("debug from the app's family")
    logging.getLogger("werkzeug").info("a request line")
    logging.getLogger("sqlalchemy.engine.Engine").info("SELECT 1")
    assert plugin.handler.records >= before + 3
    kept = set(plugin.handler.items())
    assert ("logger licensing.log_scan_probe", "DEBUG debug from the app's family") in kept
    assert ("logger werkzeug", "INFO a request line") in kept
    assert ("logger sqlalchemy.engine.Engine", "SELECT 1") in kept


def test_a_live_servers_request_lines_are_kept(request: pytest.FixtureRequest, app: Flask) -> None:
    """What the browser tests' live servers write (werkzeug's request lines) is scanned."""
    plugin = _plugin(request.config)
    with serve(app) as base_url:
        url = f"{base_url}/healthz?probe=log-scan"
        with urllib.request.urlopen(url) as response:  # noqa: S310 - our own test server
            status = response.status
    assert status == 200
    lines = [text for source, text in plugin.handler.items() if source == "logger werkzeug"]
    assert any("GET /healthz?probe=log-scan" in line for line in lines), lines[-3:]


SUB_CONFTEST = """
from tests.log_scan import register


def pytest_configure(config):
    register(config)
"""

SUB_TEST = """
import logging

import pytest


@pytest.mark.parametrize("n", range(4))
def test_logs(request, n):
    plugin = request.config.pluginmanager.get_plugin("personal-data-log-scan")
    plugin.values.add("victim's name", "Alice Subrun")
    logging.getLogger("licensing.notifications.sub").warning("sent to %s", {said!r})
"""


def _sub_run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, said: str
) -> pytest.RunResult:
    pytester.makeconftest(SUB_CONFTEST)
    pytester.makepyfile(test_sub=SUB_TEST.format(said=said))
    # A fresh session of its own, as `make test` runs one (not a worker of this run).
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    return pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider")


def test_a_sub_run_that_logs_a_personal_value_fails_with_a_report(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _sub_run(pytester, monkeypatch, "Alice Subrun")
    output = result.stdout.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED, output
    assert "4 passed" in output
    assert "personal data in the logs" in output
    assert "- victim's name (al… 12 characters) in logger licensing.notifications.sub" in output
    assert "Alice Subrun" not in output and "alice subrun" not in output


def test_the_same_sub_run_without_the_leak_passes(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _sub_run(pytester, monkeypatch, "the victim")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert "personal data in the logs" not in result.stdout.str()
