"""Exports and bulk work on the register: CSV files, bulk visit scheduling, the timeline.

- **CSV exports** (the premises list with its filters, a selection of premises, the
  incident list with its filters) are written through `licensing.csvfiles.write_csv`, so
  every text cell a spreadsheet would run as a formula is neutralised and numbers stay
  numbers. Each export is one query (two for incidents) over plain columns, not ORM
  objects, so a 10,000-row register is read in one pass. What a user may see is decided
  by the same rule as the list pages (`premises_visible_to`): a council user's export
  holds only their own authority's premises under review or in action.
- **Bulk visit scheduling** books the same visit (date, time, type, officer) at each
  selected premises through `licensing.visits.services.schedule_visit`. Each booking is
  the service's own transaction, so the outcome is *partial*: a premises that cannot be
  booked is reported with its reason, and the ones that were booked stay booked. A
  premises that already has a visit scheduled on that day is not booked twice.
- **The timeline** of a premises: its audit events, confirmed incidents and (for the
  police) visits, oldest first, for the printable page.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, aliased

from licensing.auth.models import User
from licensing.auth.permissions import can_see_premises, premises_visible_to
from licensing.csvfiles import write_csv
from licensing.db import MAX_ROW_ID
from licensing.errors import DomainError, Refused, ValidationFailed
from licensing.incidents.models import CATEGORIES, SOURCES, Incident, PremisesIncidentLink
from licensing.incidents.services import IncidentMention, incidents_by_id
from licensing.premises import services
from licensing.premises.models import LicensingAuthority, Premises
from licensing.timeutil import LONDON, london_today, to_london
from licensing.visits import services as visit_services
from licensing.visits.models import COMPLETED, SCHEDULED, Visit

logger = logging.getLogger(__name__)

# A page of the list holds 25; a selection far beyond a page is a mistake or an attack.
MAX_SELECTION = 500
LINK_FILTERS = ("confirmed", "suggested", "none")


def export_file_name(kind: str) -> str:
    """The download's file name with today's London date: ``premises-2026-03-04.csv``."""
    return f"{kind}-{london_today():%Y-%m-%d}.csv"


def _when(moment: datetime | None) -> str:
    """A timestamp as London wall-clock time, in a form spreadsheets read as a date."""
    return "" if moment is None else to_london(moment).strftime("%Y-%m-%d %H:%M")


# ---- premises --------------------------------------------------------------------------

PREMISES_HEADER = (
    "id",
    "licence_number",
    "name",
    "address",
    "postcode",
    "uprn",
    "latitude",
    "longitude",
    "authority_code",
    "authority",
    "state",
    "licence_status",
    "case_officer",
    "licence_holder",
    "dps",
    "updated_at_london",
)


def _premises_rows(session: Session, ids: Select[Any]) -> Iterator[Sequence[object]]:
    """One CSV row per premises whose id `ids` selects, ordered as the list is."""
    officer = aliased(User)
    query = (
        select(
            Premises.id,
            Premises.licence_number,
            Premises.name,
            Premises.address,
            Premises.postcode,
            Premises.uprn,
            Premises.latitude,
            Premises.longitude,
            LicensingAuthority.code,
            LicensingAuthority.name,
            Premises.state,
            Premises.licence_status,
            officer.name,
            Premises.licence_holder,
            Premises.dps,
            Premises.updated_at,
        )
        .join(LicensingAuthority, LicensingAuthority.id == Premises.authority_id)
        .outerjoin(officer, officer.id == Premises.case_officer_id)
        .where(Premises.id.in_(ids))
        .order_by(Premises.name, Premises.id)
    )
    for row in session.execute(query):
        *values, updated_at = row
        yield [*values, _when(updated_at)]


def premises_csv(session: Session, user: User, filters: services.PremisesFilter) -> str:
    """Every premises the list shows `user` with these filters (all pages), as CSV."""
    listed = services._filtered(user, filters).subquery()  # the list's own query
    return write_csv(PREMISES_HEADER, _premises_rows(session, select(listed.c.id)))


def parse_selection(values: Iterable[str]) -> list[int]:
    """The premises ids a bulk form posted: whole numbers that can name a row, no repeats.

    Raises ValidationFailed when nothing usable is selected or far too much is."""
    ids: list[int] = []
    for value in values:
        text = (value or "").strip()
        if text.isascii() and text.isdigit() and len(text) <= 10 and 0 < int(text) <= MAX_ROW_ID:
            number = int(text)
            if number not in ids:
                ids.append(number)
    if not ids:
        raise ValidationFailed("Select at least one premises", {"premises_id": "Select"})
    if len(ids) > MAX_SELECTION:
        raise ValidationFailed(
            f"Select at most {MAX_SELECTION} premises at a time", {"premises_id": "Too many"}
        )
    return ids


def selected_premises(session: Session, user: User, ids: Sequence[int]) -> list[Premises]:
    """The selected premises that `user` may see, by name. Ids of premises that do not
    exist or that the user may not see are dropped alike, so nothing is learnt from them."""
    if not ids:
        return []
    return list(
        session.scalars(
            select(Premises)
            .where(Premises.id.in_(ids), premises_visible_to(user))
            .order_by(Premises.name, Premises.id)
        )
    )


def selection_csv(session: Session, user: User, ids: Sequence[int]) -> str:
    """The selected premises that `user` may see, as the same CSV as the full export."""
    visible = select(Premises.id).where(Premises.id.in_(ids), premises_visible_to(user))
    return write_csv(PREMISES_HEADER, _premises_rows(session, visible))


# ---- incidents -------------------------------------------------------------------------

INCIDENTS_HEADER = (
    "id",
    "source",
    "source_ref",
    "occurred_at_london",
    "month",
    "category",
    "description",
    "location",
    "latitude",
    "longitude",
    "lsoa_code",
    "lsoa_name",
    "outcome",
    "reported_by",
    "context",
    "authority_code",
    "confirmed_premises",
    "recorded_at_london",
)


@dataclass(frozen=True)
class IncidentFilter:
    """The incident list's filters; anything not recognised means "any"."""

    category: str | None = None
    source: str | None = None
    linked: str | None = None

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> IncidentFilter:
        """Read the filters from a query string as the incident list does."""
        category = args.get("category")
        source = args.get("source")
        linked = args.get("linked")
        return cls(
            category=category if category in CATEGORIES else None,
            source=source if source in SOURCES else None,
            linked=linked if linked in LINK_FILTERS else None,
        )


def incidents_query(filters: IncidentFilter) -> Select[Incident]:
    """The incidents the list shows with these filters (the same rules as the list page)."""
    query = select(Incident)
    if filters.category:
        query = query.where(Incident.category == filters.category)
    if filters.source:
        query = query.where(Incident.source == filters.source)
    if filters.linked == "none":
        query = query.where(
            ~Incident.id.in_(
                select(PremisesIncidentLink.incident_id).where(
                    PremisesIncidentLink.status != "rejected"
                )
            )
        )
    elif filters.linked:
        query = query.where(
            Incident.id.in_(
                select(PremisesIncidentLink.incident_id).where(
                    PremisesIncidentLink.status == filters.linked
                )
            )
        )
    return query


def incidents_page(
    session: Session,
    filters: IncidentFilter,
    after_id: int | None,
    per_page: int,
    page: int = 1,
) -> list[Incident]:
    """One page of the incident list, newest first (counted_at, then id).

    With `after_id` (the last incident of the page before, carried by the "next" link)
    the page is read by keyset along ix_incidents_counted_at, however deep it is;
    without it, by page number (the "previous" link, and old bookmarks).
    """
    query = incidents_query(filters).order_by(Incident.counted_at.desc(), Incident.id.desc())
    if after_id is not None:
        seen_at = select(Incident.counted_at).where(Incident.id == after_id).scalar_subquery()
        query = query.where(
            or_(
                Incident.counted_at < seen_at,
                and_(Incident.counted_at == seen_at, Incident.id < after_id),
            )
        )
    else:
        query = query.offset((page - 1) * per_page)
    return list(session.scalars(query.limit(per_page)).all())


def count_incidents(session: Session, filters: IncidentFilter) -> int:
    """How many incidents the list holds with these filters."""
    query = incidents_query(filters).with_only_columns(Incident.id)
    return session.scalar(select(func.count()).select_from(query.subquery())) or 0


def incidents_csv(session: Session, filters: IncidentFilter) -> str:
    """Every incident the (police-only) list shows with these filters, newest first, as
    CSV. The people in an incident are held apart and are never exported."""
    matching = incidents_query(filters).subquery()
    ids = select(matching.c.id)
    confirmed: dict[int, list[str]] = {}
    for incident_id, licence_number in session.execute(
        select(PremisesIncidentLink.incident_id, Premises.licence_number)
        .join(Premises, Premises.id == PremisesIncidentLink.premises_id)
        .where(
            PremisesIncidentLink.status == "confirmed", PremisesIncidentLink.incident_id.in_(ids)
        )
        .order_by(PremisesIncidentLink.incident_id, Premises.licence_number)
    ):
        confirmed.setdefault(incident_id, []).append(licence_number)
    query = (
        select(
            Incident.id,
            Incident.source,
            Incident.source_ref,
            Incident.occurred_at,
            Incident.month,
            Incident.category,
            Incident.description,
            Incident.location_text,
            Incident.latitude,
            Incident.longitude,
            Incident.lsoa_code,
            Incident.lsoa_name,
            Incident.outcome,
            Incident.reported_by,
            Incident.context,
            LicensingAuthority.code,
            Incident.created_at,
        )
        .outerjoin(LicensingAuthority, LicensingAuthority.id == Incident.authority_id)
        .where(Incident.id.in_(ids))
        .order_by(Incident.counted_at.desc(), Incident.id.desc())
    )

    def rows() -> Iterator[Sequence[object]]:
        for row in session.execute(query):
            (incident_id, source, ref, occurred, *middle, authority, created) = row
            yield [
                incident_id,
                source,
                ref,
                _when(occurred),
                *middle,
                authority or "",
                "; ".join(confirmed.get(incident_id, [])),
                _when(created),
            ]

    return write_csv(INCIDENTS_HEADER, rows())


# ---- bulk visit scheduling -------------------------------------------------------------


@dataclass(frozen=True)
class BulkOutcome:
    """What happened at one selected premises: booked (with its visit) or why not."""

    premises_id: int
    name: str
    licence_number: str
    visit_id: int | None = None
    reason: str | None = None

    @property
    def scheduled(self) -> bool:
        """True when the visit was booked."""
        return self.visit_id is not None


@dataclass(frozen=True)
class BulkResult:
    """The outcome at every selected premises, in the order they were tried."""

    outcomes: list[BulkOutcome]

    @property
    def scheduled(self) -> list[BulkOutcome]:
        """The premises where the visit was booked."""
        return [o for o in self.outcomes if o.scheduled]

    @property
    def failed(self) -> list[BulkOutcome]:
        """The premises where it was not, each with the reason."""
        return [o for o in self.outcomes if not o.scheduled]


def _visit_already_booked(session: Session, premises_id: int, day: date) -> bool:
    return (
        session.scalar(
            select(Visit.id)
            .where(
                Visit.premises_id == premises_id,
                Visit.status == SCHEDULED,
                Visit.visit_date == day,
            )
            .limit(1)
        )
        is not None
    )


def schedule_visits(
    session: Session,
    actor: User,
    selection: Sequence[Premises],
    *,
    scheduled_at: datetime,
    visit_type: str,
    officer_id: int | str | None,
) -> BulkResult:
    """Book the same visit at each selected premises; report each one's outcome.

    Each booking is `schedule_visit`'s own transaction: one that fails is rolled back and
    reported with its reason while the others stand (partial success, never a half-made
    booking). A premises with a visit already scheduled on that London day is reported,
    not booked twice, so posting the same form again books nothing new.

    A problem with the form itself (a date in the past, no such officer, an unknown type)
    is the same for every premises: it raises ValidationFailed before anything is booked.
    """
    day = to_london(scheduled_at).date()
    targets = [(p.id, p.name, p.licence_number) for p in selection]
    outcomes: list[BulkOutcome] = []
    for premises_id, name, licence_number in targets:
        try:
            premises = session.get(Premises, premises_id)
            if premises is None or not can_see_premises(actor, premises):
                raise Refused("This premises could not be found")
            if _visit_already_booked(session, premises_id, day):
                raise Refused(f"It already has a visit scheduled on {day:%-d %B %Y}")
            visit = visit_services.schedule_visit(
                session,
                actor,
                premises,
                scheduled_at=scheduled_at,
                visit_type=visit_type,
                officer_id=officer_id,
            )
        except ValidationFailed:
            session.rollback()
            if not any(o.scheduled for o in outcomes):
                raise  # the form's own problem: nothing has been booked
            outcomes.append(
                BulkOutcome(premises_id, name, licence_number, reason="The details were refused")
            )
        except DomainError as error:
            session.rollback()
            outcomes.append(BulkOutcome(premises_id, name, licence_number, reason=error.message))
        except SQLAlchemyError:
            session.rollback()
            logger.exception("bulk visit scheduling failed at premises %s", premises_id)
            outcomes.append(
                BulkOutcome(
                    premises_id,
                    name,
                    licence_number,
                    reason="The booking could not be saved; try this premises again",
                )
            )
        else:
            outcomes.append(BulkOutcome(premises_id, name, licence_number, visit_id=visit.id))
    return BulkResult(outcomes)


# ---- the timeline ----------------------------------------------------------------------


@dataclass(frozen=True)
class TimelineEntry:
    """One dated line of a premises' timeline: an audit event, an incident or a visit."""

    moment: datetime
    kind: str  # "event", "incident" or "visit"
    ident: int  # the event's seq, the incident's or the visit's id: a stable tie-break
    history: services.HistoryEntry | None = None
    incident: Incident | None = None
    visit: Visit | None = None


_KIND_ORDER = {"incident": 0, "visit": 1, "event": 2}


def premises_timeline(session: Session, user: User, premises: Premises) -> list[TimelineEntry]:
    """The premises' history oldest first: every audit event (as the premises page shows
    them), its confirmed incidents (when they happened; month-only ones at mid-month), and
    for the police its scheduled and completed visits (visits are police work)."""
    entries = [
        TimelineEntry(entry.event.occurred_at, "event", entry.event.seq, history=entry)
        for entry in services.history(session, premises)
    ]
    for link in session.scalars(
        select(PremisesIncidentLink).where(
            PremisesIncidentLink.premises_id == premises.id,
            PremisesIncidentLink.status == "confirmed",
        )
    ):
        incident = link.incident
        entries.append(
            TimelineEntry(
                incident.occurred_at or incident.counted_at,
                "incident",
                incident.id,
                incident=incident,
            )
        )
    if user.is_police and can_see_premises(user, premises):
        for visit in session.scalars(
            select(Visit).where(
                Visit.premises_id == premises.id, Visit.status.in_((SCHEDULED, COMPLETED))
            )
        ):
            moment = visit.visited_at if visit.status == COMPLETED else visit.scheduled_at
            if moment is None:  # booked without a time: the start of its London day
                moment = datetime.combine(visit.visit_date, time(0), tzinfo=LONDON)
            entries.append(TimelineEntry(moment, "visit", visit.id, visit=visit))
    return sorted(entries, key=lambda e: (e.moment, _KIND_ORDER[e.kind], e.ident))


def incidents_named_in(
    session: Session, entries: Iterable[TimelineEntry]
) -> dict[int, IncidentMention]:
    """The incidents that audit events on the timeline refer to, by id."""
    return incidents_by_id(
        session,
        (
            entry.history.payload["incident_id"]
            for entry in entries
            if entry.history is not None
            and isinstance(entry.history.payload.get("incident_id"), int)
        ),
    )
