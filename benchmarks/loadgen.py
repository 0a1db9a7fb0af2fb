"""An open-loop HTTP load generator, small and written by hand.

Why by hand: a closed-loop tool (`wrk`, `ab`, a loop of `requests`) sends the next request
only when a connection is free, so when the server slows down it sends fewer requests and
the slow period is under-sampled (coordinated omission): the latency it reports is too
good exactly when it matters. Python has no well-kept open-loop generator, so this is one.

How: a pacing thread releases request i at start + i / rate, whatever the responses do,
to a pool of worker threads, each with its own `http.client` connection (kept alive when
the server allows it: gunicorn's sync workers close it after each response, and
http.client then reconnects). Latency is measured from the scheduled send time, not
from when a worker got round to it, so time spent waiting for a free worker or in the
server's accept queue is counted. Any status but 200 is an error, and so is a request
not answered within the timeout. At the rates used here (tens to a few hundred a second)
one Python process keeps to the schedule; the report says how late the sends were.

Run alone it prints one JSON object:

    .venv/bin/python benchmarks/loadgen.py --url http://127.0.0.1:8000/ --rate 20 \\
        --duration 20 [--header "Cookie: session=..."] [--connections 32]
"""

from __future__ import annotations

import argparse
import http.client
import json
import queue
import sys
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import percentile  # noqa: E402


@dataclass
class LoadResult:
    """What one open-loop run saw. Latencies in ms from each request's scheduled time."""

    url: str
    offered_rate: float
    duration_s: float
    scheduled: int = 0
    completed: int = 0
    ok: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    achieved_rate: float = 0.0
    # How late the pacing thread itself released requests (its own lag, p99), so that a
    # generator that could not keep up is visible.
    pacing_lag_p99_ms: float = 0.0

    @property
    def error_count(self) -> int:
        """Requests that got no 200."""
        return sum(self.errors.values())


def open_loop(
    url: str,
    rate: float,
    duration: float,
    headers: dict[str, str] | None = None,
    connections: int = 32,
    timeout: float = 10.0,
) -> LoadResult:
    """Offer GET `url` at `rate` requests a second for `duration` seconds, open loop."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    sends: queue.Queue[float | None] = queue.Queue()
    lock = threading.Lock()
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    lags: list[float] = []
    last_done = [0.0]
    total = max(int(rate * duration), 1)

    def worker() -> None:
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
        while True:
            due = sends.get()
            if due is None:
                break
            try:
                connection.request("GET", path, headers=headers or {})
                response = connection.getresponse()
                response.read()
                outcome = str(response.status)
                if response.will_close:
                    connection.close()
            except (OSError, http.client.HTTPException) as error:
                outcome = type(error).__name__
                connection.close()
            done = time.perf_counter()
            with lock:
                latencies.append((done - due) * 1000)
                statuses[outcome] += 1
                last_done[0] = max(last_done[0], done)
        connection.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(connections)]
    for thread in threads:
        thread.start()
    start = time.perf_counter() + 0.05
    for i in range(total):
        due = start + i / rate
        wait = due - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        lags.append(max(time.perf_counter() - due, 0.0) * 1000)
        sends.put(due)
    for _ in threads:
        sends.put(None)
    deadline = time.perf_counter() + timeout + 5
    for thread in threads:
        thread.join(max(deadline - time.perf_counter(), 0.1))

    with lock:
        done_latencies = list(latencies)
        counts = Counter(statuses)
        finished = last_done[0]
    unanswered = total - len(done_latencies)
    if unanswered:
        counts["unanswered"] += unanswered
    ok = counts.pop("200", 0)
    elapsed = max(finished - start, duration) if finished else duration
    return LoadResult(
        url=url,
        offered_rate=rate,
        duration_s=duration,
        scheduled=total,
        completed=len(done_latencies),
        ok=ok,
        errors=dict(counts),
        p50_ms=percentile(done_latencies, 0.50),
        p95_ms=percentile(done_latencies, 0.95) if not unanswered else float("inf"),
        p99_ms=percentile(done_latencies, 0.99) if not unanswered else float("inf"),
        max_ms=max(done_latencies, default=0.0),
        achieved_rate=ok / elapsed,
        pacing_lag_p99_ms=percentile(lags, 0.99),
    )


def main() -> None:
    """Run once from the command line; print the result as JSON."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", required=True)
    parser.add_argument("--rate", type=float, required=True, help="requests a second")
    parser.add_argument("--duration", type=float, required=True, help="seconds")
    parser.add_argument("--header", action="append", default=[], help="'Name: value'")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args()
    if args.rate <= 0 or args.duration <= 0:
        parser.error("--rate and --duration must be positive")
    headers: dict[str, Any] = {}
    for header in args.header:
        name, _, value = header.partition(":")
        headers[name.strip()] = value.strip()
    result = open_loop(args.url, args.rate, args.duration, headers, args.connections, args.timeout)
    out = asdict(result)
    for name in ("p95_ms", "p99_ms"):
        if out[name] == float("inf"):
            out[name] = None  # JSON has no infinity: some requests never came back
    print(json.dumps(out))


if __name__ == "__main__":
    main()
