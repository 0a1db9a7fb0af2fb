"""Attachments, evidence bundles, and what happens to a bundle once it is shared."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from licensing.auth.models import User
from licensing.db import Base, UTCDateTime, utcnow
from licensing.premises.models import Premises

MEDIA_TYPES = {
    "application/pdf": "PDF",
    "image/jpeg": "JPEG",
    "image/png": "PNG",
}
EXTENSIONS = {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png"}


class Attachment(Base):
    """A document or photo on an incident or a visit.

    The bytes live in the evidence store under their SHA-256 (licensing.evidence.store),
    outside the web root. `original_name` is shown to people and never used as a path.
    An attachment that holds personal data (a witness statement, say) goes into a shared
    bundle only as its redacted copy: another attachment whose `redacted_copy_of_id`
    points at it.
    """

    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), index=True)
    visit_id: Mapped[int | None] = mapped_column(ForeignKey("visits.id"), index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    media_type: Mapped[str] = mapped_column(String(32))
    original_name: Mapped[str] = mapped_column(String(255), default="")
    description: Mapped[str] = mapped_column(String(300), default="")
    holds_personal_data: Mapped[bool] = mapped_column(Boolean, default=False)
    redacted_copy_of_id: Mapped[int | None] = mapped_column(
        ForeignKey("attachments.id"), index=True
    )
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    uploaded_by: Mapped[User | None] = relationship(lazy="joined")

    @property
    def kind_label(self) -> str:
        """PDF, JPEG or PNG."""
        return MEDIA_TYPES.get(self.media_type, self.media_type)

    @property
    def safe_file_name(self) -> str:
        """The name it is served under: made from its id, never from what was uploaded."""
        return f"attachment-{self.id}.{EXTENSIONS.get(self.media_type, 'bin')}"


DRAFT, ISSUED = "draft", "issued"
BUNDLE_STATUSES = {DRAFT: "Draft", ISSUED: "Issued"}
REVIEW_KINDS = {
    "standard": "Review under s.51 of the Licensing Act 2003",
    "summary": "Summary review under s.53A of the Licensing Act 2003",
}


class Bundle(Base):
    """One version of an evidence bundle for a premises over a period.

    A draft is rebuilt whenever its selection changes; an issued bundle never changes
    (a change means a new version under the same reference). Each build renders two
    copies: the police copy (unredacted, with the schedule of unused material) and the
    shared copy (personal data redacted) that the licensing authority receives. The
    files sit in the evidence store under the hashes kept here.
    """

    __tablename__ = "bundles"
    __table_args__ = (UniqueConstraint("reference", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    premises_id: Mapped[int] = mapped_column(ForeignKey("premises.id"), index=True)
    reference: Mapped[str] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(16), default=DRAFT)
    period_from: Mapped[date] = mapped_column(Date)
    period_to: Mapped[date] = mapped_column(Date)
    review_kind: Mapped[str] = mapped_column(String(16), default="standard")
    statement: Mapped[str] = mapped_column(Text, default="")
    built_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    built_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    generator_version: Mapped[str] = mapped_column(String(32), default="")
    # The premises' audit chain head when the bundle was built: the bundle shows the
    # record up to this event, and the manifest carries it.
    audit_chain: Mapped[str] = mapped_column(String(64), default="")
    audit_seq: Mapped[int] = mapped_column(Integer, default=0)
    audit_head_hash: Mapped[str] = mapped_column(String(64), default="")
    police_pdf_sha256: Mapped[str] = mapped_column(String(64), default="")
    police_zip_sha256: Mapped[str] = mapped_column(String(64), default="")
    shared_pdf_sha256: Mapped[str] = mapped_column(String(64), default="")
    shared_zip_sha256: Mapped[str] = mapped_column(String(64), default="")
    page_count: Mapped[int] = mapped_column(Integer, default=0)
    # The shared copy's index as printed, JSON [[title, page], ...], shown in the browser.
    index_json: Mapped[str] = mapped_column(Text, default="[]")
    issued_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    issued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    shared_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    shared_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lock_version: Mapped[int] = mapped_column(Integer, default=1)

    premises: Mapped[Premises] = relationship(lazy="joined")
    built_by: Mapped[User | None] = relationship(lazy="joined", foreign_keys=[built_by_id])
    issued_by: Mapped[User | None] = relationship(foreign_keys=[issued_by_id])
    shared_by: Mapped[User | None] = relationship(foreign_keys=[shared_by_id])
    acknowledged_by: Mapped[User | None] = relationship(foreign_keys=[acknowledged_by_id])

    # Two people changing the same draft at once: the second gets a conflict.
    __mapper_args__ = {"version_id_col": lock_version}

    @property
    def label(self) -> str:
        """The reference and version as people quote them: "EB-00042-01 v2"."""
        return f"{self.reference} v{self.version}"


ITEM_KINDS = {
    "incident": "Incident",
    "visit": "Visit",
    "event": "Workflow event",
    "action_plan": "Action plan",
    "letter": "Letter",
    "attachment": "Attachment",
}


class BundleItem(Base):
    """A record considered for a bundle: included, or excluded with the officer's reason
    (which puts it on the police-only schedule of unused material)."""

    __tablename__ = "bundle_items"
    __table_args__ = (
        UniqueConstraint("bundle_id", "kind", "ref_id"),
        Index("ix_bundle_items_bundle_id_occurred_at", "bundle_id", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    bundle_id: Mapped[int] = mapped_column(ForeignKey("bundles.id"))
    kind: Mapped[str] = mapped_column(String(16))
    ref_id: Mapped[int] = mapped_column(Integer)
    reference: Mapped[str] = mapped_column(String(160), default="")
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    included: Mapped[bool] = mapped_column(Boolean, default=True)
    exclusion_reason: Mapped[str | None] = mapped_column(Text)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class BundleRedaction(Base):
    """One line of a bundle's redaction log: what kind of data was redacted, in which
    item, on which page of the shared copy, how often. Never the value itself."""

    __tablename__ = "bundle_redactions"

    id: Mapped[int] = mapped_column(primary_key=True)
    bundle_id: Mapped[int] = mapped_column(ForeignKey("bundles.id"), index=True)
    category: Mapped[str] = mapped_column(String(32))
    item: Mapped[str] = mapped_column(String(160))
    page: Mapped[int] = mapped_column(Integer)
    occurrences: Mapped[int] = mapped_column(Integer, default=1)


class BundleBlocker(Base):
    """A problem that stops a draft being issued, e.g. a known witness's name found in
    the text of an attachment going into the shared copy. Worked out at each build."""

    __tablename__ = "bundle_blockers"

    id: Mapped[int] = mapped_column(primary_key=True)
    bundle_id: Mapped[int] = mapped_column(ForeignKey("bundles.id"), index=True)
    attachment_id: Mapped[int | None] = mapped_column(ForeignKey("attachments.id"))
    problem: Mapped[str] = mapped_column(Text)


ACCESS_ACTIONS = {
    "view": "Viewed the bundle page",
    "pdf": "Downloaded the PDF",
    "zip": "Downloaded the ZIP",
    "acknowledge": "Acknowledged receipt",
}


class BundleAccess(Base):
    """Who opened or downloaded which copy of a bundle, and when."""

    __tablename__ = "bundle_accesses"
    __table_args__ = (Index("ix_bundle_accesses_bundle_id_at", "bundle_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    bundle_id: Mapped[int] = mapped_column(ForeignKey("bundles.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(16))
    variant: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    user: Mapped[User | None] = relationship(lazy="joined")


class BundleComment(Base):
    """A comment on a shared bundle, by a council officer or the police."""

    __tablename__ = "bundle_comments"

    id: Mapped[int] = mapped_column(primary_key=True)
    bundle_id: Mapped[int] = mapped_column(ForeignKey("bundles.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    user: Mapped[User | None] = relationship(lazy="joined")
