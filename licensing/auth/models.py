"""Users and API tokens."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from licensing.db import Base, UTCDateTime, utcnow
from licensing.premises.models import LicensingAuthority


class Role(enum.StrEnum):
    """What a user is: police licensing officer, their supervising sergeant, a council
    licensing officer (bound to one authority), or a system administrator."""

    OFFICER = "officer"
    SUPERVISOR = "supervisor"
    COUNCIL = "council"
    ADMIN = "admin"


POLICE_ROLES = frozenset({Role.OFFICER, Role.SUPERVISOR})


class User(Base):
    """A person who signs in. Implements what Flask-Login needs."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    authority_id: Mapped[int | None] = mapped_column(ForeignKey("licensing_authorities.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Consecutive failed sign-ins; reaching the threshold sets locked_at until an admin
    # unlocks the account.
    failed_sign_ins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The identity provider's `sub` for users who sign in through OpenID Connect.
    oidc_subject: Mapped[str | None] = mapped_column(String(255), unique=True)

    authority: Mapped[LicensingAuthority | None] = relationship(lazy="joined")

    # Flask-Login protocol
    @property
    def is_authenticated(self) -> bool:
        """Always true for a loaded user."""
        return True

    @property
    def is_active(self) -> bool:
        """Disabled users cannot sign in or use tokens."""
        return bool(self.active)

    @property
    def is_anonymous(self) -> bool:
        """Never anonymous."""
        return False

    def get_id(self) -> str:
        """The id Flask-Login keeps in the session."""
        return str(self.id)

    @property
    def is_police(self) -> bool:
        """An officer or a supervisor."""
        return self.role in POLICE_ROLES

    @property
    def is_council(self) -> bool:
        """A council licensing officer."""
        return self.role == Role.COUNCIL

    @property
    def is_supervisor(self) -> bool:
        """The supervising sergeant."""
        return self.role == Role.SUPERVISOR


API_SCOPES = ("read", "ingest", "workflow")
"""What a bearer token may be used for: `read` (GET routes), `ingest` (sending incidents),
`workflow` (transitions, adding premises, building, issuing and sharing bundles). A scope
never widens what the token's user's role allows."""


class ApiToken(Base):
    """A bearer token for police systems; only its SHA-256 is stored. Every token expires,
    carries a space-separated set of scopes, and can be revoked."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(200), default="")
    scopes: Mapped[str] = mapped_column(String(200), default=" ".join(API_SCOPES))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship(lazy="joined")

    @property
    def scope_set(self) -> frozenset[str]:
        """The scopes this token carries."""
        return frozenset(self.scopes.split())


class PasswordResetToken(Base):
    """One emailed password reset link. Only the SHA-256 of its token is stored; it
    expires, and it can be used once."""

    __tablename__ = "password_reset_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship(lazy="joined")
