"""JSON API for police systems: bearer tokens, JSON errors, keyset pagination."""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import HTTPException

from licensing.auth.models import User
from licensing.auth.services import user_for_token
from licensing.db import get_session
from licensing.errors import DomainError, ValidationFailed

api_bp = Blueprint("api", __name__, url_prefix="/api/v1")


def error_response(status: int, code: str, message: str, **extra: object) -> tuple[Response, int]:
    """The API's one error shape: {"error": CODE, "message": TEXT} (plus `fields` for
    validation errors: field name to message)."""
    body: dict[str, object] = {"error": code, "message": message}
    body.update(extra)
    return jsonify(body), status


@api_bp.before_request
def require_token() -> ResponseReturnValue | None:
    """Every API route needs a live bearer token; the session cookie is never accepted."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    user = user_for_token(get_session(), token.strip()) if scheme.lower() == "bearer" else None
    if user is None:
        response, status = error_response(401, "unauthorised", "A valid bearer token is required")
        response.headers["WWW-Authenticate"] = 'Bearer realm="licensing"'
        return response, status
    g.api_user = user
    return None


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
