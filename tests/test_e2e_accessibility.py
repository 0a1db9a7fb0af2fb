"""Accessibility in a real browser: axe-core on every page reachable from the navigation
(and the detail pages they lead to), for each role, with zero violations of WCAG 2.2 A/AA;
and the main flow done with the keyboard alone.

axe-core comes from the npm registry at set-up (package.json), like GOV.UK Frontend.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import Page, expect, sync_playwright
from sqlalchemy.orm import Session

from licensing.evidence import services as bundles
from licensing.incidents.services import record_incident
from licensing.visits import services as visit_services
from tests.conftest import PASSWORD, move
from tests.e2e_support import browser_page, serve

AXE = Path(__file__).resolve().parent.parent / "node_modules" / "axe-core" / "axe.min.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]
# Structure the issue asks for beyond the WCAG-tagged rules: headings in order, one h1,
# one main landmark, content inside landmarks, a working skip link.
STRUCTURE_RULES = [
    "heading-order",
    "page-has-heading-one",
    "landmark-one-main",
    "region",
    "skip-link",
]


def _axe_violations(page: Page) -> list[dict[str, Any]]:
    if not AXE.is_file():
        pytest.fail("axe-core is missing: run `make setup` (npm ci installs it)", pytrace=False)
    page.add_script_tag(path=str(AXE))
    found = []
    for kind, values in (("tag", WCAG_TAGS), ("rule", STRUCTURE_RULES)):
        found += page.evaluate(
            "async ([kind, values]) => (await axe.run(document, {runOnly: {type: kind, values}}))"
            ".violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
            " nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))",
            [kind, values],
        )
    return found


def _sign_in(page: Page, email: str) -> None:
    page.goto("/sign-in")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def _sign_out(page: Page) -> None:
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("Email address")).to_be_visible()


@pytest.fixture
def populated(session: Session, world: dict[str, Any], make_premises: Any) -> dict[str, Any]:
    """Premises in every state, an incident with a suggestion, a completed visit and a
    shared bundle: so that every page has something on it."""
    officer, supervisor = world["officer"], world["supervisor"]
    crown = world["premises"]
    move(session, crown, officer, "warn", reason="Violence at closing time")
    move(session, crown, supervisor, "apply_for_review", application_date=_days_ago(2))
    bundle = bundles.latest_issued_bundle(session, crown.id)
    assert bundle is not None
    bundles.share_bundle(session, supervisor, bundle)
    warned = make_premises(world["liv"], officer, name="The Anchor")
    move(session, warned, officer, "warn", reason="Drugs found in the toilets")
    incident = record_incident(
        session,
        officer,
        {
            "source": "rms",
            "source_ref": "RMS-A11Y-1",
            "occurred_at": (datetime.now(UTC) - timedelta(days=1)).isoformat(),
            "category": "Public order",
            "description": "Disorder outside",
            "latitude": 53.4,
            "longitude": -2.98,
        },
        premises=warned,
    ).incident
    visit = visit_services.schedule_visit(
        session,
        officer,
        warned,
        scheduled_at=datetime.now(UTC) + timedelta(days=2),
        visit_type="routine",
        officer_id=officer.id,
    )
    return world | {"bundle": bundle, "incident": incident, "visit": visit, "warned": warned}


def _days_ago(days: int) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).date().isoformat()


def _pages_for(page: Page, extra: list[str]) -> list[str]:
    """Every page the navigation links to, then the extra detail pages."""
    hrefs = page.eval_on_selector_all(
        ".govuk-service-navigation a.govuk-service-navigation__link",
        "links => links.map(a => a.getAttribute('href'))",
    )
    seen: list[str] = []
    for href in [*hrefs, *extra]:
        if href and href.startswith("/") and href not in seen:
            seen.append(href)
    return seen


@pytest.mark.e2e
def test_every_page_passes_axe_for_every_role(
    app: Flask, populated: dict[str, Any], tmp_path: Path
) -> None:
    crown, warned = populated["premises"], populated["warned"]
    bundle, incident, visit = populated["bundle"], populated["incident"], populated["visit"]
    police_pages = [
        "/",
        f"/premises/{crown.id}",
        f"/premises/{warned.id}",
        f"/premises/{warned.id}/timeline",
        f"/premises/{warned.id}/visits/new",
        f"/premises/{crown.id}/bundles/new",
        f"/bundles/{bundle.id}",
        f"/incidents/{incident.id}",
        f"/visits/{visit.id}",
        "/premises/new",
        "/incidents/new",
        "/account/alerts",
    ]
    per_role = {
        "officer": police_pages,
        "supervisor": police_pages,
        "council": ["/", f"/premises/{crown.id}", f"/bundles/{bundle.id}"],
        "admin": ["/", "/admin/outbox"],
    }
    failures: dict[str, list[dict[str, Any]]] = {}
    visited = 0
    with (
        serve(app) as base_url,
        sync_playwright() as playwright,
        browser_page(playwright, base_url) as page,
    ):
        page.goto("/sign-in")
        signed_out = _axe_violations(page)
        if signed_out:
            failures["/sign-in"] = signed_out
        for role, extra in per_role.items():
            _sign_in(page, populated[role].email)
            for path in _pages_for(page, extra):
                response = page.goto(path)
                assert response is not None and response.status == 200, (role, path)
                visited += 1
                violations = _axe_violations(page)
                if violations:
                    failures[f"{role} {path}"] = violations
            _sign_out(page)
    assert visited >= 30
    assert not failures, json.dumps(failures, indent=2)


@pytest.mark.e2e
def test_axe_finds_what_it_should(app: Flask, populated: dict[str, Any]) -> None:
    """The check itself can fail: an image without alternative text and an unlabelled
    input added to a real page are reported."""
    with (
        serve(app) as base_url,
        sync_playwright() as playwright,
        browser_page(playwright, base_url) as page,
    ):
        page.goto("/sign-in")
        page.evaluate(
            "() => { const main = document.querySelector('main');"
            " main.insertAdjacentHTML('beforeend', '<img src=\"/x.png\"><input type=\"text\">'); }"
        )
        page.evaluate(
            "() => document.querySelector('main').insertAdjacentHTML('beforeend', '<h4>Skipped</h4>')"
        )
        found = {violation["id"] for violation in _axe_violations(page)}
        assert {"image-alt", "label", "heading-order"} <= found, found


@pytest.mark.e2e
def test_a_form_with_errors_passes_axe_and_its_summary_links_to_the_fields(
    app: Flask, populated: dict[str, Any]
) -> None:
    with (
        serve(app) as base_url,
        sync_playwright() as playwright,
        browser_page(playwright, base_url) as page,
    ):
        _sign_in(page, populated["officer"].email)
        page.goto("/premises/new")
        page.get_by_role("button", name="Add premises").click()
        summary = page.locator(".govuk-error-summary")
        expect(summary).to_be_visible()
        expect(page).to_have_title(re.compile(r"^Error: "))
        links = summary.locator("a")
        assert links.count() >= 1
        for i in range(links.count()):
            target = links.nth(i).get_attribute("href") or ""
            assert target.startswith("#") and page.locator(target).count() == 1, target
        assert _axe_violations(page) == []


def _tab_to(page: Page, describe: str, matches: str, limit: int = 150) -> None:
    """Press Tab until the focused element satisfies the JS predicate `matches` (given
    the element `el`); fail naming `describe` if it is never reached."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"() => {{ const el = document.activeElement; return !!({matches}); }}"):
            return
    pytest.fail(f"could not reach {describe} with the Tab key")


@pytest.mark.e2e
def test_the_main_flow_by_keyboard_alone(app: Flask, populated: dict[str, Any]) -> None:
    """Sign in, skip to the content, open the register, open a premises and warn it:
    only Tab, typing, Space and Enter."""
    officer = populated["officer"]
    fresh = populated["premises"]  # under review: pick the monitored one instead
    del fresh
    with (
        serve(app) as base_url,
        sync_playwright() as playwright,
        browser_page(playwright, base_url) as page,
    ):
        page.goto("/sign-in")
        _tab_to(page, "the skip link", "el.classList.contains('govuk-skip-link')")
        page.keyboard.press("Enter")
        _tab_to(page, "the email field", "el.id === 'email'")
        page.keyboard.type(officer.email)
        _tab_to(page, "the password field", "el.id === 'password'")
        page.keyboard.type(PASSWORD)
        page.keyboard.press("Enter")
        expect(page.get_by_role("button", name="Sign out")).to_be_visible()

        _tab_to(page, "Premises in the navigation", "el.textContent.trim() === 'Premises'")
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", level=1, name="Premises")).to_be_visible()
        _tab_to(page, "The Swan's link", "el.textContent.trim() === 'The Swan'")
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", level=1, name="The Swan")).to_be_visible()

        _tab_to(
            page, "the Warn form", "el.tagName === 'SUMMARY' && el.textContent.includes('Warn')"
        )
        page.keyboard.press("Enter")
        _tab_to(page, "the reason box", "el.tagName === 'TEXTAREA' && el.id.startsWith('warn-')")
        page.keyboard.type("Door staff assaulted; warning letter sent")
        _tab_to(
            page, "the Warn button", "el.tagName === 'BUTTON' && el.textContent.trim() === 'Warn'"
        )
        page.keyboard.press("Enter")
        expect(page.locator("#premises-state")).to_contain_text("Warned")
        # Focus is visible where the keyboard is: GOV.UK's focus style is a yellow outline
        # or background, so the focused element's computed style is not the plain one.
        _tab_to(page, "any link", "el.tagName === 'A'")
        focused = page.evaluate(
            "() => { const s = getComputedStyle(document.activeElement);"
            " return [s.outlineStyle, s.backgroundColor, s.boxShadow]; }"
        )
        assert (
            focused[0] != "none"
            or focused[1] not in ("rgba(0, 0, 0, 0)", "")
            or focused[2] != "none"
        )
