"""The pages under the app's own Content Security Policy, in a real browser.

The other browser tests bypass the policy so that they may inject axe-core; this one
does not. The sign-in page, the dashboard, a premises page, the map (tiles unreachable)
and a bundle page must each load with no policy violation, GOV.UK's inline script must
run (its nonce works: <body> gets `js-enabled`), and the map must draw its markers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import ConsoleMessage, Page, expect, sync_playwright
from sqlalchemy.orm import Session

from licensing.evidence import services as bundles
from tests.conftest import PASSWORD
from tests.e2e_support import CHROMIUM_ARGS, chromium_path, serve

UNREACHABLE_TILES = "http://127.0.0.1:9/{z}/{x}/{y}.png"

# Runs before any page script (init scripts are not subject to the page's CSP): keeps
# every violation the browser reports, for the test to read.
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (event) => {
  window.__cspViolations.push(
    event.violatedDirective + ' blocked ' + (event.blockedURI || 'inline') +
    ' at ' + event.sourceFile + ':' + event.lineNumber
  );
});
"""


def _check(page: Page, violations: list[str]) -> None:
    """The page ran GOV.UK's inline script and reported no violation."""
    expect(page.locator("body")).to_have_class(
        "govuk-template__body js-enabled govuk-frontend-supported"
    )
    violations.extend(f"{page.url}: {v}" for v in page.evaluate("window.__cspViolations || []"))


@pytest.mark.e2e
def test_pages_work_under_the_content_security_policy(
    app: Flask,
    session: Session,
    world: dict[str, Any],
    make_premises: Any,
    tmp_path: Path,
) -> None:
    app.config["MAP_TILE_URL"] = UNREACHABLE_TILES
    supervisor = world["supervisor"]
    located = make_premises(
        world["liv"], world["officer"], name="Mapped Arms", latitude=53.40, longitude=-2.98
    )
    bundle = bundles.create_bundle(session, supervisor, located)

    console: list[str] = []
    violations: list[str] = []
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            console.append(message.text)

    with serve(app) as base_url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(base_url=base_url)  # the policy is enforced
            context.add_init_script(RECORD_VIOLATIONS)
            page = context.new_page()
            page.on("console", on_console)
            page.on("pageerror", lambda error: errors.append(str(error)))
            try:
                response = page.goto("/sign-in")
                assert response is not None
                policy = response.headers["content-security-policy"]
                assert "unsafe-inline" not in policy and "'nonce-" in policy
                _check(page, violations)
                page.get_by_label("Email address").fill(supervisor.email)
                page.get_by_label("Password", exact=True).fill(PASSWORD)
                page.get_by_role("button", name="Sign in").click()
                expect(page.get_by_role("button", name="Sign out")).to_be_visible()
                _check(page, violations)  # the dashboard

                page.goto(f"/premises/{located.id}")
                expect(page.get_by_role("heading", level=1)).to_contain_text("Mapped Arms")
                _check(page, violations)

                page.goto("/map")
                expect(page.locator("#map .leaflet-marker-icon")).to_have_count(1)
                box = page.locator("#map .leaflet-marker-icon").bounding_box()
                assert box is not None and box["width"] > 0
                expect(page.locator("#map-status")).to_contain_text(
                    "The background map could not be loaded"
                )
                _check(page, violations)

                page.goto(f"/bundles/{bundle.id}")
                expect(page.get_by_role("heading", level=1)).to_contain_text("Evidence bundle")
                _check(page, violations)

                assert violations == []
                assert console == []
                assert errors == []
            except Exception:
                page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
                raise
            finally:
                context.close()
        finally:
            browser.close()
