"""Incident services: record one, link it to premises, confirm or reject suggestions,
and read what is linked to a premises."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any, TypeVar

from sqlalchemy import (
    Integer,
    Select,
    and_,
    bindparam,
    cast,
    extract,
    func,
    or_,
    select,
)
from sqlalchemy.orm import Session, contains_eager

from licensing.audit.services import append_event
from licensing.auth.models import POLICE_ROLES, Role, User
from licensing.auth.permissions import can_see_premises
from licensing.db import UTCDateTime, utcnow
from licensing.errors import Forbidden, NotFound, Refused, ValidationFailed
from licensing.incidents.importer import RowRejected, month_middle
from licensing.incidents.linking import bounding_box, distance_m
from licensing.incidents.models import (
    ASB_CATEGORIES,
    CATEGORIES,
    PERSON_ROLES,
    SOURCES,
    Incident,
    IncidentPerson,
    PremisesIncidentLink,
)
from licensing.premises.models import LicensingAuthority, Premises
from licensing.timeutil import parse_instant

# Any select (of links, or of their columns): keyset helpers keep its type.
AnySelect = TypeVar("AnySelect", bound=Select[*tuple[Any, ...]])

DEFAULT_RADIUS_M = 50.0
PERSON_FIELDS = ("name", "phone", "email", "address")
# What the incident_people columns hold (address is unbounded text; 1,000 is plenty).
PERSON_FIELD_LIMITS = {
    "name": getattr(IncidentPerson.__table__.c["name"].type, "length", None) or 200,
    "phone": getattr(IncidentPerson.__table__.c["phone"].type, "length", None) or 50,
    "email": getattr(IncidentPerson.__table__.c["email"].type, "length", None) or 254,
    "address": 1000,
}
MAX_PEOPLE = 50


@dataclass(frozen=True)
class RecordedIncident:
    """The incident and whether this call created it (False: it already existed)."""

    incident: Incident
    created: bool


def _text(data: dict[str, Any], name: str, limit: int, errors: dict[str, str]) -> str:
    value = data.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        errors[name] = "Must be text"
        return ""
    value = value.strip()
    if "\x00" in value:  # PostgreSQL text cannot hold NUL: refuse it as input, not a 500
        errors[name] = "Must not contain NUL characters"
    elif len(value) > limit:
        errors[name] = f"At most {limit} characters"
    return value[:limit]


def _number(data: dict[str, Any], name: str, limit: float, errors: dict[str, str]) -> float | None:
    value = data.get(name)
    if value in (None, ""):
        return None
    if isinstance(value, bool):
        errors[name] = "Must be a number"
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: a huge JSON integer
        errors[name] = "Must be a number"
        return None
    if not -limit <= number <= limit:
        errors[name] = f"Must be between -{limit:g} and {limit:g}"
        return None
    return number


def clean_incident(
    data: dict[str, Any],
) -> tuple[dict[str, Any], list[dict[str, str]], dict[str, str]]:
    """Validate incident fields (as the API names them); return (columns, people, link
    hints) or raise ValidationFailed listing every bad field."""
    errors: dict[str, str] = {}
    source = _text(data, "source", 16, errors) or "manual"
    if source not in SOURCES:
        errors["source"] = f"Must be one of {', '.join(SOURCES)}"
    source_ref = _text(data, "source_ref", 128, errors)
    category = _text(data, "category", 64, errors)
    if category not in CATEGORIES:
        errors["category"] = "Must be a data.police.uk crime type or an ASB type"
    occurred_at: datetime | None = None
    month: str | None = None
    counted_at: datetime | None = None
    occurred_text = data.get("occurred_at")
    month_text = data.get("month")
    if occurred_text not in (None, ""):
        try:
            occurred_at = parse_instant(str(occurred_text))
            counted_at = occurred_at
        except (ValueError, OverflowError):  # OverflowError: year 1 or 9999 with an offset
            errors["occurred_at"] = "Must be an ISO 8601 date and time"
    elif month_text not in (None, ""):
        try:
            counted_at = month_middle(str(month_text))
            month = str(month_text)
        except RowRejected:
            errors["month"] = "Must be YYYY-MM"
    else:
        errors["occurred_at"] = "Give occurred_at or month"
    if occurred_at is not None and occurred_at > utcnow() + timedelta(minutes=5):
        errors["occurred_at"] = "Cannot be in the future"
    lat = _number(data, "latitude", 90.0, errors)
    lon = _number(data, "longitude", 180.0, errors)
    if (lat is None) != (lon is None) and "latitude" not in errors and "longitude" not in errors:
        errors["latitude"] = "Give both latitude and longitude, or neither"
    people: list[dict[str, str]] = []
    personal = data.get("personal_data")
    if personal not in (None, {}):
        entries = personal.get("people") if isinstance(personal, dict) else None
        if not isinstance(entries, list):
            errors["personal_data"] = 'Must be {"people": [...]}'
        else:
            if len(entries) > MAX_PEOPLE:
                errors["personal_data"] = f"At most {MAX_PEOPLE} people"
            for index, person in enumerate(entries[:MAX_PEOPLE]):
                where = f"personal_data.people[{index}]"
                if not isinstance(person, dict) or person.get("role") not in PERSON_ROLES:
                    errors[where] = f"role must be one of {', '.join(PERSON_ROLES)}"
                    continue
                person_errors: dict[str, str] = {}
                people.append(
                    {"role": person["role"]}
                    | {
                        f: _text(person, f, PERSON_FIELD_LIMITS[f], person_errors)
                        for f in PERSON_FIELDS
                    }
                )
                errors.update({f"{where}.{k}": v for k, v in person_errors.items()})
    hints = {
        "licence_number": _text(data, "licence_number", 64, errors),
        "authority": _text(data, "authority", 32, errors).upper(),
        "uprn": _text(data, "uprn", 16, errors),
    }
    # Read every field before deciding, so that each bad one is named (and none is
    # silently cut short).
    columns = {
        "source": source,
        "source_ref": source_ref,
        "occurred_at": occurred_at,
        "month": month,
        "counted_at": counted_at,
        "category": category,
        "description": _text(data, "description", 10_000, errors),
        "location_text": _text(data, "location", 300, errors),
        "latitude": lat,
        "longitude": lon,
        "outcome": _text(data, "outcome", 200, errors),
    }
    if errors:
        raise ValidationFailed("; ".join(f"{k}: {v}" for k, v in errors.items()), errors)
    return columns, people, hints


def premises_for_hints(session: Session, hints: dict[str, str]) -> tuple[Premises, str] | None:
    """The premises a licence number (with authority) or UPRN names, and how it matched."""
    if hints.get("licence_number") and hints.get("authority"):
        premises = session.scalar(
            select(Premises)
            .join(LicensingAuthority)
            .where(
                LicensingAuthority.code == hints["authority"],
                Premises.licence_number == hints["licence_number"],
            )
        )
        if premises is not None:
            return premises, "licence_number"
    if hints.get("uprn"):
        premises = session.scalar(select(Premises).where(Premises.uprn == hints["uprn"]).limit(1))
        if premises is not None:
            return premises, "uprn"
    return None


def premises_for_council_report(
    session: Session, user: User, licence_number: str
) -> Premises | None:
    """The premises of the council user's own authority with this licence number: a
    council logs ASB reports against any of its premises, whatever their state."""
    return session.scalar(
        select(Premises).where(
            Premises.authority_id == user.authority_id,
            Premises.licence_number == licence_number.strip(),
        )
    )


def premises_near(
    session: Session, lat: float, lon: float, radius_m: float
) -> list[tuple[Premises, float]]:
    """Premises within `radius_m` of a point: an indexed bounding box, then exact distance."""
    min_lat, max_lat, min_lon, max_lon = bounding_box(lat, lon, radius_m)
    candidates = session.scalars(
        select(Premises).where(
            Premises.latitude.between(min_lat, max_lat),
            Premises.longitude.between(min_lon, max_lon),
        )
    )
    found = []
    for premises in candidates:
        assert premises.latitude is not None and premises.longitude is not None
        d = distance_m(lat, lon, premises.latitude, premises.longitude)
        if d <= radius_m:
            found.append((premises, d))
    return sorted(found, key=lambda pair: pair[1])


def record_incident(
    session: Session,
    actor: User,
    data: dict[str, Any],
    *,
    radius_m: float = DEFAULT_RADIUS_M,
    commit: bool = True,
    premises: Premises | None = None,
) -> RecordedIncident:
    """Record one incident (idempotent on source and source reference) and link it: to
    `premises` or the premises its licence number/UPRN names (confirmed), else to premises
    nearby (suggested)."""
    columns, people, hints = clean_incident(data)
    if not columns["source_ref"]:
        if columns["source"] in ("manual", "council-asb"):
            columns["source_ref"] = (
                f"{columns['source']}-{utcnow().strftime('%Y%m%d%H%M%S%f')}-{actor.id}"
            )
        else:
            raise ValidationFailed(
                "source_ref is required for this source", {"source_ref": "Required"}
            )
    existing = session.scalar(
        select(Incident).where(
            Incident.source == columns["source"], Incident.source_ref == columns["source_ref"]
        )
    )
    if existing is not None:
        return RecordedIncident(existing, False)
    incident = Incident(**columns, created_by_id=actor.id)
    if actor.role == Role.COUNCIL:
        incident.authority_id = actor.authority_id
    session.add(incident)
    session.flush()
    for person in people:
        session.add(IncidentPerson(incident_id=incident.id, **person))
    target = (premises, "officer") if premises is not None else premises_for_hints(session, hints)
    if target is not None:
        _confirm_new_link(session, target[0], incident, actor, target[1])
    elif incident.latitude is not None and incident.longitude is not None:
        for nearby, distance in premises_near(
            session, incident.latitude, incident.longitude, radius_m
        ):
            session.add(
                PremisesIncidentLink(
                    premises_id=nearby.id,
                    incident_id=incident.id,
                    status="suggested",
                    method="proximity",
                    distance_m=round(distance, 1),
                    incident_counted_at=incident.counted_at,
                )
            )
    if commit:
        session.commit()
    return RecordedIncident(incident, True)


def _confirm_new_link(
    session: Session, premises: Premises, incident: Incident, actor: User, method: str
) -> PremisesIncidentLink:
    link = PremisesIncidentLink(
        premises_id=premises.id,
        incident_id=incident.id,
        status="confirmed",
        method=method,
        decided_by_id=actor.id,
        decided_at=utcnow(),
        incident_counted_at=incident.counted_at,
    )
    session.add(link)
    session.flush()
    append_event(
        session,
        event="incident_linked",
        actor_id=actor.id,
        premises_id=premises.id,
        payload={
            "incident_id": incident.id,
            "link_id": link.id,
            "method": method,
            "category": incident.category,
        },
    )
    return link


def _require_police(actor: User) -> None:
    if actor.role not in POLICE_ROLES:
        raise (
            NotFound("Not found")
            if actor.role == Role.COUNCIL
            else Forbidden("Only police officers decide links")
        )


def decide_links(
    session: Session, actor: User, link_ids: Iterable[int], decision: str, reason: str | None = None
) -> int:
    """Confirm or reject suggested links (one or many, in one transaction); each decision
    is an event on its premises' chain. Returns how many changed."""
    _require_police(actor)
    if decision not in ("confirmed", "rejected"):
        raise ValidationFailed("decision must be confirmed or rejected")
    ids = sorted(set(link_ids))
    if not ids:
        raise ValidationFailed(
            "Choose at least one suggested link", {"links": "Choose at least one"}
        )
    links = session.scalars(
        select(PremisesIncidentLink).where(PremisesIncidentLink.id.in_(ids))
    ).all()
    if len(links) != len(ids):
        raise NotFound("One of those links does not exist")
    changed = 0
    now = utcnow()
    for link in sorted(links, key=lambda x: (x.premises_id, x.id)):
        if link.status != "suggested":
            continue
        link.status = decision
        link.decided_by_id = actor.id
        link.decided_at = now
        append_event(
            session,
            event="link_confirmed" if decision == "confirmed" else "link_rejected",
            actor_id=actor.id,
            premises_id=link.premises_id,
            reason=(reason or "").strip() or None,
            payload={
                "incident_id": link.incident_id,
                "link_id": link.id,
                "method": link.method,
                "distance_m": link.distance_m,
            },
        )
        changed += 1
    session.commit()
    return changed


def link_incident(
    session: Session, actor: User, premises: Premises, incident: Incident
) -> PremisesIncidentLink:
    """An officer links an incident to a premises (confirmed), or confirms a suggestion."""
    _require_police(actor)
    link = session.scalar(
        select(PremisesIncidentLink).where(
            PremisesIncidentLink.premises_id == premises.id,
            PremisesIncidentLink.incident_id == incident.id,
        )
    )
    if link is not None:
        if link.status == "confirmed":
            raise Refused("That incident is already linked to this premises")
        decide_links(session, actor, [link.id], "confirmed")
        return link
    link = _confirm_new_link(session, premises, incident, actor, "officer")
    session.commit()
    return link


def unlink(session: Session, actor: User, link_id: int, reason: str) -> None:
    """Remove a confirmed link (kept as rejected so it is not suggested again)."""
    _require_police(actor)
    link = session.get(PremisesIncidentLink, link_id)
    if link is None:
        raise NotFound("No such link")
    if not reason.strip():
        raise ValidationFailed("Give a reason for unlinking", {"reason": "Give a reason"})
    link.status = "rejected"
    link.decided_by_id = actor.id
    link.decided_at = utcnow()
    append_event(
        session,
        event="incident_unlinked",
        actor_id=actor.id,
        premises_id=link.premises_id,
        reason=reason.strip(),
        payload={"incident_id": link.incident_id, "link_id": link.id},
    )
    session.commit()


def linked_incidents(
    session: Session, premises_id: int, status: str = "confirmed"
) -> list[PremisesIncidentLink]:
    """A premises' links of one status, newest incident first (all of them: for pages
    that show a premises' whole list, use `linked_incidents_page`)."""
    return list(session.scalars(_links_query(premises_id, status)).all())


def _links_query(premises_id: int, status: str) -> Select[PremisesIncidentLink]:
    # Walks ix_premises_incident_links_premises_status_counted backwards, newest first,
    # and looks up the incident of each link read; the link's incident is filled from
    # that one join (its default joined load would join the incidents a second time).
    return (
        select(PremisesIncidentLink)
        .join(Incident)
        .options(contains_eager(PremisesIncidentLink.incident))
        .where(
            PremisesIncidentLink.premises_id == premises_id,
            PremisesIncidentLink.status == status,
        )
        .order_by(
            PremisesIncidentLink.incident_counted_at.desc(),
            PremisesIncidentLink.incident_id.desc(),
        )
    )


# The incidents' and links' table columns, for the reads whose rows are only shown: with
# them a statement is a Core statement, whose rows are Core rows (see licensing.db).
_INCIDENT = Incident.__table__.c
_LINK = PremisesIncidentLink.__table__.c


def _after_incident(query: AnySelect, after_incident_id: Any) -> AnySelect:
    """`query` (links, newest first) from below incident `after_incident_id`'s
    (counted_at, id) on: the keyset page after it. The id is a value, a bound parameter
    or None (the first page)."""
    if after_incident_id is None:
        return query
    # Table columns keep a Core statement Core; an ORM statement takes them as they are.
    seen_at = (
        select(_INCIDENT.counted_at).where(_INCIDENT.id == after_incident_id).scalar_subquery()
    )
    counted_at, incident_id = _LINK.incident_counted_at, _LINK.incident_id
    return query.where(
        or_(
            counted_at < seen_at,
            and_(counted_at == seen_at, incident_id < after_incident_id),
        )
    )


def linked_incidents_page(
    session: Session,
    premises_id: int,
    status: str = "confirmed",
    *,
    after_incident_id: int | None = None,
    limit: int = 50,
    with_people: bool = False,
) -> tuple[list[PremisesIncidentLink], int | None]:
    """One keyset page of a premises' links of one status, newest incident first, and
    the cursor of the next page (the last incident's id) or None.

    The page after `after_incident_id` starts below that incident's (counted_at, id),
    so a premises with thousands of incidents is read a page at a time, however deep
    the page. `with_people` loads the incidents' people in one more statement.
    """
    query = _after_incident(_links_query(premises_id, status), after_incident_id)
    if with_people:
        query = query.options(
            contains_eager(PremisesIncidentLink.incident).selectinload(Incident.people)
        )
    rows = list(session.scalars(query.limit(limit + 1)).unique().all())
    next_cursor = rows[limit - 1].incident_id if len(rows) > limit else None
    return rows[:limit], next_cursor


@dataclass(frozen=True)
class IncidentLine:
    """One line of a premises' incident history: what the premises page shows of a
    confirmed incident and how it was linked, read as plain values."""

    incident_id: int
    occurred_at: datetime | None
    month: str | None
    category: str
    location_text: str
    method: str
    distance_m: float | None

    @property
    def approximate(self) -> bool:
        """True when only the month is known (as `Incident.approximate`)."""
        return self.occurred_at is None


def incident_history_page(
    session: Session, premises_id: int, *, after_incident_id: int | None = None, limit: int = 50
) -> tuple[list[IncidentLine], int | None]:
    """The premises page's keyset page of confirmed incidents, newest first, as
    `linked_incidents_page` reads it, and the next page's cursor or None. Plain values,
    not objects: the page only shows them, and 50 links with their incidents as objects
    cost several times the query."""
    parameters = {"premises_id": premises_id, "after": after_incident_id, "limit": limit + 1}
    statement = _incident_history(after_incident_id is not None)
    lines = [IncidentLine(*row) for row in session.execute(statement, parameters)]
    next_cursor = lines[limit - 1].incident_id if len(lines) > limit else None
    return lines[:limit], next_cursor


@cache
def _incident_history(after: bool) -> Select[*tuple[Any, ...]]:
    """`incident_history_page`'s statement, built once (see licensing.db) for the first
    page and once for the pages after a cursor: every premises page reads it. Of plain
    table columns, so its rows come back as Core rows (cheaper to build than the ORM's)."""
    query = _after_incident(
        select(
            _INCIDENT.id,
            _INCIDENT.occurred_at,
            _INCIDENT.month,
            _INCIDENT.category,
            _INCIDENT.location_text,
            _LINK.method,
            _LINK.distance_m,
        )
        .select_from(PremisesIncidentLink.__table__)
        .join(Incident.__table__, _INCIDENT.id == _LINK.incident_id)
        .where(_LINK.premises_id == bindparam("premises_id"), _LINK.status == "confirmed")
        .order_by(_LINK.incident_counted_at.desc(), _LINK.incident_id.desc()),
        bindparam("after", type_=Integer) if after else None,
    )
    return query.limit(bindparam("limit", type_=Integer))


@dataclass(frozen=True)
class IncidentMention:
    """An incident as a history entry names it: what the timeline shows of it."""

    id: int
    category: str
    occurred_at: datetime | None
    month: str | None
    location_text: str

    @property
    def approximate(self) -> bool:
        """True when only the month is known."""
        return self.occurred_at is None


def incidents_by_id(session: Session, ids: Iterable[int]) -> dict[int, IncidentMention]:
    """The incidents with these ids, by id, as history entries name them (the premises
    page's and the timeline's): one statement, none for no ids."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = session.execute(_INCIDENTS_BY_ID, {"ids": wanted})
    return {row.id: IncidentMention(*row) for row in rows}


# Built once (see licensing.db): every premises page reads it. Table columns: Core rows.
_INCIDENTS_BY_ID = select(
    _INCIDENT.id,
    _INCIDENT.category,
    _INCIDENT.occurred_at,
    _INCIDENT.month,
    _INCIDENT.location_text,
).where(_INCIDENT.id.in_(bindparam("ids", expanding=True)))


def count_links_by_status(session: Session, premises_id: int) -> tuple[int, int]:
    """(confirmed, suggested) links of a premises, in one statement from the index."""
    confirmed, suggested = session.execute(_COUNT_LINKS, {"premises_id": premises_id}).one()
    return int(confirmed or 0), int(suggested or 0)


# Built once (see licensing.db), of table columns (a Core row): every premises page reads it.
_COUNT_LINKS = select(
    func.count().filter(_LINK.status == "confirmed"),
    func.count().filter(_LINK.status == "suggested"),
).where(
    _LINK.premises_id == bindparam("premises_id"),
    _LINK.status.in_(("confirmed", "suggested")),
)


def confirmed_evidence_since(session: Session, premises_id: int, since: datetime) -> int:
    """How many confirmed incidents at the premises count at or after `since`."""
    return (
        session.scalar(
            select(func.count())
            .select_from(PremisesIncidentLink)
            .join(Incident)
            .where(
                PremisesIncidentLink.premises_id == premises_id,
                PremisesIncidentLink.status == "confirmed",
                Incident.counted_at >= since,
            )
        )
        or 0
    )


@dataclass(frozen=True)
class SuggestionGroup:
    """The suggested links of one premises, for the suggestions queue: the newest
    `links`, of `total` open."""

    premises: Premises
    links: list[PremisesIncidentLink]
    total: int = 0


# Suggestions shown per premises: a snap point near a busy premises can gather thousands
# over the years, and a page of thousands of checkboxes helps nobody. Deciding on these
# brings the next ones up.
SUGGESTIONS_PER_PREMISES = 25


def suggestion_groups(
    session: Session,
    user: User,
    limit_premises: int = 50,
    per_premises: int | None = None,
) -> list[SuggestionGroup]:
    """Open suggestions grouped by premises, premises with most suggestions first, the
    newest `per_premises` (default SUGGESTIONS_PER_PREMISES) of each."""
    per_premises = SUGGESTIONS_PER_PREMISES if per_premises is None else per_premises
    counts = session.execute(
        select(PremisesIncidentLink.premises_id, func.count().label("n"))
        .where(PremisesIncidentLink.status == "suggested")
        .group_by(PremisesIncidentLink.premises_id)
        .order_by(func.count().desc(), PremisesIncidentLink.premises_id)
        .limit(limit_premises)
    ).all()
    totals = {premises_id: int(n) for premises_id, n in counts}
    if not totals:
        return []
    # Two statements for the whole queue, however many premises it lists.
    found = {p.id: p for p in session.scalars(select(Premises).where(Premises.id.in_(totals)))}
    shown = [found[i] for i in totals if i in found and can_see_premises(user, found[i])]
    links: dict[int, list[PremisesIncidentLink]] = {p.id: [] for p in shown}
    if shown:
        newest = Incident.counted_at.desc(), Incident.id.desc()
        ranked = (
            select(
                PremisesIncidentLink.id,
                func.row_number()
                .over(partition_by=PremisesIncidentLink.premises_id, order_by=newest)
                .label("position"),
            )
            .join(Incident)
            .where(
                PremisesIncidentLink.premises_id.in_(list(links)),
                PremisesIncidentLink.status == "suggested",
            )
            .subquery()
        )
        for link in session.scalars(
            select(PremisesIncidentLink)
            .join(ranked, ranked.c.id == PremisesIncidentLink.id)
            .join(Incident)
            .where(ranked.c.position <= per_premises)
            .order_by(*newest)
        ):
            links[link.premises_id].append(link)
    return [SuggestionGroup(p, links[p.id], totals[p.id]) for p in shown]


def incident_visible_to(session: Session, user: User, incident_id: int) -> Incident:
    """An incident the user may see: police and admin any; a council user only reports of
    their own authority or incidents linked to a premises they may see."""
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise NotFound("No such incident")
    if user.role == Role.COUNCIL:
        if incident.authority_id == user.authority_id and incident.source == "council-asb":
            return incident
        for link in session.scalars(
            select(PremisesIncidentLink).where(
                PremisesIncidentLink.incident_id == incident.id,
                PremisesIncidentLink.status == "confirmed",
            )
        ):
            premises = session.get(Premises, link.premises_id)
            if premises is not None and can_see_premises(user, premises):
                return incident
        raise NotFound("No such incident")
    return incident


def links_of_incident(
    session: Session, user: User, incident: Incident
) -> list[tuple[PremisesIncidentLink, Premises]]:
    """The incident's links and their premises that `user` may see: the police all of
    them; a council user only confirmed links to their own authority's premises."""
    rows = session.execute(
        select(PremisesIncidentLink, Premises)
        .join(Premises, Premises.id == PremisesIncidentLink.premises_id)
        .where(PremisesIncidentLink.incident_id == incident.id)
        .order_by(PremisesIncidentLink.id)
    )
    links = [(link, premises) for link, premises in rows]
    if user.role == Role.COUNCIL:
        links = [
            (link, premises)
            for link, premises in links
            if link.status == "confirmed" and premises.authority_id == user.authority_id
        ]
    return links


def weekly_counts(
    session: Session, premises_id: int, weeks: int = 52, now: datetime | None = None
) -> tuple[list[datetime], dict[str, list[int]]]:
    """Confirmed incidents per week by category over the last `weeks` weeks (weeks start
    on Monday, UTC); month-only incidents count at the middle of their month. Counted
    by the database, a row per category and week, however long the history."""
    now = now or utcnow()
    monday = (now - timedelta(days=now.weekday())).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    starts = [monday - timedelta(weeks=weeks - 1 - i) for i in range(weeks)]
    rows = session.execute(
        _weekly_counts(session.get_bind().dialect.name),
        {
            "premises_id": premises_id,
            "window_start": starts[0],
            "window_end": monday + timedelta(weeks=1),
            "first_day": starts[0].date().isoformat(),
        },
    ).all()
    series: dict[str, list[int]] = {}
    for category, index, count in rows:
        if 0 <= int(index) < weeks:
            series.setdefault(category, [0] * weeks)[int(index)] += int(count)
    return starts, dict(sorted(series.items()))


@cache
def _weekly_counts(dialect: str) -> Select[Any]:
    """`weekly_counts`' statement for one database, built once (see licensing.db), of
    plain table columns: its hundreds of (category, week, count) rows come back as Core
    rows, which cost a fraction of what the ORM's rows do to build."""
    # The links in the window come from the links' index alone (each carries its
    # incident's counted_at); the category is then looked up for those links only, by
    # a per-link subquery, so neither database can choose to read every incident
    # (PostgreSQL hash-joined all of them when a premises' window held many links).
    counted_at = _LINK.incident_counted_at
    category = select(_INCIDENT.category).where(_INCIDENT.id == _LINK.incident_id).scalar_subquery()
    in_window = (
        select(category.label("category"), _week_number(dialect, counted_at).label("week"))
        .where(
            _LINK.premises_id == bindparam("premises_id"),
            _LINK.status == "confirmed",
            counted_at >= bindparam("window_start"),
            counted_at < bindparam("window_end"),
        )
        .subquery()
    )
    return select(in_window.c.category, in_window.c.week, func.count()).group_by(
        in_window.c.category, in_window.c.week
    )


def _week_number(dialect: str, column: Any) -> Any:
    """Whole weeks from the window's start (a midnight: the `window_start` parameter, and
    on SQLite its date as text, `first_day`) to a stored UTC timestamp, in SQL.

    SQLite counts whole days from the stored text's date part: its date functions keep
    milliseconds only and round, which would move 23:59:59.9999 into the next day.
    PostgreSQL's interval arithmetic keeps microseconds."""
    if dialect == "sqlite":
        days = cast(
            func.julianday(func.substr(column, 1, 10)) - func.julianday(bindparam("first_day")),
            Integer,
        )
        return days // 7
    origin = bindparam("window_start", type_=UTCDateTime())
    return cast(func.floor(extract("epoch", column - origin) / 604800), Integer)


def people_json(incident: Incident) -> list[dict[str, Any]]:
    """The people held apart on an incident (police eyes only)."""
    return [{"role": p.role, **{f: getattr(p, f) for f in PERSON_FIELDS}} for p in incident.people]


def is_asb(category: str) -> bool:
    """True for anti-social behaviour categories."""
    return category == "Anti-social behaviour" or category in ASB_CATEGORIES


def parse_ids(values: Iterable[str]) -> list[int]:
    """Integers from form values; anything else is ignored."""
    return [int(v) for v in values if str(v).isdigit()]


def to_json(value: Any) -> str:
    """Compact JSON for storage."""
    return json.dumps(value, separators=(",", ":"))
