"""Letter pages: admins edit the standard letters' templates; the police issue a letter
on a premises (with an optional preview) and download the letters issued.

Views stay thin: validate the form, call one service, flash, redirect.
"""

from __future__ import annotations

from typing import cast

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from licensing.auth.matrix import Action, permits
from licensing.auth.models import User
from licensing.choices import select_choices
from licensing.db import get_session
from licensing.errors import Conflict, DomainError, ValidationFailed
from licensing.evidence.downloads import send_evidence
from licensing.letters import services
from licensing.letters.forms import ChooseLetterForm, IssueLetterForm, TemplateForm
from licensing.letters.models import LetterTemplate
from licensing.premises.models import Premises
from licensing.premises.services import get_premises
from licensing.templating import place_errors

letters_bp = Blueprint("letters", __name__)


def _user() -> User:
    return cast(User, current_user)


# ---- templates (admin) -------------------------------------------------------------------


@letters_bp.get("/letter-templates")
@permits(Action.MANAGE_LETTER_TEMPLATES)
def list_templates() -> ResponseReturnValue:
    """The standard letters, each with its current version."""
    return render_template(
        "letters/templates.html", templates=services.list_templates(get_session())
    )


def _render_editor(
    template: LetterTemplate,
    form: TemplateForm | None = None,
    status: int = 200,
    problem: str | None = None,
) -> ResponseReturnValue:
    session = get_session()
    current = services.current_wording(session, template)
    if form is None:
        form = TemplateForm(formdata=None)
        form.version.data = str(template.lock_version)
        form.subject.data = current.subject
        form.body.data = current.body
    return render_template(
        "letters/template_edit.html",
        template=template,
        current=current,
        versions=services.template_versions(session, template),
        placeholders=services.placeholders_for(template.key),
        form=form,
        problem=problem,
    ), status


@letters_bp.route("/letter-templates/<int:template_id>", methods=["GET", "POST"])
@permits(Action.MANAGE_LETTER_TEMPLATES)
def edit_template(template_id: int) -> ResponseReturnValue:
    """Change a standard letter's wording: saved as a new version once it checks out."""
    session = get_session()
    template = services.get_template(session, template_id)
    if request.method == "GET":
        return _render_editor(template)
    form = TemplateForm()
    if not form.validate_on_submit():
        return _render_editor(template, form, 422)
    try:
        version = services.save_template(
            session,
            _user(),
            template,
            int(form.version.data or 0),
            form.subject.data or "",
            form.body.data or "",
        )
    except ValidationFailed as error:
        session.rollback()
        place_errors(form, error, "body")
        return _render_editor(template, form, 422)
    except Conflict as error:
        session.rollback()
        session.refresh(template)
        # Their text stays in the box; the version they must now build on goes with it.
        form.version.data = str(template.lock_version)
        return _render_editor(template, form, 409, error.message)
    flash(f"{template.title}: saved as version {version.version}.", "success")
    return redirect(url_for("letters.edit_template", template_id=template.id))


# ---- issuing (police) --------------------------------------------------------------------


def _choice_form(templates: list[LetterTemplate]) -> ChooseLetterForm:
    form = ChooseLetterForm(request.args)
    form.template.choices = select_choices([(t.key, t.title) for t in templates])
    return form


def _meeting(form: IssueLetterForm) -> services.MeetingDetails | None:
    if form.meeting_date.data is None:
        return None
    return services.MeetingDetails(
        form.meeting_date.data, form.meeting_time.data or "", form.meeting_place.data or ""
    )


def _render_issue(
    premises: Premises,
    template: LetterTemplate,
    form: IssueLetterForm,
    status: int = 200,
    problem: str | None = None,
    preview: services.FilledLetter | None = None,
) -> ResponseReturnValue:
    return render_template(
        "letters/issue.html",
        premises=premises,
        template=template,
        form=form,
        needs_meeting=services.needs_meeting(template.key),
        problem=problem,
        preview=preview,
    ), status


@letters_bp.route("/premises/<int:premises_id>/letters/new", methods=["GET", "POST"])
@permits(Action.ISSUE_LETTER)
def issue(premises_id: int) -> ResponseReturnValue:
    """Issue a standard letter: choose it (`?template=`), fill in what it needs, preview
    it if wished, and issue it as a PDF filed on the premises."""
    session = get_session()
    premises = get_premises(session, _user(), premises_id)
    templates = services.list_templates(session)
    chosen = {t.key: t for t in templates}.get(request.args.get("template", ""))
    if chosen is None:
        choice = _choice_form(templates)
        status = 200
        if "template" in request.args or request.method == "POST":
            choice.template.errors = ["Choose one of the letters listed"]
            status = 422
        return render_template(
            "letters/choose.html", premises=premises, form=choice, templates=templates
        ), status
    form = IssueLetterForm()
    if services.needs_meeting(chosen.key):
        form.require_meeting()
    if request.method == "GET":
        form.template_version.data = str(chosen.current_version)
        return _render_issue(premises, chosen, form)
    if not form.validate_on_submit():
        return _render_issue(premises, chosen, form, 422)
    try:
        if form.preview.data:
            filled = services.preview_letter(session, _user(), premises, chosen, _meeting(form))
            # The preview shows the wording as it is now: issuing checks it is unchanged.
            form.template_version.data = str(chosen.current_version)
            return _render_issue(premises, chosen, form, preview=filled)
        letter = services.issue_letter(
            session,
            _user(),
            premises,
            chosen,
            int(form.template_version.data or 0),
            _meeting(form),
        )
    except ValidationFailed as error:
        session.rollback()
        place_errors(form, error, "meeting_date")
        return _render_issue(premises, chosen, form, 422)
    except Conflict as error:
        session.rollback()
        session.refresh(chosen)
        form.template_version.data = str(chosen.current_version)
        filled = services.preview_letter(session, _user(), premises, chosen, _meeting(form))
        return _render_issue(premises, chosen, form, 409, error.message, preview=filled)
    except DomainError as error:
        session.rollback()
        if error.status in (403, 404):
            raise
        return _render_issue(premises, chosen, form, error.status, error.message)
    flash(f"{letter.title} issued and filed on this premises.", "success")
    return redirect(url_for("premises.show", premises_id=premises.id, _anchor="letters"))


@letters_bp.get("/premises/<int:premises_id>/letters/<int:letter_id>")
@permits(Action.VIEW_LETTERS)
def download(premises_id: int, letter_id: int) -> ResponseReturnValue:
    """An issued letter's PDF, checked against the hash recorded when it was issued."""
    letter = services.get_letter(get_session(), _user(), premises_id, letter_id)
    return send_evidence(letter.sha256, "application/pdf", letter.file_name)
