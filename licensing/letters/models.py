"""Standard letter templates (every version kept) and the letters issued from them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from licensing.auth.models import User
from licensing.db import Base, UTCDateTime, utcnow
from licensing.premises.models import Premises


class LetterTemplate(Base):
    """One standard letter (first warning, meeting invitation …), by its fixed `key`.

    The wording lives in its versions; `current_version` names the one used for new
    letters. `lock_version` makes two admins saving the same template at once a
    conflict rather than one silently replacing the other.
    """

    __tablename__ = "letter_templates"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(32), unique=True)
    title: Mapped[str] = mapped_column(String(120))
    current_version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    lock_version: Mapped[int] = mapped_column(Integer, default=1)

    versions: Mapped[list[LetterTemplateVersion]] = relationship(
        back_populates="template", order_by="LetterTemplateVersion.version.desc()"
    )

    __mapper_args__ = {"version_id_col": lock_version}


class LetterTemplateVersion(Base):
    """The wording of a template as saved once: never changed afterwards, so an issued
    letter can always say exactly which text it was made from."""

    __tablename__ = "letter_template_versions"
    __table_args__ = (UniqueConstraint("template_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("letter_templates.id"))
    version: Mapped[int] = mapped_column(Integer)
    subject: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    # None for the wording the migration seeded.
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    template: Mapped[LetterTemplate] = relationship(back_populates="versions")
    created_by: Mapped[User | None] = relationship(lazy="joined")


class Letter(Base):
    """A letter issued to a premises: the PDF sits in the evidence store under its
    SHA-256; this row says what it was made from, by whom and when."""

    __tablename__ = "letters"
    __table_args__ = (Index("ix_letters_premises_id_issued_at", "premises_id", "issued_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    premises_id: Mapped[int] = mapped_column(ForeignKey("premises.id"))
    template_key: Mapped[str] = mapped_column(String(32))
    template_version_id: Mapped[int] = mapped_column(ForeignKey("letter_template_versions.id"))
    template_version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(120))
    subject: Mapped[str] = mapped_column(Text)
    issued_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)

    premises: Mapped[Premises] = relationship(lazy="joined")
    issued_by: Mapped[User] = relationship(lazy="joined")

    @property
    def file_name(self) -> str:
        """The download's name: made from the id and key, never from anything typed."""
        return f"letter-{self.id}-{self.template_key.replace('_', '-')}.pdf"
