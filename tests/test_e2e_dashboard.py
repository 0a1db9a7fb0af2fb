"""The dashboard in a real browser: its counts match the database, and each count's link
opens a list that shows the same number."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import expect, sync_playwright
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from licensing.incidents.models import Incident, PremisesIncidentLink, Recommendation
from licensing.premises.models import Premises
from licensing.premises.workflow import STATES
from tests.conftest import PASSWORD, move
from tests.e2e_support import browser_page, serve


@pytest.fixture
def spread(session: Session, world: dict[str, Any], make_premises: Any) -> dict[str, Any]:
    """Premises in three states across both authorities."""
    officer, supervisor = world["officer"], world["supervisor"]
    for n in range(3):
        warned = make_premises(world["liv"] if n % 2 else world["sef"], officer)
        move(session, warned, officer, "warn", reason=f"Warning {n}")
    under_review = make_premises(world["liv"], officer)
    move(session, under_review, officer, "warn", reason="Warning")
    move(
        session,
        under_review,
        supervisor,
        "apply_for_review",
        application_date=(datetime.now(UTC) - timedelta(days=1)).date().isoformat(),
    )
    return world


def _number(text: str) -> int:
    match = re.match(r"\s*(\d+)", text)
    assert match, text
    return int(match.group(1))


@pytest.mark.e2e
def test_dashboard_counts_match_the_database_and_their_lists(
    app: Flask, session: Session, spread: dict[str, Any]
) -> None:
    expected = dict.fromkeys(STATES, 0)
    expected.update(
        session.execute(select(Premises.state, func.count()).group_by(Premises.state)).all()
    )
    assert expected["warned"] == 3 and expected["review"] == 1
    recent = session.scalar(
        select(func.count())
        .select_from(Incident)
        .where(Incident.created_at >= datetime.now(UTC) - timedelta(days=7))
    )
    open_recommendations = session.scalar(
        select(func.count()).select_from(Recommendation).where(Recommendation.status == "open")
    )
    suggested = session.scalar(
        select(func.count(func.distinct(PremisesIncidentLink.incident_id)))
        .join(Incident, Incident.id == PremisesIncidentLink.incident_id)
        .where(
            PremisesIncidentLink.status == "suggested",
            Incident.created_at >= datetime.now(UTC) - timedelta(days=7),
        )
    )
    with (
        serve(app) as base_url,
        sync_playwright() as playwright,
        browser_page(playwright, base_url) as page,
    ):
        page.goto("/sign-in")
        page.get_by_label("Email address").fill(spread["supervisor"].email)
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", level=1, name="Dashboard")).to_be_visible()

        shown = {
            state: _number(page.locator(f"#count-state-{state}").inner_text()) for state in STATES
        }
        assert shown == expected
        assert _number(page.locator("#count-incidents-recent").inner_text()) == recent
        assert _number(page.locator("#count-recommendations").inner_text()) == open_recommendations
        assert _number(page.locator("#count-incidents-suggested").inner_text()) == suggested

        for state in ("warned", "review"):
            page.goto("/")
            page.locator(f"#count-state-{state}").click()
            expect(page).to_have_url(re.compile(rf"/premises\?state={state}$"))
            expect(page.locator("#result-count")).to_have_text(
                re.compile(rf"^{expected[state]} premises match")
            )
