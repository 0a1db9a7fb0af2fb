"""Send the outbox's due emails over SMTP and record each result."""

from __future__ import annotations

import logging
import os
import smtplib
import socket
import ssl
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.charset import QP, Charset
from email.header import Header
from email.message import EmailMessage, Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime
from typing import Any

from sqlalchemy.orm import Session

from licensing.db import utcnow
from licensing.notifications import outbox
from licensing.notifications.models import OutboxEmail

log = logging.getLogger(__name__)

TLS_MODES = ("none", "starttls", "ssl")
DEFAULT_BATCH_LIMIT = 1000  # emails per pass when the configuration does not say
DEFAULT_BATCH_SECONDS = 20.0


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to send: SMTP_* and MAIL_FROM from the app's configuration."""

    host: str = "localhost"
    port: int = 1025
    username: str | None = None
    password: str | None = None
    tls: str = "none"
    timeout: float = 10.0
    mail_from: str = "licensing@localhost"
    max_attempts: int = outbox.DEFAULT_MAX_ATTEMPTS
    lease: timedelta = outbox.DEFAULT_LEASE
    # One pass sends at most this many emails, and claims no more once this many seconds
    # have gone: a burst of alerts drains at the relay's pace, not 50 a minute, and the
    # minutely sweep still ends well inside its minute.
    batch_limit: int = 50
    batch_seconds: float = DEFAULT_BATCH_SECONDS

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SmtpSettings:
        """Read the settings (environment values arrive as strings)."""
        tls = str(config.get("SMTP_TLS") or "none").lower()
        if tls not in TLS_MODES:
            raise ValueError(f"SMTP_TLS must be one of {', '.join(TLS_MODES)}, not {tls!r}")
        return cls(
            host=str(config.get("SMTP_HOST") or "localhost"),
            port=int(config.get("SMTP_PORT") or 1025),
            username=config.get("SMTP_USERNAME") or None,
            password=config.get("SMTP_PASSWORD") or None,
            tls=tls,
            timeout=float(config.get("SMTP_TIMEOUT") or 10),
            mail_from=str(config.get("MAIL_FROM") or "licensing@localhost"),
            max_attempts=int(config.get("OUTBOX_MAX_ATTEMPTS") or outbox.DEFAULT_MAX_ATTEMPTS),
            lease=timedelta(
                seconds=int(
                    config.get("OUTBOX_LEASE_SECONDS") or outbox.DEFAULT_LEASE.total_seconds()
                )
            ),
            batch_limit=int(config.get("OUTBOX_SEND_BATCH") or DEFAULT_BATCH_LIMIT),
            batch_seconds=float(config.get("OUTBOX_SEND_SECONDS") or DEFAULT_BATCH_SECONDS),
        )


@dataclass
class SendResult:
    """What one pass of the sender did."""

    sent: int = 0
    retrying: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    out_of_time: bool = False  # stopped by the time bound with emails perhaps still due


# Bodies as quoted-printable UTF-8: readable in a mail log, and 7-bit safe.
_UTF8_QP = Charset("utf-8")
_UTF8_QP.body_encoding = QP


def build_message(email: OutboxEmail, settings: SmtpSettings, now: datetime) -> Message:
    """The MIME message of an outbox row: plain text with an HTML alternative.

    Built with the `email.mime` classes (the compat32 policy) rather than EmailMessage,
    whose header parsing took about 3 ms an email, more than the SMTP exchange itself;
    addresses that are not ASCII still go through EmailMessage, which encodes them."""
    if not (email.recipient.isascii() and settings.mail_from.isascii()):
        return _build_email_message(email, settings, now)
    message = MIMEMultipart("alternative")
    message["From"] = settings.mail_from
    message["To"] = email.recipient
    # A subject that is not ASCII is encoded (RFC 2047), as EmailMessage would.
    subject: Any = email.subject if email.subject.isascii() else Header(email.subject, "utf-8")
    message["Subject"] = subject
    message["Date"] = format_datetime(now)
    message["Message-ID"] = email.message_id
    message.attach(MIMEText(email.text_body, "plain", _UTF8_QP))  # type: ignore[arg-type]
    message.attach(MIMEText(email.html_body, "html", _UTF8_QP))  # type: ignore[arg-type]
    return message


def _build_email_message(email: OutboxEmail, settings: SmtpSettings, now: datetime) -> Message:
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = email.recipient
    message["Subject"] = email.subject
    message["Date"] = format_datetime(now)
    message["Message-ID"] = email.message_id
    message.set_content(email.text_body)
    message.add_alternative(email.html_body, subtype="html")
    return message


def connect(settings: SmtpSettings) -> smtplib.SMTP:
    """Open an SMTP connection as configured (plain, STARTTLS or implicit TLS)."""
    client: smtplib.SMTP
    if settings.tls == "ssl":
        client = smtplib.SMTP_SSL(
            settings.host,
            settings.port,
            timeout=settings.timeout,
            context=ssl.create_default_context(),
        )
    else:
        client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
        if settings.tls == "starttls":
            client.starttls(context=ssl.create_default_context())
    if settings.username:
        client.login(settings.username, settings.password or "")
    return client


def _permanent(error: Exception) -> bool:
    # A 5xx refusal of the recipient will not change on retry; anything else might.
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return all(500 <= code < 600 for code, _ in error.recipients.values())
    return False


def worker_name() -> str:
    """A name for this sender, unique per call: host, process and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"[:100]


def send_due(
    session: Session,
    settings: SmtpSettings,
    *,
    now: datetime | None = None,
    limit: int | None = None,
    seconds: float | None = None,
    worker: str | None = None,
) -> SendResult:
    """Send up to `limit` due emails (default: the settings' batch limit) over one SMTP
    connection, recording each result, and claim no more once `seconds` (default: the
    settings' batch seconds) have gone by; what is left waits for the next pass.

    Emails are claimed one at a time, just before each is sent, and each result is
    committed as soon as it is known, in the same commit as the next email's claim (one
    commit an email): a process killed mid-pass leaves only the email in flight claimed
    (the lease then resends it, with the same Message-ID); the rest are still due for
    the next pass. (Claiming the whole batch up front left all of it stranded until the
    lease ran out, and made the lease cover the slowest batch.) The clock runs on from
    `now` while the pass takes, so each claim, result and backoff is timed when it
    happens.
    """
    started = utcnow()
    start = now or started
    worker = worker or worker_name()
    limit = settings.batch_limit if limit is None else limit
    budget = settings.batch_seconds if seconds is None else seconds
    stop_claiming = time.monotonic() + budget
    result = SendResult()
    client: smtplib.SMTP | None = None
    session.commit()  # start from a clean transaction: it carries only results and claims
    tried = False  # at least one email is tried, however slow the first
    try:
        for _ in range(limit):
            if tried and time.monotonic() >= stop_claiming:
                result.out_of_time = True
                break
            current = start + (utcnow() - started)
            # Commits the previous email's result too (see `outbox.record_sent` below).
            claimed = outbox.claim_with_commit(
                session, worker, now=current, limit=1, lease=settings.lease
            )
            if not claimed:
                break
            [email] = claimed
            tried = True
            try:
                if client is None:
                    client = connect(settings)
                client.send_message(build_message(email, settings, current))
            except (smtplib.SMTPException, OSError) as error:
                text = f"{type(error).__name__}: {error}"
                permanent = _permanent(error)
                outbox.mark_failed(
                    session,
                    email,
                    worker,
                    current,
                    text,
                    permanent=permanent,
                    max_attempts=settings.max_attempts,
                )
                log.warning("email %s to %s not sent: %s", email.id, email.recipient, text)
                result.errors.append(text)
                if permanent or email.attempts + 1 >= settings.max_attempts:
                    result.failed += 1
                else:
                    result.retrying += 1
                if not isinstance(error, smtplib.SMTPRecipientsRefused) and client is not None:
                    # The connection may be broken: open a fresh one for the next email.
                    _close(client)
                    client = None
                continue
            outbox.record_sent(session, email, worker, current)
            result.sent += 1
        session.commit()  # the last result (the others went with the next claim)
    finally:
        if client is not None:
            _close(client)
    return result


def _close(client: smtplib.SMTP) -> None:
    try:
        client.quit()
    except (smtplib.SMTPException, OSError):
        client.close()
