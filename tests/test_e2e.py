"""One journey in a real browser: an officer finds a premises and warns it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import expect, sync_playwright

from tests.conftest import PASSWORD
from tests.e2e_support import browser_page, serve


@pytest.mark.e2e
def test_officer_finds_a_premises_and_warns_it(
    app: Flask, world: dict[str, Any], tmp_path: Path
) -> None:
    officer = world["officer"]
    reason = "Door staff saw repeated fights at closing time"
    with (
        serve(app) as base_url,
        sync_playwright() as playwright,
        browser_page(playwright, base_url) as page,
    ):
        try:
            page.goto("/premises")
            expect(page).to_have_url(re.compile(r"/sign-in"))  # anonymous: sent to sign in
            page.get_by_label("Email address").fill(officer.email)
            page.get_by_label("Password", exact=True).fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_role("heading", level=1, name="Premises")).to_be_visible()

            page.get_by_label("Name, licence number or postcode").fill("crown")
            page.get_by_role("button", name="Apply filters").click()
            expect(page.locator("#result-count")).to_have_text("1 premises match")
            expect(page.get_by_role("link", name="The Swan")).to_have_count(0)
            page.get_by_role("link", name="The Crown").click()

            expect(page.get_by_role("heading", level=1, name="The Crown")).to_be_visible()
            expect(page.locator("#premises-state")).to_have_text("Monitored")
            warn = page.locator("#event-warn")
            warn.locator("summary", has_text="Warn").click()
            warn.get_by_label("Reason", exact=True).fill(reason)
            warn.get_by_role("button", name="Warn").click()

            expect(page.locator("#premises-state")).to_have_text("Warned")
            expect(page.get_by_text("Warn: done. The premises is now warned.")).to_be_visible()
            entry = page.locator('#history-list li[data-event="warn"]')
            expect(entry).to_have_count(1)
            expect(entry).to_contain_text(reason)
            expect(entry).to_contain_text("Monitored → Warned")
            expect(entry).to_contain_text(officer.name)
        except Exception:
            page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
            raise
