"""Licensing authorities, premises, review applications and register imports."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import Date, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from licensing.db import Base, UTCDateTime, utcnow

if TYPE_CHECKING:
    from licensing.auth.models import User


class LicenceStatus(enum.StrEnum):
    """Where the premises licence itself stands (separate from our escalation state)."""

    CURRENT = "current"
    SUSPENDED = "suspended"
    REVOKED = "revoked"
    SURRENDERED = "surrendered"
    LAPSED = "lapsed"


class LicensingAuthority(Base):
    """A council acting as licensing authority under the Licensing Act 2003."""

    __tablename__ = "licensing_authorities"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))


class Premises(Base):
    """A licensed premises and where it stands in the escalation workflow.

    `state` changes only through workflow events (licensing.premises.workflow);
    `version` counts changes to this record and its state and is checked on every write.
    """

    __tablename__ = "premises"
    __table_args__ = (
        UniqueConstraint("authority_id", "licence_number"),
        Index("ix_premises_state_id", "state", "id"),
        # A case officer's premises by state, for the dashboard (migration 0007).
        Index("ix_premises_case_officer_id_state", "case_officer_id", "state"),
        Index("ix_premises_postcode", "postcode"),
        # Bounding-box look-ups of premises near an incident.
        Index("ix_premises_latitude_longitude", "latitude", "longitude"),
        # The register list in name order, whole or by state, read a page at a time
        # along the index instead of sorting every match (migration 0011).
        Index("ix_premises_name_id", "name", "id"),
        Index("ix_premises_state_name_id", "state", "name", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    authority_id: Mapped[int] = mapped_column(ForeignKey("licensing_authorities.id"))
    licence_number: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(300))
    address: Mapped[str] = mapped_column(Text, default="")
    postcode: Mapped[str] = mapped_column(String(16), default="")
    uprn: Mapped[str | None] = mapped_column(String(16), index=True)
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    licence_holder: Mapped[str] = mapped_column(String(300), default="")
    dps: Mapped[str] = mapped_column(String(300), default="")
    licensable_activities: Mapped[str] = mapped_column(Text, default="")
    opening_hours: Mapped[str] = mapped_column(Text, default="")
    licence_status: Mapped[str] = mapped_column(String(16), default=LicenceStatus.CURRENT)
    case_officer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    state: Mapped[str] = mapped_column(String(16), default="monitored")
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    authority: Mapped[LicensingAuthority] = relationship(lazy="joined")
    case_officer: Mapped[User | None] = relationship(lazy="joined")

    # The ORM adds "AND version = :seen" to every UPDATE and bumps it, so a concurrent
    # writer that read the same version gets StaleDataError instead of overwriting.
    __mapper_args__ = {"version_id_col": version}


class ReviewApplication(Base):
    """A police application for a review of the premises licence (s.51 or s.53A)."""

    __tablename__ = "review_applications"

    id: Mapped[int] = mapped_column(primary_key=True)
    premises_id: Mapped[int] = mapped_column(ForeignKey("premises.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # standard | summary
    application_date: Mapped[date | None] = mapped_column(Date)
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    certificate_reference: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), default="open")  # open|withdrawn|determined
    outcome: Mapped[str | None] = mapped_column(String(32))
    decision_date: Mapped[date | None] = mapped_column(Date)
    suspended_until: Mapped[date | None] = mapped_column(Date)
    hearing_date: Mapped[date | None] = mapped_column(Date)
    interim_steps_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    interim_steps: Mapped[str | None] = mapped_column(Text)
    decision_notified_on: Mapped[date | None] = mapped_column(Date)
    appeal_lodged_on: Mapped[date | None] = mapped_column(Date)
    appeal_decided_on: Mapped[date | None] = mapped_column(Date)
    appeal_outcome: Mapped[str | None] = mapped_column(String(16))
    applied_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # The issued evidence bundle the application relies on (licensing.evidence).
    bundle_id: Mapped[int | None] = mapped_column(ForeignKey("bundles.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RegisterImportRun(Base):
    """One import of a council premises licence register file."""

    __tablename__ = "register_import_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    authority_id: Mapped[int] = mapped_column(ForeignKey("licensing_authorities.id"))
    file_name: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    imported_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    rows_read: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)

    authority: Mapped[LicensingAuthority] = relationship(lazy="joined")
    rejections: Mapped[list[RegisterImportRejection]] = relationship(
        order_by="RegisterImportRejection.line_number", back_populates="run"
    )


class RegisterImportRejection(Base):
    """A register row that was not imported, kept with its line number and reason."""

    __tablename__ = "register_import_rejections"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("register_import_runs.id"), index=True)
    line_number: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    raw: Mapped[str] = mapped_column(Text)

    run: Mapped[RegisterImportRun] = relationship(back_populates="rejections")
