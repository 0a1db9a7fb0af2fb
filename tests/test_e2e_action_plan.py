"""One journey in Chromium: warn a premises, agree an action plan with three items,
record a visit that finds one item not done, then see the alert arrive by email after a
scheduler tick, the recommendation on the premises page, and the before/after figures
of both interventions in its "Did it work?" section."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import Page, expect, sync_playwright
from sqlalchemy.orm import Session

from licensing.db import utcnow
from licensing.notifications.scheduler import run_sweep
from licensing.timeutil import LONDON, to_london
from tests import smtp_support
from tests.conftest import PASSWORD
from tests.e2e_support import browser_page, serve
from tests.smtp_support import SmtpServer
from tests.test_assessment import place_incidents

smtp_server = smtp_support.smtp_server


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
def test_a_failed_action_plan_alerts_and_recommends_review(
    app: Flask,
    session: Session,
    world: dict[str, Any],
    smtp_server: SmtpServer,
    tmp_path: Path,
) -> None:
    premises, officer = world["premises"], world["officer"]
    premises.case_officer_id = officer.id
    session.commit()
    # A visit just done, London time, to the minute (so never in the future). Not a few
    # minutes back: just after midnight that is yesterday, and the visit is booked today.
    now = to_london(utcnow()).replace(second=0, microsecond=0)
    today = now.date()
    # The bad spell that led to the warning: three confirmed incidents in the last month,
    # at London noon, besides the one the premises was registered with (yesterday).
    place_incidents(
        session,
        premises,
        [datetime.combine(today - timedelta(days=d), time(12), LONDON) for d in (10, 20, 30)],
    )
    with (
        serve(app) as base_url,
        sync_playwright() as playwright,
        browser_page(playwright, base_url) as page,
    ):
        try:
            _sign_in(page, officer.email)
            page.goto(f"/premises/{premises.id}")
            warn = page.locator("#event-warn")
            warn.locator("summary").click()
            warn.get_by_label("Reason", exact=True).fill("Disorder at closing time")
            warn.get_by_role("button", name="Warn").click()
            expect(page.locator("#premises-state")).to_have_text("Warned")

            page.locator("#agree-plan-link").click()
            expect(
                page.get_by_role("heading", level=1, name="Agree an action plan")
            ).to_be_visible()
            page.locator("#agreed_with").fill("Dee Supervisor")
            _date(page, "agreed_on", today)
            _date(page, "review_on", today + timedelta(days=28))
            page.locator("#reason").fill("Fights at closing time")
            for n, what in enumerate(
                ["Two SIA door staff Fri and Sat", "CCTV kept 31 days", "Challenge 25 training"],
                start=1,
            ):
                page.locator(f"#item_{n}_description").fill(what)
                page.locator(f"#item_{n}_owner").fill("Licence holder")
                _date(page, f"item_{n}_due_on", today + timedelta(days=7 * n))
            page.get_by_role("button", name="Agree action plan").click()
            expect(page.locator("#plan-status")).to_have_text("Open")
            expect(page.locator("#plan-items tbody tr")).to_have_count(3)

            page.goto(f"/premises/{premises.id}")
            page.locator("#schedule-visit-link").click()
            _date(page, "visit_date", today)
            page.get_by_label("Time (24-hour, UK time)").fill("23:30")
            page.get_by_label("Compliance check").check()
            page.get_by_role("button", name="Schedule visit").click()

            expect(page.get_by_role("heading", name="Record the outcome")).to_be_visible()
            page.get_by_label("Issues found").check()
            _date(page, "visited_date", today)
            page.get_by_label("Time of the visit (24-hour, UK time)").fill(now.strftime("%H:%M"))
            page.locator("#findings_crime_and_disorder").fill("No door staff on at 23:00")
            items = page.locator("#plan-items")
            expect(items.locator(".govuk-fieldset")).to_have_count(3)
            items.locator(".govuk-fieldset").first.get_by_label("Not done").check()
            page.get_by_role("button", name="Record outcome").click()
            expect(page.locator("#visit-status")).to_have_text("Completed")

            page.goto(f"/premises/{premises.id}")
            expect(page.locator("#action-plan-status")).to_have_text("Failed")
            expect(
                page.locator('#action-plan-items tr[data-item-status="not_done"]')
            ).to_have_count(1)
            recommendation = page.locator('[data-rule="action_plan_failed"]')
            expect(recommendation).to_contain_text("Recommended: apply for a review (s.51)")
            expect(
                page.locator('#history-list li[data-event="action_plan_item_status_changed"]')
            ).to_have_count(1)

            # The scheduler's minute ticks: the first enqueues the recommendation's alert
            # (stamped a moment after the tick began), the next sends it.
            swept = [run_sweep(app), run_sweep(app)]
            subjects = [m["Subject"] for m in smtp_server.to(officer.email)]
            assert any(s.startswith("Recommendation: apply for review") for s in subjects), (
                subjects,
                swept,
            )

            # Did it work? Both interventions are today: four confirmed incidents in the
            # 90 days before (the three above and yesterday's), none after so far, and
            # the after windows are still running, so no change is claimed.
            page.goto(f"/premises/{premises.id}#assessment")
            rows = page.locator("#assessment-table tbody tr")
            expect(rows).to_have_count(2)
            for label in ("Warning", "Action plan agreed"):
                row = rows.filter(has_text=label)
                expect(row).to_have_attribute("data-complete", "no")
                expect(row.locator('td[data-series="before"] .app-count')).to_have_text("4")
                expect(row.locator('td[data-series="after"] .app-count')).to_have_text("0")
                expect(row.locator('td[data-series="change"]')).to_contain_text("Incomplete")
            expect(page.locator("#assessment-chart rect[data-series]")).to_have_count(4)
        except Exception:
            page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
            raise
