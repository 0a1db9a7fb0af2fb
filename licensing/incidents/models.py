"""Incidents, the people in them (held apart), links to premises, and import runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from licensing.db import Base, UTCDateTime, utcnow

SOURCES = ("police-uk", "rms", "council-asb", "manual")

# data.police.uk's crime types, spelled as it spells them.
POLICE_UK_CATEGORIES = (
    "Anti-social behaviour",
    "Bicycle theft",
    "Burglary",
    "Criminal damage and arson",
    "Drugs",
    "Other crime",
    "Other theft",
    "Possession of weapons",
    "Public order",
    "Robbery",
    "Shoplifting",
    "Theft from the person",
    "Vehicle crime",
    "Violence and sexual offences",
)
# ASB sub-types councils record (Home Office categories).
ASB_CATEGORIES = ("ASB - personal", "ASB - nuisance", "ASB - environmental")
CATEGORIES = POLICE_UK_CATEGORIES + ASB_CATEGORIES

PERSON_ROLES = ("victim", "witness", "reporter", "suspect")
LINK_STATUSES = ("confirmed", "suggested", "rejected")
LINK_METHODS = ("officer", "licence_number", "uprn", "proximity", "address")


class Incident(Base):
    """A police incident, a crime from data.police.uk, or an ASB report.

    `occurred_at` is exact when the source gives a time; data.police.uk gives only a month,
    so `month` is set, `occurred_at` is empty and `counted_at` (what windows and charts
    use) is the middle of that month, shown as approximate.
    """

    __tablename__ = "incidents"
    __table_args__ = (
        UniqueConstraint("source", "source_ref"),
        # Windows, charts and the newest-first list all range over counted_at. Kept to
        # two indexes on purpose: every index slows the bulk import.
        Index("ix_incidents_counted_at", "counted_at"),
        # A third, for the dashboard's "added in the last 7 days" (migration 0007): rows
        # are stamped when inserted, so the import only appends at its right-hand edge.
        Index("ix_incidents_created_at", "created_at"),
        # A fourth, for the list filtered by category (migration 0014): its count and its
        # newest-first pages walk only that category's entries. Imports insert it at a
        # handful of points (a file's rows share a month), so it costs them little.
        Index("ix_incidents_category_counted_at_id", "category", "counted_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(16))
    source_ref: Mapped[str] = mapped_column(String(128))
    occurred_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    month: Mapped[str | None] = mapped_column(String(7))
    counted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    category: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    location_text: Mapped[str] = mapped_column(String(300), default="")
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    lsoa_code: Mapped[str] = mapped_column(String(16), default="")
    lsoa_name: Mapped[str] = mapped_column(String(100), default="")
    outcome: Mapped[str] = mapped_column(String(200), default="")
    reported_by: Mapped[str] = mapped_column(String(100), default="")
    context: Mapped[str] = mapped_column(Text, default="")
    authority_id: Mapped[int | None] = mapped_column(ForeignKey("licensing_authorities.id"))
    import_run_id: Mapped[int | None] = mapped_column(ForeignKey("incident_import_runs.id"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    people: Mapped[list[IncidentPerson]] = relationship(
        back_populates="incident", order_by="IncidentPerson.id"
    )

    @property
    def approximate(self) -> bool:
        """True when only the month is known."""
        return self.occurred_at is None


class IncidentPerson(Base):
    """A victim, witness, reporter or suspect: personal data, held apart and erasable,
    and redacted from anything shared outside the police."""

    __tablename__ = "incident_people"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200), default="")
    phone: Mapped[str] = mapped_column(String(50), default="")
    email: Mapped[str] = mapped_column(String(254), default="")
    address: Mapped[str] = mapped_column(Text, default="")

    incident: Mapped[Incident] = relationship(back_populates="people")


def _counted_at_of_incident(context: Any) -> datetime:
    """The link's incident's counted_at, for a link made without it (one look-up)."""
    incident_id = context.get_current_parameters()["incident_id"]
    counted_at: datetime = context.connection.scalar(
        select(Incident.counted_at).where(Incident.id == incident_id)
    )
    return counted_at


class PremisesIncidentLink(Base):
    """Ties an incident to a premises: confirmed, suggested, or rejected (kept, so a
    rejected suggestion does not come back). Links never change the premises version.

    `incident_counted_at` is a copy of the incident's counted_at, so a premises' links
    are read in incident order from an index of the links alone (migration 0016).
    Incidents are never re-dated; anything that ever re-dates one must update its
    links' copies in the same transaction."""

    __tablename__ = "premises_incident_links"
    __table_args__ = (
        # Incident first: it also serves "which premises is this incident linked to".
        UniqueConstraint("incident_id", "premises_id"),
        # A premises' links of a status in incident order (migration 0016).
        Index(
            "ix_premises_incident_links_premises_status_counted",
            "premises_id",
            "status",
            "incident_counted_at",
            "incident_id",
        ),
        # The dashboard's recent suggestions, counted from the index (migration 0007).
        Index(
            "ix_premises_incident_links_status_created_at", "status", "created_at", "incident_id"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    premises_id: Mapped[int] = mapped_column(ForeignKey("premises.id"))
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))
    method: Mapped[str] = mapped_column(String(16))
    distance_m: Mapped[float | None] = mapped_column(Float)
    score: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    incident_counted_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=_counted_at_of_incident
    )

    incident: Mapped[Incident] = relationship(lazy="joined")


class IncidentImportRun(Base):
    """One bulk import of incidents: the file, its hash, who, when, and what happened."""

    __tablename__ = "incident_import_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    file_name: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    format: Mapped[str] = mapped_column(String(16))
    imported_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    rows_read: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[int] = mapped_column(Integer, default=0)
    duplicate: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    linked: Mapped[int] = mapped_column(Integer, default=0)
    suggested: Mapped[int] = mapped_column(Integer, default=0)

    rejections: Mapped[list[IncidentImportRejection]] = relationship(
        order_by="IncidentImportRejection.line_number"
    )


class IncidentImportRejection(Base):
    """A row of an incident import that was not imported, with its line and reason."""

    __tablename__ = "incident_import_rejections"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("incident_import_runs.id"), index=True)
    line_number: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    raw: Mapped[str] = mapped_column(Text)


class Recommendation(Base):
    """An escalation a threshold rule suggests, with the incidents that triggered it.

    It never changes a state by itself: an officer acts on it (takes the event) or
    dismisses it with a reason.
    """

    __tablename__ = "recommendations"
    __table_args__ = (Index("ix_recommendations_status_premises", "status", "premises_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    premises_id: Mapped[int] = mapped_column(ForeignKey("premises.id"))
    rule: Mapped[str] = mapped_column(String(64))
    recommended_event: Mapped[str] = mapped_column(String(32))
    summary: Mapped[str] = mapped_column(Text)
    incident_ids: Mapped[str] = mapped_column(Text, default="[]")  # JSON list
    status: Mapped[str] = mapped_column(String(16), default="open")  # open|acted|dismissed
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decision_reason: Mapped[str | None] = mapped_column(Text)
