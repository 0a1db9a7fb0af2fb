"""One journey in a real browser: an officer imports data.police.uk crimes, confirms the
one suggested for a premises, and sees it on the premises page."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import expect, sync_playwright

from licensing.incidents.importer import POLICE_UK_COLUMNS
from tests.conftest import PASSWORD
from tests.e2e_support import browser_page, serve

LAT, LON = 53.40440, -2.97870
METRES_NORTH = 1 / 111_195


@pytest.mark.e2e
def test_officer_imports_crimes_and_confirms_one_for_a_premises(
    app: Flask, world: dict[str, Any], make_premises: Any, tmp_path: Path
) -> None:
    officer = world["officer"]
    premises = make_premises(
        world["liv"],
        officer,
        evidence=False,
        name="The Corner House",
        licence_number="LIV/CORNER",
        latitude=LAT,
        longitude=LON,
    )
    # Last month: always within the chart's 52 weeks and already past mid-month.
    first_of_this_month = datetime.now(UTC).replace(day=1)
    month = (first_of_this_month - timedelta(days=1)).strftime("%Y-%m")
    rows = [
        ",".join(POLICE_UK_COLUMNS),
        f"E2E-NEAR,{month},Merseyside Police,Merseyside Police,{LON:.6f},"
        f"{LAT + 20 * METRES_NORTH:.6f},On or near Corner Street,E01006512,Liverpool 060A,"
        "Public order,Under investigation,",
        f"E2E-FAR,{month},Merseyside Police,Merseyside Police,{LON:.6f},{LAT + 0.05:.6f},"
        "On or near Far Road,E01006513,Liverpool 061B,Drugs,,",
    ]
    csv_path = tmp_path / "street.csv"
    csv_path.write_bytes(("\r\n".join(rows) + "\r\n").encode())

    with (
        serve(app) as base_url,
        sync_playwright() as playwright,
        browser_page(playwright, base_url) as page,
    ):
        try:
            page.goto("/sign-in")
            page.get_by_label("Email address").fill(officer.email)
            page.get_by_label("Password", exact=True).fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_role("heading", level=1, name="Dashboard")).to_be_visible()

            page.get_by_role("link", name="Incidents", exact=True).click()
            expect(page.get_by_role("heading", level=1, name="Incidents")).to_be_visible()
            page.get_by_role("link", name="Import incidents").click()
            expect(page.get_by_role("heading", level=1, name="Import incidents")).to_be_visible()
            page.get_by_label("data.police.uk street-level CSV").check()
            page.get_by_label("File (CSV)").set_input_files(str(csv_path))
            page.get_by_role("button", name="Import incidents").click()

            expect(page).to_have_url(re.compile(r"/incidents/import/\d+$"))
            counts = page.locator("#import-counts")
            expect(counts.locator(".govuk-summary-list__row", has_text="Created")).to_contain_text(
                "2"
            )
            expect(
                counts.locator(".govuk-summary-list__row", has_text="Suggested links")
            ).to_contain_text("1")

            page.get_by_role("link", name="Suggested links", exact=True).first.click()
            group = page.locator(f"#suggestions-{premises.id}")
            expect(group).to_contain_text("1 suggested")
            expect(group.get_by_role("checkbox")).to_have_count(1)
            expect(
                group.get_by_label(re.compile(r"Public order.*On or near Corner Street"))
            ).to_be_checked()
            group.get_by_role("button", name="Confirm selected").click()
            expect(page.get_by_text("1 suggestion confirmed.")).to_be_visible()
            expect(page.locator("#no-suggestions")).to_be_visible()

            page.goto(f"/premises/{premises.id}")
            expect(page.get_by_role("heading", level=1, name="The Corner House")).to_be_visible()
            linked = page.locator("#linked-incidents tbody tr")
            expect(linked).to_have_count(1)
            expect(linked).to_contain_text("Public order")
            expect(linked).to_contain_text("On or near Corner Street")
            expect(linked).to_contain_text("(month only)")

            chart_table = page.locator("#incident-chart-table")
            expect(chart_table).not_to_be_visible()
            page.get_by_text("The figures as a table").click()
            expect(chart_table).to_be_visible()
            expect(chart_table.locator("thead th")).to_have_text(["Week starting", "Public order"])
            expect(chart_table.locator("tbody tr")).to_have_count(1)
            expect(chart_table.locator("tbody td")).to_have_text(["1"])

            entry = page.locator('#history-list li[data-event="link_confirmed"]')
            expect(entry).to_have_count(1)
            expect(entry).to_contain_text("Link confirmed")
            expect(entry).to_contain_text(officer.name)
            expect(entry).to_contain_text("Public order")
        except Exception:
            page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
            raise
