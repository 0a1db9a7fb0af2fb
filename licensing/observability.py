"""Running on several machines (issue #8): a request id, JSON logs and Prometheus metrics.

Every request gets an id: a well-formed incoming `X-Request-ID` (a proxy's) or a new
one. It is kept in `g.request_id`, added to every log record written while the request
runs, and sent back in the response's `X-Request-ID` header, so one line of a proxy's
log leads to every line this app wrote for it, on whichever node served it.

With `LOG_FORMAT=json` (the production default) the app logs one JSON object a line to
stderr. The access line (logger `licensing.access`, one per request) carries the method,
the path without its query string (which may hold personal data: a search for a name),
the status and the time taken; a path's secret (a reset link's or a calendar feed's
token) is blanked. Form bodies are never logged.

`/metrics` speaks Prometheus' text format, behind a bearer token (`METRICS_TOKEN`; with
none configured it answers 404). Request counts and latencies are labelled by endpoint
name, never by raw path, so their number is bounded. The outbox depth and the age of the
scheduler's last successful run are read from the database at each scrape, so every node
reports the same figures. Under gunicorn with several workers, set
`PROMETHEUS_MULTIPROC_DIR` (gunicorn.conf.py does) so that a scrape of any worker sums
the counters of all of them.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import re
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Flask, Response, abort, current_app, g, has_request_context, request
from flask.typing import ResponseReturnValue
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from licensing.db import get_session, utcnow

REQUEST_ID_HEADER = "X-Request-ID"
# A proxy's id is taken only if it is short and plain: anything else could forge log
# lines or carry data, and is replaced by our own.
_WELL_FORMED_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{8,128}")
ACCESS_LOGGER = "licensing.access"
LOG_FORMATS = ("json", "text")
# The fields a log record may carry beyond the standard ones, in the order they print.
_REQUEST_FIELDS = ("request_id", "method", "path", "status", "duration_ms", "endpoint")

log = logging.getLogger(__name__)


# ---- the request id -----------------------------------------------------------------------


def request_id_from(incoming: str | None) -> str:
    """The incoming id if it is well formed, else a new random one (32 hex digits)."""
    if incoming and _WELL_FORMED_REQUEST_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


def current_request_id() -> str | None:
    """The id of the request being served, if any."""
    if has_request_context():
        return g.get("request_id")
    return None


def loggable_path() -> str:
    """The request's path without its query string, with any token in it blanked (a
    password reset link's, a calendar feed's: they would open an account or a diary)."""
    path = request.path
    for name, value in (request.view_args or {}).items():
        if "token" in name and isinstance(value, str) and value:
            path = path.replace(value, "[redacted]")
    return path


# ---- JSON logs ----------------------------------------------------------------------------


class RequestContextFilter(logging.Filter):
    """Puts the current request's id, method and path on every record written while it
    is served (records from any logger, if the filter is on the handler)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Add the request's fields the record does not already carry; never drop it."""
        if has_request_context() and not hasattr(record, "request_id"):
            record.request_id = g.get("request_id")
            record.method = request.method
            record.path = loggable_path()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, the request's
    fields when there are any, and the exception's traceback if one is attached."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in _REQUEST_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def log_format(app: Flask) -> str:
    """The configured LOG_FORMAT: json or text (anything else is refused at start)."""
    value = str(app.config.get("LOG_FORMAT") or "text").lower()
    if value not in LOG_FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {value!r}")
    return value


def install_json_logging(stream: Any = None, level: int = logging.INFO) -> logging.Handler:
    """Send the root logger's records to `stream` (stderr) as JSON lines, once per
    process: a second app in the same process reuses the handler."""
    root = logging.getLogger()
    for handler in root.handlers:
        if isinstance(handler.formatter, JsonFormatter):
            return handler
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestContextFilter())
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > level:
        root.setLevel(level)
    return handler


# ---- metrics ------------------------------------------------------------------------------

# Process-wide (one set per worker; summed over workers in multiprocess mode). Labels are
# endpoint names (a bounded set), never raw paths.
REQUESTS = Counter(
    "licensing_http_requests",
    "HTTP requests served, by endpoint, method and status",
    ("endpoint", "method", "status"),
)
LATENCY = Histogram(
    "licensing_http_request_duration_seconds",
    "Time to serve a request, by endpoint",
    ("endpoint",),
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)


class DatabaseCollector(Collector):
    """Figures read from the database at each scrape, so every node reports the same:
    the outbox by status, the seconds since each scheduler job last succeeded, and how
    many bundles and import runs there have been."""

    def collect(self) -> Iterator[Metric]:
        """Query the database now; yields nothing for a figure it cannot read."""
        from licensing.evidence.models import Bundle
        from licensing.incidents.models import IncidentImportRun
        from licensing.notifications.models import STATUSES, OutboxEmail
        from licensing.notifications.scheduler_runs import last_successes
        from licensing.premises.models import RegisterImportRun

        session = get_session()
        try:
            depth = dict(
                session.execute(
                    select(OutboxEmail.status, func.count()).group_by(OutboxEmail.status)
                ).all()
            )
            runs = last_successes(session)
            bundles = session.scalar(select(func.count()).select_from(Bundle)) or 0
            register_runs = session.scalar(select(func.count()).select_from(RegisterImportRun)) or 0
            incident_runs = session.scalar(select(func.count()).select_from(IncidentImportRun)) or 0
        except SQLAlchemyError:
            log.exception("metrics: the database did not answer")
            session.rollback()
            return
        outbox = GaugeMetricFamily(
            "licensing_outbox_emails", "Emails in the outbox, by status", labels=("status",)
        )
        for status in STATUSES:
            outbox.add_metric((status,), int(depth.get(status, 0)))
        yield outbox
        age = GaugeMetricFamily(
            "licensing_scheduler_seconds_since_success",
            "Seconds since each scheduler job last finished without error "
            '(job="sweep" is the minute tick: alerts, then the outbox)',
            labels=("job",),
        )
        now = utcnow()
        for job, when in sorted(runs.items()):
            age.add_metric((job,), max(0.0, (now - when).total_seconds()))
        yield age
        yield GaugeMetricFamily(
            "licensing_bundles", "Evidence bundles built (every version)", value=bundles
        )
        imports = GaugeMetricFamily(
            "licensing_import_runs", "Import runs recorded, by kind", labels=("kind",)
        )
        imports.add_metric(("register",), register_runs)
        imports.add_metric(("incidents",), incident_runs)
        yield imports


def _process_metrics() -> bytes:
    """This process's request metrics, or every worker's in multiprocess mode."""
    multiproc_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if multiproc_dir:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=multiproc_dir)
        return generate_latest(registry)
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY)


def render_metrics() -> bytes:
    """The whole scrape: request metrics, then the database's figures."""
    database = CollectorRegistry(auto_describe=False)
    database.register(DatabaseCollector())
    return _process_metrics() + generate_latest(database)


def bearer_token_matches(header: str | None, expected: str) -> bool:
    """Whether an Authorization header carries `expected` as its bearer token, compared
    in constant time."""
    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return False
    return hmac.compare_digest(token.strip().encode(), expected.encode())


metrics_bp = Blueprint("metrics", __name__)


@metrics_bp.get("/metrics")
def metrics() -> ResponseReturnValue:
    """Prometheus metrics for a scraper holding METRICS_TOKEN; 404 when no token is set
    (so the route says nothing of itself), 401 for a missing or wrong token."""
    expected = str(current_app.config.get("METRICS_TOKEN") or "")
    if not expected:
        abort(404)
    if not bearer_token_matches(request.headers.get("Authorization"), expected):
        response = Response("Unauthorised\n", status=401, mimetype="text/plain")
        response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return Response(render_metrics(), mimetype=CONTENT_TYPE_LATEST)


# ---- wiring -------------------------------------------------------------------------------


def _endpoint_label() -> str:
    # Unmatched paths share one label, so a scan of random URLs cannot grow the series.
    return request.url_rule.endpoint if request.url_rule is not None else "unmatched"


def init_app(app: Flask) -> None:
    """Give each request its id and, as it ends, its access line, metrics and header.
    Register before every other before_request hook, so their logs carry the id."""
    if log_format(app) == "json":
        install_json_logging()
    access_log = logging.getLogger(ACCESS_LOGGER)

    @app.before_request
    def _start_request() -> None:
        g.request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))
        g.request_started = time.perf_counter()

    @app.after_request
    def _finish_request(response: Response) -> Response:
        request_id = g.get("request_id") or request_id_from(None)
        response.headers[REQUEST_ID_HEADER] = request_id
        started = g.get("request_started")
        seconds = time.perf_counter() - started if started is not None else 0.0
        endpoint = _endpoint_label()
        REQUESTS.labels(endpoint, request.method, str(response.status_code)).inc()
        LATENCY.labels(endpoint).observe(seconds)
        path = loggable_path()
        access_log.info(
            "%s %s %s",
            request.method,
            path,
            response.status_code,
            extra={
                "request_id": request_id,
                "method": request.method,
                "path": path,
                "status": response.status_code,
                "duration_ms": round(seconds * 1000, 1),
                "endpoint": endpoint,
            },
        )
        return response


def access_lines(text: str) -> Iterable[dict[str, Any]]:
    """The access lines in JSON log text (for tests and for reading a node's log)."""
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("logger") == ACCESS_LOGGER:
            yield entry
