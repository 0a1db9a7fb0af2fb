"""Two web nodes and two schedulers on one PostgreSQL (issue #8), as real processes.

Two gunicorn instances (two workers each) on loopback ports and two `licensing scheduler
run` processes share one PostgreSQL database (made and dropped here, built by the real
migrations), one Redis for sign-in limits, one evidence directory and one SMTP server
(aiosmtpd). The test signs in on each node, writes on one and reads on the other, uploads
an attachment through one and downloads it through the other, and SIGKILLs the active
scheduler while it is sending: the standby takes the lock and every email still arrives,
none twice except the one in flight. It also reads the nodes' JSON logs and `/metrics`.

PostgreSQL only (`make test-postgres`): SQLite is one machine's file.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from licensing import create_app
from licensing.auth.services import create_authority, create_user
from licensing.cli import upgrade_database
from licensing.db import get_session
from licensing.evidence.models import Attachment
from licensing.incidents.models import Incident
from licensing.notifications import outbox
from licensing.notifications.models import OutboxEmail
from licensing.observability import access_lines
from licensing.premises import services as premises_services
from licensing.premises.models import Premises
from tests.conftest import ON_POSTGRES, PASSWORD, TEST_DATABASE_URL, csrf_from, record_evidence
from tests.smtp_support import Inbox, SmtpServer

# The nodes share one Redis for sign-in limits, as production's do. A run without one
# fails rather than passing by skipping; TEST_REDIS_URL=none leaves the test out on
# purpose (a machine with PostgreSQL and no Redis).
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
pytestmark = [
    pytest.mark.skipif(
        not ON_POSTGRES,
        reason="the multi-node test needs PostgreSQL (TEST_DATABASE_URL): "
        "nodes share one database server, which SQLite is not",
    ),
    pytest.mark.skipif(REDIS_URL == "none", reason="TEST_REDIS_URL=none: no shared Redis"),
]

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
METRICS_TOKEN = "multinode-metrics-token-0123456789"  # noqa: S105 - a test value
SECRET_KEY = "multinode-shared-secret-key-0123456789"  # noqa: S105 - a test value
EMAILS = 16
LEASE_SECONDS = 3
log = logging.getLogger("licensing.tests.multinode")


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `check` until it is true, failing after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


class SlowInbox(Inbox):
    """Keeps each message, then takes `delay` seconds before its 250 reply: a scheduler
    killed meanwhile has delivered the message without recording it (the in-flight one)."""

    delay = 0.3

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        """Keep the message, wait, accept."""
        reply = await super().handle_DATA(server, session, envelope)
        await asyncio.sleep(self.delay)
        return reply


# ---- the shared services ------------------------------------------------------------------


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    """A database of its own on the test server, migrated, dropped at the end."""
    server = make_url(TEST_DATABASE_URL)
    name = f"licensing_multinode_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = server.set(database=name).render_as_string(hide_password=False)
        upgrade_database(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture(scope="module")
def redis_url() -> str:
    """The Redis every node counts sign-in attempts in (fails if none answers)."""
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping()
    except redis.RedisError:
        pytest.fail(
            f"no Redis answering at {REDIS_URL}: start one, point TEST_REDIS_URL at one,"
            " or set TEST_REDIS_URL=none to leave the multi-node test out"
        )
    return REDIS_URL


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    """One SMTP server for both schedulers, slow to reply."""
    server = SmtpServer()
    server.inbox = SlowInbox()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class World:
    """What the seed made: ids and addresses."""

    officer_email: str
    supervisor_email: str
    premises_id: int
    incident_id: int
    dedupe_keys: list[str]


def seed(database_url: str, evidence_dir: Path) -> World:
    """Users, a premises with an incident, and due emails, through the domain services."""
    app = create_app(
        {"ENV_NAME": "testing", "DATABASE_URL": database_url, "EVIDENCE_DIR": str(evidence_dir)}
    )
    try:
        with app.app_context():
            session = get_session()
            liv = create_authority(session, "LIV", "Liverpool City Council")
            # Fresh addresses each run: Redis keeps sign-in counts between runs.
            run = uuid.uuid4().hex[:8]
            officer = create_user(
                session, f"pc.{run}@police.example", "Node Officer", "officer", PASSWORD
            )
            supervisor = create_user(
                session, f"sgt.{run}@police.example", "Node Sergeant", "supervisor", PASSWORD
            )
            premises = premises_services.add_premises(
                session, officer, liv, "PL/7001", {"name": "The Two Nodes"}
            )
            record_evidence(session, premises)
            incident_id = session.scalars(select(Incident.id)).one()
            keys = [f"multinode:{n}" for n in range(EMAILS)]
            for n, key in enumerate(keys):
                outbox.enqueue(
                    session,
                    recipient=supervisor.email,
                    subject=f"Alert {n}",
                    text=f"Alert number {n}",
                    html=f"<p>Alert number {n}</p>",
                    dedupe_key=key,
                )
            session.commit()
            return World(officer.email, supervisor.email, premises.id, incident_id, keys)
    finally:
        app.extensions["db_engine"].dispose()


# ---- the processes ------------------------------------------------------------------------


@dataclass
class Process:
    """A started process and the file its output goes to."""

    name: str
    popen: subprocess.Popen[bytes]
    output: Path

    def text(self) -> str:
        """Everything it has written so far."""
        return self.output.read_text(encoding="utf-8", errors="replace")


class Cluster:
    """Starts processes with a common environment and always stops them."""

    def __init__(self, tmp: Path, env: dict[str, str]) -> None:
        self.tmp = tmp
        self.env = env
        self.processes: list[Process] = []

    def start(self, name: str, argv: list[str], **extra: str) -> Process:
        """Start `argv` with the shared environment plus `extra`, output to a file."""
        output = self.tmp / f"{name}.log"
        with output.open("wb") as sink:
            popen = subprocess.Popen(  # noqa: S603 - our own programs, fixed arguments
                argv,
                env={**self.env, **extra},
                cwd=ROOT,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: gunicorn's workers go with it
            )
        process = Process(name, popen, output)
        self.processes.append(process)
        return process

    def stop_all(self) -> None:
        """SIGTERM every process group still running, then SIGKILL what remains."""
        for process in self.processes:
            if process.popen.poll() is None:
                os.killpg(process.popen.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.popen.pid, signal.SIGKILL)
                process.popen.wait(timeout=10)
        # What they wrote joins the run's log scan (tests/log_scan.py): no personal value,
        # password or token may be in it.
        for process in self.processes:
            log.debug("output of %s:\n%s", process.name, process.text())


@pytest.fixture
def cluster(
    database_url: str, redis_url: str, smtp: SmtpServer, tmp_path: Path
) -> Iterator[Cluster]:
    """The environment every node and scheduler shares; processes stopped at the end."""
    evidence = tmp_path / "shared-evidence"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("FLASK_", "PROMETHEUS_"))},
        "LICENSING_ENV": "development",
        "SECRET_KEY": SECRET_KEY,
        "DATABASE_URL": database_url,
        "EVIDENCE_DIR": str(evidence),
        "RATELIMIT_STORAGE_URI": redis_url,
        "SMTP_HOST": smtp.host,
        "SMTP_PORT": str(smtp.port),
        "SMTP_TLS": "none",
        "OUTBOX_LEASE_SECONDS": str(LEASE_SECONDS),
        "LOG_FORMAT": "json",
        "METRICS_TOKEN": METRICS_TOKEN,
        "PYTHONUNBUFFERED": "1",
    }
    running = Cluster(tmp_path, env)
    try:
        yield running
    finally:
        running.stop_all()


def start_node(cluster: Cluster, name: str) -> str:
    """A gunicorn web node with two workers; its base URL."""
    port = free_port()
    metrics_dir = cluster.tmp / f"{name}-metrics"
    metrics_dir.mkdir()
    cluster.start(
        name,
        [str(BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"), "wsgi:app"],
        BIND=f"127.0.0.1:{port}",
        WEB_CONCURRENCY="2",
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
    )
    return f"http://127.0.0.1:{port}"


def ready(base: str) -> bool:
    """Whether the node answers /readyz with 200."""
    try:
        return requests.get(f"{base}/readyz", timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


def signed_in(base: str, email: str) -> requests.Session:
    """A browser session signed in through the node's real form."""
    browser = requests.Session()
    page = browser.get(f"{base}/sign-in", timeout=10)
    response = browser.post(
        f"{base}/sign-in",
        data={"email": email, "password": PASSWORD, "csrf_token": csrf_from(page.text)},
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 302, response.text[:300]
    return browser


def form_token(browser: requests.Session, url: str) -> tuple[str, str]:
    """The page's CSRF token and its HTML."""
    page = browser.get(url, timeout=10)
    assert page.status_code == 200, (url, page.status_code)
    return csrf_from(page.text), page.text


def received_ids(server: SmtpServer) -> list[str]:
    """The Message-ID of every message the SMTP server kept, repeats included."""
    return [str(message["Message-ID"]) for message in server.messages]


# ---- the test -----------------------------------------------------------------------------


def test_two_nodes_and_two_schedulers_share_one_database(
    cluster: Cluster, database_url: str, smtp: SmtpServer, tmp_path: Path
) -> None:
    world = seed(database_url, tmp_path / "shared-evidence")
    node_a = start_node(cluster, "node-a")
    node_b = start_node(cluster, "node-b")
    licensing = str(BIN / "licensing")
    schedulers = [
        cluster.start(name, [licensing, "scheduler", "run"]) for name in ("sched-1", "sched-2")
    ]

    # ---- one scheduler is active, the other a standby; the active one starts sending
    def roles() -> dict[str, Process]:
        found = {}
        for process in schedulers:
            output = process.text()
            if "Scheduler active" in output:
                found["active"] = process
            elif "waiting as a standby" in output:
                found["standby"] = process
        return found

    wait_until(lambda: len(roles()) == 2, 30, "one active scheduler and one standby")
    active, standby = roles()["active"], roles()["standby"]
    wait_until(lambda: len(smtp.messages) >= 4, 30, "the active scheduler to send")
    active.popen.send_signal(signal.SIGKILL)  # mid-batch: one message awaits its reply
    active.popen.wait(timeout=10)
    assert len(smtp.messages) < EMAILS, "the batch finished before the kill"

    # ---- meanwhile the web nodes: both ready, sharing one database and one store
    wait_until(lambda: ready(node_a) and ready(node_b), 30, "both web nodes to be ready")
    on_a = signed_in(node_a, world.officer_email)
    on_b = signed_in(node_b, world.officer_email)

    token, _ = form_token(on_a, f"{node_a}/premises/new")
    created = on_a.post(
        f"{node_a}/premises/new",
        data={
            "csrf_token": token,
            "authority": "LIV",
            "licence_number": "PL/7002",
            "name": "The Load Balancer",
            "licence_status": "current",
            "case_officer_id": "",
        },
        allow_redirects=False,
        timeout=10,
    )
    assert created.status_code == 302, created.text[:500]
    new_id = int(re.search(r"/premises/(\d+)$", created.headers["Location"]).group(1))  # type: ignore[union-attr]
    shown_on_b = on_b.get(f"{node_b}/premises/{new_id}", timeout=10)
    assert shown_on_b.status_code == 200 and "The Load Balancer" in shown_on_b.text

    token, page = form_token(on_b, f"{node_b}/premises/{new_id}/edit")
    version = re.search(r'name="version" type="hidden" value="(\d+)"', page) or re.search(
        r'name="version" value="(\d+)"', page
    )
    assert version, "no version field on the edit page"
    edited = on_b.post(
        f"{node_b}/premises/{new_id}/edit",
        data={
            "csrf_token": token,
            "version": version.group(1),
            "name": "The Load Balancer Arms",
            "licence_status": "current",
            "case_officer_id": "",
            "reason": "Renamed, seen on the licence",
        },
        allow_redirects=False,
        timeout=10,
    )
    assert edited.status_code == 302, edited.text[:500]
    for browser, base in ((on_a, node_a), (on_b, node_b)):
        assert "The Load Balancer Arms" in browser.get(f"{base}/premises/{new_id}").text
        listing = browser.get(f"{base}/premises", timeout=10).text
        assert "The Load Balancer Arms" in listing and "The Two Nodes" in listing

    # An attachment uploaded through node A downloads byte for byte through node B.

    from PIL import Image

    image = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 40, 40)).save(image, "PNG")
    photo = image.getvalue()
    token, _ = form_token(on_a, f"{node_a}/incidents/{world.incident_id}/attachments")
    uploaded = on_a.post(
        f"{node_a}/incidents/{world.incident_id}/attachments",
        data={"attachment-csrf_token": token, "attachment-description": "CCTV still, bar area"},
        files={"attachment-file": ("still.png", photo, "image/png")},
        allow_redirects=False,
        timeout=20,
    )
    assert uploaded.status_code == 302, uploaded.text[:500]
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            attachment_id = conn.scalar(select(func.max(Attachment.id)))
        downloaded = on_b.get(f"{node_b}/attachments/{attachment_id}", timeout=10)
        assert downloaded.status_code == 200
        assert downloaded.content == photo

        # ---- the standby took over and every email arrived, none twice but the one in flight
        wait_until(lambda: "Scheduler active" in standby.text(), 20, "the standby to take over")
        expected = {outbox.message_id_for(key) for key in world.dedupe_keys}
        wait_until(lambda: set(received_ids(smtp)) == expected, 30, "every email to arrive")
        time.sleep(0.5)  # a repeat beyond the one in flight would show now
        ids = received_ids(smtp)
        assert len(ids) - len(expected) <= 1, "an email went twice beyond the one in flight"
        with engine.connect() as conn:
            statuses = dict(
                conn.execute(
                    select(OutboxEmail.status, func.count()).group_by(OutboxEmail.status)
                ).all()
            )
            titles = set(conn.scalars(select(Premises.name)))
    finally:
        engine.dispose()
    # The one in flight stays claimed by the dead scheduler until its lease, if the
    # standby's catch-up pass came before it ran out.
    assert statuses.get("sent", 0) >= EMAILS - 1 and set(statuses) <= {"sent", "sending"}
    assert "The Load Balancer Arms" in titles
    assert standby.popen.poll() is None  # the standby runs on as the active scheduler

    # ---- metrics: every worker's requests in one scrape; the database's figures
    probe_count = 12
    for _ in range(probe_count):  # fresh connections, spread over node A's workers
        assert requests.get(f"{node_a}/healthz", timeout=5).status_code == 200
    assert requests.get(f"{node_a}/metrics", timeout=5).status_code == 401
    scraped = requests.get(
        f"{node_a}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10
    )
    assert scraped.status_code == 200
    healthz = re.search(
        r'^licensing_http_requests_total\{endpoint="health.healthz",method="GET",status="200"\} '
        r"(\S+)$",
        scraped.text,
        re.MULTILINE,
    )
    assert healthz and float(healthz.group(1)) == probe_count, scraped.text[:2000]
    assert re.search(r'^licensing_outbox_emails\{status="created"\} 0\.0$', scraped.text, re.M)
    sweep_age = re.search(
        r'^licensing_scheduler_seconds_since_success\{job="sweep"\} (\S+)$', scraped.text, re.M
    )
    assert sweep_age and float(sweep_age.group(1)) < 60

    # ---- logs: JSON lines with request ids; never a query string
    traced = requests.get(
        f"{node_b}/readyz?probe=query-must-not-be-logged",
        headers={"X-Request-ID": "multinode-trace-0001"},
        timeout=5,
    )
    assert traced.headers["X-Request-ID"] == "multinode-trace-0001"
    node_b_log = cluster.processes[1]
    wait_until(lambda: "multinode-trace-0001" in node_b_log.text(), 10, "node B's access line")
    lines = list(access_lines(node_b_log.text()))
    assert lines and all(line["request_id"] and "?" not in line["path"] for line in lines)
    [trace] = [line for line in lines if line["request_id"] == "multinode-trace-0001"]
    assert (trace["path"], trace["status"], trace["endpoint"]) == ("/readyz", 200, "health.readyz")
    assert "query-must-not-be-logged" not in node_b_log.text()
