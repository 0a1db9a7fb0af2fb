"""Action plans agreed with licence holders, their items, and partnership meetings.

See licensing.actionplans.services for the lifecycle and how a plan's status is derived.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from licensing.db import Base, UTCDateTime, utcnow
from licensing.premises.models import LicensingAuthority, Premises

# Plan statuses (derived from the items and the review date by services.derive_status).
PLAN_OPEN, PLAN_COMPLETED, PLAN_FAILED = "open", "completed", "failed"
PLAN_WITHDRAWN = "withdrawn"  # every item withdrawn: ends without success or failure
PLAN_STATUSES = {
    PLAN_OPEN: "Open",
    PLAN_COMPLETED: "Completed",
    PLAN_FAILED: "Failed",
    PLAN_WITHDRAWN: "Withdrawn",
}

# Item statuses: agreed is the only open one.
ITEM_AGREED, ITEM_DONE, ITEM_NOT_DONE, ITEM_WITHDRAWN = "agreed", "done", "not_done", "withdrawn"
ITEM_STATUSES = {
    ITEM_AGREED: "Agreed",
    ITEM_DONE: "Done",
    ITEM_NOT_DONE: "Not done",
    ITEM_WITHDRAWN: "Withdrawn",
}

# Who came to a partnership meeting, by organisation (a fixed list; names are free text).
ORGANISATIONS = {
    "police": "Police",
    "council_licensing": "Council licensing",
    "environmental_health": "Environmental health",
    "fire": "Fire and rescue",
    "trading_standards": "Trading standards",
    "licence_holder": "Licence holder / DPS",
}

ONE_OPEN_PLAN = "status = 'open'"


class ActionPlan(Base):
    """What a licence holder/DPS agreed to do by when, with a date to review it.

    `lock_version` counts changes to the plan and to any of its items, so two officers
    editing the same plan at once get a conflict rather than overwriting each other.
    """

    __tablename__ = "action_plans"
    __table_args__ = (
        # A premises has at most one open plan: a new one is agreed once the last closed.
        Index(
            "ux_action_plans_one_open_per_premises",
            "premises_id",
            unique=True,
            sqlite_where=text(ONE_OPEN_PLAN),
            postgresql_where=text(ONE_OPEN_PLAN),
        ),
        # Open plans whose review date has passed, for the alert and status sweep.
        Index("ix_action_plans_status_review_on", "status", "review_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    premises_id: Mapped[int] = mapped_column(ForeignKey("premises.id"), index=True)
    agreed_on: Mapped[date] = mapped_column(Date)
    review_on: Mapped[date] = mapped_column(Date)
    # The licence holder or DPS (a person's name): shown on the plan and in letters,
    # kept off the audit chain (it goes to its erasable personal values).
    agreed_with: Mapped[str] = mapped_column(String(300), default="")
    status: Mapped[str] = mapped_column(String(16), default=PLAN_OPEN)
    # The partnership meeting the plan was agreed at, if any.
    meeting_id: Mapped[int | None] = mapped_column(ForeignKey("partnership_meetings.id"))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    lock_version: Mapped[int] = mapped_column(Integer, default=1)

    premises: Mapped[Premises] = relationship(lazy="joined")
    items: Mapped[list[ActionPlanItem]] = relationship(
        back_populates="plan", order_by="ActionPlanItem.id"
    )

    __mapper_args__ = {"version_id_col": lock_version}

    @property
    def is_open(self) -> bool:
        """Still being worked: neither completed nor failed."""
        return self.status == PLAN_OPEN

    @property
    def status_label(self) -> str:
        """The status in words."""
        return PLAN_STATUSES.get(self.status, self.status)


class ActionPlanItem(Base):
    """One thing agreed: what, whose job it is, by when, and whether it was done."""

    __tablename__ = "action_plan_items"
    __table_args__ = (
        # Agreed items past their due date, for the overdue-item alert.
        Index("ix_action_plan_items_status_due_on", "status", "due_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("action_plans.id"), index=True)
    description: Mapped[str] = mapped_column(Text)
    # Free text: "licence holder", "DPS", "police", or a name.
    owner: Mapped[str] = mapped_column(String(200))
    due_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default=ITEM_AGREED)
    status_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status_changed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # The visit that recorded the last status change, if it was a visit.
    status_visit_id: Mapped[int | None] = mapped_column(ForeignKey("visits.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    plan: Mapped[ActionPlan] = relationship(back_populates="items")

    @property
    def is_open(self) -> bool:
        """Still agreed: neither done, not done, nor withdrawn."""
        return self.status == ITEM_AGREED

    @property
    def status_label(self) -> str:
        """The status in words."""
        return ITEM_STATUSES.get(self.status, self.status)


class PartnershipMeeting(Base):
    """A meeting of the partners about one premises or about a licensing authority's area."""

    __tablename__ = "partnership_meetings"
    __table_args__ = (
        CheckConstraint(
            "premises_id IS NOT NULL OR authority_id IS NOT NULL", name="premises_or_area"
        ),
        Index("ix_partnership_meetings_held_on", "held_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    premises_id: Mapped[int | None] = mapped_column(ForeignKey("premises.id"), index=True)
    authority_id: Mapped[int | None] = mapped_column(
        ForeignKey("licensing_authorities.id"), index=True
    )
    held_on: Mapped[date] = mapped_column(Date)
    title: Mapped[str] = mapped_column(String(200))
    minutes: Mapped[str] = mapped_column(Text, default="")
    decisions: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    lock_version: Mapped[int] = mapped_column(Integer, default=1)

    premises: Mapped[Premises | None] = relationship(lazy="joined")
    authority: Mapped[LicensingAuthority | None] = relationship(lazy="joined")
    attendees: Mapped[list[MeetingAttendee]] = relationship(
        back_populates="meeting", order_by="MeetingAttendee.id"
    )
    actions: Mapped[list[MeetingAction]] = relationship(
        back_populates="meeting", order_by="MeetingAction.id"
    )

    __mapper_args__ = {"version_id_col": lock_version}


class MeetingAttendee(Base):
    """Someone at a partnership meeting, by organisation."""

    __tablename__ = "meeting_attendees"

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("partnership_meetings.id"), index=True)
    organisation: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200), default="")

    meeting: Mapped[PartnershipMeeting] = relationship(back_populates="attendees")

    @property
    def organisation_label(self) -> str:
        """The organisation in words."""
        return ORGANISATIONS.get(self.organisation, self.organisation)


class MeetingAction(Base):
    """An action a meeting agreed; it can become an item on a premises' action plan."""

    __tablename__ = "meeting_actions"

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("partnership_meetings.id"), index=True)
    description: Mapped[str] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(String(200), default="")
    due_on: Mapped[date | None] = mapped_column(Date)
    # The premises it is about (a premises meeting's own; on an area meeting, chosen).
    premises_id: Mapped[int | None] = mapped_column(ForeignKey("premises.id"))
    # Set once the action became an action-plan item.
    plan_item_id: Mapped[int | None] = mapped_column(
        ForeignKey("action_plan_items.id"), unique=True
    )

    meeting: Mapped[PartnershipMeeting] = relationship(back_populates="actions")
    premises: Mapped[Premises | None] = relationship(lazy="joined")
