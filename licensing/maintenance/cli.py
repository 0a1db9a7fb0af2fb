"""`licensing backup`, `licensing restore` and `licensing retention …` commands."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from licensing.db import get_engine, get_session
from licensing.errors import DomainError
from licensing.evidence import store
from licensing.evidence.store import Backend
from licensing.maintenance.backup import MaintenanceError, create_backup, restore_backup
from licensing.maintenance.retention import (
    DEFAULT_UNLINKED_INCIDENT_MONTHS,
    erase_person,
    run_retention,
)


def _fail(message: str) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(1)


def _operator() -> str | None:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return None


def _actor_id(email: str | None) -> int | None:
    if not email:
        return None
    from licensing.auth.models import User

    user = get_session().scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        _fail(f"no user with the email {email}")
        return None
    return user.id


def _evidence_store() -> Path | Backend:
    """The configured evidence store: its directory, or the store itself (an S3 bucket)."""
    backend = store.backend()
    return backend.root if isinstance(backend, store.DirectoryStore) else backend


@click.command("backup")
@click.argument("path", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace PATH if it already exists")
@with_appcontext
def backup_command(path: Path, force: bool) -> None:
    """Back up the database and the evidence store into the directory PATH.

    Safe while the app runs: SQLite is copied with its online backup API, PostgreSQL
    with pg_dump (one snapshot). PATH gets manifest.json, the database file and
    evidence/."""
    try:
        manifest = create_backup(
            str(current_app.config["DATABASE_URL"]),
            _evidence_store(),
            path,
            force=force,
        )
    except MaintenanceError as error:
        _fail(str(error))
        return
    rows = sum(manifest["row_counts"].values())
    evidence = manifest["evidence"]
    click.echo(f"Backed up to {path.absolute()}")
    click.echo(f"schema revision {manifest['schema_revision']}")
    click.echo(f"rows {rows} in {len(manifest['row_counts'])} tables")
    click.echo(f"audit chains {len(manifest['audit_chain_heads'])}")
    click.echo(f"evidence files {evidence['files']} ({evidence['bytes']} bytes)")
    if evidence["damaged"]:
        click.echo(
            f"WARNING: {len(evidence['damaged'])} evidence files do not match their hash: "
            + ", ".join(name[:12] for name in evidence["damaged"]),
            err=True,
        )
        sys.exit(1)


@click.command("restore")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@with_appcontext
def restore_command(path: Path) -> None:
    """Restore the backup in PATH into the configured database, which must be empty
    (no premises, users or audit events), then verify the audit trail.

    Stop the app and the scheduler first. There is no --force: to restore over data,
    point DATABASE_URL at a new, empty database."""
    get_session().close()
    # Nothing of this process may hold the target open while its pages are replaced.
    get_engine().dispose()
    try:
        result = restore_backup(
            path,
            str(current_app.config["DATABASE_URL"]),
            _evidence_store(),
        )
    except MaintenanceError as error:
        _fail(str(error))
        return
    finally:
        get_engine().dispose()
    manifest = result.manifest
    click.echo(f"Restored the backup of {manifest['created_at']}")
    click.echo(f"schema revision {result.facts['schema_revision']}")
    click.echo(f"rows {sum(result.facts['row_counts'].values())}")
    click.echo(
        f"evidence files {result.evidence.files} copied, "
        f"{result.evidence.already_present} already present"
    )
    for table, (expected, found) in sorted(result.count_mismatches.items()):
        click.echo(f"MISMATCH: {table} has {found} rows; the backup had {expected}", err=True)
    for name in result.evidence.damaged:
        click.echo(f"DAMAGED: evidence file {name[:12]}… does not match its hash", err=True)
    click.echo(f"audit verify: {result.verify.describe()}")
    if not result.ok:
        sys.exit(1)


@click.group("retention")
def retention_group() -> None:
    """Retention of incidents and erasure of personal data."""


@retention_group.command("run")
@click.option("--dry-run", is_flag=True, help="Report what would be deleted; change nothing")
@click.option("--by", "by_email", help="The email of the user running it (recorded)")
@with_appcontext
def retention_run(dry_run: bool, by_email: str | None) -> None:
    """Delete unlinked incidents older than RETENTION_UNLINKED_INCIDENT_MONTHS."""
    months = int(
        current_app.config.get(
            "RETENTION_UNLINKED_INCIDENT_MONTHS", DEFAULT_UNLINKED_INCIDENT_MONTHS
        )
    )
    try:
        report = run_retention(
            get_session(), months=months, actor_id=_actor_id(by_email), dry_run=dry_run
        )
    except DomainError as error:
        _fail(error.message)
        return
    verb = "would delete" if dry_run else "deleted"
    click.echo(f"Unlinked incidents counted before {report.cutoff:%Y-%m-%d} ({months} months)")
    click.echo(f"incidents {verb} {len(report.incident_ids)}")
    click.echo(f"people {verb} {report.people}")
    click.echo(f"rejected links {verb} {report.links}")
    click.echo(f"incidents skipped {len(report.skipped)}")
    if report.incident_ids:
        click.echo("incident ids: " + ", ".join(str(i) for i in report.incident_ids))
    for incident_id, why in sorted(report.skipped.items()):
        click.echo(f"  skipped incident {incident_id}: {why}")
    if dry_run:
        click.echo("Dry run: nothing was changed.")


@retention_group.command("erase-person")
@click.argument("person_id", metavar="INCIDENT_PERSON_ID", type=int)
@click.option("--reason", required=True, help="Why (e.g. the request reference)")
@click.option("--by", "by_email", help="The email of the user doing it (recorded)")
@with_appcontext
def retention_erase_person(person_id: int, reason: str, by_email: str | None) -> None:
    """Blank the name, phone, email and address of one incident person (the role stays)."""
    try:
        erasure = erase_person(
            get_session(),
            person_id,
            reason,
            actor_id=_actor_id(by_email),
            operator=_operator(),
        )
    except DomainError as error:
        _fail(error.message)
        return
    if not erasure.fields:
        click.echo(f"Incident person {person_id} holds no details to erase; nothing recorded.")
        return
    click.echo(
        f"Erased {', '.join(erasure.fields)} of the {erasure.role} (person {erasure.person_id}) "
        f"on incident {erasure.incident_id}."
    )
