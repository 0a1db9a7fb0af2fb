"""Appending to and verifying the hash-chained audit trail."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, select, text
from sqlalchemy.orm import Session

from licensing.audit.models import SYSTEM_CHAIN, AuditEvent, AuditPersonalValue, premises_chain
from licensing.db import utcnow

GENESIS_HASH = "0" * 64


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: the same facts always give the same text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds")


def content_hash(event: AuditEvent) -> str:
    """SHA-256 of the event's canonical content, which includes its predecessor's hash."""
    content = {
        "chain": event.chain,
        "seq": event.seq,
        "premises_id": event.premises_id,
        "actor_id": event.actor_id,
        "occurred_at": _timestamp(event.occurred_at),
        "event": event.event,
        "from_state": event.from_state,
        "to_state": event.to_state,
        "reason": event.reason,
        "payload": event.payload,
        "prev_hash": event.prev_hash,
    }
    return hashlib.sha256(canonical_json(content).encode("utf-8")).hexdigest()


def _lock_chain(session: Session, chain: str, premises_id: int | None) -> None:
    # PostgreSQL: serialise appends to one chain only, so other chains never wait. A
    # premises chain locks the premises row (row locks cost no shared memory, so an
    # import touching thousands of premises is fine); the system chain takes one
    # transaction-scoped advisory lock. SQLite serialises all writers itself. The unique
    # (chain, seq) backs both up.
    if session.get_bind().dialect.name != "postgresql":
        return
    if premises_id is not None:
        session.execute(
            text("SELECT id FROM premises WHERE id = :id FOR UPDATE"), {"id": premises_id}
        )
    else:
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:chain))"), {"chain": chain})


def linked_event(chain: str, head: tuple[int, str] | None, **columns: Any) -> AuditEvent:
    """A new event for `chain`, linked after `head` (its last event's seq and content
    hash; None for a new chain), with its own content hash. `append_event` reads the head
    from the database; a caller appending many events in one go may keep it itself."""
    row = AuditEvent(
        chain=chain,
        seq=head[0] + 1 if head else 1,
        prev_hash=head[1] if head else GENESIS_HASH,
        **columns,
    )
    row.content_hash = content_hash(row)
    return row


def append_event(
    session: Session,
    *,
    event: str,
    actor_id: int | None,
    premises_id: int | None = None,
    from_state: str | None = None,
    to_state: str | None = None,
    reason: str | None = None,
    payload: dict[str, Any] | None = None,
    personal_values: dict[str, tuple[str | None, str | None]] | None = None,
    occurred_at: datetime | None = None,
) -> AuditEvent:
    """Append one event to its chain (the premises' own, or the system chain) in the
    caller's transaction. `personal_values` maps a field to (old, new) and is stored
    apart from the chain so it stays erasable."""
    chain = premises_chain(premises_id) if premises_id is not None else SYSTEM_CHAIN
    _lock_chain(session, chain, premises_id)
    head = session.execute(
        select(AuditEvent.seq, AuditEvent.content_hash)
        .where(AuditEvent.chain == chain)
        .order_by(AuditEvent.seq.desc())
        .limit(1)
    ).first()
    row = linked_event(
        chain,
        (head.seq, head.content_hash) if head else None,
        premises_id=premises_id,
        actor_id=actor_id,
        occurred_at=occurred_at or utcnow(),
        event=event,
        from_state=from_state,
        to_state=to_state,
        reason=reason,
        payload=canonical_json(payload or {}),
    )
    session.add(row)
    if personal_values:
        session.flush()
        for field, (old, new) in sorted(personal_values.items()):
            session.add(
                AuditPersonalValue(event_id=row.id, field=field, old_value=old, new_value=new)
            )
    return row


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of checking every chain: OK, or the first broken link."""

    ok: bool
    events_checked: int
    chains_checked: int
    chain: str | None = None
    seq: int | None = None
    problem: str | None = None

    def describe(self) -> str:
        """One line for a person: OK with counts, or where and how the chain breaks."""
        if self.ok:
            return f"OK: {self.events_checked} events in {self.chains_checked} chains verified"
        return f"BROKEN: chain {self.chain} at event {self.seq}: {self.problem}"


def verify_chains(session: Session) -> VerifyResult:
    """Recompute every hash and link, chain by chain, and report the first break."""
    checked = 0
    chains = 0
    current_chain: str | None = None
    expected_prev = GENESIS_HASH
    expected_seq = 1
    # populate_existing: check what is stored, not events this session already holds
    # (an event appended earlier in the session would otherwise hide a later tampering).
    rows = session.execute(
        select(AuditEvent)
        .order_by(AuditEvent.chain, AuditEvent.seq)
        .execution_options(yield_per=1000, populate_existing=True)
    ).scalars()
    for event in rows:
        if event.chain != current_chain:
            current_chain = event.chain
            chains += 1
            expected_prev = GENESIS_HASH
            expected_seq = 1
        problem = None
        if event.seq != expected_seq:
            problem = f"expected event {expected_seq} next; an event is missing"
        elif event.prev_hash != expected_prev:
            problem = "its link to the previous event does not match"
        elif content_hash(event) != event.content_hash:
            problem = "its content does not match its hash (altered)"
        if problem:
            return VerifyResult(False, checked, chains, event.chain, event.seq, problem)
        checked += 1
        expected_prev = event.content_hash
        expected_seq += 1
    return VerifyResult(True, checked, chains)


def personal_values_for(
    session: Session, event_ids: list[int]
) -> dict[int, dict[str, tuple[str | None, str | None]]]:
    """The erasable personal values of the given events, by event id then field."""
    result: dict[int, dict[str, tuple[str | None, str | None]]] = {}
    if not event_ids:
        return result
    for event_id, field, old, new in session.execute(_PERSONAL_VALUES, {"event_ids": event_ids}):
        result.setdefault(event_id, {})[field] = (old, new)
    return result


# Built once (see licensing.db), of table columns (Core rows): every history page reads it.
_PERSONAL = AuditPersonalValue.__table__.c
_PERSONAL_VALUES = select(
    _PERSONAL.event_id, _PERSONAL.field, _PERSONAL.old_value, _PERSONAL.new_value
).where(_PERSONAL.event_id.in_(bindparam("event_ids", expanding=True)))
