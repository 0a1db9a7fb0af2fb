"""The premises page asks which of its casework sections have rows (one statement of six
EXISTS, licensing.premises.sections) and reads only those (issue 8: fewer statements on
the page most premises show). What it asks must agree with what each section's read
finds, including the rows a read leaves out (a withdrawn review, a dismissed
recommendation), and nothing a section holds may go missing from the page."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event
from sqlalchemy.orm import Session

from licensing.actionplans import services as plans
from licensing.actionplans.models import PLAN_COMPLETED
from licensing.deadlines.models import Deadline
from licensing.deadlines.services import premises_deadlines
from licensing.evidence import services as bundles
from licensing.incidents.models import Recommendation
from licensing.incidents.recommendations import open_recommendations
from licensing.letters import services as letters
from licensing.letters.defaults import FIRST_WARNING
from licensing.premises.models import Premises, ReviewApplication
from licensing.premises.sections import Sections, sections_with_rows
from licensing.premises.services import open_and_determined_review
from licensing.timeutil import london_today
from tests.conftest import agree_plan, sign_in


def _read(session: Session, premises: Premises, supervisor: Any) -> Sections:
    """What each section's own read finds, as the flags `sections_with_rows` gives."""
    return Sections(
        reviews=open_and_determined_review(session, premises.id) != (None, None),
        recommendations=bool(open_recommendations(session, premises.id)),
        deadlines=bool(premises_deadlines(session, premises.id)),
        action_plans=plans.current_plan(session, premises.id) is not None,
        letters=bool(letters.premises_letters(session, premises.id)),
        bundles=bool(bundles.list_bundles(session, supervisor, premises.id)),
    )


def _fill_every_section(
    session: Session, world: dict[str, Any], premises: Premises
) -> dict[str, str]:
    """A row in each of the six sections; returns text each puts on the premises page."""
    officer, supervisor = world["officer"], world["supervisor"]
    review = ReviewApplication(
        premises_id=premises.id, kind="standard", application_date=london_today()
    )
    session.add(review)
    session.flush()
    session.add(
        Deadline(
            premises_id=premises.id,
            review_id=review.id,
            kind="representations_close",
            due_date=london_today() + timedelta(days=20),
            rule="s.51",
        )
    )
    session.add(
        Recommendation(
            premises_id=premises.id,
            rule="serious_while_monitored",
            recommended_event="warn",
            summary="Marker: three serious incidents in a week",
        )
    )
    session.commit()
    agree_plan(session, officer, premises, ["Marker: door staff from 22:00"])
    template = letters.template_by_key(session, FIRST_WARNING)
    letter = letters.issue_letter(session, officer, premises, template, template.current_version)
    bundle = bundles.create_bundle(session, supervisor, premises)
    return {
        "recommendation": "Marker: three serious incidents in a week",
        "plan item": "Marker: door staff from 22:00",
        "letter": letter.title,
        "bundle": bundle.label,
    }


def test_the_question_agrees_with_each_read_as_rows_come_and_go(
    session: Session, world: dict[str, Any]
) -> None:
    premises, officer, supervisor = world["premises"], world["officer"], world["supervisor"]

    def agrees() -> Sections:
        asked = sections_with_rows(session, premises.id)
        assert asked == _read(session, premises, supervisor)
        return asked

    assert agrees() == Sections(False, False, False, False, False, False)

    # Rows a read leaves out are not counted either.
    withdrawn = ReviewApplication(
        premises_id=premises.id,
        kind="standard",
        application_date=london_today(),
        status="withdrawn",
    )
    dismissed = Recommendation(
        premises_id=premises.id,
        rule="serious_while_monitored",
        recommended_event="warn",
        summary="s",
        status="dismissed",
    )
    session.add_all([withdrawn, dismissed])
    session.commit()
    assert agrees() == Sections(False, False, False, False, False, False)

    # Another premises' rows are not this one's.
    _fill_every_section(session, world, world["other_premises"])
    assert agrees() == Sections(False, False, False, False, False, False)

    withdrawn.status = "determined"
    session.commit()
    assert agrees().reviews

    dismissed.status = "open"
    session.commit()
    assert agrees().recommendations

    session.add(
        Deadline(
            premises_id=premises.id,
            review_id=withdrawn.id,
            kind="hearing",
            due_date=london_today(),
            rule="reg. 5",
        )
    )
    session.commit()
    assert agrees().deadlines

    plan = agree_plan(session, officer, premises, ["Door staff"])
    assert agrees().action_plans
    plan.status = PLAN_COMPLETED  # as settling its items does
    session.commit()
    assert agrees().action_plans  # the latest plan is shown when closed too

    template = letters.template_by_key(session, FIRST_WARNING)
    letters.issue_letter(session, officer, premises, template, template.current_version)
    assert agrees().letters

    bundles.create_bundle(session, supervisor, premises)
    assert agrees() == Sections(True, True, True, True, True, True)


def _statements(app: Flask, client: FlaskClient, path: str) -> tuple[str, int]:
    seen: list[str] = []

    def count(*_args: Any) -> None:
        seen.append("statement")

    engine = app.extensions["db_engine"]
    event.listen(engine, "before_cursor_execute", count)
    try:
        response = client.get(path)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert response.status_code == 200
    return response.get_data(as_text=True), len(seen)


def test_an_empty_section_is_not_read_and_a_full_one_is_shown(
    app: Flask, client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    premises = world["premises"]
    sign_in(client, world["supervisor"])
    path = f"/premises/{premises.id}"
    client.get(path)  # first request's one-off reads (the session's user, say) not counted
    empty_html, empty_count = _statements(app, client, path)

    shown = _fill_every_section(session, world, premises)
    full_html, full_count = _statements(app, client, path)

    for what, text in shown.items():
        assert text not in empty_html, what
        assert text in full_html, what
    assert 'id="bundles"' in full_html
    # The agreed plan is an intervention in "Did it work?" (its read, skipped on the
    # empty page, is sent on the full one).
    plan_key = f'data-key="action_plan-{london_today().isoformat()}-plan"'
    assert plan_key not in empty_html and plan_key in full_html
    # Six sections' reads are sent now that each has a row, and were not before.
    assert full_count - empty_count >= 6, (empty_count, full_count)
