"""Lay out a standard letter as an A4 PDF with ReportLab.

The layout of a police letter: the force's letterhead, the date, the addressee block
(the premises licence holder and the designated premises supervisor at the premises),
our reference (the licence number), the subject line in bold, the body, and the
signature block. Every page carries the OFFICIAL marking and "Page X of Y".

The fonts are the evidence bundle's (Bitstream Vera, embedded, so the text can be read
back and looks the same everywhere), and everything shown is plain text made safe for
ReportLab's markup. Output is deterministic (invariant mode, no build time inside).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    Flowable,
    HRFlowable,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
)

from licensing.evidence.pdf import FONT, FONT_BOLD, _markup, _plain, _register_fonts

__all__ = ["LetterDocument", "render_letter"]

MARKING = "OFFICIAL"
CREATOR = "Licensing enforcement: standard letter"
BLACK = colors.HexColor("#0b0c0c")
SECONDARY = colors.HexColor("#505a5f")
BORDER = colors.HexColor("#b1b4b6")
MARGIN_X = 25 * mm
MARGIN_TOP = 20 * mm
MARGIN_BOTTOM = 22 * mm


@dataclass(frozen=True)
class LetterDocument:
    """Everything a letter shows, as plain text."""

    letterhead: tuple[str, ...]
    date: str
    addressee: tuple[str, ...]
    reference: str
    authority: str
    subject: str
    body: str
    signatory: str
    signatory_title: str
    team: str


def _styles() -> dict[str, ParagraphStyle]:
    base = ParagraphStyle("body", fontName=FONT, fontSize=10.5, leading=14.5, textColor=BLACK)
    return {
        "body": ParagraphStyle("letter-body", parent=base, spaceAfter=8),
        "head": ParagraphStyle(
            "letterhead", parent=base, fontName=FONT_BOLD, fontSize=15, leading=19
        ),
        "head2": ParagraphStyle("letterhead-2", parent=base, textColor=SECONDARY),
        "date": ParagraphStyle("date", parent=base, alignment=TA_RIGHT),
        "block": ParagraphStyle("block", parent=base),
        "ref": ParagraphStyle("reference", parent=base, fontSize=9.5, textColor=SECONDARY),
        "subject": ParagraphStyle(
            "subject", parent=base, fontName=FONT_BOLD, fontSize=11.5, leading=15, spaceAfter=10
        ),
    }


def _lines(lines: tuple[str, ...] | list[str]) -> str:
    return "<br/>".join(_markup(line) for line in lines)


def _body_paragraphs(body: str, style: ParagraphStyle) -> list[Flowable]:
    """A blank line starts a paragraph; a single newline is a line break within one."""
    text = _plain(body)
    paragraphs = [p.strip("\n") for p in text.split("\n\n")]
    return [Paragraph(_markup(p), style) for p in paragraphs if p.strip()]


class _NumberedCanvas(Canvas):
    """Holds each page until the end, so every footer can say "Page X of Y"."""

    reference = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pages: list[dict[str, Any]] = []

    def showPage(self) -> None:  # noqa: N802 - ReportLab's name
        """Keep the page's state instead of writing it out now."""
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        """Write every page with its marking and footer, then the file."""
        total = len(self._pages)
        for number, state in enumerate(self._pages, start=1):
            self.__dict__.update(state)
            self._decorate(number, total)
            super().showPage()
        super().save()

    def _decorate(self, number: int, total: int) -> None:
        width, height = A4
        self.setFont(FONT_BOLD, 9)
        self.setFillColor(BLACK)
        self.drawCentredString(width / 2, height - 10 * mm, MARKING)
        self.drawCentredString(width / 2, 8 * mm, MARKING)
        self.setFont(FONT, 8.5)
        self.setFillColor(SECONDARY)
        self.drawString(MARGIN_X, 13 * mm, _plain(f"Our reference: {self.reference}"))
        self.drawRightString(width - MARGIN_X, 13 * mm, f"Page {number} of {total}")


def render_letter(letter: LetterDocument) -> bytes:
    """The letter as PDF bytes."""
    _register_fonts()
    styles = _styles()
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=MARGIN_X,
        rightMargin=MARGIN_X,
        topMargin=MARGIN_TOP,
        bottomMargin=MARGIN_BOTTOM,
        title=_plain(letter.subject),
        author=_plain(letter.team),
        subject=_plain(f"Reference {letter.reference}"),
        creator=CREATOR,
        invariant=1,
    )
    head, *rest = letter.letterhead or ("",)
    story: list[Flowable] = [Paragraph(_markup(head), styles["head"])]
    if rest:
        story.append(Paragraph(_lines(rest), styles["head2"]))
    story += [
        Spacer(1, 2 * mm),
        HRFlowable(width="100%", thickness=0.8, color=BORDER),
        Spacer(1, 4 * mm),
        Paragraph(_markup(letter.date), styles["date"]),
        Spacer(1, 4 * mm),
        Paragraph(_lines(list(letter.addressee)), styles["block"]),
        Spacer(1, 6 * mm),
        Paragraph(
            _lines(
                [
                    f"Our reference: {letter.reference}",
                    f"Licensing authority: {letter.authority}",
                ]
            ),
            styles["ref"],
        ),
        Spacer(1, 6 * mm),
        Paragraph(_markup(letter.subject), styles["subject"]),
    ]
    story += _body_paragraphs(letter.body, styles["body"])
    story.append(
        KeepTogether(
            [
                Spacer(1, 4 * mm),
                Paragraph("Yours sincerely,", styles["block"]),
                Spacer(1, 12 * mm),
                Paragraph(
                    _lines([letter.signatory, letter.signatory_title, letter.team]),
                    styles["block"],
                ),
            ]
        )
    )

    class _Canvas(_NumberedCanvas):
        reference = letter.reference

    doc.build(story, canvasmaker=_Canvas)
    return out.getvalue()
