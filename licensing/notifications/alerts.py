"""Alerts: what to tell whom, and when. Each alert is one outbox row per recipient whose
dedupe key names what it is about, so a job may run as often as it likes (or catch up
after downtime) and every alert is still enqueued exactly once.

- Deadlines (open): 7 and 2 working days before, on the day, and once overdue, to the
  premises' case officer and every active supervisor. A deadline whose date is corrected
  gets fresh alerts, because the date is part of the key. After downtime only the
  current stage is sent: "7 working days left" is no use when two are.
- Recommendations (open, raised in the last 14 days): to the case officer (to every
  supervisor when the premises has none, so the alert reaches someone).
- The daily digest at 07:00 London time, to every active officer and supervisor with
  something in it.
Users who chose "digest only" get no immediate alerts.
"""

from __future__ import annotations

import gc
import logging
import re
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import partial
from operator import attrgetter, itemgetter
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

from flask import current_app
from markupsafe import escape
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, lazyload
from werkzeug.routing import MapAdapter

from licensing.auth.models import Role, User
from licensing.db import utcnow
from licensing.deadlines.calendar import WorkingDayCalendar
from licensing.deadlines.models import Deadline
from licensing.deadlines.services import calendar
from licensing.incidents.models import Recommendation
from licensing.notifications.models import ALERT_MODES, AlertPreference
from licensing.notifications.outbox import enqueue, enqueue_many, existing_keys
from licensing.premises.models import Premises
from licensing.templating import DEADLINE_LABELS
from licensing.timeutil import LONDON, format_london
from licensing.visits.models import OPEN_STATUSES, VISIT_TYPES, Visit

log = logging.getLogger(__name__)

WARNING_WORKING_DAYS = (7, 2)
DIGEST_STATES = ("warned", "review", "action")
DIGEST_HORIZON_DAYS = 14
# Older open recommendations are not news: without this, switching alerts on (or a
# long outage) would mail every recommendation ever left open.
RECOMMENDATION_ALERT_DAYS = 14
DEFAULT_DIGEST_HOUR = 7


# ---- preferences ----------------------------------------------------------------------


def alert_mode(session: Session, user_id: int) -> str:
    """The user's choice: "immediate" (alerts and the digest, the default) or "digest"."""
    preference = session.get(AlertPreference, user_id)
    return preference.mode if preference is not None else "immediate"


def set_alert_mode(session: Session, user: User, mode: str) -> AlertPreference:
    """Record the user's choice of alerts, and commit."""
    if mode not in ALERT_MODES:
        raise ValueError(f"mode must be one of {', '.join(ALERT_MODES)}")
    preference = session.get(AlertPreference, user.id)
    if preference is None:
        preference = AlertPreference(user_id=user.id)
        session.add(preference)
    preference.mode = mode
    preference.updated_at = utcnow()
    session.commit()
    return preference


def _digest_only(session: Session) -> set[int]:
    return set(
        session.scalars(select(AlertPreference.user_id).where(AlertPreference.mode == "digest"))
    )


# ---- rendering ------------------------------------------------------------------------


def absolute_url(endpoint: str, **values: Any) -> str:
    """A link into the app at BASE_URL (there is no request to take the host from)."""
    base = urlsplit(str(current_app.config["BASE_URL"]).rstrip("/"))
    adapter = current_app.url_map.bind(
        base.netloc, script_name=base.path or "/", url_scheme=base.scheme or "https"
    )
    return adapter.build(endpoint, values, force_external=True)


def render_email(name: str, **context: Any) -> tuple[str, str]:
    """The plain-text and HTML bodies from templates/email/NAME.txt and NAME.html.

    Rendered from the app's Jinja environment directly, not `render_template`, because
    there is no request: nothing may depend on a signed-in user. HTML is autoescaped.
    """
    env = current_app.jinja_env
    context.setdefault("base_url", str(current_app.config["BASE_URL"]).rstrip("/"))
    text = env.get_template(f"email/{name}.txt").render(**context)
    html = env.get_template(f"email/{name}.html").render(**context)
    return text, html


def _send(
    session: Session, user: User, key: str, subject: str, template: str, **context: Any
) -> bool:
    text, html = render_email(template, user=user, subject=subject, **context)
    return enqueue(
        session,
        recipient=user.email,
        subject=subject,
        text=text,
        html=html,
        dedupe_key=key,
        user_id=user.id,
    )


_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTH_NAMES = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


def _long_date(day: date) -> str:
    # Names from tables, not strftime: the same English in any locale, and a tenth of
    # the time (thousands of dates a pass).
    return f"{_DAY_NAMES[day.weekday()]} {day.day} {_MONTH_NAMES[day.month - 1]} {day.year}"


# ---- rendering many alerts at once ----------------------------------------------------
#
# Jinja spends most of a small email's time setting up the render (about half a
# millisecond a body here), and 10,000 alerts a tick made that seconds. An alert's text
# depends on the template's branches (the stage, the number of days) and otherwise only
# prints values. So each template is rendered once per shape (its branch values) with
# stand-ins that print as markers, and each email is that output with the markers
# replaced by its own values, escaped as Jinja would. A template that does more with a
# value than print it (a test, a loop, a filter) makes the stand-in refuse, and that
# shape is rendered in full for every email, as before.

_MARKER = "\x00"
_MARKED = re.compile(f"{_MARKER}([A-Za-z_][A-Za-z0-9_.]*){_MARKER}")


class _NotPlain(Exception):
    """A template used a stand-in value for more than printing it."""


class _StandIn:
    """Prints as a marker naming the value it stands for; its attributes stand for the
    value's attributes. Anything else a template might do with it is refused."""

    __slots__ = ("_path",)

    def __init__(self, path: str) -> None:
        self._path = path

    def __getattr__(self, name: str) -> _StandIn:
        if name.startswith("_"):
            raise AttributeError(name)
        return _StandIn(f"{self._path}.{name}")

    def __str__(self) -> str:
        return f"{_MARKER}{self._path}{_MARKER}"

    def __html__(self) -> str:
        return str(self)

    def _refuse(self, *_args: Any, **_kwargs: Any) -> Any:
        raise _NotPlain(self._path)

    __bool__ = __len__ = __iter__ = __int__ = __float__ = __getitem__ = _refuse
    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __contains__ = _refuse
    __add__ = __radd__ = __mod__ = __mul__ = __call__ = __format__ = _refuse
    __hash__ = None  # type: ignore[assignment]


# A rendered shape: its text as a format string, and the paths (value, attribute …) of
# the values that go into its fields in order.
_Shape = tuple[str, tuple[tuple[str, ...], ...]]


def _shape(rendered: str) -> _Shape | None:
    pieces = _MARKED.split(rendered)
    text: list[str] = []
    paths: list[tuple[str, ...]] = []
    for n, piece in enumerate(pieces):
        if n % 2:
            text.append("{}")
            paths.append(tuple(piece.split(".")))
        elif _MARKER in piece:
            return None  # a marker was cut or changed: the value was not simply printed
        else:
            text.append(piece.replace("{", "{{").replace("}", "}}"))
    return "".join(text), tuple(paths)


def _getter(path: tuple[str, ...]) -> Callable[[Mapping[str, Any]], Any]:
    """Reads a path (a value, then attributes of it) out of a template's values."""
    name, attributes = path[0], path[1:]
    if not attributes:
        return itemgetter(name)
    read = attrgetter(".".join(attributes))
    return lambda values: read(values[name])


@dataclass(frozen=True, slots=True)
class _Filler:
    """Both bodies of one shape: their format strings, and which of the values both
    print (each read once an email) go into their fields."""

    getters: tuple[Callable[[Mapping[str, Any]], Any], ...]
    text: str
    text_fields: tuple[int, ...]
    html: str
    html_fields: tuple[int, ...]

    @classmethod
    def of(cls, text: _Shape, html: _Shape) -> _Filler:
        """The filler of a text shape and an HTML shape."""
        paths = list(dict.fromkeys([*text[1], *html[1]]))
        where = {path: n for n, path in enumerate(paths)}
        return cls(
            tuple(_getter(path) for path in paths),
            text[0],
            tuple(where[path] for path in text[1]),
            html[0],
            tuple(where[path] for path in html[1]),
        )

    def fill(self, values: Mapping[str, Any]) -> tuple[str, str]:
        """The text body (values as `str` gives them) and the HTML body (escaped as
        Jinja's autoescape does)."""
        found = [get(values) for get in self.getters]
        return (
            self.text.format(*[str(found[n]) for n in self.text_fields]),
            self.html.format(*[escape(found[n]) for n in self.html_fields]),
        )


class AlertRenderer:
    """Renders alert emails, each template once per shape (see above); the bodies are
    those `render_email` gives, byte for byte."""

    def __init__(self) -> None:
        self._fillers: dict[tuple[Hashable, ...], _Filler | None] = {}

    def render(
        self,
        template: str,
        *,
        user: User,
        subject: str,
        shape: Mapping[str, Hashable],
        values: Mapping[str, Any],
    ) -> tuple[str, str]:
        """The plain-text and HTML bodies: `shape` holds the values the template branches
        on, `values` the ones it only prints."""
        everything = {"user": user, "subject": subject, **values}
        # Unsorted: a caller passes its names in one order, and another order is only
        # another entry.
        key = (template, *shape.items(), None, *everything)
        if key not in self._fillers:
            self._fillers[key] = self._prepare(template, shape, everything)
        filler = self._fillers[key]
        if filler is None:
            return render_email(template, **shape, **everything)
        return filler.fill(everything)

    @staticmethod
    def _prepare(
        template: str, shape: Mapping[str, Hashable], values: Mapping[str, Any]
    ) -> _Filler | None:
        stand_ins = {name: _StandIn(name) for name in values}
        try:
            text, html = render_email(template, **shape, **stand_ins)
        except _NotPlain:
            return None
        text_shape, html_shape = _shape(text), _shape(html)
        if text_shape is None or html_shape is None:
            return None
        return _Filler.of(text_shape, html_shape)


class _Links:
    """Absolute links at BASE_URL, the URL map bound once."""

    def __init__(self) -> None:
        base = urlsplit(str(current_app.config["BASE_URL"]).rstrip("/"))
        self.adapter: MapAdapter = current_app.url_map.bind(
            base.netloc, script_name=base.path or "/", url_scheme=base.scheme or "https"
        )
        self._premises: dict[int, str] = {}

    def premises(self, premises_id: int) -> str:
        """The premises page."""
        url = self._premises.get(premises_id)
        if url is None:
            url = self.adapter.build(
                "premises.show", {"premises_id": premises_id}, force_external=True
            )
            self._premises[premises_id] = url
        return url

    def build(self, endpoint: str, **values: Any) -> str:
        """Any page."""
        return self.adapter.build(endpoint, values, force_external=True)


@dataclass(slots=True)
class _Alert:
    """What an alert says, apart from whom it is to: worked out only when some
    recipient's email is new."""

    subject: str
    template: str
    premises_id: int
    shape: dict[str, Hashable]
    values: dict[str, Any]


class _Once:
    """An alert's `_Alert`, made at most once and only when asked: a tick mostly finds
    its alerts already sent, and then makes none."""

    __slots__ = ("_make", "_made")

    def __init__(self, make: Callable[[], _Alert]) -> None:
        self._make = make
        self._made: _Alert | None = None

    def get(self) -> _Alert:
        """The alert."""
        if self._made is None:
            self._made = self._make()
        return self._made


class _Columns(SimpleNamespace):
    """Some columns of a row, those the alert templates print; any other attribute a
    template asks for loads the row itself. Thousands of deadlines and visits a pass are
    read as plain columns (a tenth of the cost of whole objects) and none needs loading."""

    def __init__(self, load: Callable[[], Any], **columns: Any) -> None:
        super().__init__(**columns)
        self._load = load

    def __getattr__(self, name: str) -> Any:
        # Called only for attributes that are not columns here.
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._load(), name)


@dataclass
class AlertBatch:
    """One pass over what is due: what it needs is loaded once (digest-only users, the
    users, the supervisors, the calendar, links), each due alert is collected as its
    dedupe keys and a way to describe it, and `store` describes and renders only those
    whose key is not in the outbox yet and inserts them in bulk."""

    session: Session
    now: datetime
    skip: set[int] = field(init=False)
    cal: WorkingDayCalendar = field(init=False)
    renderer: AlertRenderer = field(init=False, default_factory=AlertRenderer)
    pending: list[tuple[str, User, _Once]] = field(init=False, default_factory=list)
    _supervisors: list[User] | None = field(init=False, default=None)
    _links: _Links | None = field(init=False, default=None)
    _day_stages: dict[date, str | None] = field(init=False, default_factory=dict)
    _days_left: dict[date, int] = field(init=False, default_factory=dict)
    _people: dict[tuple[int | None, bool], list[User]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.skip = _digest_only(self.session)
        self.cal = calendar()
        self.today = self.now.astimezone(LONDON).date()
        # Every user, once (two hundred rows): recipients come from this map, not from
        # a join or a query per alert.
        self.users = {user.id: user for user in self.session.scalars(select(User))}

    def user(self, user_id: int | None) -> User | None:
        """A user by id (None for None)."""
        return None if user_id is None else self.users.get(user_id)

    @property
    def supervisors(self) -> list[User]:
        """The active supervisors, loaded on first use."""
        if self._supervisors is None:
            self._supervisors = _active_supervisors(self.session)
        return self._supervisors

    def people(self, user_id: int | None, *, supervisors: bool) -> list[User]:
        """`_recipients` of the user `user_id` (and every supervisor when asked), worked
        out once per user: the active ones who are not digest-only."""
        key = (user_id, supervisors)
        found = self._people.get(key)
        if found is None:
            found = _recipients(
                self.user(user_id), self.supervisors if supervisors else [], self.skip
            )
            self._people[key] = found
        return found

    @property
    def links(self) -> _Links:
        """Links at BASE_URL, on first use."""
        if self._links is None:
            self._links = _Links()
        return self._links

    def stage(self, due_at: datetime | None, due_date: date | None) -> str | None:
        """`deadline_stage` of a deadline's due moment or day, working out each due day
        once."""
        if due_at is not None and self.now > due_at:
            return "overdue"
        day = _due_day(due_at, due_date)
        if day not in self._day_stages:
            self._day_stages[day] = _day_stage(day, self.today, self.cal)
        return self._day_stages[day]

    def days_left(self, day: date) -> int:
        """Working days after today up to `day`."""
        if day not in self._days_left:
            self._days_left[day] = self.cal.working_days_between(
                self.today + timedelta(days=1), day
            )
        return self._days_left[day]

    def add(self, users: Iterable[User], prefix: str, describe: Callable[[], _Alert]) -> None:
        """One alert to each of `users`, under the dedupe key `prefix` + the user's id;
        `describe` says what it is (called only if some recipient's email is new)."""
        once = _Once(describe)
        for user in users:
            self.pending.append((f"{prefix}{user.id}", user, once))

    def store(self) -> int:
        """Render and insert the collected alerts not yet in the outbox, in the caller's
        transaction; the number of new emails."""
        pending, self.pending = self.pending, []
        if not pending:
            return 0
        known = existing_keys(self.session, [key for key, _, _ in pending])
        rows = []
        for key, user, once in pending:
            if key in known:
                continue
            known.add(key)  # the same key twice in one pass is one email
            alert = once.get()
            text, html = self.renderer.render(
                alert.template,
                user=user,
                subject=alert.subject,
                shape=alert.shape,
                values={**alert.values, "premises_url": self.links.premises(alert.premises_id)},
            )
            rows.append(
                {
                    "dedupe_key": key,
                    "recipient": user.email,
                    "user_id": user.id,
                    "subject": alert.subject,
                    "text_body": text,
                    "html_body": html,
                }
            )
        return enqueue_many(self.session, rows, now=utcnow())


# ---- deadlines ------------------------------------------------------------------------


def working_days_before(day: date, n: int, cal: WorkingDayCalendar) -> date:
    """The n-th working day before `day`, not counting `day`: two working days before a
    Thursday is the Tuesday, but before Tuesday 29 December 2026 it is Wednesday the 23rd
    (Christmas, a weekend and the Boxing Day substitute holiday intervene)."""
    counted = 0
    current = day
    while True:
        current -= timedelta(days=1)
        if cal.is_working_day(current):
            counted += 1
            if counted == n:
                return current


def _due_day(due_at: datetime | None, due_date: date | None) -> date:
    if due_at is not None:
        return due_at.astimezone(LONDON).date()
    assert due_date is not None
    return due_date


def due_day(deadline: Deadline) -> date:
    """The London date a deadline falls on."""
    return _due_day(deadline.due_at, deadline.due_date)


def _day_stage(day: date, today: date, cal: WorkingDayCalendar) -> str | None:
    if today > day:
        return "overdue"
    if today == day:
        return "due"
    for n in sorted(WARNING_WORKING_DAYS):
        if today >= working_days_before(day, n, cal):
            return f"T-{n}"
    return None


def deadline_stage(deadline: Deadline, now: datetime, cal: WorkingDayCalendar) -> str | None:
    """Which alert a deadline calls for now: T-7, T-2, due, overdue, or None yet."""
    if deadline.due_at is not None and now > deadline.due_at:
        return "overdue"
    return _day_stage(due_day(deadline), now.astimezone(LONDON).date(), cal)


def _active_supervisors(session: Session) -> list[User]:
    return list(
        session.scalars(
            select(User)
            .where(User.role == Role.SUPERVISOR, User.active.is_(True))
            .order_by(User.id)
        )
    )


def _recipients(
    case_officer: User | None, supervisors: Sequence[User], skip: set[int]
) -> list[User]:
    people: dict[int, User] = {}
    for user in [*([case_officer] if case_officer is not None else []), *supervisors]:
        if user.active and user.id not in skip:
            people.setdefault(user.id, user)
    return list(people.values())


# The columns the alert templates print (through `_Columns`); the keys and stages need
# fewer still. Plain columns, not ORM objects: a tick reads thousands of rows and finds
# almost all of them already alerted.
_PREMISES_COLUMNS = (Premises.name, Premises.licence_number, Premises.case_officer_id)
_DEADLINE_COLUMNS = (
    Deadline.id,
    Deadline.premises_id,
    Deadline.kind,
    Deadline.due_date,
    Deadline.due_at,
    Deadline.rule,
)


def _premises_columns(session: Session, row: Any) -> _Columns:
    return _Columns(
        lambda: session.get(Premises, row.premises_id),
        id=row.premises_id,
        name=row.name,
        licence_number=row.licence_number,
        case_officer_id=row.case_officer_id,
    )


def _deadline_alert(batch: AlertBatch, row: Any, stage: str) -> _Alert:
    day = _due_day(row.due_at, row.due_date)
    label = DEADLINE_LABELS.get(row.kind, row.kind.replace("_", " "))
    left = batch.days_left(day)
    if stage == "overdue":
        subject = f"Overdue: {label.lower()} – {row.name}"
    elif stage == "due":
        subject = f"Due today: {label.lower()} – {row.name}"
    else:
        subject = f"{left} working day{'s' if left != 1 else ''} left: {label.lower()} – {row.name}"
    session = batch.session
    deadline = _Columns(
        lambda: session.get(Deadline, row.id),
        id=row.id,
        premises_id=row.premises_id,
        kind=row.kind,
        due_date=row.due_date,
        due_at=row.due_at,
        rule=row.rule,
    )
    return _Alert(
        subject,
        "deadline",
        row.premises_id,
        {"stage": stage, "working_days_left": left},
        {
            "deadline": deadline,
            "premises": _premises_columns(session, row),
            "label": label,
            "due_text": format_london(row.due_at) if row.due_at is not None else _long_date(day),
        },
    )


def _collect_deadlines(batch: AlertBatch) -> None:
    rows = batch.session.execute(
        select(*_DEADLINE_COLUMNS, *_PREMISES_COLUMNS)
        .join(Premises, Premises.id == Deadline.premises_id)
        .where(Deadline.status == "open")
        .order_by(Deadline.id)
    )
    for row in rows:
        stage = batch.stage(row.due_at, row.due_date)
        if stage is None:
            continue
        people = batch.people(row.case_officer_id, supervisors=True)
        if not people:
            continue
        due_iso = (
            row.due_at.isoformat().replace("+00:00", "Z")
            if row.due_at is not None
            else row.due_date.isoformat()
        )
        batch.add(
            people,
            f"deadline:{row.id}:{due_iso}:{stage}:user:",
            partial(_deadline_alert, batch, row, stage),
        )


def deadline_alerts(
    session: Session, now: datetime | None = None, *, batch: AlertBatch | None = None
) -> int:
    """Enqueue the alert each open deadline calls for now (in the caller's transaction);
    the number of new emails."""
    batch = batch or AlertBatch(session, now or utcnow())
    _collect_deadlines(batch)
    return batch.store()


# ---- recommendations ------------------------------------------------------------------


def _recommendation_alert(
    batch: AlertBatch, recommendation: Recommendation, premises: Premises
) -> _Alert:
    event = recommendation.recommended_event.replace("_", " ")
    return _Alert(
        f"Recommendation: {event} – {premises.name}",
        "recommendation",
        premises.id,
        {},
        {
            "recommendation": recommendation,
            "premises": premises,
            "event": event,
            "recommendations_url": batch.links.build("incidents.list_recommendations"),
        },
    )


def _collect_recommendations(batch: AlertBatch) -> None:
    rows = batch.session.execute(
        select(Recommendation, Premises)
        .join(Premises, Premises.id == Recommendation.premises_id)
        .where(
            Recommendation.status == "open",
            Recommendation.created_at >= batch.now - timedelta(days=RECOMMENDATION_ALERT_DAYS),
        )
        .order_by(Recommendation.id)
        # The case officer and authority are not printed; recipients come from the batch.
        .options(lazyload(Premises.case_officer), lazyload(Premises.authority))
    )
    for recommendation, premises in rows:
        if batch.user(premises.case_officer_id) is not None:
            people = batch.people(premises.case_officer_id, supervisors=False)
        else:  # nobody's case: every supervisor, so the alert reaches someone
            people = batch.people(None, supervisors=True)
        batch.add(
            people,
            f"recommendation:{recommendation.id}:user:",
            partial(_recommendation_alert, batch, recommendation, premises),
        )


def recommendation_alerts(
    session: Session, now: datetime | None = None, *, batch: AlertBatch | None = None
) -> int:
    """Enqueue an alert for each recently raised open recommendation (in the caller's
    transaction) to the case officer (every supervisor when there is none); the number
    of new emails."""
    batch = batch or AlertBatch(session, now or utcnow())
    _collect_recommendations(batch)
    return batch.store()


# ---- visits ---------------------------------------------------------------------------


_VISIT_COLUMNS = (
    Visit.id,
    Visit.premises_id,
    Visit.visit_type,
    Visit.status,
    Visit.visit_date,
    Visit.officer_id,
)


def _visit_alert(batch: AlertBatch, row: Any, stage: str) -> _Alert:
    if stage == "tomorrow":
        subject = f"Visit due tomorrow – {row.name}"
    else:
        subject = f"Visit overdue – {row.name}"
    session = batch.session
    visit = _Columns(
        lambda: session.get(Visit, row.id),
        id=row.id,
        premises_id=row.premises_id,
        visit_type=row.visit_type,
        status=row.status,
        visit_date=row.visit_date,
        officer_id=row.officer_id,
    )
    return _Alert(
        subject,
        "visit",
        row.premises_id,
        {"stage": stage},
        {
            "visit": visit,
            "premises": _premises_columns(session, row),
            "due_text": _long_date(row.visit_date),
        },
    )


def _collect_visits(batch: AlertBatch) -> None:
    today = batch.today
    tomorrow = today + timedelta(days=1)
    rows = batch.session.execute(
        select(*_VISIT_COLUMNS, *_PREMISES_COLUMNS)
        .join(Premises, Premises.id == Visit.premises_id)
        # Today's visits raise nothing: tomorrow's are due, earlier ones overdue.
        .where(
            Visit.status.in_(OPEN_STATUSES),
            Visit.visit_date <= tomorrow,
            Visit.visit_date != today,
        )
        .order_by(Visit.id)
    )
    users = batch.users
    for row in rows:
        stage = "tomorrow" if row.visit_date == tomorrow else "overdue"
        # The booked officer, or the case officer while nobody is booked.
        officer_id = row.officer_id if row.officer_id in users else row.case_officer_id
        people = batch.people(officer_id, supervisors=False)
        if not people:
            continue
        batch.add(
            people,
            f"visit:{row.id}:{row.visit_date.isoformat()}:{stage}:user:",
            partial(_visit_alert, batch, row, stage),
        )


def visit_alerts(
    session: Session, now: datetime | None = None, *, batch: AlertBatch | None = None
) -> int:
    """Enqueue "visit due tomorrow" and "visit overdue" alerts (in the caller's
    transaction) to the visit's officer, or the case officer while nobody is booked."""
    batch = batch or AlertBatch(session, now or utcnow())
    _collect_visits(batch)
    return batch.store()


# ---- the digest -----------------------------------------------------------------------


@dataclass
class Digest:
    """What one user's morning digest lists."""

    premises: list[Premises]
    deadlines: list[tuple[Deadline, Premises, str]]
    recommendations: list[tuple[Recommendation, Premises]]
    visits: list[Any]

    @property
    def empty(self) -> bool:
        """Nothing to say: no digest is sent."""
        return not (self.premises or self.deadlines or self.recommendations or self.visits)


def digest_for(session: Session, user: User, today: date) -> Digest:
    """An officer's digest covers the premises they are case officer of; a supervisor's
    covers every premises (they are alerted about every deadline too)."""
    scope: Iterable[Any] = (
        () if user.role == Role.SUPERVISOR else (Premises.case_officer_id == user.id,)
    )
    premises = list(
        session.scalars(
            select(Premises)
            .where(Premises.state.in_(DIGEST_STATES), *scope)
            .order_by(Premises.name, Premises.id)
        )
    )
    horizon = today + timedelta(days=DIGEST_HORIZON_DAYS)
    deadlines = []
    for deadline, place in session.execute(
        select(Deadline, Premises)
        .join(Premises, Premises.id == Deadline.premises_id)
        .where(Deadline.status == "open", *scope)
    ):
        day = due_day(deadline)
        if day <= horizon:  # overdue ones too: they are the most pressing
            deadlines.append((deadline, place, DEADLINE_LABELS.get(deadline.kind, deadline.kind)))
    deadlines.sort(key=lambda item: (due_day(item[0]), item[0].id))
    recommendations = [
        (recommendation, place)
        for recommendation, place in session.execute(
            select(Recommendation, Premises)
            .join(Premises, Premises.id == Recommendation.premises_id)
            .where(Recommendation.status == "open", *scope)
            .order_by(Recommendation.created_at, Recommendation.id)
        )
    ]
    return Digest(premises, deadlines, recommendations, _digest_visits(session, user, horizon))


def _digest_visits(session: Session, user: User, horizon: date) -> list[Any]:
    """Open visits up to the horizon (overdue ones too) booked for the user, or proposed
    for a premises they are case officer of while nobody is booked."""
    return list(
        session.scalars(
            select(Visit)
            .join(Premises, Premises.id == Visit.premises_id)
            .where(
                Visit.status.in_(OPEN_STATUSES),
                Visit.visit_date <= horizon,
                or_(
                    Visit.officer_id == user.id,
                    and_(Visit.officer_id.is_(None), Premises.case_officer_id == user.id),
                ),
            )
            .order_by(Visit.visit_date, Visit.id)
        )
    )


def enqueue_digests(session: Session, now: datetime | None = None, hour: int | None = None) -> int:
    """From `hour` (07:00) London time, enqueue today's digest for every active officer
    and supervisor with something in it, and commit; the number of new emails.

    Keyed by the London date, so the 07:00 job, a catch-up after downtime later in the
    day, and any repeat all give one digest a day.
    """
    now = now or utcnow()
    if hour is None:
        hour = int(current_app.config.get("ALERT_DIGEST_HOUR") or DEFAULT_DIGEST_HOUR)
    local = now.astimezone(LONDON)
    if local.hour < hour:
        return 0
    today = local.date()
    cal = calendar()
    added = 0
    users = session.scalars(
        select(User)
        .where(User.role.in_((Role.OFFICER, Role.SUPERVISOR)), User.active.is_(True))
        .order_by(User.id)
    )
    for user in users:
        digest = digest_for(session, user, today)
        if digest.empty:
            continue
        items = [
            {
                "deadline": deadline,
                "premises": place,
                "label": label,
                "due_text": format_london(deadline.due_at)
                if deadline.due_at is not None
                else _long_date(deadline.due_date or today),
                "overdue": deadline_stage(deadline, now, cal) == "overdue",
                "url": absolute_url("premises.show", premises_id=place.id),
            }
            for deadline, place, label in digest.deadlines
        ]
        added += _send(
            session,
            user,
            f"digest:{today.isoformat()}:user:{user.id}",
            f"Licensing digest for {_long_date(today)}",
            "digest",
            today_text=_long_date(today),
            premises=[
                (p, absolute_url("premises.show", premises_id=p.id)) for p in digest.premises
            ],
            deadlines=items,
            recommendations=[
                (r, p, absolute_url("premises.show", premises_id=p.id))
                for r, p in digest.recommendations
            ],
            visits=[
                {
                    "visit": visit,
                    "due_text": _long_date(visit.visit_date),
                    "type_label": VISIT_TYPES.get(visit.visit_type, visit.visit_type),
                    "overdue": visit.visit_date < today,
                    "url": absolute_url("premises.show", premises_id=visit.premises_id),
                }
                for visit in digest.visits
            ],
            horizon_days=DIGEST_HORIZON_DAYS,
        )
    session.commit()
    return added


@contextmanager
def _no_collector_pauses() -> Iterator[None]:
    """Hold the cyclic garbage collector off for the block. A pass over ten thousand
    due alerts allocates hundreds of thousands of small objects, and each full
    collection they set off walks the whole heap (the app, SQLAlchemy's caches): 0.9 s
    of a 4 s tick. Reference counting still frees everything the pass drops, and the
    collector runs as usual once it is over."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def enqueue_due_alerts(session: Session, now: datetime | None = None) -> dict[str, int]:
    """Enqueue every immediate alert due now (deadlines, recommendations, visits), and
    commit; the number of new emails of each kind."""
    from licensing.actionplans.alerts import action_plan_alerts  # it imports this module

    with _no_collector_pauses():
        batch = AlertBatch(session, now or utcnow())
        counts = {
            "deadlines": deadline_alerts(session, batch=batch),
            "recommendations": recommendation_alerts(session, batch=batch),
            "visits": visit_alerts(session, batch=batch),
            "action_plans": action_plan_alerts(session, batch.now),
        }
        session.commit()
    return counts
