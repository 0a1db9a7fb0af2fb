"""Audit events and the erasable personal values that some of them refer to."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from licensing.db import Base, UTCDateTime

SYSTEM_CHAIN = "system"


def premises_chain(premises_id: int) -> str:
    """The chain name of one premises: writers on different premises never contend."""
    return f"premises:{premises_id}"


class AuditEvent(Base):
    """One append-only event. The database refuses UPDATE and DELETE on this table.

    `payload` is canonical JSON of ids and non-personal facts; `content_hash` covers every
    column but itself, including `prev_hash`, so altering or removing an event breaks
    the chain from that point on.
    """

    __tablename__ = "audit_events"
    __table_args__ = (
        UniqueConstraint("chain", "seq"),
        Index("ix_audit_events_premises_id_seq", "premises_id", "seq"),
        # Interventions (warnings, review outcomes) by event name: migration 0017.
        Index("ix_audit_events_event_premises_id", "event", "premises_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    chain: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(Integer)
    # No foreign keys: the trail must outlive (and never block) changes elsewhere.
    premises_id: Mapped[int | None] = mapped_column(Integer)
    actor_id: Mapped[int | None] = mapped_column(Integer)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    event: Mapped[str] = mapped_column(String(64))
    from_state: Mapped[str | None] = mapped_column(String(32))
    to_state: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[str] = mapped_column(Text, default="{}")
    prev_hash: Mapped[str] = mapped_column(String(64))
    content_hash: Mapped[str] = mapped_column(String(64))


class AuditPersonalValue(Base):
    """Old and new values of a personal field (licence holder, DPS) changed by an event.

    Kept outside the chain so that they can be erased on request without breaking it;
    the event's payload only says that the field changed.
    """

    __tablename__ = "audit_personal_values"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("audit_events.id"), index=True)
    field: Mapped[str] = mapped_column(String(64))
    old_value: Mapped[str | None] = mapped_column(Text)
    new_value: Mapped[str | None] = mapped_column(Text)
