"""Alerts in bulk (issue 8): a pass with many due alerts stores each exactly once, in
multi-row inserts, renders only what is new, and the bodies are exactly those the
templates give one by one; digest-only users are skipped; two passes at once add
nothing twice; the sender claims due rows in order."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask
from jinja2 import ChoiceLoader, DictLoader
from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from licensing.deadlines.models import Deadline
from licensing.notifications import outbox
from licensing.notifications.alerts import (
    AlertRenderer,
    enqueue_due_alerts,
    render_email,
    set_alert_mode,
)
from licensing.notifications.models import OutboxEmail
from licensing.timeutil import LONDON, parse_instant
from licensing.visits.models import Visit
from tests.conftest import cancel_proposed_visits, move

BASE = "https://licensing.example.test"
# 06:30 London on a Tuesday; the day after is a working day, and so is the one before.
NOW = parse_instant("2027-03-09T06:30")
TODAY = NOW.astimezone(LONDON).date()


@pytest.fixture(autouse=True)
def _base_url(app: Flask) -> None:
    app.config["BASE_URL"] = BASE


def _book_visits(
    session: Session, premises_ids: list[int], officers: list[int], days: list[date], count: int
) -> list[dict[str, Any]]:
    """`count` booked visits, the rows `schedule_visit` writes (audit events aside),
    cycling through the premises, officers and days given; each row with its id."""
    stamp = NOW - timedelta(days=3)
    rows = [
        {
            "premises_id": premises_ids[n % len(premises_ids)],
            "visit_type": "routine",
            "status": "scheduled",
            "visit_date": days[n % len(days)],
            "scheduled_at": datetime.combine(days[n % len(days)], datetime.min.time(), LONDON)
            + timedelta(hours=20),
            "officer_id": officers[n % len(officers)],
            "created_by_id": officers[0],
            "created_at": stamp,
            "updated_at": stamp,
            "version": 1,
        }
        for n in range(count)
    ]
    ids = session.scalars(insert(Visit).returning(Visit.id, sort_by_parameter_order=True), rows)
    for row, visit_id in zip(rows, ids, strict=True):
        row["id"] = visit_id
    session.commit()
    return rows


def _visit_key(row: dict[str, Any]) -> str:
    stage = "tomorrow" if row["visit_date"] == TODAY + timedelta(days=1) else "overdue"
    return f"visit:{row['id']}:{row['visit_date'].isoformat()}:{stage}:user:{row['officer_id']}"


def _keys(session: Session) -> list[str]:
    return list(session.scalars(select(OutboxEmail.dedupe_key)))


@pytest.fixture
def crowd(
    session: Session, world: dict[str, Any], make_user: Any, make_premises: Any
) -> dict[str, Any]:
    """Twelve more officers (one digest only), a second supervisor (digest only), ten
    more premises, and 400 visits booked for tomorrow or the last few days."""
    officers = [world["officer"], *(make_user("officer") for _ in range(12))]
    quiet_officer = officers[-1]
    set_alert_mode(session, quiet_officer, "digest")
    quiet_supervisor = make_user("supervisor")
    set_alert_mode(session, quiet_supervisor, "digest")
    premises = [world["premises"], world["other_premises"]] + [
        make_premises(world["liv"], officers[n], name=f"Bar {n} <&> {{x}}", evidence=False)
        for n in range(10)
    ]
    days = [TODAY + timedelta(days=1), TODAY - timedelta(days=1), TODAY - timedelta(days=6)]
    days.append(TODAY)  # today's visits raise nothing until they are overdue
    visits = _book_visits(session, [p.id for p in premises], [o.id for o in officers], days, 400)
    expected = {
        _visit_key(row)
        for row in visits
        if row["visit_date"] != TODAY and row["officer_id"] != quiet_officer.id
    }
    return {
        "officers": officers,
        "quiet": {quiet_officer.id, quiet_supervisor.id},
        "premises": premises,
        "visits": visits,
        "expected": expected,
    }


def test_many_due_alerts_are_each_stored_once(
    app: Flask, session: Session, world: dict[str, Any], crowd: dict[str, Any]
) -> None:
    counts = enqueue_due_alerts(session, NOW)
    keys = _keys(session)
    visit_keys = {key for key in keys if key.startswith("visit:")}
    assert visit_keys == crowd["expected"]
    assert counts["visits"] == len(crowd["expected"])
    assert 250 < len(crowd["expected"]) < 300  # today's raise nothing, nor the quiet one's
    assert len(keys) == len(set(keys))  # the unique key holds, but say it
    assert not any(key.endswith(f":user:{quiet}") for key in keys for quiet in crowd["quiet"])

    # Again at the same moment, and a minute later: nothing new, nothing rendered.
    assert sum(enqueue_due_alerts(session, NOW).values()) == 0
    assert sum(enqueue_due_alerts(session, NOW + timedelta(minutes=1)).values()) == 0
    assert sorted(_keys(session)) == sorted(keys)

    # Each row is the email the template gives for it, to the booked officer.
    row = session.scalar(
        select(OutboxEmail).where(OutboxEmail.dedupe_key == sorted(crowd["expected"])[0])
    )
    assert row is not None
    visit = session.get(Visit, int(row.dedupe_key.split(":")[1]))
    assert visit is not None and visit.officer is not None
    stage = row.dedupe_key.split(":")[3]
    text, html = render_email(
        "visit",
        user=visit.officer,
        subject=row.subject,
        visit=visit,
        premises=visit.premises,
        stage=stage,
        due_text=f"{visit.visit_date:%A} {visit.visit_date.day} {visit.visit_date:%B %Y}",
        premises_url=f"{BASE}/premises/{visit.premises_id}",
    )
    assert (row.recipient, row.user_id) == (visit.officer.email, visit.officer.id)
    assert (row.text_body, row.html_body) == (text, html)
    assert row.message_id == outbox.message_id_for(row.dedupe_key)
    assert (row.status, row.attempts) == ("created", 0)


def test_deadlines_go_to_the_case_officer_and_supervisors_not_digest_only_ones(
    app: Flask, session: Session, world: dict[str, Any], make_user: Any
) -> None:
    quiet = make_user("supervisor")
    set_alert_mode(session, quiet, "digest")
    premises = world["premises"]
    move(session, premises, world["officer"], "warn")
    today = datetime.now(LONDON).date().isoformat()
    move(session, premises, world["supervisor"], "apply_for_review", application_date=today)
    cancel_proposed_visits(session, premises, world["officer"])
    review_id = session.scalar(
        select(Deadline.review_id).where(Deadline.premises_id == premises.id)
    )
    session.execute(update(Deadline).values(status="closed"))
    two_days = date(2027, 3, 11)  # Thursday: two working days after Tuesday the 9th
    stamp = NOW - timedelta(days=1)
    ids = session.scalars(
        insert(Deadline).returning(Deadline.id, sort_by_parameter_order=True),
        [
            {
                "premises_id": premises.id,
                "review_id": review_id,
                "kind": kind,
                "due_date": due,
                "rule": "Test rule <b>&</b>",
                "status": "open",
                "created_at": stamp,
                "updated_at": stamp,
            }
            for kind, due in (("appeal_by", two_days), ("suspension_ends", TODAY))
        ],
    ).all()
    session.commit()
    counts = enqueue_due_alerts(session, NOW)
    people = (world["officer"].id, world["supervisor"].id)
    assert counts["deadlines"] == 4
    assert set(_keys(session)) == {
        f"deadline:{ids[0]}:2027-03-11:T-2:user:{user}" for user in people
    } | {f"deadline:{ids[1]}:{TODAY.isoformat()}:due:user:{user}" for user in people}
    subjects = set(session.scalars(select(OutboxEmail.subject)))
    assert subjects == {
        "2 working days left: appeal period ends – The Crown",
        "Due today: suspension ends – The Crown",
    }
    assert enqueue_due_alerts(session, NOW)["deadlines"] == 0


def test_two_passes_at_once_store_each_alert_once(
    app: Flask, session: Session, world: dict[str, Any], crowd: dict[str, Any]
) -> None:
    barrier = threading.Barrier(2)
    added: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        own = app.extensions["db_sessionmaker"]()
        try:
            with app.app_context():
                barrier.wait()
                added.append(enqueue_due_alerts(own, NOW)["visits"])
        except BaseException as error:  # reported below
            errors.append(error)
        finally:
            own.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sum(added) == len(crowd["expected"])  # however the two shared the work
    assert set(_keys(session)) == crowd["expected"]
    assert session.scalar(select(func.count()).select_from(OutboxEmail)) == len(crowd["expected"])


def test_enqueue_many_adds_only_new_keys(session: Session) -> None:
    def email(key: str) -> dict[str, Any]:
        return {
            "dedupe_key": key,
            "recipient": "pc@example.test",
            "user_id": None,
            "subject": key,
            "text_body": key,
            "html_body": f"<p>{key}</p>",
        }

    assert outbox.enqueue(
        session,
        recipient="pc@example.test",
        subject="a",
        text="a",
        html="a",
        dedupe_key="k:1",
    )
    count = outbox.BULK_ROWS + 1  # more than one statement's worth on either database
    batch = [email(f"k:{n}") for n in range(1, count + 1)]
    assert outbox.enqueue_many(session, batch) == count - 1
    assert outbox.enqueue_many(session, batch[:10]) == 0
    session.commit()
    assert session.scalar(select(func.count()).select_from(OutboxEmail)) == count
    last = f"k:{count}"
    assert outbox.existing_keys(session, ["k:5", last, f"k:{count + 1}", "k:5"]) == {"k:5", last}
    keys = [f"k:{n}" for n in range(count + 2)]  # k:0 and the one after the last are not
    assert outbox.existing_keys(session, keys) == set(keys[1:-1])


HOSTILE = (
    'a "quoted" \\ back\\slash \\"',
    "{braces},commas,}",
    "NULL",
    "",
    "Zoë – ✓ 😀",
    "tab\tnew\nline\r\n",
    "'single' ; --",
)


def test_enqueue_many_stores_every_value_exactly(session: Session, world: dict[str, Any]) -> None:
    """A bulk insert sends each column as one value (an array literal on PostgreSQL):
    quotes, backslashes, braces, commas, the word NULL, empty and non-ASCII text, and
    missing user ids all come back as given."""
    emails = [
        {
            "dedupe_key": f"hostile:{n}:{text}",
            "recipient": f"pc{n}@example.test",
            "user_id": world["officer"].id if n % 2 else None,
            "subject": text,
            "text_body": text * 3,
            "html_body": f"<p>{text}</p>",
        }
        for n, text in enumerate(HOSTILE)
    ]
    assert outbox.enqueue_many(session, emails) == len(HOSTILE)
    session.commit()
    stored = {row.dedupe_key: row for row in session.scalars(select(OutboxEmail))}
    assert set(stored) == {email["dedupe_key"] for email in emails}
    for email in emails:
        row = stored[email["dedupe_key"]]
        assert (row.recipient, row.user_id, row.subject, row.text_body, row.html_body) == (
            email["recipient"],
            email["user_id"],
            email["subject"],
            email["text_body"],
            email["html_body"],
        )
        assert (row.message_id, row.status, row.attempts) == (
            outbox.message_id_for(email["dedupe_key"]),
            "created",
            0,
        )
    asked = [email["dedupe_key"] for email in emails] + ["hostile:absent"]
    assert outbox.existing_keys(session, asked) == set(stored)


# ---- rendering once per shape ------------------------------------------------------------

NAMES = ('O\'Brien & <Sons> "Ltd"', "Plain Name", "{curly} %s {0}", "Zoë\tTab")


@pytest.mark.parametrize(
    ("template", "shape"),
    [
        ("deadline", {"stage": "T-7", "working_days_left": 7}),
        ("deadline", {"stage": "T-2", "working_days_left": 1}),
        ("deadline", {"stage": "due", "working_days_left": 0}),
        ("deadline", {"stage": "overdue", "working_days_left": 0}),
        ("visit", {"stage": "tomorrow"}),
        ("visit", {"stage": "overdue"}),
        ("recommendation", {}),
    ],
)
def test_bodies_rendered_once_per_shape_are_those_of_the_template(
    app: Flask, template: str, shape: dict[str, Any]
) -> None:
    renderer = AlertRenderer()
    with app.app_context():
        for n, name in enumerate(NAMES):
            premises = SimpleNamespace(name=f"{name} Arms", licence_number=f"PL/<{n}>")
            values = {
                "premises": premises,
                "deadline": SimpleNamespace(rule=f"Rule {name}"),
                "visit": SimpleNamespace(id=n),
                "recommendation": SimpleNamespace(summary=f"{n} incidents & <more>"),
                "label": "Hearing must start by",
                "event": "warn & review",
                "due_text": f"Tuesday {n} March 2027",
                "premises_url": f"{BASE}/premises/{n}?a=1&b=<2>",
                "recommendations_url": f"{BASE}/recommendations",
            }
            user = SimpleNamespace(name=name)
            subject = f"Subject – {name}"
            fast = renderer.render(template, user=user, subject=subject, shape=shape, values=values)
            slow = render_email(template, user=user, subject=subject, **shape, **values)
            assert fast == slow
            assert name in fast[0]  # the text names the recipient as given


def test_a_template_that_does_more_than_print_a_value_is_rendered_in_full(
    app: Flask,
) -> None:
    original = app.jinja_env.loader
    app.jinja_env.loader = ChoiceLoader(
        [
            DictLoader(
                {
                    "email/branchy.txt": "{% if premises.name %}{{ premises.name|upper }}"
                    "{% endif %} {{ user.name[:3] }} {{ due_text }}",
                    "email/branchy.html": "<p>{{ premises.name|length }} {{ user.name }}</p>",
                }
            ),
            *([original] if original is not None else []),
        ]
    )
    try:
        renderer = AlertRenderer()
        with app.app_context():
            for name in ("The <Crown>", "Swan & Co"):
                values = {"premises": SimpleNamespace(name=name), "due_text": "today"}
                user = SimpleNamespace(name=f"PC {name}")
                fast = renderer.render("branchy", user=user, subject="s", shape={}, values=values)
                assert fast == render_email("branchy", user=user, subject="s", **values)
                assert name.upper() in fast[0]
    finally:
        app.jinja_env.loader = original


# ---- claiming in order -----------------------------------------------------------------


def test_claims_take_the_earliest_due_rows_of_both_kinds(session: Session) -> None:
    start = datetime.now(UTC) + timedelta(days=1)
    for n in range(6):
        outbox.enqueue(
            session,
            recipient="pc@example.test",
            subject=str(n),
            text=str(n),
            html=str(n),
            dedupe_key=f"order:{n}",
            now=start + timedelta(minutes=n),
        )
    session.commit()
    ids = {
        key: email_id
        for key, email_id in session.execute(select(OutboxEmail.dedupe_key, OutboxEmail.id))
    }
    # order:3 was claimed by a worker that died: past the lease it is due again, in its
    # place by next_attempt_at; order:4 is claimed within its lease; order:5 not due yet.
    session.execute(
        update(OutboxEmail)
        .where(OutboxEmail.id == ids["order:3"])
        .values(status="sending", claimed_by="dead", claimed_at=start - timedelta(hours=1))
    )
    session.execute(
        update(OutboxEmail)
        .where(OutboxEmail.id == ids["order:4"])
        .values(status="sending", claimed_by="alive", claimed_at=start + timedelta(minutes=4))
    )
    session.commit()
    now = start + timedelta(minutes=4, seconds=30)
    first = outbox.claim_due(session, "w1", now=now, limit=2)
    assert [row.dedupe_key for row in first] == ["order:0", "order:1"]
    rest = outbox.claim_due(session, "w2", now=now, limit=10)
    assert [row.dedupe_key for row in rest] == ["order:2", "order:3"]
    assert outbox.claim_due(session, "w3", now=now, limit=10) == []


def test_columns_read_as_plain_values_load_the_row_for_anything_else() -> None:
    from licensing.notifications.alerts import _Columns

    loads: list[int] = []

    def load() -> SimpleNamespace:
        loads.append(1)
        return SimpleNamespace(name="loaded", address="1 High Street")

    premises = _Columns(load, name="The Crown")
    assert premises.name == "The Crown" and loads == []
    assert premises.address == "1 High Street" and loads == [1]
    assert not hasattr(premises, "__html__")
