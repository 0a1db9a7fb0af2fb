"""`licensing scheduler …`: run the one scheduler process, or one pass of its jobs."""

from __future__ import annotations

from datetime import datetime

import click
from flask import current_app
from flask.cli import with_appcontext

from licensing.timeutil import parse_instant


@click.group("scheduler")
def scheduler_group() -> None:
    """Scheduled work: alerts, digests, recommendations and sending email."""


@scheduler_group.command("run")
@with_appcontext
def scheduler_run() -> None:
    """Run the scheduler until stopped (a standby if another one is active)."""
    from licensing.notifications.scheduler import run_forever

    run_forever(current_app._get_current_object(), say=click.echo)  # type: ignore[attr-defined]


@scheduler_group.command("tick")
@click.option(
    "--now",
    "now_text",
    help="Pretend it is this time (ISO 8601; without an offset, UK time)",
)
@with_appcontext
def scheduler_tick(now_text: str | None) -> None:
    """Run one pass of every job and exit (for cron, tests and demos)."""
    from licensing.notifications.scheduler import tick

    now: datetime | None = None
    if now_text:
        try:
            now = parse_instant(now_text)
        except ValueError:
            raise click.BadParameter(f"{now_text!r} is not an ISO 8601 date-time") from None
    click.echo(tick(current_app._get_current_object(), now).describe())  # type: ignore[attr-defined]
