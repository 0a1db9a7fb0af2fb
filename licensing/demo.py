"""Demo data: a few authorities, ~50 premises in every state with history, one user per role.

Everything goes through the same services as users do, so every history is a valid
audit chain and every later guard is satisfied the way a real officer would satisfy it.
"""

from __future__ import annotations

import random
from datetime import timedelta

import click
from flask.cli import with_appcontext
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from licensing.auth.models import User
from licensing.auth.services import create_authority, create_user
from licensing.db import get_session
from licensing.premises import services
from licensing.premises.models import LicensingAuthority, Premises
from licensing.timeutil import london_today

DEMO_PASSWORD = "demo-password-2026"  # noqa: S105 - printed for the demo; never in production

AUTHORITIES = [
    ("LIV", "Liverpool City Council", (53.4064, -2.9812)),
    ("SEF", "Sefton Council", (53.4839, -3.0064)),
    ("WIR", "Wirral Council", (53.3934, -3.0148)),
]
USERS = [
    ("officer@police.example", "PC Sam Patel", "officer", None),
    ("officer2@police.example", "PC Jo Morgan", "officer", None),
    ("sergeant@police.example", "Sgt Alex Reid", "supervisor", None),
    ("licensing@liverpool.example", "Chris Lee (Liverpool licensing)", "council", "LIV"),
    ("licensing@sefton.example", "Dana Shaw (Sefton licensing)", "council", "SEF"),
    ("admin@police.example", "System administrator", "admin", None),
]
NAMES = [
    "The Crown", "The Swan", "Red Lion", "The Grapes", "Baltic Fleet", "The Philharmonic",
    "Ye Cracke", "The Vines", "Club Neon", "Pier Head Bar", "Kebab Palace", "Late Bite",
    "Corner Off-Licence", "Dockside Tavern", "The Albert", "Lime Street Lounge",
    "Bold Street Social", "The Globe", "Mersey Rooms", "Night Owl Takeaway",
]
KINDS = ["", " Bar", " Club", " Inn", " Express"]
ACTIVITIES = [
    "Supply of alcohol; Recorded Music",
    "Supply of alcohol; Live Music; Recorded Music; Late night refreshment",
    "Late night refreshment",
    "Supply of alcohol (off the premises)",
]


def _user(session: Session, email: str) -> User:
    user = session.scalar(select(User).where(User.email == email))
    assert user is not None
    return user


def load_demo(session: Session, premises_count: int = 50, seed: int = 2026) -> dict[str, int]:
    """Create demo authorities, users and premises moved through the workflow."""
    rng = random.Random(seed)
    for code, name, _centre in AUTHORITIES:
        create_authority(session, code, name)
    for email, name, role, authority in USERS:
        create_user(session, email, name, role, DEMO_PASSWORD, authority)
    officers = [_user(session, "officer@police.example"), _user(session, "officer2@police.example")]
    sergeant = _user(session, "sergeant@police.example")
    today = london_today()
    counts = {"premises": 0}

    for i in range(premises_count):
        code, _name, (lat, lon) = AUTHORITIES[i % len(AUTHORITIES)]
        authority = session.scalar(select(LicensingAuthority).where(LicensingAuthority.code == code))
        assert authority is not None
        officer = officers[i % 2]
        premises = services.add_premises(
            session,
            officer,
            authority,
            f"{code}/PL/{1000 + i}",
            {
                "name": f"{NAMES[i % len(NAMES)]}{KINDS[(i // len(NAMES)) % len(KINDS)]}",
                "address": f"{10 + i} {rng.choice(['Bold Street', 'Seel Street', 'Lord Street', 'Dale Street', 'Wood Street'])}",
                "postcode": f"L{1 + i % 9} {rng.randint(1, 9)}{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}",
                "latitude": round(lat + rng.uniform(-0.01, 0.01), 6),
                "longitude": round(lon + rng.uniform(-0.01, 0.01), 6),
                "licence_holder": f"{NAMES[i % len(NAMES)]} Leisure Ltd",
                "dps": f"Demo Supervisor {i + 1}",
                "licensable_activities": ACTIVITIES[i % len(ACTIVITIES)],
                "opening_hours": "Mon-Thu 11:00-23:00; Fri-Sat 11:00-02:00; Sun 12:00-22:30",
            },
        )
        counts["premises"] += 1
        _walk(session, premises, officer, sergeant, i, today)
    return counts


def _event(session: Session, premises: Premises, actor: User, event: str, reason: str, **params: object) -> None:
    services.apply_event(session, premises, actor, event, premises.version, reason, params)


def _walk(session: Session, premises: Premises, officer: User, sergeant: User, i: int, today: object) -> None:
    """Move premises i along a path chosen by i, so all four states appear with history."""
    path = i % 6
    if path == 0:
        return  # monitored, never escalated
    _event(session, premises, officer, "warn", "Repeated violence at closing time; warning letter sent to DPS")
    if path == 1:
        return  # warned
    if path == 2:
        _event(session, premises, officer, "stand_down", "Action plan completed; no incidents for 12 weeks")
        return  # monitored again, with history
    if path == 5:
        _event(
            session,
            premises,
            sergeant,
            "apply_for_summary_review",
            "Serious disorder: stabbing outside the premises",
            received_at=f"{(london_today() - timedelta(days=1)).isoformat()}T10:30:00",
            certificate_reference=f"SUPT-{2026}-{i:03d}",
        )
        return  # review (summary)
    _event(
        session,
        premises,
        sergeant,
        "apply_for_review",
        "Warning and action plan failed; incidents continued",
        application_date=(london_today() - timedelta(days=10 + i % 20)).isoformat(),
    )
    if path == 3:
        return  # review (standard)
    _event(
        session,
        premises,
        sergeant,
        "record_determination",
        "Sub-committee decision received",
        outcome="modify_conditions",
        decision_date=(london_today() - timedelta(days=2)).isoformat(),
    )  # path 4: action


@click.group("demo")
def demo_group() -> None:
    """Demo data."""


@demo_group.command("load")
@click.option("--if-empty", is_flag=True, help="Do nothing if the register already has premises")
@click.option("--premises", "premises_count", default=50, show_default=True)
@with_appcontext
def demo_load(if_empty: bool, premises_count: int) -> None:
    """Load demo authorities, users and premises, and print the demo sign-ins."""
    session = get_session()
    if session.scalar(select(func.count()).select_from(Premises)):
        if if_empty:
            click.echo("Demo data already loaded.")
            _print_logins()
            return
        raise click.ClickException("The register is not empty; demo data loads only into an empty database")
    counts = load_demo(session, premises_count)
    click.echo(f"Loaded {counts['premises']} demo premises.")
    _print_logins()


def _print_logins() -> None:
    click.echo(f"Demo sign-ins (password for all: {DEMO_PASSWORD}):")
    for email, _name, role, authority in USERS:
        click.echo(f"  {role:<10} {email}{f'  ({authority})' if authority else ''}")
