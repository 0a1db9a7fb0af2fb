"""The assessment pages in a real browser: axe-core finds nothing on the force report
(with figures, and with a form error) or on a premises page's "Did it work?" section,
and the section's chart draws the same counts as its table."""

from __future__ import annotations

from typing import Any

from flask import Flask
from playwright.sync_api import expect, sync_playwright
from sqlalchemy.orm import Session

from tests.e2e_support import browser_page, serve
from tests.test_assessment import (  # noqa: F401 - fixtures
    around,
    london,
    people,
    place_incidents,
    register_at,
    warn_at,
)
from tests.test_e2e_accessibility import _axe_violations, _sign_in


def test_assessment_pages_pass_axe(
    app: Flask,
    session: Session,
    people: dict[str, Any],  # noqa: F811 - the fixture imported above
    make_premises: Any,
) -> None:
    """Report, report with an error, and the premises section: no axe violations; the
    report shows the warning's figures and the section's bars match its table."""
    crown = register_at(make_premises, people["liv"], people["officer"], name="The Crown")
    place_incidents(session, crown, around(4, 1))
    warn_at(session, crown, people["supervisor"], london(2025, 6, 10, 15))
    period = "period_from=1&period_from=6&period_from=2025&period_to=30&period_to=6&period_to=2025"

    with (
        sync_playwright() as playwright,
        serve(app) as base,
        browser_page(playwright, base) as page,
    ):
        _sign_in(page, people["supervisor"].email)

        page.goto(f"/assessment?{period}")
        expect(page.locator('tr[data-group="warning"] [data-figure="median_before"]')).to_have_text(
            "4"
        )
        assert _axe_violations(page) == []

        page.goto("/assessment?window_days=999")
        expect(page.get_by_role("link", name="from 7 to 365", exact=False)).to_be_visible()
        assert _axe_violations(page) == []

        page.goto(f"/premises/{crown.id}#assessment")
        table = page.locator("#assessment-table")
        expect(table).to_contain_text("-3 (-75%)")
        bars = page.locator("#assessment-chart rect[data-series]")
        assert bars.count() == 2
        for i in range(bars.count()):
            bar = bars.nth(i)
            key, series = bar.get_attribute("data-key"), bar.get_attribute("data-series")
            cell = page.locator(
                f'#assessment-table td[data-key="{key}"][data-series="{series}"] .app-count'
            )
            assert cell.inner_text() == bar.get_attribute("data-count")
        assert _axe_violations(page) == []
