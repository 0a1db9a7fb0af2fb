"""API routes for evidence bundles: build, read, download, issue, share."""

from __future__ import annotations

import io
import re
from datetime import date
from typing import Any

from flask import Response, jsonify, request, send_file
from flask.typing import ResponseReturnValue

from licensing.api import MAX_ID, api_bp, api_user, requires_scope
from licensing.api.views import refuse_lone_surrogates, refuse_nul_characters
from licensing.auth.matrix import Action, permits
from licensing.db import get_session
from licensing.errors import ValidationFailed
from licensing.evidence import services
from licensing.evidence.document import POLICE, SHARED
from licensing.evidence.models import ITEM_KINDS, Bundle
from licensing.premises import services as premises_services

BUILD_FIELDS = {"from", "to", "review_kind", "statement", "exclude"}
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
MAX_EXCLUSIONS = 10_000
PERIOD_FIELDS = {"period_from": "from", "period_to": "to"}


def bundle_json(bundle: Bundle) -> dict[str, Any]:
    """A bundle as the API shows it (never its content: that is in the PDF and ZIP)."""
    return {
        "id": bundle.id,
        "premises_id": bundle.premises_id,
        "reference": bundle.reference,
        "version": bundle.version,
        "status": bundle.status,
        "review_kind": bundle.review_kind,
        "from": bundle.period_from.isoformat(),
        "to": bundle.period_to.isoformat(),
        "page_count": bundle.page_count,
        "built_at": bundle.built_at.isoformat(),
        "issued_at": bundle.issued_at.isoformat() if bundle.issued_at else None,
        "shared_at": bundle.shared_at.isoformat() if bundle.shared_at else None,
        "acknowledged_at": bundle.acknowledged_at.isoformat() if bundle.acknowledged_at else None,
        "shared_pdf_sha256": bundle.shared_pdf_sha256,
        "shared_zip_sha256": bundle.shared_zip_sha256,
        "audit_head_hash": bundle.audit_head_hash,
        "lock_version": bundle.lock_version,
    }


def _body() -> dict[str, Any]:
    try:
        body = request.get_json(silent=True)
    except RecursionError:
        body = None
    if body is None and not request.get_data():
        return {}
    if not isinstance(body, dict):
        raise ValidationFailed("The request body must be a JSON object")
    refuse_lone_surrogates(body)
    refuse_nul_characters(body)
    return body


def _date(body: dict[str, Any], name: str) -> date | None:
    value = body.get(name)
    if value is None:
        return None
    try:
        # YYYY-MM-DD only: fromisoformat alone would also take 20240101 or 2024-W01-1.
        if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationFailed(
            f"{name} must be a date YYYY-MM-DD", {name: "Enter a date"}
        ) from None


def _exclusions(body: dict[str, Any]) -> dict[tuple[str, int], str]:
    raw = body.get("exclude")
    if raw is None:
        raw = []
    if not isinstance(raw, list) or len(raw) > MAX_EXCLUSIONS:
        raise ValidationFailed(
            'exclude must be a list of {"kind", "id", "reason"}', {"exclude": "Must be a list"}
        )
    out: dict[tuple[str, int], str] = {}
    for index, entry in enumerate(raw):
        where = f"exclude[{index}]"
        if not isinstance(entry, dict):
            raise ValidationFailed(f"{where} must be an object", {where: "Must be an object"})
        kind, ref_id, reason = entry.get("kind"), entry.get("id"), entry.get("reason")
        if kind not in ITEM_KINDS:
            raise ValidationFailed(
                f"{where}.kind must be one of {', '.join(ITEM_KINDS)}", {where: "Unknown kind"}
            )
        if not isinstance(ref_id, int) or isinstance(ref_id, bool):
            raise ValidationFailed(f"{where}.id must be an integer", {where: "Must be an integer"})
        if ref_id > MAX_ID:  # names nothing, and no database could compare it
            raise ValidationFailed(f"{where}.id is not the id of an item", {where: "No such item"})
        if not isinstance(reason, str) or not reason.strip():
            raise ValidationFailed(
                f"{where}.reason: say why the item is left out", {where: "Give a reason"}
            )
        out[(str(kind), ref_id)] = reason
    return out


@api_bp.post("/premises/<int:premises_id>/bundles")
@requires_scope("workflow")
@permits(Action.BUILD_BUNDLE)
def bundles_create(premises_id: int) -> ResponseReturnValue:
    """Build a draft bundle: {"from", "to", "review_kind", "statement", "exclude"}."""
    user = api_user()
    premises = premises_services.get_premises(get_session(), user, premises_id)
    body = _body()
    unknown = sorted(set(body) - BUILD_FIELDS)
    if unknown:
        raise ValidationFailed(
            f"Unknown fields: {', '.join(unknown)}", {name: "Unknown field" for name in unknown}
        )
    statement = body.get("statement", "")
    review_kind = body.get("review_kind", "standard")
    if not isinstance(statement, str) or not isinstance(review_kind, str):
        raise ValidationFailed("statement and review_kind must be text")
    try:
        bundle = services.create_bundle(
            get_session(),
            user,
            premises,
            period_from=_date(body, "from"),
            period_to=_date(body, "to"),
            review_kind=review_kind,
            statement=statement,
            exclude=_exclusions(body),
        )
    except ValidationFailed as error:
        # The service names the period fields as its form does; the API's are from and to.
        error.errors = {PERIOD_FIELDS.get(k, k): v for k, v in error.errors.items()}
        raise
    response = jsonify(bundle_json(bundle))
    response.status_code = 201
    response.headers["Location"] = f"/api/v1/bundles/{bundle.id}"
    return response


def _bundle(bundle_id: int) -> Bundle:
    return services.get_bundle(get_session(), api_user(), bundle_id)


@api_bp.get("/bundles/<int:bundle_id>")
@requires_scope("read")
@permits(Action.VIEW_BUNDLE)
def bundles_show(bundle_id: int) -> ResponseReturnValue:
    """One bundle's facts and hashes (and its index as printed)."""
    bundle = _bundle(bundle_id)
    services.record_access(get_session(), api_user(), bundle, "view", _default_copy())
    body = bundle_json(bundle)
    body["index"] = [{"title": t, "page": p} for t, p in services.index_of(bundle)]
    return jsonify(body)


def _default_copy() -> str:
    return SHARED if api_user().is_council else POLICE


def _file(bundle_id: int, kind: str, mimetype: str) -> Response:
    bundle = _bundle(bundle_id)
    copy = request.args.get("copy") or SHARED
    if copy not in (SHARED, POLICE):
        raise ValidationFailed("copy must be shared or police", {"copy": "shared or police"})
    data, name = services.file_of(get_session(), api_user(), bundle, kind, copy)
    services.record_access(get_session(), api_user(), bundle, kind, copy)
    response = send_file(
        io.BytesIO(data), mimetype=mimetype, as_attachment=True, download_name=name
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@api_bp.get("/bundles/<int:bundle_id>/pdf")
@requires_scope("read")
@permits(Action.VIEW_BUNDLE)
def bundles_pdf(bundle_id: int) -> ResponseReturnValue:
    """The bundle PDF (?copy=shared, the default, or police; council: shared only)."""
    return _file(bundle_id, "pdf", "application/pdf")


@api_bp.get("/bundles/<int:bundle_id>/zip")
@requires_scope("read")
@permits(Action.VIEW_BUNDLE)
def bundles_zip(bundle_id: int) -> ResponseReturnValue:
    """The bundle ZIP: PDF, attachments, manifest.json (?copy=shared or police)."""
    return _file(bundle_id, "zip", "application/zip")


def _lock_version() -> int | None:
    body = _body()
    unknown = sorted(set(body) - {"lock_version"})
    if unknown:
        raise ValidationFailed(
            f"Unknown fields: {', '.join(unknown)}", {name: "Unknown field" for name in unknown}
        )
    value = body.get("lock_version")
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValidationFailed("lock_version must be an integer", {"lock_version": "Integer"})
    return value


@api_bp.post("/bundles/<int:bundle_id>/issue")
@requires_scope("workflow")
@permits(Action.ISSUE_BUNDLE)
def bundles_issue(bundle_id: int) -> ResponseReturnValue:
    """Issue a draft (supervisor); {"lock_version"} optional, checked when given."""
    user = api_user()
    bundle = _bundle(bundle_id)
    services.issue_bundle(get_session(), user, bundle, _lock_version())
    return jsonify(bundle_json(bundle))


@api_bp.post("/bundles/<int:bundle_id>/share")
@requires_scope("workflow")
@permits(Action.SHARE_BUNDLE)
def bundles_share(bundle_id: int) -> ResponseReturnValue:
    """Share an issued bundle with the premises' licensing authority (supervisor)."""
    user = api_user()
    bundle = _bundle(bundle_id)
    _lock_version()  # checked for shape only: an issued bundle never changes
    emailed = services.share_bundle(get_session(), user, bundle)
    return jsonify(bundle_json(bundle) | {"emailed": emailed})
