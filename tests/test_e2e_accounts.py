"""The account pages in a real browser: axe-core finds nothing on the admin's user pages
(with a locked account, its events, and a form with errors) or on the too-many-attempts
page, and an admin unlocks an account with the mouse as a person would."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import expect, sync_playwright
from sqlalchemy.orm import Session

from licensing.auth.services import authenticate
from tests.e2e_support import browser_page, serve
from tests.test_e2e_accessibility import _axe_violations, _sign_in, _sign_out


@pytest.mark.e2e
def test_account_pages_pass_axe_and_an_admin_unlocks_an_account(
    app: Flask, session: Session, world: dict[str, Any]
) -> None:
    officer, admin = world["officer"], world["admin"]
    for _ in range(10):
        authenticate(session, officer.email, "not-the-password-at-all")
    app.config["SIGN_IN_LIMIT_PER_ACCOUNT"] = "1 per minute"
    failures: dict[str, Any] = {}
    with (
        serve(app) as base_url,
        sync_playwright() as playwright,
        browser_page(playwright, base_url) as page,
    ):
        _sign_in(page, admin.email)
        for path in ["/admin/users", "/admin/users/new", f"/admin/users/{admin.id}"]:
            page.goto(path)
            failures[path] = _axe_violations(page)

        page.goto("/admin/users/new")
        page.get_by_role("button", name="Create user").click()
        expect(page.get_by_role("heading", name="There is a problem")).to_be_visible()
        failures["/admin/users/new with errors"] = _axe_violations(page)

        page.goto("/admin/users")
        page.get_by_role("link", name=officer.name).click()
        expect(page.locator("#account-status")).to_contain_text("Locked")
        failures["locked account"] = _axe_violations(page)
        page.get_by_role("button", name="Unlock the account").click()
        expect(page.locator(".govuk-notification-banner")).to_contain_text("is unlocked")
        expect(page.locator("#account-status")).not_to_contain_text("Locked")
        expect(page.locator("#account-events")).to_contain_text("Unlocked")
        _sign_out(page)

        _sign_in(page, world["supervisor"].email)
        page.goto(f"/admin/users/{officer.id}")
        failures["supervisor's view"] = _axe_violations(page)
        _sign_out(page)

        # The sign-in above used the account's one attempt this minute: the next is 429.
        page.goto("/sign-in")
        page.get_by_label("Email address").fill(world["supervisor"].email)
        page.get_by_label("Password", exact=True).fill("whatever-it-is-now")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Too many attempts to sign in")).to_be_visible()
        failures["429"] = _axe_violations(page)

    failures = {page: found for page, found in failures.items() if found}
    assert not failures, json.dumps(failures, indent=2)
