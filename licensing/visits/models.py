"""Visits to premises with their findings, and officers' calendar feeds."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from licensing.auth.models import User
from licensing.db import Base, UTCDateTime, utcnow
from licensing.premises.models import Premises

VISIT_TYPES = {
    "routine": "Routine visit",
    "compliance_check": "Compliance check",
    "test_purchase": "Test purchase",
    "joint_with_council": "Joint visit with the council",
    "night_time_economy_patrol": "Night-time economy patrol",
}
PROPOSED, SCHEDULED, COMPLETED, CANCELLED = "proposed", "scheduled", "completed", "cancelled"
OPEN_STATUSES = (PROPOSED, SCHEDULED)
STATUS_LABELS = {
    PROPOSED: "Proposed",
    SCHEDULED: "Scheduled",
    COMPLETED: "Completed",
    CANCELLED: "Cancelled",
}
COMPLIANT, ISSUES_FOUND = "compliant", "issues_found"
VISIT_OUTCOMES = {COMPLIANT: "Compliant", ISSUES_FOUND: "Issues found"}
# The four licensing objectives (Licensing Act 2003 s.4(2)), in the Act's order.
OBJECTIVES = {
    "crime_and_disorder": "The prevention of crime and disorder",
    "public_safety": "Public safety",
    "public_nuisance": "The prevention of public nuisance",
    "protection_of_children": "The protection of children from harm",
}


class Visit(Base):
    """A visit to a premises: proposed by the visit policy, scheduled by an officer,
    then completed with an outcome and findings (or cancelled).

    `visit_date` is the London date the visit is due (proposed) or booked for
    (scheduled), so "overdue" and "this week" are one indexed comparison. The findings
    text stays here and never goes on the audit chain: it may name people.
    """

    __tablename__ = "visits"
    __table_args__ = (
        Index("ix_visits_premises_id_status", "premises_id", "status"),
        Index("ix_visits_status_visit_date", "status", "visit_date"),
        # An officer's open visits, soonest first, for the dashboard (migration 0007).
        Index("ix_visits_officer_id_status_visit_date", "officer_id", "status", "visit_date"),
        # The policy keeps at most one proposed visit per premises: it moves it rather
        # than adding another, and this backs that up against concurrent writers.
        Index(
            "ux_visits_one_proposed_per_premises",
            "premises_id",
            unique=True,
            sqlite_where=text("status = 'proposed'"),
            postgresql_where=text("status = 'proposed'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    premises_id: Mapped[int] = mapped_column(ForeignKey("premises.id"))
    visit_type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    visit_date: Mapped[date] = mapped_column(Date)
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # What the policy asked for, kept when an officer books the visit on another day.
    policy_due_date: Mapped[date | None] = mapped_column(Date)
    policy_rule: Mapped[str | None] = mapped_column(Text)
    officer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    outcome: Mapped[str | None] = mapped_column(String(16))
    visited_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    findings_crime_and_disorder: Mapped[str] = mapped_column(Text, default="")
    findings_public_safety: Mapped[str] = mapped_column(Text, default="")
    findings_public_nuisance: Mapped[str] = mapped_column(Text, default="")
    findings_protection_of_children: Mapped[str] = mapped_column(Text, default="")
    follow_up_actions: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    premises: Mapped[Premises] = relationship(lazy="joined")
    officer: Mapped[User | None] = relationship(lazy="joined", foreign_keys=[officer_id])

    # Two officers recording the same visit at once: the second gets a conflict.
    __mapper_args__ = {"version_id_col": version}

    def findings(self, objective: str) -> str:
        """The findings text recorded under one licensing objective."""
        value: str = getattr(self, f"findings_{objective}")
        return value

    @property
    def objectives_flagged(self) -> list[str]:
        """The objectives with findings, when the visit found issues."""
        if self.outcome != ISSUES_FOUND:
            return []
        return [name for name in OBJECTIVES if self.findings(name).strip()]

    @property
    def is_open(self) -> bool:
        """Still to be done: proposed or scheduled."""
        return self.status in OPEN_STATUSES


class CalendarFeed(Base):
    """A user's secret calendar feed address; only the SHA-256 of its token is stored,
    so the address is shown once. Revoking it (or making a new one) kills the old one."""

    __tablename__ = "calendar_feeds"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship(lazy="joined")
