"""Who may see and do what. The council rule lives here and nowhere else.

The council rule: a council user sees, read-only, the premises of their own authority
that are in `review` or `action`; everything else answers 404 to them, so they cannot
even learn that it exists.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import abort
from flask_login import current_user
from sqlalchemy import ColumnElement, and_, true

from licensing.auth.models import Role, User
from licensing.premises.models import Premises

COUNCIL_VISIBLE_STATES = ("review", "action")

F = TypeVar("F", bound=Callable[..., Any])


def premises_visible_to(user: User) -> ColumnElement[bool]:
    """A WHERE clause selecting the premises `user` may see."""
    if user.role == Role.COUNCIL:
        return and_(
            Premises.authority_id == user.authority_id,
            Premises.state.in_(COUNCIL_VISIBLE_STATES),
        )
    return true()


def can_see_premises(user: User, premises: Premises) -> bool:
    """The same rule as `premises_visible_to`, for one loaded premises."""
    if user.role == Role.COUNCIL:
        return (
            premises.authority_id == user.authority_id and premises.state in COUNCIL_VISIBLE_STATES
        )
    return True


def refusal_status(user: User) -> int:
    """404 for council users (they must not learn what exists), 403 for everyone else."""
    return 404 if user.role == Role.COUNCIL else 403


def roles_required(*roles: Role) -> Callable[[F], F]:
    """Allow a view only to the given roles; others get 403 (council users 404)."""
    allowed = frozenset(roles)

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            user = cast(User, current_user)
            if not user.is_authenticated:
                abort(401)
            if user.role not in allowed:
                abort(refusal_status(user))
            return view(*args, **kwargs)

        wrapped.allowed_roles = allowed  # type: ignore[attr-defined]
        return cast(F, wrapped)

    return decorator
