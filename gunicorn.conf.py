"""gunicorn settings for a web node: `gunicorn -c gunicorn.conf.py wsgi:app` (`make serve`).

Each setting can be overridden by the environment variable named beside it. Several
nodes run this same file behind one proxy, sharing PostgreSQL, Redis (sign-in limits)
and the evidence directory; see "Deploying on several machines" in the README.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

# Where to listen: BIND wins; else PORT (as platforms set it) on HOST (default 127.0.0.1:
# put a proxy in front; use HOST=0.0.0.0 only where a firewall allows just the proxy).
bind = os.environ.get("BIND") or (
    f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
)
# Synchronous workers: WEB_CONCURRENCY of them (default 2: one per core here). Threads
# stay at 1: SQLAlchemy sessions are per request context, and sync workers are simplest.
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "sync"
# A request (a bundle PDF render, a register import) must finish within this many seconds
# or its worker is restarted; the proxy's read timeout should be a little longer.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
# Above the proxy's idle timeout is not needed behind nginx (it does not reuse upstream
# connections by default); a few seconds lets a load balancer that does reuse them.
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
# Restart each worker after this many requests (with jitter), bounding any slow leak.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "2000"))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", "200"))

# Behind a proxy: the addresses whose X-Forwarded-For/-Proto gunicorn believes (the
# proxy's own address, comma-separated, or "*" only when nothing else can reach this
# port). The client address feeds the sign-in throttling per address, and the scheme
# the secure-cookie and redirect logic, so never trust a header from anyone else.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

# Logs: the app writes one access line per request itself (logger "licensing.access",
# with the request id, endpoint, status and duration, and never the query string), so
# gunicorn's own access log is off. gunicorn's error log goes to stderr in the same JSON
# lines when LOG_FORMAT is json (the production default).
accesslog = None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
_json_logs = (
    os.environ.get("LOG_FORMAT")
    or ("json" if os.environ.get("LICENSING_ENV") == "production" else "text")
).lower() == "json"
if _json_logs:
    # One handler, on the root logger, for gunicorn's error log and the app alike (the
    # app finds it and does not add another). gunicorn's access logger is silenced: the
    # app's "licensing.access" line replaces it.
    logconfig_dict: dict[str, Any] = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "licensing.observability.JsonFormatter"}},
        "filters": {"request": {"()": "licensing.observability.RequestContextFilter"}},
        "handlers": {
            "json_console": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "filters": ["request"],
                "stream": "ext://sys.stderr",
            },
        },
        "root": {"level": "INFO", "handlers": ["json_console"]},
        "loggers": {
            "gunicorn.error": {"level": loglevel.upper(), "handlers": [], "propagate": True},
            "gunicorn.access": {"level": "CRITICAL", "handlers": [], "propagate": False},
        },
    }

# Prometheus metrics from every worker: prometheus_client's multiprocess mode keeps each
# worker's counters in files under PROMETHEUS_MULTIPROC_DIR, and a scrape answered by any
# worker sums them. Set it to a directory of this node only (not the shared mount); when
# unset, one is made here. It is emptied when gunicorn starts, as the client requires.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="licensing-metrics-")


def on_starting(server: Any) -> None:
    """Empty the metrics directory: files left by an earlier run would be summed in.
    Only prometheus_client's own files (*.db) are removed."""
    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(directory, mode=0o700, exist_ok=True)
    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        if name.endswith(".db") and os.path.isfile(path):
            os.remove(path)


def child_exit(server: Any, worker: Any) -> None:
    """Let prometheus_client tidy a dead worker's live-gauge files."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
