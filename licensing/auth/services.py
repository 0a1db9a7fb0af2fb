"""Accounts, passwords and API tokens."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.profiles import CHEAPEST
from flask import current_app, has_app_context
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from licensing.audit.services import append_event
from licensing.auth.models import API_SCOPES, ApiToken, Role, User
from licensing.db import utcnow
from licensing.errors import NotFound, Refused, ValidationFailed
from licensing.premises.models import LicensingAuthority

_STRONG = PasswordHasher()
# The test suite creates hundreds of accounts: it uses argon2's cheapest parameters
# (the same code path, less memory and time). Never set outside the testing profile.
_CHEAP = PasswordHasher.from_parameters(CHEAPEST)
_DUMMY_HASHES: dict[bool, str] = {}


def _hasher() -> PasswordHasher:
    cheap = has_app_context() and bool(current_app.config.get("FAST_PASSWORD_HASHING"))
    return _CHEAP if cheap else _STRONG


def _dummy_hash() -> str:
    # Verified against when the email is unknown, so a wrong email costs as long as a
    # wrong password.
    hasher = _hasher()
    key = hasher is _CHEAP
    if key not in _DUMMY_HASHES:
        _DUMMY_HASHES[key] = hasher.hash("not-a-real-password")
    return _DUMMY_HASHES[key]


MIN_PASSWORD_LENGTH = 12
TOKEN_PREFIX = "lic_"  # noqa: S105 - a marker, not a secret


def hash_password(password: str) -> str:
    """An argon2id hash of the password."""
    return _hasher().hash(password)


def check_password_strength(password: str) -> None:
    """Refuse passwords too short to be safe."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed(
            f"The password must be at least {MIN_PASSWORD_LENGTH} characters",
            {"password": f"Use at least {MIN_PASSWORD_LENGTH} characters"},
        )


def authenticate(session: Session, email: str, password: str) -> User | None:
    """The active user with this email and password, or None."""
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    try:
        _hasher().verify(user.password_hash if user else _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or not user.active:
        return None
    return user


def create_authority(session: Session, code: str, name: str) -> LicensingAuthority:
    """Add a licensing authority (a council) and record it on the system chain."""
    code = code.strip().upper()
    if not code or not name.strip():
        raise ValidationFailed("An authority needs a code and a name")
    if session.scalar(select(LicensingAuthority).where(LicensingAuthority.code == code)):
        raise Refused(f"An authority with code {code} already exists")
    authority = LicensingAuthority(code=code, name=name.strip())
    session.add(authority)
    session.flush()
    append_event(
        session,
        event="authority_created",
        actor_id=None,
        payload={"authority_id": authority.id, "code": code},
    )
    session.commit()
    return authority


def create_user(
    session: Session,
    email: str,
    name: str,
    role: str,
    password: str,
    authority_code: str | None = None,
    actor: User | None = None,
) -> User:
    """Create an account. Council users must belong to one licensing authority."""
    email = email.strip().lower()
    if "@" not in email:
        raise ValidationFailed(
            "Enter a valid email address", {"email": "Enter a valid email address"}
        )
    try:
        role_value = Role(role)
    except ValueError:
        raise ValidationFailed(f"Role must be one of {', '.join(r.value for r in Role)}") from None
    check_password_strength(password)
    authority = None
    if role_value == Role.COUNCIL:
        if not authority_code:
            raise ValidationFailed("A council user needs --authority CODE")
        authority = session.scalar(
            select(LicensingAuthority).where(
                LicensingAuthority.code == authority_code.strip().upper()
            )
        )
        if authority is None:
            raise NotFound(f"No licensing authority with code {authority_code!r}")
    if session.scalar(select(func.count()).select_from(User).where(User.email == email)):
        raise Refused(f"A user with email {email} already exists")
    user = User(
        email=email,
        name=name.strip() or email,
        role=role_value.value,
        password_hash=hash_password(password),
        authority_id=authority.id if authority else None,
    )
    session.add(user)
    session.flush()
    append_event(
        session,
        event="user_created",
        actor_id=actor.id if actor else None,
        payload={"user_id": user.id, "role": user.role, "authority_id": user.authority_id},
    )
    session.commit()
    return user


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


DEFAULT_TOKEN_LIFETIME = timedelta(days=90)
# last_used_at is recorded at most this often per token, not on every request.
TOKEN_USE_GRANULARITY = timedelta(minutes=1)


def parse_scopes(values: Iterable[str]) -> tuple[str, ...]:
    """Scope names from repeated and/or comma- or space-separated values, in canonical
    order; refuses unknown names and an empty set."""
    names = {part for value in values for part in value.replace(",", " ").split()}
    unknown = sorted(names - set(API_SCOPES))
    if unknown:
        raise ValidationFailed(
            f"Unknown scope {', '.join(unknown)}: scopes are {', '.join(API_SCOPES)}",
            {"scopes": "Unknown scope"},
        )
    if not names:
        raise ValidationFailed(
            f"A token needs at least one scope of {', '.join(API_SCOPES)}",
            {"scopes": "Required"},
        )
    return tuple(scope for scope in API_SCOPES if scope in names)


def issue_token(
    session: Session,
    email: str,
    label: str = "",
    *,
    scopes: Iterable[str] | None = None,
    expires_in: timedelta = DEFAULT_TOKEN_LIFETIME,
) -> tuple[ApiToken, str]:
    """Issue a bearer token: (its record, the token). Only the token's SHA-256 is stored,
    so the token itself can be shown once and never again."""
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        raise NotFound(f"No user with email {email!r}")
    granted = API_SCOPES if scopes is None else parse_scopes(scopes)
    if expires_in <= timedelta(0):
        raise ValidationFailed("A token must expire in the future", {"expires_in": "Too short"})
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    record = ApiToken(
        user_id=user.id,
        token_hash=_token_digest(token),
        label=label,
        scopes=" ".join(granted),
        expires_at=utcnow() + expires_in,
    )
    session.add(record)
    session.flush()
    append_event(
        session,
        event="api_token_created",
        actor_id=None,
        payload={
            "token_id": record.id,
            "user_id": user.id,
            "scopes": record.scopes,
            "expires_at": record.expires_at.isoformat(),
        },
    )
    session.commit()
    return record, token


def create_token(
    session: Session,
    email: str,
    label: str = "",
    *,
    scopes: Iterable[str] | None = None,
    expires_in: timedelta = DEFAULT_TOKEN_LIFETIME,
) -> str:
    """Issue a bearer token for the user (every scope unless `scopes` narrows it; expiring
    after `expires_in`, 90 days by default) and return it; only its hash is stored."""
    return issue_token(session, email, label, scopes=scopes, expires_in=expires_in)[1]


def live_token(session: Session, token: str) -> ApiToken | None:
    """The record of a live bearer token (known, not revoked, not expired, its user
    active), or None. Records when it was used, at most once a minute (committing the
    session when it does)."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    record = session.scalar(select(ApiToken).where(ApiToken.token_hash == _token_digest(token)))
    now = utcnow()
    if record is None or not record.is_live(now):
        return None
    _record_use(session, record, now)
    return record


def _record_use(session: Session, record: ApiToken, now: datetime) -> None:
    stale = now - TOKEN_USE_GRANULARITY
    if record.last_used_at is not None and record.last_used_at > stale:
        return
    # Conditional, so concurrent requests with one token write once between them.
    session.execute(
        update(ApiToken)
        .where(
            ApiToken.id == record.id,
            or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at <= stale),
        )
        .values(last_used_at=now)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    set_committed_value(record, "last_used_at", now)


def user_for_token(session: Session, token: str) -> User | None:
    """The active user a live bearer token belongs to, or None."""
    record = live_token(session, token)
    return record.user if record is not None else None


def list_tokens(session: Session, email: str | None = None) -> list[ApiToken]:
    """Every token (or every token of one user), oldest first. Records only: the tokens
    themselves are never stored."""
    query = select(ApiToken).order_by(ApiToken.id)
    if email is not None:
        user = session.scalar(select(User).where(User.email == email.strip().lower()))
        if user is None:
            raise NotFound(f"No user with email {email!r}")
        query = query.where(ApiToken.user_id == user.id)
    return list(session.scalars(query).unique().all())


def revoke_token(session: Session, token_id: int) -> tuple[ApiToken, bool]:
    """Revoke a token by its id: (the record, whether this call revoked it). Revoking a
    revoked token changes nothing."""
    record = session.get(ApiToken, token_id)
    if record is None:
        raise NotFound(f"No API token with id {token_id}")
    if record.revoked_at is not None:
        return record, False
    record.revoked_at = utcnow()
    append_event(
        session,
        event="api_token_revoked",
        actor_id=None,
        payload={"token_id": record.id, "user_id": record.user_id},
    )
    session.commit()
    return record, True
