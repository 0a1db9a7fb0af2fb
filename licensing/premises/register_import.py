"""Import a council premises licence register in the LGA "PremisesLicences" schema.

Real registers are messy (see ../shared/data/README.md): cp1252 bytes, CRLF, tens of
thousands of blank trailing rows, stray spaces, "NA" for missing values. Blank rows are
skipped and counted; a row that cannot be imported is kept with its line number and
reason. Rows are upserted on (authority, licence number), so importing the same file
again changes nothing and records no events.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from licensing.audit.services import append_event
from licensing.auth.models import User
from licensing.csvfiles import decode_text, join_row, read_rows, write_csv
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
    parts = [p.strip() for p in _value(record, "ENTERTAINMENTTYPELABEL").split("|") if p.strip()]
    if _truthy(_value(record, "ALCOHOLSUPPLY")):
        parts.append("Supply of alcohol")
    if _truthy(_value(record, "LATENIGHTREFRESHMENT")):
        parts.append("Late night refreshment")
    return "; ".join(parts)


def row_to_details(record: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """Map one register record to (licence number, premises details); raise
    ValidationFailed with the reason when the row cannot be imported."""
    licence_number = _value(record, "CASEREFERENCE")
    name = _value(record, "PREMISESNAME")
    if not licence_number:
        raise ValidationFailed("CASEREFERENCE (licence number) is empty")
    if not name:
        raise ValidationFailed("PREMISESNAME is empty")
    status_label = _value(record, "STATUSLABEL").lower()
    status = STATUS_LABELS.get(status_label or "current")
    if status is None:
        raise ValidationFailed(f"STATUSLABEL {status_label!r} is not a known licence status")
    details: dict[str, Any] = {
        "name": name,
        "address": _value(record, "LOCATIONTEXT"),
        "postcode": _value(record, "POSTCODE"),
        "uprn": _value(record, "UPRN"),
        "licence_holder": _value(record, "LICENCEHOLDER"),
        "dps": _value(record, "DESIGNATEDPREMISESSUPERVISOR"),
        "licensable_activities": _activities(record),
        "opening_hours": _value(record, "OPENINGHOURS"),
        "licence_status": status,
    }
    # Extended registers (such as a geocoded extract) carry coordinates.
    for column in ("LATITUDE", "LONGITUDE"):
        if column in record:
            details[column.lower()] = _value(record, column)
    return licence_number, details


def import_register(
    session: Session,
    data: bytes,
    file_name: str,
    authority: LicensingAuthority,
    actor: User | None,
) -> RegisterImportResult:
    """Import a register file into one authority in one transaction, and record the run."""
    header, rows = read_rows(decode_text(data))
    columns = [h.strip().upper() for h in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise ValidationFailed(
            "This is not a PremisesLicences register: the header lacks " + ", ".join(missing),
            {"register_file": "The file must have the PremisesLicences columns, such as CASEREFERENCE"},
        )
    existing = {
        p.licence_number: p
        for p in session.scalars(select(Premises).where(Premises.authority_id == authority.id))
    }
    seen_lines: dict[str, int] = {}
    result = RegisterImportResult()
    rejections: list[RegisterImportRejection] = []

    def reject(line: int, reason: str, values: list[str]) -> None:
        result.rejected += 1
        result.rejections.append((line, reason))
        rejections.append(RegisterImportRejection(line_number=line, reason=reason, raw=join_row(values)))

    for row in rows:
        result.read += 1
        if all(not v.strip() for v in row.values):
            result.skipped += 1
            continue
        if len(row.values) != len(columns):
            reject(row.line_number, f"the row has {len(row.values)} fields; the header has {len(columns)}", row.values)
            continue
        record = dict(zip(columns, row.values, strict=True))
        try:
            licence_number, details = row_to_details(record)
            if licence_number in seen_lines:
                raise ValidationFailed(
                    f"licence number {licence_number} appears again (first on line {seen_lines[licence_number]})"
                )
            seen_lines[licence_number] = row.line_number
            premises = existing.get(licence_number)
            if premises is None:
                details["case_officer_id"] = None  # the team assigns case officers, not the council
                existing[licence_number] = add_premises(
                    session, actor, authority, licence_number, details, commit=False, source="register_import"
                )
                result.created += 1
            elif update_details(
                session,
                premises,
                actor,
                None,
                details,
                f"Register import of {file_name}",
                commit=False,
                source="register_import",
            ):
                result.updated += 1
            else:
                result.unchanged += 1
        except ValidationFailed as error:
            reason = "; ".join(f"{k}: {v}" for k, v in error.errors.items()) if error.errors else error.message
            reject(row.line_number, reason, row.values)

    run = RegisterImportRun(
        authority_id=authority.id,
        file_name=file_name[:255],
        sha256=hashlib.sha256(data).hexdigest(),
        imported_by_id=actor.id if actor else None,
        rows_read=result.read,
        created=result.created,
        updated=result.updated,
        unchanged=result.unchanged,
        skipped=result.skipped,
        rejected=result.rejected,
    )
    session.add(run)
    session.flush()
    for rejection in rejections:
        rejection.run_id = run.id
        session.add(rejection)
    append_event(
        session,
        event="register_imported",
        actor_id=actor.id if actor else None,
        payload={
            "run_id": run.id,
            "authority": authority.code,
            "sha256": run.sha256,
            "read": result.read,
            "created": result.created,
            "updated": result.updated,
            "unchanged": result.unchanged,
            "skipped": result.skipped,
            "rejected": result.rejected,
        },
    )
    session.commit()
    result.run_id = run.id
    return result


def rejections_csv(run: RegisterImportRun) -> str:
    """The run's rejected rows as CSV: line number, reason, and the row as it was read."""
    return write_csv(
        ["line_number", "reason", "row"],
        ([r.line_number, r.reason, r.raw] for r in run.rejections),
    )
