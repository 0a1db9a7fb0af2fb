"""Bulk import of incidents: data.police.uk street-level CSV and a generic RMS layout.

Every row read ends up created, duplicate or rejected (with its line and reason): none
is silently lost. data.police.uk gives ASB rows no Crime ID, and identical ASB rows (same
month, point and type) are separate reports, so each gets a stable identity from its
content plus its occurrence number in the file: re-importing the file, or an overlapping
re-issue of the month, adds nothing.
"""

from __future__ import annotations

import calendar
import hashlib
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from licensing.audit.services import append_event
from licensing.auth.models import User
from licensing.csvfiles import decode_text, join_row, read_rows
from licensing.csvfiles import rejections_csv as rejected_rows_csv
from licensing.errors import ValidationFailed
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
BATCH = 2000

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
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


@lru_cache(maxsize=65536)
def _police_uk_point(lat_text: str, lon_text: str) -> tuple[float | None, float | None]:
    # data.police.uk positions are shared snap points: parse each distinct one once.
    return _coordinates(lat_text, lon_text)


def parse_police_uk(values: list[str], occurrences: Counter[str]) -> tuple[Any, ...]:
    """One data.police.uk row as an incident row (in ROW_FIELDS order); raise
    RowRejected with the reason."""
    if len(values) != len(POLICE_UK_COLUMNS):
        raise RowRejected(f"the row has {len(values)} fields; expected {len(POLICE_UK_COLUMNS)}")
    (
        crime_id,
        month,
        reported_by,
        falls_within,
        lon_text,
        lat_text,
        location,
        lsoa_code,
        lsoa_name,
        crime_type,
        outcome,
        context,
    ) = values
    crime_type = crime_type.strip()
    if crime_type not in _POLICE_UK_CATEGORY_SET:
        raise RowRejected(f"Crime type {crime_type!r} is not a data.police.uk crime type")
    month = month.strip()
    counted_at = month_middle(month)
    lat_text, lon_text = lat_text.strip(), lon_text.strip()
    lat, lon = _police_uk_point(lat_text, lon_text)
    location, lsoa_code = location.strip(), lsoa_code.strip()
    reported_by, falls_within = reported_by.strip(), falls_within.strip()
    crime_id = crime_id.strip()
    if crime_id:
        source_ref = crime_id
        if len(source_ref) > 128:
            raise RowRejected("Crime ID is longer than 128 characters")
    else:
        # No Crime ID (ASB): identity is the content plus how many times it has been seen.
        key = "\x1f".join(
            (month, lon_text, lat_text, location, lsoa_code, crime_type, reported_by, falls_within)
        )
        occurrences[key] += 1
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
        source_ref = f"asb-{digest}-{occurrences[key]}"
    return (
        "police-uk",
        source_ref,
        None,
        month,
        counted_at,
        crime_type,
        "",
        location[:300],
        lat,
        lon,
        lsoa_code[:16],
        lsoa_name.strip()[:100],
        outcome.strip()[:200],
        (reported_by or falls_within)[:100],
        context.strip(),
    )


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
# links go in with plain executemany calls (no per-row RETURNING).
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
LINK_COLUMNS = ("premises_id", "incident_id", "status", "method", "distance_m", "created_at")
# What a parser produces, in this order: source … context.
ROW_FIELDS = INSERT_COLUMNS[1:16]
_REF, _OCCURRED, _COUNTED, _LAT, _LON = 1, 2, 4, 8, 9


class _BulkWriter:
    """Raw-driver writes for the import's hot path: id reservation, existence checks,
    executemany inserts. Timestamps are adapted the way SQLAlchemy stores them."""

    def __init__(self, session: Session) -> None:
        self.session = session
        connection = session.connection()
        self.dialect = connection.dialect.name
        dbapi = connection.connection.dbapi_connection
        assert dbapi is not None
        self.cursor = dbapi.cursor()
        self.mark = "?" if self.dialect == "sqlite" else "%s"

    def time(self, moment: datetime | None) -> Any:
        """A UTC datetime as this driver stores it in our naive-UTC columns."""
        if moment is None:
            return None
        naive = moment.astimezone(UTC).replace(tzinfo=None)
        return naive.isoformat(" ", timespec="microseconds") if self.dialect == "sqlite" else naive

    def reserve_ids(self, count: int) -> list[int]:
        """`count` new incident ids. SQLite: the import holds the write lock (it has
        already written its run row), so max(id) cannot move under it. PostgreSQL: the
        sequence hands them out."""
        if count == 0:
            return []
        if self.dialect == "sqlite":
            self.cursor.execute("SELECT COALESCE(MAX(id), 0) FROM incidents")
            (highest,) = self.cursor.fetchone() or (0,)
            start = int(highest) + 1
            return list(range(start, start + count))
        self.cursor.execute(
            "SELECT nextval(pg_get_serial_sequence('incidents', 'id')) FROM generate_series(1, %s)",
            (count,),
        )
        return [int(r[0]) for r in self.cursor.fetchall()]

    def existing_refs(self, source: str, refs: list[str]) -> set[str]:
        """Which of these source references are already held."""
        found: set[str] = set()
        for start in range(0, len(refs), 500):
            chunk = refs[start : start + 500]
            marks = ", ".join([self.mark] * len(chunk))
            self.cursor.execute(
                f"SELECT source_ref FROM incidents WHERE source = {self.mark} AND source_ref IN ({marks})",  # noqa: S608 - placeholders only
                (source, *chunk),
            )
            found.update(r[0] for r in self.cursor.fetchall())
        return found

    def insert(self, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        """One executemany INSERT."""
        if not rows:
            return
        marks = ", ".join([self.mark] * len(columns))
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608 - our names
        self.cursor.executemany(sql, rows)


class _Linker:
    """Links new incidents to premises: confirmed by licence number or UPRN, suggested by
    proximity. The grid is built once per import, and since data.police.uk positions are
    shared snap points, each distinct point is looked up once."""

    def __init__(self, session: Session, radius_m: float) -> None:
        self.session = session
        self.radius_m = radius_m
        self._grid: PremisesGrid | None = None
        self._near_cache: dict[tuple[float, float], list[tuple[int, float]]] = {}
        self._by_licence: dict[tuple[str, str], int] | None = None
        self._by_uprn: dict[str, int] = {}

    def near(self, lat: float, lon: float) -> list[tuple[int, float]]:
        """Premises within the radius of a point, memoised per point."""
        key = (lat, lon)
        cached = self._near_cache.get(key)
        if cached is None:
            if self._grid is None:
                rows = self.session.execute(
                    select(Premises.id, Premises.latitude, Premises.longitude).where(
                        Premises.latitude.is_not(None), Premises.longitude.is_not(None)
                    )
                )
                self._grid = PremisesGrid(
                    ((i, la, lo) for i, la, lo in rows if la is not None and lo is not None),
                    self.radius_m,
                )
            cached = [(pid, round(d, 1)) for pid, d in self._grid.near(lat, lon)]
            self._near_cache[key] = cached
        return cached

    def premises_for(self, hints: dict[str, str]) -> tuple[int, str] | None:
        """The premises a licence number (with authority) or UPRN names, and how."""
        if self._by_licence is None:
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
        if hints.get("licence_number") and hints.get("authority"):
            pid = self._by_licence.get((hints["authority"].upper(), hints["licence_number"]))
            if pid:
                return pid, "licence_number"
        if hints.get("uprn"):
            pid = self._by_uprn.get(hints["uprn"])
            if pid:
                return pid, "uprn"
        return None


def _rows(text: str, fmt: str) -> tuple[list[str], Iterator[Any]]:
    header, rows = read_rows(text)
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
    return clean, rows


def import_incidents(
    session: Session,
    data: bytes,
    file_name: str,
    fmt: str,
    actor: User | None,
    radius_m: float = DEFAULT_RADIUS_M,
) -> IncidentImportResult:
    """Import a file of incidents in one transaction, link them, and record the run."""
    if fmt not in FORMATS:
        raise ValidationFailed(f"format must be one of {', '.join(FORMATS)}")
    text = decode_text(data)
    has_nul = "\x00" in text  # checked per row only when the file holds one at all
    header, rows = _rows(text, fmt)
    run = IncidentImportRun(
        file_name=file_name[:255],
        sha256=hashlib.sha256(data).hexdigest(),
        format=fmt,
        imported_by_id=actor.id if actor else None,
    )
    session.add(run)
    session.flush()  # also takes SQLite's write lock before ids are reserved
    writer = _BulkWriter(session)
    linker = _Linker(session, radius_m)
    result = IncidentImportResult(run_id=run.id)
    occurrences: Counter[str] = Counter()
    seen_refs: set[str] = set()
    now_value = writer.time(datetime.now(UTC))
    actor_id = actor.id if actor else None
    source = "police-uk" if fmt == "police-uk" else "rms"
    batch: list[tuple[tuple[Any, ...], dict[str, str] | None]] = []
    rejections: list[tuple[Any, ...]] = []
    counted_values: dict[datetime, Any] = {}

    def flush_batch() -> None:
        if not batch:
            return
        held = writer.existing_refs(source, [parsed[_REF] for parsed, _ in batch])
        fresh = [(parsed, hints) for parsed, hints in batch if parsed[_REF] not in held]
        result.duplicate += len(batch) - len(fresh)
        ids = writer.reserve_ids(len(fresh))
        incident_rows: list[tuple[Any, ...]] = []
        link_rows: list[tuple[Any, ...]] = []
        tail = (None, run.id, actor_id, now_value)  # authority, run, created by, created at
        time = writer.time
        for incident_id, (parsed, hints) in zip(ids, fresh, strict=True):
            counted = parsed[_COUNTED]
            counted_value = counted_values.get(counted)
            if counted_value is None:
                counted_value = counted_values[counted] = time(counted)
            occurred = parsed[_OCCURRED]
            incident_rows.append(
                (incident_id, *parsed[:2], time(occurred) if occurred else None, parsed[3],
                 counted_value, *parsed[5:], *tail)
            )  # fmt: skip
            confirmed = linker.premises_for(hints) if hints else None
            if confirmed:
                link_rows.append(
                    (confirmed[0], incident_id, "confirmed", confirmed[1], None, now_value)
                )
                result.linked += 1
            elif parsed[_LAT] is not None and parsed[_LON] is not None:
                for premises_id, distance in linker.near(parsed[_LAT], parsed[_LON]):
                    link_rows.append(
                        (premises_id, incident_id, "suggested", "proximity", distance, now_value)
                    )
                    result.suggested += 1
        writer.insert("incidents", INSERT_COLUMNS, incident_rows)
        writer.insert("premises_incident_links", LINK_COLUMNS, link_rows)
        result.created += len(incident_rows)
        batch.clear()

    for row in rows:
        if not any(value.strip() for value in row.values):
            continue  # a blank line is not a row (spreadsheets leave them at the end)
        result.read += 1
        try:
            if has_nul and any("\x00" in value for value in row.values):
                raise RowRejected("the row contains a NUL character")
            if fmt == "police-uk":
                parsed = parse_police_uk(row.values, occurrences)
                hints = None
            else:
                if len(row.values) != len(header):
                    raise RowRejected(
                        f"the row has {len(row.values)} fields; the header has {len(header)}"
                    )
                parsed, hints = parse_generic(dict(zip(header, row.values, strict=True)))
        except RowRejected as error:
            result.rejected += 1
            result.rejections.append((row.line_number, str(error)))
            rejections.append((run.id, row.line_number, str(error), join_row(row.values)))
            continue
        if parsed[_REF] in seen_refs:
            result.duplicate += 1  # the same crime twice in one file
            continue
        seen_refs.add(parsed[_REF])
        batch.append((parsed, hints))
        if len(batch) >= BATCH:
            flush_batch()
    flush_batch()

    writer.insert(
        "incident_import_rejections", ("run_id", "line_number", "reason", "raw"), rejections
    )
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
        actor_id=actor_id,
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
    return result


def rejections_csv(run: IncidentImportRun) -> str:
    """The run's rejected rows as CSV (see licensing.csvfiles.rejections_csv)."""
    return rejected_rows_csv(run.rejections)
