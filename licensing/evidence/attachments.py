"""Attachments on incidents and visits: check an upload, store it, list and read it.

An upload is trusted by nothing it says about itself: its type is decided from its bytes
(never its name), and it must parse as that type. PDFs that could run anything when
opened (JavaScript, launch actions, embedded files, rich media, XFA forms, automatic
actions) are refused, because a bundle carries them to people outside the police. The
bytes go to the evidence store under their SHA-256; the uploaded name is kept for
display only. Services own the transaction: `add_attachment` checks, writes the row and
its audit event, and commits, or raises a DomainError having changed nothing.
"""

from __future__ import annotations

import errno
import io
import logging
import re
from collections.abc import Iterator
from typing import Any

from flask import current_app
from PIL import Image
from pypdf import PdfReader
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, NameObject
from sqlalchemy import select
from sqlalchemy.orm import Session

from licensing.audit.services import append_event
from licensing.auth.models import POLICE_ROLES, User
from licensing.errors import Forbidden, NotFound, Refused, ValidationFailed
from licensing.evidence import store
from licensing.evidence.models import Attachment
from licensing.incidents.models import Incident
from licensing.visits.models import Visit

log = logging.getLogger(__name__)

PDF, JPEG, PNG = "application/pdf", "image/jpeg", "image/png"
DEFAULT_MAX_BYTES = 20 * 1024 * 1024
# Decompression-bomb guard: a 40-megapixel photo is already far beyond any CCTV still or
# phone camera; a file declaring more is refused before its pixels are decoded.
MAX_PIXELS = 40_000_000
DESCRIPTION_MAX = 300
NAME_MAX = 255

_MAGIC = (
    (b"%PDF-", PDF),
    (b"\xff\xd8\xff", JPEG),
    (b"\x89PNG\r\n\x1a\n", PNG),
)
_PILLOW_FORMAT = {JPEG: "JPEG", PNG: "PNG"}

# Names whose mere presence means active or hidden content: scripts, embedded files,
# rich media (Flash/3D), XFA forms.
_FORBIDDEN_KEYS = {
    "/JS": "JavaScript",
    "/JavaScript": "JavaScript",
    "/EmbeddedFiles": "embedded files",
    "/EmbeddedFile": "embedded files",
    "/EF": "embedded files",
    "/RichMedia": "rich media",
    "/RichMediaContent": "rich media",
    "/RichMediaSettings": "rich media",
    "/XFA": "an XFA form",
}
_FORBIDDEN_TYPES = {
    "/JavaScript": "JavaScript",
    "/EmbeddedFile": "embedded files",
    "/FileAttachment": "embedded files",
    "/RichMedia": "rich media",
}
# Action types (/S) that run code, open other files or programs, or send data out.
_FORBIDDEN_ACTIONS = {
    "/JavaScript": "JavaScript",
    "/Launch": "an action that launches a program",
    "/SubmitForm": "an action that sends form data",
    "/ImportData": "an action that imports data",
    "/GoToR": "an action that opens another file",
    "/GoToE": "an action that opens an embedded file",
    "/RichMediaExecute": "rich media",
    "/Rendition": "a media action",
}
# The same names seen in the raw bytes, with #xx escapes decoded: a second net for
# objects a lenient viewer might find but pypdf's cross-reference does not reach.
_RAW_NAME = re.compile(rb"/([^\x00\t\n\f\r ()<>\[\]{}/%]{1,127})")
_STREAM = re.compile(rb"\bstream\r?\n.*?\bendstream\b", re.DOTALL)
_RAW_FORBIDDEN = {
    b"JS",
    b"JavaScript",
    b"Launch",
    b"EmbeddedFile",
    b"EmbeddedFiles",
    b"RichMedia",
    b"XFA",
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _fail(message: str) -> ValidationFailed:
    return ValidationFailed(message, {"file": message})


def megabytes(size: int) -> str:
    """A byte count as megabytes for messages: 20971520 -> "20", 1572864 -> "1.5" (a
    tiny limit, as tests set, shows as "0.01")."""
    return f"{max(size / (1024 * 1024), 0.01):.2f}".rstrip("0").rstrip(".")


def max_bytes() -> int:
    """The per-attachment limit (ATTACHMENT_MAX_BYTES), 20 MB unless configured."""
    return int(current_app.config.get("ATTACHMENT_MAX_BYTES") or DEFAULT_MAX_BYTES)


def sniff_and_check(data: bytes, max_bytes: int) -> str:
    """The media type of an upload, decided by its content: application/pdf, image/jpeg
    or image/png. Raises ValidationFailed (field "file") if it is empty, too big, not one
    of those, damaged, an encrypted PDF, a PDF with active content, or an image with
    more pixels than MAX_PIXELS."""
    if not data:
        raise _fail("The selected file is empty")
    if len(data) > max_bytes:
        raise _fail(f"The selected file must be smaller than {megabytes(max_bytes)} MB")
    media_type = next((kind for magic, kind in _MAGIC if data.startswith(magic)), None)
    if media_type is None:
        raise _fail("The selected file must be a PDF, JPEG or PNG")
    if media_type == PDF:
        _check_pdf(data)
    else:
        _check_image(data, media_type)
    return media_type


def _check_image(data: bytes, media_type: str) -> None:
    expected = _PILLOW_FORMAT[media_type]
    damaged = _fail(f"The selected file is not a valid {expected} image: it may be damaged")
    try:
        # `formats` pins the decoder to the one the magic bytes name. Opening reads only
        # the header; Pillow's own bomb check (a warning, then an error, far above our
        # limit) runs here, and ours runs before any pixel is decoded.
        with Image.open(io.BytesIO(data), formats=[expected]) as image:
            if image.format != expected:
                raise damaged
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise _too_many_pixels(width, height)
            image.verify()
        # verify() leaves the image unusable and does not decode pixels: decode afresh to
        # find truncated or corrupt data. A JPEG is decoded at 1/8 scale (it still reads
        # every byte) to keep memory down.
        with Image.open(io.BytesIO(data), formats=[expected]) as image:
            if expected == "JPEG":
                image.draft("RGB", (max(width // 8, 1), max(height // 8, 1)))
            image.load()
    except ValidationFailed:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _fail(
            f"The selected image has too many pixels: the limit is {MAX_PIXELS // 1_000_000} "
            "megapixels"
        ) from None
    except Exception:  # any decoder failure on hostile bytes means "damaged"
        raise damaged from None


def _too_many_pixels(width: int, height: int) -> ValidationFailed:
    return _fail(
        f"The selected image is {width} × {height} pixels: the limit is "
        f"{MAX_PIXELS // 1_000_000} megapixels"
    )


def _check_pdf(data: bytes) -> None:
    damaged = _fail("The selected file is not a valid PDF: it may be damaged")
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            raise _fail(
                "The selected PDF is encrypted or password-protected: upload a copy "
                "without a password"
            )
        if len(reader.pages) == 0:
            raise damaged
        found = _active_content(reader)
    except ValidationFailed:
        raise
    except Exception:  # any parser failure on hostile bytes means "damaged"
        raise damaged from None
    found = found or _raw_active_content(data)
    if found:
        raise _fail(
            f"The selected PDF contains {found}, which is not allowed in evidence. "
            "Print it to a new PDF and upload that"
        )


def _active_content(reader: PdfReader) -> str | None:
    """What active content the parsed PDF holds, or None. Names are compared after
    pypdf has decoded them, so /J#61vaScript is /JavaScript here. A specific finding
    (JavaScript, say) is reported in preference to a general one (an open action)."""
    general: str | None = None
    for dictionary in _dictionaries(reader):
        for key, label in _FORBIDDEN_KEYS.items():
            if key in dictionary:
                return label
        for type_key in ("/Type", "/Subtype"):
            value = _resolved(dictionary.get(type_key))
            if isinstance(value, NameObject) and str(value) in _FORBIDDEN_TYPES:
                return _FORBIDDEN_TYPES[str(value)]
        action = _resolved(dictionary.get("/S"))
        if isinstance(action, NameObject) and str(action) in _FORBIDDEN_ACTIONS:
            return _FORBIDDEN_ACTIONS[str(action)]
        # An open action may be a destination (an array: "show page 1"), which is fine;
        # an action dictionary runs when the file opens, so only "go to a page" may stay.
        opening = _resolved(dictionary.get("/OpenAction"))
        if isinstance(opening, DictionaryObject):
            kind = _resolved(opening.get("/S"))
            if str(kind) != "/GoTo" or "/Next" in opening:
                general = general or "an action that runs when the file is opened"
        # Additional actions fire on events (page open, field focus): nothing benign
        # needs them in evidence.
        additional = _resolved(dictionary.get("/AA"))
        if isinstance(additional, DictionaryObject) and len(additional) > 0:
            general = general or "actions that run automatically"
    return general


def _resolved(value: Any) -> Any:
    return value.get_object() if isinstance(value, IndirectObject) else value


def _dictionaries(reader: PdfReader) -> Iterator[DictionaryObject]:
    """Every dictionary in the file: all reachable from the trailer, then every object
    the cross-reference tables list (reachable or not). Iterative, so a deep or cyclic
    structure cannot exhaust the stack."""
    seen: set[tuple[int, int]] = set()
    stack: list[Any] = [reader.trailer]
    for generation, entries in reader.xref.items():
        stack.extend(IndirectObject(number, generation, reader) for number in entries)
    stack.extend(IndirectObject(number, 0, reader) for number in reader.xref_objStm)
    while stack:
        item = stack.pop()
        if isinstance(item, IndirectObject):
            key = (item.idnum, item.generation)
            if key in seen:
                continue
            seen.add(key)
            item = item.get_object()
        if isinstance(item, DictionaryObject):  # includes stream objects
            yield item
            stack.extend(item.values())
        elif isinstance(item, ArrayObject):
            stack.extend(item)


def _raw_active_content(data: bytes) -> str | None:
    # Stream contents are skipped: compressed bytes hold "/JS " by chance often enough
    # to refuse good scans, and pypdf has already checked what object streams hold.
    outside_streams = _STREAM.sub(b" ", data)
    for match in _RAW_NAME.finditer(outside_streams):
        name = _decode_name(match.group(1))
        if name in _RAW_FORBIDDEN:
            label = _FORBIDDEN_KEYS.get("/" + name.decode("latin-1"))
            return label or _FORBIDDEN_ACTIONS.get("/" + name.decode("latin-1"), "active content")
    return None


def _decode_name(raw: bytes) -> bytes:
    """A PDF name's bytes with #xx escapes decoded."""
    if b"#" not in raw:
        return raw
    return re.sub(rb"#([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), raw)


def safe_display_name(name: str) -> str:
    """An uploaded file's name fit to show: its last path part (either slash), no control
    characters, at most 255 characters. For display only: never used as a path."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = _CONTROL.sub("", base).strip()
    return base[:NAME_MAX]


def _require_police(actor: User) -> None:
    # The pages answer council users 404 before this is reached (roles_required).
    if actor.role not in POLICE_ROLES:
        raise Forbidden("Only police licensing officers can add attachments")


def add_attachment(
    session: Session,
    actor: User,
    *,
    incident: Incident | None = None,
    visit: Visit | None = None,
    data: bytes,
    file_name: str,
    description: str,
    holds_personal_data: bool,
    redacted_copy_of: Attachment | None = None,
) -> Attachment:
    """Check and store an upload as an attachment of one incident or one visit, with an
    audit event (the visit's premises chain, or the system chain for an incident), and
    commit. A redacted copy belongs to the same record as its original, which must be
    marked as holding personal data; the copy must not be."""
    _require_police(actor)
    if (incident is None) == (visit is None):
        raise ValueError("an attachment belongs to exactly one incident or one visit")
    description = (description or "").strip()
    errors: dict[str, str] = {}
    if not description:
        errors["description"] = "Enter a description of the file"
    elif len(description) > DESCRIPTION_MAX:
        errors["description"] = f"The description must be {DESCRIPTION_MAX} characters or fewer"
    if redacted_copy_of is not None:
        same_owner = redacted_copy_of.incident_id == (
            incident.id if incident else None
        ) and redacted_copy_of.visit_id == (visit.id if visit else None)
        if not same_owner:
            raise Refused("A redacted copy must belong to the same record as its original")
        if not redacted_copy_of.holds_personal_data:
            raise Refused(
                "Only an attachment marked as holding personal data needs a redacted copy"
            )
        if holds_personal_data:
            errors["holds_personal_data"] = (
                "A redacted copy must not hold personal data: redact it before uploading"
            )
    if errors:
        raise ValidationFailed(next(iter(errors.values())), errors)
    media_type = sniff_and_check(data, max_bytes())

    try:
        # Content-addressed: if the row below fails, the file stays as a spare, harmless
        # (reachable only through a row naming its hash; a retry reuses it) and not
        # deleted, since another attachment may hold the same content.
        digest = store.put(data)
    except OSError as error:
        log.error("could not store an attachment in the evidence store: %s", error)
        reason = (
            "the evidence store is full"
            if error.errno in (errno.ENOSPC, errno.EDQUOT)
            else "the evidence store could not be written to"
        )
        raise store.StorageFailed(
            f"The file could not be stored: {reason}. Nothing was saved. "
            "Try again later, and tell your system administrator if it happens again."
        ) from error
    attachment = Attachment(
        incident_id=incident.id if incident else None,
        visit_id=visit.id if visit else None,
        sha256=digest,
        size=len(data),
        media_type=media_type,
        original_name=safe_display_name(file_name),
        description=description,
        holds_personal_data=bool(holds_personal_data),
        redacted_copy_of_id=redacted_copy_of.id if redacted_copy_of else None,
        uploaded_by_id=actor.id,
    )
    try:
        session.add(attachment)
        session.flush()
        # Never the file name or description: either may name a victim or witness, and
        # the chain cannot be erased.
        append_event(
            session,
            event="attachment_added",
            actor_id=actor.id,
            premises_id=visit.premises_id if visit else None,
            payload={
                "attachment_id": attachment.id,
                "incident_id": attachment.incident_id,
                "visit_id": attachment.visit_id,
                "sha256": digest,
                "media_type": media_type,
                "size": attachment.size,
                "holds_personal_data": attachment.holds_personal_data,
                "redacted_copy_of_id": attachment.redacted_copy_of_id,
            },
        )
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return attachment


def attachments_of(
    session: Session, incident_id: int | None = None, visit_id: int | None = None
) -> list[Attachment]:
    """The attachments of one incident or one visit, oldest first."""
    if (incident_id is None) == (visit_id is None):
        raise ValueError("give exactly one of incident_id and visit_id")
    owner = (
        Attachment.incident_id == incident_id
        if incident_id is not None
        else Attachment.visit_id == visit_id
    )
    return list(
        session.scalars(
            select(Attachment).where(owner).order_by(Attachment.uploaded_at, Attachment.id)
        ).all()
    )


def redacted_copy(session: Session, original: Attachment) -> Attachment | None:
    """The newest redacted copy of an attachment, or None. (A copy may be replaced by
    uploading a better one; the newest is the one that counts.)"""
    return session.scalars(
        select(Attachment)
        .where(Attachment.redacted_copy_of_id == original.id)
        .order_by(Attachment.uploaded_at.desc(), Attachment.id.desc())
        .limit(1)
    ).first()


def get_attachment(session: Session, user: User, attachment_id: int) -> Attachment:
    """An attachment for a police user. Anyone else, council users above all, gets
    NotFound: they must not learn that it exists."""
    if user.role not in POLICE_ROLES:
        raise NotFound("Page not found")
    attachment = session.get(Attachment, attachment_id)
    if attachment is None:
        raise NotFound("Page not found")
    return attachment


def attachment_text(attachment: Attachment) -> str:
    """The text of a PDF attachment (every page, in order), or "" for an image. The bundle
    builder searches it for known personal values."""
    if attachment.media_type != PDF:
        return ""
    reader = PdfReader(io.BytesIO(store.get(attachment.sha256)), strict=False)
    return "\n".join(page.extract_text() or "" for page in reader.pages)
