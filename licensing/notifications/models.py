"""The outbox of emails and each user's alert preference."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from licensing.db import Base, UTCDateTime, utcnow

STATUSES = ("created", "sending", "sent", "failed")
# "immediate": every alert as it happens plus the morning digest; "digest": the digest only.
ALERT_MODES = ("immediate", "digest")


class OutboxEmail(Base):
    """One email, stored before it is sent.

    `dedupe_key` says what the email is about (e.g. `deadline:12:2026-12-29:T-2:user:3`);
    it is unique, so however often a job runs the same alert is stored, and so sent, once.
    Status moves created → sending → sent, or back to created with a later
    `next_attempt_at` on a temporary failure, or to failed after too many attempts.
    """

    __tablename__ = "outbox_emails"
    __table_args__ = (
        Index("ix_outbox_emails_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    recipient: Mapped[str] = mapped_column(String(254))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    subject: Mapped[str] = mapped_column(String(300))
    text_body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str] = mapped_column(Text)
    message_id: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), default="created")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AlertPreference(Base):
    """How a user wants alerts; a user without a row gets "immediate" (the default)."""

    __tablename__ = "alert_preferences"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    mode: Mapped[str] = mapped_column(String(16), default="immediate")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
