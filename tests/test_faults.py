"""Faults (security issue #7): what happens when something breaks halfway.

Each test is named after the fault it simulates, and runs on SQLite and PostgreSQL
(PostgreSQL-only variants are marked `postgres_only`):

1. the database connection drops in the middle of an incident import;
2. the SMTP server starts refusing, or drops the connection, in the middle of a batch;
3. the scheduler process is killed (SIGKILL) in the middle of a tick, then restarted;
4. the disk fills while an attachment is stored (and the reverse: the row fails after
   the file was written).
"""

from __future__ import annotations

import asyncio
import errno
import io
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from licensing.audit.models import AuditEvent
from licensing.evidence import attachments as attachment_service
from licensing.evidence import store
from licensing.evidence.models import Attachment
from licensing.incidents import importer
from licensing.incidents.importer import import_incidents
from licensing.incidents.models import Incident, IncidentImportRun, PremisesIncidentLink
from licensing.notifications import outbox
from licensing.notifications.models import OutboxEmail
from licensing.notifications.sender import SmtpSettings, send_due
from tests.conftest import ON_POSTGRES, csrf_from, sign_in, terminate_backend
from tests.smtp_support import Inbox, SmtpServer


def count(session: Session, model: Any) -> int:
    session.expire_all()
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


# ---- 1. the database drops in the middle of an import ------------------------------------

ROWS = 600


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of 50 rows on SQLite and 100 on PostgreSQL, so a 600-row file takes
    several: the fault can strike after some have been written."""
    monkeypatch.setattr(importer, "BATCH", 100)
    monkeypatch.setattr(importer, "_SQLITE_ROWS_PER_STATEMENT", 50)
    monkeypatch.setattr(importer, "_STATEMENTS_PER_BATCH", 1)


def rms_file(licence_number: str, authority: str, rows: int = ROWS) -> bytes:
    """A generic RMS export; every third row names the premises' licence (a link)."""
    lines = ["source_ref,occurred_at,category,description,licence_number,authority"]
    for n in range(rows):
        licence, code = (licence_number, authority) if n % 3 == 0 else ("", "")
        lines.append(
            f"FAULT-{n:05d},2026-11-{1 + n % 28:02d}T22:00:00Z,Public order,"
            f"Disorder {n},{licence},{code}"
        )
    return ("\n".join(lines) + "\n").encode()


def fail_at_batch(monkeypatch: pytest.MonkeyPatch, batch: int, strike: Any) -> dict[str, int]:
    """Call `strike(writer)` when the importer hands over its `batch`-th batch (after
    the earlier ones were written), once."""
    original = importer._BulkWriter.write_batch  # noqa: SLF001
    calls = {"n": 0, "struck": 0}

    def write_batch(self: Any, incidents: Any, links: Any) -> None:
        calls["n"] += 1
        if calls["n"] == batch and not calls["struck"]:
            calls["struck"] = 1
            strike(self)
        original(self, incidents, links)

    monkeypatch.setattr(importer._BulkWriter, "write_batch", write_batch)  # noqa: SLF001
    return calls


def snapshot(session: Session) -> tuple[int, int, int, int]:
    return (
        count(session, Incident),
        count(session, IncidentImportRun),
        count(session, PremisesIncidentLink),
        count(session, AuditEvent),
    )


def check_import_recovers(session: Session, data: bytes, before: tuple[int, ...]) -> None:
    """Nothing of the failed import is left; the re-run completes it; a third run finds
    everything already held."""
    assert snapshot(session) == before, "a failed import left rows behind"
    again = import_incidents(session, data, "rms.csv", "generic", None)
    assert (again.read, again.created, again.duplicate, again.rejected) == (ROWS, ROWS, 0, 0)
    assert again.linked == ROWS // 3
    incidents, runs, links, _ = snapshot(session)
    assert (incidents, runs, links) == (before[0] + ROWS, before[1] + 1, before[2] + ROWS // 3)
    third = import_incidents(session, data, "rms.csv", "generic", None)
    assert (third.created, third.duplicate, third.linked) == (0, ROWS, 0)
    assert count(session, Incident) == before[0] + ROWS
    assert count(session, PremisesIncidentLink) == before[2] + ROWS // 3


def test_database_error_mid_import_leaves_nothing_and_a_rerun_completes_it(
    session: Session,
    world: dict[str, Any],
    small_batches: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An error from the database after some batches were written (SQLite: an injected
    disk I/O error, raised by the driver as it would be; PostgreSQL: the same kind of
    driver error). The import's one transaction is rolled back, so the session can be
    used again and nothing it wrote survives, even if the caller commits later."""
    premises = world["premises"]
    data = rms_file(premises.licence_number, premises.authority.code)
    before = snapshot(session)

    def strike(_writer: Any) -> None:
        if ON_POSTGRES:
            import psycopg

            raise psycopg.OperationalError("could not write to the database (simulated)")
        raise sqlite3.OperationalError("disk I/O error (simulated)")

    calls = fail_at_batch(monkeypatch, 3, strike)
    with pytest.raises(Exception, match="simulated"):
        import_incidents(session, data, "rms.csv", "generic", None)
    assert calls["struck"] == 1
    session.commit()  # a caller that carries on and commits must not commit half an import
    monkeypatch.undo()  # the fault is over (the batch size too: a normal re-run)
    check_import_recovers(session, data, before)


@pytest.mark.postgres_only
@pytest.mark.skipif(not ON_POSTGRES, reason="pg_terminate_backend needs PostgreSQL")
def test_database_connection_killed_mid_import_leaves_nothing_and_a_rerun_completes_it(
    app: Flask,
    session: Session,
    world: dict[str, Any],
    small_batches: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The server ends the import's connection (pg_terminate_backend, from another
    connection, as an administrator or a failover would) after two batches."""
    premises = world["premises"]
    data = rms_file(premises.licence_number, premises.authority.code)
    before = snapshot(session)

    def strike(writer: Any) -> None:
        writer.cursor.execute("SELECT pg_backend_pid()")
        (pid,) = writer.cursor.fetchone()
        terminate_backend(app.config["DATABASE_URL"], pid)

    calls = fail_at_batch(monkeypatch, 3, strike)
    with pytest.raises(Exception) as raised:
        import_incidents(session, data, "rms.csv", "generic", None)
    assert calls["struck"] == 1
    assert "terminat" in str(raised.value) or "closed" in str(raised.value)
    monkeypatch.undo()
    # The session is usable again: the dead connection was discarded with the transaction.
    check_import_recovers(session, data, before)


# ---- 2. the SMTP server fails in the middle of a batch -----------------------------------

T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


class FaultyInbox(Inbox):
    """Accepts the first `accept` messages, then answers each later DATA with the next
    of `faults` (the last one repeats) until `heal()`:

    - "451" / "554": a temporary / permanent refusal of the message;
    - "drop": the connection is dropped before the message is accepted;
    - "drop-after-data": the message is kept, then the connection dropped before the
      250 reply: the sender cannot know it was delivered (the at-least-once boundary).

    `delay`: seconds to wait after keeping a message before replying 250 (a slow server).
    """

    def __init__(self, accept: int | None = None, faults: tuple[str, ...] = ("451",)) -> None:
        super().__init__()
        self.accept = accept
        self.faults = list(faults)
        self.delay = 0.0
        self.data_commands = 0

    def heal(self) -> None:
        """From now on, accept every message."""
        self.accept = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        with self.lock:
            number = self.data_commands
            self.data_commands += 1
            fault = None
            if self.accept is not None and number >= self.accept:
                fault = self.faults.pop(0) if len(self.faults) > 1 else self.faults[0]
        if fault is None:
            reply = await super().handle_DATA(server, session, envelope)
            if self.delay:
                await asyncio.sleep(self.delay)
            return reply
        if fault == "451":
            return "451 4.3.0 Mail server temporarily unable to accept messages"
        if fault == "554":
            return "554 5.3.0 Transaction failed"
        if fault == "drop-after-data":
            await super().handle_DATA(server, session, envelope)
        server.transport.abort()  # "drop" and "drop-after-data": no reply at all
        return "421 4.3.0 unreachable: the connection is already gone"


@pytest.fixture
def faulty_smtp(app: Flask) -> Iterator[SmtpServer]:
    """An SMTP server with a FaultyInbox (configure `server.inbox` before sending)."""
    server = SmtpServer()
    server.inbox = FaultyInbox()
    server.start()
    app.config.update(SMTP_HOST=server.host, SMTP_PORT=server.port, SMTP_TLS="none")
    try:
        yield server
    finally:
        server.stop()


def enqueue_emails(session: Session, n: int, now: datetime | None = None) -> list[str]:
    keys = [f"fault:{i}" for i in range(n)]
    for key in keys:
        outbox.enqueue(
            session,
            recipient=f"officer{key[-1]}@example.test",
            subject=f"Subject {key}",
            text=f"Plain {key}",
            html=f"<p>{key}</p>",
            dedupe_key=key,
            now=now,
        )
    session.commit()
    return keys


def rows_by_key(session: Session) -> dict[str, OutboxEmail]:
    session.expire_all()
    return {row.dedupe_key: row for row in session.scalars(select(OutboxEmail))}


def received_ids(server: SmtpServer) -> list[str]:
    return [str(m["Message-ID"]) for m in server.messages]


@pytest.mark.parametrize("fault", ["451", "554", "drop"])
def test_smtp_server_failing_mid_batch_loses_and_duplicates_nothing(
    app: Flask, session: Session, faulty_smtp: SmtpServer, fault: str
) -> None:
    """Two of six accepted, then the server refuses or drops the connection: the two are
    sent once, the four stay queued with one attempt counted and go on the next run."""
    inbox = faulty_smtp.inbox
    assert isinstance(inbox, FaultyInbox)
    inbox.accept, inbox.faults = 2, [fault]
    keys = enqueue_emails(session, 6, T0)
    settings = SmtpSettings.from_config(app.config)
    with time_machine.travel(T0, tick=False) as clock:
        first = send_due(session, settings)
        assert (first.sent, first.retrying, first.failed) == (2, 4, 0)
        rows = rows_by_key(session)
        # Emails enqueued at one moment go out in no promised order (on PostgreSQL the
        # index's order of ties is not by id), so the two sent are found by status.
        sent = [k for k in keys if rows[k].status == "sent"]
        waiting = [k for k in keys if k not in sent]
        assert len(sent) == 2
        assert all(rows[k].attempts == 1 and rows[k].sent_at == T0 for k in sent)
        for key in waiting:
            row = rows[key]
            assert (row.status, row.attempts, row.claimed_by) == ("created", 1, None)
            assert row.next_attempt_at == T0 + timedelta(minutes=1)
            assert row.last_error
        assert sorted(received_ids(faulty_smtp)) == sorted(outbox.message_id_for(k) for k in sent)

        inbox.heal()
        clock.shift(timedelta(seconds=59))
        assert send_due(session, settings).sent == 0  # not due yet: no attempt counted
        clock.shift(timedelta(seconds=1))
        second = send_due(session, settings)
        assert (second.sent, second.retrying) == (4, 0)
        assert send_due(session, settings).sent == 0
    rows = rows_by_key(session)
    assert {r.status for r in rows.values()} == {"sent"}
    assert [rows[k].attempts for k in sent + waiting] == [1, 1, 2, 2, 2, 2]
    # Each Message-ID reached the server exactly once.
    assert sorted(received_ids(faulty_smtp)) == sorted(outbox.message_id_for(k) for k in keys)


def test_smtp_connection_dropped_after_data_repeats_one_email_with_its_message_id(
    app: Flask, session: Session, faulty_smtp: SmtpServer
) -> None:
    """The at-least-once boundary: the server keeps the third message but the connection
    drops before its 250 reply, then refuses the rest. The sender cannot tell that the
    third was delivered, so it is sent again on the next run: one duplicate, with the
    same Message-ID (a mail system or reader can recognise it). No other repeats."""
    inbox = faulty_smtp.inbox
    assert isinstance(inbox, FaultyInbox)
    inbox.accept, inbox.faults = 2, ["drop-after-data", "451"]
    keys = enqueue_emails(session, 5, T0)
    settings = SmtpSettings.from_config(app.config)
    with time_machine.travel(T0, tick=False) as clock:
        assert (send_due(session, settings).sent, len(faulty_smtp.messages)) == (2, 3)
        # The one the server kept without a reply: emails enqueued at one moment go out
        # in no promised order, so it is found by what the server received.
        rows = rows_by_key(session)
        received = set(received_ids(faulty_smtp))
        in_flight = [
            k for k in keys if outbox.message_id_for(k) in received and rows[k].status != "sent"
        ]
        assert len(in_flight) == 1
        assert rows[in_flight[0]].status == "created"  # not known to be sent
        inbox.heal()
        clock.shift(timedelta(minutes=1))
        assert send_due(session, settings).sent == 3
    ids = received_ids(faulty_smtp)
    assert sorted(set(ids)) == sorted(outbox.message_id_for(k) for k in keys)
    assert len(ids) == 6 and ids.count(outbox.message_id_for(in_flight[0])) == 2
    assert {r.status for r in rows_by_key(session).values()} == {"sent"}


# ---- 3. kill -9 of the scheduler in the middle of a tick, then a restart ----------------

LEASE_SECONDS = 4


def scheduler_tick(app: Flask, server: SmtpServer, tmp_path: Path) -> subprocess.Popen[str]:
    """`licensing scheduler tick` as a real process on this test's database and server."""
    script = Path(sys.executable).with_name("licensing")
    assert script.exists(), "the licensing console script is not installed (pip install -e .)"
    env = {
        **os.environ,
        "LICENSING_ENV": "development",
        "DATABASE_URL": str(app.config["DATABASE_URL"]),
        "EVIDENCE_DIR": str(tmp_path / "evidence"),
        "SMTP_HOST": server.host,
        "SMTP_PORT": str(server.port),
        "SMTP_TLS": "none",
        "OUTBOX_LEASE_SECONDS": str(LEASE_SECONDS),
    }
    env.pop("FLASK_APP", None)
    return subprocess.Popen(  # noqa: S603 - our own console script, fixed arguments
        [str(script), "scheduler", "tick"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> str:
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    return out


def test_scheduler_killed_mid_tick_then_restarted_sends_every_email(
    app: Flask, session: Session, faulty_smtp: SmtpServer, tmp_path: Path
) -> None:
    """Eight due emails, a server that takes half a second to answer each; the tick is
    SIGKILLed once three have reached the server. The restarted tick sends every email
    the dead one had not finished at once; the one in flight (possibly delivered, not
    yet recorded) waits for its lease and then goes again with the same Message-ID."""
    inbox = faulty_smtp.inbox
    assert isinstance(inbox, FaultyInbox)
    inbox.delay = 0.5
    keys = enqueue_emails(session, 8)
    session.close()  # hold no connection (nor SQLite lock) while the process runs

    process = scheduler_tick(app, faulty_smtp, tmp_path)
    deadline = time.monotonic() + 30
    while len(faulty_smtp.messages) < 3:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the tick sent nothing"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    killed_at = time.monotonic()
    assert process.returncode == -signal.SIGKILL
    delivered = len(faulty_smtp.messages)
    assert 3 <= delivered < len(keys)

    inbox.delay = 0.0
    finish(scheduler_tick(app, faulty_smtp, tmp_path))  # the restart
    rows = rows_by_key(session)
    waiting = [k for k in keys if rows[k].status != "sent"]
    # At most the one in flight is left, held by the dead process's claim until its lease.
    assert len(waiting) <= 1, {k: rows[k].status for k in waiting}
    assert all(rows[k].status == "sending" for k in waiting)

    time.sleep(max(0.0, killed_at + LEASE_SECONDS + 0.5 - time.monotonic()))
    finish(scheduler_tick(app, faulty_smtp, tmp_path))  # after the lease
    rows = rows_by_key(session)
    assert {rows[k].status for k in keys} == {"sent"}
    ids = received_ids(faulty_smtp)
    expected = {outbox.message_id_for(k) for k in keys}
    assert set(ids) == expected  # every email reached the server
    assert len(ids) - len(expected) <= 1  # at most the one in flight went twice


# ---- 4. a full disk while an attachment is stored ----------------------------------------


@pytest.fixture
def incident(session: Session, world: dict[str, Any]) -> Incident:
    """The confirmed incident every test premises has (see make_premises)."""
    return session.scalars(
        select(Incident)
        .join(PremisesIncidentLink, PremisesIncidentLink.incident_id == Incident.id)
        .where(PremisesIncidentLink.premises_id == world["premises"].id)
    ).one()


def png_bytes() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (40, 30), (20, 120, 200)).save(out, "PNG")
    return out.getvalue()


def evidence_files(app: Flask) -> set[Path]:
    root = Path(app.config["EVIDENCE_DIR"])
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def disk_full() -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class _FullFile:
    """A file whose every write fails as on a full disk."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def __enter__(self) -> _FullFile:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.real.close()

    def write(self, _data: bytes) -> int:
        raise disk_full()

    def flush(self) -> None:
        self.real.flush()

    def fileno(self) -> int:
        return int(self.real.fileno())


def fill_the_disk(monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    """Make the store's write fail with ENOSPC: creating the temporary file, writing it,
    or syncing it to disk (where a full disk often shows first)."""
    if where == "create":

        def mkstemp(*_args: Any, **_kwargs: Any) -> Any:
            raise disk_full()

        monkeypatch.setattr(store.tempfile, "mkstemp", mkstemp)
    elif where == "write":
        real_fdopen = os.fdopen
        monkeypatch.setattr(
            store.os, "fdopen", lambda fd, *a, **k: _FullFile(real_fdopen(fd, *a, **k))
        )
    else:

        def fsync(_fd: int) -> None:
            raise disk_full()

        monkeypatch.setattr(store.os, "fsync", fsync)


@pytest.mark.parametrize("where", ["create", "write", "fsync"])
def test_disk_full_while_storing_an_attachment_leaves_no_row_and_no_temp_file(
    app: Flask,
    session: Session,
    world: dict[str, Any],
    incident: Incident,
    monkeypatch: pytest.MonkeyPatch,
    where: str,
) -> None:
    events = count(session, AuditEvent)
    fill_the_disk(monkeypatch, where)
    with pytest.raises(store.StorageFailed, match="could not be stored") as raised:
        attachment_service.add_attachment(
            session,
            world["officer"],
            incident=incident,
            data=png_bytes(),
            file_name="still.png",
            description="CCTV still",
            holds_personal_data=False,
        )
    assert raised.value.status == 507
    assert isinstance(raised.value.__cause__, OSError)
    assert raised.value.__cause__.errno == errno.ENOSPC
    assert count(session, Attachment) == 0
    assert count(session, AuditEvent) == events
    assert evidence_files(app) == set()  # no temporary file, no half-written file
    monkeypatch.undo()  # space freed: the same upload now goes through
    attachment = attachment_service.add_attachment(
        session,
        world["officer"],
        incident=incident,
        data=png_bytes(),
        file_name="still.png",
        description="CCTV still",
        holds_personal_data=False,
    )
    assert evidence_files(app) == {store.path_for(attachment.sha256)}


def test_disk_full_upload_page_says_the_file_could_not_be_stored(
    app: Flask,
    client: Any,
    session: Session,
    world: dict[str, Any],
    incident: Incident,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sign_in(client, world["officer"])
    url = f"/incidents/{incident.id}/attachments"
    token = csrf_from(client.get(url).get_data(as_text=True))
    fill_the_disk(monkeypatch, "write")
    response = client.post(
        url,
        data={
            "attachment-csrf_token": token,
            "attachment-file": (io.BytesIO(png_bytes()), "still.png"),
            "attachment-description": "CCTV still",
        },
        content_type="multipart/form-data",
    )
    body = response.get_data(as_text=True)
    assert response.status_code == 507, body[:2000]
    assert "could not be stored" in body
    assert 'id="attachment-form"' in body  # the form again, to try later
    assert count(session, Attachment) == 0
    assert evidence_files(app) == set()


def test_database_failing_after_the_file_is_stored_leaves_no_row(
    app: Flask,
    session: Session,
    world: dict[str, Any],
    incident: Incident,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The reverse order: the file is in the store, then the row's transaction fails.
    The row and its audit event are rolled back; the file stays. That is harmless and
    deliberate: the store is content-addressed, so the file is only reachable through a
    row naming its hash (a retry reuses it), and deleting it could pull the file from
    under another attachment, committed or in flight, with the same content."""
    from sqlalchemy.exc import OperationalError

    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise OperationalError("INSERT INTO audit_events …", {}, Exception("database lost"))

    monkeypatch.setattr(attachment_service, "append_event", broken)
    events = count(session, AuditEvent)
    with pytest.raises(OperationalError):
        attachment_service.add_attachment(
            session,
            world["officer"],
            incident=incident,
            data=png_bytes(),
            file_name="still.png",
            description="CCTV still",
            holds_personal_data=False,
        )
    assert count(session, Attachment) == 0
    assert count(session, AuditEvent) == events
    [spare] = evidence_files(app)
    assert spare == store.path_for(store.sha256_of(png_bytes()))
    monkeypatch.undo()
    attachment = attachment_service.add_attachment(
        session,
        world["officer"],
        incident=incident,
        data=png_bytes(),
        file_name="still.png",
        description="CCTV still",
        holds_personal_data=False,
    )
    assert evidence_files(app) == {spare} and store.path_for(attachment.sha256) == spare
