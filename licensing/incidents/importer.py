"""Bulk import of incidents: data.police.uk street-level CSV and a generic RMS layout.

Every row read ends up created, duplicate or rejected (with its line and reason): none
is silently lost. data.police.uk gives ASB rows no Crime ID, and identical ASB rows (same
month, point and type) are separate reports, so each gets a stable identity from its
content plus its occurrence number in the file: re-importing the file, or an overlapping
re-issue of the month, adds nothing.
"""

from __future__ import annotations

import calendar
import csv
import hashlib
import io
import logging
import re
import sqlite3
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from itertools import chain
from operator import itemgetter
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from licensing.audit.services import append_event
from licensing.auth.models import User
from licensing.csvfiles import decode_text, join_row, unreadable_csv
from licensing.csvfiles import rejections_csv as rejected_rows_csv
from licensing.errors import ValidationFailed
from licensing.incidents import parallel
from licensing.incidents.linking import PremisesGrid
from licensing.incidents.models import (
    CATEGORIES,
    POLICE_UK_CATEGORIES,
    IncidentImportRun,
)
from licensing.premises.models import LicensingAuthority, Premises
from licensing.timeutil import parse_instant

POLICE_UK_COLUMNS = (
    "Crime ID",
    "Month",
    "Reported by",
    "Falls within",
    "Longitude",
    "Latitude",
    "Location",
    "LSOA code",
    "LSOA name",
    "Crime type",
    "Last outcome category",
    "Context",
)
# The generic layout for RMS exports (documented in the README).
GENERIC_REQUIRED = ("source_ref", "category")
GENERIC_COLUMNS = (
    "source_ref",
    "occurred_at",
    "month",
    "category",
    "description",
    "location",
    "latitude",
    "longitude",
    "outcome",
    "licence_number",
    "authority",
    "uprn",
)
FORMATS = ("police-uk", "generic")
DEFAULT_RADIUS_M = 50.0
BATCH = 2000  # PostgreSQL: rows per batch
# SQLite: variables per multi-row INSERT (the limit of builds before 3.32, when the default
# rose), and whole incident statements per batch handed to the writer.
_SQLITE_MAX_VARIABLES = 32_766
_SQLITE_ROWS_PER_STATEMENT = 400
_STATEMENTS_PER_BATCH = 20
# SQLite page cache during an import, in KiB (the default is 2 MiB): used only as needed.
_SQLITE_IMPORT_CACHE_KIB = 256 * 1024

log = logging.getLogger(__name__)

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
_LONE_CR = re.compile("\r(?!\n)")  # a CR that ends a line by itself
_BLOCK_CHARS = 1 << 20  # the text is split into lines about this many characters at a time
_POLICE_UK_CATEGORY_SET = frozenset(POLICE_UK_CATEGORIES)


class RowRejected(Exception):
    """A row that cannot be imported, with the reason a person can act on."""


@dataclass
class IncidentImportResult:
    """Counts of one run: read = created + duplicate + rejected."""

    run_id: int | None = None
    read: int = 0
    created: int = 0
    duplicate: int = 0
    rejected: int = 0
    linked: int = 0
    suggested: int = 0
    rejections: list[tuple[int, str]] = field(default_factory=list)

    def summary(self) -> str:
        """The counts on one line."""
        return (
            f"read {self.read}, created {self.created}, duplicate {self.duplicate}, "
            f"rejected {self.rejected}, linked {self.linked}, suggested {self.suggested}"
        )


@lru_cache(maxsize=1024)
def month_middle(month: str) -> datetime:
    """The middle of a month (UTC): where month-only incidents count in windows and charts."""
    match = _MONTH.match(month)
    if not match:
        raise RowRejected(f"Month {month!r} is not in the form YYYY-MM")
    if match.group(1) == "0000":  # matches the pattern, but there was no year 0
        raise RowRejected(f"Month {month!r} has no year 0")
    year, number = int(match.group(1)), int(match.group(2))
    days = calendar.monthrange(year, number)[1]
    return datetime(year, number, 1, tzinfo=UTC) + timedelta(days=days / 2)


def _coordinate(value: str, name: str, limit: float) -> float | None:
    value = value.strip()
    if not value or value.upper() == "NA":
        return None
    try:
        number = float(value)
    except ValueError:
        raise RowRejected(f"{name} {value!r} is not a number") from None
    if not -limit <= number <= limit or number != number:  # also refuses NaN
        raise RowRejected(f"{name} {value!r} is out of range")
    return number


def _coordinates(lat_text: str, lon_text: str) -> tuple[float | None, float | None]:
    lat = _coordinate(lat_text, "Latitude", 90.0)
    lon = _coordinate(lon_text, "Longitude", 180.0)
    if (lat is None) != (lon is None):
        raise RowRejected("Latitude and Longitude must both be given or both be empty")
    return lat, lon


class _PoliceUkParser:
    """data.police.uk rows as rows of the incidents table.

    A street-level file repeats a few months, crime types and forces, and many rows share
    a snap point, so each distinct raw value is checked and converted once per parser
    (the importer keeps one per file) rather than once per row. The importer's parser
    also puts the month's middle in its stored form, finds the premises near each
    distinct point once (`near`). Rows hold only what varies from row to row
    (_POLICE_UK_ROW); the rest is the same for the whole run (see _tables).
    """

    def __init__(
        self,
        occurrences: Counter[str] | None = None,
        time: Callable[[datetime], Any] | None = None,
        near: Callable[[float, float], list[tuple[int, float]]] | None = None,
    ) -> None:
        self.occurrences: Counter[str] = Counter() if occurrences is None else occurrences
        self._time = time
        self._near = near
        self._types: dict[str, str] = {}
        self._months: dict[str, tuple[str, Any]] = {}
        self._points: dict[tuple[str, str], _Point] = {}
        self._forces: dict[tuple[str, str], tuple[str, str, str]] = {}

    def parse(
        self, values: list[str], incident_id: int = 0
    ) -> tuple[tuple[Any, ...], list[tuple[int, float]]]:
        """The row in _POLICE_UK_ROW order (with `incident_id`), and the premises near its
        point (empty without `near`); raise RowRejected with the reason. The checks run
        in this order: field count, crime type, month, coordinates, Crime ID."""
        if len(values) != 12:  # len(POLICE_UK_COLUMNS)
            raise RowRejected(
                f"the row has {len(values)} fields; expected {len(POLICE_UK_COLUMNS)}"
            )
        (
            crime_id,
            month_text,
            reported_text,
            falls_text,
            lon_raw,
            lat_raw,
            location,
            lsoa_code,
            lsoa_name,
            type_text,
            outcome,
            context,
        ) = values
        crime_type = self._types.get(type_text)
        if crime_type is None:
            crime_type = type_text.strip()
            if crime_type not in _POLICE_UK_CATEGORY_SET:
                raise RowRejected(f"Crime type {crime_type!r} is not a data.police.uk crime type")
            self._types[type_text] = crime_type
        known_month = self._months.get(month_text)
        if known_month is None:
            month = month_text.strip()
            middle = month_middle(month)  # raises for a malformed month
            known_month = (month, middle if self._time is None else self._time(middle))
            self._months[month_text] = known_month
        month, counted = known_month
        point = self._points.get((lat_raw, lon_raw))
        if point is None:
            lat_text, lon_text = lat_raw.strip(), lon_raw.strip()
            lat, lon = _coordinates(lat_text, lon_text)  # raises for a bad position
            nearby = (
                [] if lat is None or lon is None or self._near is None else self._near(lat, lon)
            )
            point = self._points[(lat_raw, lon_raw)] = (lat_text, lon_text, lat, lon, nearby)
        lat_text, lon_text, lat, lon, nearby = point
        force = self._forces.get((reported_text, falls_text))
        if force is None:
            reported_by, falls_within = reported_text.strip(), falls_text.strip()
            force = (reported_by, falls_within, (reported_by or falls_within)[:100])
            self._forces[(reported_text, falls_text)] = force
        reported_by, falls_within, reporting_force = force
        location, lsoa_code = location.strip(), lsoa_code.strip()
        crime_id = crime_id.strip()
        if crime_id:
            source_ref = crime_id
            if len(source_ref) > 128:
                raise RowRejected("Crime ID is longer than 128 characters")
        else:
            # No Crime ID (ASB): identity is the content plus how many times it has been seen.
            key = "\x1f".join(
                (
                    month,
                    lon_text,
                    lat_text,
                    location,
                    lsoa_code,
                    crime_type,
                    reported_by,
                    falls_within,
                )
            )
            seen = self.occurrences[key] + 1
            self.occurrences[key] = seen
            digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
            source_ref = f"asb-{digest}-{seen}"
        row = (
            incident_id,
            source_ref,
            month,
            counted,
            crime_type,
            location[:300],
            lat,
            lon,
            lsoa_code[:16],
            lsoa_name.strip()[:100],
            outcome.strip()[:200],
            reporting_force,
            context.strip(),
        )
        return row, nearby


# A parsed snap point: the stripped texts (part of an ASB row's identity), the numbers,
# and the premises near it.
_Point = tuple[str, str, float | None, float | None, list[tuple[int, float]]]


def parse_police_uk(values: list[str], occurrences: Counter[str]) -> tuple[Any, ...]:
    """One data.police.uk row as an incident row (in ROW_FIELDS order); raise
    RowRejected with the reason. `occurrences` counts identical ASB rows across calls."""
    row, _nearby = _PoliceUkParser(occurrences).parse(values)
    _id, ref, month, counted, category, location, lat, lon, *rest = row
    return ("police-uk", ref, None, month, counted, category, "", location, lat, lon, *rest)


def parse_generic(record: dict[str, str]) -> tuple[tuple[Any, ...], dict[str, str]]:
    """One generic-layout row: an incident row (in ROW_FIELDS order), and link hints
    (licence number, UPRN)."""
    source_ref = record.get("source_ref", "").strip()
    if not source_ref:
        raise RowRejected("source_ref is empty")
    if len(source_ref) > 128:
        raise RowRejected("source_ref is longer than 128 characters")
    category = record.get("category", "").strip()
    if category not in CATEGORIES:
        raise RowRejected(f"category {category!r} is not a known category")
    occurred_text = record.get("occurred_at", "").strip()
    month = record.get("month", "").strip() or None
    occurred_at: datetime | None = None
    if occurred_text:
        try:
            occurred_at = parse_instant(occurred_text)
        except ValueError:
            raise RowRejected(
                f"occurred_at {occurred_text!r} is not an ISO 8601 date and time"
            ) from None
        counted_at = occurred_at
        month = None
    elif month:
        counted_at = month_middle(month)
    else:
        raise RowRejected("give occurred_at or month")
    lat, lon = _coordinates(record.get("latitude", ""), record.get("longitude", ""))
    row = (
        "rms",
        source_ref,
        occurred_at,
        month,
        counted_at,
        category,
        record.get("description", "").strip(),
        record.get("location", "").strip()[:300],
        lat,
        lon,
        "",
        "",
        record.get("outcome", "").strip()[:200],
        "",
        "",
    )
    hints = {k: record.get(k, "").strip() for k in ("licence_number", "authority", "uprn")}
    return row, hints


# Columns written by the bulk path, in order. Ids are assigned here so incidents and their
# links go in with plain batch inserts (no per-row RETURNING).
INSERT_COLUMNS = (
    "id",
    "source",
    "source_ref",
    "occurred_at",
    "month",
    "counted_at",
    "category",
    "description",
    "location_text",
    "latitude",
    "longitude",
    "lsoa_code",
    "lsoa_name",
    "outcome",
    "reported_by",
    "context",
    "authority_id",
    "import_run_id",
    "created_by_id",
    "created_at",
)
# What a parser produces, in this order: source … context.
ROW_FIELDS = INSERT_COLUMNS[1:16]
_REF, _OCCURRED, _COUNTED, _LAT, _LON = 1, 2, 4, 8, 9  # in ROW_FIELDS rows
# The incident columns a police-uk row carries; the others are the same for every row.
_POLICE_UK_ROW = (
    "id",
    "source_ref",
    "month",
    "counted_at",
    "category",
    "location_text",
    "latitude",
    "longitude",
    "lsoa_code",
    "lsoa_name",
    "outcome",
    "reported_by",
    "context",
)
_ROW_REF = 1  # the source reference, in the rows of either layout
_POLICE_UK_COUNTED = _POLICE_UK_ROW.index("counted_at")


@dataclass(frozen=True)
class _Table:
    """How rows go into one table: the columns each row carries, then the columns whose
    value is the same for every row of the run. SQLite binds those once per statement
    rather than once per row (fewer values to build, pass and copy)."""

    name: str
    columns: tuple[str, ...]
    fixed: tuple[tuple[str, Any], ...] = ()

    @property
    def fixed_values(self) -> tuple[Any, ...]:
        """The fixed columns' values, in order."""
        return tuple(value for _, value in self.fixed)


def _tables(fmt: str, run_id: int, actor_id: int | None, now_value: Any) -> tuple[_Table, _Table]:
    """The incident and link layouts of one run."""
    run = (
        ("authority_id", None),
        ("import_run_id", run_id),
        ("created_by_id", actor_id),
        ("created_at", now_value),
    )
    if fmt == "police-uk":
        # data.police.uk gives no time or description, and only proximity suggestions.
        fixed = (("source", "police-uk"), ("occurred_at", None), ("description", ""), *run)
        return (
            _Table("incidents", _POLICE_UK_ROW, fixed),
            _Table(
                "premises_incident_links",
                ("premises_id", "incident_id", "distance_m", "incident_counted_at"),
                (("status", "suggested"), ("method", "proximity"), ("created_at", now_value)),
            ),
        )
    return (
        _Table("incidents", ("id", *ROW_FIELDS[1:]), (("source", "rms"), *run)),
        _Table(
            "premises_incident_links",
            ("premises_id", "incident_id", "status", "method", "distance_m", "incident_counted_at"),
            (("created_at", now_value),),
        ),
    )


_REJECTIONS = _Table("incident_import_rejections", ("run_id", "line_number", "reason", "raw"))


_ANALYSE_FIRST = 10_000  # rows probed before PostgreSQL's statistics are first refreshed


class _BulkWriter:
    """Raw-driver writes for the import's hot path: id allocation, existence checks,
    batch inserts. Timestamps are adapted the way SQLAlchemy stores them.

    SQLite gets multi-row INSERT statements as large as its variable limit allows, with
    the run's fixed columns bound once per statement: SQLite then takes a chunk of rows
    in one call instead of one driver round trip per row. Batches are cut so that
    incidents fill whole statements; link rows left over wait for the next batch, and
    finish() writes whatever is left. (A writer thread overlapping parsing was tried and
    dropped: on a busy two-core machine the GIL hand-over after every statement cost
    more than the overlap gained.) PostgreSQL gets each batch by COPY.
    """

    def __init__(self, session: Session) -> None:
        self.session = session
        connection = session.connection()
        self.sqlite = connection.dialect.name == "sqlite"
        dbapi = connection.connection.dbapi_connection
        assert dbapi is not None
        self.dbapi: Any = dbapi
        self.cursor: Any = dbapi.cursor()
        self._next_id: int | None = None
        self._statements: dict[tuple[str, int], str] = {}
        self._cache_size: int | None = None
        self._variables = (
            min(_SQLITE_MAX_VARIABLES, dbapi.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
            if self.sqlite
            else 0
        )
        self._incidents: list[tuple[Any, ...]] = []
        self._links: list[tuple[Any, ...]] = []
        self.incident_table = self.link_table = _REJECTIONS  # set by use()
        self.batch_rows = BATCH
        # In a reading process (see record()): the statements of the batch being built.
        self._recorded: list[tuple[str, int, Any]] | None = None
        self._send: Callable[[Any], None] | None = None
        self._parked_cursor: Any = None
        self._by_name = {_REJECTIONS.name: _REJECTIONS}
        # PostgreSQL: references probed so far, and the count at which the incidents'
        # statistics are next refreshed (see existing_refs).
        self._probed = 0
        self._analyse_at = _ANALYSE_FIRST

    def use(self, incidents: _Table, links: _Table) -> None:
        """The layouts of this run's incident and link rows. SQLite: a batch is three
        whole multi-row incident statements."""
        self.incident_table, self.link_table = incidents, links
        self._by_name.update({incidents.name: incidents, links.name: links})
        if self.sqlite:
            self.batch_rows = self._per_statement(incidents) * _STATEMENTS_PER_BATCH

    def time(self, moment: datetime | None) -> Any:
        """A UTC datetime as this driver stores it in our naive-UTC columns."""
        if moment is None:
            return None
        naive = moment.astimezone(UTC).replace(tzinfo=None)
        return naive.isoformat(" ", timespec="microseconds") if self.sqlite else naive

    def reserve_ids(self, count: int) -> Sequence[int]:
        """`count` new incident ids, in order. SQLite: the import holds the write lock (it
        has already written its run row), so nobody else can add incidents until it
        commits: read the highest id once and count on from it in memory. PostgreSQL: the
        sequence hands them out."""
        if self.sqlite:
            if self._next_id is None:
                self.cursor.execute("SELECT COALESCE(MAX(id), 0) FROM incidents")
                (highest,) = self.cursor.fetchone() or (0,)
                self._next_id = int(highest) + 1
            start = self._next_id
            self._next_id += count
            return range(start, start + count)
        if count == 0:
            return []
        self.cursor.execute(
            "SELECT nextval(pg_get_serial_sequence('incidents', 'id')) FROM generate_series(1, %s)",
            (count,),
        )
        return [int(r[0]) for r in self.cursor.fetchall()]

    def next_free_id(self) -> int:
        """SQLite: the id the next new incident gets, for an import that numbers its rows
        as it reads them (it holds the write lock, so nobody else takes ids meanwhile)."""
        self.reserve_ids(0)  # reads the highest id on first use
        assert self._next_id is not None
        return self._next_id

    def held_refs(self, source: str, limit: int) -> set[str] | None:
        """Every source reference the table holds for `source` when there are fewer than
        `limit` (one read then costs less than asking the index about every row);
        otherwise None. SQLite only: under its write lock the set cannot go stale before
        the import commits. PostgreSQL has no such lock, so each batch is checked."""
        if not self.sqlite:
            return None
        self.cursor.execute(
            "SELECT COUNT(*) FROM (SELECT 1 FROM incidents WHERE source = ? LIMIT ?)",
            (source, limit),
        )
        (count,) = self.cursor.fetchone() or (0,)
        if count >= limit:
            return None
        self.cursor.execute("SELECT source_ref FROM incidents WHERE source = ?", (source,))
        return {ref for (ref,) in self.cursor.fetchall()}

    def existing_refs(self, source: str, refs: list[str]) -> set[str]:
        """Which of these source references are already held.

        PostgreSQL: a long import grows the table far past what its statistics say
        (autovacuum cannot see rows before the import commits). Planned from a table it
        believes tiny, each probe read every row of the source and filtered them, so
        an import into a fresh table slowed with its own size (a few hundred rows/s).
        The statistics are refreshed inside the import's transaction (ANALYZE counts the
        transaction's own rows) each time the rows probed double, from 10,000: a handful
        of samples over a million rows, after which the probes search the unique index.
        (Without the privilege ANALYZE only warns, and the import goes on as before.)"""
        if not self.sqlite:
            self._probed += len(refs)
            if self._probed >= self._analyse_at:
                self.cursor.execute("ANALYZE incidents")
                self._analyse_at *= 2
            # One array parameter: one short statement whatever the batch's size (the
            # driver rewrote a statement of 500 placeholders each time).
            self.cursor.execute(
                "SELECT source_ref FROM incidents WHERE source = %s AND source_ref = ANY(%s)",
                (source, refs),
            )
            return {r[0] for r in self.cursor.fetchall()}
        found: set[str] = set()
        for start in range(0, len(refs), 500):
            chunk = refs[start : start + 500]
            marks = ", ".join(["?"] * len(chunk))
            self.cursor.execute(
                f"SELECT source_ref FROM incidents WHERE source = ? AND source_ref IN ({marks})",  # noqa: S608 (placeholders only)  # nosec B608
                (source, *chunk),
            )
            found.update(r[0] for r in self.cursor.fetchall())
        return found

    def _per_statement(self, table: _Table) -> int:
        """SQLite: rows per multi-row INSERT, within the variable limit and at most
        _SQLITE_ROWS_PER_STATEMENT (preparing a statement of numbered variables costs time
        that grows with the square of its length: 2.6 s for 2,500 rows, 80 ms for 500)."""
        fit = (self._variables - len(table.fixed)) // len(table.columns)
        return max(1, min(fit, _SQLITE_ROWS_PER_STATEMENT))

    def _statement(self, table: _Table, rows: int) -> str:
        """SQLite: INSERT for `rows` rows (numbered variables, the fixed columns' first and
        shared by every row), or with rows == 0 the one-row form for executemany, whose
        rows carry the fixed values at the end."""
        key = (table.name, rows)
        sql = self._statements.get(key)
        if sql is None:
            names = ", ".join((*table.columns, *(name for name, _ in table.fixed)))
            width, fixed = len(table.columns), len(table.fixed)
            if rows == 0:
                groups = ["(" + ", ".join(["?"] * (width + fixed)) + ")"]
            else:
                shared = [f"?{n}" for n in range(1, fixed + 1)]
                groups = [
                    "("
                    + ", ".join([*(f"?{start + n}" for n in range(1, width + 1)), *shared])
                    + ")"
                    for start in range(fixed, fixed + rows * width, width)
                ]
            sql = f"INSERT INTO {table.name} ({names}) VALUES {', '.join(groups)}"  # noqa: S608 (our names)  # nosec B608
            # The same string object every time: the driver's statement cache hits cheaply.
            self._statements[key] = sql
        return sql

    def record(self, send: Callable[[Any], None]) -> None:
        """Hand each batch's statements to `send` rather than executing them: what a
        second process reading the file does (licensing.incidents.parallel). A batch is a
        list of (table name, rows per statement, parameters); execute() runs each one.
        The database is out of reach from here on."""
        self._recorded, self._send = [], send
        # Parked, not dropped: freeing it here would finalise it on the parent's connection.
        self._parked_cursor, self.cursor = self.cursor, None

    def execute(self, table: str, rows: int, parameters: Any) -> None:
        """Run one INSERT of `rows` rows into the table of that name (rows == 0: an
        executemany of one-row parameter sets). PostgreSQL only ever has rows == 0, and
        gets them by COPY."""
        if self._recorded is not None:
            self._recorded.append((table, rows, parameters))
            return
        if not self.sqlite:
            self._copy(self._by_name[table], parameters)
            return
        sql = self._statement(self._by_name[table], rows)
        if rows:
            self.cursor.execute(sql, parameters)
        else:
            self.cursor.executemany(sql, parameters)

    def _copy(self, table: _Table, rows: Iterable[tuple[Any, ...]]) -> None:
        """PostgreSQL: the rows (each with the fixed values at its end) through COPY, the
        server's bulk-load path: one stream a batch, not a statement a row, as pipelined
        executemany was. A duplicate reference or a missing premises still fails the
        import whole, as an INSERT would."""
        names = ", ".join((*table.columns, *(name for name, _ in table.fixed)))
        with self.cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def _sent(self) -> None:
        """Recording: send the statements built since the last batch."""
        if self._recorded and self._send is not None:
            self._send(self._recorded)
            self._recorded = []

    def _insert_rows(self, table: _Table, rows: list[tuple[Any, ...]]) -> None:
        """Insert rows a parameter set each, the fixed values added to each: SQLite by
        executemany, PostgreSQL by COPY."""
        if rows:
            fixed = table.fixed_values
            self.execute(table.name, 0, [row + fixed for row in rows] if fixed else rows)

    def _insert_whole(self, table: _Table, rows: list[tuple[Any, ...]]) -> int:
        """Insert as many rows as fill whole multi-row statements; how many that was."""
        if not self.sqlite:  # PostgreSQL: one COPY
            self._insert_rows(table, rows)
            return len(rows)
        per = self._per_statement(table)
        whole = len(rows) - len(rows) % per
        if whole:
            fixed = table.fixed_values
            for start in range(0, whole, per):
                self.execute(
                    table.name, per, [*fixed, *chain.from_iterable(rows[start : start + per])]
                )
        return whole

    def insert(self, table: _Table, rows: list[tuple[Any, ...]]) -> None:
        """Insert every row: whole multi-row statements, then the rest a row at a time (so
        only two statements per table are ever prepared); PostgreSQL: all by COPY."""
        whole = self._insert_whole(table, rows)
        self._insert_rows(table, rows[whole:])

    def write_batch(self, incidents: list[tuple[Any, ...]], links: list[tuple[Any, ...]]) -> None:
        """Insert a batch of incident rows and their link rows, in whole statements; the
        rest waits for the next batch or finish(). Links go in only after their incidents
        (the foreign key is checked at once); both lists are in incident id order."""
        self._incidents += incidents
        self._links += links
        done = self._insert_whole(self.incident_table, self._incidents)
        del self._incidents[:done]
        ready = len(self._links)
        if self._incidents:
            ready = bisect_left(self._links, self._incidents[0][0], key=itemgetter(1))
        done = self._insert_whole(self.link_table, self._links[:ready])
        del self._links[:done]
        self._sent()

    def finish(self) -> None:
        """Insert what write_batch() left over."""
        self.insert(self.incident_table, self._incidents)
        self.insert(self.link_table, self._links)
        self._incidents, self._links = [], []
        self._sent()

    def enlarge_cache(self) -> None:
        """SQLite: a larger page cache for this import, so index pages written at random
        (links by premises, ASB references) stay in memory rather than being spilled to
        the WAL and read back. restore_cache() puts the setting back."""
        if not self.sqlite:
            return
        self.cursor.execute("PRAGMA cache_size")
        (self._cache_size,) = self.cursor.fetchone() or (None,)
        self.cursor.execute(f"PRAGMA cache_size = -{_SQLITE_IMPORT_CACHE_KIB}")

    def restore_cache(self) -> None:
        """Put back the page-cache size that enlarge_cache() changed (connections are pooled)."""
        if self._cache_size is not None:
            self.cursor.execute(f"PRAGMA cache_size = {int(self._cache_size)}")
            self._cache_size = None


class _Linker:
    """Links new incidents to premises: confirmed by licence number or UPRN, suggested by
    proximity. The grid is built once per import, and since data.police.uk positions are
    shared snap points, each distinct point is looked up once. load() reads what linking
    needs up front, so the row loop sends the database nothing but inserts."""

    def __init__(self, session: Session, radius_m: float) -> None:
        self.session = session
        self.radius_m = radius_m
        self._grid: PremisesGrid | None = None
        self._near_cache: dict[tuple[float, float], list[tuple[int, float]]] = {}
        self._by_licence: dict[tuple[str, str], int] | None = None
        self._by_uprn: dict[str, int] = {}

    def load(self, by_hints: bool) -> None:
        """Read the premises positions, and with `by_hints` their licence numbers and UPRNs."""
        rows = self.session.execute(
            select(Premises.id, Premises.latitude, Premises.longitude).where(
                Premises.latitude.is_not(None), Premises.longitude.is_not(None)
            )
        )
        self._grid = PremisesGrid(
            ((i, la, lo) for i, la, lo in rows if la is not None and lo is not None),
            self.radius_m,
        )
        if by_hints:
            self._by_licence = {
                (code, number): pid
                for pid, code, number in self.session.execute(
                    select(Premises.id, LicensingAuthority.code, Premises.licence_number).join(
                        LicensingAuthority
                    )
                )
            }
            self._by_uprn = {
                uprn: pid
                for pid, uprn in self.session.execute(
                    select(Premises.id, Premises.uprn).where(Premises.uprn.is_not(None))
                )
                if uprn
            }

    def near(self, lat: float, lon: float) -> list[tuple[int, float]]:
        """Premises within the radius of a point, memoised per point."""
        key = (lat, lon)
        cached = self._near_cache.get(key)
        if cached is None:
            assert self._grid is not None, "load() first"
            cached = [(pid, round(d, 1)) for pid, d in self._grid.near(lat, lon)]
            self._near_cache[key] = cached
        return cached

    def premises_for(self, hints: dict[str, str]) -> tuple[int, str] | None:
        """The premises a licence number (with authority) or UPRN names, and how."""
        assert self._by_licence is not None, "load(by_hints=True) first"
        if hints.get("licence_number") and hints.get("authority"):
            pid = self._by_licence.get((hints["authority"].upper(), hints["licence_number"]))
            if pid:
                return pid, "licence_number"
        if hints.get("uprn"):
            pid = self._by_uprn.get(hints["uprn"])
            if pid:
                return pid, "uprn"
        return None


def _records(text: str) -> Iterator[tuple[int, list[str]]]:
    """Each CSV record with the line it starts on (the header is line 1), exactly as
    csv.reader over io.StringIO(text, newline="") reads them and csvfiles.read_rows
    numbers them (see _all_records).

    A first line without a quote or a lone CR is read on its own, before any work on the
    whole text: the importer checks the header in its own process and a second process
    reading the file (licensing.incidents.parallel) then does that work.
    """
    end = text.find("\n")
    first = text if end < 0 else text[:end]
    if not text or '"' in first or "\r" in first[:-1] or len(first) > csv.field_size_limit():
        yield from _all_records(text)
        return
    first = first.removesuffix("\r")
    yield 1, first.split(",") if first else []
    rest = _all_records(text)
    next(rest)  # the first line again, read the same way
    yield from rest


def _all_records(text: str) -> Iterator[tuple[int, list[str]]]:
    """Each CSV record with the line it starts on (the header is line 1), exactly as
    csv.reader over io.StringIO(text, newline="") reads them and csvfiles.read_rows
    numbers them, but cheaper for the common case.

    A line without a quote character is split on commas directly (csv.reader would give
    the same fields); a line with one, and every line after it that its quoted field
    spans, goes through csv.reader. Lines are split on "\\n" when every CR is part of a
    CRLF; a file with a lone CR (which also ends a line) is read by csv.reader throughout.
    This also avoids io.StringIO, which holds a copy of the whole text at four bytes a
    character, and the lines are split a block at a time (see _lines).
    """
    if _LONE_CR.search(text):
        reader = csv.reader(io.StringIO(text, newline=""))
        line_end = 0
        for values in reader:
            yield line_end + 1, values
            line_end = reader.line_num
        return
    ended = text.count("\n")  # lines 1..ended had a "\n"
    limit = csv.field_size_limit()  # csv.reader refuses longer fields: let it
    pieces = _lines(text, _BLOCK_CHARS)
    number = 0
    for piece in pieces:
        number += 1
        if '"' not in piece and len(piece) <= limit:
            if piece and piece[-1] == "\r":
                piece = piece[:-1]
            yield number, piece.split(",") if piece else []
            continue
        start = number

        def with_breaks(first: str) -> Iterator[str]:
            nonlocal number
            yield first + "\n" if number <= ended else first
            for following in pieces:
                number += 1
                yield following + "\n" if number <= ended else following

        values = next(csv.reader(with_breaks(piece)), [])
        yield start, values


def _lines(text: str, block: int) -> Iterator[str]:
    """The lines of text.split("\n"), less the empty piece after a final "\n", split about
    `block` characters at a time: the first rows come without waiting for the whole text
    to be split, and the text is never held twice over as lines."""
    start, size = 0, len(text)
    while start < size:
        end = text.find("\n", start + block)
        if end < 0:
            pieces = text[start:].split("\n")
            last = pieces.pop()  # after the final "\n": "" or a last line with no break
            yield from pieces
            if last:
                yield last
            return
        yield from text[start:end].split("\n")
        start = end + 1


def _rows(text: str, fmt: str) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """The checked header, and the records after it with their line numbers."""
    records = _records(text)
    _line, header = next(records, (1, []))
    clean = [h.strip().lstrip("\ufeff") for h in header]
    if fmt == "police-uk":
        if tuple(clean) != POLICE_UK_COLUMNS:
            raise ValidationFailed(
                "This is not a data.police.uk street-level CSV: the header must be "
                + ",".join(POLICE_UK_COLUMNS),
                {"incident_file": "The file must be a data.police.uk street-level CSV"},
            )
    else:
        lowered = [h.lower() for h in clean]
        missing = [c for c in GENERIC_REQUIRED if c not in lowered]
        if missing:
            raise ValidationFailed(
                "The generic layout needs the columns " + ", ".join(missing),
                {"incident_file": "The file must have the generic layout's columns"},
            )
        clean = lowered
    return clean, records


def import_incidents(
    session: Session,
    data: bytes,
    file_name: str,
    fmt: str,
    actor: User | None,
    radius_m: float = DEFAULT_RADIUS_M,
    *,
    second_process: bool | None = None,
) -> IncidentImportResult:
    """Import a file of incidents in one transaction, link them, and record the run.

    `second_process`: read the file in a second process while this one writes
    (licensing.incidents.parallel); None decides by the file's size and the machine,
    True uses it wherever it can. Either way the result is the same. Only SQLite imports
    that check duplicates in memory can; elsewhere the file is read here.

    Raises ValidationFailed, having written nothing, when the file is not of the format
    or cannot be read as CSV (such as a field longer than the csv module's limit)."""
    if fmt not in FORMATS:
        raise ValidationFailed(f"format must be one of {', '.join(FORMATS)}")
    try:
        return _import_file(session, data, file_name, fmt, actor, radius_m, second_process)
    except csv.Error as error:
        session.rollback()  # the run row and any batch already written go with it
        raise ValidationFailed(
            unreadable_csv(error), {"incident_file": "The file cannot be read as CSV"}
        ) from None


def _import_file(
    session: Session,
    data: bytes,
    file_name: str,
    fmt: str,
    actor: User | None,
    radius_m: float,
    second_process: bool | None,
) -> IncidentImportResult:
    text = decode_text(data)
    has_nul = "\x00" in text  # checked per row only when the file holds one at all
    header, records = _rows(text, fmt)
    run = IncidentImportRun(
        file_name=file_name[:255],
        sha256=hashlib.sha256(data).hexdigest(),
        format=fmt,
        imported_by_id=actor.id if actor else None,
    )
    # One transaction: on any failure (a database error, the connection dropping, the
    # process being interrupted) it is rolled back whole, here, because the batches go
    # through the raw driver cursor and SQLAlchemy does not see their errors: a caller
    # that carried on with the session could otherwise commit half an import.
    try:
        session.add(run)
        session.flush()  # also takes SQLite's write lock before ids are allocated
        writer = _BulkWriter(session)
        linker = _Linker(session, radius_m)
        linker.load(by_hints=fmt != "police-uk")
        spec = _Import(records, header, fmt, has_nul, run.id, actor.id if actor else None)
        writer.use(*_tables(fmt, run.id, spec.actor_id, writer.time(datetime.now(UTC))))
        # Duplicates of rows already held: from memory when the table holds no more of this
        # source's references than about twice the file's lines, else asked batch by batch.
        lines = text.count("\n")
        held = writer.held_refs(spec.source, 2 * lines + 10_000)
        writer.enlarge_cache()
        try:
            # Probing asks the database batch by batch, which only this process can do.
            if (
                held is not None
                and (parallel.worthwhile(lines) if second_process is None else second_process)
                and parallel.can_fork()
            ):
                log.info("import run %s: reading the file in a second process", run.id)
                result, rejections = _import_rows_in_child(spec, writer, linker, held)
            else:
                result, rejections = _import_rows(spec, writer, linker, held)
                writer.finish()
            writer.insert(_REJECTIONS, rejections)
        finally:
            writer.restore_cache()

        run.rows_read = result.read
        run.created = result.created
        run.duplicate = result.duplicate
        run.rejected = result.rejected
        run.linked = result.linked
        run.suggested = result.suggested
        # One summary event per run, not one per link.
        append_event(
            session,
            event="incidents_imported",
            actor_id=spec.actor_id,
            payload={
                "run_id": run.id,
                "format": fmt,
                "sha256": run.sha256,
                "read": result.read,
                "created": result.created,
                "duplicate": result.duplicate,
                "rejected": result.rejected,
                "linked": result.linked,
                "suggested": result.suggested,
                "radius_m": radius_m,
            },
        )
        session.commit()
    except BaseException:
        _roll_back(session)
        raise
    return result


def _roll_back(session: Session) -> None:
    """Roll back a failed import. If its connection has died (the server ended it), the
    rollback cannot reach the server, which has discarded the transaction anyway: the
    connection is invalidated, so the pool never hands it out again, and the session
    starts afresh on a new one."""
    try:
        session.rollback()
    except Exception:
        log.warning("import rollback failed: discarding its connection", exc_info=True)
        session.connection().invalidate()
        session.rollback()


@dataclass(frozen=True)
class _Import:
    """What the row loop needs to know about the file and the run."""

    records: Iterator[tuple[int, list[str]]]  # (line number, fields) after the header
    header: list[str]
    fmt: str
    has_nul: bool
    run_id: int
    actor_id: int | None

    @property
    def source(self) -> str:
        """The incidents' source: its references are unique within it."""
        return "police-uk" if self.fmt == "police-uk" else "rms"


def _import_rows(
    spec: _Import,
    writer: _BulkWriter,
    linker: _Linker,
    held: set[str] | None,
) -> tuple[IncidentImportResult, list[tuple[Any, ...]]]:
    """Read, check, dedupe, number and link every row, writing them batch by batch.
    `held`: the source's references already in the
    table, or None to ask the table batch by batch. Returns the counts and the rejected
    rows to store."""
    result = IncidentImportResult(run_id=spec.run_id)
    header, time, near = spec.header, writer.time, linker.near
    police_uk = spec.fmt == "police-uk"
    parse = _PoliceUkParser(time=time, near=near).parse
    probing = held is None
    seen_refs: set[str] = set() if held is None else held  # grows with the file's own
    batch_rows = writer.batch_rows
    incident_rows: list[tuple[Any, ...]] = []
    link_rows: list[tuple[Any, ...]] = []
    pending: list[tuple[tuple[Any, ...], Any, list[tuple[int, float]]]] = []  # if probing
    rejections: list[tuple[Any, ...]] = []
    read = duplicate = linked = suggested = 0
    # Without probing the ids are known as rows are read (SQLite, under its write lock).
    next_id = 0 if probing else writer.next_free_id()

    def generic_row(
        values: list[str], incident_id: int
    ) -> tuple[tuple[Any, ...], tuple[int, str] | None, list[tuple[int, float]]]:
        if len(values) != len(header):
            raise RowRejected(f"the row has {len(values)} fields; the header has {len(header)}")
        parsed, hints = parse_generic(dict(zip(header, values, strict=True)))
        occurred = parsed[_OCCURRED]
        row = (incident_id, parsed[_REF], time(occurred) if occurred else None, parsed[3],
               time(parsed[_COUNTED]), *parsed[5:])  # fmt: skip
        confirmed = linker.premises_for(hints)
        lat, lon = parsed[_LAT], parsed[_LON]
        nearby = near(lat, lon) if confirmed is None and lat is not None and lon is not None else []
        return row, confirmed, nearby

    # Where a row of either layout carries its counted_at (each link carries a copy).
    counted_index = _POLICE_UK_COUNTED if police_uk else _COUNTED

    def add_links(
        incident_id: int,
        counted: Any,
        confirmed: tuple[int, str] | None,
        nearby: list[tuple[int, float]],
    ) -> None:
        nonlocal linked, suggested
        if police_uk:  # only suggestions: status, method and time are fixed columns
            for premises_id, distance in nearby:
                link_rows.append((premises_id, incident_id, distance, counted))
        else:
            if confirmed:
                link_rows.append(
                    (confirmed[0], incident_id, "confirmed", confirmed[1], None, counted)
                )
                linked += 1
            for premises_id, distance in nearby:
                link_rows.append(
                    (premises_id, incident_id, "suggested", "proximity", distance, counted)
                )
        suggested += len(nearby)

    def hand_over() -> None:
        result.created += len(incident_rows)
        writer.write_batch(incident_rows, link_rows)
        incident_rows.clear()
        link_rows.clear()

    def flush_pending() -> None:
        """Probing: drop rows the table already holds, number the rest, hand them over."""
        nonlocal duplicate
        held_now = writer.existing_refs(spec.source, [row[_ROW_REF] for row, _, _ in pending])
        fresh = [item for item in pending if item[0][_ROW_REF] not in held_now]
        duplicate += len(pending) - len(fresh)
        for incident_id, (row, confirmed, nearby) in zip(
            writer.reserve_ids(len(fresh)), fresh, strict=True
        ):
            incident_rows.append((incident_id, *row[1:]))
            add_links(incident_id, row[counted_index], confirmed, nearby)
        pending.clear()
        hand_over()

    for line_number, values in spec.records:
        # The same test as any(value.strip() for value in values), without a generator.
        if not "".join(values).strip():
            continue  # a blank line is not a row (spreadsheets leave them at the end)
        read += 1
        try:
            if spec.has_nul and any("\x00" in value for value in values):
                raise RowRejected("the row contains a NUL character")
            if police_uk:
                row, nearby = parse(values, next_id)
                confirmed = None
            else:
                row, confirmed, nearby = generic_row(values, next_id)
        except RowRejected as error:
            result.rejected += 1
            result.rejections.append((line_number, str(error)))
            rejections.append((spec.run_id, line_number, str(error), join_row(values)))
            continue
        ref = row[_ROW_REF]
        if ref in seen_refs:
            duplicate += 1  # twice in this file, or (when read into memory) already held
            continue
        seen_refs.add(ref)
        if probing:
            pending.append((row, confirmed, nearby))
            if len(pending) >= batch_rows:
                flush_pending()
            continue
        # The hot path: the row already carries its id.
        incident_rows.append(row)
        if nearby or confirmed:
            add_links(next_id, row[counted_index], confirmed, nearby)
        next_id += 1
        if len(incident_rows) >= batch_rows:
            hand_over()
    if pending:
        flush_pending()
    if incident_rows:
        hand_over()
    result.read = read
    result.duplicate = duplicate
    result.linked = linked
    result.suggested = suggested
    return result, rejections


def _import_rows_in_child(
    spec: _Import, writer: _BulkWriter, linker: _Linker, held: set[str]
) -> tuple[IncidentImportResult, list[tuple[Any, ...]]]:
    """_import_rows in a second process that sends each batch's statements here to be
    executed: the same rows, ids, links and counts, with the reading overlapping the
    writing. The child numbers rows from the id read here (under SQLite's write lock),
    and dedupes against `held`, so it never needs the database."""
    writer.next_free_id()

    def read(send: Callable[[Any], None]) -> tuple[IncidentImportResult, list[tuple[Any, ...]]]:
        writer.record(send)
        counts = _import_rows(spec, writer, linker, held)
        writer.finish()
        return counts

    def write(statements: list[tuple[str, int, Any]]) -> None:
        for table, rows, parameters in statements:
            writer.execute(table, rows, parameters)

    return parallel.run_in_child(read, write)


def rejections_csv(run: IncidentImportRun) -> str:
    """The run's rejected rows as CSV (see licensing.csvfiles.rejections_csv)."""
    return rejected_rows_csv(run.rejections)
