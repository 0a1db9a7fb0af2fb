"""The iCalendar feed: the writer's escaping and folding, the feed's content, and its
secrecy (a wrong, revoked or orphaned token is a 404, the same as no page at all)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import time_machine
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from licensing.timeutil import LONDON
from licensing.visits import ics, services
from tests.conftest import move

NOW = datetime(2026, 1, 12, 10, 0, tzinfo=UTC)
TODAY = date(2026, 1, 12)


@pytest.fixture
def pinned() -> Iterator[time_machine.Coordinates]:
    """The clock stopped at NOW for the whole test (set-up included)."""
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def unfold(body: str) -> list[str]:
    """Content lines with folding undone (RFC 5545 3.1)."""
    return body.replace("\r\n ", "").split("\r\n")


def events_of(body: str) -> list[dict[str, str]]:
    """Each VEVENT as {property (with parameters): value}."""
    found: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    for line in unfold(body):
        if line == "BEGIN:VEVENT":
            current = {}
        elif line == "END:VEVENT" and current is not None:
            found.append(current)
            current = None
        elif current is not None:
            name, _, value = line.partition(":")
            current[name] = value
    return found


# ---- the writer -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("The Crown, Bold St; rear", "The Crown\\, Bold St\\; rear"),
        ("back\\slash", "back\\\\slash"),
        ("two\r\nlines\nand\rthree", "two\\nlines\\nand\\nthree"),
        ("bell\x07 and nul\x00", "bell and nul"),
        ("plain", "plain"),
    ],
)
def test_escape_text(raw: str, escaped: str) -> None:
    assert ics.escape_text(raw) == escaped


@pytest.mark.parametrize("text", ["a" * 200, "é" * 100, "x" + "€" * 60, "SUMMARY:" + "🍺" * 40])
def test_fold_keeps_lines_within_75_octets_without_splitting_characters(text: str) -> None:
    folded = ics.fold(text)
    physical = folded.split("\r\n")
    assert len(physical) > 1
    assert all(len(line.encode("utf-8")) <= 75 for line in physical)
    assert all(line.startswith(" ") for line in physical[1:])
    assert folded.replace("\r\n ", "") == text


def test_short_lines_are_not_folded() -> None:
    assert ics.fold("X" * 75) == "X" * 75
    assert ics.fold("X" * 76) == "X" * 75 + "\r\n X"


def test_utc_stamps_refuse_naive_times() -> None:
    moment = datetime(2026, 7, 1, 21, 30, tzinfo=LONDON)  # BST
    assert ics.utc_stamp(moment) == "20260701T203000Z"
    with pytest.raises(ValueError):
        ics.utc_stamp(datetime(2026, 7, 1, 21, 30))  # noqa: DTZ001 - the point of the test


# ---- the feed ----------------------------------------------------------------------------------


@pytest.fixture
def feed_world(pinned: Any, session: Session, world: dict[str, Any]) -> dict[str, Any]:
    """The officer (case officer of both premises) with a booked visit, a proposed one, a
    completed one with findings, the supervisor's own visit, and a summary review's
    deadlines; the officer's feed token."""
    officer, supervisor = world["officer"], world["supervisor"]
    crown, swan = world["premises"], world["other_premises"]
    crown.name = 'The Crown, Bar; "Grill"'
    crown.address = "1 Bold Street, Liverpool"
    session.commit()
    done = services.schedule_visit(
        session,
        officer,
        crown,
        scheduled_at=NOW - timedelta(hours=2),
        visit_type="routine",
        officer_id=officer.id,
    )
    services.record_outcome(
        session,
        officer,
        done,
        done.version,
        services.Outcome(
            "issues_found", NOW - timedelta(hours=1), {"crime_and_disorder": "SECRET-FINDING"}
        ),
    )
    booked = services.schedule_visit(
        session,
        officer,
        swan,
        scheduled_at=datetime(2026, 1, 20, 22, 30, tzinfo=UTC),
        visit_type="test_purchase",
        officer_id=officer.id,
    )
    theirs = services.schedule_visit(
        session,
        supervisor,
        swan,
        scheduled_at=datetime(2026, 1, 21, 22, 30, tzinfo=UTC),
        visit_type="routine",
        officer_id=supervisor.id,
    )
    move(
        session,
        crown,
        supervisor,
        "apply_for_summary_review",
        received_at=NOW.isoformat(),
        certificate_reference="CERT-1",
    )
    return {
        "done": done,
        "booked": booked,
        "theirs": theirs,
        "proposed": services.premises_visits_context(session, officer, crown)["proposed"],
        "token": services.create_feed(session, officer),
        **world,
    }


def test_feed_holds_the_users_visits_and_case_deadlines(
    client: FlaskClient, feed_world: dict[str, Any]
) -> None:
    response = client.get(f"/calendar/{feed_world['token']}.ics")
    assert response.status_code == 200
    assert response.mimetype == "text/calendar"
    assert response.headers["Cache-Control"] == "private, no-store"
    body = response.get_data(as_text=True)
    assert body.startswith("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n")
    assert body.endswith("END:VCALENDAR\r\n")
    assert "\n" not in body.replace("\r\n", "")  # every line ends CRLF
    assert all(len(line.encode()) <= 75 for line in body.split("\r\n"))

    by_uid = {e["UID"]: e for e in events_of(body)}
    host = "127.0.0.1"
    booked = by_uid[f"visit-{feed_world['booked'].id}@{host}"]
    assert booked["DTSTART"] == "20260120T223000Z" and booked["DTEND"] == "20260120T233000Z"
    assert booked["SUMMARY"] == f"Test purchase: {feed_world['other_premises'].name}"
    assert booked["URL"] == f"http://127.0.0.1:5000/visits/{feed_world['booked'].id}"

    proposed = by_uid[f"visit-{feed_world['proposed'].id}@{host}"]
    due = feed_world["proposed"].visit_date
    assert proposed["DTSTART;VALUE=DATE"] == f"{due:%Y%m%d}"
    assert proposed["STATUS"] == "TENTATIVE"

    done = by_uid[f"visit-{feed_world['done'].id}@{host}"]
    assert done["SUMMARY"] == 'Routine visit done: The Crown\\, Bar\\; "Grill"'
    assert done["LOCATION"] == "1 Bold Street\\, Liverpool"
    assert "Outcome: Issues found" in done["DESCRIPTION"]
    assert "SECRET-FINDING" not in body  # findings never leave the system

    assert f"visit-{feed_world['theirs'].id}@{host}" not in by_uid  # someone else's visit
    deadlines = {uid: e for uid, e in by_uid.items() if uid.startswith("deadline-")}
    summaries = sorted(e["SUMMARY"].split(":")[0] for e in deadlines.values())
    assert summaries == ["Interim steps to be considered by", "Summary review determination due by"]
    interim = next(e for e in deadlines.values() if e["SUMMARY"].startswith("Interim"))
    assert interim["DTSTART"].endswith("Z")
    determination = next(e for e in deadlines.values() if e["SUMMARY"].startswith("Summary"))
    assert determination["DTSTART;VALUE=DATE"] == "20260209"  # 28 days after receipt


def test_feed_is_stable_between_fetches(client: FlaskClient, feed_world: dict[str, Any]) -> None:
    url = f"/calendar/{feed_world['token']}.ics"
    first = client.get(url).get_data()
    assert client.get(url).get_data() == first


def test_only_the_case_officer_gets_the_deadlines(
    client: FlaskClient, session: Session, feed_world: dict[str, Any]
) -> None:
    token = services.create_feed(session, feed_world["supervisor"])
    body = client.get(f"/calendar/{token}.ics").get_data(as_text=True)
    uids = [e["UID"] for e in events_of(body)]
    assert uids == [f"visit-{feed_world['theirs'].id}@127.0.0.1"]


@pytest.mark.parametrize(
    "token",
    ["wrong", "x" * 43, "A" * 300],
)
def test_a_wrong_token_is_404(client: FlaskClient, feed_world: dict[str, Any], token: str) -> None:
    response = client.get(f"/calendar/{token}.ics")
    assert response.status_code == 404
    assert "BEGIN:VCALENDAR" not in response.get_data(as_text=True)
    # Control: the real token works.
    assert client.get(f"/calendar/{feed_world['token']}.ics").status_code == 200


def test_a_revoked_or_replaced_token_is_404(
    client: FlaskClient, session: Session, feed_world: dict[str, Any]
) -> None:
    old = feed_world["token"]
    new = services.create_feed(session, feed_world["officer"])  # replaces the old one
    assert client.get(f"/calendar/{old}.ics").status_code == 404
    assert client.get(f"/calendar/{new}.ics").status_code == 200
    assert services.revoke_feed(session, feed_world["officer"]) == 1
    assert client.get(f"/calendar/{new}.ics").status_code == 404


def test_a_disabled_users_token_is_404(
    client: FlaskClient, session: Session, feed_world: dict[str, Any]
) -> None:
    feed_world["officer"].active = False
    session.commit()
    assert client.get(f"/calendar/{feed_world['token']}.ics").status_code == 404


def test_the_feed_needs_no_session_and_sets_none(
    client: FlaskClient, feed_world: dict[str, Any]
) -> None:
    response = client.get(f"/calendar/{feed_world['token']}.ics")
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
