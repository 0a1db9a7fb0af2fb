"""Standard letters: admin-edited templates (every version kept) and issuing a letter to
a premises as a PDF filed in the evidence store, with an event on the premises' chain.

Template text is typed by admins, so it is untrusted: it is rendered in Jinja's immutable
sandbox, narrowed further. It sees only plain dicts, lists and strings built here (never
ORM objects) and may read only the keys of those dicts (no attributes, nothing starting
with `_`); it has no globals (`range` and friends), no macros, `set`, `with` or includes,
at most two loops inside one another, a short list of filters that cannot lengthen text,
and no `**` or `*` on anything but small numbers: nothing an admin types can reach the
server's objects or make a letter big enough to take the server down. A template is
checked when saved by filling it in with sample values: a syntax error, an unknown
placeholder or a forbidden construct is a form error and nothing is saved.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any

from flask import current_app
from jinja2 import StrictUndefined, TemplateSyntaxError, meta, nodes
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.runtime import LoopContext
from jinja2.sandbox import ImmutableSandboxedEnvironment
from sqlalchemy import Exists, bindparam, select
from sqlalchemy.orm import Session, lazyload

from licensing.actionplans.models import ITEM_WITHDRAWN
from licensing.actionplans.services import current_plan
from licensing.audit.services import append_event
from licensing.auth.matrix import Action, allowed, require
from licensing.auth.models import Role, User
from licensing.db import conflict_on, exists_of, utcnow
from licensing.errors import Conflict, NotFound, Refused, ValidationFailed
from licensing.evidence import store
from licensing.letters.defaults import (
    ACTION_PLAN_CONFIRMATION,
    DEFAULT_TEMPLATES,
    MEETING_INVITATION,
)
from licensing.letters.models import Letter, LetterTemplate, LetterTemplateVersion
from licensing.letters.pdf import LetterDocument, render_letter
from licensing.premises.models import Premises
from licensing.premises.services import get_premises
from licensing.timeutil import london_today

SUBJECT_MAX = 300
BODY_MAX = 20_000
# A filled-in letter longer than this is a template gone wrong (a loop in a loop), not
# a letter anyone would send.
RENDERED_MAX = 60_000
MEETING_PLACE_MAX = 300
DEFAULT_LETTERHEAD = ("Police Licensing Unit",)
ROLE_TITLES = {
    Role.OFFICER: "Licensing Officer",
    Role.SUPERVISOR: "Licensing Sergeant",
    Role.ADMIN: "Licensing Unit",
    Role.COUNCIL: "Licensing Officer",
}
TEMPLATE_CONFLICT = (
    "Your changes were not saved: someone else saved a new version of this template since "
    "you opened it. Their wording is shown below; your text is still in the box."
)
ISSUE_CONFLICT = (
    "The letter was not issued: an administrator changed this template since you opened "
    "the page. Check the wording below and issue it again."
)


# ---- placeholders ----------------------------------------------------------------------


@dataclass(frozen=True)
class Placeholder:
    """A name a template may use, and what it stands for (shown beside the editor)."""

    name: str
    meaning: str


COMMON_PLACEHOLDERS = (
    Placeholder("premises.name", "the premises' name"),
    Placeholder("premises.licence_number", "the premises licence number (our reference)"),
    Placeholder("premises.address", "the premises' address and postcode, on one line"),
    Placeholder("premises.postcode", "the postcode"),
    Placeholder("premises.licence_holder", "the premises licence holder"),
    Placeholder("premises.dps", "the designated premises supervisor"),
    Placeholder("premises.authority", "the licensing authority that granted the licence"),
    Placeholder("today", "the date of the letter, such as 5 March 2027"),
    Placeholder("officer.name", "the officer issuing the letter"),
    Placeholder("officer.title", "their title, such as Licensing Officer"),
)
EXTRA_PLACEHOLDERS: dict[str, tuple[Placeholder, ...]] = {
    MEETING_INVITATION: (
        Placeholder("meeting.date", "the meeting's date, such as Tuesday 9 March 2027"),
        Placeholder("meeting.time", "its time, such as 10:30"),
        Placeholder("meeting.place", "where it is held"),
    ),
    ACTION_PLAN_CONFIRMATION: (
        Placeholder("action_plan.agreed_on", "the date the current action plan was agreed"),
        Placeholder("action_plan.review_on", "the date it will be reviewed"),
        Placeholder("action_plan.agreed_with", "who it was agreed with"),
        Placeholder(
            "action_plan.items",
            "its items (withdrawn ones left out), to list with "
            "{% for item in action_plan.items %} … {% endfor %}",
        ),
        Placeholder("item.description", "inside that loop: what was agreed"),
        Placeholder("item.owner", "whose job it is"),
        Placeholder("item.due_on", "the date it is due"),
        Placeholder("item.status", "its status: Agreed, Done or Not done"),
    ),
}


def placeholders_for(key: str) -> tuple[Placeholder, ...]:
    """Every placeholder a template of this kind may use."""
    return COMMON_PLACEHOLDERS + EXTRA_PLACEHOLDERS.get(key, ())


def needs_meeting(key: str) -> bool:
    """Does a letter of this kind need the meeting's date, time and place?"""
    return key == MEETING_INVITATION


def long_date(day: date) -> str:
    """'5 March 2027', as a letter is dated."""
    return f"{day.day} {day:%B %Y}"


# ---- the sandbox -----------------------------------------------------------------------


# What a template may ask of a for loop (`{{ loop.index }}. {{ item.description }}`).
LOOP_ATTRIBUTES = frozenset(
    {"index", "index0", "revindex", "revindex0", "first", "last", "length", "previtem", "nextitem"}
)


class LetterEnvironment(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox narrowed further for letter templates: `a.b` and `a['b']`
    read only keys of the dicts passed in (and positions of lists), no globals, and no
    `*` or `**` (repeating a string a billion times would take the server down)."""

    intercepted_binops = frozenset({"*", "**"})

    def __init__(self) -> None:
        # Autoescaping is for HTML; the PDF renderer escapes the text for its own markup.
        super().__init__(  # noqa: S701
            undefined=StrictUndefined,
            autoescape=False,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )
        self.globals.clear()

    def getattr(self, obj: Any, attribute: str) -> Any:
        """`obj.attribute`: a key of a dict we passed in, nothing else."""
        return self.getitem(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        """`obj[argument]`: a key of a dict, or a position in a list; else undefined."""
        if isinstance(argument, str) and argument.startswith("_"):
            return self.unsafe_undefined(obj, argument)
        if isinstance(obj, Mapping) and isinstance(argument, str) and argument in obj:
            return obj[argument]
        if isinstance(obj, LoopContext) and argument in LOOP_ATTRIBUTES:
            return getattr(obj, argument)
        if (
            isinstance(obj, list | tuple)
            and isinstance(argument, int)
            and not isinstance(argument, bool)
        ):
            try:
                return obj[argument]
            except IndexError:
                pass
        return self.undefined(obj=obj, name=argument)

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
        """Refuse `**`, and `*` unless both sides are small numbers."""
        if operator_name == "**":
            raise SecurityError("powers (**) are not allowed in a letter")
        numbers = all(
            isinstance(side, int | float) and not isinstance(side, bool) and abs(side) < 10**6
            for side in (left, right)
        )
        if not numbers:
            raise SecurityError("* may only multiply numbers in a letter")
        return operator.mul(left, right)


# Filters that cannot make their output much longer than their input (`center`,
# `indent`, `format`, `wordwrap`, `join` and `replace` can, nested or with big numbers).
ALLOWED_FILTERS = frozenset(
    {
        "capitalize",
        "count",
        "d",
        "default",
        "first",
        "last",
        "length",
        "lower",
        "sort",
        "title",
        "trim",
        "upper",
        "wordcount",
    }
)
# Loops inside loops multiply: a plan's items twice over is the most a letter needs.
MAX_LOOP_DEPTH = 2
# Macros can call themselves (twice over: exponential), and `set x = x ~ x` repeated
# doubles a text each time; the rest needs a template loader. A letter needs none of it.
FORBIDDEN_TAGS = {
    nodes.Assign: "set",
    nodes.AssignBlock: "set",
    nodes.With: "with",
    nodes.Macro: "macros",
    nodes.CallBlock: "call blocks",
    nodes.Include: "include",
    nodes.Import: "import",
    nodes.FromImport: "import",
    nodes.Extends: "extends",
    nodes.Block: "blocks",
}

_ENVIRONMENT: LetterEnvironment | None = None


def environment() -> LetterEnvironment:
    """The one letter sandbox (stateless once built, so shared)."""
    global _ENVIRONMENT
    if _ENVIRONMENT is None:
        _ENVIRONMENT = LetterEnvironment()
    return _ENVIRONMENT


class TemplateProblem(Exception):
    """A template that cannot be used: the message says why, in the editor's words."""


def _check_constructs(node: nodes.Node, depth: int = 0) -> None:
    """Refuse what a letter never needs and could use to take the server down."""
    for kind, words in FORBIDDEN_TAGS.items():
        if isinstance(node, kind):
            raise TemplateProblem(f"Not allowed in a letter template: {words}")
    if isinstance(node, nodes.Filter) and node.name not in ALLOWED_FILTERS:
        allowed = ", ".join(sorted(ALLOWED_FILTERS))
        raise TemplateProblem(
            f"Not allowed in a letter template: the filter {node.name} (use one of {allowed})"
        )
    if isinstance(node, nodes.For):
        if node.recursive:
            raise TemplateProblem("Not allowed in a letter template: recursive loops")
        depth += 1
        if depth > MAX_LOOP_DEPTH:
            raise TemplateProblem(
                f"Not allowed in a letter template: more than {MAX_LOOP_DEPTH} loops inside "
                "one another"
            )
    for child in node.iter_child_nodes():
        _check_constructs(child, depth)


def _top_level_names(key: str) -> set[str]:
    return {p.name.split(".")[0] for p in placeholders_for(key)} - {"item"}


def fill_in(key: str, source: str, context: Mapping[str, Any]) -> str:
    """Render one template text with `context` in the sandbox, or TemplateProblem."""
    env = environment()
    try:
        parsed = env.parse(source)
    except TemplateSyntaxError as error:
        raise TemplateProblem(
            f"The template cannot be read (line {error.lineno}): {error.message}"
        ) from None
    _check_constructs(parsed)
    unknown = sorted(meta.find_undeclared_variables(parsed) - _top_level_names(key))
    if unknown:
        names = ", ".join("{{ " + name + " }}" for name in unknown)
        raise TemplateProblem(
            f"Not a placeholder of this letter: {names}. Use only the placeholders listed."
        )
    try:
        text = env.from_string(parsed).render(dict(context))
    except SecurityError as error:
        raise TemplateProblem(f"Not allowed in a letter template: {error}") from None
    except UndefinedError as error:
        raise TemplateProblem(
            f"Not a placeholder of this letter ({error.message}). Use only the placeholders listed."
        ) from None
    except RecursionError:
        raise TemplateProblem("The template calls itself without end") from None
    except Exception as error:  # noqa: BLE001 - any other failure of admin-typed text
        raise TemplateProblem(f"The template cannot be filled in: {error}") from None
    if len(text) > RENDERED_MAX:
        raise TemplateProblem(
            f"The letter would be {len(text):,} characters long; the most is {RENDERED_MAX:,}"
        )
    return text


def sample_context(key: str) -> dict[str, Any]:
    """Made-up values for every placeholder of a kind: what a template is checked with."""
    context: dict[str, Any] = {
        "premises": {
            "name": "The Crown",
            "licence_number": "PL/2027/0001",
            "address": "1 High Street, Liverpool, L1 1AA",
            "postcode": "L1 1AA",
            "licence_holder": "Crown Inns Ltd",
            "dps": "Alex Smith",
            "authority": "Liverpool City Council",
        },
        "today": "5 March 2027",
        "officer": {"name": "PC Jane Doe", "title": "Licensing Officer"},
    }
    if key == MEETING_INVITATION:
        context["meeting"] = {
            "date": "Tuesday 9 March 2027",
            "time": "10:30",
            "place": "Licensing Unit, Police Headquarters",
        }
    if key == ACTION_PLAN_CONFIRMATION:
        items = [
            {
                "description": "Two SIA door staff from 21:00 on Fridays and Saturdays",
                "owner": "Licence holder",
                "due_on": "12 March 2027",
                "status": "Agreed",
            },
            {
                "description": "CCTV recordings kept for 31 days",
                "owner": "DPS",
                "due_on": "19 March 2027",
                "status": "Agreed",
            },
        ]
        context["action_plan"] = {
            "agreed_on": "5 March 2027",
            "review_on": "28 May 2027",
            "agreed_with": "Alex Smith (DPS)",
            "items": items,
        }
    return context


def check_wording(key: str, subject: str, body: str) -> None:
    """ValidationFailed (by field) unless the subject and body are usable templates."""
    errors: dict[str, str] = {}
    sample = sample_context(key)
    if not subject.strip():
        errors["subject"] = "Enter the subject line"
    elif len(subject) > SUBJECT_MAX:
        errors["subject"] = f"The subject line must be {SUBJECT_MAX} characters or fewer"
    elif "\n" in subject.strip():
        errors["subject"] = "The subject line must be one line"
    else:
        try:
            fill_in(key, subject, sample)
        except TemplateProblem as problem:
            errors["subject"] = str(problem)
    if not body.strip():
        errors["body"] = "Enter the letter's text"
    elif len(body) > BODY_MAX:
        errors["body"] = f"The letter's text must be {BODY_MAX:,} characters or fewer"
    else:
        try:
            fill_in(key, body, sample)
        except TemplateProblem as problem:
            errors["body"] = str(problem)
    if errors:
        raise ValidationFailed("The template was not saved", errors)


# ---- templates ------------------------------------------------------------------------


def list_templates(session: Session) -> list[LetterTemplate]:
    """The standard letters, in the order of the escalation (warning first)."""
    order = {d.key: n for n, d in enumerate(DEFAULT_TEMPLATES)}
    templates = list(session.scalars(select(LetterTemplate)))
    return sorted(templates, key=lambda t: (order.get(t.key, len(order)), t.id))


def get_template(session: Session, template_id: int) -> LetterTemplate:
    """One standard letter by id, or NotFound."""
    template = session.get(LetterTemplate, template_id)
    if template is None:
        raise NotFound("No such letter template")
    return template


def template_by_key(session: Session, key: str) -> LetterTemplate:
    """One standard letter by its key, or NotFound."""
    template = session.scalar(select(LetterTemplate).where(LetterTemplate.key == key))
    if template is None:
        raise NotFound("No such letter template")
    return template


def current_wording(session: Session, template: LetterTemplate) -> LetterTemplateVersion:
    """The version new letters are made from."""
    version = session.scalar(
        select(LetterTemplateVersion).where(
            LetterTemplateVersion.template_id == template.id,
            LetterTemplateVersion.version == template.current_version,
        )
    )
    if version is None:  # the two are written in one transaction; this is corruption
        raise NotFound("The template's current wording is missing")
    return version


def template_versions(session: Session, template: LetterTemplate) -> list[LetterTemplateVersion]:
    """Every saved version of a template, newest first."""
    return list(
        session.scalars(
            select(LetterTemplateVersion)
            .where(LetterTemplateVersion.template_id == template.id)
            .order_by(LetterTemplateVersion.version.desc())
        )
    )


@contextmanager
def _writing(session: Session, conflict_message: str) -> Iterator[None]:
    """A version clash (the ORM's lock or the unique version number) is a Conflict; any
    failure rolls back, leaving nothing half-saved."""
    with conflict_on(session, conflict_message):
        yield


def save_template(
    session: Session,
    actor: User,
    template: LetterTemplate,
    seen_lock_version: int,
    subject: str,
    body: str,
) -> LetterTemplateVersion:
    """Save new wording as the template's next version (the old ones are kept), after
    checking it; Conflict if someone saved a version since the editor opened it."""
    require(actor, Action.MANAGE_LETTER_TEMPLATES)
    subject = subject.strip()
    body = body.replace("\r\n", "\n").strip()
    if seen_lock_version != template.lock_version:
        raise Conflict(TEMPLATE_CONFLICT)
    check_wording(template.key, subject, body)
    current = current_wording(session, template)
    if current.subject == subject and current.body == body:
        raise ValidationFailed(
            "Nothing changed",
            {"body": f"This is the wording of version {current.version}: nothing to save"},
        )
    with _writing(session, TEMPLATE_CONFLICT):
        number = template.current_version + 1
        version = LetterTemplateVersion(
            template_id=template.id,
            version=number,
            subject=subject,
            body=body,
            created_by_id=actor.id,
        )
        session.add(version)
        template.current_version = number
        template.updated_at = utcnow()
        session.flush()
        append_event(
            session,
            event="letter_template_changed",
            actor_id=actor.id,
            payload={"template": template.key, "version": number},
        )
        session.commit()
    return version


# ---- issuing --------------------------------------------------------------------------


@dataclass(frozen=True)
class MeetingDetails:
    """When and where the meeting an invitation invites to is held."""

    day: date
    time: str
    place: str


def _one_line(*parts: str) -> str:
    pieces = [", ".join(s.strip() for s in p.splitlines() if s.strip()) for p in parts]
    return ", ".join(p for p in pieces if p)


def _current_plan(session: Session, premises: Premises) -> dict[str, Any]:
    """The premises' open action plan as plain values, or Refused when there is none."""
    plan = current_plan(session, premises.id, open_only=True)
    if plan is None:
        raise Refused(
            "There is no open action plan for this premises: agree one with the licence "
            "holder before sending its confirmation letter."
        )
    items = [item for item in plan.items if item.status != ITEM_WITHDRAWN]
    if not items:
        raise Refused(
            "The action plan has no items to confirm: add what was agreed before sending "
            "its confirmation letter."
        )
    return {
        "agreed_on": long_date(plan.agreed_on),
        "review_on": long_date(plan.review_on),
        "agreed_with": plan.agreed_with or "",
        "items": [
            {
                "description": item.description,
                "owner": item.owner,
                "due_on": long_date(item.due_on),
                "status": item.status_label,
            }
            for item in items
        ],
    }


def letter_context(
    session: Session,
    actor: User,
    premises: Premises,
    key: str,
    meeting: MeetingDetails | None = None,
) -> dict[str, Any]:
    """What a letter's placeholders stand for, as plain dicts and strings (the sandbox
    never sees a database object)."""
    context: dict[str, Any] = {
        "premises": {
            "name": premises.name,
            "licence_number": premises.licence_number,
            "address": _one_line(premises.address, premises.postcode),
            "postcode": premises.postcode,
            # A blank name would read "Dear  and ,": say who is meant instead.
            "licence_holder": premises.licence_holder.strip() or "the Premises Licence Holder",
            "dps": premises.dps.strip() or "the Designated Premises Supervisor",
            "authority": premises.authority.name,
        },
        "today": long_date(london_today()),
        "officer": {"name": actor.name, "title": ROLE_TITLES.get(Role(actor.role), "")},
    }
    if needs_meeting(key):
        errors: dict[str, str] = {}
        if meeting is None:
            errors["meeting_date"] = "Enter the date of the meeting"
        elif meeting.day < london_today():
            errors["meeting_date"] = "The meeting must be today or later"
        if meeting is not None and not meeting.place.strip():
            errors["meeting_place"] = "Enter where the meeting is held"
        elif meeting is not None and len(meeting.place) > MEETING_PLACE_MAX:
            errors["meeting_place"] = f"Use {MEETING_PLACE_MAX} characters or fewer"
        if errors:
            raise ValidationFailed("Give the meeting's details", errors)
        assert meeting is not None
        context["meeting"] = {
            "date": f"{meeting.day:%A} {long_date(meeting.day)}",
            "time": meeting.time.strip(),
            "place": _one_line(meeting.place),
        }
    if key == ACTION_PLAN_CONFIRMATION:
        context["action_plan"] = _current_plan(session, premises)
    return context


@dataclass(frozen=True)
class FilledLetter:
    """A letter's subject and text, filled in and ready to lay out."""

    subject: str
    body: str


def fill_letter(
    key: str, wording: LetterTemplateVersion, context: Mapping[str, Any]
) -> FilledLetter:
    """The subject and body of one letter; Refused if the saved template cannot be filled
    in with this premises' values."""
    try:
        subject = " ".join(fill_in(key, wording.subject, context).split())
        body = fill_in(key, wording.body, context).strip()
    except TemplateProblem as problem:
        raise Refused(
            f"The letter cannot be made from version {wording.version} of its template: "
            f"{problem}. Ask an administrator to correct the template."
        ) from None
    return FilledLetter(subject, body)


def _letterhead() -> tuple[str, ...]:
    configured = current_app.config.get("LETTERHEAD")
    if isinstance(configured, str):
        return tuple(line for line in configured.splitlines() if line.strip())
    if isinstance(configured, list | tuple) and configured:
        return tuple(str(line) for line in configured)
    return DEFAULT_LETTERHEAD


def letter_document(
    premises: Premises, actor: User, filled: FilledLetter, context: Mapping[str, Any]
) -> LetterDocument:
    """Everything the PDF shows, as plain text."""
    holder = premises.licence_holder.strip()
    dps = premises.dps.strip()
    addressee = [
        f"The Premises Licence Holder: {holder}" if holder else "The Premises Licence Holder",
        f"The Designated Premises Supervisor: {dps}"
        if dps
        else "The Designated Premises Supervisor",
        premises.name,
        *[line.strip() for line in premises.address.splitlines() if line.strip()],
    ]
    if premises.postcode.strip() and premises.postcode.strip() not in premises.address:
        addressee.append(premises.postcode.strip())
    letterhead = _letterhead()
    return LetterDocument(
        letterhead=letterhead,
        date=str(context["today"]),
        addressee=tuple(addressee),
        reference=premises.licence_number,
        authority=premises.authority.name,
        subject=filled.subject,
        body=filled.body,
        signatory=actor.name,
        signatory_title=str(context["officer"]["title"]),
        team=letterhead[0],
    )


def preview_letter(
    session: Session,
    actor: User,
    premises: Premises,
    template: LetterTemplate,
    meeting: MeetingDetails | None = None,
) -> FilledLetter:
    """The letter as it would be issued now, without issuing it."""
    require(actor, Action.ISSUE_LETTER, premises.authority_id)
    context = letter_context(session, actor, premises, template.key, meeting)
    return fill_letter(template.key, current_wording(session, template), context)


def issue_letter(
    session: Session,
    actor: User,
    premises: Premises,
    template: LetterTemplate,
    seen_version: int,
    meeting: MeetingDetails | None = None,
) -> Letter:
    """Make the letter as a PDF, file it in the evidence store under its SHA-256, and
    record it and a `letter_issued` event on the premises' chain in one transaction.
    Conflict if the template changed since the officer saw it."""
    require(actor, Action.ISSUE_LETTER, premises.authority_id)
    if seen_version != template.current_version:
        raise Conflict(ISSUE_CONFLICT)
    wording = current_wording(session, template)
    context = letter_context(session, actor, premises, template.key, meeting)
    filled = fill_letter(template.key, wording, context)
    pdf = render_letter(letter_document(premises, actor, filled, context))
    try:
        digest = store.put(pdf)
    except OSError as error:
        raise store.StorageFailed(
            "The letter could not be filed: the evidence store is full or cannot be "
            "written to. Nothing was issued; try again later."
        ) from error
    with _writing(session, ISSUE_CONFLICT):
        letter = Letter(
            premises_id=premises.id,
            template_key=template.key,
            template_version_id=wording.id,
            template_version=wording.version,
            title=template.title,
            subject=filled.subject,
            issued_by_id=actor.id,
            issued_at=utcnow(),
            sha256=digest,
            size=len(pdf),
        )
        session.add(letter)
        session.flush()
        # The chain records what was issued, never the names in it (they are personal
        # data on the premises record already, and the chain cannot be erased).
        append_event(
            session,
            event="letter_issued",
            actor_id=actor.id,
            premises_id=premises.id,
            payload={
                "letter_id": letter.id,
                "template": template.key,
                "template_version": wording.version,
                "sha256": digest,
                "size": len(pdf),
            },
        )
        session.commit()
    return letter


# ---- reading --------------------------------------------------------------------------


def premises_letters(session: Session, premises_id: int) -> list[Letter]:
    """The letters issued to a premises, newest first."""
    return list(session.scalars(_PREMISES_LETTERS, {"premises_id": premises_id}))


# Built once (see licensing.db): every premises page reads it.
_PREMISES_LETTERS = (
    select(Letter)
    .where(Letter.premises_id == bindparam("premises_id"))
    # One premises: its row comes from the session (or one load), not a join per row.
    .options(lazyload(Letter.premises))
    .order_by(Letter.issued_at.desc(), Letter.id.desc())
)
# Whether it would find any: the premises page asks first (licensing.premises.sections).
ANY_LETTER: Exists = exists_of(_PREMISES_LETTERS)


def letters_on_premises_page(
    session: Session, user: User, premises: Premises, *, any_letter: bool = True
) -> dict[str, Any] | None:
    """The premises page's letters section: None for a user who may not see letters,
    else the letters issued and whether the user may issue one. With `any_letter` False
    (the page has asked `ANY_LETTER`), no letters are read."""
    if not allowed(user, Action.VIEW_LETTERS, premises.authority_id):
        return None
    return {
        "letters": premises_letters(session, premises.id) if any_letter else [],
        "may_issue": allowed(user, Action.ISSUE_LETTER, premises.authority_id),
    }


def get_letter(session: Session, user: User, premises_id: int, letter_id: int) -> Letter:
    """A letter of a premises the user may see and whose letters they may see, or
    NotFound (also for another premises' letter)."""
    require(user, Action.VIEW_LETTERS)
    premises = get_premises(session, user, premises_id)
    require(user, Action.VIEW_LETTERS, premises.authority_id)
    letter = session.get(Letter, letter_id)
    if letter is None or letter.premises_id != premises.id:
        raise NotFound("No such letter")
    return letter
