"""Many visits at once, made exactly as the visit services make them one at a time.

`record_visits` books visits and records the outcomes of those already done, in the
order given, writing the same rows and the same audit events as `schedule_visit` followed
by `record_outcome` called once per visit (tests/test_demo_large.py compares the two).
What those calls look up again and again (a premises' proposal and booked visits, its
last visit, the day it entered its state, the head of its audit chain) is read once per
premises and then kept up to date in memory, and nothing is committed: it is for loading
many visits (the large demo data set), where the caller commits in batches.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from licensing.audit.models import AuditEvent, premises_chain
from licensing.audit.services import GENESIS_HASH, canonical_json, linked_event
from licensing.auth.models import User
from licensing.auth.permissions import can_see_premises
from licensing.db import utcnow
from licensing.errors import NotFound, ValidationFailed
from licensing.premises import workflow
from licensing.premises.models import Premises
from licensing.timeutil import to_london
from licensing.visits.models import CANCELLED, COMPLETED, PROPOSED, SCHEDULED, Visit
from licensing.visits.services import (
    Outcome,
    _case_officer_id,
    _determination_date,
    _lock_premises,
    _require_police,
    check_booking,
    check_outcome,
    complete_visit,
    policy_proposal,
)

CHUNK = 500  # premises per look-up query (well under SQLite's bound-parameter limit)


@dataclass(frozen=True)
class VisitEntry:
    """One visit for `record_visits`: booked for `scheduled_at`, and completed with
    `outcome` when it is given."""

    premises_id: int
    officer_id: int
    visit_type: str
    scheduled_at: datetime
    outcome: Outcome | None = None


@dataclass
class _Known:
    """What the services would look up about one premises, kept current as visits go in."""

    premises: Premises
    entered: date
    decided: date | None
    last: date | None = None
    proposal: Visit | None = None
    booked: list[Visit] = field(default_factory=list)
    seq: int = 0
    head: str = GENESIS_HASH


def record_visits(session: Session, actor: User, entries: Sequence[VisitEntry]) -> list[Visit]:
    """Book each visit and record its outcome if given, in order, as `schedule_visit` and
    `record_outcome` would (same checks, rows, versions and audit events; action-plan
    items are not supported). Every entry is checked before anything is written; a bad one
    raises ValidationFailed naming its position. Flushes but does not commit."""
    _require_police(actor)
    checked: list[tuple[VisitEntry, date, int, tuple[dict[str, str], str] | None]] = []
    for n, entry in enumerate(entries, start=1):
        try:
            day, officer = check_booking(
                session, entry.scheduled_at, entry.visit_type, entry.officer_id
            )
            outcome = check_outcome(entry.outcome) if entry.outcome is not None else None
        except ValidationFailed as error:
            raise ValidationFailed(f"Visit {n}: {error}", error.errors) from None
        if entry.outcome is not None and entry.outcome.plan_items:
            raise ValidationFailed(f"Visit {n}: action-plan items are recorded one visit at a time")
        checked.append((entry, day, officer.id, outcome))
    known = _look_up(session, actor, {entry.premises_id for entry, *_ in checked})
    made: list[Visit] = []
    for entry, day, officer_id, outcome in checked:
        state = known[entry.premises_id]
        made.append(_book(session, actor, state, entry, day, officer_id))
        if outcome is not None and entry.outcome is not None:
            _record(session, actor, state, made[-1], entry.outcome, *outcome)
    session.flush()
    return made


def _book(
    session: Session, actor: User, state: _Known, entry: VisitEntry, day: date, officer_id: int
) -> Visit:
    """`schedule_visit`'s writes."""
    visit = state.proposal
    from_proposal = visit is not None
    if visit is None:
        visit = Visit(premises_id=entry.premises_id, created_by_id=actor.id)
        session.add(visit)
    state.proposal = None
    visit.status = SCHEDULED
    visit.visit_type = entry.visit_type
    visit.scheduled_at = entry.scheduled_at
    visit.visit_date = day
    visit.officer_id = officer_id
    visit.updated_at = utcnow()
    session.flush()  # one flush per service step, so row versions count as they would
    state.booked.append(visit)
    _append(
        session,
        state,
        actor,
        "visit_scheduled",
        {
            "visit_id": visit.id,
            "visit_type": entry.visit_type,
            "officer_id": officer_id,
            "scheduled_at": entry.scheduled_at.astimezone(UTC).isoformat(),
            "from_proposal": from_proposal,
        },
    )
    return visit


def _record(
    session: Session,
    actor: User,
    state: _Known,
    visit: Visit,
    result: Outcome,
    findings: dict[str, str],
    follow_up: str,
) -> None:
    """`record_outcome`'s writes, then the policy's next proposal."""
    payload = complete_visit(session, actor, visit, result, findings, follow_up)
    state.booked.remove(visit)
    visited = to_london(result.visited_at).date()
    state.last = visited if state.last is None else max(state.last, visited)
    _append(session, state, actor, "visit_recorded", payload)
    _repropose(session, actor, state)


def _repropose(session: Session, actor: User, state: _Known) -> None:
    """`services._repropose` on what is known of the premises."""
    premises = state.premises
    wanted = policy_proposal(premises.state, state.last, state.entered, state.decided)
    booked = min((v.id for v in state.booked if v.visit_date <= wanted.due), default=None)
    proposed = state.proposal
    if booked is not None:
        if proposed is not None:
            proposed.status = CANCELLED
            proposed.updated_at = utcnow()
            session.flush()
            state.proposal = None
            _append(
                session,
                state,
                actor,
                "visit_proposal_withdrawn",
                {"visit_id": proposed.id, "scheduled_visit_id": booked},
            )
        return
    if proposed is None:
        proposed = Visit(
            premises_id=premises.id,
            visit_type=wanted.visit_type,
            status=PROPOSED,
            visit_date=wanted.due,
            policy_due_date=wanted.due,
            policy_rule=wanted.rule,
            officer_id=_case_officer_id(session, premises),
            created_by_id=actor.id,
        )
        session.add(proposed)
        session.flush()
        state.proposal = proposed
        _append(
            session,
            state,
            actor,
            "visit_proposed",
            {
                "visit_id": proposed.id,
                "visit_type": proposed.visit_type,
                "due_date": wanted.due.isoformat(),
                "state": premises.state,
            },
        )
        return
    if (proposed.visit_date, proposed.visit_type, proposed.policy_rule) == (
        wanted.due,
        wanted.visit_type,
        wanted.rule,
    ):
        return
    previous = proposed.visit_date
    proposed.visit_date = wanted.due
    proposed.policy_due_date = wanted.due
    proposed.visit_type = wanted.visit_type
    proposed.policy_rule = wanted.rule
    proposed.updated_at = utcnow()
    session.flush()
    _append(
        session,
        state,
        actor,
        "visit_proposal_moved",
        {
            "visit_id": proposed.id,
            "visit_type": proposed.visit_type,
            "due_date": wanted.due.isoformat(),
            "previous_due_date": previous.isoformat(),
            "state": premises.state,
        },
    )


def _append(
    session: Session, state: _Known, actor: User, event: str, payload: dict[str, Any]
) -> None:
    """`append_event` on the premises' chain, from the head kept in memory."""
    row = linked_event(
        premises_chain(state.premises.id),
        (state.seq, state.head) if state.seq else None,
        premises_id=state.premises.id,
        actor_id=actor.id,
        occurred_at=utcnow(),
        event=event,
        payload=canonical_json(payload),
    )
    session.add(row)
    state.seq, state.head = row.seq, row.content_hash


def _chunks(ids: Iterable[int]) -> Iterable[list[int]]:
    ordered = sorted(ids)
    for start in range(0, len(ordered), CHUNK):
        yield ordered[start : start + CHUNK]


def _look_up(session: Session, actor: User, premises_ids: set[int]) -> dict[int, _Known]:
    """Read, a few queries per 500 premises, what the services would read per call."""
    known: dict[int, _Known] = {}
    for chunk in _chunks(premises_ids):
        found = {p.id: p for p in session.scalars(select(Premises).where(Premises.id.in_(chunk)))}
        entered = _entered(session, chunk)
        for premises_id in chunk:
            premises = found.get(premises_id)
            if premises is None or not can_see_premises(actor, premises):
                raise NotFound("No such premises")
            _lock_premises(session, premises_id)  # held to the caller's commit
            moment = entered.get(premises_id) or premises.created_at
            known[premises_id] = _Known(
                premises=premises,
                entered=to_london(moment).date(),
                decided=_determination_date(session, premises_id)
                if premises.state == workflow.ACTION
                else None,
            )
        for visit in session.scalars(
            select(Visit)
            .where(Visit.premises_id.in_(chunk), Visit.status.in_([PROPOSED, SCHEDULED]))
            .order_by(Visit.id)
        ):
            state = known[visit.premises_id]
            if visit.status == PROPOSED:
                state.proposal = visit
            else:
                state.booked.append(visit)
        for premises_id, visited in session.execute(
            select(Visit.premises_id, func.max(Visit.visited_at))
            .where(Visit.premises_id.in_(chunk), Visit.status == COMPLETED)
            .group_by(Visit.premises_id)
        ):
            if visited is not None:
                known[premises_id].last = to_london(visited).date()
        chains = {premises_chain(pid): pid for pid in chunk}
        heads = (
            select(AuditEvent.chain, func.max(AuditEvent.seq).label("seq"))
            .where(AuditEvent.chain.in_(list(chains)))
            .group_by(AuditEvent.chain)
            .subquery()
        )
        for chain, seq, digest in session.execute(
            select(AuditEvent.chain, AuditEvent.seq, AuditEvent.content_hash).join(
                heads, and_(AuditEvent.chain == heads.c.chain, AuditEvent.seq == heads.c.seq)
            )
        ):
            state = known[chains[chain]]
            state.seq, state.head = int(seq), str(digest)
    return known


def _entered(session: Session, chunk: list[int]) -> dict[int, datetime]:
    """`services._state_entered`'s instant for each premises that has one: its newest
    event that set a state."""
    newest = (
        select(AuditEvent.premises_id, func.max(AuditEvent.seq).label("seq"))
        .where(AuditEvent.premises_id.in_(chunk), AuditEvent.to_state.is_not(None))
        .group_by(AuditEvent.premises_id)
        .subquery()
    )
    rows = session.execute(
        select(AuditEvent.premises_id, AuditEvent.occurred_at).join(
            newest,
            and_(AuditEvent.premises_id == newest.c.premises_id, AuditEvent.seq == newest.c.seq),
        )
    )
    return {int(premises_id): moment for premises_id, moment in rows if premises_id is not None}
