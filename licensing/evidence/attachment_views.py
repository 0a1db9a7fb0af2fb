"""Attachment pages (police only): upload to an incident or a visit, upload a redacted
copy, download.

Council users get 404 for every one of these, like any police page. Views stay thin:
validate the form, call one service, flash, redirect. The incident and visit pages show
the attachments through the template globals registered here, so their own views need
not know about attachments.
"""

from __future__ import annotations

from typing import Any, cast

from flask import (
    Blueprint,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import current_user
from sqlalchemy.orm import Session

from licensing.auth.matrix import Action, allowed, permits
from licensing.auth.models import User
from licensing.db import get_session
from licensing.errors import DomainError, ValidationFailed
from licensing.evidence import attachments
from licensing.evidence.downloads import send_evidence
from licensing.evidence.forms import ATTACHMENT_PREFIX, AttachmentForm, RedactedCopyForm
from licensing.evidence.models import Attachment
from licensing.incidents.models import Incident
from licensing.incidents.services import incident_visible_to
from licensing.templating import place_errors
from licensing.visits.models import Visit
from licensing.visits.services import get_visit

attachments_bp = Blueprint("attachments", __name__)


def _user() -> User:
    return cast(User, current_user)


# ---- template helpers: used by the incident and visit pages ------------------------------


@attachments_bp.app_template_global("attachments_for")
def attachments_for(
    incident: Incident | None = None, visit: Visit | None = None
) -> list[Attachment]:
    """The attachments of an incident or a visit, for a police user; none for anyone
    else (the incident page is also shown to council users and admins)."""
    user = _user()
    if not user.is_authenticated or not allowed(user, Action.DOWNLOAD_ATTACHMENT):
        return []
    return attachments.attachments_of(
        get_session(),
        incident_id=incident.id if incident is not None else None,
        visit_id=visit.id if visit is not None else None,
    )


@attachments_bp.app_template_global("attachment_form")
def attachment_form() -> AttachmentForm:
    """An empty upload form for the incident and visit pages."""
    return AttachmentForm(formdata=None, prefix=ATTACHMENT_PREFIX)


@attachments_bp.app_template_global("file_size")
def file_size(size: int) -> str:
    """A size as people read it: "850 bytes", "12 KB", "3.4 MB"."""
    if size < 1024:
        return f"{size} bytes"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


# ---- uploading ------------------------------------------------------------------------------


def _read_upload(form: AttachmentForm | RedactedCopyForm) -> tuple[bytes, str]:
    upload = form.file.data
    # One byte past the limit is enough for the service to refuse an oversized file,
    # without holding all of it in memory.
    data = upload.stream.read(attachments.max_bytes() + 1)
    return data, str(upload.filename or "")


def _store(session: Session, form: Any, **upload: Any) -> tuple[int, str | None] | None:
    """Add the attachment; None when stored, else the status and the page-level problem
    (field errors go on the form). Refusals that hide the record (403, 404) propagate."""
    try:
        attachments.add_attachment(session, _user(), **upload)
    except ValidationFailed as error:
        session.rollback()
        place_errors(form, error, "file")
        return 422, None
    except DomainError as error:
        session.rollback()
        if error.status in (403, 404):
            raise
        return error.status, error.message
    return None


def _upload(
    session: Session,
    *,
    incident: Incident | None = None,
    visit: Visit | None = None,
    owner_title: str,
    owner_url: str,
) -> ResponseReturnValue:
    form = AttachmentForm(prefix=ATTACHMENT_PREFIX)
    status = 200
    problem = None
    if form.validate_on_submit():
        data, file_name = _read_upload(form)
        failed = _store(
            session,
            form,
            incident=incident,
            visit=visit,
            data=data,
            file_name=file_name,
            description=form.description.data or "",
            holds_personal_data=bool(form.holds_personal_data.data),
        )
        if failed:
            status, problem = failed
        else:
            flash("Attachment uploaded.", "success")
            return redirect(f"{owner_url}#attachments")
    elif request.method == "POST":
        status = 422
    return render_template(
        "attachments/upload.html",
        form=form,
        problem=problem,
        owner_title=owner_title,
        owner_url=owner_url,
        limit_mb=attachments.megabytes(attachments.max_bytes()),
    ), status


@attachments_bp.route("/incidents/<int:incident_id>/attachments", methods=["GET", "POST"])
@permits(Action.ADD_ATTACHMENT)
def incident_upload(incident_id: int) -> ResponseReturnValue:
    """Attach a document or photo to an incident."""
    session = get_session()
    incident = incident_visible_to(session, _user(), incident_id)
    return _upload(
        session,
        incident=incident,
        owner_title=f"{incident.category} incident {incident.source_ref}",
        owner_url=url_for("incidents.show", incident_id=incident.id),
    )


@attachments_bp.route("/visits/<int:visit_id>/attachments", methods=["GET", "POST"])
@permits(Action.ADD_ATTACHMENT)
def visit_upload(visit_id: int) -> ResponseReturnValue:
    """Attach a document or photo to a visit."""
    session = get_session()
    visit = get_visit(session, _user(), visit_id)
    return _upload(
        session,
        visit=visit,
        owner_title=f"Visit to {visit.premises.name}",
        owner_url=url_for("visits.show", visit_id=visit.id),
    )


def _owner_url(attachment: Attachment) -> str:
    if attachment.incident_id is not None:
        return url_for("incidents.show", incident_id=attachment.incident_id)
    return url_for("visits.show", visit_id=attachment.visit_id)


@attachments_bp.route("/attachments/<int:attachment_id>/redacted-copy", methods=["GET", "POST"])
@permits(Action.ADD_ATTACHMENT)
def redacted_copy(attachment_id: int) -> ResponseReturnValue:
    """Upload the redacted copy of an attachment that holds personal data."""
    session = get_session()
    user = _user()
    original = attachments.get_attachment(session, user, attachment_id)
    incident = (
        incident_visible_to(session, user, original.incident_id)
        if original.incident_id is not None
        else None
    )
    visit = get_visit(session, user, original.visit_id) if original.visit_id is not None else None
    form = RedactedCopyForm()
    if request.method == "GET":
        form.description.data = f"Redacted copy: {original.description}"[:300]
    status = 200
    problem = None
    if form.validate_on_submit():
        data, file_name = _read_upload(form)
        failed = _store(
            session,
            form,
            incident=incident,
            visit=visit,
            data=data,
            file_name=file_name,
            description=form.description.data or "",
            holds_personal_data=False,
            redacted_copy_of=original,
        )
        if failed:
            status, problem = failed
        else:
            flash("Redacted copy uploaded.", "success")
            return redirect(f"{_owner_url(original)}#attachments")
    elif request.method == "POST":
        status = 422
    return render_template(
        "attachments/redacted_copy.html",
        form=form,
        problem=problem,
        original=original,
        existing=attachments.redacted_copy(session, original),
        owner_url=_owner_url(original),
    ), status


# ---- downloading ----------------------------------------------------------------------------


@attachments_bp.get("/attachments/<int:attachment_id>")
@permits(Action.DOWNLOAD_ATTACHMENT)
def download(attachment_id: int) -> ResponseReturnValue:
    """The attachment's bytes from the evidence store, always as a download, under a name
    made from its id (never the uploaded name), with the type decided at upload."""
    attachment = attachments.get_attachment(get_session(), _user(), attachment_id)
    return send_evidence(attachment.sha256, attachment.media_type, attachment.safe_file_name)
