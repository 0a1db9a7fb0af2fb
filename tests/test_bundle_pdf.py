"""The evidence bundle PDF renderer, checked by reading its output back with pypdf."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from PIL import Image
from pypdf import PdfReader
from reportlab.pdfgen.canvas import Canvas

from licensing.evidence.document import (
    POLICE,
    SHARED,
    AttachmentDoc,
    BundleDocument,
    ChronologyRow,
    Cover,
    Field,
    MonthlyCounts,
    RenderedBundle,
    Section,
    UnusedItem,
)
from licensing.evidence.pdf import render_bundle

XSS = "<script>alert(1)</script> & <b>"
UNICODE = "£5 entry — café ’quoted’ naïve"


def jpeg_bytes(size: tuple[int, int] = (64, 48), colour: str = "red") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG")
    return out.getvalue()


def png_bytes(size: tuple[int, int] = (40, 80)) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", size, (0, 90, 200, 255)).save(out, "PNG")
    return out.getvalue()


def pdf_bytes(pages: int, landscape: bool = False) -> bytes:
    out = io.BytesIO()
    size = (842.0, 595.0) if landscape else (595.0, 842.0)
    canvas = Canvas(out, pagesize=size, invariant=1)
    for n in range(1, pages + 1):
        canvas.setFont("Helvetica", 20)
        canvas.drawString(72, size[1] - 100, f"Attached letter page {n} marker")
        canvas.showPage()
    canvas.save()
    return out.getvalue()


def attachment(key: str, title: str, media_type: str, content: bytes) -> AttachmentDoc:
    return AttachmentDoc(key, title, media_type, content, hashlib.sha256(content).hexdigest())


def make_document(
    variant: str = POLICE,
    sections: int = 4,
    attachments: tuple[AttachmentDoc, ...] | None = None,
    statement: str = "I am the licensing officer.\n\nThis is my statement.",
) -> BundleDocument:
    cover = Cover(
        premises_name="The Crown & Anchor",
        licence_number="PL/2019/0042",
        address="12 High Street\nLiverpool\nL1 1AA",
        licence_holder="Crown Pubs Ltd",
        dps="Jane O’Neill",
        authority="Liverpool City Council",
        review_kind="Review under s.51 of the Licensing Act 2003",
        reference="EB-00042-01",
        version=3,
        variant=variant,
        built_on=date(2026, 3, 14),
        period_from=date(2025, 10, 1),
        period_to=date(2026, 3, 31),
        prepared_by="Merseyside Police licensing team",
    )
    items = tuple(
        Section(
            key=f"incident-{n}",
            title=f"Incident RMS-2026-{n:06d}",
            when="Sat 14 Mar 2026 23:10",
            fields=(Field("Category", "Public order"), Field("Location", UNICODE)),
            body=f"Officers attended.\nTwo arrests.\n\nNote: {XSS}",
        )
        for n in range(sections)
    )
    chronology = tuple(
        ChronologyRow(
            when="Sat 14 Mar 2026 23:10",
            kind="Incident",
            reference=f"RMS-2026-{n:06d}",
            summary=f"Fight outside, entry {n}",
            section_key=f"incident-{n}",
        )
        for n in range(sections)
    )
    if attachments is None:
        attachments = (
            attachment(
                "attachment-A01", "A01: Letter from the DPS", "application/pdf", pdf_bytes(3)
            ),
            attachment("attachment-A02", "A02: CCTV still", "image/jpeg", jpeg_bytes()),
            attachment("attachment-A03", "A03: Screenshot", "image/png", png_bytes()),
            attachment(
                "attachment-A04", "A04: Plan", "application/pdf", pdf_bytes(1, landscape=True)
            ),
        )
    return BundleDocument(
        cover=cover,
        statement=statement,
        chronology=chronology,
        summary=(Field("Confirmed incidents", "23"), Field("Visits", "4")),
        statistics=MonthlyCounts(
            months=("2026-01", "2026-02", "2026-03"),
            categories=("Violence", "Public order"),
            counts=((1, 0, 4), (2, 3, 0)),
        ),
        sections=items,
        attachments=attachments,
        unused=(UnusedItem("RMS-2026-999999", "Incident", "Not linked to the premises"),)
        if variant == POLICE
        else (),
        redaction_note="" if variant == POLICE else "Names of private individuals are redacted.",
    )


def page_texts(rendered: RenderedBundle) -> list[str]:
    reader = PdfReader(io.BytesIO(rendered.pdf))
    return [page.extract_text() for page in reader.pages]


@pytest.fixture(scope="module")
def police() -> RenderedBundle:
    return render_bundle(make_document(POLICE))


@pytest.fixture(scope="module")
def shared() -> RenderedBundle:
    return render_bundle(make_document(SHARED))


def test_page_count_and_section_pages_cover_every_key(police: RenderedBundle) -> None:
    texts = page_texts(police)
    assert len(texts) == police.page_count
    # cover + index + statement + chronology + statistics + items + unused + attachment
    # list + 3 + 1 + 1 + 1 attachment pages
    assert police.page_count >= 14
    expected = {"cover", "index", "statement", "chronology", "statistics", "unused"}
    expected |= {f"incident-{n}" for n in range(4)}
    expected |= {f"attachment-A0{n}" for n in range(1, 5)}
    assert set(police.section_pages) == expected
    assert police.section_pages["cover"] == 1
    assert police.section_pages["index"] == 2
    pages = [police.section_pages[k] for k in ("statement", "chronology", "statistics")]
    assert pages == sorted(pages) and pages[0] > 2


def test_every_page_says_page_x_of_y_with_the_copy(police: RenderedBundle) -> None:
    texts = page_texts(police)
    for number, text in enumerate(texts, start=1):
        assert f"Page {number} of {police.page_count}" in text, number
        assert "EB-00042-01 v3" in text
        assert "Police copy" in text
        assert len(re.findall(r"Page \d+ of \d+", text)) == 1


def test_index_lists_each_heading_with_the_page_it_starts_on(police: RenderedBundle) -> None:
    texts = page_texts(police)
    index_text = texts[police.section_pages["index"] - 1]
    titles = [title for title, _ in police.index]
    assert titles[:3] == ["Statement", "Chronology", "Summary statistics"]
    for key in ("incident-0", "incident-3", "attachment-A01", "attachment-A02", "attachment-A04"):
        assert police.section_pages[key] in dict(police.index).values()
    for title, page in police.index:
        # The printed index has the title and its page number on the next cell.
        assert re.search(re.escape(title) + r"\s+" + str(page) + r"\b", index_text), title
        assert title in texts[page - 1], (title, page)
    for n in range(4):
        # An item starts on its page: the page before (after the statistics) lacks it.
        page = police.section_pages[f"incident-{n}"]
        if page - 1 > police.section_pages["statistics"]:
            assert f"Incident RMS-2026-{n:06d}" not in texts[page - 2]


def test_merged_pdf_attachment_pages_are_in_place(police: RenderedBundle) -> None:
    texts = page_texts(police)
    first = police.section_pages["attachment-A01"]
    for n in range(3):
        text = texts[first - 1 + n]
        assert f"Attached letter page {n + 1} marker" in text
        assert f"Attachment page {n + 1} of 3" in text
        assert f"Page {first + n} of {police.page_count}" in text
    assert "SHA-256: " + hashlib.sha256(pdf_bytes(3)).hexdigest() in texts[first - 1]
    landscape = police.section_pages["attachment-A04"]
    assert "Attached letter page 1 marker" in texts[landscape - 1]
    # Every merged page fits inside A4 portrait: the page size is unchanged.
    reader = PdfReader(io.BytesIO(police.pdf))
    for page in reader.pages:
        assert (round(float(page.mediabox.width)), round(float(page.mediabox.height))) == (
            595,
            842,
        )


def test_images_are_placed_on_their_own_pages(police: RenderedBundle) -> None:
    reader = PdfReader(io.BytesIO(police.pdf))
    for key in ("attachment-A02", "attachment-A03"):
        page = reader.pages[police.section_pages[key] - 1]
        images = list(page.images)
        assert len(images) == 1, key
        assert "SHA-256" in page.extract_text()


def test_every_chronology_reference_appears(police: RenderedBundle) -> None:
    texts = page_texts(police)
    chronology = "".join(
        texts[police.section_pages["chronology"] - 1 : police.section_pages["statistics"] - 1]
    )
    for n in range(4):
        assert f"RMS-2026-{n:06d}" in chronology


def test_user_text_is_rendered_literally(police: RenderedBundle) -> None:
    texts = page_texts(police)
    item = texts[police.section_pages["incident-0"] - 1]
    assert XSS in item
    assert UNICODE in item
    assert "The Crown & Anchor" in texts[0]
    assert "Jane O’Neill" in texts[0]


def test_characters_the_font_lacks_are_shown_not_dropped() -> None:
    document = make_document(sections=1, attachments=())
    odd = dataclasses.replace(
        document.sections[0], body="Emoji 😀, Welsh ŵ, bell \x07, bidi \u202e, nul \x00 end"
    )
    rendered = render_bundle(dataclasses.replace(document, sections=(odd,)))
    text = page_texts(rendered)[rendered.section_pages["incident-0"] - 1]
    assert "Emoji [U+1F600], Welsh [U+0175], bell [U+0007], bidi [U+202E], nul [U+0000] end" in text


def test_police_copy_has_the_unused_schedule_and_shared_copy_does_not(
    police: RenderedBundle, shared: RenderedBundle
) -> None:
    police_text = "\n".join(page_texts(police))
    shared_text = "\n".join(page_texts(shared))
    assert "Schedule of unused material" in police_text
    assert "RMS-2026-999999" in police_text
    assert "NOT FOR DISCLOSURE" in police_text
    assert "Schedule of unused material" not in shared_text
    assert "RMS-2026-999999" not in shared_text
    assert "NOT FOR DISCLOSURE" not in shared_text
    assert "Shared copy — personal data redacted" in shared_text
    assert "Names of private individuals are redacted." in shared_text
    assert "unused" not in shared.section_pages
    assert shared.page_count == police.page_count - 1


def test_shared_copy_refuses_unused_material() -> None:
    document = make_document(SHARED, attachments=())
    leaked = dataclasses.replace(document, unused=(UnusedItem("R1", "Incident", "x"),))
    with pytest.raises(ValueError, match="unused material"):
        render_bundle(leaked)


def test_rendering_is_deterministic(police: RenderedBundle) -> None:
    again = render_bundle(make_document(POLICE))
    assert again.pdf == police.pdf
    assert again.section_pages == police.section_pages
    metadata = PdfReader(io.BytesIO(police.pdf)).metadata
    assert metadata is not None
    assert metadata.title == "Evidence bundle EB-00042-01 v3"
    assert metadata["/CreationDate"] == "D:20260314000000Z"
    assert metadata["/ModDate"] == "D:20260314000000Z"


def test_rendering_is_deterministic_across_processes(tmp_path: Path) -> None:
    # A fresh interpreter with a different hash seed: nothing may depend on set order,
    # object ids or the clock.
    script = (
        "import sys, hashlib\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "from tests.test_bundle_pdf import make_document\n"
        "from licensing.evidence.pdf import render_bundle\n"
        "print(hashlib.sha256(render_bundle(make_document()).pdf).hexdigest())\n"
    )
    root = str(Path(__file__).resolve().parent.parent)
    digests = set()
    for seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        result = subprocess.run(
            [sys.executable, "-c", script, root],
            capture_output=True,
            text=True,
            env=env,
            cwd=root,
            check=True,
            timeout=120,
        )
        digests.add(result.stdout.strip())
    digests.add(hashlib.sha256(render_bundle(make_document()).pdf).hexdigest())
    assert len(digests) == 1


def test_text_is_embedded_in_the_vera_font(police: RenderedBundle) -> None:
    assert b"BitstreamVeraSans" in police.pdf
    assert b"/ToUnicode" in police.pdf


def test_broken_pdf_attachment_raises_value_error_naming_it() -> None:
    broken = attachment("attachment-B01", "B01: Broken", "application/pdf", b"%PDF-1.4 junk")
    with pytest.raises(ValueError, match="attachment-B01"):
        render_bundle(make_document(attachments=(broken,)))


def test_broken_image_attachment_raises_value_error_naming_it() -> None:
    broken = attachment("attachment-B02", "B02: Broken", "image/png", b"\x89PNG not really")
    with pytest.raises(ValueError, match="attachment-B02"):
        render_bundle(make_document(attachments=(broken,)))


def test_long_document_index_spans_pages_and_numbers_stay_exact() -> None:
    rendered = render_bundle(make_document(sections=150, attachments=(), statement=""))
    texts = page_texts(rendered)
    assert len(texts) == rendered.page_count
    assert "statement" not in rendered.section_pages
    index_pages = texts[1 : rendered.section_pages["chronology"] - 1]
    assert len(index_pages) >= 2  # 150 items do not fit on one index page
    index_text = "\n".join(index_pages)
    for n in (0, 77, 149):
        key, title = f"incident-{n}", f"Incident RMS-2026-{n:06d}"
        page = rendered.section_pages[key]
        assert re.search(re.escape(title) + r"\s+" + str(page) + r"\b", index_text)
        assert title in texts[page - 1]
        if page - 1 > rendered.section_pages["statistics"]:
            assert title not in texts[page - 2]
    for number, text in enumerate(texts, start=1):
        assert f"Page {number} of {rendered.page_count}" in text


def test_a_field_taller_than_a_page_breaks_across_pages() -> None:
    document = make_document(sections=1, attachments=())
    long_value = "\n".join(f"Line {n} of a very long witness account." for n in range(200))
    section = dataclasses.replace(document.sections[0], fields=(Field("Account", long_value),))
    rendered = render_bundle(dataclasses.replace(document, sections=(section,)))
    text = "\n".join(page_texts(rendered))
    assert "Line 0 of a very long" in text and "Line 199 of a very long" in text


def test_statistics_table_lists_months_categories_and_totals(police: RenderedBundle) -> None:
    text = page_texts(police)[police.section_pages["statistics"] - 1]
    for expected in ("Confirmed incidents", "January 2026", "March 2026", "Violence", "Total"):
        assert expected in text
    # March 2026: 4 violence + 0 public order = 4; grand total 10.
    assert re.search(r"March 2026\s+4\s+0\s+4", text)
    assert re.search(r"Total\s+5\s+5\s+10", text)


def test_bad_statistics_shape_is_refused() -> None:
    document = make_document(attachments=())
    bad = dataclasses.replace(
        document, statistics=MonthlyCounts(("2026-01",), ("Violence",), ((1, 2),))
    )
    with pytest.raises(ValueError, match="statistics"):
        render_bundle(bad)


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="needs pdftoppm (poppler-utils)")
def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    # Stored 120x40 landscape, tagged "rotate 90° clockwise to display": shown portrait.
    exif = Image.Exif()
    exif[0x0112] = 6
    image = Image.new("RGB", (120, 40), "white")
    image.paste((255, 0, 0), (0, 0, 20, 40))  # the stored left edge is red
    image.paste((0, 0, 255), (100, 0, 120, 40))  # and the right edge blue
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, quality=95)
    photo = attachment("attachment-P01", "P01: Photo", "image/jpeg", out.getvalue())
    rendered = render_bundle(make_document(sections=0, attachments=(photo,)))
    pdf = tmp_path / "b.pdf"
    pdf.write_bytes(rendered.pdf)
    page = rendered.section_pages["attachment-P01"]
    prefix = tmp_path / "p"
    subprocess.run(
        ["pdftoppm", "-r", "20", "-f", str(page), "-l", str(page), "-png", str(pdf), str(prefix)],
        check=True,
    )
    (png,) = tmp_path.glob("p*.png")
    raster = Image.open(png).convert("RGB")
    pixels = [
        (x, y, raster.getpixel((x, y))) for x in range(raster.width) for y in range(raster.height)
    ]
    red = [(x, y) for x, y, (r, g, b) in pixels if r > 200 and g < 80 and b < 80]
    blue = [(x, y) for x, y, (r, g, b) in pixels if b > 200 and r < 80 and g < 80]
    width = max(x for x, _ in red) - min(x for x, _ in red)
    height = max(y for _, y in red) - min(y for _, y in red)
    # Turned clockwise, the stored left edge is a wide band at the top and the stored
    # right edge one at the bottom (unturned, both would be tall bands side by side).
    assert width > 1.5 * height
    assert max(y for _, y in red) < min(y for _, y in blue)


def test_the_two_copies_rendered_in_a_second_process_are_the_same_bytes() -> None:
    """Bulk work renders a bundle's shared copy in a second process: it must give exactly
    the bytes (and page numbers) rendering here gives."""
    from licensing.evidence.pdf import render_pair, rendering_in_parallel

    police_document = make_document(POLICE)
    shared_document = make_document(SHARED)
    here = render_pair(police_document, shared_document)
    with rendering_in_parallel():
        from licensing.evidence import pdf

        assert pdf._second_process is not None  # the second process is in use
        apart = render_pair(police_document, shared_document)
    assert pdf._second_process is None
    with pytest.raises(ChildProcessError):  # the second process was joined: no child left
        os.waitpid(-1, os.WNOHANG)
    assert here[0].pdf != here[1].pdf  # two different copies, not one twice
    assert [r.pdf for r in apart] == [r.pdf for r in here]
    assert [(r.page_count, r.section_pages, r.index) for r in apart] == [
        (r.page_count, r.section_pages, r.index) for r in here
    ]
