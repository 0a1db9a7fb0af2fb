"""Evidence bundles: building, redacting, issuing, sharing, and council access.

A bundle is built for a premises over a period. Its items are the premises' confirmed
incidents and ASB reports, completed visits, workflow events and the attachments of the
included incidents and visits; an officer may leave an item out with a reason (it goes
on the police-only schedule of unused material). Each build renders two copies through
`licensing.evidence.pdf`: the police copy, unredacted, and the shared copy, with personal
data replaced by role labels. Both are packed into reproducible ZIPs with a manifest, and
every file goes into the evidence store under its hash.

A supervisor issues a draft (it never changes again; a change means a new version) and
shares it with the premises' licensing authority, whose council users are emailed and
may then open it, download it, acknowledge it and comment. Every view and download is
logged.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Exists,
    Select,
    and_,
    bindparam,
    delete,
    false,
    func,
    or_,
    select,
    true,
)
from sqlalchemy.orm import Session, lazyload, selectinload
from sqlalchemy.orm.exc import StaleDataError

from licensing.audit.models import AuditEvent, premises_chain
from licensing.audit.services import append_event
from licensing.auth.models import POLICE_ROLES, Role, User
from licensing.db import exists_of, utcnow
from licensing.errors import Conflict, Forbidden, NotFound, Refused, ValidationFailed
from licensing.evidence import store
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
from licensing.evidence.models import (
    DRAFT,
    EXTENSIONS,
    ISSUED,
    ITEM_KINDS,
    REVIEW_KINDS,
    Attachment,
    Bundle,
    BundleAccess,
    BundleBlocker,
    BundleComment,
    BundleItem,
    BundleRedaction,
)
from licensing.evidence.packaging import Member, build_zip
from licensing.evidence.redaction import Redactor
from licensing.incidents.models import Incident, PremisesIncidentLink
from licensing.premises.models import Premises
from licensing.timeutil import LONDON, format_london, london_today, to_london
from licensing.visits.models import COMPLETED, OBJECTIVES, VISIT_OUTCOMES, VISIT_TYPES, Visit

# Part of every manifest and of the PDF's metadata: which code laid the bundle out.
GENERATOR_VERSION = "licensing-bundle 1.0"
DEFAULT_PERIOD_MONTHS = 12
PREPARED_BY = "Police licensing team"
SOURCE_LABELS = {
    "police-uk": "data.police.uk",
    "rms": "Police records (RMS)",
    "council-asb": "Council ASB report",
    "manual": "Recorded by an officer",
}
LINK_METHODS = {
    "officer": "linked by an officer",
    "licence_number": "licence number on the record",
    "uprn": "UPRN on the record",
    "proximity": "proximity",
    "address": "address match",
}
STALE_MESSAGE = (
    "Someone else changed this bundle while you were looking at it. "
    "Nothing was saved: check the latest build and try again."
)
# Kinds in the order they sort when two items share a moment.
KIND_ORDER = {
    "incident": 0,
    "visit": 1,
    "event": 2,
    "action_plan": 3,
    "letter": 4,
    "attachment": 5,
}


# ---- access ---------------------------------------------------------------------------


def _require_police(actor: User) -> None:
    if actor.role not in POLICE_ROLES:
        raise Forbidden("Only the police licensing team can do this")


def _require_supervisor(actor: User) -> None:
    if actor.role != Role.SUPERVISOR:
        raise Forbidden("Only a supervisor can do this")


def bundles_visible_to(user: User) -> ColumnElement[bool]:
    """A WHERE clause for the bundles `user` may open: the police see all; a council user
    only those shared with their own authority; anyone else none."""
    if user.role in POLICE_ROLES:
        return true()
    if user.role == Role.COUNCIL and user.authority_id is not None:
        return and_(
            Bundle.shared_at.is_not(None),
            Bundle.premises_id.in_(
                select(Premises.id).where(Premises.authority_id == user.authority_id)
            ),
        )
    return false()


def can_open(user: User, bundle: Bundle) -> bool:
    """The rule of `bundles_visible_to`, for one loaded bundle."""
    if user.role in POLICE_ROLES:
        return True
    return (
        user.role == Role.COUNCIL
        and bundle.shared_at is not None
        and user.authority_id is not None
        and bundle.premises.authority_id == user.authority_id
    )


def get_bundle(session: Session, user: User, bundle_id: int) -> Bundle:
    """A bundle the user may open, or NotFound (also when it exists but is not theirs).
    Roles that never see bundles (admin) are refused outright, as on the pages."""
    if user.role not in POLICE_ROLES and user.role != Role.COUNCIL:
        raise Forbidden("Evidence bundles are for the police licensing team and the council")
    bundle = session.get(Bundle, bundle_id)
    if bundle is None or not can_open(user, bundle):
        raise NotFound("Bundle not found")
    return bundle


def variants_for(user: User) -> tuple[str, ...]:
    """The copies a user may download: council users only ever the shared one."""
    return (SHARED,) if user.role == Role.COUNCIL else (SHARED, POLICE)


def _visible(user: User) -> Select[Bundle]:
    """The bundles the user may open, as a query to narrow and order."""
    return select(Bundle).where(bundles_visible_to(user))


def list_bundles(session: Session, user: User, premises_id: int | None = None) -> list[Bundle]:
    """The bundles a user may open, newest first (optionally for one premises)."""
    if premises_id is None:
        return list(session.scalars(_visible(user).order_by(Bundle.id.desc())))
    # The police see every bundle (`bundles_visible_to` is true for them): the statement
    # as built once; anyone else's is narrowed to theirs.
    query = (
        _PREMISES_BUNDLES
        if user.role in POLICE_ROLES
        else _PREMISES_BUNDLES.where(bundles_visible_to(user))
    )
    return list(session.scalars(query, {"premises_id": premises_id}))


# Built once (see licensing.db): the premises page reads it. One premises, already in the
# session: each bundle takes it from there, and the lists of one premises' bundles show
# no builder (joining both to every bundle cost ten times the read).
_PREMISES_BUNDLES = (
    select(Bundle)
    .where(Bundle.premises_id == bindparam("premises_id"))
    .options(lazyload(Bundle.premises), lazyload(Bundle.built_by))
    .order_by(Bundle.id.desc())
)
# Whether a premises has any bundle, whoever may open it: the premises page asks first
# (licensing.premises.sections), and reads the list only when there is one.
ANY_BUNDLE: Exists = exists_of(_PREMISES_BUNDLES)


BUNDLES_PER_PAGE = 50


def bundles_page(
    session: Session, user: User, before_id: int | None = None, limit: int | None = None
) -> tuple[list[Bundle], int | None]:
    """One page of the bundles a user may open, newest first: those older than
    `before_id` (the last shown on the page before) when given. Returns the page and
    the `before_id` of the next page, or None when this is the last (a keyset page: as
    quick at the two-thousandth bundle as at the first)."""
    limit = BUNDLES_PER_PAGE if limit is None else limit
    query = _visible(user)
    if before_id is not None:
        query = query.where(Bundle.id < before_id)
    found = list(session.scalars(query.order_by(Bundle.id.desc()).limit(limit + 1)))
    more = len(found) > limit
    page = found[:limit]
    return page, (page[-1].id if more and page else None)


def latest_issued_bundle(session: Session, premises_id: int) -> Bundle | None:
    """The premises' most recently issued bundle: what a review application relies on."""
    return session.scalar(
        select(Bundle)
        .where(Bundle.premises_id == premises_id, Bundle.status == ISSUED)
        # One premises: its row comes from the session (or one load), not a join.
        .options(lazyload(Bundle.premises))
        .order_by(Bundle.issued_at.desc(), Bundle.id.desc())
        .limit(1)
    )


def has_issued_bundle(session: Session, premises_id: int) -> bool:
    """Whether the premises has an issued bundle (the review guard asks whenever the
    review events are offered: an id from the index, not a bundle with its builder)."""
    return session.scalar(_ANY_ISSUED_BUNDLE, {"premises_id": premises_id}) is not None


_ANY_ISSUED_BUNDLE = (
    select(Bundle.id)
    .where(Bundle.premises_id == bindparam("premises_id"), Bundle.status == ISSUED)
    .limit(1)
)


# ---- writing --------------------------------------------------------------------------


@contextmanager
def _writing(session: Session) -> Iterator[None]:
    """Commit at the end; roll back and turn a lost race into a Conflict."""
    try:
        yield
        session.commit()
    except StaleDataError:
        session.rollback()
        raise Conflict(STALE_MESSAGE) from None
    except BaseException:
        session.rollback()
        raise


def _check_seen(bundle: Bundle, seen_lock_version: int | None) -> None:
    if seen_lock_version is not None and int(seen_lock_version) != bundle.lock_version:
        raise Conflict(STALE_MESSAGE)


def _require_draft(bundle: Bundle) -> None:
    if bundle.status != DRAFT:
        raise Refused(
            f"Bundle {bundle.label} has been issued and cannot change: make a new version"
        )


def default_period(today: date | None = None) -> tuple[date, date]:
    """The last 12 months, ending today (London)."""
    end = today or london_today()
    try:
        start = end.replace(year=end.year - 1) + timedelta(days=1)
    except ValueError:  # 29 February
        start = date(end.year - 1, 3, 1)
    return start, end


def _period_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    # The period is in London dates; records are stored in UTC.
    low = datetime.combine(start, time(), LONDON).astimezone(UTC)
    high = datetime.combine(end + timedelta(days=1), time(), LONDON).astimezone(UTC)
    return low, high


def _clean_period(period_from: date | None, period_to: date | None) -> tuple[date, date]:
    default_from, default_to = default_period()
    start, end = period_from or default_from, period_to or default_to
    errors: dict[str, str] = {}
    if end > london_today():
        errors["period_to"] = "The end of the period cannot be in the future"
    if start > end:
        errors["period_from"] = "The period must start before it ends"
    elif (end - start).days > 366 * 6:
        errors["period_from"] = "A bundle covers at most six years"
    if errors:
        raise ValidationFailed(next(iter(errors.values())), errors)
    return start, end


def create_bundle(
    session: Session,
    actor: User,
    premises: Premises,
    *,
    period_from: date | None = None,
    period_to: date | None = None,
    review_kind: str = "standard",
    statement: str = "",
    exclude: dict[tuple[str, int], str] | None = None,
) -> Bundle:
    """Build a new draft bundle (version 1 of a new reference) for a premises.

    `exclude` maps (kind, id) of items to leave out to the reason for leaving them out.
    Raises ValidationFailed naming the field for a bad period, kind or exclusion.
    """
    _require_police(actor)
    start, end = _clean_period(period_from, period_to)
    if review_kind not in REVIEW_KINDS:
        raise ValidationFailed("Choose the kind of review", {"review_kind": "Choose one"})
    with _writing(session):
        # Serialise reference numbering per premises on PostgreSQL (SQLite has one writer).
        if session.get_bind().dialect.name == "postgresql":
            session.execute(select(Premises.id).where(Premises.id == premises.id).with_for_update())
        references = session.scalar(
            select(func.count(func.distinct(Bundle.reference))).where(
                Bundle.premises_id == premises.id
            )
        )
        bundle = Bundle(
            premises_id=premises.id,
            reference=f"EB-{premises.id:05d}-{(references or 0) + 1:02d}",
            version=1,
            status=DRAFT,
            period_from=start,
            period_to=end,
            review_kind=review_kind,
            statement=(statement or "").strip(),
            built_by_id=actor.id,
            generator_version=GENERATOR_VERSION,
        )
        session.add(bundle)
        session.flush()
        _sync_items(session, bundle)
        for (kind, ref_id), reason in (exclude or {}).items():
            _set_inclusion(session, actor, bundle, kind, ref_id, False, reason)
        _build(session, bundle)
    return bundle


def new_version(
    session: Session, actor: User, bundle: Bundle, statement: str | None = None
) -> Bundle:
    """A new draft version of an issued bundle: same reference, period and exclusions,
    rebuilt from the records as they are now."""
    _require_police(actor)
    if bundle.status != ISSUED:
        raise Refused("Only an issued bundle gets a new version: change the draft itself")
    existing = session.scalar(
        select(Bundle).where(Bundle.reference == bundle.reference, Bundle.status == DRAFT)
    )
    if existing is not None:
        raise Refused(f"{existing.label} is already being prepared: finish that draft first")
    latest = session.scalar(
        select(func.max(Bundle.version)).where(Bundle.reference == bundle.reference)
    )
    with _writing(session):
        draft = Bundle(
            premises_id=bundle.premises_id,
            reference=bundle.reference,
            version=(latest or bundle.version) + 1,
            status=DRAFT,
            period_from=bundle.period_from,
            period_to=bundle.period_to,
            review_kind=bundle.review_kind,
            statement=bundle.statement if statement is None else statement.strip(),
            built_by_id=actor.id,
            generator_version=GENERATOR_VERSION,
        )
        session.add(draft)
        session.flush()
        _sync_items(session, draft)
        for item in session.scalars(
            select(BundleItem).where(
                BundleItem.bundle_id == bundle.id, BundleItem.included.is_(False)
            )
        ):
            _set_inclusion(
                session, actor, draft, item.kind, item.ref_id, False, item.exclusion_reason or ""
            )
        _build(session, draft)
    return draft


def set_inclusion(
    session: Session,
    actor: User,
    bundle: Bundle,
    item_id: int,
    include: bool,
    reason: str,
    seen_lock_version: int | None,
) -> BundleItem:
    """Leave an item out of a draft (with a reason) or put it back; the draft is rebuilt."""
    _require_police(actor)
    _require_draft(bundle)
    _check_seen(bundle, seen_lock_version)
    item = session.get(BundleItem, item_id)
    if item is None or item.bundle_id != bundle.id:
        raise NotFound("Item not found in this bundle")
    with _writing(session):
        _set_inclusion(session, actor, bundle, item.kind, item.ref_id, include, reason)
        _build(session, bundle)
    return item


def _set_inclusion(
    session: Session,
    actor: User,
    bundle: Bundle,
    kind: str,
    ref_id: int,
    include: bool,
    reason: str,
) -> None:
    item = session.scalar(
        select(BundleItem).where(
            BundleItem.bundle_id == bundle.id, BundleItem.kind == kind, BundleItem.ref_id == ref_id
        )
    )
    if item is None:
        raise ValidationFailed(
            f"{ITEM_KINDS.get(kind, kind)} {ref_id} is not in this bundle's period",
            {"exclude": "Not in this bundle"},
        )
    reason = (reason or "").strip()
    if not include and not reason:
        raise ValidationFailed(
            "Say why this item is left out (it goes on the schedule of unused material)",
            {"reason": "Give a reason for leaving it out"},
        )
    item.included = include
    item.exclusion_reason = None if include else reason
    item.decided_by_id = actor.id


def update_statement(
    session: Session, actor: User, bundle: Bundle, statement: str, seen_lock_version: int | None
) -> Bundle:
    """Replace the officer's statement on a draft; the draft is rebuilt."""
    _require_police(actor)
    _require_draft(bundle)
    _check_seen(bundle, seen_lock_version)
    with _writing(session):
        bundle.statement = (statement or "").strip()
        _build(session, bundle)
    return bundle


def rebuild(session: Session, actor: User, bundle: Bundle, seen_lock_version: int | None) -> Bundle:
    """Bring a draft up to date with the records (new evidence in the period) and render
    it again."""
    _require_police(actor)
    _require_draft(bundle)
    _check_seen(bundle, seen_lock_version)
    with _writing(session):
        _build(session, bundle)
    return bundle


def issue_bundle(
    session: Session, actor: User, bundle: Bundle, seen_lock_version: int | None
) -> Bundle:
    """Issue a draft: from now on it never changes. Supervisors only; refused while any
    blocker (unredacted personal data in an attachment) is open. The premises' audit
    chain records the hashes of the issued files."""
    _require_supervisor(actor)
    _require_draft(bundle)
    _check_seen(bundle, seen_lock_version)
    problems = blockers_of(session, bundle)
    if problems:
        raise Refused(
            f"Bundle {bundle.label} cannot be issued until {len(problems)} "
            f"problem{'s are' if len(problems) != 1 else ' is'} resolved: {problems[0].problem}"
        )
    with _writing(session):
        bundle.status = ISSUED
        bundle.issued_at = utcnow()
        bundle.issued_by_id = actor.id
        append_event(
            session,
            event="bundle_issued",
            actor_id=actor.id,
            premises_id=bundle.premises_id,
            reason=f"Evidence bundle {bundle.label} issued",
            payload=_hashes_payload(bundle),
        )
    return bundle


def _hashes_payload(bundle: Bundle) -> dict[str, Any]:
    return {
        "bundle_id": bundle.id,
        "reference": bundle.reference,
        "version": bundle.version,
        "shared_pdf_sha256": bundle.shared_pdf_sha256,
        "shared_zip_sha256": bundle.shared_zip_sha256,
        "police_pdf_sha256": bundle.police_pdf_sha256,
        "police_zip_sha256": bundle.police_zip_sha256,
        "audit_seq": bundle.audit_seq,
        "audit_head_hash": bundle.audit_head_hash,
    }


def share_bundle(session: Session, actor: User, bundle: Bundle) -> int:
    """Share an issued bundle with the premises' licensing authority and email its active
    council users (through the outbox). Returns how many were emailed. Sharing twice
    changes nothing."""
    _require_supervisor(actor)
    if bundle.status != ISSUED:
        raise Refused("Issue the bundle before sharing it")
    if bundle.shared_at is not None:
        return 0
    from licensing.notifications.alerts import absolute_url, render_email
    from licensing.notifications.outbox import enqueue

    emailed = 0
    with _writing(session):
        bundle.shared_at = utcnow()
        bundle.shared_by_id = actor.id
        append_event(
            session,
            event="bundle_shared",
            actor_id=actor.id,
            premises_id=bundle.premises_id,
            reason=f"Evidence bundle {bundle.label} shared with {bundle.premises.authority.name}",
            payload={"bundle_id": bundle.id, "authority_id": bundle.premises.authority_id},
        )
        council_users = session.scalars(
            select(User).where(
                User.role == Role.COUNCIL,
                User.authority_id == bundle.premises.authority_id,
                User.active.is_(True),
            )
        )
        link = absolute_url("evidence.show", bundle_id=bundle.id)
        for user in council_users:
            subject = f"Evidence bundle {bundle.label} shared: {bundle.premises.name}"
            text, html = render_email(
                "bundle_shared", user=user, subject=subject, bundle=bundle, link=link
            )
            emailed += enqueue(
                session,
                recipient=user.email,
                subject=subject,
                text=text,
                html=html,
                dedupe_key=f"bundle-shared:{bundle.id}:{user.id}",
                user_id=user.id,
            )
    return emailed


def record_access(session: Session, user: User, bundle: Bundle, action: str, variant: str) -> None:
    """Log that a user viewed or downloaded a bundle (committed at once, so the log keeps
    the access even if what follows fails)."""
    session.add(BundleAccess(bundle_id=bundle.id, user_id=user.id, action=action, variant=variant))
    session.commit()


def acknowledge(session: Session, user: User, bundle: Bundle) -> Bundle:
    """A council user of the authority acknowledges receipt (once; later calls keep the
    first acknowledgement)."""
    if user.role != Role.COUNCIL:
        raise Forbidden("Receipt is acknowledged by the licensing authority")
    if not can_open(user, bundle):
        raise NotFound("Bundle not found")
    if bundle.acknowledged_at is not None:
        return bundle
    with _writing(session):
        bundle.acknowledged_at = utcnow()
        bundle.acknowledged_by_id = user.id
        session.add(
            BundleAccess(bundle_id=bundle.id, user_id=user.id, action="acknowledge", variant=SHARED)
        )
        append_event(
            session,
            event="bundle_acknowledged",
            actor_id=user.id,
            premises_id=bundle.premises_id,
            reason=f"Receipt of evidence bundle {bundle.label} acknowledged",
            payload={"bundle_id": bundle.id},
        )
    return bundle


COMMENT_LIMIT = 5000


def add_comment(session: Session, user: User, bundle: Bundle, body: str) -> BundleComment:
    """A comment on a shared bundle by the council or the police. Comments are the
    exchange with the licensing authority, so a bundle takes them only once shared: a note
    on a draft would otherwise reach the council when it is shared."""
    if not can_open(user, bundle):
        raise NotFound("Bundle not found")
    if bundle.shared_at is None:
        raise Refused("Comments open once the bundle is shared with the licensing authority")
    body = (body or "").strip()
    if not body:
        raise ValidationFailed("Enter a comment", {"body": "Enter a comment"})
    if len(body) > COMMENT_LIMIT:
        raise ValidationFailed(
            f"A comment can be at most {COMMENT_LIMIT} characters",
            {"body": f"Keep it under {COMMENT_LIMIT} characters"},
        )
    with _writing(session):
        comment = BundleComment(bundle_id=bundle.id, user_id=user.id, body=body)
        session.add(comment)
    return comment


# ---- reading --------------------------------------------------------------------------


def items_of(session: Session, bundle: Bundle) -> list[BundleItem]:
    """A bundle's items in chronological order."""
    return list(
        session.scalars(
            select(BundleItem)
            .where(BundleItem.bundle_id == bundle.id)
            .order_by(BundleItem.occurred_at, BundleItem.kind, BundleItem.ref_id)
        )
    )


def blockers_of(session: Session, bundle: Bundle) -> list[BundleBlocker]:
    """What stops the draft being issued."""
    return list(
        session.scalars(
            select(BundleBlocker)
            .where(BundleBlocker.bundle_id == bundle.id)
            .order_by(BundleBlocker.id)
        )
    )


def redactions_of(session: Session, bundle: Bundle) -> list[BundleRedaction]:
    """The redaction log of the shared copy, by page."""
    return list(
        session.scalars(
            select(BundleRedaction)
            .where(BundleRedaction.bundle_id == bundle.id)
            .order_by(BundleRedaction.page, BundleRedaction.id)
        )
    )


def accesses_of(session: Session, bundle: Bundle) -> list[BundleAccess]:
    """Every view and download of a bundle, newest first."""
    return list(
        session.scalars(
            select(BundleAccess)
            .where(BundleAccess.bundle_id == bundle.id)
            .order_by(BundleAccess.at.desc(), BundleAccess.id.desc())
        )
    )


def comments_of(session: Session, bundle: Bundle) -> list[BundleComment]:
    """Comments on a bundle, oldest first."""
    return list(
        session.scalars(
            select(BundleComment)
            .where(BundleComment.bundle_id == bundle.id)
            .order_by(BundleComment.created_at, BundleComment.id)
        )
    )


def index_of(bundle: Bundle) -> list[tuple[str, int]]:
    """The shared copy's index as printed."""
    return [(str(title), int(page)) for title, page in json.loads(bundle.index_json or "[]")]


def file_of(
    session: Session, user: User, bundle: Bundle, kind: str, variant: str
) -> tuple[bytes, str]:
    """The bytes and download name of a copy's PDF or ZIP, checked against the hash the
    bundle holds. Council users get only the shared copy."""
    if variant not in variants_for(user):
        raise NotFound("No such copy")
    digest = {
        ("pdf", SHARED): bundle.shared_pdf_sha256,
        ("zip", SHARED): bundle.shared_zip_sha256,
        ("pdf", POLICE): bundle.police_pdf_sha256,
        ("zip", POLICE): bundle.police_zip_sha256,
    }.get((kind, variant))
    if not digest:
        raise NotFound("No such file")
    name = f"{bundle.reference}-v{bundle.version}-{variant}.{kind}"
    return store.get(digest), name


# ---- building -------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """A record that belongs in the bundle's period."""

    kind: str
    ref_id: int
    reference: str
    occurred_at: datetime


def _incident_reference(incident: Incident) -> str:
    kind = "ASB report" if incident.category.startswith(("ASB", "Anti-social")) else "Incident"
    return f"{kind} {incident.source_ref}"[:160]


def _candidates(session: Session, bundle: Bundle) -> list[Candidate]:
    low, high = _period_bounds(bundle.period_from, bundle.period_to)
    found: list[Candidate] = []
    incidents = session.scalars(
        select(Incident)
        .join(PremisesIncidentLink, PremisesIncidentLink.incident_id == Incident.id)
        .where(
            PremisesIncidentLink.premises_id == bundle.premises_id,
            PremisesIncidentLink.status == "confirmed",
            Incident.counted_at >= low,
            Incident.counted_at < high,
        )
    ).all()
    for incident in incidents:
        found.append(
            Candidate("incident", incident.id, _incident_reference(incident), incident.counted_at)
        )
    visits = session.scalars(
        select(Visit).where(
            Visit.premises_id == bundle.premises_id,
            Visit.status == COMPLETED,
            Visit.visited_at >= low,
            Visit.visited_at < high,
        )
    ).all()
    for visit in visits:
        assert visit.visited_at is not None
        found.append(
            Candidate(
                "visit",
                visit.id,
                f"Visit {format_london(visit.visited_at, False)}",
                visit.visited_at,
            )
        )
    from licensing.premises.workflow import EVENT_RULES

    events = session.scalars(
        select(AuditEvent).where(
            AuditEvent.chain == premises_chain(bundle.premises_id),
            AuditEvent.event.in_(list(EVENT_RULES)),
            AuditEvent.occurred_at >= low,
            AuditEvent.occurred_at < high,
        )
    ).all()
    for event in events:
        found.append(
            Candidate(
                "event",
                event.id,
                f"{EVENT_RULES[event.event].label} ({format_london(event.occurred_at, False)})",
                event.occurred_at,
            )
        )
    # Action plans (licensing.actionplans): agreed, items and their status changes, the
    # outcome; each audit event is one item, so the chronology shows the plan's course.
    from licensing.actionplans.services import AUDIT_EVENTS, audit_summary

    for event in session.scalars(
        select(AuditEvent).where(
            AuditEvent.chain == premises_chain(bundle.premises_id),
            AuditEvent.event.in_(AUDIT_EVENTS),
            AuditEvent.occurred_at >= low,
            AuditEvent.occurred_at < high,
        )
    ):
        found.append(
            Candidate(
                "action_plan",
                event.id,
                audit_summary(event.event, event.payload)[:160],
                event.occurred_at,
            )
        )
    # Standard letters issued to the premises (licensing.letters): what the licence holder
    # was told and when, by the filed PDF's hash.
    from licensing.letters.models import Letter

    for letter in session.scalars(
        select(Letter).where(
            Letter.premises_id == bundle.premises_id,
            Letter.issued_at >= low,
            Letter.issued_at < high,
        )
    ):
        found.append(
            Candidate(
                "letter", letter.id, f"{letter.title}: {letter.subject}"[:160], letter.issued_at
            )
        )
    owners = {(c.kind, c.ref_id): c for c in found if c.kind in ("incident", "visit")}
    incident_ids = [c.ref_id for c in found if c.kind == "incident"]
    visit_ids = [c.ref_id for c in found if c.kind == "visit"]
    if incident_ids or visit_ids:
        conditions = []
        if incident_ids:
            conditions.append(Attachment.incident_id.in_(incident_ids))
        if visit_ids:
            conditions.append(Attachment.visit_id.in_(visit_ids))
        for attachment in session.scalars(
            select(Attachment).where(Attachment.redacted_copy_of_id.is_(None), or_(*conditions))
        ):
            owner = (
                owners[("incident", attachment.incident_id)]
                if attachment.incident_id is not None
                else owners[("visit", attachment.visit_id)]  # type: ignore[index]
            )
            found.append(
                Candidate(
                    "attachment",
                    attachment.id,
                    f"{attachment.description or attachment.kind_label} ({owner.reference})"[:160],
                    owner.occurred_at,
                )
            )
    return found


def _sync_items(session: Session, bundle: Bundle) -> None:
    """Make the draft's items the records now in its period, keeping the officer's
    decisions on items that are still there."""
    wanted = {(c.kind, c.ref_id): c for c in _candidates(session, bundle)}
    existing = {
        (item.kind, item.ref_id): item
        for item in session.scalars(select(BundleItem).where(BundleItem.bundle_id == bundle.id))
    }
    gone = [item.id for key, item in existing.items() if key not in wanted]
    if gone:
        session.execute(delete(BundleItem).where(BundleItem.id.in_(gone)))
    for key, candidate in wanted.items():
        item = existing.get(key)
        if item is None:
            session.add(
                BundleItem(
                    bundle_id=bundle.id,
                    kind=candidate.kind,
                    ref_id=candidate.ref_id,
                    reference=candidate.reference,
                    occurred_at=candidate.occurred_at,
                    included=True,
                )
            )
        else:
            item.reference = candidate.reference
            item.occurred_at = candidate.occurred_at
    session.flush()


@dataclass
class _Build:
    """Working state while the two copies of one build are assembled."""

    bundle: Bundle
    redactor: Redactor = field(default_factory=Redactor)
    titles: dict[str, str] = field(default_factory=dict)
    blockers: list[tuple[int | None, str]] = field(default_factory=list)


def _when(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return to_london(moment).strftime("%a %-d %b %Y %H:%M")


def _incident_when(incident: Incident) -> str:
    if incident.occurred_at is None and incident.month:
        month = datetime.strptime(incident.month, "%Y-%m")
        return f"{month:%B %Y} (month only)"
    return _when(incident.occurred_at or incident.counted_at)


def _sort_key(item: BundleItem) -> tuple[datetime, int, int]:
    return (item.occurred_at, KIND_ORDER.get(item.kind, 9), item.ref_id)


def _months(start: date, end: date) -> list[str]:
    months = []
    year, month = start.year, start.month
    while (year, month) <= (end.year, end.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def _people_fields(build: _Build, incident: Incident, key: str, variant: str) -> list[Field]:
    fields = []
    for person in incident.people:
        values = {
            "name": person.name,
            "phone": person.phone,
            "email": person.email,
            "address": person.address,
        }
        label = build.redactor.add_person(person.role, values)
        if variant == POLICE:
            shown = ", ".join(value for value in values.values() if value) or "No details recorded"
            fields.append(Field(label, shown))
        else:
            for name, value in values.items():
                if value:
                    build.redactor.count(key, f"{person.role} {name}")
            fields.append(Field(label, "Personal details redacted"))
    return fields


def _documents(session: Session, build: _Build) -> tuple[BundleDocument, BundleDocument]:
    """The police and shared documents of one build."""
    bundle = build.bundle
    premises = bundle.premises
    items = sorted(items_of(session, bundle), key=_sort_key)
    included = [item for item in items if item.included]
    ids: dict[str, list[int]] = {kind: [] for kind in KIND_ORDER}
    for item in included:
        ids[item.kind].append(item.ref_id)
    incidents = {
        row.id: row
        for row in session.scalars(
            select(Incident)
            .where(Incident.id.in_(ids["incident"]))
            .options(selectinload(Incident.people))
        )
    }
    links = {
        row.incident_id: row
        for row in session.scalars(
            select(PremisesIncidentLink).where(
                PremisesIncidentLink.premises_id == premises.id,
                PremisesIncidentLink.incident_id.in_(ids["incident"]),
            )
        )
    }
    visits = {
        row.id: row for row in session.scalars(select(Visit).where(Visit.id.in_(ids["visit"])))
    }
    events = {
        row.id: row
        for row in session.scalars(
            select(AuditEvent).where(AuditEvent.id.in_(ids["event"] + ids["action_plan"]))
        )
    }
    attachments = {
        row.id: row
        for row in session.scalars(select(Attachment).where(Attachment.id.in_(ids["attachment"])))
    }
    from licensing.letters.models import Letter

    letters = {
        row.id: row for row in session.scalars(select(Letter).where(Letter.id.in_(ids["letter"])))
    }
    redacted_copies: dict[int, Attachment] = {}
    if attachments:
        for copy in session.scalars(
            select(Attachment)
            .where(Attachment.redacted_copy_of_id.in_(list(attachments)))
            .order_by(Attachment.id)
        ):
            assert copy.redacted_copy_of_id is not None
            redacted_copies[copy.redacted_copy_of_id] = copy  # the newest wins
    actors = {
        user.id: user.name
        for user in session.scalars(
            select(User).where(
                User.id.in_(
                    {event.actor_id for event in events.values() if event.actor_id}
                    | {letter.issued_by_id for letter in letters.values()}
                )
            )
        )
    }

    # Number attachments in order, and know which section each belongs to.
    attachment_numbers: dict[int, str] = {}
    by_owner: dict[str, list[str]] = {}
    owners_in = {f"{item.kind}-{item.ref_id}" for item in included}
    orphans = []
    for item in included:
        if item.kind == "attachment":
            attachment = attachments[item.ref_id]
            owner = (
                f"incident-{attachment.incident_id}"
                if attachment.incident_id is not None
                else f"visit-{attachment.visit_id}"
            )
            if owner not in owners_in:  # its incident or visit was left out: so is it
                orphans.append(item)
                continue
            number = f"A{len(attachment_numbers) + 1:02d}"
            attachment_numbers[attachment.id] = number
            by_owner.setdefault(owner, []).append(number)
    included = [item for item in included if item not in orphans]

    # People first, so every free text is redacted with every known value.
    for item in included:
        if item.kind == "incident":
            for person in incidents[item.ref_id].people:
                build.redactor.add_person(
                    person.role,
                    {
                        "name": person.name,
                        "phone": person.phone,
                        "email": person.email,
                        "address": person.address,
                    },
                )

    documents = []
    for variant in (POLICE, SHARED):

        def clean(text: str, key: str, variant: str = variant) -> str:
            return text if variant == POLICE else build.redactor.redact(text, key)

        sections: list[Section] = []
        chronology: list[ChronologyRow] = []
        category_counts: dict[str, dict[str, int]] = {}
        asb = visits_with_issues = 0
        for item in included:
            if item.kind == "incident":
                incident = incidents[item.ref_id]
                key = f"incident-{incident.id}"
                title = item.reference
                link = links.get(incident.id)
                how = LINK_METHODS.get(link.method, link.method) if link else ""
                if link and link.distance_m is not None:
                    how += f", {link.distance_m:.0f} m"
                fields = [
                    Field("Reference", incident.source_ref),
                    Field("Source", SOURCE_LABELS.get(incident.source, incident.source)),
                    Field("Category", incident.category),
                    Field("When", _incident_when(incident)),
                    Field("Location", clean(incident.location_text, key)),
                    Field("Outcome", clean(incident.outcome, key)),
                    Field("Linked to the premises by", how),
                ]
                if incident.lsoa_name or incident.lsoa_code:
                    fields.append(
                        Field("Area (LSOA)", f"{incident.lsoa_name} {incident.lsoa_code}".strip())
                    )
                if key in by_owner:
                    fields.append(Field("Attachments", ", ".join(by_owner[key])))
                fields += _people_fields(build, incident, key, variant)
                body = clean(incident.description, key)
                if incident.context:
                    body += "\n\n" + clean(incident.context, key)
                sections.append(
                    Section(
                        key,
                        title,
                        _incident_when(incident),
                        tuple(f for f in fields if f.value),
                        body,
                    )
                )
                month = to_london(incident.counted_at).strftime("%Y-%m")
                category_counts.setdefault(incident.category, {}).setdefault(month, 0)
                category_counts[incident.category][month] += 1
                asb += title.startswith("ASB")
                chronology.append(
                    ChronologyRow(
                        _incident_when(incident),
                        "ASB report" if title.startswith("ASB") else "Incident",
                        incident.source_ref,
                        f"{incident.category}: {clean(incident.description, key)}"[:200],
                        key,
                    )
                )
            elif item.kind == "visit":
                visit = visits[item.ref_id]
                key = f"visit-{visit.id}"
                outcome = VISIT_OUTCOMES.get(visit.outcome or "", visit.outcome or "")
                visits_with_issues += visit.outcome == "issues_found"
                fields = [
                    Field("When", _when(visit.visited_at)),
                    Field("Type", VISIT_TYPES.get(visit.visit_type, visit.visit_type)),
                    Field("Officer", visit.officer.name if visit.officer else ""),
                    Field("Outcome", outcome),
                ]
                if key in by_owner:
                    fields.append(Field("Attachments", ", ".join(by_owner[key])))
                paragraphs = [
                    f"{label}: {clean(visit.findings(name), key)}"
                    for name, label in OBJECTIVES.items()
                    if visit.findings(name).strip()
                ]
                if visit.follow_up_actions.strip():
                    paragraphs.append(f"Follow-up actions: {clean(visit.follow_up_actions, key)}")
                sections.append(
                    Section(
                        key,
                        item.reference,
                        _when(visit.visited_at),
                        tuple(f for f in fields if f.value),
                        "\n\n".join(paragraphs),
                    )
                )
                chronology.append(
                    ChronologyRow(
                        _when(visit.visited_at),
                        "Visit",
                        f"Visit {visit.id}",
                        f"{VISIT_TYPES.get(visit.visit_type, visit.visit_type)}: {outcome}",
                        key,
                    )
                )
            elif item.kind == "event":
                from licensing.premises.workflow import EVENT_RULES, STATE_LABELS

                event = events[item.ref_id]
                key = f"event-{event.id}"
                payload = json.loads(event.payload or "{}")
                fields = [
                    Field("When", _when(event.occurred_at)),
                    Field("By", actors.get(event.actor_id or 0, "")),
                ]
                if event.from_state != event.to_state and event.to_state:
                    fields.append(
                        Field(
                            "State",
                            f"{STATE_LABELS.get(event.from_state or '', event.from_state)} to "
                            f"{STATE_LABELS.get(event.to_state, event.to_state)}",
                        )
                    )
                for name, value in sorted(payload.items()):
                    if name in ("version", "review_id", "bundle_id") or value in (None, ""):
                        continue
                    fields.append(
                        Field(name.replace("_", " ").capitalize(), clean(str(value), key))
                    )
                reason = clean(event.reason or "", key)
                sections.append(
                    Section(key, item.reference, _when(event.occurred_at), tuple(fields), reason)
                )
                chronology.append(
                    ChronologyRow(
                        _when(event.occurred_at),
                        "Workflow event",
                        EVENT_RULES[event.event].label,
                        reason[:200],
                        key,
                    )
                )
            elif item.kind == "action_plan":
                event = events[item.ref_id]
                key = f"action-plan-{event.id}"
                payload = json.loads(event.payload or "{}")
                fields = [
                    Field("When", _when(event.occurred_at)),
                    Field("By", actors.get(event.actor_id or 0, "") or "The plan's review rule"),
                ]
                lines = [
                    f"{entry['description']} (due {entry['due_on']})"
                    for entry in payload.get("items") or []
                    if isinstance(entry, dict)
                ]
                body = "\n".join(clean(line, key) for line in lines)
                if event.reason:
                    body = clean(event.reason, key) + ("\n\n" + body if body else "")
                headline = clean(item.reference, key)
                sections.append(
                    Section(key, headline, _when(event.occurred_at), tuple(fields), body)
                )
                chronology.append(
                    ChronologyRow(
                        _when(event.occurred_at),
                        "Action plan",
                        f"Plan {payload.get('plan_id')}",
                        headline[:200],
                        key,
                    )
                )
            elif item.kind == "letter":
                letter = letters[item.ref_id]
                key = f"letter-{letter.id}"
                fields = [
                    Field("Issued", _when(letter.issued_at)),
                    Field("By", actors.get(letter.issued_by_id, "")),
                    Field("Letter", f"{letter.title}, template version {letter.template_version}"),
                    Field("SHA-256 of the PDF", letter.sha256),
                ]
                headline = clean(f"Letter issued: {letter.title}", key)
                sections.append(
                    Section(
                        key,
                        headline,
                        _when(letter.issued_at),
                        tuple(fields),
                        clean(letter.subject, key),
                    )
                )
                chronology.append(
                    ChronologyRow(
                        _when(letter.issued_at),
                        "Letter",
                        f"Letter {letter.id}",
                        headline[:200],
                        key,
                    )
                )
        attachment_docs: list[AttachmentDoc] = []
        for item in included:
            if item.kind != "attachment":
                continue
            original = attachments[item.ref_id]
            number = attachment_numbers[original.id]
            key = f"attachment-{number}"
            chosen = original
            if variant == SHARED and original.holds_personal_data:
                redacted = redacted_copies.get(original.id)
                if redacted is None:
                    build.blockers.append(
                        (
                            original.id,
                            f"Attachment {number} ({item.reference}) holds personal data and has "
                            "no redacted copy: upload one, or leave the attachment out",
                        )
                    )
                    continue
                chosen = redacted
            description = clean(original.description or original.kind_label, key)
            attachment_docs.append(
                AttachmentDoc(
                    key,
                    f"{number}: {description} ({chosen.kind_label})",
                    chosen.media_type,
                    store.get(chosen.sha256),
                    chosen.sha256,
                )
            )
            if variant == SHARED:
                _check_attachment_text(build, chosen, number, item.reference)
        months = _months(bundle.period_from, bundle.period_to)
        categories = tuple(sorted(category_counts))
        statistics = MonthlyCounts(
            tuple(months),
            categories,
            tuple(tuple(category_counts[c].get(m, 0) for m in months) for c in categories),
        )
        incident_total = sum(sum(row) for row in statistics.counts)
        summary = (
            Field("Period", f"{bundle.period_from:%-d %B %Y} to {bundle.period_to:%-d %B %Y}"),
            Field("Confirmed incidents and ASB reports", str(incident_total)),
            Field("of which ASB reports", str(asb)),
            Field("Visits", str(len(ids["visit"]))),
            Field("Visits that found issues", str(visits_with_issues)),
            Field("Workflow events", str(len(ids["event"]))),
            Field("Attachments", str(len(attachment_docs))),
        )
        unused = tuple(
            UnusedItem(
                item.reference, ITEM_KINDS.get(item.kind, item.kind), item.exclusion_reason or ""
            )
            for item in items
            if not item.included
        )
        for section in sections:
            build.titles[section.key] = section.title
        for doc in attachment_docs:
            build.titles[doc.key] = doc.title
        documents.append(
            BundleDocument(
                cover=Cover(
                    premises_name=premises.name,
                    licence_number=premises.licence_number,
                    address=", ".join(
                        part for part in (premises.address, premises.postcode) if part
                    ),
                    licence_holder=premises.licence_holder,
                    dps=premises.dps,
                    authority=premises.authority.name,
                    review_kind=REVIEW_KINDS.get(bundle.review_kind, bundle.review_kind),
                    reference=bundle.reference,
                    version=bundle.version,
                    variant=variant,
                    built_on=to_london(bundle.built_at).date(),
                    period_from=bundle.period_from,
                    period_to=bundle.period_to,
                    prepared_by=PREPARED_BY,
                ),
                statement=clean(bundle.statement, "statement"),
                chronology=tuple(chronology),
                summary=summary,
                statistics=statistics,
                sections=tuple(sections),
                attachments=tuple(attachment_docs),
                unused=unused if variant == POLICE else (),
                redaction_note=(
                    ""
                    if variant == POLICE
                    else "Personal data of victims, witnesses, reporters and suspects is "
                    "redacted: each person appears as a role label (for example "
                    "'Witness 1'), the same throughout this bundle. Other phone numbers and "
                    "email addresses are replaced by a marker. The police hold the "
                    "unredacted copy."
                ),
            )
        )
    build.titles["statement"] = "Statement"
    return documents[0], documents[1]


def _check_attachment_text(
    build: _Build, attachment: Attachment, number: str, reference: str
) -> None:
    """Block issuing when an attachment going into the shared copy contains a known
    personal value of anyone in the bundle."""
    from licensing.evidence.attachments import attachment_text

    found = build.redactor.found_in(attachment_text(attachment))
    if found:
        build.blockers.append(
            (
                attachment.id,
                f"Attachment {number} ({reference}) contains personal data of people in this "
                f"bundle ({', '.join(found)}): mark it as holding personal data and upload a "
                "redacted copy, or leave it out",
            )
        )


def _audit_head(session: Session, premises_id: int) -> tuple[str, int, str]:
    chain = premises_chain(premises_id)
    head = session.execute(
        select(AuditEvent.seq, AuditEvent.content_hash)
        .where(AuditEvent.chain == chain)
        .order_by(AuditEvent.seq.desc())
        .limit(1)
    ).first()
    if head is None:
        return chain, 0, "0" * 64
    return chain, int(head.seq), str(head.content_hash)


def _package(
    bundle: Bundle, variant: str, rendered: RenderedBundle, document: BundleDocument
) -> bytes:
    members = [Member(f"{bundle.reference}-v{bundle.version}-{variant}.pdf", rendered.pdf)]
    for attachment in document.attachments:
        number = attachment.key.removeprefix("attachment-")
        extension = EXTENSIONS.get(attachment.media_type, "bin")
        members.append(
            Member(f"attachments/{number}-{attachment.sha256[:12]}.{extension}", attachment.content)
        )
    premises = bundle.premises
    facts = {
        "reference": bundle.reference,
        "version": bundle.version,
        "variant": variant,
        "premises": {
            "id": premises.id,
            "name": premises.name,
            "licence_number": premises.licence_number,
            "licensing_authority": premises.authority.name,
        },
        "period": {"from": bundle.period_from.isoformat(), "to": bundle.period_to.isoformat()},
        "review_kind": bundle.review_kind,
        "generator": bundle.generator_version,
        "built_on": to_london(bundle.built_at).date().isoformat(),
        "page_count": rendered.page_count,
        "audit_chain_head": {
            "chain": bundle.audit_chain,
            "seq": bundle.audit_seq,
            "hash": bundle.audit_head_hash,
        },
    }
    return build_zip(facts, members, to_london(bundle.built_at).date())


def _build(session: Session, bundle: Bundle) -> None:
    """Render a draft's two copies from the records and store them; in the caller's
    transaction."""
    from licensing.evidence.pdf import render_pair

    _sync_items(session, bundle)
    bundle.built_at = utcnow()
    bundle.generator_version = GENERATOR_VERSION
    bundle.audit_chain, bundle.audit_seq, bundle.audit_head_hash = _audit_head(
        session, bundle.premises_id
    )
    build = _Build(bundle)
    police_document, shared_document = _documents(session, build)
    police, shared = render_pair(police_document, shared_document)
    try:
        bundle.police_pdf_sha256 = store.put(police.pdf)
        bundle.shared_pdf_sha256 = store.put(shared.pdf)
        bundle.police_zip_sha256 = store.put(_package(bundle, POLICE, police, police_document))
        bundle.shared_zip_sha256 = store.put(_package(bundle, SHARED, shared, shared_document))
    except OSError as error:
        # The caller's transaction rolls back: no bundle row points at a missing file.
        raise store.StorageFailed(
            "The bundle could not be stored: the evidence store is full or cannot be "
            "written to. Nothing was saved; try again later."
        ) from error
    bundle.page_count = shared.page_count
    bundle.index_json = json.dumps([[title, page] for title, page in shared.index])

    session.execute(delete(BundleRedaction).where(BundleRedaction.bundle_id == bundle.id))
    for (key, category), occurrences in sorted(build.redactor.counts.items()):
        session.add(
            BundleRedaction(
                bundle_id=bundle.id,
                category=category,
                item=build.titles.get(key, key)[:160],
                page=shared.section_pages.get(key, 0),
                occurrences=occurrences,
            )
        )
    session.execute(delete(BundleBlocker).where(BundleBlocker.bundle_id == bundle.id))
    for attachment_id, problem in build.blockers:
        session.add(
            BundleBlocker(bundle_id=bundle.id, attachment_id=attachment_id, problem=problem)
        )
    # built_at always changes, so the row's lock_version moves on with every build: a
    # supervisor who looked at the previous build cannot issue this one unseen.
    session.flush()


def render_again(session: Session, bundle: Bundle) -> tuple[bytes, bytes]:
    """Render a bundle's two PDFs again from the records, without storing anything (for
    checking that a build is reproducible)."""
    from licensing.evidence.pdf import render_bundle

    build = _Build(bundle)
    police_document, shared_document = _documents(session, build)
    return render_bundle(police_document).pdf, render_bundle(shared_document).pdf
