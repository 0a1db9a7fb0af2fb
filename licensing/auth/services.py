"""Accounts, passwords and API tokens."""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.profiles import CHEAPEST
from flask import current_app, has_app_context
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from licensing.audit.services import append_event
from licensing.auth.models import ApiToken, Role, User
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


def create_token(session: Session, email: str, label: str = "") -> str:
    """Issue a bearer token for the user; only its hash is stored, so show it once."""
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        raise NotFound(f"No user with email {email!r}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    record = ApiToken(user_id=user.id, token_hash=_token_digest(token), label=label)
    session.add(record)
    session.flush()
    append_event(
        session,
        event="api_token_created",
        actor_id=None,
        payload={"token_id": record.id, "user_id": user.id, "scopes": record.scopes},
    )
    session.commit()
    return token


def user_for_token(session: Session, token: str) -> User | None:
    """The active user a live bearer token belongs to, or None."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    record = session.scalar(select(ApiToken).where(ApiToken.token_hash == _token_digest(token)))
    now = utcnow()
    if record is None or record.revoked_at is not None:
        return None
    if record.expires_at is not None and record.expires_at <= now:
        return None
    if not record.user.active:
        return None
    return record.user
