"""The map and the charts in a real browser, with the map tiles unreachable (offline).

The map must still draw a marker for each premises the user may see, keep its table,
and raise no script error; each chart's bars must show the figures of its table. The
pages are served under a Content Security Policy without 'unsafe-inline' for scripts
and styles, the one that is coming; nothing of the map's may break it.
"""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import govuk_frontend_jinja
import pytest
import time_machine
from flask import Flask, Response
from playwright.sync_api import ConsoleMessage, Page, expect, sync_playwright

from licensing.reports.services import last_months
from licensing.timeutil import LONDON
from tests.conftest import PASSWORD, move, record_evidence
from tests.e2e_support import browser_page, serve

UNREACHABLE_TILES = "http://127.0.0.1:9/{z}/{x}/{y}.png"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data: http://127.0.0.1:9; object-src 'none'; base-uri 'none'"
)


def _template_script_hash() -> str:
    """The CSP hash of the GOV.UK template's own one-line inline script (the js-enabled
    class), which the coming CSP will allow by nonce; its refusal here is not ours."""
    template = Path(govuk_frontend_jinja.__file__).parent / "templates" / "template.html"
    match = re.search(r"<script[^>]*>(.*?)</script>", template.read_text(), re.S)
    assert match, "the GOV.UK template has no inline script any more: drop this allowance"
    return base64.b64encode(hashlib.sha256(match.group(1).encode()).digest()).decode()


def _sign_in(page: Page, email: str) -> None:
    page.goto("/sign-in")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def _sign_out(page: Page) -> None:
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", level=1, name="Sign in")).to_be_visible()


def _bars_match_table(page: Page, chart: str, table: str) -> int:
    """Every drawn bar's count is its table cell's figure, and every non-zero figure is
    drawn; returns the number of bars."""
    bars = page.locator(f"#{chart} rect[data-key]")
    drawn = {
        (bar.get_attribute("data-key"), bar.get_attribute("data-series")): int(
            bar.get_attribute("data-count") or "0"
        )
        for bar in bars.all()
    }
    cells = page.locator(f"#{table} td[data-key]")
    figures = {
        (cell.get_attribute("data-key"), cell.get_attribute("data-series")): int(
            cell.inner_text().strip()
        )
        for cell in cells.all()
    }
    assert drawn == {k: n for k, n in figures.items() if n and k[1] != "all"}
    # And the bars are really drawn: a positive size on the page.
    for bar in bars.all():
        box = bar.bounding_box()
        assert box is not None and box["width"] > 0 and box["height"] > 0
    return len(drawn)


@pytest.mark.e2e
def test_map_offline_and_charts_agree_with_their_tables(
    app: Flask,
    session: Any,
    make_authority: Any,
    make_user: Any,
    make_premises: Any,
    tmp_path: Path,
) -> None:
    liv = make_authority("LIV", "Liverpool City Council")
    sef = make_authority("SEF", "Sefton Council")
    officer = make_user("officer")
    supervisor = make_user("supervisor")
    council = make_user("council", "LIV")
    months = last_months()
    past = datetime(months[6].year, months[6].month, 15, 12, tzinfo=LONDON)
    with time_machine.travel(past, tick=False):
        early = make_premises(
            liv, officer, name="Early Bird", latitude=53.4044, longitude=-2.9787
        )  # an incident yesterday (then), the evidence for the warning
        move(session, early, officer, "warn")
    busy = make_premises(
        liv, officer, evidence=False, name="Busy Bar", latitude=53.41, longitude=-2.98
    )
    for category in ("Public order", "Public order", "Drugs"):
        record_evidence(session, busy, category)
    move(
        session,
        busy,
        supervisor,
        "apply_for_summary_review",
        received_at=(datetime.now(UTC) - timedelta(hours=1)).isoformat(),
        certificate_reference="CERT-E2E",
    )
    make_premises(liv, officer, name="Quiet Inn", latitude=53.42, longitude=-2.97)
    make_premises(liv, officer, evidence=False, name="Nowhere Club")  # no location
    make_premises(sef, officer, name="Sefton Arms", latitude=53.49, longitude=-3.01)

    app.config["MAP_TILE_URL"] = UNREACHABLE_TILES

    @app.after_request
    def _csp(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = CSP
        return response

    page_errors: list[str] = []
    refusals: list[str] = []

    template_script = _template_script_hash()

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text and template_script not in message.text:
            refusals.append(message.text)

    with (
        serve(app) as base_url,
        sync_playwright() as playwright,
        browser_page(playwright, base_url) as page,
    ):
        page.on("pageerror", lambda error: page_errors.append(str(error)))
        page.on("console", on_console)
        try:
            _sign_in(page, officer.email)
            page.goto("/map")
            expect(page.get_by_role("heading", level=1, name="Map")).to_be_visible()
            region = page.get_by_role("region", name="Map of the premises")
            expect(region).to_be_visible()
            markers = page.locator("#map .leaflet-marker-icon")
            expect(markers).to_have_count(4)  # Nowhere Club has no location
            expect(page.locator("#map .leaflet-marker-icon.app-map-marker--review")).to_have_text(
                "R"
            )
            for marker in markers.all():
                box = marker.bounding_box()
                assert box is not None and box["width"] > 0
            # Circles for Busy Bar's three recent incidents and Quiet Inn's and Sefton
            # Arms' one each; Early Bird's is older than 90 days.
            expect(page.locator("#map path.app-map-density")).to_have_count(3)
            expect(page.locator("#map-status")).to_contain_text(
                "The background map could not be loaded"
            )
            table = page.locator("#map-table")
            expect(table.locator("tbody tr")).to_have_count(5)
            busy_row = table.locator("tbody tr", has_text="Busy Bar")
            expect(busy_row.locator("td").nth(3)).to_have_text("3")
            expect(table.locator("tbody tr", has_text="Nowhere Club")).to_contain_text(
                "No location"
            )
            # A marker opens a popup that links to the premises.
            page.locator("#map .app-map-marker--review").click()
            popup_link = page.locator(".leaflet-popup-content a", has_text="Busy Bar")
            expect(popup_link).to_have_attribute("href", f"/premises/{busy.id}")
            expect(page.locator(".leaflet-popup-content")).to_contain_text(
                "3 incidents in the last 90 days"
            )

            # Filters: Sefton only.
            page.get_by_label("Licensing authority").select_option("SEF")
            page.get_by_role("button", name="Apply filters").click()
            expect(page.locator("#map .leaflet-marker-icon")).to_have_count(1)
            expect(page.locator("#map-table tbody tr")).to_have_count(1)
            expect(page.locator("#map-table")).to_contain_text("Sefton Arms")

            # Charts: each chart's bars carry its table's figures.
            page.goto("/reports")
            page.get_by_label("Licensing authority").select_option("LIV")
            page.get_by_role("button", name="Show").click()
            expect(page.locator("#state-table")).to_be_visible()
            assert _bars_match_table(page, "state-chart", "state-table") >= 6
            now_key = months[-1].key
            expect(
                page.locator(f'#state-table td[data-key="{now_key}"][data-series="all"]')
            ).to_have_text("4")
            expect(
                page.locator(f'#state-table td[data-key="{months[6].key}"][data-series="warned"]')
            ).to_have_text("1")
            assert _bars_match_table(page, "category-chart", "category-table") == 2
            expect(page.locator('#category-table td[data-key="Public order"]')).to_have_text(
                "4"
            )  # Busy Bar's two, Quiet Inn's one, Early Bird's one
            _sign_out(page)

            # A council user: only their authority's premises under review.
            _sign_in(page, council.email)
            page.goto("/map")
            expect(page.locator("#map .leaflet-marker-icon")).to_have_count(1)
            expect(page.locator("#map-table tbody tr")).to_have_count(1)
            expect(page.locator("#map-table")).to_contain_text("Busy Bar")
            page.goto("/reports")
            assert _bars_match_table(page, "state-chart", "state-table") == 1
            expect(
                page.locator(f'#state-table td[data-key="{now_key}"][data-series="review"]')
            ).to_have_text("1")

            assert page_errors == []
            assert refusals == [], sorted(set(refusals))
        except Exception:
            page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
            raise
