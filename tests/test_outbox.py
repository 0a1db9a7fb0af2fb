"""The outbox against a real SMTP server: sent once, retried with backoff while the
server is down, never sent twice by concurrent senders, and reclaimed after the lease."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from flask import Flask
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from licensing.notifications import outbox
from licensing.notifications.models import AlertPreference, OutboxEmail
from licensing.notifications.sender import SmtpSettings, send_due
from tests import smtp_support
from tests.conftest import csrf_from, sign_in
from tests.smtp_support import SmtpServer, html_part, text_part

smtp_server = smtp_support.smtp_server  # the fixture, shared by the SMTP test modules

# Tomorrow 09:00 UTC: rows enqueued at the real time before a test travels here are due.
# (A fixed date went stale once the real clock passed it.)
T0 = (datetime.now(UTC) + timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)


def _enqueue(session: Session, key: str, to: str = "pc@example.test") -> bool:
    return outbox.enqueue(
        session,
        recipient=to,
        subject=f"Subject {key}",
        text=f"Plain {key}\nhttps://licensing.example.test/premises/1",
        html=f"<p>HTML {key}</p>",
        dedupe_key=key,
    )


def _settings(app: Flask, **changes: Any) -> SmtpSettings:
    settings = SmtpSettings.from_config(app.config)
    return SmtpSettings(**{**settings.__dict__, **changes})


def _row(session: Session, key: str) -> OutboxEmail:
    session.expire_all()
    row = session.scalar(select(OutboxEmail).where(OutboxEmail.dedupe_key == key))
    assert row is not None
    return row


def test_enqueue_inserts_once_per_dedupe_key(session: Session) -> None:
    assert _enqueue(session, "deadline:1:T-2") is True
    assert _enqueue(session, "deadline:1:T-2") is False
    assert _enqueue(session, "deadline:1:T-7") is True
    session.commit()
    assert session.scalar(select(func.count()).select_from(OutboxEmail)) == 2
    row = _row(session, "deadline:1:T-2")
    assert row.status == "created" and row.attempts == 0
    assert row.message_id == outbox.message_id_for("deadline:1:T-2")


def test_enqueue_belongs_to_the_callers_transaction(session: Session) -> None:
    assert _enqueue(session, "rolled-back")
    session.rollback()
    assert session.scalar(select(func.count()).select_from(OutboxEmail)) == 0


def test_message_id_derives_from_the_dedupe_key() -> None:
    first = outbox.message_id_for("deadline:7:2026-12-29:T-2:user:3")
    assert first == outbox.message_id_for("deadline:7:2026-12-29:T-2:user:3")
    assert first != outbox.message_id_for("deadline:7:2026-12-29:T-7:user:3")
    assert first.startswith("<") and first.endswith("@licensing.local>")
    assert len(first) == len("<@licensing.local>") + 32


def test_an_email_is_sent_once_with_both_bodies(
    app: Flask, session: Session, smtp_server: SmtpServer
) -> None:
    _enqueue(session, "hello", "sergeant@example.test")
    session.commit()
    with time_machine.travel(T0, tick=False):
        result = send_due(session, SmtpSettings.from_config(app.config))
        again = send_due(session, SmtpSettings.from_config(app.config))
    assert (result.sent, again.sent) == (1, 0)
    [message] = smtp_server.messages
    assert message["To"] == "sergeant@example.test"
    assert message["From"] == app.config["MAIL_FROM"]
    assert message["Subject"] == "Subject hello"
    assert message["Message-ID"] == outbox.message_id_for("hello")
    assert "https://licensing.example.test/premises/1" in text_part(message)
    assert "<p>HTML hello</p>" in html_part(message)
    row = _row(session, "hello")
    assert (row.status, row.sent_at, row.attempts, row.claimed_by) == (
        "sent",
        T0,
        1,
        row.claimed_by,
    )


def test_with_the_server_down_it_stays_queued_then_goes_once(
    app: Flask, session: Session, smtp_server: SmtpServer
) -> None:
    _enqueue(session, "patience")
    session.commit()
    smtp_server.stop()
    settings = SmtpSettings.from_config(app.config)
    with time_machine.travel(T0, tick=False) as clock:
        result = send_due(session, settings)
        assert (result.sent, result.retrying) == (0, 1)
        row = _row(session, "patience")
        assert row.status == "created"
        assert row.attempts == 1
        assert row.next_attempt_at == T0 + timedelta(minutes=1)
        assert row.last_error and "Connection refused" in row.last_error

        # Not due yet: no attempt is made (the count stays at one).
        clock.shift(timedelta(seconds=59))
        assert send_due(session, settings).retrying == 0
        assert _row(session, "patience").attempts == 1

        clock.shift(timedelta(seconds=1))
        assert send_due(session, settings).retrying == 1
        row = _row(session, "patience")
        assert row.attempts == 2
        assert row.next_attempt_at == T0 + timedelta(minutes=1) + timedelta(minutes=2)

        smtp_server.start()
        clock.shift(timedelta(minutes=2))
        assert send_due(session, settings).sent == 1
        assert send_due(session, settings).sent == 0
    assert len(smtp_server.messages) == 1
    row = _row(session, "patience")
    assert (row.status, row.attempts) == ("sent", 3)


def test_after_the_last_attempt_it_fails_for_good(
    app: Flask, session: Session, smtp_server: SmtpServer
) -> None:
    _enqueue(session, "doomed")
    session.commit()
    smtp_server.stop()
    settings = _settings(app, max_attempts=4)
    waits = []
    with time_machine.travel(T0, tick=False) as clock:
        for _ in range(4):
            before = datetime.now(UTC)
            send_due(session, settings)
            row = _row(session, "doomed")
            waits.append(row.next_attempt_at - before)
            clock.move_to(row.next_attempt_at)
    assert row.status == "failed" and row.attempts == 4
    assert waits[:3] == [timedelta(minutes=1), timedelta(minutes=2), timedelta(minutes=4)]
    assert outbox.backoff(20) == timedelta(hours=1)  # capped


def test_concurrent_senders_send_each_email_once(
    app: Flask, session: Session, smtp_server: SmtpServer
) -> None:
    keys = [f"bulk:{n}" for n in range(24)]
    for key in keys:
        _enqueue(session, key)
    session.commit()
    settings = SmtpSettings.from_config(app.config)
    barrier = threading.Barrier(2)
    results: list[int] = []
    errors: list[BaseException] = []

    def sender() -> None:
        own = app.extensions["db_sessionmaker"]()
        try:
            barrier.wait()
            # Small batches, so the two senders interleave over the queue.
            total = 0
            while True:
                sent = send_due(own, settings, limit=3).sent
                if not sent:
                    break
                total += sent
            results.append(total)
        except BaseException as error:  # reported below
            errors.append(error)
        finally:
            own.close()

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sum(results) == len(keys)
    ids = [m["Message-ID"] for m in smtp_server.messages]
    assert sorted(ids) == sorted(outbox.message_id_for(k) for k in keys)
    assert session.scalar(select(func.count()).where(OutboxEmail.status == "sent")) == len(keys)


def test_a_row_left_sending_is_not_resent_within_the_lease_but_is_after(
    app: Flask, session: Session, smtp_server: SmtpServer
) -> None:
    _enqueue(session, "interrupted")
    session.commit()
    settings = SmtpSettings.from_config(app.config)
    with time_machine.travel(T0, tick=False) as clock:
        # A sender claims the row and dies before it records a result.
        [claimed] = outbox.claim_due(session, "dead-worker")
        assert claimed.status == "sending"
        clock.shift(timedelta(minutes=9, seconds=59))
        assert send_due(session, settings).sent == 0
        assert smtp_server.messages == []
        clock.shift(timedelta(seconds=2))
        assert send_due(session, settings).sent == 1
    [message] = smtp_server.messages
    assert message["Message-ID"] == outbox.message_id_for("interrupted")
    row = _row(session, "interrupted")
    assert row.status == "sent"


def test_the_dead_workers_late_result_does_not_overwrite_the_reclaim(
    app: Flask, session: Session, smtp_server: SmtpServer
) -> None:
    _enqueue(session, "zombie")
    session.commit()
    with time_machine.travel(T0, tick=False):
        [claimed] = outbox.claim_due(session, "slow-worker")
    later = T0 + timedelta(minutes=11)
    with time_machine.travel(later, tick=False):
        assert send_due(session, SmtpSettings.from_config(app.config)).sent == 1
        # The slow worker's failure arrives after the row was reclaimed and sent.
        assert not outbox.mark_failed(session, claimed, "slow-worker", later, "timeout")
    assert _row(session, "zombie").status == "sent"


# ---- the admin page -------------------------------------------------------------------


def _fail(session: Session, key: str) -> OutboxEmail:
    _enqueue(session, key, "unlucky@example.test")
    session.commit()
    session.execute(
        update(OutboxEmail)
        .where(OutboxEmail.dedupe_key == key)
        .values(status="failed", attempts=8, last_error="SMTPDataError: 554 rejected")
    )
    session.commit()
    return _row(session, key)


def test_admin_lists_failed_emails_and_retries_one(
    client: Any, session: Session, world: dict[str, Any]
) -> None:
    failed = _fail(session, "failed:1")
    _enqueue(session, "fine")
    session.commit()
    sign_in(client, world["admin"])
    page = client.get("/admin/outbox")
    body = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "unlucky@example.test" in body and "554 rejected" in body
    assert "Subject fine" not in body

    refused = client.post(f"/admin/outbox/{failed.id}/retry")
    assert refused.status_code == 400  # no CSRF token
    assert _row(session, "failed:1").status == "failed"

    response = client.post(f"/admin/outbox/{failed.id}/retry", data={"csrf_token": csrf_from(body)})
    assert response.status_code == 302
    row = _row(session, "failed:1")
    assert (row.status, row.attempts) == ("created", 0)
    assert "No email has failed" in client.get("/admin/outbox").get_data(as_text=True)
    # Retrying what is not failed is not found.
    again = client.post(f"/admin/outbox/{failed.id}/retry", data={"csrf_token": csrf_from(body)})
    assert again.status_code == 404


@pytest.mark.parametrize(
    ("role", "status"), [("officer", 403), ("supervisor", 403), ("council", 404)]
)
def test_only_admins_see_the_outbox(
    client: Any, session: Session, world: dict[str, Any], role: str, status: int
) -> None:
    failed = _fail(session, "failed:2")
    sign_in(client, world[role])
    assert client.get("/admin/outbox").status_code == status
    token = csrf_from(client.get("/premises").get_data(as_text=True))  # the sign-out form
    assert (
        client.post(f"/admin/outbox/{failed.id}/retry", data={"csrf_token": token}).status_code
        == status
    )
    assert _row(session, "failed:2").status == "failed"


def test_a_user_chooses_digest_only(
    app: Flask, client: Any, session: Session, world: dict[str, Any]
) -> None:
    sign_in(client, world["officer"])
    page = client.get("/account/alerts")
    assert page.status_code == 200
    token = csrf_from(page.get_data(as_text=True))
    response = client.post("/account/alerts", data={"csrf_token": token, "mode": "digest"})
    assert response.status_code == 302
    assert session.get(AlertPreference, world["officer"].id).mode == "digest"
    assert (
        client.post("/account/alerts", data={"csrf_token": token, "mode": "x"}).status_code == 422
    )
    admin = app.test_client()
    sign_in(admin, world["admin"])
    assert admin.get("/account/alerts").status_code == 403


class _SlowInbox(smtp_support.Inbox):
    """A mail server that takes `delay` seconds to accept each message."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


def test_a_pass_stops_claiming_when_its_time_is_up_and_the_next_sends_the_rest(
    app: Flask, session: Session
) -> None:
    server = SmtpServer()
    server.inbox = _SlowInbox(0.25)
    server.start()
    app.config.update(SMTP_HOST=server.host, SMTP_PORT=server.port, SMTP_TLS="none")
    try:
        keys = [f"burst:{n}" for n in range(12)]
        for key in keys:
            _enqueue(session, key)
        session.commit()
        # 0.25 s an email against a 1 s budget: four or five go, never all twelve.
        settings = _settings(app, batch_seconds=1.0, batch_limit=1000)
        first = send_due(session, settings)
        assert first.out_of_time
        assert 1 <= first.sent < len(keys)
        waiting = session.scalar(select(func.count()).where(OutboxEmail.status == "created"))
        assert waiting == len(keys) - first.sent  # nothing claimed and left stranded
        total = first.sent
        while total < len(keys):
            again = send_due(session, settings)
            assert again.sent >= 1
            total += again.sent
        assert total == len(keys)
        ids = sorted(m["Message-ID"] for m in server.messages)
        assert ids == sorted(outbox.message_id_for(k) for k in keys)  # each once
    finally:
        server.stop()


def test_the_batch_limit_and_seconds_come_from_the_configuration(app: Flask) -> None:
    app.config.update(OUTBOX_SEND_BATCH="250", OUTBOX_SEND_SECONDS="7.5")
    settings = SmtpSettings.from_config(app.config)
    assert (settings.batch_limit, settings.batch_seconds) == (250, 7.5)
    app.config.update(OUTBOX_SEND_BATCH=None, OUTBOX_SEND_SECONDS=None)
    defaults = SmtpSettings.from_config(app.config)
    assert (defaults.batch_limit, defaults.batch_seconds) == (1000, 20.0)


def test_a_pass_sends_up_to_the_batch_limit_when_time_allows(
    app: Flask, session: Session, smtp_server: SmtpServer
) -> None:
    for n in range(7):
        _enqueue(session, f"limit:{n}")
    session.commit()
    result = send_due(session, _settings(app, batch_limit=5, batch_seconds=60.0))
    assert (result.sent, result.out_of_time) == (5, False)
    assert len(smtp_server.messages) == 5
