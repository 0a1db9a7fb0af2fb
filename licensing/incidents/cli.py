"""`licensing incidents …` commands."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask.cli import with_appcontext

from licensing.cli import default_rejected_path, write_private
from licensing.db import get_session
from licensing.errors import DomainError


@click.group("incidents")
def incidents_group() -> None:
    """Incidents and ASB reports."""


@incidents_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["police-uk", "generic"]),
    default="police-uk",
    show_default=True,
)
@click.option(
    "--radius",
    "radius_m",
    type=float,
    default=50.0,
    show_default=True,
    help="Suggest links to premises within this many metres",
)
@click.option(
    "--rejected-out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write rejected rows here as CSV",
)
@with_appcontext
def incidents_import(file: Path, fmt: str, radius_m: float, rejected_out: Path | None) -> None:
    """Import a data.police.uk street-level CSV or a generic RMS export."""
    from licensing.incidents import recommendations
    from licensing.incidents.importer import import_incidents, rejections_csv
    from licensing.incidents.models import IncidentImportRun

    session = get_session()
    try:
        result = import_incidents(session, file.read_bytes(), file.name, fmt, None, radius_m)
    except DomainError as error:
        click.echo(f"Error: {error.message}", err=True)
        sys.exit(1)
    click.echo(
        f"read {result.read}\ncreated {result.created}\nduplicate {result.duplicate}\n"
        f"rejected {result.rejected}\nlinked {result.linked}\nsuggested {result.suggested}"
    )
    raised = recommendations.evaluate(session)
    if raised:
        click.echo(f"recommendations raised {len(raised)}")
    if result.rejected:
        run = session.get(IncidentImportRun, result.run_id)
        # Rejected rows can hold personal data: by default they go under instance/ (not
        # the current directory), readable by this user only.
        target = rejected_out or default_rejected_path(
            f"incident-import-{result.run_id}-rejected.csv"
        )
        if run is not None:
            write_private(target, rejections_csv(run))
            click.echo(f"Rejected rows written to {target}", err=True)


@incidents_group.command("recommend")
@with_appcontext
def incidents_recommend() -> None:
    """Apply the threshold rules now and print how many recommendations were raised."""
    from licensing.incidents import recommendations

    raised = recommendations.evaluate(get_session())
    click.echo(f"recommendations raised {len(raised)}")
