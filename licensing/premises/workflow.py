"""The escalation workflow: states, events, who may take them, and the guards.

One module-level `transitions.Machine` knows the graph. Rules about people and facts
(roles, required fields, guards) live here too, so every refusal has one source and a
reason a person can read. Services attach a premises to the machine only for the length
of one event (see `licensing.premises.services.apply_event`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from transitions import EventData, Machine

from licensing.auth.models import Role
from licensing.errors import Refused, ValidationFailed
from licensing.timeutil import london_today, parse_instant

MONITORED, WARNED, REVIEW, ACTION = "monitored", "warned", "review", "action"
STATES = [MONITORED, WARNED, REVIEW, ACTION]
STATE_LABELS = {
    MONITORED: "Monitored",
    WARNED: "Warned",
    REVIEW: "Under review",
    ACTION: "Action",
}

OUTCOMES = {
    "no_action": "No action",
    "modify_conditions": "Modify the conditions of the licence",
    "exclude_activity": "Exclude a licensable activity",
    "remove_dps": "Remove the designated premises supervisor",
    "suspend": "Suspend the licence (up to 3 months)",
    "revoke": "Revoke the licence",
}


def _is_no_action(event: EventData) -> bool:
    return bool(event.kwargs.get("outcome") == "no_action")


TRANSITIONS: list[dict[str, Any]] = [
    {"trigger": "warn", "source": MONITORED, "dest": WARNED},
    {"trigger": "stand_down", "source": WARNED, "dest": MONITORED},
    {"trigger": "apply_for_review", "source": WARNED, "dest": REVIEW},
    {"trigger": "apply_for_summary_review", "source": [MONITORED, WARNED], "dest": REVIEW},
    {"trigger": "withdraw_review", "source": REVIEW, "dest": WARNED},
    # A determination of "no action" returns the premises to monitoring; any other
    # outcome moves it to action.
    {
        "trigger": "record_determination",
        "source": REVIEW,
        "dest": MONITORED,
        "conditions": [_is_no_action],
    },
    {
        "trigger": "record_determination",
        "source": REVIEW,
        "dest": ACTION,
        "unless": [_is_no_action],
    },
    {"trigger": "close_action", "source": ACTION, "dest": MONITORED},
    # Internal transitions (dest None): facts of the council's process that keep the
    # state but drive the statutory deadlines that hang on them.
    {"trigger": "correct_review_dates", "source": REVIEW, "dest": None},
    {"trigger": "record_hearing", "source": REVIEW, "dest": None},
    {"trigger": "record_interim_steps", "source": REVIEW, "dest": None},
    {"trigger": "record_decision_notified", "source": [ACTION, MONITORED], "dest": None},
    {"trigger": "record_appeal", "source": [ACTION, MONITORED], "dest": None},
]

APPEAL_STAGES = {
    "lodged": "Appeal lodged with the magistrates' court",
    "dismissed": "Appeal dismissed (the decision stands)",
    "allowed": "Appeal allowed (the decision is overturned or varied)",
    "withdrawn": "Appeal withdrawn",
}

# The one machine. Premises are added for one event and removed in `finally`.
machine = Machine(
    model=None,
    states=STATES,
    transitions=TRANSITIONS,
    initial=MONITORED,
    auto_transitions=False,
    send_event=True,
)

# The names `Machine.add_model` binds on a model (never a mapped column).
_BOUND_NAMES = frozenset(
    {"trigger", "may_trigger"}
    | {name for event in machine.events for name in (event, f"may_{event}")}
    | {f"is_{state}" for state in machine.states}
)
# Serialises use of the shared machine: its model list is shared by every thread.
_machine_lock = threading.Lock()


def fire(premises: Any, event: str, params: dict[str, Any]) -> bool:
    """Take `event` on `premises` through the machine; return whether it moved.

    The premises is attached for this call only: afterwards (also when the event raises)
    it is off `machine.models` and carries none of the methods the machine bound to it
    (`trigger`, `warn`, `may_warn`, `is_monitored`...), so nothing can move its state
    except another call through the services.
    """
    initial = premises.state
    bound = _BOUND_NAMES - set(vars(premises))
    with _machine_lock:
        machine.add_model(premises, initial=initial)
        try:
            return bool(premises.trigger(event, **params))
        finally:
            machine.remove_model(premises)
            for name in bound & set(vars(premises)):
                delattr(premises, name)


POLICE = frozenset({Role.OFFICER, Role.SUPERVISOR})
INTERNAL_EVENTS = frozenset(
    {
        "correct_review_dates",
        "record_hearing",
        "record_interim_steps",
        "record_decision_notified",
        "record_appeal",
    }
)
SUPERVISOR_ONLY = frozenset({Role.SUPERVISOR})


@dataclass(frozen=True)
class EventRule:
    """What an event needs: who may take it and which parameters it carries."""

    name: str
    label: str
    roles: frozenset[Role]
    parameters: tuple[str, ...] = ()
    hint: str = ""


EVENT_RULES: dict[str, EventRule] = {
    rule.name: rule
    for rule in [
        EventRule(
            "warn", "Warn", POLICE, ("override_reason",), "Send a warning: monitored to warned."
        ),
        EventRule(
            "stand_down", "Stand down", POLICE, (), "Return a warned premises to monitoring."
        ),
        EventRule(
            "apply_for_review",
            "Apply for a review (s.51)",
            SUPERVISOR_ONLY,
            ("application_date",),
            "Standard review application to the licensing authority.",
        ),
        EventRule(
            "apply_for_summary_review",
            "Apply for a summary review (s.53A)",
            SUPERVISOR_ONLY,
            ("received_at", "certificate_reference"),
            "Serious crime or disorder, with a superintendent's certificate.",
        ),
        EventRule("withdraw_review", "Withdraw the review", SUPERVISOR_ONLY, (), ""),
        EventRule(
            "record_determination",
            "Record the determination",
            SUPERVISOR_ONLY,
            ("outcome", "decision_date", "suspended_until"),
            "The licensing sub-committee's decision.",
        ),
        EventRule("close_action", "Close the action", SUPERVISOR_ONLY, (), "Return to monitoring."),
        EventRule(
            "correct_review_dates",
            "Correct the review's dates",
            SUPERVISOR_ONLY,
            ("application_date", "received_at"),
            "When the application date (standard) or time of receipt (summary) was recorded "
            "wrongly: the deadlines that hang on it are recomputed.",
        ),
        EventRule(
            "record_hearing",
            "Record the hearing",
            POLICE,
            ("hearing_date",),
            "The (last) day of the sub-committee hearing: the determination is due within "
            "5 working days.",
        ),
        EventRule(
            "record_interim_steps",
            "Record the interim steps decision",
            POLICE,
            ("decided_at", "interim_steps"),
            "Summary review: what the authority decided on interim steps, and when.",
        ),
        EventRule(
            "record_decision_notified",
            "Record when the decision was notified",
            POLICE,
            ("notified_on",),
            "The licence holder may appeal within 21 days beginning with this day.",
        ),
        EventRule(
            "record_appeal",
            "Record an appeal",
            POLICE,
            ("appeal_stage", "appeal_date"),
            "An appeal to the magistrates' court: lodged, then its outcome.",
        ),
    ]
}


def events_from(state: str) -> list[str]:
    """The events the machine allows from `state`, in a stable order."""
    allowed = set(machine.get_triggers(state))
    return [name for name in EVENT_RULES if name in allowed]


def events_available(state: str, role: str) -> list[EventRule]:
    """The events a user with `role` could take on a premises in `state`."""
    return [EVENT_RULES[name] for name in events_from(state) if role in EVENT_RULES[name].roles]


# ---- parameters ------------------------------------------------------------------------


def _text(params: dict[str, Any], name: str) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationFailed(f"{name} must be text", {name: "Must be text"})
    value = value.strip()
    return value or None


def _date(params: dict[str, Any], name: str) -> date | None:
    value = params.get(name)
    if value in (None, ""):
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise ValidationFailed(
            f"{name} must be a date in the form YYYY-MM-DD", {name: "Enter a real date"}
        ) from None


def _instant(params: dict[str, Any], name: str) -> datetime | None:
    value = params.get(name)
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value
    try:
        return parse_instant(str(value))
    except ValueError:
        raise ValidationFailed(
            f"{name} must be an ISO 8601 date and time", {name: "Enter a real date and time"}
        ) from None


# Clocks differ a little between a police system and this server: allow that much.
CLOCK_SLACK = timedelta(minutes=5)


def _not_in_future(value: date | datetime, name: str, what: str) -> None:
    """Refuse a date after today in England, or an instant after now."""
    late = (
        value > datetime.now(UTC) + CLOCK_SLACK
        if isinstance(value, datetime)
        else value > london_today()
    )
    if late:
        message = f"{what} cannot be in the future"
        raise ValidationFailed(message, {name: message})


def _require(value: Any, name: str, message: str) -> Any:
    if value is None:
        raise ValidationFailed(message, {name: message})
    return value


def parse_parameters(event: str, params: dict[str, Any]) -> dict[str, Any]:
    """Check and convert an event's parameters; raise ValidationFailed naming the field."""
    out: dict[str, Any] = {}
    if event == "warn":
        out["override_reason"] = _text(params, "override_reason")
    elif event == "apply_for_review":
        applied = _require(
            _date(params, "application_date"),
            "application_date",
            "Enter the date the review application was made",
        )
        _not_in_future(applied, "application_date", "The application date")
        out["application_date"] = applied
    elif event == "apply_for_summary_review":
        received = _require(
            _instant(params, "received_at"),
            "received_at",
            "Enter when the licensing authority received the application",
        )
        _not_in_future(received, "received_at", "The time of receipt")
        out["received_at"] = received
        out["certificate_reference"] = _require(
            _text(params, "certificate_reference"),
            "certificate_reference",
            "Enter the reference of the superintendent's certificate",
        )
    elif event == "correct_review_dates":
        applied = _date(params, "application_date")
        received = _instant(params, "received_at")
        if applied is None and received is None:
            raise ValidationFailed(
                "Give the corrected application date or time of receipt",
                {"application_date": "Give the corrected date"},
            )
        if applied is not None:
            _not_in_future(applied, "application_date", "The application date")
        if received is not None:
            _not_in_future(received, "received_at", "The time of receipt")
        out.update(application_date=applied, received_at=received)
    elif event == "record_hearing":
        heard = _require(
            _date(params, "hearing_date"), "hearing_date", "Enter the date of the hearing"
        )
        _not_in_future(heard, "hearing_date", "The hearing date")
        out["hearing_date"] = heard
    elif event == "record_interim_steps":
        decided = _require(
            _instant(params, "decided_at"),
            "decided_at",
            "Enter when the interim steps were decided",
        )
        _not_in_future(decided, "decided_at", "The decision time")
        out["decided_at"] = decided
        out["interim_steps"] = _require(
            _text(params, "interim_steps"),
            "interim_steps",
            "Describe the interim steps (or 'none')",
        )
    elif event == "record_decision_notified":
        notified = _require(
            _date(params, "notified_on"), "notified_on", "Enter the date the decision was notified"
        )
        _not_in_future(notified, "notified_on", "The notification date")
        out["notified_on"] = notified
    elif event == "record_appeal":
        stage = _require(_text(params, "appeal_stage"), "appeal_stage", "Choose what happened")
        if stage not in APPEAL_STAGES:
            raise ValidationFailed(
                f"appeal_stage must be one of {', '.join(APPEAL_STAGES)}",
                {"appeal_stage": "Choose what happened"},
            )
        on = _require(_date(params, "appeal_date"), "appeal_date", "Enter the date")
        _not_in_future(on, "appeal_date", "The date")
        out.update(appeal_stage=stage, appeal_date=on)
    elif event == "record_determination":
        outcome = _require(_text(params, "outcome"), "outcome", "Choose the outcome")
        if outcome not in OUTCOMES:
            raise ValidationFailed(
                f"outcome must be one of {', '.join(OUTCOMES)}", {"outcome": "Choose the outcome"}
            )
        decided = _require(
            _date(params, "decision_date"), "decision_date", "Enter the date of the decision"
        )
        _not_in_future(decided, "decision_date", "The decision date")
        out.update(outcome=outcome, decision_date=decided)
        if outcome == "suspend":
            until = _require(
                _date(params, "suspended_until"),
                "suspended_until",
                "Enter the date the suspension ends",
            )
            if not decided < until <= _add_months(decided, 3):
                raise ValidationFailed(
                    "A suspension ends after the decision and lasts at most three months",
                    {"suspended_until": "A suspension can last at most three months"},
                )
            out["suspended_until"] = until
    return out


def _add_months(start: date, months: int) -> date:
    month = start.month - 1 + months
    year = start.year + month // 12
    month = month % 12 + 1
    for day in (start.day, 30, 29, 28):
        try:
            return date(year, month, day)
        except ValueError:
            continue
    return start + timedelta(days=months * 30)  # unreachable: day 28 always exists


# ---- guards ----------------------------------------------------------------------------


@dataclass
class GuardContext:
    """What a guard may look at: the premises, the actor, the parsed parameters, and the
    session to read evidence with (guards read; they never write)."""

    premises: Any
    actor: Any
    event: str
    params: dict[str, Any]
    session: Any = None
    facts: dict[str, Any] = field(default_factory=dict)


Guard = Callable[[GuardContext], str | None]

EVIDENCE_WINDOW_DAYS = 90


def warning_needs_evidence(context: GuardContext) -> str | None:
    """A warning rests on evidence: a confirmed incident at the premises, or a visit that
    found issues, in the last 90 days; or a supervisor's override reason (recorded with
    the event)."""
    if context.params.get("override_reason"):
        if context.actor.role != Role.SUPERVISOR:
            return "Only a supervisor can give an override reason to warn without recent evidence"
        return None
    from licensing.db import utcnow  # avoids import cycles
    from licensing.incidents.services import confirmed_evidence_since
    from licensing.visits.services import findings_since

    since = utcnow() - timedelta(days=EVIDENCE_WINDOW_DAYS)
    premises_id = context.premises.id
    if (
        confirmed_evidence_since(context.session, premises_id, since) == 0
        and findings_since(context.session, premises_id, since) == 0
    ):
        return (
            f"A warning needs at least one confirmed incident or a visit that found issues "
            f"in the last {EVIDENCE_WINDOW_DAYS} days on this premises' record, or a "
            "supervisor's override reason"
        )
    return None


def review_needs_an_issued_bundle(context: GuardContext) -> str | None:
    """A review application rests on the police evidence bundle: one must have been
    issued for this premises (the application records which version)."""
    from licensing.evidence.services import has_issued_bundle  # avoids import cycles

    if not has_issued_bundle(context.session, context.premises.id):
        return (
            "A review application needs an issued evidence bundle for this premises: "
            "build one from the premises page and have a supervisor issue it"
        )
    return None


# Each event's guards, in order. A guard returns None to allow, or the reason it refuses.
GUARDS: dict[str, list[Guard]] = {name: [] for name in EVENT_RULES}
GUARDS["warn"].append(warning_needs_evidence)
GUARDS["apply_for_review"].append(review_needs_an_issued_bundle)
GUARDS["apply_for_summary_review"].append(review_needs_an_issued_bundle)


def _current_review(context: GuardContext) -> Any:
    from sqlalchemy import select

    from licensing.premises.models import ReviewApplication  # avoids an import cycle

    return context.session.scalar(
        select(ReviewApplication)
        .where(ReviewApplication.premises_id == context.premises.id)
        .order_by(ReviewApplication.id.desc())
        .limit(1)
    )


def interim_steps_need_a_summary_review(context: GuardContext) -> str | None:
    """Interim steps exist only in a summary review (s.53B)."""
    review = _current_review(context)
    if review is None or review.kind != "summary" or review.status != "open":
        return "Interim steps apply only to an open summary review (s.53A)"
    return None


def corrections_fit_the_review(context: GuardContext) -> str | None:
    """A standard review has an application date; a summary review a time of receipt."""
    review = _current_review(context)
    if review is None or review.status != "open":
        return "There is no open review to correct"
    if context.params.get("application_date") and review.kind != "standard":
        return "A summary review has a time of receipt, not an application date"
    if context.params.get("received_at") and review.kind != "summary":
        return "A standard review has an application date, not a time of receipt"
    return None


def needs_a_determined_review(context: GuardContext) -> str | None:
    """Notification and appeals follow a determination."""
    review = _current_review(context)
    if review is None or review.status != "determined":
        return "There is no determined review to record this against"
    stage = context.params.get("appeal_stage")
    if context.event == "record_appeal" and stage:
        if stage != "lodged" and review.appeal_lodged_on is None:
            return "Record that the appeal was lodged before its outcome"
        if stage == "lodged" and review.appeal_lodged_on is not None:
            return "An appeal is already recorded as lodged"
    return None


# Guards that depend on the premises' records, not on what the user types: an event they
# refuse is not offered at all.
AVAILABILITY_GUARDS: dict[str, Guard] = {
    "record_interim_steps": interim_steps_need_a_summary_review,
    "record_decision_notified": needs_a_determined_review,
    "record_appeal": needs_a_determined_review,
}


def events_offered(session: Any, premises: Any, actor: Any) -> list[EventRule]:
    """The events to offer a user on a premises now: allowed by state and role, and not
    refused by a guard that looks only at the premises' records."""
    offered = []
    for rule in events_available(premises.state, actor.role):
        guard = AVAILABILITY_GUARDS.get(rule.name)
        context = GuardContext(
            premises=premises, actor=actor, event=rule.name, params={}, session=session
        )
        if guard is None or guard(context) is None:
            offered.append(rule)
    return offered


GUARDS["record_interim_steps"].append(interim_steps_need_a_summary_review)
GUARDS["correct_review_dates"].append(corrections_fit_the_review)
GUARDS["record_decision_notified"].append(needs_a_determined_review)
GUARDS["record_appeal"].append(needs_a_determined_review)


def first_refusal(context: GuardContext) -> str | None:
    """Run the event's guards; return the first refusal reason, or None."""
    for guard in GUARDS.get(context.event, []):
        reason = guard(context)
        if reason:
            return reason
    return None


def check_allowed(state: str, event: str) -> None:
    """Refuse an event the machine does not allow from this state, saying why."""
    if event not in EVENT_RULES:
        raise Refused(f"Unknown event {event!r}")
    if event not in events_from(state):
        allowed = ", ".join(events_from(state)) or "none"
        raise Refused(
            f"{EVENT_RULES[event].label} is not possible while the premises is "
            f"{STATE_LABELS[state].lower()} (possible now: {allowed})"
        )
