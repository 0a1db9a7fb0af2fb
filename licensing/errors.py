"""Domain errors raised by services and mapped to HTTP answers in one place."""

from __future__ import annotations


class DomainError(Exception):
    """Base of the errors a service raises for the caller to show."""

    code = "error"
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(DomainError):
    """The object does not exist, or the user may not know that it does."""

    code = "not_found"
    status = 404


class Forbidden(DomainError):
    """The user's role may not do this."""

    code = "forbidden"
    status = 403


class Conflict(DomainError):
    """Someone else changed the record since the user last saw it."""

    code = "conflict"
    status = 409


class Refused(DomainError):
    """The request is understood but a rule refuses it (a guard, a missing field)."""

    code = "refused"
    status = 422


class ValidationFailed(DomainError):
    """The input is malformed; `errors` maps field names to messages."""

    code = "invalid"
    status = 422

    def __init__(self, message: str, errors: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or {}
