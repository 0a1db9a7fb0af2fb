"""JSON API for police systems: bearer tokens, JSON errors, keyset pagination."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Blueprint, Response, current_app, g, jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import HTTPException

from licensing.auth.matrix import require_declared_action
from licensing.auth.models import API_SCOPES, User
from licensing.auth.services import live_token
from licensing.db import MAX_ROW_ID, get_session
from licensing.errors import DomainError, ValidationFailed

api_bp = Blueprint("api", __name__, url_prefix="/api/v1")


def error_response(status: int, code: str, message: str, **extra: object) -> tuple[Response, int]:
    """The API's one error shape: {"error": CODE, "message": TEXT} (plus `fields` for
    validation errors: field name to message)."""
    body: dict[str, object] = {"error": code, "message": message}
    body.update(extra)
    return jsonify(body), status


REALM = 'Bearer realm="licensing"'
_SCOPE_ATTRIBUTE = "required_scope"

View = TypeVar("View", bound=Callable[..., Any])


def requires_scope(scope: str) -> Callable[[View], View]:
    """Declare the token scope an API view needs (`read`, `ingest` or `workflow`).

    Every API view must declare one: `require_token` refuses a view that does not, and
    tests/test_api_tokens.py fails on it. The view is returned unchanged, so the
    decorator may sit above or below the route decorator."""
    if scope not in API_SCOPES:
        raise ValueError(f"Unknown scope {scope!r}: scopes are {', '.join(API_SCOPES)}")

    def declare(view: View) -> View:
        setattr(view, _SCOPE_ATTRIBUTE, scope)
        return view

    return declare


def required_scope(endpoint: str | None) -> str | None:
    """The scope an endpoint declared, or None when it declared none."""
    view = current_app.view_functions.get(endpoint or "")
    scope = getattr(view, _SCOPE_ATTRIBUTE, None)
    return scope if scope in API_SCOPES else None


@api_bp.before_request
def require_token() -> ResponseReturnValue | None:
    """Every API route needs a live bearer token carrying the scope the route declares;
    the session cookie is never accepted. Scopes only narrow: the authorisation matrix
    still decides what the token's user's role may do (deny by default here, then each
    view's `permits`)."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    presented = scheme.lower() == "bearer" and bool(token.strip())
    record = live_token(get_session(), token.strip()) if presented else None
    if record is None:
        response, status = error_response(401, "unauthorised", "A valid bearer token is required")
        # RFC 6750: no error code when no token was sent; invalid_token when one was
        # (unknown, expired and revoked alike, so nothing tells them apart).
        response.headers["WWW-Authenticate"] = (
            f'{REALM}, error="invalid_token"' if presented else REALM
        )
        return response, status
    scope = required_scope(request.endpoint)
    if scope is None:  # deny by default: a view that declares no scope serves no one
        current_app.logger.error("API endpoint %s declares no token scope", request.endpoint)
        return _insufficient_scope(None)
    if scope not in record.scope_set:
        return _insufficient_scope(scope)
    require_declared_action(request.endpoint, record.user)
    g.api_user = record.user
    g.api_token = record
    return None


# Ids in bodies and query strings are checked against this; ids in paths never reach a
# view beyond it (the app's `int` route converter is bounded by the same number).
MAX_ID = MAX_ROW_ID


def _insufficient_scope(scope: str | None) -> ResponseReturnValue:
    if scope is None:
        response, status = error_response(
            403, "insufficient_scope", "This operation is not available to any token"
        )
        response.headers["WWW-Authenticate"] = f'{REALM}, error="insufficient_scope"'
        return response, status
    response, status = error_response(
        403,
        "insufficient_scope",
        f"This token does not carry the {scope} scope this operation needs",
        scope=scope,
    )
    response.headers["WWW-Authenticate"] = f'{REALM}, error="insufficient_scope", scope="{scope}"'
    return response, status


def api_user() -> User:
    """The user the request's bearer token belongs to."""
    user: User = g.api_user
    return user


@api_bp.errorhandler(DomainError)
def _domain_error(error: DomainError) -> ResponseReturnValue:
    get_session().rollback()
    extra = {"fields": error.errors} if isinstance(error, ValidationFailed) and error.errors else {}
    return error_response(error.status, error.code, error.message, **extra)


@api_bp.errorhandler(IntegrityError)
def _race(_error: IntegrityError) -> ResponseReturnValue:
    # Two requests stored the same thing at the same instant (a police system retrying
    # while its first attempt was still running): this one stored nothing, and a retry
    # now finds what the other stored.
    get_session().rollback()
    return error_response(
        409,
        "conflict",
        "Another request stored the same record at the same moment; nothing from this "
        "request was stored. Retry: it is safe.",
    )


@api_bp.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> ResponseReturnValue:
    code = (error.name or "error").lower().replace(" ", "_")
    return error_response(error.code or 500, code, error.description or error.name)


from licensing.api import bundles, deadlines, incidents, views  # noqa: E402,F401  (registers the routes)
