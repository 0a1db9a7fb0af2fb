"""Screenshots for the README, taken in Debian's Chromium against the demo data.

`make screenshots` runs this. It builds a throwaway SQLite database with the real
migrations, loads the demo, serves the app on a free loopback port, signs in as the demo
users and saves PNGs under docs/screenshots/. Map tiles are switched off (no network is
assumed), so the map shows its markers on a plain background.
"""

from __future__ import annotations

import logging
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import Page, sync_playwright  # noqa: E402
from sqlalchemy import select  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

from licensing import create_app  # noqa: E402
from licensing.cli import upgrade_database  # noqa: E402
from licensing.db import get_session  # noqa: E402
from licensing.demo import DEMO_PASSWORD, load_demo  # noqa: E402
from licensing.evidence.models import Bundle  # noqa: E402
from licensing.premises.models import Premises  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
VIEWPORT = {"width": 1280, "height": 900}


def _sign_in(page: Page, email: str) -> None:
    page.goto("/sign-in")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password", exact=True).fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Sign out").wait_for()


def _shoot(page: Page, path: str, name: str, full_page: bool = True) -> None:
    page.goto(path)
    page.wait_for_load_state("networkidle")
    target = OUT / f"{name}.png"
    page.screenshot(path=str(target), full_page=full_page)
    print(f"wrote {target.relative_to(ROOT)}")


def main() -> None:
    """Build the demo, serve it, and take the screenshots."""
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="licensing-screenshots-") as work:
        url = f"sqlite:///{work}/demo.db"
        upgrade_database(url, "head")
        app = create_app(
            {
                "ENV_NAME": "development",
                "DATABASE_URL": url,
                "EVIDENCE_DIR": f"{work}/evidence",
                "MAP_TILE_URL": "http://127.0.0.1:9/{z}/{x}/{y}.png",  # no network assumed
            }
        )
        with app.app_context():
            session = get_session()
            load_demo(session)
            review = session.scalar(
                select(Premises).where(Premises.state == "review").order_by(Premises.id)
            )
            bundle = session.scalar(
                select(Bundle).where(Bundle.shared_at.is_not(None)).order_by(Bundle.id)
            )
            assert review is not None and bundle is not None
            premises_id, bundle_id = review.id, bundle.id
        # Quiet: the request log would bury the list of files written.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        base = f"http://127.0.0.1:{server.server_port}"
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
                )
                page = browser.new_context(base_url=base, viewport=VIEWPORT).new_page()
                _sign_in(page, "sergeant@police.example")
                _shoot(page, "/", "dashboard")
                _shoot(page, f"/premises/{premises_id}", "premises")
                _shoot(page, f"/bundles/{bundle_id}", "bundle")
                _shoot(page, "/map", "map", full_page=False)
                page.get_by_role("button", name="Sign out").click()
                council = _council_email(app, bundle_id)
                _sign_in(page, council)
                _shoot(page, "/", "council-dashboard")
                browser.close()
        finally:
            server.shutdown()
            thread.join(timeout=10)


def _council_email(app: object, bundle_id: int) -> str:
    from licensing.auth.models import User

    with app.app_context():  # type: ignore[attr-defined]
        session = get_session()
        bundle = session.get(Bundle, bundle_id)
        assert bundle is not None
        user = session.scalar(
            select(User).where(
                User.role == "council", User.authority_id == bundle.premises.authority_id
            )
        )
        assert user is not None
        return user.email


if __name__ == "__main__":
    main()
