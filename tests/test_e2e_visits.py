"""One journey in a real browser: schedule a visit, record what it found, see the next
visit proposed; warn on that evidence; apply for a review and see its deadlines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import Page, expect, sync_playwright
from sqlalchemy.orm import Session

from licensing.deadlines import rules
from licensing.deadlines.calendar import calendar_from_package
from licensing.timeutil import london_today
from tests.conftest import PASSWORD, ensure_issued_bundle
from tests.e2e_support import browser_page, serve


def _sign_in(page: Page, email: str) -> None:
    page.goto("/sign-in")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def _date(page: Page, prefix: str, day: Any) -> None:
    page.locator(f"#{prefix}-day").fill(str(day.day))
    page.locator(f"#{prefix}-month").fill(str(day.month))
    page.locator(f"#{prefix}-year").fill(str(day.year))


@pytest.mark.e2e
def test_a_visit_finds_issues_then_a_review_sets_its_deadlines(
    app: Flask, session: Session, world: dict[str, Any], make_premises: Any, tmp_path: Path
) -> None:
    premises = make_premises(world["liv"], world["officer"], evidence=False, name="The Vines")
    # A review application needs an issued evidence bundle (the review guard).
    ensure_issued_bundle(session, premises, world["supervisor"])
    today = london_today()
    with (
        serve(app) as base_url,
        sync_playwright() as playwright,
        browser_page(playwright, base_url) as page,
    ):
        try:
            _sign_in(page, world["officer"].email)
            page.goto(f"/premises/{premises.id}")
            page.locator("#schedule-visit-link").click()
            expect(page.get_by_role("heading", level=1, name="Schedule a visit")).to_be_visible()
            _date(page, "visit_date", today)
            page.get_by_label("Time (24-hour, UK time)").fill("23:00")
            page.get_by_label("Routine visit").check()
            page.get_by_role("button", name="Schedule visit").click()

            expect(page.get_by_role("heading", name="Record the outcome")).to_be_visible()
            page.get_by_label("Issues found").check()
            _date(page, "visited_date", today)
            page.get_by_label("Time of the visit (24-hour, UK time)").fill("00:01")
            page.locator("#findings_crime_and_disorder").fill(
                "Fight in the beer garden; no door staff"
            )
            page.get_by_role("button", name="Record outcome").click()

            page.goto(f"/premises/{premises.id}")
            expect(page.locator("#next-visit")).to_contain_text("Proposed")
            expect(page.locator('#history-list li[data-event="visit_recorded"]')).to_have_count(1)

            # The visit's findings are the evidence a warning needs (no incidents here).
            warn = page.locator("#event-warn")
            warn.locator("summary").click()
            warn.get_by_label("Reason", exact=True).fill("Visit found fighting and no door staff")
            warn.get_by_role("button", name="Warn").click()
            expect(page.locator("#premises-state")).to_have_text("Warned")

            page.get_by_role("button", name="Sign out").click()
            _sign_in(page, world["supervisor"].email)
            page.goto(f"/premises/{premises.id}")
            review = page.locator("#event-apply_for_review")
            review.locator("summary").click()
            _date(page, "apply_for_review-application_date", today)
            review.get_by_label("Reason", exact=True).fill("Warning ignored; issues persist")
            review.get_by_role("button", name="Apply for a review (s.51)").click()
            expect(page.locator("#premises-state")).to_have_text("Under review")

            closed = rules.representations_close(today)
            hearing = rules.hearing_start_by(closed, calendar_from_package())
            table = page.locator("#deadlines-table")
            expect(table.locator('tr[data-kind="representations_close"]')).to_contain_text(
                f"{closed.day} {closed:%b %Y}"
            )
            expect(table.locator('tr[data-kind="hearing_start_by"]')).to_contain_text(
                f"{hearing.day} {hearing:%b %Y}"
            )
            # The review changed the visit policy: a visit every two weeks now.
            expect(page.locator("#next-visit")).to_contain_text("Proposed")
        except Exception:
            page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
            raise
