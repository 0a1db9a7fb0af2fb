"""The `licensing` command: a Flask CLI group over the app factory."""

from __future__ import annotations

import os
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click
from flask import Flask
from flask.cli import FlaskGroup, with_appcontext

from licensing.db import get_session
from licensing.errors import DomainError

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

ROOT = Path(__file__).resolve().parent.parent


def default_rejected_path(file_name: str) -> Path:
    """Where a command keeps a rejected-rows file when not told: instance/rejected/."""
    from flask import current_app

    return Path(current_app.instance_path) / "rejected" / file_name


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (it may hold personal data)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write(text)


def _fail(error: DomainError) -> NoReturn:
    click.echo(f"Error: {error.message}", err=True)
    sys.exit(1)


def alembic_config(database_url: str) -> AlembicConfig:
    """An Alembic config pointing at migrations/ and the given database."""
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade_database(database_url: str, revision: str = "head") -> None:
    """Run the Alembic migrations up to `revision` on the given database."""
    from alembic import command

    command.upgrade(alembic_config(database_url), revision)


def register_commands(app: Flask) -> None:
    """Attach the command groups to the app's CLI."""
    from licensing.auth.cli import authz_group
    from licensing.demo import demo_group
    from licensing.evidence.cli import bundles_group
    from licensing.incidents.cli import incidents_group
    from licensing.maintenance.cli import backup_command, restore_command, retention_group
    from licensing.notifications.cli import scheduler_group

    app.cli.add_command(db_group)
    app.cli.add_command(authorities_group)
    app.cli.add_command(users_group)
    app.cli.add_command(tokens_group)
    app.cli.add_command(premises_group)
    app.cli.add_command(audit_group)
    app.cli.add_command(demo_group)
    app.cli.add_command(incidents_group)
    app.cli.add_command(scheduler_group)
    app.cli.add_command(bundles_group)
    app.cli.add_command(backup_command)
    app.cli.add_command(restore_command)
    app.cli.add_command(retention_group)
    app.cli.add_command(authz_group)


@click.group("db")
def db_group() -> None:
    """Database schema."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@with_appcontext
def db_upgrade(revision: str) -> None:
    """Migrate the configured database to the latest schema."""
    from flask import current_app

    upgrade_database(str(current_app.config["DATABASE_URL"]), revision)
    click.echo("Database is up to date.")


@click.group("authorities")
def authorities_group() -> None:
    """Licensing authorities (councils)."""


@authorities_group.command("create")
@click.argument("code")
@click.argument("name")
@with_appcontext
def authorities_create(code: str, name: str) -> None:
    """Add a licensing authority: CODE NAME."""
    from licensing.auth.services import create_authority

    try:
        authority = create_authority(get_session(), code, name)
    except DomainError as error:
        _fail(error)
    click.echo(f"Created authority {authority.code}: {authority.name}")


@click.group("users")
def users_group() -> None:
    """User accounts."""


@users_group.command("create")
@click.argument("email")
@click.option(
    "--role", type=click.Choice(["officer", "supervisor", "council", "admin"]), required=True
)
@click.option("--authority", "authority_code", help="Licensing authority code (council users)")
@click.option("--name", default="", help="Display name (defaults to the email)")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input")
@with_appcontext
def users_create(
    email: str, role: str, authority_code: str | None, name: str, password_stdin: bool
) -> None:
    """Create a user; the password comes from stdin or a prompt, never an argument."""
    from licensing.auth.services import create_user

    if password_stdin or not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user = create_user(get_session(), email, name or email, role, password, authority_code)
    except DomainError as error:
        _fail(error)
    click.echo(f"Created {user.role} {user.email}")


@users_group.command("unlock")
@click.argument("email")
@with_appcontext
def users_unlock(email: str) -> None:
    """Unlock an account locked by failed sign-ins (for when no admin can sign in)."""
    from licensing.auth.accounts import unlock_from_console

    try:
        cleared = unlock_from_console(get_session(), email)
    except DomainError as error:
        _fail(error)
    click.echo(f"Unlocked {email}" if cleared else f"{email} was not locked")


@click.group("tokens")
def tokens_group() -> None:
    """API bearer tokens."""


@tokens_group.command("create")
@click.argument("email")
@click.option("--label", default="", help="What the token is for")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    metavar="SCOPE",
    help="read, ingest or workflow; repeat or comma-separate. Default: all three",
)
@click.option(
    "--expires-days",
    type=click.IntRange(min=1),
    default=90,
    show_default=True,
    help="Days until the token expires",
)
@with_appcontext
def tokens_create(email: str, label: str, scopes: tuple[str, ...], expires_days: int) -> None:
    """Print a new API token for EMAIL, alone on stdout. It is shown only once."""
    from licensing.auth.services import issue_token

    try:
        record, token = issue_token(
            get_session(),
            email,
            label,
            scopes=scopes or None,
            expires_in=timedelta(days=expires_days),
        )
    except DomainError as error:
        _fail(error)
    click.echo(token)
    click.echo(
        f"Token {record.id} for {record.user.email}: scopes {record.scopes}; "
        f"expires {record.expires_at:%Y-%m-%d %H:%M} UTC. It is shown only once.",
        err=True,
    )


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M}" if moment is not None else "-"


@tokens_group.command("list")
@click.argument("email", required=False)
@with_appcontext
def tokens_list(email: str | None) -> None:
    """List API tokens (all, or EMAIL's): id, user, label, scopes, created, expires, last
    used, revoked. Times are UTC. The tokens themselves are never stored or shown."""
    from licensing.auth.services import list_tokens

    try:
        records = list_tokens(get_session(), email)
    except DomainError as error:
        _fail(error)
    columns = ("id", "user", "label", "scopes", "created", "expires", "last_used", "revoked")
    click.echo("\t".join(columns))
    for record in records:
        row = (
            str(record.id),
            record.user.email,
            record.label or "-",
            ",".join(record.scopes.split()),
            _when(record.created_at),
            _when(record.expires_at),
            _when(record.last_used_at),
            _when(record.revoked_at),
        )
        click.echo("\t".join(value.replace("\t", " ").replace("\n", " ") for value in row))


@tokens_group.command("revoke")
@click.argument("token_id", type=int)
@with_appcontext
def tokens_revoke(token_id: int) -> None:
    """Revoke the API token with id TOKEN_ID (from `licensing tokens list`) at once."""
    from licensing.auth.services import revoke_token

    try:
        record, revoked = revoke_token(get_session(), token_id)
    except DomainError as error:
        _fail(error)
    if revoked:
        click.echo(f"Revoked token {record.id} of {record.user.email}")
    else:
        click.echo(f"Token {record.id} was already revoked at {_when(record.revoked_at)} UTC")


@click.group("premises")
def premises_group() -> None:
    """The premises register."""


@premises_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--authority", "authority_code", required=True, help="Licensing authority code")
@click.option(
    "--rejected-out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write rejected rows here as CSV",
)
@with_appcontext
def premises_import(file: Path, authority_code: str, rejected_out: Path | None) -> None:
    """Import a council register (LGA PremisesLicences CSV) into one authority."""
    from licensing.premises.models import RegisterImportRun
    from licensing.premises.register_import import import_register, rejections_csv
    from licensing.premises.services import authority_by_code

    session = get_session()
    try:
        authority = authority_by_code(session, authority_code)
        result = import_register(session, file.read_bytes(), file.name, authority, None)
    except DomainError as error:
        _fail(error)
    click.echo(
        f"read {result.read}\ncreated {result.created}\nupdated {result.updated}\n"
        f"unchanged {result.unchanged}\nskipped {result.skipped}\nrejected {result.rejected}"
    )
    for line, reason in result.rejections[:20]:
        click.echo(f"  line {line}: {reason}", err=True)
    if result.rejected:
        run = session.get(RegisterImportRun, result.run_id)
        # Rejected rows can hold personal data: by default they go under instance/ (not
        # the current directory), readable by this user only.
        target = rejected_out or default_rejected_path(
            f"register-import-{result.run_id}-rejected.csv"
        )
        if run is not None:
            write_private(target, rejections_csv(run))
            click.echo(f"Rejected rows written to {target}", err=True)


@click.group("audit")
def audit_group() -> None:
    """The tamper-evident audit trail."""


@audit_group.command("verify")
@with_appcontext
def audit_verify() -> None:
    """Check every hash chain; exit 1 and name the first broken link if any."""
    from licensing.audit.services import verify_chains

    result = verify_chains(get_session())
    click.echo(result.describe())
    if not result.ok:
        sys.exit(1)


def _create_app_for_cli() -> Flask:
    from licensing import create_app

    return create_app()


cli = FlaskGroup(
    create_app=_create_app_for_cli,
    add_default_commands=True,
    help="Licensing enforcement workflow engine.",
)


def main() -> None:
    """Entry point of the `licensing` console script."""
    cli()
