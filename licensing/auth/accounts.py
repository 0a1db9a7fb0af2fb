"""Account administration: the list of users, disabling and enabling, changing a role,
unlocking, and each account's events from the audit trail.

Only an active admin changes an account, and never their own: an admin cannot lock
themselves out, and so an active admin always remains (the last one cannot be removed).
Every change is an event on the system audit chain naming who made it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import false, func, or_, select, update
from sqlalchemy.orm import Session

from licensing.audit.models import SYSTEM_CHAIN, AuditEvent
from licensing.audit.services import append_event
from licensing.auth.models import Role, User
from licensing.auth.services import authority_for_role, create_user
from licensing.errors import Conflict, Forbidden, NotFound, Refused, ValidationFailed
from licensing.premises.models import LicensingAuthority

ACCOUNT_EVENT_LABELS = {
    "user_created": "Account created",
    "signed_in": "Signed in",
    "sign_in_failed": "Sign-in failed",
    "signed_out": "Signed out",
    "account_locked": "Locked after failed sign-ins",
    "account_unlocked": "Unlocked",
    "user_disabled": "Disabled",
    "user_enabled": "Enabled",
    "role_changed": "Role changed",
    "api_token_created": "API token created",
    "api_token_revoked": "API token revoked",
    "password_reset.requested": "Password reset link sent",
    "password_reset.completed": "Password reset",
    "password.changed": "Password changed",
    "oidc_sign_in.succeeded": "Signed in through single sign-on",
    "oidc_sign_in.failed": "Single sign-on refused",
}
"""How the account page names the events it lists; others show their own name."""

FAILURE_REASONS = {
    "unknown_account": "no account with that email",
    "wrong_password": "wrong password",
    "locked": "account locked",
    "disabled": "account disabled",
}
"""Why a sign-in failed, in words, as the account page shows it."""

ACCOUNT_EVENTS_SHOWN = 200
SIGN_IN_EVENTS = ("signed_in", "oidc_sign_in.succeeded")


@dataclass(frozen=True)
class AccountSummary:
    """One line of the user list: the account and when it last signed in."""

    user: User
    last_signed_in_at: datetime | None


def list_accounts(session: Session) -> list[AccountSummary]:
    """Every account, by name, with its last sign-in (from the audit trail)."""
    last_sign_ins = dict(
        session.execute(
            select(AuditEvent.actor_id, func.max(AuditEvent.occurred_at))
            .where(AuditEvent.chain == SYSTEM_CHAIN, AuditEvent.event.in_(SIGN_IN_EVENTS))
            .group_by(AuditEvent.actor_id)
        ).all()
    )
    users = session.scalars(select(User).order_by(func.lower(User.name), User.id)).unique()
    return [AccountSummary(user, last_sign_ins.get(user.id)) for user in users]


def get_account(session: Session, user_id: int) -> User:
    """The account with this id, or NotFound."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("No such user")
    return user


def last_signed_in_at(session: Session, user: User) -> datetime | None:
    """When `user` last signed in, from the audit trail, or None."""
    return session.scalar(
        select(func.max(AuditEvent.occurred_at)).where(
            AuditEvent.chain == SYSTEM_CHAIN,
            AuditEvent.event.in_(SIGN_IN_EVENTS),
            AuditEvent.actor_id == user.id,
        )
    )


def account_events(
    session: Session, user_id: int, limit: int = ACCOUNT_EVENTS_SHOWN
) -> list[AuditEvent]:
    """The system-chain events about one account, newest first: every event whose
    payload names it as `user_id` (sign-ins, failures, lockouts, role changes, tokens)."""
    # Payloads are canonical JSON (sorted keys, no spaces), so the id is followed by a
    # comma or the closing brace: "user_id":5 never matches "user_id":50.
    return list(
        session.scalars(
            select(AuditEvent)
            .where(
                AuditEvent.chain == SYSTEM_CHAIN,
                or_(
                    AuditEvent.payload.contains(f'"user_id":{user_id},', autoescape=True),
                    AuditEvent.payload.contains(f'"user_id":{user_id}}}', autoescape=True),
                ),
            )
            .order_by(AuditEvent.seq.desc())
            .limit(limit)
        )
    )


@dataclass(frozen=True)
class AccountEventRow:
    """One account event as the account page shows it."""

    occurred_at: datetime
    event: str
    label: str
    details: str
    actor_name: str | None


def account_history(
    session: Session, user_id: int, limit: int = ACCOUNT_EVENTS_SHOWN
) -> list[AccountEventRow]:
    """The account's events, newest first, in words: what happened, the facts recorded
    with it, and who did it."""
    events = account_events(session, user_id, limit)
    actor_ids = {event.actor_id for event in events if event.actor_id is not None}
    names = dict(session.execute(select(User.id, User.name).where(User.id.in_(actor_ids))).all())
    authorities = dict(
        session.execute(select(LicensingAuthority.id, LicensingAuthority.name)).all()
    )
    rows = []
    for event in events:
        payload: dict[str, Any] = json.loads(event.payload or "{}")
        rows.append(
            AccountEventRow(
                occurred_at=event.occurred_at,
                event=event.event,
                label=ACCOUNT_EVENT_LABELS.get(event.event, event.event.replace("_", " ")),
                details=_details(event.event, payload, authorities),
                actor_name=names.get(event.actor_id) if event.actor_id is not None else None,
            )
        )
    return rows


def _role_text(role: str | None, authority_id: int | None, authorities: dict[int, str]) -> str:
    if authority_id is None:
        return str(role)
    return f"{role} ({authorities.get(authority_id, f'authority {authority_id}')})"


def _details(event: str, payload: dict[str, Any], authorities: dict[int, str]) -> str:
    address = f" from {payload['address']}" if payload.get("address") else ""
    if event == "sign_in_failed":
        reason = FAILURE_REASONS.get(str(payload.get("reason")), str(payload.get("reason")))
        return f"{reason.capitalize()}{address}"
    if event == "signed_in":
        return address.strip().capitalize()
    if event == "account_locked":
        return f"{payload.get('failed_sign_ins')} wrong passwords in a row"
    if event == "account_unlocked":
        return f"{payload.get('failed_sign_ins')} failed sign-ins cleared"
    if event == "role_changed":
        before = _role_text(payload.get("from_role"), payload.get("from_authority_id"), authorities)
        after = _role_text(payload.get("to_role"), payload.get("to_authority_id"), authorities)
        return f"From {before} to {after}"
    if event == "user_created":
        return f"As {_role_text(payload.get('role'), payload.get('authority_id'), authorities)}"
    if event == "api_token_created":
        return f"Scopes: {payload.get('scopes')}"
    return ""


def _lock_for_change(session: Session, admin: User, user: User | None) -> None:
    """Serialise account changes and check the actor is (still) an active admin.

    PostgreSQL: the active admins' rows are locked in one statement in id order, then
    the target's. SQLite: a write first takes the database's one write lock (a read
    first would not). Either way, of two admins demoting each other at once the second
    sees the first's change, is no longer an admin, and is refused: since an admin never
    changes their own account, an active admin always remains."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(update(User).where(false()).values(failed_sign_ins=0))
    admin_ids = set(
        session.scalars(
            select(User.id)
            .where(User.role == Role.ADMIN.value, User.active.is_(True))
            .order_by(User.id)
            .with_for_update()
        )
    )
    if admin.id not in admin_ids:
        raise Forbidden("Only an admin may change accounts")
    if user is not None:
        # Read as stored now, under the lock: the page the admin saw may be out of date.
        # OF users: PostgreSQL refuses FOR UPDATE on the outer-joined authority.
        session.refresh(user, with_for_update={"of": User})


def _refuse_self(admin: User, user: User, doing: str) -> None:
    if admin.id == user.id:
        raise Refused(f"You cannot {doing} your own account: ask another admin")


def create_account(
    session: Session,
    admin: User,
    *,
    email: str,
    name: str,
    role: str,
    password: str,
    authority_code: str | None,
) -> User:
    """Create an account from the admin pages (the rules of `create_user`, by an admin)."""
    _lock_for_change(session, admin, None)
    if not name.strip():
        raise ValidationFailed("Enter the person's name", {"name": "Enter the person's name"})
    return create_user(session, email, name, role, password, authority_code or None, actor=admin)


def set_active(session: Session, admin: User, user: User, active: bool) -> bool:
    """Disable or enable an account; True when this changed it. A disabled user cannot
    sign in or use API tokens, and a signed-in one is signed out at their next page.
    An admin cannot disable their own account. Commits."""
    _lock_for_change(session, admin, user)
    if bool(user.active) == active:
        session.rollback()
        return False
    if not active:
        _refuse_self(admin, user, "disable")
    user.active = active
    append_event(
        session,
        event="user_enabled" if active else "user_disabled",
        actor_id=admin.id,
        payload={"user_id": user.id},
    )
    session.commit()
    return True


def change_role(
    session: Session,
    admin: User,
    user: User,
    *,
    role: str,
    authority_code: str | None,
    seen_role: str,
    seen_authority_id: int | None,
) -> bool:
    """Give `user` another role (and, for a council user, their authority); True when
    this changed it. `seen_role` and `seen_authority_id` are what the admin saw: if
    someone changed them since, the change is refused as a conflict. An admin cannot
    change their own role. Commits."""
    _lock_for_change(session, admin, user)
    try:
        new_role = Role(role)
    except ValueError:
        raise ValidationFailed("Choose a role", {"role": "Choose a role"}) from None
    if (user.role, user.authority_id) != (seen_role, seen_authority_id):
        raise Conflict(
            "Someone changed this user's role since you opened the page. "
            "Check the role shown now and try again"
        )
    authority = authority_for_role(session, new_role, authority_code)
    new_authority_id = authority.id if authority else None
    if (user.role, user.authority_id) == (new_role.value, new_authority_id):
        session.rollback()
        return False
    _refuse_self(admin, user, "change the role of")
    payload = {
        "user_id": user.id,
        "from_role": user.role,
        "to_role": new_role.value,
        "from_authority_id": user.authority_id,
        "to_authority_id": new_authority_id,
    }
    user.role = new_role.value
    user.authority = authority
    append_event(session, event="role_changed", actor_id=admin.id, payload=payload)
    session.commit()
    return True


def unlock(session: Session, admin: User, user: User) -> bool:
    """Unlock an account locked by failed sign-ins and clear its count of them; True
    when there was anything to clear. Commits."""
    _lock_for_change(session, admin, user)
    return _clear_lock(session, user, actor_id=admin.id, payload={})


def unlock_from_console(session: Session, email: str) -> bool:
    """`licensing users unlock`: the same unlock by someone at the server, for when every
    admin is locked out. Audited with no actor and `"via": "console"`. Commits."""
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        raise NotFound(f"No user with the email {email.strip()}")
    return _clear_lock(session, user, actor_id=None, payload={"via": "console"})


def _clear_lock(
    session: Session, user: User, *, actor_id: int | None, payload: dict[str, Any]
) -> bool:
    if user.locked_at is None and not user.failed_sign_ins:
        session.rollback()
        return False
    payload = {
        **payload,
        "user_id": user.id,
        "failed_sign_ins": user.failed_sign_ins,
        "locked_at": user.locked_at.isoformat() if user.locked_at else None,
    }
    user.locked_at = None
    user.failed_sign_ins = 0
    append_event(session, event="account_unlocked", actor_id=actor_id, payload=payload)
    session.commit()
    return True
