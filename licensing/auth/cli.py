"""`licensing authz`: the authorisation matrix for people to read."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from licensing.auth.matrix import readme_section, replace_readme_section


@click.group("authz")
def authz_group() -> None:
    """Who may do what."""


@authz_group.command("matrix")
@click.option(
    "--readme",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Rewrite the section between the authorisation-matrix markers of this file.",
)
@with_appcontext
def matrix_command(readme: Path | None) -> None:
    """Print the matrix (actions × roles) and each route's action as Markdown, or write
    them into the README between its markers."""
    section = readme_section(current_app)
    if readme is None:
        click.echo(section)
        return
    text = readme.read_text(encoding="utf-8")
    try:
        updated = replace_readme_section(text, section)
    except ValueError:
        raise click.ClickException(f"{readme} has no authorisation-matrix markers") from None
    readme.write_text(updated, encoding="utf-8")
    click.echo(f"Updated the authorisation matrix in {readme}.")
