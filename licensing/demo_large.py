"""A large, deterministic demo data set (`licensing demo load --scale large`).

Everything is made the way the app makes it: premises through `add_premises`, incidents
through the data.police.uk importer (synthesised CSV text, so they are linked by the real
linker), workflow events through `apply_event` (guards, deadlines and audit events
included), bundles through the evidence services (real files in EVIDENCE_DIR), visits
through `record_visits` (the rows and events `schedule_visit`/`record_outcome` make, without
a look-up and a commit per visit). Two shortcuts, both data the app could have produced:
the bulk users share one argon2 hash of the demo password (hashing hundreds is slow), and
each premises' events are committed in batches rather than one at a time.

Audit timestamps are the time of loading, as with any data entered through the app;
dates the workflow records (application, decision, visit dates) are spread around today.
The same seed on the same day gives the same rows (bar timestamps and hashes over them).
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from licensing.audit.models import AuditEvent
from licensing.audit.services import append_event
from licensing.auth.models import User
from licensing.auth.services import create_authority, create_user
from licensing.deadlines.models import Deadline
from licensing.evidence import services as bundles
from licensing.evidence.models import Bundle
from licensing.evidence.pdf import rendering_in_parallel
from licensing.incidents.importer import import_incidents
from licensing.incidents.models import POLICE_UK_CATEGORIES, Incident
from licensing.incidents.services import record_incident
from licensing.premises import services as premises_services
from licensing.premises.models import LicensingAuthority, Premises, ReviewApplication
from licensing.timeutil import LONDON, london_today
from licensing.visits.bulk import VisitEntry, record_visits
from licensing.visits.models import Visit
from licensing.visits.services import Outcome

# The five Merseyside licensing authorities and a point near each one's centre: a premises
# belongs to the authority whose centre is nearest.
AUTHORITIES = [
    ("LIV", "Liverpool City Council", (53.4084, -2.9916)),
    ("SEF", "Sefton Council", (53.4900, -3.0100)),
    ("WIR", "Wirral Council", (53.3700, -3.0700)),
    ("KNO", "Knowsley Council", (53.4300, -2.8500)),
    ("STH", "St Helens Council", (53.4500, -2.7400)),
]
SNAP_FILES = ("2019-03-merseyside-street.csv", "2021-12-merseyside-street.csv")
INCIDENT_MONTHS = 36
NAMES = [
    "The Crown",
    "The Swan",
    "Red Lion",
    "The Grapes",
    "Baltic Fleet",
    "Ye Cracke",
    "The Vines",
    "Club Neon",
    "Pier Head Bar",
    "Kebab Palace",
    "Late Bite",
    "Corner Off-Licence",
    "Dockside Tavern",
    "The Albert",
    "The Globe",
    "Mersey Rooms",
    "Night Owl Takeaway",
    "The Railway",
    "Royal Oak",
    "Ship Inn",
]
KINDS = ["", " Bar", " Club", " Inn", " Express", " Lounge", " Kitchen", " Wines"]


def demo_premises_name(names: list[str], kinds: list[str], n: int) -> str:
    """The n-th demo premises name: the names in turn, then again with each kind added,
    except a kind the name already says ("Pier Head Bar", never "Pier Head Bar Bar")."""
    name, kind = names[n % len(names)], kinds[(n // len(names)) % len(kinds)]
    return name if kind.strip() in name.split() else f"{name}{kind}"


ACTIVITIES = [
    "Supply of alcohol; Recorded Music",
    "Supply of alcohol; Live Music; Recorded Music; Late night refreshment",
    "Late night refreshment",
    "Supply of alcohol (off the premises)",
]
OUTCOMES = [
    "Investigation complete; no suspect identified",
    "Unable to prosecute suspect",
    "Under investigation",
    "Status update unavailable",
    "",
]
# Common crime types more often, as in the real files.
CATEGORY_WEIGHTS = {
    "Anti-social behaviour": 30,
    "Violence and sexual offences": 25,
    "Public order": 8,
    "Criminal damage and arson": 8,
    "Shoplifting": 7,
    "Other theft": 6,
    "Drugs": 4,
}

SnapPoint = tuple[float, float, str]  # latitude, longitude, location text


@dataclass(frozen=True)
class Scale:
    """How much to load; `large` is issue 8's data set."""

    premises: int
    incidents: int
    visits: int
    reviews: int
    users: int


SCALES = {
    "small": Scale(premises=50, incidents=0, visits=0, reviews=0, users=6),
    "medium": Scale(premises=500, incidents=50_000, visits=2_500, reviews=100, users=40),
    "large": Scale(premises=10_000, incidents=1_000_000, visits=50_000, reviews=2_000, users=200),
}


class Progress:
    """Told about each stage as it starts and advances; this one says nothing."""

    def start(self, stage: str, total: int) -> None:
        """A stage of `total` steps begins."""

    def advance(self, steps: int) -> None:
        """`steps` more steps of the current stage are done."""

    def finish(self) -> None:
        """The current stage is done."""


@dataclass
class LoadResult:
    """What a load made, and how long each stage took (seconds)."""

    counts: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


# ---- snap points -----------------------------------------------------------------------


def snap_points_dir(configured: str | None = None) -> Path | None:
    """Where the data.police.uk street files are: `configured` (DEMO_SNAP_POINTS_DIR), the
    environment variable of that name, or ../shared/data beside the repository."""
    candidates = [configured, os.environ.get("DEMO_SNAP_POINTS_DIR")]
    candidates.append(str(Path(__file__).resolve().parent.parent.parent / "shared" / "data"))
    for candidate in candidates:
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


def read_snap_points(paths: Iterable[Path]) -> list[SnapPoint]:
    """The distinct (latitude, longitude, location) points of data.police.uk street CSV
    files, sorted so the same files always give the same list; rows without a position
    are skipped."""
    points: set[SnapPoint] = set()
    for path in paths:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            for row in csv.DictReader(handle):
                try:
                    lat = float(row.get("Latitude") or "")
                    lon = float(row.get("Longitude") or "")
                except ValueError:
                    continue
                if -90 <= lat <= 90 and -180 <= lon <= 180:
                    points.add((lat, lon, (row.get("Location") or "").strip()))
    return sorted(points)


def snap_points_from(directory: Path | None) -> list[SnapPoint]:
    """The snap points of the shared street files in `directory`, or none."""
    if directory is None:
        return []
    return read_snap_points(p for name in SNAP_FILES if (p := directory / name).is_file())


def synthetic_points(rng: random.Random, count: int) -> list[SnapPoint]:
    """Made-up snap points around Liverpool, for when the real files are not there."""
    points = {
        (
            round(rng.uniform(53.33, 53.56), 6),
            round(rng.uniform(-3.10, -2.70), 6),
            f"On or near Demo Street {n % 997}",
        )
        for n in range(count)
    }
    return sorted(points)


def _authority_for(lat: float, lon: float) -> str:
    return min(AUTHORITIES, key=lambda a: (a[2][0] - lat) ** 2 + (a[2][1] - lon) ** 2)[0]


# ---- the loader ------------------------------------------------------------------------


def load_large(
    session: Session,
    *,
    premises: int,
    incidents: int,
    visits: int,
    reviews: int,
    users: int,
    seed: int = 2026,
    password: str,
    snap_points: Sequence[SnapPoint] | None = None,
    fixed_users: Sequence[tuple[str, str, str, str | None]] = (),
    progress: Progress | None = None,
) -> LoadResult:
    """Load a demo data set of the given size into an empty database, deterministically
    by `seed`: authorities, `users` accounts (`fixed_users` first), `premises` premises at
    snap points, `incidents` incidents over three years (imported and linked), `reviews`
    premises taken to review on an issued bundle (some determined), others warned or
    stood down, and `visits` booked visits (most completed)."""
    if reviews > premises:
        raise ValueError("there cannot be more reviews than premises")
    rng = random.Random(seed)  # noqa: S311 - repeatable demo data, not secrets
    report = progress or Progress()
    result = LoadResult()
    loader = _Loader(session, rng, report, result, seed)

    loader.stage("authorities", len(AUTHORITIES), loader.authorities)
    loader.stage(
        "users", max(users, len(fixed_users)), lambda: loader.users(users, password, fixed_users)
    )
    points = list(snap_points or synthetic_points(rng, max(premises * 3, 1000)))
    loader.stage("premises", premises, lambda: loader.premises(premises, points))
    escalated = _plan(rng, loader.premises_ids, reviews)
    loader.stage("incidents", incidents, lambda: loader.incidents(incidents, points, escalated))
    # Each review's bundle renders its shared copy in a second process meanwhile.
    with rendering_in_parallel():
        loader.stage("workflow", len(escalated), lambda: loader.workflow(escalated))
    loader.stage("visits", visits, lambda: loader.visits(visits))
    loader.stage("statistics", 1, loader.statistics)
    # What is there, counted (visits include the proposals the visit policy made).
    for name, model in (
        ("users", User),
        ("premises", Premises),
        ("incidents", Incident),
        ("visits", Visit),
        ("reviews", ReviewApplication),
        ("bundles", Bundle),
        ("deadlines", Deadline),
        ("audit events", AuditEvent),
    ):
        result.counts[name] = int(session.scalar(select(func.count()).select_from(model)) or 0)
    return result


def _plan(rng: random.Random, premises_ids: list[int], reviews: int) -> list[tuple[int, str]]:
    """Which premises move through the workflow, and along which path: `reviews` go to
    review (most stay there, some are determined or withdrawn); as many again and a half
    are warned, of whom a quarter are stood down."""
    shuffled = premises_ids[:]
    rng.shuffle(shuffled)
    paths = ["review_standard", "review_standard", "review_summary", "action", "action"]
    paths += ["review_standard", "action", "no_action", "review_standard", "withdrawn"]
    planned = [(pid, paths[n % len(paths)]) for n, pid in enumerate(shuffled[:reviews])]
    rest = shuffled[reviews:]
    warned = min(len(rest), reviews + reviews // 2 + len(premises_ids) // 20)
    planned += [
        (pid, "stood_down" if n % 4 == 0 else "warned") for n, pid in enumerate(rest[:warned])
    ]
    return sorted(planned)


class _Loader:
    """The stages of one load, sharing the session, the random stream and what was made."""

    def __init__(
        self, session: Session, rng: random.Random, report: Progress, result: LoadResult, seed: int
    ) -> None:
        self.session = session
        self.rng = rng
        self.report = report
        self.result = result
        self.seed = seed
        self.officers: list[User] = []
        self.supervisors: list[User] = []
        self.premises_ids: list[int] = []
        self.evidenced: set[int] = set()
        self.today = london_today()

    def stage(self, name: str, total: int, work: Callable[[], None]) -> None:
        """Run one stage, reporting its progress and timing it."""
        started = time.perf_counter()
        self.report.start(name, total)
        work()
        self.session.commit()
        self.report.finish()
        self.result.seconds[name] = time.perf_counter() - started

    def statistics(self) -> None:
        """Refresh the query planner's statistics over everything loaded. A live
        database keeps them current (PostgreSQL's autovacuum, within minutes of a bulk
        load); until then the planner sizes the new tables by guesses, and the first
        pages and scheduler ticks on a freshly loaded data set are planned for tables
        far smaller than they are."""
        self.session.commit()
        bind = self.session.get_bind()
        if bind.dialect.name == "postgresql":
            # VACUUM also sets the visibility map, which lets counts read an index alone;
            # it cannot run inside a transaction.
            with bind.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE")
        else:
            self.session.execute(text("ANALYZE"))
        self.report.advance(1)

    def authorities(self) -> None:
        """The five licensing authorities (those that exist already are kept)."""
        for code, name, _centre in AUTHORITIES:
            if not self.session.scalar(
                select(LicensingAuthority.id).where(LicensingAuthority.code == code)
            ):
                create_authority(self.session, code, name)
            self.report.advance(1)

    def users(
        self, count: int, password: str, fixed: Sequence[tuple[str, str, str, str | None]]
    ) -> None:
        """The fixed demo sign-ins through `create_user` (which checks the password's
        strength and hashes it), then officers, supervisors, council users of every
        authority and admins up to `count`, sharing the first account's hash."""
        accounts = list(fixed) + _generated_users(count - len(fixed))
        shared_hash: str | None = None
        codes = {a.code: a for a in self.session.scalars(select(LicensingAuthority)).all()}
        for email, name, role, authority_code in accounts:
            if shared_hash is None:
                user = create_user(self.session, email, name, role, password, authority_code)
                shared_hash = user.password_hash
            else:
                # What create_user does, less the slow hashing of the same password again.
                authority = codes[authority_code] if authority_code else None
                user = User(
                    email=email,
                    name=name,
                    role=role,
                    password_hash=shared_hash,
                    authority_id=authority.id if authority else None,
                )
                self.session.add(user)
                self.session.flush()
                append_event(
                    self.session,
                    event="user_created",
                    actor_id=None,
                    payload={
                        "user_id": user.id,
                        "role": user.role,
                        "authority_id": user.authority_id,
                    },
                )
            if role == "officer":
                self.officers.append(user)
            elif role == "supervisor":
                self.supervisors.append(user)
            self.report.advance(1)
        if not self.officers or not self.supervisors:
            raise ValueError("the demo needs at least one officer and one supervisor")

    def premises(self, count: int, points: list[SnapPoint]) -> None:
        """`count` premises, each at its own snap point where there are enough."""
        authorities = {a.code: a for a in self.session.scalars(select(LicensingAuthority)).all()}
        # Each premises at its own snap point while there are enough; beyond that, some
        # share one (a parade of shops has one snap point).
        chosen = self.rng.sample(points, min(count, len(points)))
        chosen += [self.rng.choice(points) for _ in range(count - len(chosen))]
        numbers: dict[str, int] = {}
        for n, (lat, lon, location) in enumerate(chosen):
            code = _authority_for(lat, lon)
            numbers[code] = numbers.get(code, 0) + 1
            name = demo_premises_name(NAMES, KINDS, n)
            street = location.removeprefix("On or near ").strip() or "High Street"
            created = premises_services.add_premises(
                self.session,
                self.rng.choice(self.officers),
                authorities[code],
                f"{code}/PL/{numbers[code]:05d}",
                {
                    "name": name,
                    "address": f"{1 + self.rng.randint(0, 200)} {street}",
                    "postcode": f"L{1 + self.rng.randint(0, 39)} {self.rng.randint(1, 9)}"
                    f"{self.rng.choice('ABDEFGHJLNPQRSTUWXYZ')}{self.rng.choice('ABDEFGHJLNPQRSTUWXYZ')}",
                    "latitude": lat,
                    "longitude": lon,
                    "licence_holder": f"{name} Leisure Ltd",
                    "dps": f"Demo Supervisor {n + 1}",
                    "licensable_activities": ACTIVITIES[n % len(ACTIVITIES)],
                    "opening_hours": "Mon-Thu 11:00-23:00; Fri-Sat 11:00-02:00; Sun 12:00-22:30",
                },
                commit=False,
                source="demo",
            )
            self.premises_ids.append(created.id)
            if n % 500 == 499:
                self.session.commit()
                self.session.expunge_all()
            self.report.advance(1)

    def incidents(
        self, count: int, points: list[SnapPoint], escalated: list[tuple[int, str]]
    ) -> None:
        """One recent confirmed incident (recorded with the licence number) at each
        premises that is to be warned, then the rest as monthly data.police.uk files over
        three years, half of them at premises' points so the linker suggests links."""
        officer = self.officers[0]
        recorded = 0
        for premises_id, _path in escalated[:count]:
            premises = self.session.get(Premises, premises_id)
            assert premises is not None
            record_incident(
                self.session,
                officer,
                {
                    "source": "rms",
                    "source_ref": f"DEMO-{self.seed}-{premises_id}",
                    "occurred_at": (
                        datetime.now(UTC) - timedelta(days=1 + self.rng.randint(0, 25))
                    ).isoformat(),
                    "category": self.rng.choice(["Violence and sexual offences", "Public order"]),
                    "description": "Fight outside at closing time; door staff involved",
                    "location": f"Outside {premises.name}",
                    "licence_number": premises.licence_number,
                    "authority": premises.authority.code,
                },
                commit=False,
            )
            recorded += 1
            self.evidenced.add(premises_id)
            if recorded % 500 == 0:
                self.session.commit()
                self.session.expunge_all()
            self.report.advance(1)
        self.session.commit()
        self.session.expunge_all()

        premises_points = [
            (lat, lon, f"On or near {name}")
            for lat, lon, name in self.session.execute(
                select(Premises.latitude, Premises.longitude, Premises.name).order_by(Premises.id)
            )
            if lat is not None and lon is not None
        ]
        categories = list(CATEGORY_WEIGHTS) + [
            c for c in POLICE_UK_CATEGORIES if c not in CATEGORY_WEIGHTS
        ]
        weights = [CATEGORY_WEIGHTS.get(c, 1) for c in categories]
        remaining = count - recorded
        first_month = (self.today.replace(day=1) - timedelta(days=1)).replace(day=1)
        for batch in range(INCIDENT_MONTHS):
            size = remaining // INCIDENT_MONTHS + (batch < remaining % INCIDENT_MONTHS)
            if size <= 0:
                continue
            month = _months_before(first_month, INCIDENT_MONTHS - 1 - batch)
            text = self._police_uk_month(
                month, size, premises_points or points, points, categories, weights
            )
            import_incidents(
                self.session,
                text.encode("utf-8"),
                f"{month:%Y-%m}-merseyside-street.csv",
                "police-uk",
                officer,
                second_process=False,
            )
            self.session.expunge_all()
            self.report.advance(size)

    def _police_uk_month(
        self,
        month: date,
        size: int,
        premises_points: list[SnapPoint],
        points: list[SnapPoint],
        categories: list[str],
        weights: list[int],
    ) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(
            [
                "Crime ID",
                "Month",
                "Reported by",
                "Falls within",
                "Longitude",
                "Latitude",
                "Location",
                "LSOA code",
                "LSOA name",
                "Crime type",
                "Last outcome category",
                "Context",
            ]
        )
        rng = self.rng
        kinds = rng.choices(categories, weights, k=size)
        stamp = f"{month:%Y-%m}"
        for n in range(size):
            lat, lon, location = rng.choice(premises_points if rng.random() < 0.5 else points)
            category = kinds[n]
            crime_id = (
                ""
                if category == "Anti-social behaviour"
                else hashlib.sha256(f"{self.seed}:{stamp}:{n}".encode()).hexdigest()
            )
            writer.writerow(
                [
                    crime_id,
                    stamp,
                    "Merseyside Police",
                    "Merseyside Police",
                    f"{lon:.6f}",
                    f"{lat:.6f}",
                    location,
                    "",
                    "",
                    category,
                    "" if not crime_id else rng.choice(OUTCOMES),
                    "",
                ]
            )
        return out.getvalue()

    def workflow(self, escalated: list[tuple[int, str]]) -> None:
        """Take each planned premises along its path through the real workflow."""
        for n, (premises_id, path) in enumerate(escalated):
            premises = self.session.get(Premises, premises_id)
            assert premises is not None
            self._walk(premises, path, n)
            self.report.advance(1)
            if n % 200 == 199:
                self.session.expunge_all()

    def _event(
        self, premises: Premises, actor: User, event: str, reason: str, **params: Any
    ) -> None:
        premises_services.apply_event(
            self.session, premises, actor, event, premises.version, reason, params
        )

    def _walk(self, premises: Premises, path: str, n: int) -> None:
        officer = self.session.get(User, premises.case_officer_id) or self.officers[0]
        sergeant = self.supervisors[n % len(self.supervisors)]
        if premises.id in self.evidenced:
            self._event(
                premises,
                officer,
                "warn",
                "Repeated violence at closing time; warning letter sent to DPS",
            )
        else:  # fewer incidents than escalations asked for: the supervisor's override
            self._event(
                premises,
                sergeant,
                "warn",
                "Repeated violence at closing time",
                override_reason="Intelligence from the neighbourhood team",
            )
        if path == "warned":
            return
        if path == "stood_down":
            self._event(
                premises, officer, "stand_down", "Action plan completed; no incidents for 12 weeks"
            )
            return
        summary = path == "review_summary"
        draft = bundles.create_bundle(
            self.session,
            officer,
            premises,
            review_kind="summary" if summary else "standard",
            statement=(
                f"This bundle supports a police application for a review of the premises "
                f"licence of {premises.name}. It sets out the incidents linked to the "
                "premises and the steps the licensing team took."
            ),
        )
        bundles.issue_bundle(self.session, sergeant, draft, draft.lock_version)
        bundles.share_bundle(self.session, sergeant, draft)
        self.session.commit()
        if summary:
            received = self.today - timedelta(days=1 + self.rng.randint(0, 9))
            self._event(
                premises,
                sergeant,
                "apply_for_summary_review",
                "Serious disorder: stabbing outside the premises",
                received_at=f"{received.isoformat()}T10:30:00",
                certificate_reference=f"SUPT-{self.seed}-{premises.id:05d}",
            )
            return
        open_review = path == "review_standard"
        applied = self.today - timedelta(
            days=1 + self.rng.randint(0, 40) if open_review else 60 + self.rng.randint(0, 240)
        )
        self._event(
            premises,
            sergeant,
            "apply_for_review",
            "Warning and action plan failed; incidents continued",
            application_date=applied.isoformat(),
        )
        if open_review:
            return
        if path == "withdrawn":
            self._event(
                premises,
                sergeant,
                "withdraw_review",
                "Premises licence holder agreed new conditions",
            )
            return
        decided = applied + timedelta(days=20 + self.rng.randint(0, 30))
        self._event(
            premises,
            sergeant,
            "record_determination",
            "Sub-committee decision received",
            outcome="no_action" if path == "no_action" else "modify_conditions",
            decision_date=min(decided, self.today).isoformat(),
        )

    def visits(self, count: int) -> None:
        """`count` booked visits: four in five completed now (compliant, or issues found
        under an objective), the rest booked over the next two months. They go in through
        `record_visits`, which makes what `schedule_visit` and `record_outcome` would,
        a thousand at a time."""
        completed = count - count // 5
        officers = self.officers
        states = dict(self.session.execute(select(Premises.id, Premises.state)).all())
        entries: list[VisitEntry] = []
        for n in range(count):
            premises_id = self.rng.choice(self.premises_ids)
            officer = officers[n % len(officers)]
            visit_type = "compliance_check" if states[premises_id] == "action" else "routine"
            if n < completed:
                # The app books visits for today or later only, so a visit done "now".
                now = datetime.now(UTC).replace(microsecond=0)
                issues = self.rng.random() < 0.15
                entries.append(
                    VisitEntry(
                        premises_id,
                        officer.id,
                        visit_type,
                        now,
                        Outcome(
                            outcome="issues_found" if issues else "compliant",
                            visited_at=now,
                            findings={"crime_and_disorder": "Door staff log not kept"}
                            if issues
                            else {},
                        ),
                    )
                )
            else:
                day = self.today + timedelta(days=1 + self.rng.randint(0, 60))
                entries.append(
                    VisitEntry(
                        premises_id,
                        officer.id,
                        visit_type,
                        datetime(day.year, day.month, day.day, 20, 0, tzinfo=LONDON),
                    )
                )
            if len(entries) == 1000 or n == count - 1:
                record_visits(self.session, officers[0], entries)
                self.session.commit()
                self.session.expunge_all()
                self.report.advance(len(entries))
                entries = []


def _months_before(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 - count
    return date(index // 12, index % 12 + 1, 1)


def _generated_users(count: int) -> list[tuple[str, str, str, str | None]]:
    """`count` accounts: one admin in 50, a supervisor in 12, two council users per
    authority in 10 (at least one each), the rest officers."""
    if count <= 0:
        return []
    out: list[tuple[str, str, str, str | None]] = []
    council = max(len(AUTHORITIES), count // 4)
    admins = max(1, count // 50)
    supervisors = max(1, count // 12)
    for n in range(council):
        code = AUTHORITIES[n % len(AUTHORITIES)][0]
        out.append(
            (
                f"council{n + 1}@{code.lower()}.council.example",
                f"Council officer {n + 1} ({code})",
                "council",
                code,
            )
        )
    for n in range(supervisors):
        out.append((f"sergeant{n + 1}@police.example", f"Sgt Demo {n + 1}", "supervisor", None))
    for n in range(admins):
        out.append((f"admin{n + 1}@police.example", f"Administrator {n + 1}", "admin", None))
    n = 0
    while len(out) < count:
        n += 1
        out.append((f"pc{n}@police.example", f"PC Demo {n}", "officer", None))
    return out[:count]
