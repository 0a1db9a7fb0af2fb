"""The outbox: every email is a row before it is sent, and only due rows are sent.

`enqueue` adds a row in the caller's transaction, once per dedupe key. `claim_due` marks
due rows `sending` for one worker and commits, so no other worker takes them; the sender
then records the result of each. A row stays `sending` only if its worker died between
the claim and the result; after the lease it is due again.

Delivery is at least once, and at most one extra copy per failure, always with the same
Message-ID so the repeat is recognisable: an email goes twice only when the SMTP server
accepted its DATA but the sender never recorded it as sent (the connection dropped or
timed out before the 250 reply arrived, or the process died between the reply and the
commit). Every other failure (refused, dropped before DATA was accepted, server down)
leaves the row queued with the attempt counted, and it is sent on a later pass.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from licensing.db import utcnow
from licensing.errors import NotFound
from licensing.notifications.models import OutboxEmail

MESSAGE_ID_DOMAIN = "licensing.local"
DEFAULT_MAX_ATTEMPTS = 8
DEFAULT_LEASE = timedelta(minutes=10)
# Backoff doubles from one minute and stops growing at an hour, so eight attempts span
# about two hours: long enough to ride out a mail server restart, short enough that a
# deadline alert is not a day late.
BACKOFF_BASE = timedelta(minutes=1)
BACKOFF_CAP = timedelta(hours=1)


def message_id_for(dedupe_key: str) -> str:
    """The Message-ID header of the email with this dedupe key: the same on every attempt."""
    digest = hashlib.sha256(dedupe_key.encode("utf-8")).hexdigest()[:32]
    return f"<{digest}@{MESSAGE_ID_DOMAIN}>"


def enqueue(
    session: Session,
    *,
    recipient: str,
    subject: str,
    text: str,
    html: str,
    dedupe_key: str,
    user_id: int | None = None,
    now: datetime | None = None,
) -> bool:
    """Add an email to the outbox in the caller's transaction, unless one with the same
    dedupe key exists; True when it was added. The caller commits."""
    now = now or utcnow()
    values: dict[str, Any] = {
        "dedupe_key": dedupe_key,
        "recipient": recipient,
        "user_id": user_id,
        "subject": subject,
        "text_body": text,
        "html_body": html,
        "message_id": message_id_for(dedupe_key),
        "status": "created",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    # ON CONFLICT DO NOTHING rather than a look-up first: two jobs racing to enqueue the
    # same alert both succeed, and exactly one row results.
    # RETURNING rather than rowcount, which drivers report inconsistently for
    # INSERT … ON CONFLICT (psycopg says -1).
    statement = (
        insert(OutboxEmail)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(OutboxEmail.id)
    )
    return session.execute(statement).first() is not None


def _due(now: datetime, lease: timedelta) -> Any:
    return or_(
        and_(OutboxEmail.status == "created", OutboxEmail.next_attempt_at <= now),
        and_(OutboxEmail.status == "sending", OutboxEmail.claimed_at < now - lease),
    )


def claim_due(
    session: Session,
    worker: str,
    *,
    now: datetime | None = None,
    limit: int = 50,
    lease: timedelta = DEFAULT_LEASE,
) -> list[OutboxEmail]:
    """Mark up to `limit` due rows `sending` for `worker`, commit, and return them.

    Due: created with `next_attempt_at` reached, or sending past the lease. PostgreSQL
    locks the candidates with FOR UPDATE SKIP LOCKED, so concurrent workers take disjoint
    rows without waiting. SQLite has no row locks: each row is taken by a conditional
    UPDATE that repeats the due test, and only the worker whose UPDATE changed the row
    has it.
    """
    now = now or utcnow()
    session.commit()  # start from a clean transaction: the claim must be short
    candidates = (
        select(OutboxEmail.id)
        .where(_due(now, lease))
        .order_by(OutboxEmail.next_attempt_at, OutboxEmail.id)
        .limit(limit)
    )
    claimed: list[int] = []
    if session.get_bind().dialect.name == "postgresql":
        ids = list(session.scalars(candidates.with_for_update(skip_locked=True)))
        if ids:
            session.execute(
                update(OutboxEmail)
                .where(OutboxEmail.id.in_(ids))
                .values(status="sending", claimed_by=worker, claimed_at=now)
                .execution_options(synchronize_session=False)
            )
        claimed = ids
        session.commit()
    else:
        ids = list(session.scalars(candidates))
        session.commit()
        for email_id in ids:
            result = session.execute(
                update(OutboxEmail)
                .where(OutboxEmail.id == email_id, _due(now, lease))
                .values(status="sending", claimed_by=worker, claimed_at=now)
                .execution_options(synchronize_session=False)
            )
            session.commit()  # one short write transaction per row
            if getattr(result, "rowcount", 0) == 1:
                claimed.append(email_id)
    if not claimed:
        return []
    rows = session.scalars(
        select(OutboxEmail)
        .where(OutboxEmail.id.in_(claimed))
        .order_by(OutboxEmail.id)
        .execution_options(populate_existing=True)
    )
    return list(rows)


def _finish(session: Session, email_id: int, worker: str, values: Mapping[str, Any]) -> bool:
    # Only the worker that holds the claim records a result: if its lease ran out and
    # another worker reclaimed the row, the later claim owns it.
    result = session.execute(
        update(OutboxEmail)
        .where(
            OutboxEmail.id == email_id,
            OutboxEmail.status == "sending",
            OutboxEmail.claimed_by == worker,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return bool(getattr(result, "rowcount", 0) == 1)


def mark_sent(session: Session, email: OutboxEmail, worker: str, now: datetime) -> bool:
    """Record a delivery to the SMTP server, and commit."""
    return _finish(
        session,
        email.id,
        worker,
        {"status": "sent", "sent_at": now, "attempts": email.attempts + 1, "last_error": None},
    )


def backoff(attempts: int) -> timedelta:
    """How long to wait after the `attempts`-th failure: 1, 2, 4 … minutes, at most an hour."""
    return min(BACKOFF_BASE * (2 ** max(attempts - 1, 0)), BACKOFF_CAP)


def mark_failed(
    session: Session,
    email: OutboxEmail,
    worker: str,
    now: datetime,
    error: str,
    *,
    permanent: bool = False,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> bool:
    """Record a failed attempt, and commit: back to created with a later
    `next_attempt_at`, or failed for good after `max_attempts` or a permanent refusal."""
    attempts = email.attempts + 1
    values: dict[str, Any] = {
        "attempts": attempts,
        "last_error": error[:2000],
        "claimed_by": None,
        "claimed_at": None,
    }
    if permanent or attempts >= max_attempts:
        values["status"] = "failed"
    else:
        values["status"] = "created"
        values["next_attempt_at"] = now + backoff(attempts)
    return _finish(session, email.id, worker, values)


def failed_emails(session: Session) -> list[OutboxEmail]:
    """Emails that failed for good, newest first."""
    return list(
        session.scalars(
            select(OutboxEmail)
            .where(OutboxEmail.status == "failed")
            .order_by(OutboxEmail.created_at.desc(), OutboxEmail.id.desc())
        )
    )


def retry(session: Session, email_id: int, now: datetime | None = None) -> OutboxEmail:
    """Put a failed email back in the queue with a fresh count of attempts, and commit."""
    email = session.get(OutboxEmail, email_id)
    if email is None or email.status != "failed":
        raise NotFound("There is no failed email with that number")
    email.status = "created"
    email.attempts = 0
    email.next_attempt_at = now or utcnow()
    email.claimed_by = None
    email.claimed_at = None
    session.commit()
    return email
