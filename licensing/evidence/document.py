"""What goes into a bundle PDF, as plain values.

The bundle services (licensing.evidence.services) gather the premises' records, redact
them for the shared copy, and hand one `BundleDocument` per copy to the renderer
(licensing.evidence.pdf). The renderer only lays out what it is given: every text here is
already redacted where it must be, and is plain text (the renderer escapes it), so the
same document always gives the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

SHARED, POLICE = "shared", "police"


@dataclass(frozen=True)
class Cover:
    """The cover page: what the bundle is about and which copy this is."""

    premises_name: str
    licence_number: str
    address: str
    licence_holder: str
    dps: str
    authority: str
    review_kind: str  # e.g. "Review under s.51 of the Licensing Act 2003"
    reference: str  # e.g. "EB-00042-01"
    version: int
    variant: str  # SHARED or POLICE
    built_on: date  # the London date of the build: printed, so part of the inputs
    period_from: date
    period_to: date
    prepared_by: str = ""  # e.g. "Merseyside Police licensing team"


@dataclass(frozen=True)
class Field:
    """One labelled value in an item's section (e.g. "Category": "Public order")."""

    label: str
    value: str


@dataclass(frozen=True)
class ChronologyRow:
    """One line of the chronology table, oldest first."""

    when: str  # London time as shown, e.g. "Sat 14 Mar 2026 23:10" or "March 2026 (month only)"
    kind: str  # "Incident", "ASB report", "Visit", "Workflow event", ...
    reference: str  # e.g. "RMS-2026-001234"
    summary: str
    section_key: str  # the Section this row points to


@dataclass(frozen=True)
class Section:
    """One item of evidence: an incident, a visit, a workflow event, a statement."""

    key: str  # unique in the document, e.g. "incident-12"
    title: str  # the index and heading text, e.g. "Incident RMS-2026-001234"
    when: str
    fields: tuple[Field, ...] = ()
    body: str = ""  # free text; paragraphs separated by blank lines


@dataclass(frozen=True)
class MonthlyCounts:
    """Incidents per month by category, for the statistics chart and its table.

    `counts[c][m]` is the number of incidents of `categories[c]` in `months[m]`.
    """

    months: tuple[str, ...]  # "2026-01", ... every month of the period, in order
    categories: tuple[str, ...]
    counts: tuple[tuple[int, ...], ...]


@dataclass(frozen=True)
class AttachmentDoc:
    """A document or photo placed after the sections: a PDF's pages are merged in, an
    image is placed on a page of its own."""

    key: str  # e.g. "attachment-A03"
    title: str  # e.g. "A03: CCTV still, 14 March 2026 (JPEG)"
    media_type: str  # application/pdf, image/jpeg or image/png
    content: bytes
    sha256: str


@dataclass(frozen=True)
class UnusedItem:
    """An item left out of the bundle, with the officer's reason (police copy only)."""

    reference: str
    kind: str
    reason: str


@dataclass(frozen=True)
class BundleDocument:
    """Everything one copy of a bundle shows, in order."""

    cover: Cover
    statement: str  # the officer's statement or summary; may be empty
    chronology: tuple[ChronologyRow, ...]
    summary: tuple[Field, ...]  # headline figures, e.g. ("Confirmed incidents", "23")
    statistics: MonthlyCounts
    sections: tuple[Section, ...]
    attachments: tuple[AttachmentDoc, ...] = ()
    # The schedule of unused material: empty in the shared copy.
    unused: tuple[UnusedItem, ...] = ()
    redaction_note: str = ""  # shared copy: how personal data was redacted


@dataclass(frozen=True)
class RenderedBundle:
    """A rendered PDF and where things landed in it (1-based page numbers)."""

    pdf: bytes
    page_count: int
    # First page of every section: "cover", "index", "statement", "chronology",
    # "statistics", "unused" (police copy), each Section.key and each AttachmentDoc.key.
    section_pages: dict[str, int] = field(default_factory=dict)
    # The index as printed: (title, page) in order.
    index: tuple[tuple[str, int], ...] = ()
