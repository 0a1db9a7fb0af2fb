"""Support for the browser tests: serve the test app on a real port, launch Chromium.

The app is the conftest `app` fixture, so the browser sees the test's own database.
Chromium is the system one (/usr/bin/chromium, installed by CI); Playwright's own
browser download is never used. A missing browser fails the test: it is never skipped.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from flask import Flask
from werkzeug.serving import make_server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@contextmanager
def serve(app: Flask) -> Iterator[str]:
    """Serve `app` on 127.0.0.1 on a free port in a daemon thread; yield its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="e2e-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def chromium_path() -> str:
    """The system Chromium, or a test failure that says how to get it."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"The end-to-end test needs Chromium at {CHROMIUM} (on Debian/Ubuntu: "
            "apt-get install chromium). It is not skipped: CI installs it.",
            pytrace=False,
        )
    return CHROMIUM


@contextmanager
def browser_page(playwright, base_url: str):  # type: ignore[no-untyped-def]
    """A fresh headless Chromium page whose relative URLs go to `base_url`.

    It bypasses the Content Security Policy so that tests may inject their own scripts
    (axe-core); tests/test_e2e_csp.py browses under the policy itself."""
    browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
    try:
        context = browser.new_context(base_url=base_url, bypass_csp=True)
        page = context.new_page()
        yield page
        context.close()
    finally:
        browser.close()
