"""Sign-in throttling with Flask-Limiter: per account and per client address.

Two limits guard `POST /sign-in`:

- per account (SIGN_IN_LIMIT_PER_ACCOUNT): every attempt naming one email address counts,
  whoever makes it, so guessing one account's password is slow from any number of
  addresses;
- per client address (SIGN_IN_LIMIT_PER_ADDRESS): failed sign-ins from one address
  count, so trying one password against many accounts (spraying) is slow too. Successes
  do not count: a station's officers may all sign in from one address.

The counts live in RATELIMIT_STORAGE_URI: `memory://` is one process; with a Redis URL
every web node shares them. If Redis stops answering, each node falls back to counting
in its own memory rather than refusing everyone or letting every guess through.

Each app has its own Limiter (the test suite runs many apps in one process, and two of
them must be able to stand for two nodes). A throttled request gets 429 with a page
saying when to try again, and a Retry-After header.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import cast

from flask import Flask, current_app, g, render_template, request
from flask.typing import ResponseReturnValue
from flask.wrappers import Response
from flask_limiter import Limiter, RequestLimit
from flask_limiter.errors import RateLimitExceeded

from licensing.auth.services import normalise_email

SIGN_IN_ENDPOINT = "auth.login"
EXTENSION = "sign_in_limiter"
_RETRY_AT = "sign_in_retry_at"


def client_address() -> str:
    """The address the request came from (behind a proxy, configure ProxyFix so this is
    the client's, not the proxy's)."""
    return request.remote_addr or "unknown"


def account_key() -> str:
    """The key of the account a sign-in names: a digest of the normalised email, so the
    store (and Flask-Limiter's log lines) never hold an email address."""
    email = normalise_email(request.form.get("email", ""))
    return "account-" + hashlib.sha256(email.encode("utf-8")).hexdigest()[:32]


def _account_limit() -> str:
    return str(current_app.config["SIGN_IN_LIMIT_PER_ACCOUNT"])


def _address_limit() -> str:
    return str(current_app.config["SIGN_IN_LIMIT_PER_ADDRESS"])


def _failed_sign_in(response: Response) -> bool:
    # A failed sign-in shows the form again (200); a success redirects.
    return response.status_code == 200


def _note_retry_time(limit: RequestLimit) -> None:
    # Called by Flask-Limiter when a limit is exceeded: keep when a try is allowed again
    # (the exact time, not RequestLimit.reset_at, which rounds up a second).
    g.setdefault(_RETRY_AT, float(limit.window.reset_time))


def init_app(app: Flask) -> Limiter:
    """Give `app` its own limiter and throttle its sign-in view. Call after the auth
    blueprint is registered."""
    limiter = Limiter(
        key_func=client_address,
        storage_uri=str(app.config.get("RATELIMIT_STORAGE_URI") or "memory://"),
        strategy="moving-window",  # exact counts: no double burst at a window's edge
        key_prefix=str(app.config.get("RATELIMIT_KEY_PREFIX") or "licensing"),
        in_memory_fallback_enabled=True,
        headers_enabled=False,
        on_breach=_note_retry_time,
    )
    limiter.init_app(app)
    per_account = limiter.limit(
        _account_limit, key_func=account_key, methods=["POST"], scope="account"
    )
    per_address = limiter.limit(
        _address_limit,
        key_func=client_address,
        methods=["POST"],
        scope="address",
        deduct_when=_failed_sign_in,
    )
    sign_in = cast(Callable[..., ResponseReturnValue], app.view_functions[SIGN_IN_ENDPOINT])
    app.view_functions[SIGN_IN_ENDPOINT] = per_address(per_account(sign_in))
    app.extensions[EXTENSION] = limiter
    app.register_error_handler(RateLimitExceeded, too_many_attempts)
    return limiter


def too_many_attempts(error: RateLimitExceeded) -> ResponseReturnValue:
    """429: the sign-in page's own answer to too many attempts, saying when to try again
    (the same whichever limit it was, so it says nothing about the account)."""
    if request.endpoint != SIGN_IN_ENDPOINT:  # a limit elsewhere keeps its plain 429
        return error
    retry_at = float(g.get(_RETRY_AT) or time.time() + 60)
    seconds = max(1, math.ceil(retry_at - time.time()))
    response = current_app.make_response(
        (
            render_template(
                "errors/429.html",
                retry_at=datetime.fromtimestamp(retry_at, UTC),
                minutes=math.ceil(seconds / 60),
            ),
            429,
        )
    )
    response.headers["Retry-After"] = str(seconds)
    return response
