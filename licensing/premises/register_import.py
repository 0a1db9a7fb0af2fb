"""Import a council premises licence register in the LGA "PremisesLicences" schema.

Real registers are messy (see ../shared/data/README.md): cp1252 bytes, CRLF, tens of
thousands of blank trailing rows, stray spaces, "NA" for missing values. Blank rows (of
any length) are skipped and counted; a row that cannot be imported (including a short
row that has content) is kept with its line number and reason. Rows are upserted on
(authority, licence number), so importing the same file again changes nothing and
records no events on the premises' chains.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from licensing.audit.services import append_event
from licensing.auth.models import User
from licensing.csvfiles import CsvRow, decode_text, join_row, read_rows, unreadable_csv
from licensing.csvfiles import rejections_csv as rejected_rows_csv
from licensing.errors import ValidationFailed
from licensing.premises.models import (
    LicenceStatus,
    LicensingAuthority,
    Premises,
    RegisterImportRejection,
    RegisterImportRun,
)
from licensing.premises.services import add_premises, update_details

REQUIRED_COLUMNS = ("CASEREFERENCE", "PREMISESNAME")
MISSING = {"", "NA", "N/A", "NULL"}
STATUS_LABELS = {status.value: status.value for status in LicenceStatus} | {
    "grant": LicenceStatus.CURRENT.value,
    "granted": LicenceStatus.CURRENT.value,
    "issued": LicenceStatus.CURRENT.value,
    "surrender": LicenceStatus.SURRENDERED.value,
    "revocation": LicenceStatus.REVOKED.value,
}
# Register column -> premises field, for values copied as they are. A column the file
# does not have is left alone on existing premises, never blanked.
TEXT_COLUMNS = {
    "LOCATIONTEXT": "address",
    "POSTCODE": "postcode",
    "UPRN": "uprn",
    "LICENCEHOLDER": "licence_holder",
    "DESIGNATEDPREMISESSUPERVISOR": "dps",
    "OPENINGHOURS": "opening_hours",
    "LATITUDE": "latitude",  # extended registers, such as a geocoded extract
    "LONGITUDE": "longitude",
}
ACTIVITY_COLUMNS = ("ENTERTAINMENTTYPELABEL", "ALCOHOLSUPPLY", "LATENIGHTREFRESHMENT")
# Premises field -> the register column a rejection reason names.
FIELD_COLUMNS = {field_name: column for column, field_name in TEXT_COLUMNS.items()} | {
    "licence_number": "CASEREFERENCE",
    "name": "PREMISESNAME",
    "licensable_activities": "ENTERTAINMENTTYPELABEL",
    "licence_status": "STATUSLABEL",
}


def _column_length(field_name: str) -> int:
    length = getattr(Premises.__table__.c[field_name].type, "length", None)
    assert isinstance(length, int)
    return length


# PostgreSQL refuses longer values (failing the whole import); such a row is rejected.
MAX_LENGTHS = {
    name: _column_length(name)
    for name in ("licence_number", "name", "postcode", "licence_holder", "dps")
}


@dataclass
class RegisterImportResult:
    """Counts of one import: read = created + updated + unchanged + skipped + rejected."""

    run_id: int | None = None
    read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    rejected: int = 0
    rejections: list[tuple[int, str]] = field(default_factory=list)

    def summary(self) -> str:
        """The counts on one line."""
        return (
            f"read {self.read}, created {self.created}, updated {self.updated}, "
            f"unchanged {self.unchanged}, skipped {self.skipped}, rejected {self.rejected}"
        )


def _value(record: dict[str, str], column: str) -> str:
    value = " ".join(record.get(column, "").split())
    return "" if value.upper() in MISSING else value


def _truthy(value: str) -> bool:
    return value.strip().upper() in {"TRUE", "YES", "Y", "1"}


def _activities(record: dict[str, str]) -> str:
    labels = _value(record, "ENTERTAINMENTTYPELABEL").split("|")
    parts = [p.strip() for p in labels if p.strip()]
    if _truthy(_value(record, "ALCOHOLSUPPLY")):
        parts.append("Supply of alcohol")
    if _truthy(_value(record, "LATENIGHTREFRESHMENT")):
        parts.append("Late night refreshment")
    return "; ".join(parts)


def row_to_details(record: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """Map one register record to (licence number, premises details); raise
    ValidationFailed with the reason when the row cannot be imported. Only the columns
    the record has become details, so a narrower register never blanks a field."""
    licence_number = _value(record, "CASEREFERENCE")
    name = _value(record, "PREMISESNAME")
    if not licence_number:
        raise ValidationFailed("CASEREFERENCE (licence number) is empty")
    if not name:
        raise ValidationFailed("PREMISESNAME is empty")
    details: dict[str, Any] = {"name": name}
    if "STATUSLABEL" in record:
        status_label = _value(record, "STATUSLABEL").lower()
        status = STATUS_LABELS.get(status_label or "current")
        if status is None:
            raise ValidationFailed(f"STATUSLABEL {status_label!r} is not a known licence status")
        details["licence_status"] = status
    for column, field_name in TEXT_COLUMNS.items():
        if column in record:
            details[field_name] = _value(record, column)
    if any(column in record for column in ACTIVITY_COLUMNS):
        details["licensable_activities"] = _activities(record)
    lengths = {"licence_number": licence_number, **details}
    for field_name, limit in MAX_LENGTHS.items():
        value = lengths.get(field_name)
        if isinstance(value, str) and len(value) > limit:
            raise ValidationFailed(
                f"{FIELD_COLUMNS[field_name]} is longer than {limit} characters ({len(value)})"
            )
    return licence_number, details


def _reason(error: ValidationFailed) -> str:
    """Why a row was rejected, naming the register's columns rather than our fields."""
    if not error.errors:
        return error.message
    return "; ".join(
        f"{FIELD_COLUMNS.get(name, name)}: {message}" for name, message in error.errors.items()
    )


def import_register(
    session: Session,
    data: bytes,
    file_name: str,
    authority: LicensingAuthority,
    actor: User | None,
) -> RegisterImportResult:
    """Import a register file into one authority in one transaction, and record the run.

    Raises ValidationFailed, having written nothing, when the file is not a register
    (a required column is missing) or cannot be read as CSV.
    """
    try:
        return _Import(session, file_name, authority, actor).run(data)
    except BaseException:
        session.rollback()
        raise


class _Import:
    """The state of one import while its rows are read."""

    def __init__(
        self,
        session: Session,
        file_name: str,
        authority: LicensingAuthority,
        actor: User | None,
    ) -> None:
        self.session = session
        self.file_name = file_name
        self.authority = authority
        self.actor = actor
        self.result = RegisterImportResult()
        self.rejections: list[RegisterImportRejection] = []
        self.first_lines: dict[str, int] = {}
        self.existing: dict[str, Premises] = {}
        self.columns: list[str] = []

    def run(self, data: bytes) -> RegisterImportResult:
        try:
            header, rows = read_rows(decode_text(data))
        except csv.Error as error:  # the header itself is unreadable (a 50 MB field, say)
            raise ValidationFailed(
                unreadable_csv(error), {"register_file": "The file cannot be read as CSV"}
            ) from None
        self.columns = [h.strip().upper() for h in header]
        missing = [c for c in REQUIRED_COLUMNS if c not in self.columns]
        if missing:
            raise ValidationFailed(
                "This is not a PremisesLicences register: the header lacks " + ", ".join(missing),
                {
                    "register_file": (
                        "The file must have the PremisesLicences columns, such as CASEREFERENCE"
                    )
                },
            )
        self.existing = {
            p.licence_number: p
            for p in self.session.scalars(
                select(Premises).where(Premises.authority_id == self.authority.id)
            )
        }
        last_line = 1
        try:
            for row in rows:
                last_line = row.line_number
                self.result.read += 1
                self.row(row)
        except csv.Error as error:
            raise ValidationFailed(
                unreadable_csv(error, last_line),
                {"register_file": f"The file cannot be read as CSV after line {last_line}"},
            ) from None
        return self.record_run(data)

    def reject(self, row: CsvRow, reason: str) -> None:
        self.result.rejected += 1
        self.result.rejections.append((row.line_number, reason))
        self.rejections.append(
            RegisterImportRejection(
                line_number=row.line_number, reason=reason, raw=join_row(row.values)
            )
        )

    def row(self, row: CsvRow) -> None:
        """Skip, reject, create, update or leave alone one row, and count it."""
        values = row.values
        if all(not v.strip() for v in values):
            self.result.skipped += 1
            return
        width = len(self.columns)
        if len(values) > width and all(not v.strip() for v in values[width:]):
            values = values[:width]  # empty cells after the last column, as spreadsheets add
        if len(values) != width:
            self.reject(row, f"the row has {len(row.values)} fields; the header has {width}")
            return
        record = dict(zip(self.columns, values, strict=True))
        try:
            licence_number, details = row_to_details(record)
            first = self.first_lines.setdefault(licence_number, row.line_number)
            if first != row.line_number:
                raise ValidationFailed(
                    f"licence number {licence_number} appears again (first on line {first})"
                )
            self.upsert(licence_number, details)
        except ValidationFailed as error:
            self.reject(row, _reason(error))

    def upsert(self, licence_number: str, details: dict[str, Any]) -> None:
        premises = self.existing.get(licence_number)
        if premises is None:
            details["case_officer_id"] = None  # the team assigns case officers, not the council
            self.existing[licence_number] = add_premises(
                self.session,
                self.actor,
                self.authority,
                licence_number,
                details,
                commit=False,
                source="register_import",
            )
            self.result.created += 1
        elif update_details(
            self.session,
            premises,
            self.actor,
            None,
            details,
            f"Register import of {self.file_name}",
            commit=False,
            source="register_import",
        ):
            self.result.updated += 1
        else:
            self.result.unchanged += 1

    def record_run(self, data: bytes) -> RegisterImportResult:
        result = self.result
        actor_id = self.actor.id if self.actor else None
        run = RegisterImportRun(
            authority_id=self.authority.id,
            file_name=self.file_name[:255],
            sha256=hashlib.sha256(data).hexdigest(),
            imported_by_id=actor_id,
            rows_read=result.read,
            created=result.created,
            updated=result.updated,
            unchanged=result.unchanged,
            skipped=result.skipped,
            rejected=result.rejected,
        )
        self.session.add(run)
        self.session.flush()
        for rejection in self.rejections:
            rejection.run_id = run.id
            self.session.add(rejection)
        append_event(
            self.session,
            event="register_imported",
            actor_id=actor_id,
            payload={
                "run_id": run.id,
                "authority": self.authority.code,
                "sha256": run.sha256,
                "read": result.read,
                "created": result.created,
                "updated": result.updated,
                "unchanged": result.unchanged,
                "skipped": result.skipped,
                "rejected": result.rejected,
            },
        )
        self.session.commit()
        result.run_id = run.id
        return result


def rejections_csv(run: RegisterImportRun) -> str:
    """The run's rejected rows as CSV (see licensing.csvfiles.rejections_csv)."""
    return rejected_rows_csv(run.rejections)
