"""Who may see which premises, and the older role decorator: thin wrappers over the
authorisation matrix in licensing/auth/matrix.py, which is the one table of who may do
what.

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
from sqlalchemy import ColumnElement, and_, false, true

from licensing.auth.matrix import (
    COUNCIL_VISIBLE_STATES,
    Action,
    Scope,
    allowed,
    grant_for,
    refusal_status,
)
from licensing.auth.models import Role, User
from licensing.premises.models import Premises

__all__ = [
    "COUNCIL_VISIBLE_STATES",
    "can_see_premises",
    "premises_scope",
    "premises_visibility",
    "premises_visible_to",
    "refusal_status",
    "roles_required",
]

F = TypeVar("F", bound=Callable[..., Any])


def premises_visible_to(user: User) -> ColumnElement[bool]:
    """A WHERE clause selecting the premises `user` may see (the matrix's
    `view_premises`): all of them for a force-wide grant, their own authority's under
    review or in action for a council user, none without a grant."""
    return premises_visibility(premises_scope(user), user.authority_id)


def premises_scope(user: User) -> Scope | None:
    """The scope of the user's `view_premises` grant (None: no grant)."""
    grant = grant_for(user, Action.VIEW_PREMISES)
    return grant.scope if grant is not None else None


def premises_visibility(scope: Scope | None, authority_id: Any) -> ColumnElement[bool]:
    """`premises_visible_to`'s clause for a grant's scope and the viewer's authority:
    `authority_id` is a value, or a bound parameter in a statement built once for every
    viewer whose grant has that scope."""
    if scope is None:
        return false()
    if scope is Scope.ANY:
        return true()
    # Table columns: the clause serves ORM queries and the lists' Core statements alike.
    premises = Premises.__table__.c
    return and_(
        premises.authority_id == authority_id,
        premises.state.in_(COUNCIL_VISIBLE_STATES),
    )


def can_see_premises(user: User, premises: Premises) -> bool:
    """The same rule as `premises_visible_to`, for one loaded premises."""
    if not allowed(user, Action.VIEW_PREMISES, premises.authority_id):
        return False
    grant = grant_for(user, Action.VIEW_PREMISES)
    return grant is not None and (
        grant.scope is Scope.ANY or premises.state in COUNCIL_VISIBLE_STATES
    )


def roles_required(*roles: Role) -> Callable[[F], F]:
    """Allow a view only to the given roles; others get 403 (council users 404).

    Superseded by `licensing.auth.matrix.permits`, which declares an action of the
    matrix instead of a list of roles; kept while the views in licensing/auth/ move over.
    """
    allowed_roles = frozenset(roles)

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            user = cast(User, current_user)
            if not user.is_authenticated:
                abort(401)
            if user.role not in allowed_roles:
                abort(refusal_status(user))
            return view(*args, **kwargs)

        wrapped.allowed_roles = allowed_roles  # type: ignore[attr-defined]
        return cast(F, wrapped)

    return decorator
