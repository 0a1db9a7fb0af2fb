"""`licensing bundles …`: check a bundle ZIP against its manifest (and the database)."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import click
from flask.cli import with_appcontext
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from licensing.evidence.packaging import verify_zip


@click.group("bundles")
def bundles_group() -> None:
    """Evidence bundles."""


def _recorded_hash(reference: str, version: int, variant: str) -> str | None:
    """The ZIP hash this database holds for a bundle copy, or None when the bundle is not
    in this database (someone checking a file they were sent)."""
    from licensing.db import get_session
    from licensing.evidence.models import Bundle

    try:
        bundle = get_session().scalar(
            select(Bundle).where(Bundle.reference == reference, Bundle.version == version)
        )
    except SQLAlchemyError:
        return None
    if bundle is None:
        return None
    return bundle.shared_zip_sha256 if variant == "shared" else bundle.police_zip_sha256


@bundles_group.command("verify")
@click.argument("zip_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--no-database",
    is_flag=True,
    help="Check the ZIP against its own manifest only, not against the bundle on record.",
)
@with_appcontext
def verify(zip_path: Path, no_database: bool) -> None:
    """Check ZIP_PATH: every file matches the manifest's SHA-256 and size, nothing is
    missing or extra, and (when the bundle is in this database) the ZIP is the one
    issued. Exits 1 on any mismatch."""
    data = zip_path.read_bytes()
    result = verify_zip(data)
    problems = list(result.problems)
    manifest = result.manifest or {}
    if result.manifest is not None and not no_database:
        recorded = _recorded_hash(
            str(manifest.get("reference")),
            int(manifest.get("version") or 0),
            str(manifest.get("variant")),
        )
        if recorded is not None and recorded != hashlib.sha256(data).hexdigest():
            problems.append(
                "the ZIP differs from the one on record for this bundle (its SHA-256 does "
                "not match)"
            )
    if problems:
        click.echo(f"FAILED: {zip_path.name}", err=True)
        for problem in problems:
            click.echo(f"  - {problem}", err=True)
        sys.exit(1)
    files = manifest.get("files", [])
    click.echo(
        f"OK: {zip_path.name} is bundle {manifest.get('reference')} v{manifest.get('version')} "
        f"({manifest.get('variant')} copy); {len(files)} files match the manifest"
    )
    head = manifest.get("audit_chain_head") or {}
    click.echo(f"Audit record up to event {head.get('seq')} ({head.get('hash')})")
