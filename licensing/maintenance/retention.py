"""Retention of incidents and the erasure of a person's details on request.

The rule: an incident that was never tied to a premises (no confirmed or suggested link;
a rejected suggestion is not a link) is of no use to licensing once it is older than
RETENTION_UNLINKED_INCIDENT_MONTHS (by `counted_at`), so it goes, with its people and
its rejected links. An incident that something else still points at (an attachment, an
evidence bundle's item) is kept and reported as skipped.

Both operations record themselves on the system audit chain with counts, ids and field
names only: never the personal values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from dateutil.relativedelta import relativedelta
from sqlalchemy import ColumnElement, delete, exists, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from licensing.audit.services import append_event
from licensing.db import utcnow
from licensing.errors import NotFound, ValidationFailed
from licensing.evidence.models import Attachment, BundleItem
from licensing.incidents.models import Incident, IncidentPerson, PremisesIncidentLink

DEFAULT_UNLINKED_INCIDENT_MONTHS = 24
ACTIVE_LINK_STATUSES = ("confirmed", "suggested")
ERASABLE_FIELDS = ("name", "phone", "email", "address")
# Keeps IN (...) lists under SQLite's bound-parameter limit.
_CHUNK = 500


def cutoff_for(months: int, now: datetime | None = None) -> datetime:
    """The moment `months` calendar months before `now`: older incidents are in scope."""
    if months < 1:
        raise ValidationFailed("the retention period must be at least one month")
    return (now or utcnow()) - relativedelta(months=months)


@dataclass
class RetentionReport:
    """What a retention run deleted (or, in a dry run, would delete) and what it kept."""

    months: int
    cutoff: datetime
    dry_run: bool
    incident_ids: list[int] = field(default_factory=list)
    people: int = 0
    links: int = 0
    skipped: dict[int, str] = field(default_factory=dict)

    def summary(self) -> dict[str, object]:
        """The counts recorded in the audit event (no ids of people, no personal data)."""
        return {
            "months": self.months,
            "cutoff": self.cutoff.isoformat(),
            "incidents_deleted": len(self.incident_ids),
            "people_deleted": self.people,
            "links_deleted": self.links,
            "incidents_skipped": len(self.skipped),
        }


def _chunks(ids: Sequence[int]) -> list[Sequence[int]]:
    return [ids[i : i + _CHUNK] for i in range(0, len(ids), _CHUNK)]


def _unlinked_before(cutoff: datetime) -> ColumnElement[bool]:
    active = exists().where(
        PremisesIncidentLink.incident_id == Incident.id,
        PremisesIncidentLink.status.in_(ACTIVE_LINK_STATUSES),
    )
    return (Incident.counted_at < cutoff) & ~active


def _blockers(session: Session, ids: Sequence[int]) -> dict[int, str]:
    """Why some of these incidents must stay (read afresh: a link made meanwhile counts)."""
    blocked: dict[int, str] = {}
    for chunk in _chunks(ids):
        for incident_id in session.scalars(
            select(PremisesIncidentLink.incident_id).where(
                PremisesIncidentLink.incident_id.in_(chunk),
                PremisesIncidentLink.status.in_(ACTIVE_LINK_STATUSES),
            )
        ):
            blocked[incident_id] = "linked to a premises"
        for incident_id in session.scalars(
            select(BundleItem.ref_id).where(
                BundleItem.kind == "incident", BundleItem.ref_id.in_(chunk)
            )
        ):
            blocked.setdefault(incident_id, "listed in an evidence bundle")
        for attached in session.scalars(
            select(Attachment.incident_id).where(Attachment.incident_id.in_(chunk))
        ):
            if attached is not None:
                blocked.setdefault(attached, "has attachments")
    return blocked


def _count(session: Session, column: InstrumentedAttribute[int], ids: Sequence[int]) -> int:
    total = 0
    for chunk in _chunks(ids):
        total += int(session.scalar(select(func.count()).where(column.in_(chunk))) or 0)
    return total


def run_retention(
    session: Session,
    *,
    months: int = DEFAULT_UNLINKED_INCIDENT_MONTHS,
    actor_id: int | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
) -> RetentionReport:
    """Delete the unlinked incidents older than `months` with their people and links,
    and append one summary event to the system chain, in one transaction (committed).

    A dry run works out the same report and changes nothing."""
    cutoff = cutoff_for(months, now)
    report = RetentionReport(months=months, cutoff=cutoff, dry_run=dry_run)
    query = select(Incident.id).where(_unlinked_before(cutoff)).order_by(Incident.id)
    if not dry_run:
        # PostgreSQL: lock the candidates, so a link being made to one of them now
        # either commits first (and is seen below) or waits for this run.
        query = query.with_for_update(of=Incident)
    candidates = list(session.scalars(query))
    report.skipped = _blockers(session, candidates)
    report.incident_ids = [i for i in candidates if i not in report.skipped]
    ids = report.incident_ids
    report.people = _count(session, IncidentPerson.incident_id, ids)
    report.links = _count(session, PremisesIncidentLink.incident_id, ids)
    if dry_run:
        session.rollback()
        return report
    for chunk in _chunks(ids):
        session.execute(delete(IncidentPerson).where(IncidentPerson.incident_id.in_(chunk)))
        session.execute(
            delete(PremisesIncidentLink).where(PremisesIncidentLink.incident_id.in_(chunk))
        )
        session.execute(delete(Incident).where(Incident.id.in_(chunk)))
    append_event(
        session,
        event="retention_run",
        actor_id=actor_id,
        reason=f"Unlinked incidents older than {months} months",
        payload=report.summary(),
    )
    session.commit()
    session.expire_all()
    return report


@dataclass(frozen=True)
class Erasure:
    """What erasing one person's details did."""

    person_id: int
    incident_id: int
    role: str
    fields: tuple[str, ...]


def erase_person(
    session: Session,
    person_id: int,
    reason: str,
    *,
    actor_id: int | None = None,
    operator: str | None = None,
) -> Erasure:
    """Blank the name, phone, email and address of one incident person (the row stays,
    with its role) and record the erasure: who, when, why, which fields. Committed.

    The reason must not repeat the values being erased (it goes into the audit trail,
    which can never be changed)."""
    reason = reason.strip()
    if not reason:
        raise ValidationFailed("an erasure needs a reason", {"reason": "Required"})
    person = session.get(IncidentPerson, person_id)
    if person is None:
        raise NotFound(f"incident person {person_id} not found")
    values = {name: str(getattr(person, name) or "") for name in ERASABLE_FIELDS}
    erased = tuple(name for name, value in values.items() if value)
    lowered = reason.casefold()
    for value in values.values():
        if len(value.strip()) >= 3 and value.strip().casefold() in lowered:
            raise ValidationFailed(
                "the reason repeats a value being erased; the audit trail must not hold it",
                {"reason": "Must not contain the personal details"},
            )
    result = Erasure(person.id, person.incident_id, person.role, erased)
    if not erased:
        session.rollback()
        return result
    # The same values written into the incident's free text go too: once the person row
    # is blank, a bundle's redaction could no longer find them there.
    from licensing.evidence.redaction import Redactor
    from licensing.incidents.models import Incident

    redactor = Redactor()
    redactor.add_person(person.role, values)
    incident = session.get(Incident, person.incident_id)
    texts_changed = []
    if incident is not None:
        for name in ("description", "context", "location_text", "outcome"):
            before = str(getattr(incident, name) or "")
            after = redactor.replace_known(before, f"[{person.role} details erased]")
            if after != before:
                setattr(incident, name, after)
                texts_changed.append(name)
    for name in erased:
        setattr(person, name, "")
    payload: dict[str, object] = {
        "incident_id": person.incident_id,
        "incident_person_id": person.id,
        "role": person.role,
        "fields": list(erased),
        "incident_text_fields": texts_changed,
    }
    if operator:
        payload["operator"] = operator
    append_event(
        session,
        event="incident_person_erased",
        actor_id=actor_id,
        reason=reason,
        payload=payload,
    )
    session.commit()
    return result
