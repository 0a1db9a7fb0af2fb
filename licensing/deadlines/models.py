"""Deadlines computed from review events, stored with the rule that produced them."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from licensing.db import Base, UTCDateTime, utcnow

KINDS = (
    "representations_close",
    "hearing_start_by",
    "determination_by",
    "appeal_by",
    "interim_steps_by",
    "summary_determination_by",
    "suspension_ends",
    "compliance_visit_due",
)


class Deadline(Base):
    """One statutory (or policy) deadline of a review application.

    Day rules set `due_date`; hour rules (interim steps) set `due_at`, an instant in UTC.
    Recomputed whenever the date it hangs on is recorded or corrected.
    """

    __tablename__ = "deadlines"
    __table_args__ = (
        UniqueConstraint("review_id", "kind"),
        Index("ix_deadlines_status_due_date", "status", "due_date"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    premises_id: Mapped[int] = mapped_column(ForeignKey("premises.id"), index=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("review_applications.id"))
    kind: Mapped[str] = mapped_column(String(32))
    due_date: Mapped[date | None] = mapped_column(Date)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    rule: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open|closed|cancelled
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def due_iso(self) -> str:
        """An ISO date for day rules, an ISO date-time in UTC for hour rules."""
        if self.due_at is not None:
            return self.due_at.isoformat().replace("+00:00", "Z")
        assert self.due_date is not None
        return self.due_date.isoformat()
