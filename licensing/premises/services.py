"""Premises register services: create, edit, move through the workflow, find, history.

Services own the transaction: each public write validates, changes the record, appends
the audit event and commits, or raises a DomainError having changed nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from typing import Any

from sqlalchemy import Exists, Integer, Row, Select, and_, bindparam, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from licensing.audit.models import AuditEvent
from licensing.audit.services import append_event, personal_values_for
from licensing.auth.matrix import Scope
from licensing.auth.models import POLICE_ROLES, Role, User
from licensing.auth.permissions import (
    can_see_premises,
    premises_scope,
    premises_visibility,
    premises_visible_to,
)
from licensing.db import exists_of, utcnow
from licensing.errors import Conflict, Forbidden, NotFound, Refused, ValidationFailed
from licensing.premises import workflow
from licensing.premises.models import (
    LicenceStatus,
    LicensingAuthority,
    Premises,
    ReviewApplication,
)

# Fields an officer may edit, in the order forms and events list them.
EDITABLE_FIELDS = (
    "name",
    "address",
    "postcode",
    "uprn",
    "latitude",
    "longitude",
    "licence_holder",
    "dps",
    "licensable_activities",
    "opening_hours",
    "licence_status",
    "case_officer_id",
)
# Names of private individuals: their values are kept off the immutable chain.
PERSONAL_FIELDS = frozenset({"licence_holder", "dps"})

STALE_MESSAGE = (
    "Someone else changed this premises since you opened it. "
    "Reload the page to see their change, then try again."
)

_POSTCODE = re.compile(r"^([A-Z]{1,2}[0-9][A-Z0-9]?)\s*([0-9][A-Z]{2})$")


def normalise_postcode(value: str) -> str:
    """Upper-case a UK postcode with one space before the inward code; other text trimmed."""
    cleaned = " ".join(value.upper().split())
    match = _POSTCODE.match(cleaned)
    return f"{match.group(1)} {match.group(2)}" if match else cleaned


def clean_details(raw: dict[str, Any], session: Session) -> dict[str, Any]:
    """Validate and normalise editable premises fields; raise ValidationFailed naming them."""
    errors: dict[str, str] = {}
    out: dict[str, Any] = {}
    for name in EDITABLE_FIELDS:
        if name not in raw:
            continue
        value = raw[name]
        if isinstance(value, str):
            value = value.strip()
            if "\x00" in value:  # PostgreSQL text cannot hold NUL
                errors[name] = "Remove the NUL character"
                continue
        if name in ("latitude", "longitude"):
            if value in (None, ""):
                out[name] = None
                continue
            limit = 90.0 if name == "latitude" else 180.0
            try:
                number = float(value)
            except (TypeError, ValueError, OverflowError):
                errors[name] = f"Enter the {name} as a number"
                continue
            if not -limit <= number <= limit:
                errors[name] = f"The {name} must be between -{limit:g} and {limit:g}"
                continue
            out[name] = number
        elif name == "uprn":
            if value in (None, ""):
                out[name] = None
            elif not re.fullmatch(r"\d{1,12}", str(value)):
                errors[name] = "A UPRN is a number of up to 12 digits"
            else:
                out[name] = str(value)
        elif name == "licence_status":
            if value not in set(LicenceStatus):
                errors[name] = "Choose a licence status"
            else:
                out[name] = str(value)
        elif name == "case_officer_id":
            if value in (None, ""):
                out[name] = None
                continue
            try:
                officer = session.get(User, int(value))
            except (TypeError, ValueError):
                officer = None
            if officer is None or officer.role not in POLICE_ROLES or not officer.active:
                errors[name] = "The case officer must be an active police licensing user"
            else:
                out[name] = officer.id
        elif name == "postcode":
            out[name] = normalise_postcode(value or "")
        elif name == "name":
            if not value:
                errors[name] = "Enter the premises name"
            else:
                out[name] = value
        else:
            out[name] = value or ""
    for field_name, field_value in out.items():
        # Refuse what the column cannot hold rather than let the database fail.
        max_length = getattr(Premises.__table__.c[field_name].type, "length", None)
        if isinstance(field_value, str) and max_length and len(field_value) > max_length:
            errors.setdefault(
                field_name, f"Use at most {max_length} characters (this has {len(field_value)})"
            )
    if errors:
        raise ValidationFailed("; ".join(errors.values()), errors)
    return out


def _changes(premises: Premises, cleaned: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {
        name: (getattr(premises, name), value)
        for name, value in cleaned.items()
        if getattr(premises, name) != value
    }


def _change_payload(changes: dict[str, tuple[Any, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split changes into the chain's payload and the erasable personal values."""
    payload: dict[str, Any] = {}
    personal: dict[str, Any] = {}
    for name, (old, new) in changes.items():
        if name in PERSONAL_FIELDS:
            payload[name] = {"personal": True}
            personal[name] = (old, new)
        else:
            payload[name] = {"old": old, "new": new}
    return payload, personal


def _details_event_name(changed: set[str]) -> str:
    if changed == {"dps"}:
        return "dps_changed"
    if changed == {"licence_holder"}:
        return "licence_transferred"
    if changed == {"case_officer_id"}:
        return "case_officer_changed"
    return "details_changed"


def _require_police(actor: User | None) -> None:
    if actor is not None and actor.role not in POLICE_ROLES and actor.role != Role.ADMIN:
        raise Forbidden("Only the police licensing team can change the register")


def authority_by_code(session: Session, code: str) -> LicensingAuthority:
    """The licensing authority with this code, or NotFound."""
    authority = session.scalar(
        select(LicensingAuthority).where(LicensingAuthority.code == code.strip().upper())
    )
    if authority is None:
        raise NotFound(f"No licensing authority with code {code!r}")
    return authority


def add_premises(
    session: Session,
    actor: User | None,
    authority: LicensingAuthority,
    licence_number: str,
    details: dict[str, Any],
    *,
    commit: bool = True,
    source: str = "manual",
) -> Premises:
    """Register a premises in monitoring, with its first audit event."""
    _require_police(actor)
    licence_number = (licence_number or "").strip()
    if not licence_number:
        raise ValidationFailed(
            "Enter the licence number", {"licence_number": "Enter the licence number"}
        )
    if "name" not in details:
        raise ValidationFailed("Enter the premises name", {"name": "Enter the premises name"})
    cleaned = clean_details(details, session)
    if "case_officer_id" not in cleaned and actor is not None and actor.role in POLICE_ROLES:
        cleaned["case_officer_id"] = actor.id
    exists = session.scalar(
        select(Premises.id).where(
            Premises.authority_id == authority.id, Premises.licence_number == licence_number
        )
    )
    if exists:
        raise Refused(
            f"{authority.name} already has a premises with licence number {licence_number}"
        )
    premises = Premises(
        authority_id=authority.id,
        licence_number=licence_number,
        state=workflow.MONITORED,
        **cleaned,
    )
    session.add(premises)
    try:
        session.flush()
    except IntegrityError:  # someone added the same licence at the same moment
        session.rollback()
        raise Refused(
            f"{authority.name} already has a premises with licence number {licence_number}"
        ) from None
    payload, personal = _change_payload(
        {k: (None, v) for k, v in cleaned.items() if v not in (None, "")}
    )
    append_event(
        session,
        event="premises_registered",
        actor_id=actor.id if actor else None,
        premises_id=premises.id,
        to_state=premises.state,
        reason=None,
        payload={
            "authority": authority.code,
            "licence_number": licence_number,
            "source": source,
            "fields": payload,
        },
        personal_values=personal,
    )
    if commit:
        _commit(session)
    return premises


def update_details(
    session: Session,
    premises: Premises,
    actor: User | None,
    seen_version: int | None,
    raw: dict[str, Any],
    reason: str | None,
    *,
    commit: bool = True,
    source: str = "manual",
) -> bool:
    """Apply edits to a premises record as one event; return False if nothing changed."""
    _require_police(actor)
    if seen_version is not None and seen_version != premises.version:
        raise Conflict(STALE_MESSAGE)
    cleaned = clean_details(raw, session)
    changes = _changes(premises, cleaned)
    if not changes:
        return False
    payload, personal = _change_payload(changes)
    version = premises.version
    with _stale_as_conflict(session):
        _lock_for_write(session, premises, seen_version)
    for name, (_old, new) in changes.items():
        setattr(premises, name, new)
    premises.updated_at = utcnow()
    # Appending autoflushes the premises UPDATE (version-checked), so a concurrent writer
    # can surface here as well as at commit: both become Conflict.
    with _stale_as_conflict(session):
        append_event(
            session,
            event=_details_event_name(set(changes)),
            actor_id=actor.id if actor else None,
            premises_id=premises.id,
            reason=(reason or "").strip() or None,
            payload={"changes": payload, "source": source, "version": version + 1},
            personal_values=personal,
        )
    if commit:
        _commit(session)
    return True


def _commit(session: Session) -> None:
    try:
        session.commit()
    except (StaleDataError, IntegrityError):
        session.rollback()
        raise Conflict(STALE_MESSAGE) from None


def _lock_for_write(session: Session, premises: Premises, seen_version: int | None) -> None:
    """PostgreSQL: lock the premises row before changing anything, and re-check the version.

    Every writer takes this row lock first (the audit append takes the same lock), so
    two writers queue on it instead of one holding the UPDATE's weaker lock while asking
    for this one, which deadlocks. SQLite serialises writers itself; a version that moved
    on surfaces there as StaleDataError, which `_stale_as_conflict` turns into Conflict.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    current = session.scalar(
        select(Premises.version).where(Premises.id == premises.id).with_for_update()
    )
    if current is None or (seen_version is not None and current != seen_version):
        raise StaleDataError(f"premises {premises.id} is at version {current}")
    if current != premises.version:
        raise StaleDataError(f"premises {premises.id} moved on since it was loaded")


@contextmanager
def _stale_as_conflict(session: Session) -> Iterator[None]:
    """Turn a version clash found while flushing into Conflict; any failure rolls back.

    A failed flush leaves the transaction unusable, and an event that failed half-way
    must not leave its in-memory changes (a moved state, a new review) for a later
    commit to persist without their audit event.
    """
    try:
        yield
    except StaleDataError:
        session.rollback()
        raise Conflict(STALE_MESSAGE) from None
    except BaseException:
        session.rollback()
        raise


@dataclass(frozen=True)
class TransitionResult:
    """The premises after an event, and the audit event that records it."""

    premises: Premises
    event: AuditEvent


def apply_event(
    session: Session,
    premises: Premises,
    actor: User,
    event: str,
    seen_version: int | None,
    reason: str | None,
    params: dict[str, Any] | None = None,
) -> TransitionResult:
    """Take a workflow event on a premises: check role, version, state, parameters and
    guards; move the state through the machine; record it; commit. Raises Forbidden,
    Conflict, Refused or ValidationFailed having changed nothing."""
    params = dict(params or {})
    if event not in workflow.EVENT_RULES:
        raise Refused(f"Unknown event {event!r}")
    rule = workflow.EVENT_RULES[event]
    if actor.role not in rule.roles:
        raise Forbidden(f"Your role ({actor.role}) may not {rule.label.lower()}")
    if seen_version is None:
        raise ValidationFailed("Say which version of the premises you saw", {"version": "Required"})
    if seen_version != premises.version:
        raise Conflict(STALE_MESSAGE)
    workflow.check_allowed(premises.state, event)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("Give a reason for this change", {"reason": "Give a reason"})
    parsed = workflow.parse_parameters(event, params)
    refusal = workflow.first_refusal(
        workflow.GuardContext(
            premises=premises, actor=actor, event=event, params=parsed, session=session
        )
    )
    if refusal:
        raise Refused(refusal)

    from_state = premises.state
    # From here on the premises changes in memory: any failure rolls the session back
    # so that nothing half-done is left for a later commit.
    with _stale_as_conflict(session):
        _lock_for_write(session, premises, seen_version)
        moved = workflow.fire(premises, event, parsed)
        if not moved:  # pragma: no cover - check_allowed and guards ran first
            raise Refused(f"{rule.label} is not possible now")
        premises.updated_at = utcnow()
        payload = _event_effects(session, premises, actor, event, parsed)
        recorded = append_event(
            session,
            event=event,
            actor_id=actor.id,
            premises_id=premises.id,
            from_state=from_state,
            to_state=premises.state,
            reason=reason,
            payload=payload,
        )
        # Taking the event a recommendation asked for settles it.
        from licensing.incidents.recommendations import mark_acted

        mark_acted(session, premises.id, event, actor)
        if premises.state != from_state:
            # A new state brings a new visit policy: propose the next visit.
            from licensing.visits.services import on_state_changed

            on_state_changed(session, premises, actor, audit=False)
    _commit(session)
    return TransitionResult(premises, recorded)


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        if value is None:
            continue
        out[key] = value.isoformat() if isinstance(value, date | datetime) else value
    return out


def open_review(session: Session, premises_id: int) -> ReviewApplication | None:
    """The premises' review application that is still open, if any."""
    return session.scalar(
        select(ReviewApplication)
        .where(ReviewApplication.premises_id == premises_id, ReviewApplication.status == "open")
        .order_by(ReviewApplication.id.desc())
        .limit(1)
    )


def _iso(value: date | datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def open_and_determined_review(
    session: Session, premises_id: int
) -> tuple[ReviewApplication | None, ReviewApplication | None]:
    """The premises' open review application and its most recent determined one (either
    may be None), in one statement: the premises page shows both. A premises has few
    review applications in its life, so reading its open and determined ones is small."""
    found: dict[str, ReviewApplication] = {}
    for review in session.scalars(_OPEN_AND_DETERMINED, {"premises_id": premises_id}):
        found.setdefault(review.status, review)  # newest first: the first of each status
    return found.get("open"), found.get("determined")


_OPEN_AND_DETERMINED = (
    select(ReviewApplication)
    .where(
        ReviewApplication.premises_id == bindparam("premises_id"),
        ReviewApplication.status.in_(("open", "determined")),
    )
    .order_by(ReviewApplication.id.desc())
)
# Whether it would find any: the premises page asks first (licensing.premises.sections).
ANY_OPEN_OR_DETERMINED_REVIEW: Exists = exists_of(_OPEN_AND_DETERMINED)


def _event_effects(
    session: Session, premises: Premises, actor: User, event: str, parsed: dict[str, Any]
) -> dict[str, Any]:
    """Records an event creates or closes besides the state; returns the event payload."""
    payload = _jsonable(parsed)
    payload["version"] = premises.version + 1
    if event in ("apply_for_review", "apply_for_summary_review"):
        from licensing.evidence.services import latest_issued_bundle  # avoids a cycle

        bundle = latest_issued_bundle(session, premises.id)  # the guard made sure of one
        review = ReviewApplication(
            premises_id=premises.id,
            kind="standard" if event == "apply_for_review" else "summary",
            application_date=parsed.get("application_date"),
            received_at=parsed.get("received_at"),
            certificate_reference=parsed.get("certificate_reference"),
            applied_by_id=actor.id,
            bundle_id=bundle.id if bundle else None,
        )
        session.add(review)
        session.flush()
        payload.update(review_id=review.id, review_kind=review.kind)
        if bundle is not None:
            payload.update(bundle_id=bundle.id, bundle=bundle.label)
        _sync_deadlines(session, review)
    elif event in ("withdraw_review", "record_determination"):
        current = open_review(session, premises.id)
        if current is not None:
            if event == "withdraw_review":
                current.status = "withdrawn"
            else:
                current.status = "determined"
                current.outcome = parsed["outcome"]
                current.decision_date = parsed["decision_date"]
                current.suspended_until = parsed.get("suspended_until")
            payload["review_id"] = current.id
            _sync_deadlines(session, current)
    elif event in workflow.INTERNAL_EVENTS:
        latest = session.scalar(
            select(ReviewApplication)
            .where(ReviewApplication.premises_id == premises.id)
            .order_by(ReviewApplication.id.desc())
            .limit(1)
        )
        if latest is not None:  # the guards made sure it is the right review
            if event == "correct_review_dates":
                if parsed.get("application_date"):
                    payload["previous_application_date"] = _iso(latest.application_date)
                    latest.application_date = parsed["application_date"]
                if parsed.get("received_at"):
                    payload["previous_received_at"] = _iso(latest.received_at)
                    latest.received_at = parsed["received_at"]
            elif event == "record_hearing":
                latest.hearing_date = parsed["hearing_date"]
            elif event == "record_interim_steps":
                latest.interim_steps_at = parsed["decided_at"]
                latest.interim_steps = parsed["interim_steps"]
            elif event == "record_decision_notified":
                latest.decision_notified_on = parsed["notified_on"]
            elif parsed["appeal_stage"] == "lodged":
                latest.appeal_lodged_on = parsed["appeal_date"]
            else:
                latest.appeal_decided_on = parsed["appeal_date"]
                latest.appeal_outcome = parsed["appeal_stage"]
            payload["review_id"] = latest.id
            _sync_deadlines(session, latest)
    return payload


def _sync_deadlines(session: Session, review: ReviewApplication) -> None:
    # Deadlines hang on the review's dates; they change in the event's transaction.
    from licensing.deadlines.services import sync_review_deadlines

    sync_review_deadlines(session, review)


# ---- reading ---------------------------------------------------------------------------


def get_premises(session: Session, user: User, premises_id: int) -> Premises:
    """A premises the user may see, or NotFound (also when it exists but is hidden)."""
    premises = session.scalar(_PREMISES_BY_ID, {"premises_id": premises_id})
    if premises is None or not can_see_premises(user, premises):
        raise NotFound("No such premises")
    return premises


# Built once (see licensing.db): every premises page starts with it (`session.get` builds afresh).
_PREMISES_BY_ID = select(Premises).where(Premises.id == bindparam("premises_id"))


@dataclass(frozen=True)
class PremisesFilter:
    """What the premises list and API can filter on."""

    state: str | None = None
    authority: str | None = None
    q: str | None = None


def _search_terms(filters: PremisesFilter) -> dict[str, str]:
    """The values the filters compare premises with, by name: `state`, `authority` (a
    code), and for `q` the patterns `like` (lower case) and `squashed` (a postcode without
    spaces). Only the filters given are present."""
    terms: dict[str, str] = {}
    if filters.state:
        terms["state"] = filters.state
    if filters.authority:
        terms["authority"] = filters.authority.strip().upper()
    if filters.q:
        term = filters.q.replace("\x00", "").strip()
        # A % or _ typed in the search box means itself, not a wildcard.
        escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        terms["like"] = f"%{escaped.lower()}%"
        terms["squashed"] = f"%{escaped.replace(' ', '').upper()}%"
    return terms


# The lists read the premises' table columns, not the mapped class's, so that their
# statements are Core statements with Core rows (see licensing.db): the browser list, its
# count and the API list are read on every page of the register.
_PREMISES = Premises.__table__.c
_AUTHORITIES = LicensingAuthority.__table__


def _filtered_by(visible: Any, terms: Mapping[str, Any]) -> Select[Any]:
    """The premises table's rows matching `visible` and the `_search_terms`, whose values
    may be values or bound parameters."""
    query = select(Premises.__table__).where(visible)
    if "state" in terms:
        query = query.where(_PREMISES.state == terms["state"])
    if "authority" in terms:
        query = query.join(_AUTHORITIES, _AUTHORITIES.c.id == _PREMISES.authority_id).where(
            _AUTHORITIES.c.code == terms["authority"]
        )
    if "like" in terms:
        query = query.where(
            or_(
                func.lower(_PREMISES.name).like(terms["like"], escape="\\"),
                func.lower(_PREMISES.licence_number).like(terms["like"], escape="\\"),
                func.replace(_PREMISES.postcode, " ", "").like(terms["squashed"], escape="\\"),
            )
        )
    return query


def _filtered(user: User, filters: PremisesFilter) -> Select[Any]:
    return _filtered_by(premises_visible_to(user), _search_terms(filters))


def _of_authority(column: Any, label: str) -> Any:
    """A column of the premises' licensing authority, looked up for each row (whatever
    else the query joins the authorities for, such as the authority filter)."""
    return (
        select(column)
        .where(_AUTHORITIES.c.id == _PREMISES.authority_id)
        .correlate_except(_AUTHORITIES)
        .scalar_subquery()
        .label(label)
    )


# What the browser list shows of a premises, as one flat row (see PREMISES_SUMMARY below).
PREMISES_LIST_ROW = (
    _PREMISES.id,
    _PREMISES.name,
    _PREMISES.licence_number,
    _PREMISES.postcode,
    _of_authority(_AUTHORITIES.c.name, "authority_name"),
    _PREMISES.state,
)


def list_premises(
    session: Session,
    user: User,
    filters: PremisesFilter,
    page: int,
    per_page: int,
    *,
    after_id: int | None = None,
) -> tuple[list[Row[Any]], int]:
    """One page of premises (ordered by name, as PREMISES_LIST_ROW rows) and the total
    count, for the browser list.

    With `after_id` (the last premises of the page before, which the list's "next" link
    carries) the page is read by keyset, from that premises on along (name, id), however
    deep it is; without it, by `page` number (the numbered links, and old bookmarks).
    """
    terms = _search_terms(filters)
    scope, shape = premises_scope(user), frozenset(terms)
    parameters = {
        **terms,
        "viewer_authority_id": user.authority_id,
        "after_id": after_id,
        "offset": (page - 1) * per_page,
        "limit": per_page,
    }
    total = session.scalar(_list_count(scope, shape), parameters) or 0
    items = session.execute(_list_page(scope, shape, after_id is not None), parameters).all()
    return list(items), total


def _visible_filtered(scope: Scope | None, terms: frozenset[str]) -> Select[Any]:
    """The premises a viewer with grant `scope` may see that match filters `terms`, with
    the viewer's authority and the filters' values as bound parameters."""
    visible = premises_visibility(scope, bindparam("viewer_authority_id"))
    return _filtered_by(visible, {name: bindparam(name) for name in terms})


@cache
def _list_count(scope: Scope | None, terms: frozenset[str]) -> Select[Any]:
    """`list_premises`' count for one shape of request (the viewer's grant, which
    filters), built once per shape (see licensing.db): every list page counts."""
    # Counted over the ids alone: SQLite otherwise builds every matching row to count it.
    counted = _visible_filtered(scope, terms).with_only_columns(_PREMISES.id).subquery()
    return select(func.count()).select_from(counted)


@cache
def _list_page(scope: Scope | None, terms: frozenset[str], after: bool) -> Select[Any]:
    """`list_premises`' page for one shape of request (the viewer's grant, which filters,
    whether after a premises or by page number), built once per shape (see licensing.db)."""
    query = _visible_filtered(scope, terms).order_by(_PREMISES.name, _PREMISES.id)
    if after:
        after_id = bindparam("after_id", type_=Integer)
        seen_name = select(_PREMISES.name).where(_PREMISES.id == after_id).scalar_subquery()
        query = query.where(
            or_(
                _PREMISES.name > seen_name,
                and_(_PREMISES.name == seen_name, _PREMISES.id > after_id),
            )
        )
    else:
        query = query.offset(bindparam("offset", type_=Integer))
    return query.with_only_columns(*PREMISES_LIST_ROW).limit(bindparam("limit", type_=Integer))


# A premises as one flat row: its own columns, with its authority's code and its case
# officer's email in place of the related rows. A list of these is a fraction of the cost of
# the same list as Premises objects, each with its authority and case officer loaded.
PREMISES_SUMMARY = (
    _PREMISES.id,
    _of_authority(_AUTHORITIES.c.code, "authority"),
    _PREMISES.licence_number,
    _PREMISES.name,
    _PREMISES.address,
    _PREMISES.postcode,
    _PREMISES.uprn,
    _PREMISES.latitude,
    _PREMISES.longitude,
    _PREMISES.licence_holder,
    _PREMISES.dps,
    _PREMISES.licensable_activities,
    _PREMISES.opening_hours,
    _PREMISES.licence_status,
    select(User.__table__.c.email)
    .where(User.__table__.c.id == _PREMISES.case_officer_id)
    .correlate_except(User.__table__)
    .scalar_subquery()
    .label("case_officer"),
    _PREMISES.state,
    _PREMISES.version,
    _PREMISES.updated_at,
)


def premises_after(
    session: Session, user: User, filters: PremisesFilter, after_id: int | None, limit: int
) -> tuple[list[Row[Any]], int | None]:
    """Keyset page by id for the API: items (PREMISES_SUMMARY rows) and the cursor of the
    next page (or None)."""
    terms = _search_terms(filters)
    statement = _summary_page(premises_scope(user), frozenset(terms), after_id is not None)
    parameters = {
        **terms,
        "viewer_authority_id": user.authority_id,
        "after_id": after_id,
        "limit": limit + 1,
    }
    rows = list(session.execute(statement, parameters).all())
    next_cursor = rows[limit - 1].id if len(rows) > limit else None
    return rows[:limit], next_cursor


@cache
def _summary_page(scope: Scope | None, terms: frozenset[str], after: bool) -> Select[Any]:
    """`premises_after`'s statement for one shape of request (the viewer's grant, which
    filters, whether after a cursor), built once per shape (see licensing.db): police
    systems poll this list."""
    query = _visible_filtered(scope, terms).with_only_columns(*PREMISES_SUMMARY)
    if after:
        query = query.where(_PREMISES.id > bindparam("after_id"))
    return query.order_by(_PREMISES.id).limit(bindparam("limit", type_=Integer))


@dataclass(frozen=True)
class HistoryEntry:
    """One event of a premises' history, with who did it and any personal values.
    `event` is the audit event's row: each column of audit_events by its name, as on
    AuditEvent (read for display only, so not built into an object)."""

    event: Row[Any]
    actor_name: str
    personal: dict[str, tuple[str | None, str | None]]

    @property
    def payload(self) -> dict[str, Any]:
        """The event's payload as a dict."""
        import json

        value: dict[str, Any] = json.loads(self.event.payload)
        return value


def history(
    session: Session,
    premises: Premises,
    *,
    before_seq: int | None = None,
    limit: int | None = None,
) -> list[HistoryEntry]:
    """The premises' events, newest first, with actors' names and erasable personal values;
    optionally only those before sequence number `before_seq`, at most `limit` of them
    (a keyset page along ix_audit_events_premises_id_seq)."""
    parameters = {"premises_id": premises.id, "before_seq": before_seq, "limit": limit}
    rows = session.execute(_history(before_seq is not None, limit is not None), parameters).all()
    personal = personal_values_for(session, [row.id for row in rows])
    return [
        HistoryEntry(
            event=row,
            actor_name=row.actor_name if row.actor_name is not None else "System",
            personal=personal.get(row.id, {}),
        )
        for row in rows
    ]


@cache
def _history(before: bool, limited: bool) -> Select[*tuple[Any, ...]]:
    """`history`'s statement (each event's columns with its actor's name), built once
    per shape (see licensing.db): every premises page reads it. Of table columns, so
    its rows come back as Core rows (cheaper to build than objects)."""
    events, users = AuditEvent.__table__, User.__table__
    query = (
        select(*events.c, users.c.name.label("actor_name"))
        .outerjoin(users, users.c.id == events.c.actor_id)
        .where(events.c.premises_id == bindparam("premises_id"))
        .order_by(events.c.seq.desc())
    )
    if before:
        query = query.where(events.c.seq < bindparam("before_seq"))
    if limited:
        query = query.limit(bindparam("limit", type_=Integer))
    return query


def count_history(session: Session, premises: Premises) -> int:
    """How many events the premises' history holds (one COUNT along
    ix_audit_events_premises_id_seq)."""
    return session.scalar(_COUNT_HISTORY, {"premises_id": premises.id}) or 0


_COUNT_HISTORY = select(func.count()).where(  # table columns: a Core row
    AuditEvent.__table__.c.premises_id == bindparam("premises_id")
)
