"""What every benchmark shares: the record each one emits, its three common options, and a
few measuring helpers (load average, SQL capture and bare replay).

A benchmark run by `benchmarks/run_all.py` (`make bench`) is called as

    python benchmarks/NAME.py --database-url URL --evidence-dir DIR --json PATH

and writes its results to PATH with `write_records`: a JSON list of `Record`s, one per
figure. The runner merges every benchmark's records into one table (Markdown and JSON).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, TypedDict

Database = Literal["sqlite", "postgresql"]


class Record(TypedDict):
    """One figure of one benchmark on one database.

    `bare` is the same work done with hand-written (or captured and replayed) SQL through
    the same driver in the same run, in the figure's unit, or None where there is no such
    thing; `ratio` is figure / bare; `target` says what the figure should be ("" when
    there is none) and `met` whether it is (None when there is no target)."""

    benchmark: str
    database: Database
    measure: str
    figure: float
    unit: str
    bare: float | None
    ratio: float | None
    target: str
    met: bool | None
    notes: str


FIELDS = tuple(Record.__annotations__)


def record(
    benchmark: str,
    database: str,
    measure: str,
    figure: float,
    unit: str,
    *,
    bare: float | None = None,
    target: str = "",
    met: bool | None = None,
    notes: str = "",
) -> Record:
    """A Record, its ratio worked out from `figure` and `bare` (None without a bare figure
    or with a bare figure of zero)."""
    if database not in ("sqlite", "postgresql"):
        raise ValueError(f"database must be sqlite or postgresql, not {database!r}")
    ratio = figure / bare if bare else None
    return Record(
        benchmark=benchmark,
        database="sqlite" if database == "sqlite" else "postgresql",
        measure=measure,
        figure=float(figure),
        unit=unit,
        bare=None if bare is None else float(bare),
        ratio=ratio,
        target=target,
        met=met,
        notes=notes,
    )


def check_record(value: Any) -> Record:
    """`value` as a Record, or ValueError naming what is wrong with it (a benchmark that
    writes a malformed record is reported, not merged silently)."""
    if not isinstance(value, dict):
        raise ValueError(f"a record must be a JSON object, not {type(value).__name__}")
    missing = [name for name in FIELDS if name not in value]
    extra = [name for name in value if name not in FIELDS]
    if missing or extra:
        raise ValueError(f"record fields: missing {missing}, unexpected {extra}")
    if value["database"] not in ("sqlite", "postgresql"):
        raise ValueError(f"record database {value['database']!r}")
    if not isinstance(value["figure"], int | float) or isinstance(value["figure"], bool):
        raise ValueError(f"record figure {value['figure']!r} is not a number")
    for name in ("bare", "ratio"):
        if value[name] is not None and not isinstance(value[name], int | float):
            raise ValueError(f"record {name} {value[name]!r} is not a number or null")
    if value["met"] not in (True, False, None):
        raise ValueError(f"record met {value['met']!r} is not true, false or null")
    for name in ("benchmark", "measure", "unit", "target", "notes"):
        if not isinstance(value[name], str):
            raise ValueError(f"record {name} {value[name]!r} is not text")
    return value  # type: ignore[return-value]


def write_records(path: str | Path | None, records: Sequence[Record]) -> None:
    """Write `records` as a JSON list to `path` (nothing when `path` is None: the script was
    run by hand without --json). Checked first, so a bad record fails its benchmark."""
    checked = [check_record(dict(r)) for r in records]
    if path is None:
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # NaN is not JSON: a figure that could not be measured must say so in its notes.
    target.write_text(json.dumps(checked, indent=2, allow_nan=False) + "\n", encoding="utf-8")


def read_records(path: str | Path) -> list[Record]:
    """The records a benchmark wrote to `path`, each checked."""
    values = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(values, list):
        raise ValueError(f"{path}: expected a JSON list of records")
    return [check_record(v) for v in values]


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """The three options every benchmark takes from the runner."""
    parser.add_argument(
        "--database-url",
        default=None,
        help="the database to work in (the runner gives each benchmark its own: a copy of "
        "the large data set, or an empty database, as the benchmark's DATA says)",
    )
    parser.add_argument(
        "--evidence-dir", default=None, help="the evidence store that goes with the database"
    )
    parser.add_argument(
        "--json", default=None, metavar="PATH", help="write the results here as records"
    )


def database_kind(url: str) -> Database:
    """sqlite or postgresql, from a SQLAlchemy URL."""
    if url.startswith("sqlite"):
        return "sqlite"
    if url.startswith("postgresql"):
        return "postgresql"
    raise ValueError(f"unsupported database URL scheme: {url.split(':', 1)[0]}")


def load_average() -> str:
    """The 1, 5 and 15-minute load averages."""
    try:
        return " ".join(f"{load:.2f}" for load in os.getloadavg())
    except OSError:
        return "unknown"


def percentile(values: Sequence[float], fraction: float) -> float:
    """The `fraction` percentile by nearest rank (0.95 for p95); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def timed_ms(fn: Callable[[], object], runs: int) -> list[float]:
    """Milliseconds of wall time for each of `runs` calls, after one warm-up call."""
    fn()
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


# ---- capturing a request's SQL and replaying it bare ----------------------------------


class Statement(TypedDict):
    """One statement as the DBAPI cursor received it."""

    sql: str
    parameters: Any
    many: bool


class SqlCapture:
    """Records every statement an engine sends to its DBAPI cursor while `active`, with
    the time spent inside the cursor (for telling SQL time apart from the rest)."""

    def __init__(self, engine: Any) -> None:
        from sqlalchemy import event

        self.statements: list[Statement] = []
        self.active = False
        self.cursor_seconds = 0.0
        self._started: list[float] = []
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool):  # type: ignore[no-untyped-def]
        if self.active:
            self.statements.append(Statement(sql=sql, parameters=params, many=many))
            self._started.append(time.perf_counter())

    def _after(self, conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool):  # type: ignore[no-untyped-def]
        if self.active and self._started:
            self.cursor_seconds += time.perf_counter() - self._started.pop()

    @contextmanager
    def capturing(self) -> Iterator[list[Statement]]:
        """Capture afresh for the duration of the block; yields the list it fills."""
        self.statements, self.cursor_seconds, self.active = [], 0.0, True
        try:
            yield self.statements
        finally:
            self.active = False


# A result's public fetches (where Core rows are built from the cursor's).
FETCHES = (
    "all",
    "fetchall",
    "fetchone",
    "fetchmany",
    "first",
    "one",
    "one_or_none",
    "scalar",
    "scalar_one",
    "scalar_one_or_none",
    "partitions",
    "__iter__",
    "__next__",
)


class OrmTimer:
    """Times the work done inside SQLAlchemy's ORM while `active`: each statement a
    Session runs (`Session._execute_internal`, behind `execute`, `scalars`, `scalar`,
    `get`, lazy loads and eager loads: compiling or fetching the cached statement, the
    cursor, setting up the result), each chunk of rows the ORM builds from a cursor
    (`loading.instances`: turning rows into objects or tuples, the identity map, eager
    loads), and each fetch from a result (`all`, `one`, `first`, `scalar`, iterating...,
    on `Result`, `ScalarResult` and `MappingResult`): a statement of plain table columns
    run through the Session comes back as Core rows, built as they are fetched, after
    `_execute_internal` has returned. Calls nested in one another are counted once. What
    it leaves out is the app's own Python around those calls (forms, charts,
    authorisation) and the web framework: SQLAlchemy's overhead over bare SQL is what is
    inside.

    Installs itself by wrapping those functions, for the life of the process (a
    benchmark process) or until `uninstall()`."""

    def __init__(self) -> None:
        import itertools

        from sqlalchemy.orm import Session, loading

        self.active = False
        self.seconds = 0.0
        self._depth = 0
        self._started = 0.0
        timer = self
        original_execute = Session._execute_internal
        original_instances = loading.instances

        def execute(session: Any, *args: Any, **kwargs: Any) -> Any:
            timer._enter()
            try:
                return original_execute(session, *args, **kwargs)
            finally:
                timer._leave()

        def instances(cursor: Any, context: Any) -> Any:
            result = original_instances(cursor, context)
            chunks = getattr(result, "chunks", None)
            if chunks is None:
                return result

            def timed_chunks(size: int | None) -> Iterator[Any]:
                source = chunks(size)
                while True:
                    timer._enter()
                    try:
                        chunk = next(source)
                    except StopIteration:
                        return
                    finally:
                        timer._leave()
                    yield chunk

            result.chunks = timed_chunks
            # As ChunkedIteratorResult sets it up (or `yield_per`, if the query set one).
            result.iterator = itertools.chain.from_iterable(
                timed_chunks(getattr(result, "_yield_per", None) or None)
            )
            return result

        Session._execute_internal = execute  # type: ignore[method-assign]
        loading.instances = instances
        fetches = self._time_fetches()

        def uninstall() -> None:
            Session._execute_internal = original_execute  # type: ignore[method-assign]
            loading.instances = original_instances
            for cls, name, original in fetches:
                setattr(cls, name, original)

        self.uninstall = uninstall

    def _time_fetches(self) -> list[tuple[type, str, Any]]:
        """Wrap every public fetch of the result classes; (class, name, original) each."""
        from sqlalchemy.engine.result import MappingResult, Result, ScalarResult

        timer = self
        wrapped: list[tuple[type, str, Any]] = []

        def timed_iterator(source: Iterator[Any]) -> Iterator[Any]:
            while True:
                timer._enter()
                try:
                    item = next(source)
                except StopIteration:
                    return
                finally:
                    timer._leave()
                yield item

        def timed(original: Any, returns_iterator: bool) -> Any:
            def fetch(result: Any, *args: Any, **kwargs: Any) -> Any:
                timer._enter()
                try:
                    value = original(result, *args, **kwargs)
                finally:
                    timer._leave()
                return timed_iterator(value) if returns_iterator else value

            return fetch

        for cls in (Result, ScalarResult, MappingResult):
            for name in FETCHES:
                original = cls.__dict__.get(name)
                if original is not None:
                    setattr(cls, name, timed(original, name in ("__iter__", "partitions")))
                    wrapped.append((cls, name, original))
        return wrapped

    @property
    def inside(self) -> bool:
        """Whether the ORM is at work now (a statement sent now is counted)."""
        return self._depth > 0

    def _enter(self) -> None:
        if self._depth == 0:
            self._started = time.perf_counter()
        self._depth += 1

    def _leave(self) -> None:
        self._depth -= 1
        if self._depth == 0 and self.active:
            self.seconds += time.perf_counter() - self._started

    @contextmanager
    def timing(self) -> Iterator[None]:
        """Count afresh for the duration of the block (read `seconds` afterwards)."""
        self.seconds, self.active = 0.0, True
        try:
            yield
        finally:
            self.active = False


_ORM_TIMER: OrmTimer | None = None


def orm_timer() -> OrmTimer:
    """The process's one OrmTimer (installed on first use)."""
    global _ORM_TIMER
    if _ORM_TIMER is None:
        _ORM_TIMER = OrmTimer()
    return _ORM_TIMER


def is_read(statement: Statement) -> bool:
    """Whether a statement only reads (a bare replay runs reads only: replaying the
    request's writes, a session touch or a token's last use, would change the copy)."""
    head = statement["sql"].lstrip().split(None, 1)[0].upper() if statement["sql"].strip() else ""
    return head in ("SELECT", "WITH") and not statement["many"]


def replay(dbapi_connection: Any, statements: Iterable[Statement]) -> int:
    """Run `statements` through a DBAPI connection, fetching every row; returns the row
    count. The connection is the same driver the app uses (sqlite3 or psycopg)."""
    rows = 0
    cursor = dbapi_connection.cursor()
    try:
        for statement in statements:
            cursor.execute(statement["sql"], statement["parameters"])
            rows += len(cursor.fetchall())
    finally:
        cursor.close()
    return rows


def replay_through_sqlalchemy(connection: Any, statements: Iterable[Statement]) -> int:
    """Run `statements` through a SQLAlchemy Connection as the driver received them
    (`exec_driver_sql`: nothing compiled, no ORM, no result types), fetching every row;
    returns the row count. The least any use of SQLAlchemy adds to `replay`: its
    Connection and Result around the same cursor."""
    rows = 0
    for statement in statements:
        rows += len(connection.exec_driver_sql(statement["sql"], statement["parameters"]).all())
    return rows


def bare_connection(url: str, *, autocommit: bool = True) -> Any:
    """A plain DBAPI connection to the database at SQLAlchemy `url`, through the driver
    the app's engine uses (sqlite3, or psycopg for postgresql+psycopg). With
    `autocommit=False`, psycopg opens a transaction at the first statement, as the app's
    requests do (sqlite3 opens none for reads either way)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        import sqlite3

        return sqlite3.connect(parsed.database or ":memory:")
    import psycopg

    return psycopg.connect(
        host=parsed.host,
        port=parsed.port or 5432,
        user=parsed.username,
        password=parsed.password,
        dbname=parsed.database,
        autocommit=autocommit,
    )


def median(values: Sequence[float]) -> float:
    """The median, NaN for no values."""
    return statistics.median(values) if values else math.nan
