"""Bundle pages: build, review and issue (police); open, download, acknowledge and
comment (council users of the authority a bundle is shared with).

Views stay thin: validate the form, call one service, flash, redirect.
"""

from __future__ import annotations

import io
from typing import Any, cast

from flask import Blueprint, flash, redirect, render_template, request, send_file, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from licensing.auth.matrix import Action, allowed, permits
from licensing.auth.models import User
from licensing.db import MAX_ROW_ID, get_session
from licensing.errors import Conflict, NotFound, Refused, ValidationFailed
from licensing.evidence import services
from licensing.evidence.bundle_forms import (
    AcknowledgeForm,
    BuildBundleForm,
    CommentForm,
    ExcludeItemForm,
    IncludeItemForm,
    IssueForm,
    NewVersionForm,
    RebuildForm,
    ShareForm,
    StatementForm,
)
from licensing.evidence.document import POLICE, SHARED
from licensing.evidence.models import (
    ACCESS_ACTIONS,
    BUNDLE_STATUSES,
    ITEM_KINDS,
    REVIEW_KINDS,
    Bundle,
    BundleItem,
)
from licensing.premises.services import get_premises
from licensing.templating import place_errors

evidence_bp = Blueprint("evidence", __name__)


def _user() -> User:
    return cast(User, current_user)


def _seen(form: Any) -> int | None:
    raw = form.lock_version.data
    return int(raw) if raw and str(raw).isdigit() else None


@evidence_bp.app_context_processor
def _labels() -> dict[str, Any]:
    return {
        "BUNDLE_STATUSES": BUNDLE_STATUSES,
        "REVIEW_KINDS": REVIEW_KINDS,
        "ITEM_KINDS": ITEM_KINDS,
        "ACCESS_ACTIONS": ACCESS_ACTIONS,
    }


@evidence_bp.get("/bundles")
@permits(Action.VIEW_BUNDLE)
def list_bundles() -> ResponseReturnValue:
    """Every bundle (police), or the bundles shared with the user's authority (council),
    newest first, a page at a time (`before`: the last bundle of the page before)."""
    before = request.args.get("before", type=int)
    if before is not None and not 0 < before <= MAX_ROW_ID:
        before = None
    bundles, older = services.bundles_page(get_session(), _user(), before)
    return render_template("evidence/list.html", bundles=bundles, older=older, paged=before)


@evidence_bp.route("/premises/<int:premises_id>/bundles/new", methods=["GET", "POST"])
@permits(Action.BUILD_BUNDLE)
def build(premises_id: int) -> ResponseReturnValue:
    """Build a new bundle for a premises."""
    session = get_session()
    premises = get_premises(session, _user(), premises_id)
    form = BuildBundleForm()
    if request.method == "GET":
        form.period_from.data, form.period_to.data = services.default_period()
    status = 200
    if form.validate_on_submit():
        try:
            bundle = services.create_bundle(
                session,
                _user(),
                premises,
                period_from=form.period_from.data,
                period_to=form.period_to.data,
                review_kind=form.review_kind.data or "standard",
                statement=form.statement.data or "",
            )
        except ValidationFailed as error:
            place_errors(form, error, "period_from")
            status = 422
        else:
            flash(f"Bundle {bundle.label} built: {bundle.page_count} pages.", "success")
            return redirect(url_for("evidence.show", bundle_id=bundle.id))
    elif request.method == "POST":
        status = 422
    return render_template("evidence/new.html", form=form, premises=premises), status


def _render_bundle(
    bundle: Bundle, status: int = 200, problem: str | None = None, **forms: Any
) -> ResponseReturnValue:
    session = get_session()
    user = _user()
    police = allowed(user, Action.BUILD_BUNDLE)
    statement_form = forms.get("statement_form") or StatementForm(formdata=None)
    if "statement_form" not in forms:
        statement_form.statement.data = bundle.statement
        statement_form.lock_version.data = str(bundle.lock_version)
    rebuild_form = RebuildForm(formdata=None, lock_version=str(bundle.lock_version))
    issue_form = IssueForm(formdata=None, lock_version=str(bundle.lock_version))
    comment_form = forms.get("comment_form") or CommentForm(formdata=None)
    failed = next((f for f in forms.values() if f is not None and f.errors), None)
    return render_template(
        "evidence/show.html",
        bundle=bundle,
        premises=bundle.premises,
        police=police,
        supervisor=allowed(user, Action.ISSUE_BUNDLE),
        items=services.items_of(session, bundle) if police else [],
        blockers=services.blockers_of(session, bundle),
        redactions=services.redactions_of(session, bundle),
        accesses=services.accesses_of(session, bundle)
        if allowed(user, Action.VIEW_BUNDLE_ACCESS_LOG)
        else [],
        comments=services.comments_of(session, bundle),
        index=services.index_of(bundle),
        variants=services.variants_for(user),
        versions=services.list_bundles(session, user, bundle.premises_id),
        statement_form=statement_form,
        rebuild_form=rebuild_form,
        issue_form=issue_form,
        share_form=ShareForm(formdata=None),
        new_version_form=NewVersionForm(formdata=None),
        acknowledge_form=AcknowledgeForm(formdata=None),
        comment_form=comment_form,
        error_form=failed,
        problem=problem,
    ), status


@evidence_bp.get("/bundles/<int:bundle_id>")
@permits(Action.VIEW_BUNDLE)
def show(bundle_id: int) -> ResponseReturnValue:
    """A bundle: its index, files, items, redaction log, comments and access log."""
    session = get_session()
    bundle = services.get_bundle(session, _user(), bundle_id)
    services.record_access(
        session, _user(), bundle, "view", SHARED if _user().is_council else POLICE
    )
    return _render_bundle(bundle)


def _copy() -> str:
    copy = request.args.get("copy") or SHARED
    if copy not in (SHARED, POLICE):
        raise NotFound("No such copy")
    return copy


@evidence_bp.get("/bundles/<int:bundle_id>/pdf")
@permits(Action.VIEW_BUNDLE)
def pdf(bundle_id: int) -> ResponseReturnValue:
    """The PDF, shown in the browser (?copy=shared or police; council: shared only)."""
    session = get_session()
    bundle = services.get_bundle(session, _user(), bundle_id)
    copy = _copy()
    data, name = services.file_of(session, _user(), bundle, "pdf", copy)
    services.record_access(session, _user(), bundle, "pdf", copy)
    response = send_file(
        io.BytesIO(data), mimetype="application/pdf", as_attachment=False, download_name=name
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@evidence_bp.get("/bundles/<int:bundle_id>/zip")
@permits(Action.VIEW_BUNDLE)
def zip_file(bundle_id: int) -> ResponseReturnValue:
    """The ZIP: PDF, attachments and manifest (?copy=shared or police)."""
    session = get_session()
    bundle = services.get_bundle(session, _user(), bundle_id)
    copy = _copy()
    data, name = services.file_of(session, _user(), bundle, "zip", copy)
    services.record_access(session, _user(), bundle, "zip", copy)
    response = send_file(
        io.BytesIO(data), mimetype="application/zip", as_attachment=True, download_name=name
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _item(bundle: Bundle, item_id: int) -> BundleItem:
    item = get_session().get(BundleItem, item_id)
    if item is None or item.bundle_id != bundle.id:
        raise NotFound("Item not found in this bundle")
    return item


@evidence_bp.route("/bundles/<int:bundle_id>/items/<int:item_id>", methods=["GET", "POST"])
@permits(Action.BUILD_BUNDLE)
def exclude_item(bundle_id: int, item_id: int) -> ResponseReturnValue:
    """Leave an item out of a draft, with a reason."""
    session = get_session()
    bundle = services.get_bundle(session, _user(), bundle_id)
    item = _item(bundle, item_id)
    form = ExcludeItemForm()
    if request.method == "GET":
        form.lock_version.data = str(bundle.lock_version)
    status = 200
    problem = None
    if form.validate_on_submit():
        try:
            services.set_inclusion(
                session, _user(), bundle, item.id, False, form.reason.data or "", _seen(form)
            )
        except ValidationFailed as error:
            place_errors(form, error, "reason")
            status = 422
        except (Conflict, Refused) as error:
            problem, status = error.message, error.status
        else:
            flash(f"{item.reference} is left out; the bundle was rebuilt.", "success")
            return redirect(url_for("evidence.show", bundle_id=bundle.id))
    elif request.method == "POST":
        status = 422
    return render_template(
        "evidence/exclude.html", form=form, bundle=bundle, item=item, problem=problem
    ), status


@evidence_bp.post("/bundles/<int:bundle_id>/items/<int:item_id>/include")
@permits(Action.BUILD_BUNDLE)
def include_item(bundle_id: int, item_id: int) -> ResponseReturnValue:
    """Put a left-out item back into a draft."""
    session = get_session()
    bundle = services.get_bundle(session, _user(), bundle_id)
    item = _item(bundle, item_id)
    form = IncludeItemForm()
    if not form.validate_on_submit():
        return _render_bundle(bundle, 422, problem="The form expired: try again")
    try:
        services.set_inclusion(session, _user(), bundle, item.id, True, "", _seen(form))
    except (Conflict, Refused) as error:
        return _render_bundle(bundle, error.status, problem=error.message)
    flash(f"{item.reference} is back in; the bundle was rebuilt.", "success")
    return redirect(url_for("evidence.show", bundle_id=bundle.id))


@evidence_bp.post("/bundles/<int:bundle_id>/statement")
@permits(Action.BUILD_BUNDLE)
def statement(bundle_id: int) -> ResponseReturnValue:
    """Change a draft's statement."""
    session = get_session()
    bundle = services.get_bundle(session, _user(), bundle_id)
    form = StatementForm()
    if not form.validate_on_submit():
        return _render_bundle(bundle, 422, statement_form=form)
    try:
        services.update_statement(session, _user(), bundle, form.statement.data or "", _seen(form))
    except Conflict as error:
        # Keep what the user typed; the form now carries the current version, so saving
        # again is a deliberate choice made after seeing the other change.
        session.refresh(bundle)
        form.lock_version.data = str(bundle.lock_version)
        return _render_bundle(bundle, error.status, problem=error.message, statement_form=form)
    except Refused as error:
        return _render_bundle(bundle, error.status, problem=error.message)
    flash("Statement saved; the bundle was rebuilt.", "success")
    return redirect(url_for("evidence.show", bundle_id=bundle.id))


@evidence_bp.post("/bundles/<int:bundle_id>/rebuild")
@permits(Action.BUILD_BUNDLE)
def rebuild(bundle_id: int) -> ResponseReturnValue:
    """Rebuild a draft from the latest records."""
    session = get_session()
    bundle = services.get_bundle(session, _user(), bundle_id)
    form = RebuildForm()
    if not form.validate_on_submit():
        return _render_bundle(bundle, 422, problem="The form expired: try again")
    try:
        services.rebuild(session, _user(), bundle, _seen(form))
    except (Conflict, Refused) as error:
        return _render_bundle(bundle, error.status, problem=error.message)
    flash(f"Bundle {bundle.label} rebuilt: {bundle.page_count} pages.", "success")
    return redirect(url_for("evidence.show", bundle_id=bundle.id))


@evidence_bp.post("/bundles/<int:bundle_id>/issue")
@permits(Action.ISSUE_BUNDLE)
def issue(bundle_id: int) -> ResponseReturnValue:
    """Issue a draft (supervisor)."""
    session = get_session()
    bundle = services.get_bundle(session, _user(), bundle_id)
    form = IssueForm()
    if not form.validate_on_submit():
        return _render_bundle(bundle, 422, problem="The form expired: try again")
    try:
        services.issue_bundle(session, _user(), bundle, _seen(form))
    except (Conflict, Refused) as error:
        return _render_bundle(bundle, error.status, problem=error.message)
    flash(f"Bundle {bundle.label} issued. It can no longer change.", "success")
    return redirect(url_for("evidence.show", bundle_id=bundle.id))


@evidence_bp.post("/bundles/<int:bundle_id>/share")
@permits(Action.SHARE_BUNDLE)
def share(bundle_id: int) -> ResponseReturnValue:
    """Share an issued bundle with the premises' licensing authority (supervisor)."""
    session = get_session()
    bundle = services.get_bundle(session, _user(), bundle_id)
    if not ShareForm().validate_on_submit():
        return _render_bundle(bundle, 422, problem="The form expired: try again")
    try:
        emailed = services.share_bundle(session, _user(), bundle)
    except Refused as error:
        return _render_bundle(bundle, error.status, problem=error.message)
    flash(
        f"Shared with {bundle.premises.authority.name}; {emailed} council "
        f"user{'s' if emailed != 1 else ''} will be emailed.",
        "success",
    )
    return redirect(url_for("evidence.show", bundle_id=bundle.id))


@evidence_bp.post("/bundles/<int:bundle_id>/new-version")
@permits(Action.BUILD_BUNDLE)
def new_version(bundle_id: int) -> ResponseReturnValue:
    """Start a new version of an issued bundle."""
    session = get_session()
    bundle = services.get_bundle(session, _user(), bundle_id)
    if not NewVersionForm().validate_on_submit():
        return _render_bundle(bundle, 422, problem="The form expired: try again")
    try:
        draft = services.new_version(session, _user(), bundle)
    except Refused as error:
        return _render_bundle(bundle, error.status, problem=error.message)
    flash(f"Draft {draft.label} built from the latest records.", "success")
    return redirect(url_for("evidence.show", bundle_id=draft.id))


@evidence_bp.post("/bundles/<int:bundle_id>/acknowledge")
@permits(Action.ACKNOWLEDGE_BUNDLE)
def acknowledge(bundle_id: int) -> ResponseReturnValue:
    """Acknowledge receipt of a shared bundle (council)."""
    session = get_session()
    bundle = services.get_bundle(session, _user(), bundle_id)
    if not AcknowledgeForm().validate_on_submit():
        return _render_bundle(bundle, 422, problem="The form expired: try again")
    services.acknowledge(session, _user(), bundle)
    flash("Receipt acknowledged. The police can see that you have it.", "success")
    return redirect(url_for("evidence.show", bundle_id=bundle.id))


@evidence_bp.post("/bundles/<int:bundle_id>/comments")
@permits(Action.COMMENT_ON_BUNDLE)
def comment(bundle_id: int) -> ResponseReturnValue:
    """Add a comment to a bundle."""
    session = get_session()
    bundle = services.get_bundle(session, _user(), bundle_id)
    form = CommentForm()
    if not form.validate_on_submit():
        return _render_bundle(bundle, 422, comment_form=form)
    try:
        services.add_comment(session, _user(), bundle, form.body.data or "")
    except Refused as error:
        return _render_bundle(bundle, error.status, problem=error.message)
    except ValidationFailed as error:
        place_errors(form, error, "body")
        return _render_bundle(bundle, 422, comment_form=form)
    flash("Comment added.", "success")
    return redirect(url_for("evidence.show", bundle_id=bundle.id) + "#comments")
