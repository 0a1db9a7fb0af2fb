"""Accounts, passwords and API tokens."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from importlib import resources

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.profiles import CHEAPEST
from flask import current_app, has_app_context
from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.orm import Session, lazyload

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


# Parts of a name or an email address shorter than this are too common inside ordinary
# words to refuse a password for ("jo", "pc").
_PERSONAL_FRAGMENT_MIN = 4
DEFAULT_LOCKOUT_FAILURES = 10


def normalise_email(email: str) -> str:
    """An email address as accounts are stored and looked up: trimmed, lower-cased."""
    return email.strip().lower()


@cache
def common_passwords() -> frozenset[str]:
    """The shipped list of common passwords (licensing/auth/common_passwords.txt),
    lower-cased. A missing file is an error, never an empty list."""
    text = resources.files("licensing.auth").joinpath("common_passwords.txt").read_text("utf-8")
    return frozenset(
        line.strip().lower() for line in text.splitlines() if line.strip() and line[0] != "#"
    )


def _personal_fragments(email: str | None, name: str | None) -> set[str]:
    fragments: set[str] = set()
    if email:
        local = normalise_email(email).partition("@")[0]
        fragments.add(local)
        fragments.update(re.split(r"[^a-z0-9]+", local))
    if name and "@" in name:  # the command line names a user by their email by default
        name = name.partition("@")[0]
    if name:
        fragments.update(re.split(r"[^a-z0-9]+", name.lower()))
    return {fragment for fragment in fragments if len(fragment) >= _PERSONAL_FRAGMENT_MIN}


def check_password_strength(
    password: str,
    *,
    user: User | None = None,
    email: str | None = None,
    name: str | None = None,
) -> None:
    """Refuse a password that is too short, on the list of common passwords, or that
    contains the account's email name (before the @) or a part of the person's name.
    The account is `user`, or the `email` and `name` of one not yet created. Raises
    ValidationFailed with a message for the `password` field."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed(
            f"The password must be at least {MIN_PASSWORD_LENGTH} characters",
            {"password": f"Use at least {MIN_PASSWORD_LENGTH} characters"},
        )
    lowered = password.lower()
    if lowered in common_passwords():
        message = "This password is too common: attackers try it first. Choose another"
        raise ValidationFailed(message, {"password": message})
    email = email or (user.email if user else None)
    name = name or (user.name if user else None)
    if any(fragment in lowered for fragment in _personal_fragments(email, name)):
        message = "The password must not contain your name or email address"
        raise ValidationFailed(message, {"password": message})


def _lockout_threshold() -> int:
    if has_app_context():
        return int(current_app.config.get("ACCOUNT_LOCKOUT_FAILURES", DEFAULT_LOCKOUT_FAILURES))
    return DEFAULT_LOCKOUT_FAILURES


def authenticate(
    session: Session, email: str, password: str, *, address: str | None = None
) -> User | None:
    """The active, unlocked user with this email and password, or None.

    Every attempt is recorded on the system audit chain (`signed_in` or
    `sign_in_failed` with the account's id when it exists, the client `address`, and why
    it failed; never the email typed). A wrong password counts towards the lockout: the
    ACCOUNT_LOCKOUT_FAILURES-th in a row locks the account (`account_locked`) until an
    admin unlocks it; a locked account is refused even the right password. A success
    resets the count. The password is checked against a hash whatever happens (a dummy
    one for an unknown email), so the time taken says nothing. Commits."""
    user = session.scalar(select(User).where(User.email == normalise_email(email)))
    try:
        _hasher().verify(user.password_hash if user else _dummy_hash(), password)
        password_correct = True
    except (VerificationError, InvalidHashError):
        password_correct = False
    if user is None:
        _record_failure(session, None, "unknown_account", address)
    elif not password_correct:
        _record_wrong_password(session, user, address)
    elif user.locked_at is not None:
        _record_failure(session, user.id, "locked", address)
    elif not user.active:
        _record_failure(session, user.id, "disabled", address)
    else:
        if user.failed_sign_ins:
            user.failed_sign_ins = 0
        append_event(
            session,
            event="signed_in",
            actor_id=user.id,
            payload={"user_id": user.id, "address": address},
        )
        session.commit()
        return user
    session.commit()
    return None


def _record_failure(
    session: Session, user_id: int | None, reason: str, address: str | None
) -> None:
    append_event(
        session,
        event="sign_in_failed",
        actor_id=None,
        payload={"user_id": user_id, "reason": reason, "address": address},
    )


def signed_in_user(session: Session, user_id: int) -> User | None:
    """The active user a browser session names, or None (deactivated or gone). Every
    signed-in request asks, first thing."""
    user = session.scalar(_USER_BY_ID, {"user_id": user_id})
    return user if user is not None and user.active else None


# Built once (see licensing.db): every signed-in request reads it (`session.get` builds afresh).
_USER_BY_ID = select(User).where(User.id == bindparam("user_id"))


def _record_wrong_password(session: Session, user: User, address: str | None) -> None:
    # Counted in the database, not in Python, so concurrent wrong guesses are all counted;
    # the conditional lock makes exactly one of them the one that locks.
    session.execute(
        update(User)
        .where(User.id == user.id)
        .values(failed_sign_ins=User.failed_sign_ins + 1)
        .execution_options(synchronize_session=False)
    )
    failures = session.scalar(select(User.failed_sign_ins).where(User.id == user.id)) or 0
    _record_failure(session, user.id, "wrong_password", address)
    if failures >= _lockout_threshold():
        locked = session.execute(
            update(User)
            .where(User.id == user.id, User.locked_at.is_(None))
            .values(locked_at=utcnow())
            .returning(User.id)
            .execution_options(synchronize_session=False)
        ).first()
        if locked is not None:
            append_event(
                session,
                event="account_locked",
                actor_id=None,
                payload={"user_id": user.id, "failed_sign_ins": failures},
            )
    session.expire(user, ["failed_sign_ins", "locked_at"])


def record_sign_out(session: Session, user: User) -> None:
    """Record on the system audit chain that `user` signed out. Commits."""
    append_event(session, event="signed_out", actor_id=user.id, payload={"user_id": user.id})
    session.commit()


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
    """Create an account (`actor`: the admin who does, None from the command line).
    Council users must belong to one licensing authority, and no one else may; the
    password must pass `check_password_strength`."""
    email = normalise_email(email)
    if "@" not in email:
        raise ValidationFailed(
            "Enter a valid email address", {"email": "Enter a valid email address"}
        )
    try:
        role_value = Role(role)
    except ValueError:
        raise ValidationFailed(
            f"Role must be one of {', '.join(r.value for r in Role)}", {"role": "Choose a role"}
        ) from None
    check_password_strength(password, email=email, name=name)
    authority = authority_for_role(session, role_value, authority_code)
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


def authority_for_role(
    session: Session, role: Role, authority_code: str | None
) -> LicensingAuthority | None:
    """The authority a user of `role` belongs to: required for a council user (by its
    code), refused for every other role."""
    code = (authority_code or "").strip().upper()
    if role != Role.COUNCIL:
        if code:
            raise ValidationFailed(
                "Only a council user belongs to a licensing authority",
                {"authority": "Only a council user belongs to a licensing authority"},
            )
        return None
    if not code:
        raise ValidationFailed(
            "A council user needs --authority CODE",
            {"authority": "Choose the council this user works for"},
        )
    authority = session.scalar(select(LicensingAuthority).where(LicensingAuthority.code == code))
    if authority is None:
        raise NotFound(f"No licensing authority with code {authority_code!r}")
    return authority


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


@dataclass(frozen=True)
class LiveToken:
    """A live bearer token as an API request uses it: its record's id, its scopes and
    its user."""

    id: int
    scope_set: frozenset[str]
    user: User


# Built once (see licensing.db): every API call looks its token up. The user is the one
# object built; the token's own columns come as values (an object with its user joined
# costs a quarter more to build, on every call), and the user's council is not joined:
# no API route uses it (police systems' users have none).
_TOKEN = ApiToken.__table__.c
_LIVE_TOKEN = (
    select(
        User, _TOKEN.id, _TOKEN.scopes, _TOKEN.expires_at, _TOKEN.revoked_at, _TOKEN.last_used_at
    )
    .join_from(ApiToken.__table__, User, User.id == _TOKEN.user_id)
    .where(_TOKEN.token_hash == bindparam("digest"))
    .options(lazyload(User.authority))
)


def live_token(session: Session, token: str) -> LiveToken | None:
    """A live bearer token (known, not revoked, not expired, its user active), or None.
    Records when it was used, at most once a minute (committing the session when it
    does)."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    row = session.execute(_LIVE_TOKEN, {"digest": _token_digest(token)}).one_or_none()
    if row is None:
        return None
    user, token_id, scopes, expires_at, revoked_at, last_used_at = row
    now = utcnow()
    # Live: not revoked, not expired, and its user still active.
    if revoked_at is not None or now >= expires_at or not user.active:
        return None
    _record_use(session, token_id, last_used_at, now)
    return LiveToken(token_id, frozenset(scopes.split()), user)


def _record_use(
    session: Session, token_id: int, last_used_at: datetime | None, now: datetime
) -> None:
    stale = now - TOKEN_USE_GRANULARITY
    if last_used_at is not None and last_used_at > stale:
        return
    # Conditional, so concurrent requests with one token write once between them.
    session.execute(
        update(ApiToken)
        .where(
            ApiToken.id == token_id,
            or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at <= stale),
        )
        .values(last_used_at=now)
        .execution_options(synchronize_session=False)
    )
    session.commit()


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
