"""Render a `BundleDocument` as an A4 evidence bundle PDF.

ReportLab platypus lays out the bundle: cover, index, statement, chronology, summary
statistics (with a chart and the same figures as a table), one section per item, the
schedule of unused material (police copy only) and the attachments. Pages of PDF
attachments are merged in afterwards with pypdf: the story holds one placeholder page per
attachment page, so page numbers, the index and "Page X of Y" are right before merging.

Page numbers come from a second layout pass: the first pass records the page every
heading lands on, the second prints those numbers in the index and the footers. The index
rows have a fixed-width page column, so the numbers cannot change the layout; the loop
still checks that the passes agree and goes round again if they do not.

Output is deterministic: ReportLab runs in invariant mode (its file identifier is a digest
of the content), the metadata dates are the build date printed on the cover, and pypdf
only merges pages into a clone of that file.
"""

from __future__ import annotations

import io
import multiprocessing
import re
import threading
import unicodedata
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import reportlab
from pypdf import PageObject, PdfReader, PdfWriter, Transformation
from pypdf.generic import ArrayObject, NameObject
from reportlab import rl_config
from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.charts.legends import Legend
from reportlab.graphics.shapes import Drawing
from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    BaseDocTemplate,
    Flowable,
    Frame,
    LongTable,
    PageBreak,
    PageTemplate,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)

from licensing.evidence.document import (
    POLICE,
    SHARED,
    AttachmentDoc,
    BundleDocument,
    Field,
    MonthlyCounts,
    RenderedBundle,
)

__all__ = ["render_bundle"]

# Fixed document metadata: nothing that changes between builds of the same document.
AUTHOR = "Police licensing team"
CREATOR = "Licensing enforcement: evidence bundle"
PRODUCER = "licensing.evidence.pdf (ReportLab, pypdf)"

# Reserved section_pages keys: a Section or attachment with one of these keys would make
# the map ambiguous.
RESERVED_KEYS = frozenset({"cover", "index", "statement", "chronology", "statistics", "unused"})

PAGE_WIDTH, PAGE_HEIGHT = A4
MARGIN_X = 20 * mm
MARGIN_TOP = 18 * mm
MARGIN_BOTTOM = 22 * mm  # leaves room for the footer
FOOTER_Y = 11 * mm
FRAME_WIDTH = PAGE_WIDTH - 2 * MARGIN_X
FRAME_HEIGHT = PAGE_HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
# An attachment page or image never gets less than this much of a page: a long heading
# pushes it onto the next page rather than shrinking it to a thumbnail.
MIN_ATTACHMENT_HEIGHT = FRAME_HEIGHT * 0.5
MAX_PASSES = 4

BLACK = colors.HexColor("#0b0c0c")  # GOV.UK text colour
SECONDARY = colors.HexColor("#505a5f")
BORDER = colors.HexColor("#b1b4b6")
LIGHT_FILL = colors.HexColor("#f3f2f1")
# Distinguishable GOV.UK palette colours for chart categories, in order of use.
CHART_COLOURS = tuple(
    colors.HexColor(c)
    for c in (
        "#1d70b8",
        "#f47738",
        "#00703c",
        "#4c2c92",
        "#d4351c",
        "#28a197",
        "#d53880",
        "#b58840",
        "#505a5f",
        "#6f72af",
        "#85994b",
        "#912b88",
    )
)

MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)

FONT = "BundleSans"
FONT_BOLD = "BundleSans-Bold"
FONT_ITALIC = "BundleSans-Italic"
FONT_BOLD_ITALIC = "BundleSans-BoldItalic"
MONO = "Courier"  # SHA-256 digests are ASCII hex: a standard font is enough

_FONT_FILES = {
    FONT: "Vera.ttf",
    FONT_BOLD: "VeraBd.ttf",
    FONT_ITALIC: "VeraIt.ttf",
    FONT_BOLD_ITALIC: "VeraBI.ttf",
}
_font_lock = threading.Lock()
_supported_chars: frozenset[str] = frozenset()


def _register_fonts() -> None:
    """Register the Bitstream Vera faces shipped with ReportLab (once per process).

    They are TrueType, so ReportLab embeds a subset with a ToUnicode map: text extraction
    works and the PDF looks the same everywhere.
    """
    global _supported_chars
    with _font_lock:
        if _supported_chars:
            return
        font_dir = Path(reportlab.__file__).parent / "fonts"
        faces = {}
        for name, filename in _FONT_FILES.items():
            face = TTFont(name, str(font_dir / filename))
            pdfmetrics.registerFont(face)
            faces[name] = face
        pdfmetrics.registerFontFamily(
            FONT, normal=FONT, bold=FONT_BOLD, italic=FONT_ITALIC, boldItalic=FONT_BOLD_ITALIC
        )
        # The four faces cover the same characters; a character is drawable when the
        # regular face maps it to a real glyph (0 is .notdef, the empty box).
        char_map = faces[FONT].face.charToGlyph
        _supported_chars = frozenset(
            chr(code)
            for code, glyph in char_map.items()
            if glyph and code >= 0x20 and code != 0xFFFF and not 0x7F <= code < 0xA0
        ) | {"\n"}


# ---------------------------------------------------------------------------------------
# Text: everything in a BundleDocument is plain text typed by users.


def _plain(text: str) -> str:
    """Text the embedded font can draw, with nothing silently lost.

    Newlines are kept (callers decide what they mean), tabs become spaces, and any
    character the font has no glyph for (emoji, most non-Latin scripts, control and
    bidi-override characters, lone surrogates) is shown as a visible "[U+XXXX]" token:
    an empty box or a dropped character could change the meaning of evidence.
    """
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    if _supported_chars.issuperset(text):
        return text
    return "".join(ch if ch in _supported_chars else f"[U+{ord(ch):04X}]" for ch in text)


def _markup(text: str) -> str:
    """Plain text as ReportLab paragraph markup that renders literally."""
    return escape(_plain(text)).replace("\n", "<br/>")


def _line(text: str) -> str:
    """Plain text for a single drawn line (footer, chart labels): no markup, no breaks."""
    return " ".join(_plain(text).split())


def _paragraphs(text: str) -> list[str]:
    """Free text split into paragraphs at blank lines, as markup."""
    parts = re.split(r"\n[ \t]*\n", text.replace("\r\n", "\n").replace("\r", "\n").strip())
    return [_markup(part.strip("\n")) for part in parts if part.strip()]


def _long_date(value: date) -> str:
    """e.g. "14 March 2026"; month names are fixed so the locale cannot change output."""
    return f"{value.day} {MONTHS[value.month - 1]} {value.year}"


def _month_label(month: str, short: bool = False) -> str:
    """ "2026-03" as "March 2026" (or "Mar 2026"); anything else is shown as given."""
    match = re.fullmatch(r"(\d{4})-(\d{2})", month)
    if not match or not 1 <= int(match[2]) <= 12:
        return _line(month)
    name = MONTHS[int(match[2]) - 1]
    return f"{name[:3] if short else name} {match[1]}"


# ---------------------------------------------------------------------------------------
# Styles


@dataclass(frozen=True)
class _Styles:
    body: ParagraphStyle
    small: ParagraphStyle
    caption: ParagraphStyle
    kicker: ParagraphStyle
    title: ParagraphStyle
    subtitle: ParagraphStyle
    h1: ParagraphStyle
    h2: ParagraphStyle
    when: ParagraphStyle
    cell: ParagraphStyle
    cell_bold: ParagraphStyle
    cell_right: ParagraphStyle
    cell_right_bold: ParagraphStyle
    index_0: ParagraphStyle
    index_1: ParagraphStyle
    notice: ParagraphStyle
    digest: ParagraphStyle


def _make_styles() -> _Styles:
    base = ParagraphStyle(
        "body",
        fontName=FONT,
        fontSize=10.5,
        leading=15,
        textColor=BLACK,
        spaceAfter=7,
    )

    def style(name: str, **kw: Any) -> ParagraphStyle:
        return ParagraphStyle(name, parent=base, **kw)

    cell = style("cell", fontSize=9.5, leading=12.5, spaceAfter=0)
    return _Styles(
        body=base,
        small=style("small", fontSize=9, leading=12.5),
        caption=style("caption", fontSize=9, leading=12, textColor=SECONDARY, spaceAfter=4),
        kicker=style("kicker", fontSize=15, leading=20, textColor=SECONDARY, spaceAfter=4),
        title=style("title", fontName=FONT_BOLD, fontSize=26, leading=31, spaceAfter=10),
        subtitle=style("subtitle", fontSize=14, leading=19, spaceAfter=18),
        h1=style("h1", fontName=FONT_BOLD, fontSize=19, leading=24, spaceAfter=12, keepWithNext=1),
        h2=style(
            "h2",
            fontName=FONT_BOLD,
            fontSize=13.5,
            leading=18,
            spaceBefore=16,
            spaceAfter=3,
            keepWithNext=1,
        ),
        when=style("when", textColor=SECONDARY, spaceAfter=7, keepWithNext=1),
        cell=cell,
        cell_bold=ParagraphStyle("cell_bold", parent=cell, fontName=FONT_BOLD),
        cell_right=ParagraphStyle("cell_right", parent=cell, alignment=TA_RIGHT),
        cell_right_bold=ParagraphStyle(
            "cell_right_bold", parent=cell, alignment=TA_RIGHT, fontName=FONT_BOLD
        ),
        index_0=ParagraphStyle("index_0", parent=cell, fontName=FONT_BOLD),
        index_1=ParagraphStyle("index_1", parent=cell, leftIndent=12),
        notice=style("notice", fontName=FONT_BOLD, fontSize=12, leading=17, spaceAfter=0),
        digest=style("digest", fontName=MONO, fontSize=8.5, leading=11, spaceAfter=10),
    )


_styles_cache: list[_Styles] = []


def _styles() -> _Styles:
    if not _styles_cache:
        _register_fonts()
        _styles_cache.append(_make_styles())
    return _styles_cache[0]


def _table(
    rows: list[list[Any]],
    widths: list[float],
    header: bool = True,
    zebra: bool = False,
) -> LongTable:
    """A plain GOV.UK-like table: rules between rows, bold header repeated on each page.

    splitInRow lets a row taller than a page (a very long summary) break across pages
    instead of failing the whole render.
    """
    table = LongTable(
        rows,
        colWidths=widths,
        repeatRows=1 if header else 0,
        splitInRow=1,
        hAlign="LEFT",
    )
    commands: list[tuple[Any, ...]] = [
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), 4),
        ("RIGHTPADDING", (0, 0), (-1, -1), 6),
        ("TOPPADDING", (0, 0), (-1, -1), 5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 6),
        ("LINEBELOW", (0, 0), (-1, -1), 0.5, BORDER),
    ]
    if header:
        commands += [
            ("LINEBELOW", (0, 0), (-1, 0), 1.2, BLACK),
            ("BACKGROUND", (0, 0), (-1, 0), LIGHT_FILL),
        ]
    table.setStyle(TableStyle(commands))
    return table


# ---------------------------------------------------------------------------------------
# The plan: everything worked out once per render (validation, attachment sizes, index).


@dataclass(frozen=True)
class _Entry:
    """A heading the index, the outline and section_pages know about."""

    dest: str  # PDF named destination, also the key of _PassState.pages
    title: str
    level: int  # 0: a part of the bundle; 1: an item within a part
    key: str | None  # the section_pages key, if any
    printed: bool  # listed in the printed index


@dataclass
class _ImageInfo:
    width: int  # as displayed, after the EXIF orientation
    height: int
    orientation: int


@dataclass
class _PdfInfo:
    reader: PdfReader
    sizes: list[tuple[float, float]]  # each page as displayed (after /Rotate)


@dataclass
class _Plan:
    document: BundleDocument
    entries: list[_Entry] = field(default_factory=list)
    images: dict[str, _ImageInfo] = field(default_factory=dict)
    pdfs: dict[str, _PdfInfo] = field(default_factory=dict)

    def add(self, title: str, level: int, key: str | None, printed: bool = True) -> _Entry:
        entry = _Entry(f"d{len(self.entries)}", title, level, key, printed)
        self.entries.append(entry)
        return entry


def _validate(document: BundleDocument) -> None:
    """Refuse documents the renderer cannot show faithfully, with a clear reason."""
    cover = document.cover
    if cover.variant not in (SHARED, POLICE):
        raise ValueError(f"unknown bundle copy {cover.variant!r}")
    if cover.variant == SHARED and document.unused:
        # Fail closed: the schedule of unused material must never reach the shared copy.
        raise ValueError("the shared copy must not carry the schedule of unused material")
    seen: set[str] = set()
    for key in [s.key for s in document.sections] + [a.key for a in document.attachments]:
        if not key or key in RESERVED_KEYS or key in seen:
            raise ValueError(f"section or attachment key {key!r} is empty, reserved or repeated")
        seen.add(key)
    stats = document.statistics
    if len(stats.counts) != len(stats.categories) or any(
        len(row) != len(stats.months) or any(n < 0 for n in row) for row in stats.counts
    ):
        raise ValueError("statistics.counts must be one row of counts (>= 0) per category")
    for attachment in document.attachments:
        if attachment.media_type not in ("application/pdf", "image/jpeg", "image/png"):
            raise ValueError(
                f"attachment {attachment.key!r}: unsupported type {attachment.media_type!r}"
            )


def _read_image(attachment: AttachmentDoc) -> _ImageInfo:
    try:
        reader = ImageReader(io.BytesIO(attachment.content))
        width, height = reader.getSize()
        # EXIF orientation: phone photos are often stored sideways with a tag saying how
        # to turn them. PDF viewers ignore the tag, so the renderer applies it.
        image = getattr(reader, "_image", None)
        orientation = int(image.getexif().get(0x0112, 1)) if image is not None else 1
    except Exception as exc:
        raise ValueError(f"attachment {attachment.key!r}: cannot read the image ({exc})") from exc
    if not 1 <= orientation <= 8:
        orientation = 1
    if width <= 0 or height <= 0:
        raise ValueError(f"attachment {attachment.key!r}: the image is empty")
    if orientation >= 5:
        width, height = height, width
    return _ImageInfo(width, height, orientation)


def _read_pdf(attachment: AttachmentDoc) -> _PdfInfo:
    try:
        reader = PdfReader(io.BytesIO(attachment.content))
        if reader.is_encrypted and not reader.decrypt(""):
            raise ValueError("it is encrypted")
        sizes = []
        for page in reader.pages:
            box = page.cropbox
            width, height = float(box.width), float(box.height)
            if page.rotation % 180:
                width, height = height, width
            sizes.append((abs(width), abs(height)))
    except Exception as exc:
        raise ValueError(f"attachment {attachment.key!r}: cannot read the PDF ({exc})") from exc
    if not sizes:
        raise ValueError(f"attachment {attachment.key!r}: the PDF has no pages")
    if any(w < 1 or h < 1 for w, h in sizes):
        raise ValueError(f"attachment {attachment.key!r}: the PDF has an empty page")
    return _PdfInfo(reader, sizes)


def _plan(document: BundleDocument) -> _Plan:
    _validate(document)
    plan = _Plan(document)
    plan.add("Cover", 0, "cover", printed=False)
    plan.add("Index", 0, "index", printed=False)
    if document.statement.strip():
        plan.add("Statement", 0, "statement")
    plan.add("Chronology", 0, "chronology")
    plan.add("Summary statistics", 0, "statistics")
    if document.sections:
        plan.add("Evidence items", 0, None)
        for section in document.sections:
            plan.add(section.title, 1, section.key)
    if document.cover.variant == POLICE and document.unused:
        plan.add("Schedule of unused material", 0, "unused")
    if document.attachments:
        plan.add("Attachments", 0, None)
        for attachment in document.attachments:
            plan.add(attachment.title, 1, attachment.key)
            if attachment.media_type == "application/pdf":
                plan.pdfs[attachment.key] = _read_pdf(attachment)
            else:
                plan.images[attachment.key] = _read_image(attachment)
    return plan


# ---------------------------------------------------------------------------------------
# Layout passes


@dataclass
class _Placement:
    """Where an attachment PDF page goes: a placeholder page and its box on it."""

    page: int  # 1-based page of the ReportLab output
    key: str
    index: int  # 0-based page of the attachment
    box: tuple[float, float, float, float]  # x, y, width, height in points


@dataclass
class _PassState:
    known_pages: dict[str, int]  # dest -> page from the previous pass (empty on the first)
    known_total: int
    draw_images: bool
    pages: dict[str, int] = field(default_factory=dict)  # dest -> page found in this pass
    placements: list[_Placement] = field(default_factory=list)
    total: int = 0


class _Heading(Paragraph):
    """A heading that tells the document template which page it starts on."""

    entry: _Entry | None = None

    def split(self, availWidth: float, availHeight: float) -> list[Flowable]:  # noqa: N803
        parts = super().split(availWidth, availHeight)
        if parts:
            # Only the first part starts the section; later parts must not re-anchor it.
            parts[0].entry = self.entry
        return parts


def _heading(text: str, style: ParagraphStyle, entry: _Entry) -> _Heading:
    heading = _Heading(_markup(text), style)
    heading.entry = entry
    return heading


class _FittedImage(Flowable):
    """An image scaled to fit the space left on its page, turned per its EXIF tag."""

    def __init__(self, content: bytes, info: _ImageInfo, state: _PassState) -> None:
        super().__init__()
        self.content = content
        self.info = info
        self.state = state

    def wrap(self, availWidth: float, availHeight: float) -> tuple[float, float]:  # noqa: N803
        if availHeight < MIN_ATTACHMENT_HEIGHT:
            return availWidth, FRAME_HEIGHT + 1  # does not fit: go to the next page
        scale = min(availWidth / self.info.width, (availHeight - 1) / self.info.height)
        self.width, self.height = self.info.width * scale, self.info.height * scale
        return self.width, self.height

    def draw(self) -> None:
        if not self.state.draw_images:
            return  # layout passes only need the size; decoding 50 photos twice is waste
        # Map the stored image's unit square onto the displayed box. Corners in stored
        # (u right, v down) coordinates go to displayed (x right, y down) coordinates.
        turn = _ORIENTATIONS[self.info.orientation]
        w, h = self.width, self.height

        def to_pdf(u: float, v: float) -> tuple[float, float]:
            x, y = turn(u, v)
            return x * w, (1 - y) * h

        # The image XObject's (0,0) is the stored bottom-left, (1,0) bottom-right,
        # (0,1) top-left.
        ox, oy = to_pdf(0, 1)
        ax, ay = to_pdf(1, 1)
        bx, by = to_pdf(0, 0)
        canv = self.canv
        canv.saveState()
        canv.transform(ax - ox, ay - oy, bx - ox, by - oy, ox, oy)
        canv.drawImage(ImageReader(io.BytesIO(self.content)), 0, 0, 1, 1)
        canv.restoreState()
        canv.setStrokeColor(BORDER)
        canv.setLineWidth(0.5)
        canv.rect(0, 0, w, h)


# EXIF orientation -> map from stored to displayed normalised coordinates (y down).
_ORIENTATIONS = {
    1: lambda u, v: (u, v),
    2: lambda u, v: (1 - u, v),
    3: lambda u, v: (1 - u, 1 - v),
    4: lambda u, v: (u, 1 - v),
    5: lambda u, v: (v, u),
    6: lambda u, v: (1 - v, u),
    7: lambda u, v: (1 - v, 1 - u),
    8: lambda u, v: (v, 1 - u),
}


class _AttachmentPage(Flowable):
    """Holds the rest of a page for one page of a PDF attachment, merged in later."""

    def __init__(self, key: str, index: int, size: tuple[float, float], state: _PassState):
        super().__init__()
        self.key, self.index, self.size, self.state = key, index, size, state

    def wrap(self, availWidth: float, availHeight: float) -> tuple[float, float]:  # noqa: N803
        if availHeight < MIN_ATTACHMENT_HEIGHT:
            return availWidth, FRAME_HEIGHT + 1  # does not fit: go to the next page
        self.width, self.height = availWidth, availHeight - 1
        return self.width, self.height

    def drawOn(self, canvas: Canvas, x: float, y: float, _sW: float = 0) -> None:  # noqa: N802,N803
        # Record the box in page coordinates: that is where pypdf puts the page.
        page_w, page_h = self.size
        scale = min(self.width / page_w, self.height / page_h)
        w, h = page_w * scale, page_h * scale
        box = (x + (self.width - w) / 2, y + self.height - h, w, h)
        self.state.placements.append(_Placement(canvas.getPageNumber(), self.key, self.index, box))
        canvas.saveState()
        canvas.setStrokeColor(BORDER)
        canvas.setLineWidth(0.5)
        canvas.rect(*box)
        canvas.restoreState()

    def draw(self) -> None:
        """Nothing: drawOn draws the frame for the page that is merged in later."""


def _not_drawn(*_args: Any, **_kwargs: Any) -> None:
    """Stands in for a flowable's drawOn in a measuring pass."""


class _MeasuringFrame(Frame):
    """A frame that places flowables without drawing them.

    The first pass only finds the page each heading lands on, and where a flowable lands
    depends only on its size (wrap and split), never on its drawing; drawing is most of a
    pass's time. `_layout` still checks the next (drawn) pass against this one.
    """

    def _add(self, flowable: Flowable, canv: Canvas, trySplit: int = 0) -> int:  # noqa: N803
        # Shadow the method on this instance only for this placement; nested flowables
        # are drawn by their parent's drawOn, so they are skipped with it.
        flowable.__dict__["drawOn"] = _not_drawn
        try:
            return int(super()._add(flowable, canv, trySplit))
        finally:
            flowable.__dict__.pop("drawOn", None)

    add = _add  # Frame's own alias: the document template calls frame.add


class _BundleTemplate(BaseDocTemplate):
    """A4 pages with the footer; records the page every heading lands on. In a measuring
    pass (no page numbers known yet) nothing is drawn and no file is written."""

    def __init__(self, out: io.BytesIO, plan: _Plan, state: _PassState) -> None:
        cover = plan.document.cover
        self.plan, self.state = plan, state
        self.measuring = not state.draw_images  # the first pass
        # BaseDocTemplate._endBuild saves (serialises) the PDF unless this is false.
        self._doSave = 0 if self.measuring else 1
        copy = "Police copy — NOT FOR DISCLOSURE" if cover.variant == POLICE else "Shared copy"
        self.footer_left = _line(f"Evidence bundle {cover.reference} v{cover.version} · {copy}")
        super().__init__(
            out,
            pagesize=A4,
            leftMargin=MARGIN_X,
            rightMargin=MARGIN_X,
            topMargin=MARGIN_TOP,
            bottomMargin=MARGIN_BOTTOM,
            title=_document_title(plan.document),
            author=AUTHOR,
            subject=_copy_name(plan.document),
            creator=CREATOR,
            producer=PRODUCER,
            invariant=1,
            lang="en-GB",
            displayDocTitle=1,
            initialFontName=FONT,
        )
        frame = (_MeasuringFrame if self.measuring else Frame)(
            MARGIN_X,
            MARGIN_BOTTOM,
            FRAME_WIDTH,
            FRAME_HEIGHT,
            leftPadding=0,
            rightPadding=0,
            topPadding=0,
            bottomPadding=0,
            id="body",
        )
        self.addPageTemplates([PageTemplate("page", [frame], onPage=self._footer)])

    def _footer(self, canv: Canvas, _doc: BaseDocTemplate) -> None:
        if self.measuring:
            return
        total = self.state.known_total or "?"
        canv.saveState()
        canv.setStrokeColor(BORDER)
        canv.setLineWidth(0.5)
        canv.line(MARGIN_X, FOOTER_Y + 11, PAGE_WIDTH - MARGIN_X, FOOTER_Y + 11)
        canv.setFillColor(BLACK)
        canv.setFont(FONT, 8.5)
        canv.drawString(MARGIN_X, FOOTER_Y, self.footer_left)
        canv.drawRightString(
            PAGE_WIDTH - MARGIN_X, FOOTER_Y, f"Page {canv.getPageNumber()} of {total}"
        )
        canv.restoreState()

    def afterFlowable(self, flowable: Flowable) -> None:  # noqa: N802
        """Note where each heading landed, and give it a bookmark and an outline entry."""
        entry = getattr(flowable, "entry", None)
        if entry is None or entry.dest in self.state.pages:
            return
        self.state.pages[entry.dest] = self.page
        top = self.frame._y + getattr(flowable, "height", 0) + 8
        self.canv.bookmarkPage(entry.dest, fit="XYZ", left=0, top=min(top, PAGE_HEIGHT))
        self.canv.addOutlineEntry(_line(entry.title), entry.dest, level=entry.level)

    def handle_documentBegin(self) -> None:  # noqa: N802
        """Open the outline panel when the PDF is opened: long bundles need it."""
        super().handle_documentBegin()
        self.canv.showOutline()
        # Invariant mode would stamp 1 January 2000; the build date is an input, so use it.
        built = self.plan.document.cover.built_on
        self.canv.setDateFormatter(lambda *_: f"D:{built:%Y%m%d}000000Z")


def _copy_name(document: BundleDocument) -> str:
    return "Police copy" if document.cover.variant == POLICE else "Shared copy"


def _document_title(document: BundleDocument) -> str:
    cover = document.cover
    return _line(f"Evidence bundle {cover.reference} v{cover.version}")


def _build_pass(plan: _Plan, state: _PassState) -> bytes:
    out = io.BytesIO()
    template = _BundleTemplate(out, plan, state)
    template.build(_story(plan, state))
    state.total = template.page
    return out.getvalue()


# ---------------------------------------------------------------------------------------
# The story


def _story(plan: _Plan, state: _PassState) -> list[Flowable]:
    doc = plan.document
    s = _styles()
    entries = iter(plan.entries)
    story: list[Flowable] = []

    def start(style: ParagraphStyle, new_page: bool = True) -> None:
        entry = next(entries)
        if new_page:
            story.append(PageBreak())
        story.append(_heading(entry.title, style, entry))

    story += _cover(doc, next(entries), s)
    start(s.h1)  # Index
    story += _index(plan, state, s)
    if doc.statement.strip():
        start(s.h1)
        story += [Paragraph(p, s.body) for p in _paragraphs(doc.statement)]
    start(s.h1)
    story += _chronology(doc, plan, s)
    start(s.h1)
    story += _statistics(doc, s)
    if doc.sections:
        start(s.h1)
        for section in doc.sections:
            entry = next(entries)
            story.append(_heading(section.title, s.h2, entry))
            if section.when.strip():
                story.append(Paragraph(_markup(section.when), s.when))
            if section.fields:
                story.append(_fields_table(section.fields, s))
                story.append(Spacer(1, 6))
            story += [Paragraph(p, s.body) for p in _paragraphs(section.body)]
    if doc.cover.variant == POLICE and doc.unused:
        start(s.h1)
        story.append(
            Paragraph(
                "Police copy only. Not for disclosure: the items below were left out of "
                "this bundle, with the reason for each.",
                s.body,
            )
        )
        rows: list[list[Any]] = [
            [Paragraph(t, s.cell_bold) for t in ("Reference", "Type", "Reason")]
        ]
        rows += [
            [
                Paragraph(_markup(item.reference), s.cell),
                Paragraph(_markup(item.kind), s.cell),
                Paragraph(_markup(item.reason), s.cell),
            ]
            for item in doc.unused
        ]
        story.append(_table(rows, [FRAME_WIDTH * 0.25, FRAME_WIDTH * 0.2, FRAME_WIDTH * 0.55]))
    if doc.attachments:
        start(s.h1)
        story += _attachment_list(doc, plan, s)
        for attachment in doc.attachments:
            story += _attachment(attachment, next(entries), plan, state, s)
    return story


def _cover(doc: BundleDocument, entry: _Entry, s: _Styles) -> list[Flowable]:
    cover = doc.cover
    kicker = _heading("Evidence bundle", s.kicker, entry)
    rows = [
        ("Premises licence number", cover.licence_number),
        ("Premises address", cover.address),
        ("Licence holder", cover.licence_holder),
        ("Designated premises supervisor", cover.dps),
        ("Licensing authority", cover.authority),
        ("Bundle reference", f"{cover.reference}, version {cover.version}"),
        ("Period covered", f"{_long_date(cover.period_from)} to {_long_date(cover.period_to)}"),
        ("Date built", _long_date(cover.built_on)),
    ]
    if cover.prepared_by.strip():
        rows.append(("Prepared by", cover.prepared_by))
    details = _table(
        [[Paragraph(escape(k), s.cell_bold), Paragraph(_markup(v), s.cell)] for k, v in rows],
        [FRAME_WIDTH * 0.36, FRAME_WIDTH * 0.64],
        header=False,
    )
    if cover.variant == POLICE:
        notice = (
            "Police copy — NOT FOR DISCLOSURE: contains personal data and the schedule "
            "of unused material"
        )
    else:
        notice = "Shared copy — personal data redacted"
    notice_parts: list[Flowable] = [Paragraph(escape(notice), s.notice)]
    if doc.redaction_note.strip():
        notice_parts += [Spacer(1, 6)] + [
            Paragraph(p, ParagraphStyle("n", parent=s.small, spaceAfter=2))
            for p in _paragraphs(doc.redaction_note)
        ]
    box = Table([[notice_parts]], colWidths=[FRAME_WIDTH], hAlign="LEFT")
    box.setStyle(
        TableStyle(
            [
                ("BOX", (0, 0), (-1, -1), 2, BLACK),
                ("LEFTPADDING", (0, 0), (-1, -1), 12),
                ("RIGHTPADDING", (0, 0), (-1, -1), 12),
                ("TOPPADDING", (0, 0), (-1, -1), 10),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 12),
            ]
        )
    )
    return [
        Spacer(1, 20 * mm),
        kicker,
        Paragraph(_markup(cover.premises_name), s.title),
        Paragraph(_markup(cover.review_kind), s.subtitle),
        details,
        Spacer(1, 14 * mm),
        box,
    ]


def _index(plan: _Plan, state: _PassState, s: _Styles) -> list[Flowable]:
    rows: list[list[Any]] = [
        [Paragraph("Section", s.cell_bold), Paragraph("Page", s.cell_right_bold)]
    ]
    for entry in plan.entries:
        if not entry.printed:
            continue
        # The page column is fixed-width and one line, so the numbers (unknown in the
        # first pass) never change the layout.
        page = state.known_pages.get(entry.dest)
        style = s.index_0 if entry.level == 0 else s.index_1
        rows.append(
            [
                Paragraph(f'<a href="#{entry.dest}">{_markup(entry.title)}</a>', style),
                Paragraph(str(page) if page else "", s.cell_right),
            ]
        )
    return [_table(rows, [FRAME_WIDTH - 22 * mm, 22 * mm])]


def _chronology(doc: BundleDocument, plan: _Plan, s: _Styles) -> list[Flowable]:
    if not doc.chronology:
        return [Paragraph("There are no entries in the chronology.", s.body)]
    dests = {e.key: e.dest for e in plan.entries if e.level == 1 and e.key}
    rows: list[list[Any]] = [
        [Paragraph(t, s.cell_bold) for t in ("When", "Type", "Reference", "Summary")]
    ]
    for row in doc.chronology:
        reference = _markup(row.reference)
        if row.section_key in dests:
            # Clickable in a viewer; prints the same as plain text.
            reference = f'<a href="#{dests[row.section_key]}">{reference}</a>'
        rows.append(
            [
                Paragraph(_markup(row.when), s.cell),
                Paragraph(_markup(row.kind), s.cell),
                Paragraph(reference, s.cell),
                Paragraph(_markup(row.summary), s.cell),
            ]
        )
    widths = [0.19, 0.13, 0.23, 0.45]
    return [_table(rows, [FRAME_WIDTH * w for w in widths])]


def _fields_table(fields: Iterable[Field], s: _Styles) -> LongTable:
    rows = [
        [Paragraph(_markup(f.label), s.cell_bold), Paragraph(_markup(f.value), s.cell)]
        for f in fields
    ]
    return _table(rows, [FRAME_WIDTH * 0.3, FRAME_WIDTH * 0.7], header=False)


def _statistics(doc: BundleDocument, s: _Styles) -> list[Flowable]:
    story: list[Flowable] = []
    if doc.summary:
        story += [_fields_table(doc.summary, s), Spacer(1, 14)]
    stats = doc.statistics
    story.append(
        Paragraph(
            "<b>Incidents per month by category</b>",
            ParagraphStyle("h3", parent=s.body, fontSize=12, leading=16, keepWithNext=1),
        )
    )
    if not stats.months or not stats.categories:
        story.append(Paragraph("There are no incidents to show for the period.", s.body))
        return story
    story.append(_chart(stats))
    story.append(
        Paragraph(
            "The same figures are in the table below.",
            s.caption,
        )
    )
    story.append(Spacer(1, 8))
    story.append(_counts_table(stats, s))
    return story


def _chart(stats: MonthlyCounts) -> Drawing:
    """A stacked bar chart: one bar per month, one coloured block per category."""
    n_months, n_cats = len(stats.months), len(stats.categories)
    legend_rows = (n_cats + 1) // 2
    plot_height = 170.0
    legend_height = legend_rows * 13 + 8
    drawing = Drawing(FRAME_WIDTH, plot_height + 60 + legend_height)
    chart = VerticalBarChart()
    chart.x, chart.y = 34, legend_height + 40
    chart.width, chart.height = FRAME_WIDTH - 44, plot_height
    chart.data = [list(row) for row in stats.counts]
    chart.categoryAxis.style = "stacked"
    chart.categoryAxis.categoryNames = [_month_label(m, short=True) for m in stats.months]
    labels = chart.categoryAxis.labels
    labels.fontName, labels.fontSize = FONT, 7.5
    if n_months > 8:
        labels.angle, labels.boxAnchor, labels.dy = 45, "ne", -2
    else:
        labels.boxAnchor, labels.dy = "n", -4
    totals = [sum(row[m] for row in stats.counts) for m in range(n_months)]
    peak = max(totals, default=0)
    step = _nice_step(peak)
    chart.valueAxis.valueMin = 0
    chart.valueAxis.valueMax = max(step, -(-peak // step) * step)
    chart.valueAxis.valueStep = step
    chart.valueAxis.labels.fontName = FONT
    chart.valueAxis.labels.fontSize = 7.5
    chart.valueAxis.labelTextFormat = "%d"
    chart.valueAxis.visibleGrid = 1
    chart.valueAxis.gridStrokeColor = colors.HexColor("#dddddd")
    chart.valueAxis.gridStrokeWidth = 0.5
    chart.barSpacing = 0
    chart.groupSpacing = max(2, int(chart.width / max(n_months, 1) * 0.3))
    for i in range(n_cats):
        chart.bars[i].fillColor = CHART_COLOURS[i % len(CHART_COLOURS)]
        chart.bars[i].strokeColor = colors.white
        chart.bars[i].strokeWidth = 0.3
    drawing.add(chart)
    legend = Legend()
    legend.x, legend.y = 34, legend_height - 4
    legend.alignment = "right"
    legend.fontName, legend.fontSize = FONT, 8
    legend.columnMaximum = legend_rows
    legend.deltax = FRAME_WIDTH / 2
    legend.dxTextSpace = 6
    legend.deltay = 13
    legend.colorNamePairs = [
        (CHART_COLOURS[i % len(CHART_COLOURS)], _shorten(_line(name), 45))
        for i, name in enumerate(stats.categories)
    ]
    drawing.add(legend)
    return drawing


def _nice_step(peak: int) -> int:
    """An axis step giving at most about six gridlines: 1, 2, 5, 10, 20, 50, ..."""
    step = 1
    while peak / step > 6:
        for factor in (2, 5, 10):
            if peak / (step * factor) <= 6 or factor == 10:
                step *= factor
                break
    return step


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _counts_table(stats: MonthlyCounts, s: _Styles) -> LongTable:
    """The chart's figures as a table (months as rows), for readers who cannot see it."""
    n_cats = len(stats.categories)
    small = n_cats > 6
    cell = ParagraphStyle("c", parent=s.cell, fontSize=8 if small else 9.5)
    bold = ParagraphStyle("cb", parent=cell, fontName=FONT_BOLD)
    right = ParagraphStyle("cr", parent=cell, alignment=TA_RIGHT)
    right_bold = ParagraphStyle("crb", parent=right, fontName=FONT_BOLD)
    rows: list[list[Any]] = [
        [Paragraph("Month", bold)]
        + [Paragraph(_markup(c), right_bold) for c in stats.categories]
        + [Paragraph("Total", right_bold)]
    ]
    for m, month in enumerate(stats.months):
        counts = [row[m] for row in stats.counts]
        rows.append(
            [Paragraph(escape(_month_label(month)), cell)]
            + [Paragraph(str(n), right) for n in counts]
            + [Paragraph(str(sum(counts)), right_bold)]
        )
    totals = [sum(row) for row in stats.counts]
    rows.append(
        [Paragraph("Total", bold)]
        + [Paragraph(str(n), right_bold) for n in totals]
        + [Paragraph(str(sum(totals)), right_bold)]
    )
    first, last = 92.0, 50.0
    widths = [first] + [(FRAME_WIDTH - first - last) / n_cats] * n_cats + [last]
    table = _table(rows, widths)
    table.setStyle(TableStyle([("LINEABOVE", (0, -1), (-1, -1), 1.2, BLACK)]))
    return table


def _attachment_list(doc: BundleDocument, plan: _Plan, s: _Styles) -> list[Flowable]:
    rows: list[list[Any]] = [
        [Paragraph(t, s.cell_bold) for t in ("Attachment", "Type", "SHA-256 of the file")]
    ]
    digest = ParagraphStyle("dg", parent=s.cell, fontName=MONO, fontSize=7.5, leading=10)
    for attachment in doc.attachments:
        if attachment.key in plan.pdfs:
            n = len(plan.pdfs[attachment.key].sizes)
            kind = f"PDF, {n} page{'s' if n != 1 else ''}"
        else:
            kind = "JPEG image" if attachment.media_type == "image/jpeg" else "PNG image"
        rows.append(
            [
                Paragraph(_markup(attachment.title), s.cell),
                Paragraph(kind, s.cell),
                Paragraph(_markup(attachment.sha256), digest),
            ]
        )
    return [
        Paragraph(
            "Each attachment follows on a page of its own, as it was received. The SHA-256 "
            "digest identifies the original file.",
            s.body,
        ),
        _table(rows, [FRAME_WIDTH * w for w in (0.4, 0.14, 0.46)]),
    ]


def _attachment(
    attachment: AttachmentDoc, entry: _Entry, plan: _Plan, state: _PassState, s: _Styles
) -> list[Flowable]:
    head_style = ParagraphStyle("ah", parent=s.h2, spaceBefore=0)
    story: list[Flowable] = [
        PageBreak(),
        _heading(attachment.title, head_style, entry),
        Paragraph(f"SHA-256: {_markup(attachment.sha256)}", s.digest),
    ]
    if attachment.key in plan.images:
        story.append(_FittedImage(attachment.content, plan.images[attachment.key], state))
        return story
    sizes = plan.pdfs[attachment.key].sizes
    for index, size in enumerate(sizes):
        label = f"Attachment page {index + 1} of {len(sizes)}"
        if index:
            story += [PageBreak(), Paragraph(f"{_markup(attachment.title)} (continued)", s.small)]
        story += [
            Paragraph(label, s.caption),
            _AttachmentPage(attachment.key, index, size, state),
        ]
    return story


# ---------------------------------------------------------------------------------------
# Merging PDF attachments and finishing the file


def _merge(rl_pdf: bytes, plan: _Plan, placements: list[_Placement]) -> bytes:
    """Put each attachment page on its placeholder page.

    The cloned file keeps ReportLab's metadata and its content-derived /ID, so pypdf
    adds nothing that varies between runs.
    """
    reader = PdfReader(io.BytesIO(rl_pdf))
    writer = PdfWriter(clone_from=reader)
    writer.pdf_header = reader.pdf_header  # keep ReportLab's PDF version
    for placement in placements:
        source = plan.pdfs[placement.key].reader.pages[placement.index]
        target = writer.pages[placement.page - 1]
        try:
            _merge_page(target, source, placement.box)
        except Exception as exc:
            raise ValueError(
                f"attachment {placement.key!r}: cannot place page {placement.index + 1} ({exc})"
            ) from exc
        target.compress_content_streams()
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _merge_page(target: PageObject, source: PageObject, box: tuple[float, ...]) -> None:
    """Draw `source` under the placeholder page's own content, scaled into `box`."""
    _drop_actions(source)
    if source.rotation % 360:
        source.transfer_rotation_to_content()
    crop = source.cropbox
    left, bottom = float(crop.left), float(crop.bottom)
    width, height = float(crop.width), float(crop.height)
    x, y, box_w, box_h = box
    scale = min(box_w / width, box_h / height)
    transform = (
        Transformation()
        .translate(-left, -bottom)
        .scale(scale, scale)
        .translate(x + (box_w - width * scale) / 2, y + box_h - height * scale)
    )
    # Under, so the placeholder's caption, frame and footer stay on top.
    target.merge_transformed_page(source, transform, over=False)


def _drop_actions(page: PageObject) -> None:
    """Keep an attachment's visible annotations (e.g. filled form fields), not its links
    or actions: a bundle page must not open URLs or run anything."""
    annots = page.get("/Annots")
    if annots is None:
        return
    kept = ArrayObject()
    for ref in annots.get_object():
        annot = ref.get_object()
        if annot.get("/Subtype") == "/Link":
            continue
        for key in ("/A", "/AA", "/PA"):
            if key in annot:
                del annot[key]
        kept.append(ref)
    page[NameObject("/Annots")] = kept


def render_bundle(document: BundleDocument) -> RenderedBundle:
    """Render one copy of an evidence bundle as an A4 PDF.

    Returns the PDF bytes, its page count, the first page of every section (keys as
    documented on `RenderedBundle`) and the index as printed. The same document always
    gives the same bytes. Raises ValueError for a document that cannot be rendered
    faithfully, e.g. an attachment that cannot be read (the message names its key).
    """
    _styles()  # registers the fonts
    plan = _plan(document)
    with _render_lock:
        state, rl_pdf = _layout(plan)
    pdf = _merge(rl_pdf, plan, state.placements) if state.placements else rl_pdf
    section_pages = {e.key: state.pages[e.dest] for e in plan.entries if e.key is not None}
    index = tuple((e.title, state.pages[e.dest]) for e in plan.entries if e.printed)
    return RenderedBundle(pdf=pdf, page_count=state.total, section_pages=section_pages, index=index)


# ReportLab keeps settings and font state in module globals and is not thread-safe, so
# one bundle is laid out at a time.
_render_lock = threading.Lock()

# A second process rendering the other copy of each bundle, while `rendering_in_parallel`
# is in force (bulk work such as the large demo data set; the web app renders in-process).
_second_process: ProcessPoolExecutor | None = None


def render_pair(
    police: BundleDocument, shared: BundleDocument
) -> tuple[RenderedBundle, RenderedBundle]:
    """Render a bundle's two copies: the shared one in the second process when
    `rendering_in_parallel` is in force, else one after the other. Either way gives
    the same bytes (rendering is deterministic)."""
    if _second_process is None:
        return render_bundle(police), render_bundle(shared)
    pending = _second_process.submit(render_bundle, shared)
    return render_bundle(police), pending.result()


@contextmanager
def rendering_in_parallel() -> Iterator[None]:
    """Within this block `render_pair` renders one copy in a second process, so a
    bundle's two copies take the time of one on a machine with a core to spare.

    The process is forked: it only renders documents it is sent and never touches the
    database connection it inherits. ("spawn" would start multiprocessing's resource
    tracker, a child that outlives the block, for the life of this process.) It is
    joined when the block ends, so no child is left behind."""
    global _second_process
    if _second_process is not None:  # already in force: nothing to add
        yield
        return
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as pool:
        _second_process = pool
        try:
            yield
        finally:
            _second_process = None


def _layout(plan: _Plan) -> tuple[_PassState, bytes]:
    """Lay the bundle out until two passes agree on every page number."""
    use_a85 = rl_config.useA85
    # ASCII85 only makes streams 25% bigger, and ReportLab's pure-Python encoder takes
    # seconds per photo. Binary streams are fine for every PDF reader.
    rl_config.useA85 = 0
    try:
        known_pages: dict[str, int] = {}
        known_total = 0
        for attempt in range(MAX_PASSES):
            # The first pass only measures (images are not drawn); later passes print the
            # page numbers the previous pass found.
            state = _PassState(known_pages, known_total, draw_images=attempt > 0)
            rl_pdf = _build_pass(plan, state)
            if attempt and state.pages == known_pages and state.total == known_total:
                return state, rl_pdf
            known_pages, known_total = state.pages, state.total
    finally:
        rl_config.useA85 = use_a85
    raise RuntimeError("the bundle's page numbers did not settle")
