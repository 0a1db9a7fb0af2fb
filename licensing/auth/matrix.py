"""The authorisation matrix: who may do what, in one table, for pages and API alike.

Each action is granted to roles, each grant with a scope: `any` (force-wide: the police
and the administrator) or `own authority` (a council user, bound to one licensing
authority). A role without a grant is refused: police and admin users are told so (403);
council users get 404, so they cannot learn that a page or a record exists. An object of
another licensing authority answers 404 to everyone whose grant is `own authority`.

Every endpoint declares exactly one action with `@permits(Action.X)`, which enforces the
role part and records the action on the view function (for tests/test_authorisation_matrix.py
and the README, rendered by `licensing authz matrix`). Object checks (the authority part)
go through `require`, or `permissions.can_see_premises` / `premises_visible_to` for
premises. An endpoint that declares no action is refused: deny by default.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import wraps
from typing import Any, NoReturn, TypeVar, cast

from flask import Flask, abort, current_app, g, request
from flask_login import current_user

from licensing.auth.models import Role, User
from licensing.auth.public import PUBLIC_ENDPOINTS, SECRET_BEARING_ENDPOINTS
from licensing.errors import Forbidden, NotFound

F = TypeVar("F", bound=Callable[..., Any])

# The council rule: a council user sees, read-only, their own authority's premises in
# these states, and nothing else of the register.
COUNCIL_VISIBLE_STATES = ("review", "action")


class Action(enum.StrEnum):
    """What a user does, in the licensing team's words. One per endpoint."""

    VIEW_DASHBOARD = "view_dashboard"
    VIEW_REGISTER = "view_register"
    VIEW_PREMISES = "view_premises"
    EXPORT_REGISTER = "export_register"
    ADD_PREMISES = "add_premises"
    EDIT_PREMISES = "edit_premises"
    IMPORT_REGISTER = "import_register"
    WORK_IN_BULK = "work_in_bulk"
    TRANSITION_WORKFLOW = "transition_workflow"
    SUPERVISE_WORKFLOW = "supervise_workflow"
    VIEW_INCIDENTS = "view_incidents"
    EXPORT_INCIDENTS = "export_incidents"
    VIEW_INCIDENT = "view_incident"
    VIEW_PEOPLE = "view_people"
    RECORD_INCIDENT = "record_incident"
    LOG_ASB_REPORT = "log_asb_report"
    IMPORT_INCIDENTS = "import_incidents"
    REVIEW_LINK_SUGGESTIONS = "review_link_suggestions"
    VIEW_RECOMMENDATIONS = "view_recommendations"
    DISMISS_RECOMMENDATION = "dismiss_recommendation"
    ADD_ATTACHMENT = "add_attachment"
    DOWNLOAD_ATTACHMENT = "download_attachment"
    VIEW_VISITS = "view_visits"
    SCHEDULE_VISIT = "schedule_visit"
    RECORD_VISIT = "record_visit"
    MANAGE_CALENDAR_FEED = "manage_calendar_feed"
    VIEW_CALENDAR = "view_calendar"
    VIEW_REPORTS = "view_reports"
    VIEW_BUNDLE = "view_bundle"
    BUILD_BUNDLE = "build_bundle"
    ISSUE_BUNDLE = "issue_bundle"
    SHARE_BUNDLE = "share_bundle"
    VIEW_BUNDLE_ACCESS_LOG = "view_bundle_access_log"
    ACKNOWLEDGE_BUNDLE = "acknowledge_bundle"
    COMMENT_ON_BUNDLE = "comment_on_bundle"
    CHOOSE_ALERTS = "choose_alerts"
    MANAGE_OUTBOX = "manage_outbox"
    VIEW_USERS = "view_users"
    MANAGE_USERS = "manage_users"
    MANAGE_OWN_ACCOUNT = "manage_own_account"
    READ_API_DESCRIPTION = "read_api_description"
    VIEW_ACTION_PLANS = "view_action_plans"
    MANAGE_ACTION_PLANS = "manage_action_plans"
    VIEW_MEETINGS = "view_meetings"
    MANAGE_MEETINGS = "manage_meetings"
    VIEW_LETTERS = "view_letters"
    ISSUE_LETTER = "issue_letter"
    MANAGE_LETTER_TEMPLATES = "manage_letter_templates"
    VIEW_ASSESSMENT = "view_assessment"


class Scope(enum.StrEnum):
    """How far a grant reaches."""

    ANY = "any"
    OWN_AUTHORITY = "own authority"


@dataclass(frozen=True)
class Grant:
    """One role's permission for one action. `only` says, in words, what further narrows
    it (enforced by the object checks named in the module docstring)."""

    scope: Scope
    only: str = ""


@dataclass(frozen=True)
class Entry:
    """One row of the matrix: the action, what it covers (a verb phrase, so a refusal can
    say "may not …"), and the grants by role."""

    action: Action
    covers: str
    grants: Mapping[Role, Grant] = field(default_factory=dict)


ANY = Grant(Scope.ANY)
OWN = Grant(Scope.OWN_AUTHORITY)
UNDER_REVIEW = Grant(Scope.OWN_AUTHORITY, "premises under review or in action")
SHARED_ONLY = Grant(Scope.OWN_AUTHORITY, "bundles shared with their authority, shared copy only")

POLICE: dict[Role, Grant] = {Role.OFFICER: ANY, Role.SUPERVISOR: ANY}
POLICE_AND_ADMIN: dict[Role, Grant] = {**POLICE, Role.ADMIN: ANY}
SUPERVISOR: dict[Role, Grant] = {Role.SUPERVISOR: ANY}
EVERYONE: dict[Role, Grant] = {**POLICE, Role.COUNCIL: UNDER_REVIEW, Role.ADMIN: ANY}

# The events that need a supervisor (the rest of the workflow is TRANSITION_WORKFLOW).
# tests/test_authorisation_matrix.py checks this against licensing/premises/workflow.py.
SUPERVISED_EVENTS = frozenset(
    {
        "apply_for_review",
        "apply_for_summary_review",
        "withdraw_review",
        "record_determination",
        "close_action",
        "correct_review_dates",
    }
)

_ENTRIES = (
    Entry(Action.VIEW_DASHBOARD, "see their home page (each role its own)", EVERYONE),
    Entry(Action.VIEW_REGISTER, "list and search the premises register", EVERYONE),
    Entry(
        Action.VIEW_PREMISES,
        "see a premises: its page, timeline, history, deadlines and linked incidents",
        EVERYONE,
    ),
    Entry(Action.EXPORT_REGISTER, "export the premises list as CSV", EVERYONE),
    Entry(Action.ADD_PREMISES, "add a premises to the register", POLICE),
    Entry(Action.EDIT_PREMISES, "edit a premises' details", POLICE),
    Entry(
        Action.IMPORT_REGISTER,
        "import a council register and see each import's rejected rows",
        POLICE_AND_ADMIN,
    ),
    Entry(
        Action.WORK_IN_BULK,
        "tick premises in the register to export them or book a visit at each",
        POLICE,
    ),
    Entry(
        Action.TRANSITION_WORKFLOW,
        "take a workflow event (warn, stand down, record a hearing, an appeal …)",
        POLICE,
    ),
    Entry(
        Action.SUPERVISE_WORKFLOW,
        "take a supervisor's event (apply for, withdraw or correct a review, record a "
        "determination, close an action) or warn without recent evidence",
        SUPERVISOR,
    ),
    Entry(Action.VIEW_INCIDENTS, "list incidents", POLICE_AND_ADMIN),
    Entry(Action.EXPORT_INCIDENTS, "export the incident list as CSV", POLICE_AND_ADMIN),
    Entry(
        Action.VIEW_INCIDENT,
        "see an incident and the premises it is linked to",
        {
            **POLICE_AND_ADMIN,
            Role.COUNCIL: Grant(
                Scope.OWN_AUTHORITY,
                "their authority's ASB reports and incidents at premises they may see",
            ),
        },
    ),
    Entry(
        Action.VIEW_PEOPLE,
        "see the victims, witnesses, reporters and suspects held apart from an incident",
        POLICE,
    ),
    Entry(
        Action.RECORD_INCIDENT,
        "record an incident (by hand, or sent by a police system)",
        POLICE,
    ),
    Entry(
        Action.LOG_ASB_REPORT,
        "log an ASB report against a premises",
        {Role.COUNCIL: Grant(Scope.OWN_AUTHORITY, "any premises of their authority")},
    ),
    Entry(
        Action.IMPORT_INCIDENTS,
        "import incidents and see each import's rejected rows",
        POLICE,
    ),
    Entry(
        Action.REVIEW_LINK_SUGGESTIONS,
        "confirm or reject suggested links between incidents and premises",
        POLICE,
    ),
    Entry(Action.VIEW_RECOMMENDATIONS, "list open recommendations", POLICE_AND_ADMIN),
    Entry(Action.DISMISS_RECOMMENDATION, "dismiss a recommendation", POLICE),
    Entry(
        Action.ADD_ATTACHMENT,
        "attach a document or photo to an incident or visit, or its redacted copy",
        POLICE,
    ),
    Entry(Action.DOWNLOAD_ATTACHMENT, "download an attachment", POLICE),
    Entry(Action.VIEW_VISITS, "list visits and see a visit", POLICE),
    Entry(Action.SCHEDULE_VISIT, "book or cancel a visit", POLICE),
    Entry(Action.RECORD_VISIT, "record a visit's outcome and findings", POLICE),
    Entry(
        Action.MANAGE_CALENDAR_FEED,
        "make or revoke their own calendar address",
        POLICE,
    ),
    Entry(
        Action.VIEW_CALENDAR,
        "see the team calendar of deadlines (and visits, for the police)",
        {**POLICE, Role.COUNCIL: UNDER_REVIEW},
    ),
    Entry(Action.VIEW_REPORTS, "see the map and the charts", EVERYONE),
    Entry(
        Action.VIEW_BUNDLE,
        "list and open evidence bundles (index, PDF, ZIP)",
        {**POLICE, Role.COUNCIL: SHARED_ONLY},
    ),
    Entry(
        Action.BUILD_BUNDLE,
        "build a bundle, change a draft (items, statement, rebuild) or start a new version",
        POLICE,
    ),
    Entry(Action.ISSUE_BUNDLE, "issue a bundle", SUPERVISOR),
    Entry(Action.SHARE_BUNDLE, "share a bundle with the licensing authority", SUPERVISOR),
    Entry(Action.VIEW_BUNDLE_ACCESS_LOG, "see who viewed and downloaded a bundle", SUPERVISOR),
    Entry(
        Action.ACKNOWLEDGE_BUNDLE,
        "acknowledge receipt of a bundle",
        {Role.COUNCIL: SHARED_ONLY},
    ),
    Entry(
        Action.COMMENT_ON_BUNDLE,
        "comment on a shared bundle",
        {**POLICE, Role.COUNCIL: SHARED_ONLY},
    ),
    Entry(Action.CHOOSE_ALERTS, "choose which alert emails they get", POLICE),
    Entry(
        Action.MANAGE_OUTBOX,
        "see emails that failed for good and send them again",
        {Role.ADMIN: ANY},
    ),
    Entry(
        Action.VIEW_USERS,
        "see the users and each account's events",
        {Role.SUPERVISOR: ANY, Role.ADMIN: ANY},
    ),
    Entry(
        Action.MANAGE_USERS,
        "create, disable, unlock and change the role of users",
        {Role.ADMIN: ANY},
    ),
    Entry(
        Action.MANAGE_OWN_ACCOUNT,
        "sign out and look after their own account",
        {**POLICE, Role.COUNCIL: OWN, Role.ADMIN: ANY},
    ),
    Entry(
        Action.READ_API_DESCRIPTION,
        "read the API's OpenAPI description",
        {**POLICE, Role.COUNCIL: OWN, Role.ADMIN: ANY},
    ),
    Entry(Action.VIEW_ACTION_PLANS, "see a premises' action plans and their items", POLICE),
    Entry(
        Action.MANAGE_ACTION_PLANS,
        "agree an action plan with a licence holder and update its items and review",
        POLICE,
    ),
    Entry(Action.VIEW_MEETINGS, "see partnership meetings, their minutes and actions", POLICE),
    Entry(Action.MANAGE_MEETINGS, "record a partnership meeting and its actions", POLICE),
    Entry(Action.VIEW_LETTERS, "see and download the letters issued to a premises", POLICE),
    Entry(Action.ISSUE_LETTER, "issue a standard letter to a premises", POLICE),
    Entry(
        Action.MANAGE_LETTER_TEMPLATES,
        "edit the standard letters' templates",
        {Role.ADMIN: ANY},
    ),
    Entry(
        Action.VIEW_ASSESSMENT,
        "see whether interventions worked: before/after figures and the force report",
        POLICE_AND_ADMIN,
    ),
)

MATRIX: dict[Action, Entry] = {entry.action: entry for entry in _ENTRIES}
"""The one table: action → the roles granted it, each with its scope."""


# ---- asking the matrix -----------------------------------------------------------------


def _role_of(user: User) -> Role | None:
    try:
        return Role(user.role)
    except ValueError:
        return None


def grant_for(user: User, action: Action) -> Grant | None:
    """The user's grant for `action`, or None when their role has none."""
    role = _role_of(user)
    return MATRIX[action].grants.get(role) if role is not None else None


def allowed(user: User, action: Action, authority_id: int | None = None) -> bool:
    """May `user` do `action`? With `authority_id`, on an object of that licensing
    authority: an `own authority` grant reaches only the user's own."""
    grant = grant_for(user, action)
    if grant is None:
        return False
    if authority_id is None or grant.scope is Scope.ANY:
        return True
    return user.authority_id is not None and user.authority_id == authority_id


def roles_allowed(action: Action) -> frozenset[Role]:
    """The roles granted `action` (at any scope)."""
    return frozenset(MATRIX[action].grants)


def refusal_status(user: User) -> int:
    """404 for council users (they must not learn what exists), 403 for everyone else."""
    return 404 if user.role == Role.COUNCIL else 403


def event_action(event: str) -> Action:
    """The action a workflow event needs: SUPERVISE_WORKFLOW for the supervisor's events,
    TRANSITION_WORKFLOW for the rest."""
    return Action.SUPERVISE_WORKFLOW if event in SUPERVISED_EVENTS else Action.TRANSITION_WORKFLOW


def refuse(user: User, action: Action) -> NoReturn:
    """Raise the refusal for a role without the grant: 403 saying what may not be done,
    or 404 for council users."""
    if refusal_status(user) == 404:
        raise NotFound("Page not found")
    raise Forbidden(f"Your role ({user.role}) may not {MATRIX[action].covers}")


def require(user: User, action: Action, authority_id: int | None = None) -> None:
    """Refuse unless `user` may do `action` (on an object of `authority_id`, when given).
    The one object check: another authority's object answers 404, never 403."""
    if grant_for(user, action) is None:
        refuse(user, action)
    if not allowed(user, action, authority_id):
        raise NotFound("Page not found")


def acting_user() -> User | None:
    """Who the request acts for: the bearer token's user on the API, else the signed-in
    user; None when nobody is signed in."""
    api_user = g.get("api_user")
    if api_user is not None:
        return cast(User, api_user)
    if current_user.is_authenticated:
        return cast(User, current_user._get_current_object())
    return None


# ---- declaring actions on views --------------------------------------------------------

_ACTION_ATTRIBUTE = "required_action"


def permits(action: Action) -> Callable[[F], F]:
    """Declare the one action a view serves and enforce its role part: a role without the
    grant gets 403 (council users 404); an anonymous request 401 (the app-wide sign-in
    check redirects pages before this is reached). Sits below the route decorator."""
    if action not in MATRIX:
        raise ValueError(f"{action!r} is not in the authorisation matrix")

    def decorator(view: F) -> F:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            user = acting_user()
            if user is None:
                abort(401)
            if grant_for(user, action) is None:
                refuse(user, action)
            return view(*args, **kwargs)

        setattr(guarded, _ACTION_ATTRIBUTE, action)
        return cast(F, guarded)

    return decorator


def action_of(view: Callable[..., Any] | None) -> Action | None:
    """The action a view function declared with `permits`, or None."""
    action = getattr(view, _ACTION_ATTRIBUTE, None)
    return action if isinstance(action, Action) else None


def exempt_endpoint(endpoint: str) -> bool:
    """Endpoints that answer before or without a user: public ones and those that check
    a secret of their own (licensing/auth/public.py)."""
    return endpoint in PUBLIC_ENDPOINTS or endpoint in SECRET_BEARING_ENDPOINTS


def require_declared_action(endpoint: str | None, user: User | None) -> None:
    """Deny by default: refuse a request to an endpoint that declares no action (403, or
    404 for a council user), and log the omission. Public endpoints pass."""
    if endpoint is None or exempt_endpoint(endpoint):
        return
    view = current_app.view_functions.get(endpoint)
    if action_of(view) is not None:
        return
    current_app.logger.error("Endpoint %s declares no authorisation action: refused", endpoint)
    if user is not None and refusal_status(user) == 404:
        raise NotFound("Page not found")
    raise Forbidden("Nobody may use this: it declares no action of the authorisation matrix")


def refuse_undeclared_endpoints() -> None:
    """The app-wide before-request hook of `require_declared_action`. API endpoints are
    checked by the API's own hook instead, once the bearer token has said who is asking
    (so a request without a token still answers 401)."""
    if request.blueprint == "api":
        return
    require_declared_action(request.endpoint, acting_user())


# ---- the README's tables ---------------------------------------------------------------

README_START = "<!-- authorisation-matrix:start -->"
README_END = "<!-- authorisation-matrix:end -->"
IGNORED_METHODS = frozenset({"HEAD", "OPTIONS"})
ROLE_COLUMNS = (Role.OFFICER, Role.SUPERVISOR, Role.COUNCIL, Role.ADMIN)


def _cell(grant: Grant | None) -> str:
    if grant is None:
        return "no"
    return f"{grant.scope.value}: {grant.only}" if grant.only else grant.scope.value


def matrix_markdown() -> str:
    """The matrix as a Markdown table: one row per action, one column per role."""
    lines = [
        "| action | what it covers | " + " | ".join(role.value for role in ROLE_COLUMNS) + " |",
        "|---|---|" + "---|" * len(ROLE_COLUMNS),
    ]
    for entry in _ENTRIES:
        cells = [_cell(entry.grants.get(role)) for role in ROLE_COLUMNS]
        lines.append(f"| `{entry.action.value}` | {entry.covers} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def endpoint_label(app: Flask, endpoint: str) -> str:
    """What guards an endpoint, for the routes table."""
    if endpoint in PUBLIC_ENDPOINTS:
        return "public"
    if endpoint in SECRET_BEARING_ENDPOINTS:
        return "its own secret (no sign-in)"
    view = app.view_functions.get(endpoint)
    action = action_of(view)
    if action is not None:
        return f"`{action.value}`"
    return "**none: refused to everyone**"


def route_rows(app: Flask) -> list[tuple[str, str, str]]:
    """(method, rule, endpoint) for every route of the app, sorted by rule then method."""
    rows = [
        (method, rule.rule, rule.endpoint)
        for rule in app.url_map.iter_rules()
        for method in sorted((rule.methods or set()) - IGNORED_METHODS)
    ]
    return sorted(rows, key=lambda row: (row[1], row[0]))


def routes_markdown(app: Flask) -> str:
    """Every route and method of the app with the action it declares."""
    lines = ["| method | path | action |", "|---|---|---|"]
    for method, rule, endpoint in route_rows(app):
        lines.append(f"| {method} | `{rule}` | {endpoint_label(app, endpoint)} |")
    return "\n".join(lines) + "\n"


def readme_section(app: Flask) -> str:
    """The generated part of the README's "Who may do what", markers included."""
    return (
        f"{README_START}\n"
        "<!-- generated by `licensing authz matrix`: do not edit by hand -->\n\n"
        f"{matrix_markdown()}\n"
        "Each route and the action it declares:\n\n"
        f"{routes_markdown(app)}"
        f"{README_END}"
    )


def replace_readme_section(text: str, section: str) -> str:
    """`text` with the part between the markers (included) replaced by `section`."""
    start = text.index(README_START)
    end = text.index(README_END, start) + len(README_END)
    return text[:start] + section + text[end:]


def declared_actions(app: Flask) -> dict[str, Action | None]:
    """Every endpoint of the app (public ones excluded) and the action it declares."""
    return {
        endpoint: action_of(view)
        for endpoint, view in app.view_functions.items()
        if not exempt_endpoint(endpoint)
    }


def actions_used(app: Flask) -> Iterable[Action]:
    """The actions some endpoint of the app declares."""
    return {action for action in declared_actions(app).values() if action is not None}
