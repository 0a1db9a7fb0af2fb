"""Evidence bundles in a real browser: an officer builds a bundle and leaves an item out;
a supervisor issues and shares it; the council user of the authority opens it, opens
the PDF, acknowledges receipt and comments; the supervisor sees all that in the access
log. A council user of another authority gets the 404 page for the same bundle."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import Page, expect, sync_playwright
from pypdf import PdfReader
from sqlalchemy.orm import Session

from licensing.evidence import services as bundles
from licensing.incidents.services import record_incident
from tests.conftest import PASSWORD
from tests.e2e_support import browser_page, serve

WITNESS = {
    "role": "witness",
    "name": "Janet Quayle",
    "phone": "07700 900123",
    "email": "janet.quayle@example.org",
}
SECRETS = ("Janet Quayle", "07700 900123", "janet.quayle@example.org")


def _sign_in(page: Page, email: str) -> None:
    page.goto("/sign-in")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def _sign_out(page: Page) -> None:
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)


def _incidents(session: Session, world: dict[str, Any]) -> list[Any]:
    """Two confirmed incidents at The Crown, each with the witness's name and phone."""
    found = []
    for number, days_ago in ((201, 5), (202, 3)):
        found.append(
            record_incident(
                session,
                world["officer"],
                {
                    "source": "rms",
                    "source_ref": f"RMS-2026-000{number}",
                    "occurred_at": (datetime.now(UTC) - timedelta(days=days_ago)).isoformat(),
                    "category": "Violence and sexual offences",
                    "description": "Assault at the door. Janet Quayle saw it; call her on "
                    "07700 900123.",
                    "location": "Outside the premises",
                    "personal_data": {"people": [WITNESS]},
                },
                premises=world["premises"],
            ).incident
        )
    return found


@pytest.mark.e2e
def test_a_bundle_is_built_issued_shared_acknowledged_and_logged(
    app: Flask, session: Session, world: dict[str, Any], tmp_path: Path
) -> None:
    premises = world["premises"]
    council = world["council"]
    first, second = _incidents(session, world)
    reason = "Duplicate of the RMS record already in the bundle"
    comment = "Received; listed for the sub-committee on 12 January."
    with (
        serve(app) as base_url,
        sync_playwright() as playwright,
        browser_page(playwright, base_url) as page,
    ):
        try:
            # The officer builds the bundle from the premises page (default period).
            _sign_in(page, world["officer"].email)
            page.goto(f"/premises/{premises.id}")
            page.get_by_role("link", name="Build an evidence bundle").click()
            expect(
                page.get_by_role("heading", level=1, name="Build an evidence bundle")
            ).to_be_visible()
            page.get_by_role("button", name="Build the bundle").click()

            expect(page.get_by_role("heading", level=1)).to_contain_text("Evidence bundle EB-")
            expect(page.locator("#bundle-status")).to_have_text("Draft")
            expect(
                page.get_by_text(re.compile(r"Bundle EB-\d+-\d+ v1 built: \d+ pages\."))
            ).to_be_visible()
            bundle_url = page.url
            bundle_id = int(bundle_url.rstrip("/").rsplit("/", 1)[1])
            row = page.locator(f'#bundle-items tr[data-item="incident-{second.id}"]')
            expect(row).to_contain_text("Yes")
            expect(
                page.locator(f'#bundle-items tr[data-item="incident-{first.id}"]')
            ).to_be_visible()

            # ... and leaves one incident out, with a reason, through the item page.
            row.get_by_role("link", name=re.compile("Leave out")).click()
            expect(page.get_by_role("heading", level=1)).to_contain_text("RMS-2026-000202")
            page.get_by_label("Why is this item left out?").fill(reason)
            page.get_by_role("button", name="Leave it out").click()
            expect(page).to_have_url(bundle_url)
            expect(page.get_by_text("Incident RMS-2026-000202 is left out")).to_be_visible()
            expect(row).to_contain_text(f"No: {reason}")
            expect(page.locator("#bundle-status")).to_have_text("Draft")
            # An officer cannot issue: that is for a supervisor.
            expect(page.get_by_role("button", name="Issue this bundle")).to_have_count(0)
            _sign_out(page)

            # The supervisor issues it, then shares it with the licensing authority.
            _sign_in(page, world["supervisor"].email)
            page.goto(f"/premises/{premises.id}")
            page.locator("#premises-bundles").get_by_role("link").first.click()
            expect(page).to_have_url(bundle_url)
            page.get_by_role("button", name="Issue this bundle").click()
            expect(page.locator("#bundle-status")).to_have_text("Issued")
            expect(page.get_by_text("It can no longer change.")).to_be_visible()
            page.get_by_role("button", name="Share with the licensing authority").click()
            expect(page.locator("#bundle-shared")).to_have_text("Shared")
            expect(page.get_by_text(f"Shared with {premises.authority.name}")).to_be_visible()
            expect(
                page.get_by_role("button", name="Share with the licensing authority")
            ).to_have_count(0)
            _sign_out(page)

            # The council user finds it under "Bundles shared with you" and opens it.
            _sign_in(page, council.email)
            page.get_by_role("navigation", name="Menu").get_by_role(
                "link", name="Bundles shared with you"
            ).click()
            expect(
                page.get_by_role("heading", level=1, name="Bundles shared with you")
            ).to_be_visible()
            table = page.locator("#bundles-table")
            expect(table).to_contain_text(premises.name)
            table.get_by_role("link", name=re.compile(r"^EB-")).click()
            expect(page).to_have_url(bundle_url)
            expect(page.locator("#bundle-status")).to_have_text("Issued")
            # Only the shared copy; no items list, and no access log for the council.
            expect(page.locator("#open-police-pdf")).to_have_count(0)
            expect(page.locator("#bundle-items")).to_have_count(0)
            expect(page.locator("#accesses")).to_have_count(0)
            html = page.content()
            for secret in SECRETS:
                assert secret not in html, secret

            # The PDF link serves the redacted PDF (headless Chromium may not render it).
            href = page.locator("#open-shared-pdf").get_attribute("href")
            assert href is not None
            response = page.request.get(href)
            assert response.status == 200
            assert response.headers["content-type"] == "application/pdf"
            body = response.body()
            assert body.startswith(b"%PDF-")
            text = " ".join(
                " ".join(p.extract_text() or "" for p in PdfReader(io.BytesIO(body)).pages).split()
            )
            assert "RMS-2026-000201" in text and "Witness 1" in text
            assert "RMS-2026-000202" not in text  # left out: only on the police schedule
            for secret in SECRETS:
                assert secret not in text, secret
            police = page.request.get(f"/bundles/{bundle_id}/pdf?copy=police")
            assert police.status == 404

            page.get_by_role("button", name="Acknowledge receipt").click()
            expect(
                page.get_by_text("Receipt acknowledged. The police can see that you have it.")
            ).to_be_visible()
            expect(page.locator("#bundle-acknowledged")).to_be_visible()
            expect(page.get_by_role("button", name="Acknowledge receipt")).to_have_count(0)

            page.get_by_label("Add a comment").fill(comment)
            page.get_by_role("button", name="Add comment").click()
            expect(page.get_by_text("Comment added.")).to_be_visible()
            expect(page.locator(".govuk-inset-text", has_text=comment)).to_contain_text(
                council.name
            )
            html = page.content()
            for secret in SECRETS:
                assert secret not in html, secret
            _sign_out(page)

            # The supervisor sees the council's access, acknowledgement and comment.
            _sign_in(page, world["supervisor"].email)
            page.goto(bundle_url)
            accesses = page.locator("#accesses")
            acknowledged = accesses.locator("tr", has_text="Acknowledged receipt")
            expect(acknowledged).to_have_count(1)
            expect(acknowledged).to_contain_text(council.name)
            expect(acknowledged).to_contain_text(premises.authority.name)
            theirs = accesses.locator("tr", has_text=council.name)
            expect(theirs.filter(has_text="Downloaded the PDF")).to_have_count(1)
            expect(theirs.filter(has_text="Viewed the bundle page").first).to_be_visible()
            expect(page.locator(".govuk-inset-text", has_text=comment)).to_contain_text(
                council.name
            )
            expect(page.locator("#bundle-facts")).to_contain_text(f"by {council.name}")
        except Exception:
            page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
            raise


@pytest.mark.e2e
def test_a_council_user_of_another_authority_gets_the_404_page(
    app: Flask, session: Session, world: dict[str, Any], tmp_path: Path
) -> None:
    premises, supervisor = world["premises"], world["supervisor"]
    _incidents(session, world)
    bundle = bundles.create_bundle(session, supervisor, premises)
    bundles.issue_bundle(session, supervisor, bundle, bundle.lock_version)
    bundles.share_bundle(session, supervisor, bundle)
    with (
        serve(app) as base_url,
        sync_playwright() as playwright,
        browser_page(playwright, base_url) as page,
    ):
        try:
            _sign_in(page, world["other_council"].email)
            response = page.goto(f"/bundles/{bundle.id}")
            assert response is not None and response.status == 404
            expect(page.get_by_role("heading", level=1)).to_have_text("Bundle not found")
            expect(page.get_by_text("If you typed the web address")).to_be_visible()
            for secret in (*SECRETS, premises.name, bundle.reference):
                assert secret not in page.content(), secret
            assert page.request.get(f"/bundles/{bundle.id}/pdf").status == 404
            page.goto("/bundles")
            expect(page.locator("#no-bundles")).to_have_text(
                "No bundles have been shared with you yet."
            )
        except Exception:
            page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
            raise
