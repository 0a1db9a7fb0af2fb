"""Demo data: a few authorities, ~50 premises in every state with history, one user per role.

Everything goes through the same services as users do, so every history is a valid
audit chain and every later guard is satisfied the way a real officer would satisfy it.
"""

from __future__ import annotations

import random
import sys
from datetime import timedelta
from typing import Any

import click
from flask.cli import with_appcontext
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from licensing.auth.models import User
from licensing.auth.services import create_authority, create_user
from licensing.db import get_session, utcnow
from licensing.demo_large import (
    SCALES,
    Progress,
    demo_premises_name,
    load_large,
    snap_points_dir,
    snap_points_from,
)
from licensing.errors import DomainError
from licensing.incidents import recommendations
from licensing.incidents.services import record_incident
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
    "The Crown",
    "The Swan",
    "Red Lion",
    "The Grapes",
    "Baltic Fleet",
    "The Philharmonic",
    "Ye Cracke",
    "The Vines",
    "Club Neon",
    "Pier Head Bar",
    "Kebab Palace",
    "Late Bite",
    "Corner Off-Licence",
    "Dockside Tavern",
    "The Albert",
    "Lime Street Lounge",
    "Bold Street Social",
    "The Globe",
    "Mersey Rooms",
    "Night Owl Takeaway",
]
STREETS = ["Bold Street", "Seel Street", "Lord Street", "Dale Street", "Wood Street"]
POSTCODE_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"
# Fictional witnesses and victims for the demo incidents.
FIRST_NAMES = ["Alex", "Sam", "Jordan", "Casey", "Robin", "Morgan", "Jamie", "Taylor"]
SURNAMES = ["Ashworth", "Brennan", "Catterall", "Dunmore", "Eccleston", "Fairclough"]
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


def _authority(session: Session, code: str) -> LicensingAuthority | None:
    return session.scalar(select(LicensingAuthority).where(LicensingAuthority.code == code))


def load_demo(session: Session, premises_count: int = 50, seed: int = 2026) -> dict[str, int]:
    """Create demo authorities, users and premises moved through the workflow."""
    rng = random.Random(seed)  # noqa: S311 - repeatable demo data, not secrets
    # Authorities and accounts that already exist (an admin created before the demo was
    # loaded, say) are kept as they are.
    for code, name, _centre in AUTHORITIES:
        if _authority(session, code) is None:
            create_authority(session, code, name)
    for email, name, role, authority_code in USERS:
        if session.scalar(select(User.id).where(User.email == email)) is None:
            create_user(session, email, name, role, DEMO_PASSWORD, authority_code)
    officers = [_user(session, "officer@police.example"), _user(session, "officer2@police.example")]
    sergeant = _user(session, "sergeant@police.example")
    today = london_today()
    counts = {"premises": 0}

    for i in range(premises_count):
        code, _name, (lat, lon) = AUTHORITIES[i % len(AUTHORITIES)]
        authority = _authority(session, code)
        assert authority is not None
        officer = officers[i % 2]
        premises = services.add_premises(
            session,
            officer,
            authority,
            f"{code}/PL/{1000 + i}",
            {
                "name": demo_premises_name(NAMES, KINDS, i),
                "address": f"{10 + i} {rng.choice(STREETS)}",
                "postcode": f"L{1 + i % 9} {rng.randint(1, 9)}"
                f"{rng.choice(POSTCODE_LETTERS)}{rng.choice(POSTCODE_LETTERS)}",
                "latitude": round(lat + rng.uniform(-0.01, 0.01), 6),
                "longitude": round(lon + rng.uniform(-0.01, 0.01), 6),
                "licence_holder": f"{NAMES[i % len(NAMES)]} Leisure Ltd",
                "dps": f"Demo Supervisor {i + 1}",
                "licensable_activities": ACTIVITIES[i % len(ACTIVITIES)],
                "opening_hours": "Mon-Thu 11:00-23:00; Fri-Sat 11:00-02:00; Sun 12:00-22:30",
            },
        )
        counts["premises"] += 1
        counts["incidents"] = counts.get("incidents", 0) + _incidents(
            session, premises, officer, i, rng
        )
        _walk(session, premises, officer, sergeant, i, today)
    recommendations.evaluate(session)
    return counts


DEMO_CATEGORIES = [
    "Violence and sexual offences",
    "Public order",
    "Anti-social behaviour",
    "Drugs",
    "Criminal damage and arson",
    "Theft from the person",
]


def _incidents(
    session: Session, premises: Premises, officer: User, i: int, rng: random.Random
) -> int:
    """Evidence for premises i: confirmed incidents (so escalated premises have what the
    warn guard asks for), plus a few reported nearby that await an officer's decision."""
    confirmed = 0 if i % 6 == 0 and i % 12 else 1 + i % 4
    nearby = 2 if i % 5 == 0 else 0
    for n in range(confirmed + nearby):
        days_ago = 1 + rng.randint(0, 80) if n else 1 + rng.randint(0, 20)
        data: dict[str, object] = {
            "source": "rms",
            "source_ref": f"DEMO-{i:03d}-{n}",
            "occurred_at": (
                utcnow() - timedelta(days=days_ago, hours=rng.randint(0, 6))
            ).isoformat(),
            "category": rng.choice(DEMO_CATEGORIES),
            "description": rng.choice(
                [
                    "Fight outside at closing time; two arrests",
                    "Customers refused entry became abusive to door staff",
                    "Report of drug dealing in the toilets",
                    "Glass thrown in the smoking area",
                    "Noise and shouting in the street after closing",
                ]
            ),
            "location": f"Outside {premises.name}",
        }
        if n < confirmed:
            data.update(licence_number=premises.licence_number, authority=premises.authority.code)
        if n == 0:
            # Fictional people (Ofcom drama numbers) so bundles show their redaction.
            data["personal_data"] = {
                "people": [
                    {
                        "role": "witness",
                        "name": f"{rng.choice(FIRST_NAMES)} {rng.choice(SURNAMES)}",
                        "phone": f"07700 900{i:03d}",
                        "email": f"witness{i}@example.org",
                    },
                    {"role": "victim", "name": f"{rng.choice(FIRST_NAMES)} {rng.choice(SURNAMES)}"},
                ]
            }
        elif premises.latitude is not None and premises.longitude is not None:
            data.update(latitude=premises.latitude + 0.0001, longitude=premises.longitude)
        record_incident(session, officer, data)
    return confirmed + nearby


def _event(
    session: Session, premises: Premises, actor: User, event: str, reason: str, **params: object
) -> None:
    services.apply_event(session, premises, actor, event, premises.version, reason, params)


def _bundle(
    session: Session, premises: Premises, officer: User, sergeant: User, review_kind: str
) -> None:
    from licensing.evidence import services as bundles

    draft = bundles.create_bundle(
        session,
        officer,
        premises,
        review_kind=review_kind,
        statement=(
            f"This bundle supports a police application for a review of the premises "
            f"licence of {premises.name}. It sets out, in date order, the incidents linked "
            "to the premises and the steps the licensing team took."
        ),
    )
    bundles.issue_bundle(session, sergeant, draft, draft.lock_version)
    bundles.share_bundle(session, sergeant, draft)


def _walk(
    session: Session, premises: Premises, officer: User, sergeant: User, i: int, today: object
) -> None:
    """Move premises i along a path chosen by i, so all four states appear with history."""
    path = i % 6
    if path == 0:
        return  # monitored, never escalated
    _event(
        session,
        premises,
        officer,
        "warn",
        "Repeated violence at closing time; warning letter sent to DPS",
    )
    if path == 1:
        return  # warned
    if path == 2:
        _event(
            session,
            premises,
            officer,
            "stand_down",
            "Action plan completed; no incidents for 12 weeks",
        )
        return  # monitored again, with history
    # A review application rests on an issued evidence bundle; those under review or
    # decided are shared with the licensing authority.
    _bundle(session, premises, officer, sergeant, "summary" if path == 5 else "standard")
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
@click.option(
    "--scale",
    type=click.Choice(["small", "medium", "large"]),
    default="small",
    show_default=True,
    help="small: ~50 premises in every state; large: issue 8's 10,000 premises, "
    "1,000,000 incidents, 50,000 visits, 2,000 reviews, 200 users; medium: a twentieth",
)
@click.option("--seed", default=2026, show_default=True, help="Same seed, same data")
@click.option(
    "--premises", "premises_count", type=int, default=None, help="Premises (default: the scale's)"
)
@with_appcontext
def demo_load(if_empty: bool, scale: str, seed: int, premises_count: int | None) -> None:
    """Load demo authorities, users and premises, and print the demo sign-ins."""
    session = get_session()
    if session.scalar(select(func.count()).select_from(Premises)):
        if if_empty:
            click.echo("Demo data already loaded.")
            _print_logins()
            return
        raise click.ClickException(
            "The register is not empty; demo data loads only into an empty database"
        )
    if scale != "small":
        _load_scaled(session, scale, seed, premises_count)
        _print_logins()
        return
    try:
        counts = load_demo(session, premises_count or 50, seed)
    except DomainError as error:
        session.rollback()
        raise click.ClickException(error.message) from None
    click.echo(f"Loaded {counts['premises']} demo premises.")
    _print_logins()


class _StderrProgress(Progress):
    """A click progress bar per stage, on standard error."""

    def __init__(self) -> None:
        self._bar: Any = None

    def start(self, stage: str, total: int) -> None:
        """Open a bar labelled with the stage and its count."""
        self._bar = click.progressbar(
            length=max(total, 1), label=f"{stage:<12} {total:>9,}", file=sys.stderr, width=30
        )
        self._bar.__enter__()

    def advance(self, steps: int) -> None:
        """Move the bar on."""
        if self._bar is not None:
            self._bar.update(steps)

    def finish(self) -> None:
        """Close the bar."""
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None


def _load_scaled(session: Session, scale: str, seed: int, premises_count: int | None) -> None:
    from flask import current_app

    size = SCALES[scale]
    directory = snap_points_dir(current_app.config.get("DEMO_SNAP_POINTS_DIR"))
    points = snap_points_from(directory)
    click.echo(
        f"Snap points: {len(points):,} from {directory}"
        if points
        else "Snap points: none found; using synthetic points around Liverpool"
    )
    try:
        result = load_large(
            session,
            premises=premises_count or size.premises,
            incidents=size.incidents,
            visits=size.visits,
            reviews=min(size.reviews, premises_count or size.premises),
            users=size.users,
            seed=seed,
            password=DEMO_PASSWORD,
            snap_points=points,
            fixed_users=USERS,
            progress=_StderrProgress(),
        )
    except DomainError as error:
        session.rollback()
        raise click.ClickException(error.message) from None
    click.echo(
        "Loaded " + ", ".join(f"{count:,} {name}" for name, count in result.counts.items()) + "."
    )
    for name, seconds in result.seconds.items():
        click.echo(f"  {name:<12} {seconds:8.1f} s")
    click.echo(f"  {'total':<12} {sum(result.seconds.values()):8.1f} s")


def _print_logins() -> None:
    click.echo(f"Demo sign-ins (password for all: {DEMO_PASSWORD}):")
    for email, _name, role, authority in USERS:
        click.echo(f"  {role:<10} {email}{f'  ({authority})' if authority else ''}")
