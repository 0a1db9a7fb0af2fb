"""Attachments on incidents and visits: what an upload may be (decided by its bytes),
where it is stored, who may upload and download it, the redacted-copy rules, and the
audit event, through the service and through the real pages (sign-in, CSRF, multipart)."""

from __future__ import annotations

import io
import json
import re
import struct
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from pypdf import PdfReader, PdfWriter
from pypdf.actions import JavaScript
from pypdf.generic import (
    ArrayObject,
    DictionaryObject,
    NameObject,
    TextStringObject,
)
from reportlab.pdfgen import canvas
from sqlalchemy import select
from sqlalchemy.orm import Session

from licensing.audit.models import SYSTEM_CHAIN, AuditEvent, premises_chain
from licensing.audit.services import verify_chains
from licensing.errors import Forbidden, NotFound, Refused, ValidationFailed
from licensing.evidence import attachments, store
from licensing.evidence.models import Attachment
from licensing.incidents.models import Incident, PremisesIncidentLink
from licensing.visits import services as visit_services
from licensing.visits.models import Visit
from tests.conftest import csrf_from, move, sign_in

LIMIT = 20 * 1024 * 1024

# ---- files to upload ------------------------------------------------------------------------


def pdf_bytes(change: Callable[[PdfWriter], None] | None = None) -> bytes:
    """A one-page PDF written by pypdf, changed by `change` first."""
    writer = PdfWriter()
    writer.add_blank_page(200, 200)
    if change is not None:
        change(writer)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def text_pdf(*lines: str) -> bytes:
    """A PDF with real text on two pages (ReportLab), for text extraction."""
    out = io.BytesIO()
    page = canvas.Canvas(out, pageCompression=1)
    for line in lines:
        page.drawString(72, 720, line)
        page.showPage()
    page.save()
    return out.getvalue()


def image_bytes(kind: str, size: tuple[int, int] = (60, 40)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, kind)
    return out.getvalue()


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return (
        struct.pack(">I", len(body))
        + kind
        + body
        + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    )


def png_declaring(width: int, height: int) -> bytes:
    """A tiny, well-formed PNG whose header declares `width` × `height` pixels: what a
    decompression bomb looks like before anything is decoded."""
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _png_chunk(b"IEND", b"")
    )


def open_action(action: DictionaryObject | ArrayObject) -> Callable[[PdfWriter], None]:
    def change(writer: PdfWriter) -> None:
        writer._root_object[NameObject("/OpenAction")] = action  # noqa: SLF001

    return change


def js_open_action() -> DictionaryObject:
    return DictionaryObject(
        {
            NameObject("/S"): NameObject("/JavaScript"),
            NameObject("/JS"): TextStringObject("app.alert('opened');"),
        }
    )


def pdf_with_object_stream(hidden_action: bytes) -> bytes:
    """A PDF 1.5 whose open action (object 4) sits compressed inside an object stream,
    found only through a cross-reference stream: no name in it is visible in the raw
    bytes, so only a check of the parsed objects can see what it does."""
    out = bytearray(b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n")
    offsets: dict[int, int] = {}

    def add(number: int, body: bytes) -> None:
        offsets[number] = len(out)
        out.extend(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")

    add(1, b"<< /Type /Catalog /Pages 2 0 R /OpenAction 4 0 R >>")
    add(2, b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>")
    add(3, b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Resources << >> >>")
    index = b"4 0 "
    packed = zlib.compress(index + hidden_action)
    add(
        5,
        b"<< /Type /ObjStm /N 1 /First %d /Filter /FlateDecode /Length %d >>\nstream\n"
        % (len(index), len(packed))
        + packed
        + b"\nendstream",
    )
    rows = [b"\x00" + struct.pack(">I", 0) + b"\xff\xff"]
    for number in (1, 2, 3):
        rows.append(b"\x01" + struct.pack(">I", offsets[number]) + b"\x00\x00")
    rows.append(b"\x02" + struct.pack(">I", 5) + b"\x00\x00")  # object 4: in stream 5
    rows.append(b"\x01" + struct.pack(">I", offsets[5]) + b"\x00\x00")
    xref_offset = len(out)
    rows.append(b"\x01" + struct.pack(">I", xref_offset) + b"\x00\x00")
    table = b"".join(rows)
    out.extend(
        b"6 0 obj\n<< /Type /XRef /Size 7 /W [1 4 2] /Root 1 0 R /Length %d >>\nstream\n"
        % len(table)
        + table
        + b"\nendstream\nendobj\n"
    )
    out.extend(b"startxref\n%d\n%%%%EOF\n" % xref_offset)
    return bytes(out)


def check(data: bytes, limit: int = LIMIT) -> str:
    return attachments.sniff_and_check(data, limit)


def refusal(data: bytes, limit: int = LIMIT) -> str:
    with pytest.raises(ValidationFailed) as caught:
        attachments.sniff_and_check(data, limit)
    assert set(caught.value.errors) == {"file"}
    return caught.value.errors["file"]


# ---- records to attach to ---------------------------------------------------------------


@pytest.fixture
def incident(session: Session, world: dict[str, Any]) -> Incident:
    """The confirmed incident every test premises has (see make_premises)."""
    return session.scalars(
        select(Incident)
        .join(PremisesIncidentLink, PremisesIncidentLink.incident_id == Incident.id)
        .where(PremisesIncidentLink.premises_id == world["premises"].id)
    ).one()


@pytest.fixture
def visit(session: Session, world: dict[str, Any]) -> Visit:
    return visit_services.schedule_visit(
        session,
        world["officer"],
        world["premises"],
        scheduled_at=datetime.now(UTC) + timedelta(days=2),
        visit_type="routine",
        officer_id=world["officer"].id,
    )


def add(
    session: Session, actor: Any, data: bytes, name: str = "file.pdf", **kwargs: Any
) -> Attachment:
    kwargs.setdefault("description", "CCTV still, bar area")
    kwargs.setdefault("holds_personal_data", False)
    return attachments.add_attachment(session, actor, data=data, file_name=name, **kwargs)


def upload(
    client: FlaskClient,
    page_url: str,
    post_url: str,
    data: bytes,
    name: str,
    description: str = "CCTV still, bar area",
    personal: bool = False,
) -> Any:
    """Post the attachment form the way the page's form would (multipart, CSRF)."""
    token = csrf_from(client.get(page_url).get_data(as_text=True))
    form: dict[str, Any] = {
        "attachment-csrf_token": token,
        "attachment-file": (io.BytesIO(data), name),
        "attachment-description": description,
    }
    if personal:
        form["attachment-holds_personal_data"] = "y"
    return client.post(post_url, data=form, content_type="multipart/form-data")


def evidence_files(app: Flask) -> set[Path]:
    root = Path(app.config["EVIDENCE_DIR"])
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def attachment_events(session: Session) -> list[AuditEvent]:
    session.expire_all()
    return list(
        session.scalars(
            select(AuditEvent).where(AuditEvent.event == "attachment_added").order_by(AuditEvent.id)
        )
    )


# ---- what a file is: by its bytes --------------------------------------------------------


def test_pdf_jpeg_and_png_are_recognised_by_content() -> None:
    assert check(pdf_bytes()) == "application/pdf"
    assert check(image_bytes("JPEG")) == "image/jpeg"
    assert check(image_bytes("PNG")) == "image/png"


@pytest.mark.parametrize(
    ("content", "label"),
    [
        (b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 200, "Windows executable"),
        (b"\x7fELF\x02\x01\x01" + b"\x00" * 200, "Linux executable"),
        (b"<html><script>alert(1)</script></html>", "HTML"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "SVG"),
        (b"GIF89a" + b"\x00" * 50, "GIF"),
        (b"PK\x03\x04" + b"\x00" * 50, "ZIP"),
        (b" %PDF-1.4 not at the start", "PDF magic not at the start"),
    ],
)
def test_anything_else_is_refused_whatever_its_name(content: bytes, label: str) -> None:
    assert refusal(content) == "The selected file must be a PDF, JPEG or PNG", label


def test_empty_file_is_refused() -> None:
    assert refusal(b"") == "The selected file is empty"


def test_oversized_file_is_refused_saying_the_limit_in_mb() -> None:
    data = image_bytes("PNG")
    assert check(data, len(data)) == "image/png"  # exactly at the limit is fine
    assert refusal(data, len(data) - 1).startswith("The selected file must be smaller than")
    assert refusal(b"x" * (LIMIT + 1), LIMIT) == "The selected file must be smaller than 20 MB"
    assert refusal(b"x" * (3 * 1024 * 1024), int(1.5 * 1024 * 1024)).endswith("1.5 MB")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (image_bytes("PNG")[:-30], "not a valid PNG image"),
        (image_bytes("PNG", (300, 300))[:200], "not a valid PNG image"),
        (image_bytes("JPEG", (300, 300))[:400], "not a valid JPEG image"),
        (b"\x89PNG\r\n\x1a\n" + b"garbage" * 20, "not a valid PNG image"),
        (b"\xff\xd8\xff\xe0" + b"garbage" * 20, "not a valid JPEG image"),
        (b"%PDF-1.7\n" + b"garbage\n" * 20, "not a valid PDF"),
        (pdf_bytes()[:120], "not a valid PDF"),
    ],
)
def test_right_magic_that_does_not_parse_is_refused(data: bytes, message: str) -> None:
    assert message in refusal(data)


def test_image_format_must_match_its_magic() -> None:
    # A PNG behind a JPEG's first bytes: Pillow is pinned to the decoder the magic names.
    assert "not a valid JPEG image" in refusal(b"\xff\xd8\xff" + image_bytes("PNG"))


@pytest.mark.parametrize(
    ("size", "message"),
    [
        ((100_000, 100_000), "too many pixels"),  # Pillow's own DecompressionBombError
        ((8_000, 6_000), "8000 × 6000 pixels: the limit is 40 megapixels"),  # ours, lower
    ],
)
def test_decompression_bomb_is_refused_before_decoding(size: tuple[int, int], message: str) -> None:
    data = png_declaring(*size)
    assert len(data) < 200
    assert message in refusal(data)


def test_image_just_under_the_pixel_limit_header_is_not_refused_for_size() -> None:
    # The control for the bomb test: a 6000 × 6000 header is under 40 megapixels, so
    # this fails only as damaged (its pixel data is a stub), not as too big.
    assert "not a valid PNG image" in refusal(png_declaring(6_000, 6_000))


def test_encrypted_pdf_is_refused() -> None:
    assert "encrypted" in refusal(pdf_bytes(lambda w: w.encrypt("secret")))
    # Encrypted with an empty user password still opens without one: refused too.
    assert "encrypted" in refusal(pdf_bytes(lambda w: w.encrypt("", "owner-only")))


def test_pdf_with_document_javascript_is_refused() -> None:
    # pypdf 7 removed writer.add_js; add_open_action(JavaScript(...)) is its replacement
    # and adds a document-level script to the /Names /JavaScript tree.
    data = pdf_bytes(lambda w: w.add_open_action(JavaScript("app.alert('hello');")))
    assert b"/JavaScript" in data
    assert refusal(data).startswith("The selected PDF contains JavaScript")


def test_pdf_with_an_openaction_javascript_is_refused() -> None:
    assert "JavaScript" in refusal(pdf_bytes(open_action(js_open_action())))


def test_hex_escaped_names_are_decoded_by_the_parsed_check() -> None:
    data = (
        pdf_bytes(open_action(js_open_action()))
        .replace(b"/JavaScript", b"/J#61vaScript")
        .replace(b"/JS ", b"/J#53 ")
    )
    assert b"/JavaScript" not in data and b"/JS " not in data
    # The parsed objects, not the bytes: pypdf decodes #61 to "a".
    reader = PdfReader(io.BytesIO(data))
    assert attachments._active_content(reader) == "JavaScript"  # noqa: SLF001
    assert "JavaScript" in refusal(data)


def test_javascript_hidden_in_a_compressed_object_stream_is_found() -> None:
    benign = pdf_with_object_stream(b"<< /S /GoTo /D [3 0 R /Fit] >>")
    assert check(benign) == "application/pdf"  # the control: the hand-made file is good
    hidden = pdf_with_object_stream(b"<< /S /JavaScript /JS (app.alert(1)) >>")
    assert b"JavaScript" not in hidden and b"/JS" not in hidden
    assert "JavaScript" in refusal(hidden)


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (
            DictionaryObject(
                {
                    NameObject("/S"): NameObject("/Launch"),
                    NameObject("/F"): TextStringObject("cmd.exe"),
                }
            ),
            "launches a program",
        ),
        (
            DictionaryObject(
                {
                    NameObject("/S"): NameObject("/URI"),
                    NameObject("/URI"): TextStringObject("https://example.test/"),
                }
            ),
            "runs when the file is opened",
        ),
    ],
)
def test_pdf_open_actions_that_do_things_are_refused(
    action: DictionaryObject, message: str
) -> None:
    assert message in refusal(pdf_bytes(open_action(action)))


def test_pdf_open_action_that_only_shows_a_page_is_allowed() -> None:
    def fit_first_page(writer: PdfWriter) -> None:
        page = writer.pages[0].indirect_reference
        open_action(ArrayObject([page, NameObject("/Fit")]))(writer)

    assert check(pdf_bytes(fit_first_page)) == "application/pdf"


def _with_page_aa(writer: PdfWriter) -> None:
    writer.pages[0][NameObject("/AA")] = DictionaryObject(
        {
            NameObject("/O"): DictionaryObject(
                {
                    NameObject("/S"): NameObject("/GoTo"),
                    NameObject("/D"): ArrayObject([writer.pages[0].indirect_reference]),
                }
            )
        }
    )


def _with_xfa(writer: PdfWriter) -> None:
    writer._root_object[NameObject("/AcroForm")] = DictionaryObject(  # noqa: SLF001
        {NameObject("/Fields"): ArrayObject(), NameObject("/XFA"): ArrayObject()}
    )


def _with_rich_media(writer: PdfWriter) -> None:
    writer.pages[0][NameObject("/Annots")] = ArrayObject(
        [
            DictionaryObject(
                {
                    NameObject("/Type"): NameObject("/Annot"),
                    NameObject("/Subtype"): NameObject("/RichMedia"),
                }
            )
        ]
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda w: w.add_attachment("notes.exe", b"MZ payload"), "embedded files"),
        (_with_page_aa, "actions that run automatically"),
        (_with_xfa, "an XFA form"),
        (_with_rich_media, "rich media"),
    ],
)
def test_pdf_with_other_active_content_is_refused(
    change: Callable[[PdfWriter], None], message: str
) -> None:
    assert message in refusal(pdf_bytes(change))


def test_safe_display_name() -> None:
    assert attachments.safe_display_name("../../etc/passwd.pdf") == "passwd.pdf"
    assert attachments.safe_display_name("C:\\Users\\pc\\statement.pdf") == "statement.pdf"
    assert attachments.safe_display_name("bad\x00na\x1bme\r\n.png") == "badname.png"
    assert attachments.safe_display_name("  photo.jpg  ") == "photo.jpg"
    assert attachments.safe_display_name("dir/") == ""
    assert len(attachments.safe_display_name("a" * 400 + ".pdf")) == 255


# ---- the service ----------------------------------------------------------------------------


def test_add_attachment_to_a_visit_stores_bytes_row_and_audit_event(
    app: Flask, session: Session, world: dict[str, Any], visit: Visit
) -> None:
    data = pdf_bytes()
    attachment = add(
        session,
        world["officer"],
        data,
        "Witness Jane Doe statement.pdf",
        visit=visit,
        description="Statement of Jane Doe, 14 March",
        holds_personal_data=True,
    )

    session.expire_all()
    row = session.get(Attachment, attachment.id)
    assert row is not None
    assert (row.visit_id, row.incident_id) == (visit.id, None)
    assert (row.media_type, row.size, row.sha256) == (
        "application/pdf",
        len(data),
        store.sha256_of(data),
    )
    assert row.original_name == "Witness Jane Doe statement.pdf"
    assert row.holds_personal_data is True
    assert row.uploaded_by_id == world["officer"].id
    assert store.get(row.sha256) == data
    assert store.path_for(row.sha256).is_relative_to(Path(app.config["EVIDENCE_DIR"]))

    [event] = attachment_events(session)
    assert event.chain == premises_chain(world["premises"].id)
    assert event.premises_id == world["premises"].id
    assert json.loads(event.payload) == {
        "attachment_id": row.id,
        "incident_id": None,
        "visit_id": visit.id,
        "sha256": row.sha256,
        "media_type": "application/pdf",
        "size": len(data),
        "holds_personal_data": True,
        "redacted_copy_of_id": None,
    }
    # Never the file name or the description: they name a witness.
    assert "Jane" not in event.payload and "statement" not in event.payload.lower()
    assert "Jane" not in (event.reason or "")
    assert verify_chains(session).ok


def test_incident_attachment_goes_on_the_system_chain(
    session: Session, world: dict[str, Any], incident: Incident
) -> None:
    attachment = add(session, world["supervisor"], image_bytes("JPEG"), "x.jpg", incident=incident)
    [event] = attachment_events(session)
    assert event.chain == SYSTEM_CHAIN and event.premises_id is None
    payload = json.loads(event.payload)
    assert (payload["incident_id"], payload["visit_id"]) == (incident.id, None)
    assert payload["attachment_id"] == attachment.id
    assert "x.jpg" not in event.payload and "CCTV" not in event.payload
    assert verify_chains(session).ok


def test_refused_upload_changes_nothing(
    app: Flask, session: Session, world: dict[str, Any], incident: Incident
) -> None:
    with pytest.raises(ValidationFailed):
        add(session, world["officer"], b"MZ" + b"\x00" * 100, "photo.jpg", incident=incident)
    assert session.scalars(select(Attachment)).all() == []
    assert attachment_events(session) == []
    assert evidence_files(app) == set()


def test_only_police_may_add(session: Session, world: dict[str, Any], incident: Incident) -> None:
    for role in ("admin", "council"):
        with pytest.raises(Forbidden):
            add(session, world[role], pdf_bytes(), incident=incident)
    assert session.scalars(select(Attachment)).all() == []
    add(session, world["officer"], pdf_bytes(), incident=incident)  # the control


def test_exactly_one_owner(
    session: Session, world: dict[str, Any], incident: Incident, visit: Visit
) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        add(session, world["officer"], pdf_bytes())
    with pytest.raises(ValueError, match="exactly one"):
        add(session, world["officer"], pdf_bytes(), incident=incident, visit=visit)


def test_description_is_required_and_bounded(
    session: Session, world: dict[str, Any], incident: Incident
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        add(session, world["officer"], pdf_bytes(), incident=incident, description="   ")
    assert "description" in caught.value.errors
    with pytest.raises(ValidationFailed) as caught:
        add(session, world["officer"], pdf_bytes(), incident=incident, description="x" * 301)
    assert "300 characters" in caught.value.errors["description"]


def test_service_uses_the_configured_limit(
    app: Flask, session: Session, world: dict[str, Any], incident: Incident
) -> None:
    app.config["ATTACHMENT_MAX_BYTES"] = 100
    with pytest.raises(ValidationFailed) as caught:
        add(session, world["officer"], pdf_bytes(), incident=incident)
    assert "smaller than" in caught.value.errors["file"]


def test_attachments_of_lists_one_owner_oldest_first(
    session: Session, world: dict[str, Any], incident: Incident, visit: Visit
) -> None:
    first = add(session, world["officer"], pdf_bytes(), incident=incident)
    on_visit = add(session, world["officer"], image_bytes("PNG"), visit=visit)
    second = add(session, world["officer"], image_bytes("JPEG"), incident=incident)
    assert [a.id for a in attachments.attachments_of(session, incident_id=incident.id)] == [
        first.id,
        second.id,
    ]
    assert [a.id for a in attachments.attachments_of(session, visit_id=visit.id)] == [on_visit.id]


def test_get_attachment_is_police_only(
    session: Session, world: dict[str, Any], incident: Incident
) -> None:
    attachment = add(session, world["officer"], pdf_bytes(), incident=incident)
    assert attachments.get_attachment(session, world["supervisor"], attachment.id) is attachment
    for role in ("council", "other_council", "admin"):
        with pytest.raises(NotFound):
            attachments.get_attachment(session, world[role], attachment.id)
    with pytest.raises(NotFound):
        attachments.get_attachment(session, world["officer"], attachment.id + 1000)


def test_attachment_text_of_a_pdf_and_of_an_image(
    session: Session, world: dict[str, Any], incident: Incident
) -> None:
    statement = add(
        session,
        world["officer"],
        text_pdf("Statement of Jane Doe", "Second page: 07700 900123"),
        incident=incident,
    )
    text = attachments.attachment_text(statement)
    assert "Statement of Jane Doe" in text and "07700 900123" in text
    photo = add(session, world["officer"], image_bytes("PNG"), incident=incident)
    assert attachments.attachment_text(photo) == ""


# ---- redacted copies ------------------------------------------------------------------------


def test_redacted_copy_rules(
    session: Session, world: dict[str, Any], incident: Incident, visit: Visit
) -> None:
    officer = world["officer"]
    original = add(session, officer, pdf_bytes(), incident=incident, holds_personal_data=True)
    plain = add(session, officer, image_bytes("PNG"), incident=incident)

    with pytest.raises(Refused, match="same record"):
        add(session, officer, pdf_bytes(), visit=visit, redacted_copy_of=original)
    with pytest.raises(Refused, match="marked as holding personal data"):
        add(session, officer, image_bytes("JPEG"), incident=incident, redacted_copy_of=plain)
    with pytest.raises(ValidationFailed) as caught:
        add(
            session,
            officer,
            text_pdf("redacted"),
            incident=incident,
            redacted_copy_of=original,
            holds_personal_data=True,
        )
    assert "holds_personal_data" in caught.value.errors

    copy = add(session, officer, text_pdf("redacted"), incident=incident, redacted_copy_of=original)
    assert copy.redacted_copy_of_id == original.id and copy.holds_personal_data is False
    assert attachments.redacted_copy(session, original) is copy
    # A copy of a copy is refused: the copy holds no personal data.
    with pytest.raises(Refused):
        add(session, officer, text_pdf("again"), incident=incident, redacted_copy_of=copy)
    payload = json.loads(attachment_events(session)[-1].payload)
    assert payload["redacted_copy_of_id"] == original.id


# ---- the pages ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "name", "media_type", "served_as"),
    [
        (pdf_bytes(), "report.pdf", "application/pdf", "pdf"),
        (image_bytes("JPEG"), "still.jpeg", "image/jpeg", "jpg"),
        (image_bytes("PNG"), "plan.png", "image/png", "png"),
        (pdf_bytes(), "looks-like-a-photo.png", "application/pdf", "pdf"),  # content decides
    ],
)
def test_officer_uploads_to_an_incident_page_and_downloads_it(
    client: FlaskClient,
    session: Session,
    world: dict[str, Any],
    incident: Incident,
    data: bytes,
    name: str,
    media_type: str,
    served_as: str,
) -> None:
    sign_in(client, world["officer"])
    page_url = f"/incidents/{incident.id}"
    page = client.get(page_url).get_data(as_text=True)
    assert 'id="attachments"' in page and 'id="no-attachments"' in page
    assert f'action="/incidents/{incident.id}/attachments"' in page

    response = upload(client, page_url, f"/incidents/{incident.id}/attachments", data, name)

    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    assert response.headers["Location"].endswith(f"/incidents/{incident.id}#attachments")
    [attachment] = session.scalars(select(Attachment)).all()
    assert (attachment.media_type, attachment.original_name) == (media_type, name)
    shown = client.get(page_url).get_data(as_text=True)
    assert "Attachment uploaded." in shown
    assert f'href="/attachments/{attachment.id}"' in shown
    assert "CCTV still, bar area" in shown and attachment.kind_label in shown

    download = client.get(f"/attachments/{attachment.id}")
    assert download.status_code == 200
    assert download.data == data
    assert download.mimetype == media_type
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    assert download.headers["Content-Disposition"] == (
        f"attachment; filename=attachment-{attachment.id}.{served_as}"
    )
    assert "no-store" in download.headers["Cache-Control"]


def test_supervisor_uploads_to_a_visit_page(
    client: FlaskClient, session: Session, world: dict[str, Any], visit: Visit
) -> None:
    sign_in(client, world["supervisor"])
    page_url = f"/visits/{visit.id}"
    page = client.get(page_url).get_data(as_text=True)
    assert f'action="/visits/{visit.id}/attachments"' in page
    data = image_bytes("JPEG")

    response = upload(
        client, page_url, f"/visits/{visit.id}/attachments", data, "door.jpg", personal=True
    )

    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    [attachment] = session.scalars(select(Attachment)).all()
    assert (attachment.visit_id, attachment.holds_personal_data) == (visit.id, True)
    shown = client.get(page_url).get_data(as_text=True)
    assert "Holds personal data" in shown
    assert f'href="/attachments/{attachment.id}/redacted-copy"' in shown
    assert client.get(f"/attachments/{attachment.id}").data == data


def test_the_upload_page_shows_the_form_on_its_own(
    client: FlaskClient, world: dict[str, Any], incident: Incident
) -> None:
    sign_in(client, world["officer"])
    response = client.get(f"/incidents/{incident.id}/attachments")
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "Attach a document or photo" in body and "up to 20 MB" in body
    assert 'enctype="multipart/form-data"' in body


def test_renamed_executable_is_refused_on_the_page(
    app: Flask, client: FlaskClient, session: Session, world: dict[str, Any], incident: Incident
) -> None:
    sign_in(client, world["officer"])
    page_url = f"/incidents/{incident.id}"
    response = upload(
        client, page_url, f"{page_url}/attachments", b"MZ\x90\x00" + b"\x00" * 500, "photo.jpg"
    )
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert body.count("The selected file must be a PDF, JPEG or PNG") >= 2  # summary + field
    assert 'href="#attachment-file"' in body and 'id="attachment-file"' in body
    assert session.scalars(select(Attachment)).all() == []
    assert evidence_files(app) == set()


def test_oversized_file_is_refused_on_the_page(
    app: Flask, client: FlaskClient, session: Session, world: dict[str, Any], visit: Visit
) -> None:
    app.config["ATTACHMENT_MAX_BYTES"] = 1024 * 1024
    sign_in(client, world["officer"])
    data = image_bytes("PNG") + b"\x00" * (1024 * 1024)  # a good PNG, with trailing bytes
    response = upload(
        client, f"/visits/{visit.id}", f"/visits/{visit.id}/attachments", data, "a.png"
    )
    assert response.status_code == 422
    assert "The selected file must be smaller than 1 MB" in response.get_data(as_text=True)
    assert session.scalars(select(Attachment)).all() == []


def test_missing_file_and_description_are_form_errors(
    client: FlaskClient, world: dict[str, Any], incident: Incident
) -> None:
    sign_in(client, world["officer"])
    page_url = f"/incidents/{incident.id}"
    token = csrf_from(client.get(page_url).get_data(as_text=True))
    response = client.post(
        f"{page_url}/attachments",
        data={"attachment-csrf_token": token},
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert "Select a file to upload" in body and "Enter a description of the file" in body
    assert "<title>Error:" in body


def test_path_traversal_name_is_stored_and_served_by_id(
    app: Flask,
    client: FlaskClient,
    session: Session,
    world: dict[str, Any],
    incident: Incident,
    tmp_path: Path,
) -> None:
    before = {p for p in tmp_path.rglob("*") if p.is_file()}
    sign_in(client, world["officer"])
    data = pdf_bytes()
    response = upload(
        client,
        f"/incidents/{incident.id}",
        f"/incidents/{incident.id}/attachments",
        data,
        "../../etc/passwd.pdf",
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    [attachment] = session.scalars(select(Attachment)).all()
    assert attachment.original_name == "passwd.pdf"

    root = Path(app.config["EVIDENCE_DIR"]).resolve()
    new = {p for p in tmp_path.rglob("*") if p.is_file()} - before
    stored = {p for p in new if p.resolve().is_relative_to(root)}
    assert stored == {store.path_for(attachment.sha256)}
    assert re.fullmatch(r"[0-9a-f]{64}", store.path_for(attachment.sha256).name)
    # Anything else new is the test database's own journal, never the upload.
    assert all(p.name.startswith("test.db") for p in new - stored), new - stored
    assert not any("passwd" in str(p) for p in tmp_path.parent.rglob("*passwd*"))

    download = client.get(f"/attachments/{attachment.id}")
    assert download.data == data
    assert download.headers["Content-Disposition"] == (
        f"attachment; filename=attachment-{attachment.id}.pdf"
    )
    assert "passwd" not in download.headers["Content-Disposition"]


def test_pdf_with_javascript_is_refused_on_the_page(
    client: FlaskClient, session: Session, world: dict[str, Any], visit: Visit
) -> None:
    sign_in(client, world["officer"])
    data = pdf_bytes(open_action(js_open_action()))
    response = upload(
        client, f"/visits/{visit.id}", f"/visits/{visit.id}/attachments", data, "x.pdf"
    )
    assert response.status_code == 422
    assert "contains JavaScript" in response.get_data(as_text=True)
    assert session.scalars(select(Attachment)).all() == []


@pytest.fixture
def council_sees_incident(session: Session, world: dict[str, Any], incident: Incident) -> Incident:
    """The premises under review, so its council user may see it and its incidents."""
    move(
        session,
        world["premises"],
        world["supervisor"],
        "apply_for_summary_review",
        received_at="2025-01-06T10:00:00+00:00",
        certificate_reference="CERT-1",
    )
    return incident


def test_council_user_gets_404_for_every_attachment_route_and_sees_no_section(
    client: FlaskClient, session: Session, world: dict[str, Any], council_sees_incident: Incident
) -> None:
    incident = council_sees_incident
    attachment = add(
        session,
        world["officer"],
        pdf_bytes(),
        incident=incident,
        description="Statement of Jane Doe",
        holds_personal_data=True,
    )
    sign_in(client, world["council"])
    page = client.get(f"/incidents/{incident.id}")
    assert page.status_code == 200  # the control: the incident itself is theirs to see
    body = page.get_data(as_text=True)
    assert 'id="attachments"' not in body and "Jane Doe" not in body

    token = csrf_from(body)
    for method, url in [
        ("GET", f"/attachments/{attachment.id}"),
        ("GET", f"/attachments/{attachment.id + 1000}"),
        ("GET", f"/incidents/{incident.id}/attachments"),
        ("POST", f"/incidents/{incident.id}/attachments"),
        ("GET", f"/attachments/{attachment.id}/redacted-copy"),
        ("POST", f"/attachments/{attachment.id}/redacted-copy"),
    ]:
        data = None
        if method == "POST":
            data = {
                "csrf_token": token,
                "attachment-csrf_token": token,
                "attachment-file": (io.BytesIO(pdf_bytes()), "c.pdf"),
                "file": (io.BytesIO(pdf_bytes()), "c.pdf"),
                "attachment-description": "Council trying",
                "description": "Council trying",
            }
        response = client.open(url, method=method, data=data)
        assert response.status_code == 404, (method, url, response.status_code)
        assert "Page not found" in response.get_data(as_text=True)
    assert len(session.scalars(select(Attachment)).all()) == 1


def test_admin_sees_no_section_and_may_not_download(
    client: FlaskClient, session: Session, world: dict[str, Any], incident: Incident
) -> None:
    attachment = add(session, world["officer"], pdf_bytes(), incident=incident)
    sign_in(client, world["admin"])
    body = client.get(f"/incidents/{incident.id}").get_data(as_text=True)
    assert 'id="attachments"' not in body
    response = client.get(f"/attachments/{attachment.id}")
    assert response.status_code == 403
    assert response.data != pdf_bytes()


def test_redacted_copy_through_the_pages(
    client: FlaskClient, session: Session, world: dict[str, Any], incident: Incident
) -> None:
    original = add(
        session,
        world["officer"],
        text_pdf("Statement of Jane Doe"),
        incident=incident,
        description="Witness statement",
        holds_personal_data=True,
    )
    sign_in(client, world["officer"])
    url = f"/attachments/{original.id}/redacted-copy"
    page = client.get(url)
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert "Witness statement" in body and 'value="Redacted copy: Witness statement"' in body

    redacted = text_pdf("Statement of [REDACTED]")
    response = client.post(
        url,
        data={
            "csrf_token": csrf_from(body),
            "file": (io.BytesIO(redacted), "redacted.pdf"),
            "description": "Witness statement, redacted",
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    assert response.headers["Location"].endswith(f"/incidents/{incident.id}#attachments")
    session.expire_all()
    copy = attachments.redacted_copy(session, original)
    assert copy is not None
    assert (copy.incident_id, copy.holds_personal_data) == (incident.id, False)
    shown = client.get(f"/incidents/{incident.id}").get_data(as_text=True)
    assert "Redacted copy uploaded." in shown
    assert f'href="/attachments/{copy.id}"' in shown
    assert f'href="/attachments/{original.id}/redacted-copy"' not in shown
    assert client.get(f"/attachments/{copy.id}").data == redacted


def test_redacted_copy_of_an_attachment_without_personal_data_is_refused_on_the_page(
    client: FlaskClient, session: Session, world: dict[str, Any], incident: Incident
) -> None:
    plain = add(session, world["officer"], image_bytes("PNG"), incident=incident)
    sign_in(client, world["officer"])
    url = f"/attachments/{plain.id}/redacted-copy"
    response = client.post(
        url,
        data={
            "csrf_token": csrf_from(client.get(url).get_data(as_text=True)),
            "file": (io.BytesIO(image_bytes("PNG", (10, 10))), "r.png"),
            "description": "Redacted",
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    assert "Only an attachment marked as holding personal data" in response.get_data(as_text=True)
    assert len(session.scalars(select(Attachment)).all()) == 1


def test_missing_file_in_the_store_is_reported_not_served(
    app: Flask, client: FlaskClient, session: Session, world: dict[str, Any], incident: Incident
) -> None:
    attachment = add(session, world["officer"], pdf_bytes(), incident=incident)
    store.path_for(attachment.sha256).write_bytes(b"tampered")
    sign_in(client, world["officer"])
    response = client.get(f"/attachments/{attachment.id}")
    assert response.status_code == 500
    assert b"tampered" not in response.data
    assert "no longer matches its hash" in response.get_data(as_text=True)
