"""Security headers on every response: pages, API, static files, errors and redirects.

The Content Security Policy allows no inline script or style. The one inline script
the GOV.UK template has (it sets the `js-enabled` class on <body>) carries a nonce made
fresh for each request and passed to the template as `cspNonce`. Headers a view set
itself are left alone (an attachment download keeps its own, stricter, sandbox policy).
"""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from flask import Flask, Response, g

_NONCE_BYTES = 16


def csp_nonce() -> str:
    """This request's CSP nonce (made on first use, then the same for the request)."""
    nonce: str | None = g.get("csp_nonce")
    if nonce is None:
        nonce = g.csp_nonce = secrets.token_urlsafe(_NONCE_BYTES)
    return nonce


def tile_origin(tile_url: object) -> str | None:
    """The scheme and host (with port) of a Leaflet tile URL template, or None.

    `{s}` subdomains become a wildcard: `https://{s}.tile.example/{z}/{x}/{y}.png` gives
    `https://*.tile.example`."""
    if not tile_url or not isinstance(tile_url, str):
        return None
    parts = urlsplit(tile_url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    host = parts.netloc.rsplit("@", 1)[-1]  # never credentials in a policy
    host = host.replace("{s}", "*")
    if any(c in host for c in "{} ;,'\""):
        return None
    return f"{parts.scheme}://{host}"


def content_security_policy(nonce: str, tile_url: object = None) -> str:
    """The policy for a response whose inline script (if any) carries `nonce`."""
    img = ["'self'", "data:"]
    origin = tile_origin(tile_url)
    if origin:
        img.append(origin)
    directives = {
        "default-src": "'self'",
        "script-src": f"'self' 'nonce-{nonce}'",
        "style-src": "'self'",
        "img-src": " ".join(img),
        "connect-src": "'self'",
        "font-src": "'self'",
        "object-src": "'none'",
        "base-uri": "'self'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
    }
    return "; ".join(f"{name} {value}" for name, value in directives.items())


STATIC_HEADERS: dict[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "X-Frame-Options": "DENY",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def init_app(app: Flask) -> None:
    """Give templates `cspNonce` and add the security headers to every response."""

    @app.context_processor
    def _nonce() -> dict[str, str]:
        return {"cspNonce": csp_nonce()}

    @app.after_request
    def _security_headers(response: Response) -> Response:
        headers = response.headers
        if "Content-Security-Policy" not in headers:  # a view's own policy is stricter
            headers["Content-Security-Policy"] = content_security_policy(
                csp_nonce(), app.config.get("MAP_TILE_URL")
            )
        for name, value in STATIC_HEADERS.items():
            headers.setdefault(name, value)
        hsts = int(app.config.get("HSTS_SECONDS") or 0)
        if hsts > 0:
            headers.setdefault("Strict-Transport-Security", f"max-age={hsts}")
        return response
