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
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Integer,
    String,
    Text,
    and_,
    bindparam,
    cast,
    column,
    func,
    literal,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from licensing.db import UTCDateTime, utcnow
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


# Keys one look-up carries (both databases), and rows one PostgreSQL insert carries:
# each travels as a single bound value (below), so statements stay short whatever the
# count.
BULK_ROWS = 5000

# The columns a bulk insert takes from each email, in order.
_BULK_COLUMNS = (
    "dedupe_key",
    "recipient",
    "user_id",
    "subject",
    "text_body",
    "html_body",
    "message_id",
)

# PostgreSQL takes each column as an array, unnested into rows by the server. psycopg
# parses a statement's placeholders in Python, afresh for a long one: a multi-row VALUES
# list cost about 70 µs a row before the server saw it, most of a 10,000-alert pass.


def pg_array(values: Iterable[str | int | None]) -> str:
    """A PostgreSQL array literal of `values` (text or integers; None is NULL).

    Written here, with two C-speed replaces an element, and sent as one text value:
    psycopg's own array adapter escapes each element with a regular expression, which
    cost more than a second for 10,000 HTML bodies."""
    elements = []
    for value in values:
        if value is None:
            elements.append("NULL")
        elif isinstance(value, int):
            elements.append(str(value))
        else:
            elements.append('"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return "{" + ",".join(elements) + "}"


def _array(name: str, element: Any) -> Any:
    # The array arrives as its text literal (see `pg_array`) and is cast by the server.
    return cast(bindparam(name, type_=Text()), ARRAY(element))


def _pg_insert_statement() -> Any:
    """INSERT … SELECT FROM unnest(:dedupe_key, :recipient, …), one array per column
    (then the constant status, attempts and :now) ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING id."""
    arrays = [_array(name, Integer() if name == "user_id" else Text()) for name in _BULK_COLUMNS]
    rows = func.unnest(*arrays).table_valued(*_BULK_COLUMNS).render_derived(name="email")
    now = bindparam("now", type_=UTCDateTime())
    return (
        pg_insert(OutboxEmail)
        .from_select(
            [*_BULK_COLUMNS, "status", "attempts", "next_attempt_at", "created_at"],
            select(
                *(rows.c[name] for name in _BULK_COLUMNS),
                literal("created", String),
                literal(0, Integer),
                now,
                now,
            ),
        )
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(OutboxEmail.id)
    )


_PG_INSERT = _pg_insert_statement()
_SQLITE_INSERT = sqlite_insert(OutboxEmail).on_conflict_do_nothing(index_elements=["dedupe_key"])

# Which keys exist: IN (SELECT unnest(…)) / IN (SELECT value FROM json_each(…)), one
# bound value for thousands of keys. (On PostgreSQL not = ANY(…): a cast in a filter was
# parsed again for every row a scan visited. On SQLite IN lists of 500 keys cost
# SQLAlchemy's expansion of every placeholder: 68 statements for the 34,000 keys a tick
# over the large data set looks up.)
_PG_EXISTING = select(OutboxEmail.dedupe_key).where(
    OutboxEmail.dedupe_key.in_(select(func.unnest(_array("keys", Text()))))
)
_SQLITE_EXISTING = select(OutboxEmail.dedupe_key).where(
    OutboxEmail.dedupe_key.in_(
        select(column("value", String)).select_from(
            func.json_each(bindparam("keys", type_=Text())).table_valued("value")
        )
    )
)


def _postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def existing_keys(session: Session, keys: Sequence[str]) -> set[str]:
    """Which of `keys` are already in the outbox."""
    found: set[str] = set()
    unique = list(dict.fromkeys(keys))
    postgresql = _postgresql(session)
    for start in range(0, len(unique), BULK_ROWS):
        chunk = unique[start : start + BULK_ROWS]
        if postgresql:
            found.update(session.scalars(_PG_EXISTING, {"keys": pg_array(chunk)}))
        else:
            found.update(
                session.scalars(_SQLITE_EXISTING, {"keys": json.dumps(chunk, ensure_ascii=False)})
            )
    return found


def enqueue_many(
    session: Session, emails: Sequence[Mapping[str, Any]], *, now: datetime | None = None
) -> int:
    """`enqueue` for many emails (each a mapping of dedupe_key, recipient, user_id,
    subject, text_body and html_body) in the caller's transaction: INSERT … ON CONFLICT
    DO NOTHING, many rows a statement; the number added. The caller commits."""
    now = now or utcnow()
    # As in `enqueue`: a row another pass stored meanwhile is skipped, not an error, and
    # only the rows added are counted.
    # Core, on the session's connection: the ORM's bulk path adds nothing here.
    connection = session.connection()
    added = 0
    if _postgresql(session):
        for start in range(0, len(emails), BULK_ROWS):
            chunk = emails[start : start + BULK_ROWS]
            parameters = {
                name: pg_array([email[name] for email in chunk]) for name in _BULK_COLUMNS[:-1]
            }
            parameters["message_id"] = pg_array(
                [message_id_for(email["dedupe_key"]) for email in chunk]
            )
            added += len(connection.execute(_PG_INSERT, {**parameters, "now": now}).all())
        return added
    # SQLite: one executemany, whose summed rowcount counts exactly the rows inserted
    # (ON CONFLICT DO NOTHING changes no row). Half the time of multi-row VALUES lists
    # with RETURNING, and of rows as one JSON value (json_extract parses a row once a
    # column).
    rows = [
        {
            **email,
            "message_id": message_id_for(email["dedupe_key"]),
            "status": "created",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for email in emails
    ]
    if rows:
        added = connection.execute(_SQLITE_INSERT, rows).rowcount
    return added


def _claim_statement() -> Any:
    """`UPDATE … WHERE id IN (the first :limit due rows by (next_attempt_at, id))
    RETURNING` the rows, marking them sending for :worker at :claimed_at; due means
    created with next_attempt_at <= :due_by, or sending claimed before :lease_ends.

    The due rows are asked as two branches, each an ordered walk of the (status,
    next_attempt_at) index that stops at the limit, rather than one OR, which the
    databases answer by sorting every due row: with ten thousand queued that was a sort
    per email sent. A branch orders by next_attempt_at alone, the index's order: ties
    (a tick's alerts share one moment) come in the index's own order, which on
    PostgreSQL is not by id, and ordering them by id there sorted all ten thousand
    again for every claim. On PostgreSQL each branch locks its rows FOR UPDATE SKIP LOCKED
    (SQLite has no row locks and leaves it out); rows a branch locks beyond the limit
    taken are free again at the claim's commit.

    Built once, with bound parameters: building it and working out its cache key cost
    more than running it, once an email."""
    limit = bindparam("limit", type_=Integer)
    branches = []
    for name, due in (
        (
            "created_due",
            and_(
                OutboxEmail.status == "created", OutboxEmail.next_attempt_at <= bindparam("due_by")
            ),
        ),
        (
            "lease_over",
            and_(OutboxEmail.status == "sending", OutboxEmail.claimed_at < bindparam("lease_ends")),
        ),
    ):
        branches.append(
            select(OutboxEmail.id, OutboxEmail.next_attempt_at)
            .where(due)
            .order_by(OutboxEmail.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .cte(name)
        )
    either = union_all(*(select(branch.c.id, branch.c.next_attempt_at) for branch in branches))
    rows = either.subquery("due")
    chosen = select(rows.c.id).order_by(rows.c.next_attempt_at, rows.c.id).limit(limit)
    return (
        update(OutboxEmail)
        .where(OutboxEmail.id.in_(chosen))
        .values(
            status="sending", claimed_by=bindparam("worker"), claimed_at=bindparam("claimed_at")
        )
        .returning(OutboxEmail)
        .execution_options(synchronize_session=False, populate_existing=True)
    )


_CLAIM = _claim_statement()


def claim_due(
    session: Session,
    worker: str,
    *,
    now: datetime | None = None,
    limit: int = 50,
    lease: timedelta = DEFAULT_LEASE,
) -> list[OutboxEmail]:
    """Mark up to `limit` due rows `sending` for `worker`, commit, and return them.

    Due: created with `next_attempt_at` reached, or sending past the lease. One
    statement (`_claim_statement`) and one commit. On PostgreSQL the due rows are locked
    FOR UPDATE SKIP LOCKED, so concurrent workers take disjoint rows without waiting; on
    SQLite the UPDATE holds the database's write lock from its start, so no other worker
    can take a row between the choice and the update. (It was four short transactions
    an email: a select, a conditional update, a reload and the result.)
    """
    session.commit()  # start from a clean transaction: the claim must be short
    return claim_with_commit(session, worker, now=now, limit=limit, lease=lease)


def claim_with_commit(
    session: Session,
    worker: str,
    *,
    now: datetime | None = None,
    limit: int = 50,
    lease: timedelta = DEFAULT_LEASE,
) -> list[OutboxEmail]:
    """`claim_due` in the caller's transaction, committing it with the claim: the sender
    records one email's result and claims the next in one commit, so an email costs one
    commit (a disk flush on PostgreSQL) rather than two. The caller's transaction must
    hold only such short writes."""
    now = now or utcnow()
    claimed = session.scalars(
        _CLAIM,
        {
            "limit": limit,
            "due_by": now,
            "lease_ends": now - lease,
            "worker": worker,
            "claimed_at": now,
        },
    ).all()
    session.commit()
    return sorted(claimed, key=lambda email: email.id)


def _held(email_id: Any, worker: Any) -> Any:
    # Only the worker that holds the claim records a result: if its lease ran out and
    # another worker reclaimed the row, the later claim owns it.
    return and_(
        OutboxEmail.id == email_id,
        OutboxEmail.status == "sending",
        OutboxEmail.claimed_by == worker,
    )


def _finish(session: Session, email_id: int, worker: str, values: Mapping[str, Any]) -> bool:
    result = session.execute(
        update(OutboxEmail)
        .where(_held(email_id, worker))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return bool(getattr(result, "rowcount", 0) == 1)


# Built once (see `_claim_statement`), run on the session's connection: nothing in the
# session needs to know.
_MARK_SENT = (
    update(OutboxEmail)
    .where(_held(bindparam("email_id"), bindparam("worker")))
    .values(
        status="sent",
        sent_at=bindparam("sent_at"),
        attempts=OutboxEmail.attempts + 1,
        last_error=None,
    )
)


def record_sent(session: Session, email: OutboxEmail, worker: str, now: datetime) -> bool:
    """Record a delivery to the SMTP server in the caller's transaction (the caller
    commits, at once); False when the claim was no longer this worker's."""
    result = session.connection().execute(
        _MARK_SENT, {"email_id": email.id, "worker": worker, "sent_at": now}
    )
    return result.rowcount == 1


def mark_sent(session: Session, email: OutboxEmail, worker: str, now: datetime) -> bool:
    """Record a delivery to the SMTP server, and commit."""
    recorded = record_sent(session, email, worker, now)
    session.commit()
    return recorded


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
