"""Did it work? Before/after figures per intervention, the force report, its CSV, and
the pages, on data built with known counts.

Everything goes through the real services: premises through the register service,
warnings and reviews through `move()` with the clock moved to the intervention's
instant, incidents through the generic import (linked, confirmed, by licence number) at
exact instants. Windows are London days, so instants are written in London time.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
import time_machine
from flask.testing import FlaskClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from licensing.assessment import services
from licensing.assessment.services import (
    IncidentTimes,
    Intervention,
    Windows,
    assess,
    force_report,
    premises_assessment,
)
from licensing.auth.models import User
from licensing.incidents.importer import import_incidents
from licensing.premises.models import LicensingAuthority, Premises
from licensing.timeutil import LONDON
from tests.conftest import move, sign_in


def london(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    """A London wall-clock instant, as UTC."""
    return datetime(year, month, day, hour, minute, second, tzinfo=LONDON).astimezone(UTC)


def place_incidents(session: Session, premises: Premises, moments: list[datetime]) -> None:
    """Confirmed incidents at the premises at exactly these instants (generic import,
    linked by licence number)."""
    if not moments:
        return
    lines = ["source_ref,occurred_at,category,description,licence_number,authority"]
    for moment in moments:
        lines.append(
            f"T-{uuid.uuid4().hex[:12]},{moment.isoformat()},Public order,Disorder,"
            f"{premises.licence_number},{premises.authority.code}"
        )
    result = import_incidents(
        session, ("\n".join(lines) + "\n").encode(), "incidents.csv", "generic", None
    )
    assert result.linked == len(moments), result.rejections


def warn_at(session: Session, premises: Premises, supervisor: User, moment: datetime) -> None:
    """Warn the premises at `moment` (a supervisor's override stands for the evidence)."""
    with time_machine.travel(moment, tick=False):
        move(session, premises, supervisor, "warn", override_reason="Assessment test")


def register_at(
    make_premises: Any, authority: LicensingAuthority, officer: User, **kw: Any
) -> Premises:
    """Register a premises on 1 Dec 2024, before every window in these tests."""
    with time_machine.travel(london(2024, 12, 1, 9), tick=False):
        premises: Premises = make_premises(authority, officer, evidence=False, **kw)
    return premises


@pytest.fixture
def people(make_authority, make_user) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Two authorities and one user of each role."""
    return {
        "liv": make_authority("LIV", "Liverpool City Council"),
        "sef": make_authority("SEF", "Sefton Council"),
        "officer": make_user("officer"),
        "supervisor": make_user("supervisor"),
        "admin": make_user("admin"),
        "council": make_user("council", "LIV"),
    }


# ---- windows and one premises ------------------------------------------------------------


def test_windows_are_london_days_and_the_intervention_day_counts_in_neither(
    session: Session, people: dict[str, Any], make_premises: Any
) -> None:
    """A warning on 10 June 2025 with 90 days: before is 12 Mar – 9 Jun, after is
    11 Jun – 8 Sep; incidents on the edges land exactly as documented."""
    crown = register_at(make_premises, people["liv"], people["officer"], name="The Crown")
    place_incidents(
        session,
        crown,
        [
            london(2025, 3, 11, 23, 59, 59),  # the day before the window: out
            london(2025, 3, 12, 0, 0),  # first instant of the before window: in
            london(2025, 6, 9, 23, 59),  # last minute before the day: before
            london(2025, 6, 10, 0, 0),  # the intervention day: neither
            london(2025, 6, 10, 23, 59),  # the intervention day: neither
            london(2025, 6, 11, 0, 0),  # first instant after: after
            london(2025, 9, 8, 23, 59, 59),  # last second of the after window: after
            london(2025, 9, 9, 0, 0),  # the day after the window: out
        ],
    )
    warn_at(session, crown, people["supervisor"], london(2025, 6, 10, 14, 0))

    [a] = premises_assessment(session, crown, 90, now=london(2025, 12, 1, 12))

    assert a.intervention.kind == services.WARNING
    assert a.intervention.on == date(2025, 6, 10)
    w = a.windows
    assert (w.before_first, w.before_last) == (date(2025, 3, 12), date(2025, 6, 9))
    assert (w.after_first, w.after_last) == (date(2025, 6, 11), date(2025, 9, 8))
    assert (a.before, a.after) == (2, 2)
    assert a.complete
    assert a.change == 0
    assert a.change_text == "No change"


def test_the_intervention_day_is_the_london_date_in_summer_time(
    session: Session, people: dict[str, Any], make_premises: Any
) -> None:
    """A warning at 23:30 UTC on 10 June is 00:30 BST on 11 June: its day is the 11th, so
    an incident at 23:10 UTC on the 10th (00:10 on the 11th in London) is on the day
    itself and counts in neither window, and one at 22:50 UTC is before."""
    crown = register_at(make_premises, people["liv"], people["officer"])
    place_incidents(
        session,
        crown,
        [datetime(2025, 6, 10, 23, 10, tzinfo=UTC), datetime(2025, 6, 10, 22, 50, tzinfo=UTC)],
    )
    warn_at(session, crown, people["supervisor"], datetime(2025, 6, 10, 23, 30, tzinfo=UTC))

    [a] = premises_assessment(session, crown, 30, now=london(2025, 12, 1))

    assert a.intervention.on == date(2025, 6, 11)
    assert (a.before, a.after) == (1, 0)


@pytest.mark.parametrize(
    ("day", "inside", "outside", "why"),
    [
        # The clocks go forward on Sunday 30 March 2025. Day 5 April, 7 days: before is
        # 29 Mar – 4 Apr, starting at 00:00 GMT on the 29th.
        (
            date(2025, 4, 5),
            datetime(2025, 3, 29, 0, 30, tzinfo=UTC),
            datetime(2025, 3, 28, 23, 30, tzinfo=UTC),
            "before window starting in GMT, across the spring change",
        ),
        # The clocks go back on Sunday 26 October 2025. Day 29 October, 7 days: before
        # is 22 – 28 Oct, starting at 00:00 BST on the 22nd, which is 23:00 UTC on the
        # 21st: an incident at 23:30 UTC on the 21st is inside (a UTC day would miss it).
        (
            date(2025, 10, 29),
            datetime(2025, 10, 21, 23, 30, tzinfo=UTC),
            datetime(2025, 10, 21, 22, 30, tzinfo=UTC),
            "before window starting in BST, across the autumn change",
        ),
    ],
)
def test_windows_across_the_clock_changes_start_at_london_midnight(
    day: date, inside: datetime, outside: datetime, why: str
) -> None:
    """The before window starts at London midnight, whichever offset is in force."""
    iv = Intervention(1, services.WARNING, day)
    times = IncidentTimes({1: sorted([inside, outside])})
    [a] = assess([iv], 7, datetime(2026, 1, 1, tzinfo=UTC), times)
    assert a.before == 1, why


def test_an_after_window_across_the_autumn_change_ends_at_london_midnight() -> None:
    """Day 20 October 2025, 7 days: after is 21 – 27 Oct; the clocks went back on the
    26th, so it ends at 00:00 GMT on the 28th (00:00 UTC). 23:30 UTC on the 27th is in;
    00:15 UTC on the 28th is out; and the window, 7 London days, is 169 hours long."""
    iv = Intervention(1, services.WARNING, date(2025, 10, 20))
    inside = datetime(2025, 10, 27, 23, 30, tzinfo=UTC)
    outside = datetime(2025, 10, 28, 0, 15, tzinfo=UTC)
    [a] = assess([iv], 7, datetime(2026, 1, 1, tzinfo=UTC), IncidentTimes({1: [inside, outside]}))
    assert a.after == 1
    w = a.windows
    assert w.after_end - w.after_start == timedelta(hours=7 * 24 + 1)


def test_no_incidents_gives_counts_and_no_percentage(
    session: Session, people: dict[str, Any], make_premises: Any
) -> None:
    """A premises with no incidents at all, and one with none before but some after:
    counts and words, never a percentage, never a division by zero."""
    quiet = register_at(make_premises, people["liv"], people["officer"], name="Quiet Inn")
    later = register_at(make_premises, people["liv"], people["officer"], name="Later Bar")
    place_incidents(session, later, [london(2025, 6, 20, 22), london(2025, 7, 1, 23)])
    warn_at(session, quiet, people["supervisor"], london(2025, 6, 10, 12))
    warn_at(session, later, people["supervisor"], london(2025, 6, 10, 12))
    now = london(2025, 12, 1)

    [q] = premises_assessment(session, quiet, 90, now=now)
    [lt] = premises_assessment(session, later, 90, now=now)

    assert (q.before, q.after, q.change, q.percent_change) == (0, 0, 0, None)
    assert q.change_text == "No incidents before"
    assert (lt.before, lt.after, lt.percent_change) == (0, 2, None)
    assert lt.change_text == "No incidents before; 2 after"
    assert "%" not in lt.change_text


def test_a_percentage_only_for_a_complete_window_with_incidents_before() -> None:
    """4 before and 1 after is -3 (-75%)."""
    day = date(2025, 6, 10)
    before = [london(2025, 6, d, 21) for d in (1, 2, 3, 4)]
    after = [london(2025, 6, 20, 21)]
    [a] = assess(
        [Intervention(7, services.WARNING, day)],
        90,
        london(2025, 12, 1),
        IncidentTimes({7: before + after}),
    )
    assert a.percent_change == pytest.approx(-75.0)
    assert a.change_text == "-3 (-75%)"


def test_an_incomplete_after_window_shows_figures_so_far_and_no_change(
    session: Session, people: dict[str, Any], make_premises: Any
) -> None:
    """Thirty days into a 90-day after window: the count so far, labelled, no change."""
    crown = register_at(make_premises, people["liv"], people["officer"])
    place_incidents(
        session,
        crown,
        [london(2025, 6, 1, 22), london(2025, 6, 15, 22), london(2025, 7, 9, 22)],
    )
    warn_at(session, crown, people["supervisor"], london(2025, 6, 10, 12))

    [a] = premises_assessment(session, crown, 90, now=london(2025, 7, 11, 9))

    assert not a.complete
    assert (a.before, a.after) == (1, 2)  # 15 June and 9 July, so far
    assert a.days_elapsed == 30
    assert a.change is None and a.percent_change is None
    assert a.change_text == "Incomplete: 2 so far, 30 of 90 days"


def test_an_agreed_action_plan_is_an_intervention(
    session: Session, people: dict[str, Any], make_premises: Any
) -> None:
    """A warning on 10 June and a plan agreed on 20 June: each has its own windows; the
    plan, agreed while warned, is de-escalated when the premises is stood down."""
    from licensing.actionplans.services import ItemInput, agree_plan

    crown = register_at(make_premises, people["liv"], people["officer"])
    place_incidents(
        session, crown, [london(2025, 6, 1, 22), london(2025, 6, 15, 22), london(2025, 7, 1, 22)]
    )
    warn_at(session, crown, people["supervisor"], london(2025, 6, 10, 12))
    with time_machine.travel(london(2025, 6, 20, 10), tick=False):
        agree_plan(
            session,
            people["officer"],
            crown,
            agreed_on=date(2025, 6, 20),
            review_on=date(2025, 7, 18),
            agreed_with="The DPS",
            items=[ItemInput("Two door staff from 22:00", "Licence holder", date(2025, 7, 1))],
            reason="Disorder at closing time",
        )
    with time_machine.travel(london(2025, 9, 1, 10), tick=False):
        move(session, crown, people["supervisor"], "stand_down")
    now = london(2026, 6, 1)

    plan, warning = premises_assessment(session, crown, 90, now=now)

    assert (plan.intervention.kind, plan.intervention.on) == (
        services.ACTION_PLAN,
        date(2025, 6, 20),
    )
    assert plan.intervention.label == "Action plan agreed"
    assert (plan.before, plan.after) == (2, 1)
    assert (warning.before, warning.after) == (1, 2)
    report = force_report(
        session, people["admin"], date(2025, 6, 1), date(2025, 6, 30), 90, now=now
    )
    assert report.premises_with_plans == 1
    [plan_row] = [r for r in report.rows if r.assessment.intervention.kind == services.ACTION_PLAN]
    assert plan_row.deescalated is True


@settings(max_examples=60, deadline=None)
@given(
    offsets=st.lists(st.integers(min_value=-200 * 24 * 60, max_value=200 * 24 * 60), max_size=40),
    days=st.integers(min_value=services.MIN_WINDOW_DAYS, max_value=120),
    on=st.dates(min_value=date(2024, 1, 1), max_value=date(2026, 12, 31)),
)
def test_before_plus_day_plus_after_is_every_incident_in_the_union(
    offsets: list[int], days: int, on: date
) -> None:
    """Whatever the incidents, before + the intervention day + after equals the incidents
    between the start of the before window and the end of the after window, and a
    complete assessment never divides by zero."""
    noon = services.day_start(on) + timedelta(hours=12)
    moments = sorted(noon + timedelta(minutes=m) for m in offsets)
    w = Windows(on, days)
    [a] = assess(
        [Intervention(1, services.WARNING, on)],
        days,
        datetime(2030, 1, 1, tzinfo=UTC),
        IncidentTimes({1: moments}),
    )
    on_day = sum(1 for m in moments if w.before_end <= m < w.after_start)
    union = sum(1 for m in moments if w.before_start <= m < w.after_end)
    assert a.before + on_day + a.after == union
    assert (a.before, a.after) == (
        sum(1 for m in moments if w.before_start <= m < w.before_end),
        sum(1 for m in moments if w.after_start <= m < w.after_end),
    )
    assert (a.percent_change is None) == (a.before == 0)
    assert w.before_last - w.before_first == w.after_last - w.after_first == timedelta(days - 1)


def test_window_days_from_the_query_string() -> None:
    """Blank is the default; a number in range is used; anything else is the default with
    a message saying why."""
    assert services.parse_window_days("", 90) == (90, None)
    assert services.parse_window_days(" 30 ", 90) == (30, None)
    for bad in ("6", "366", "abc", "-5", "1e3", "30.5"):
        days, problem = services.parse_window_days(bad, 90)
        assert days == 90 and problem and "7 to 365" in problem, bad


# ---- the force report ------------------------------------------------------------------


def review_outcome(
    session: Session,
    premises: Premises,
    supervisor: User,
    received: datetime,
    outcome: str,
    decided: date,
    recorded: datetime,
) -> None:
    """A summary review received at `received`, determined on `decided` (recorded later)."""
    with time_machine.travel(received, tick=False):
        move(
            session,
            premises,
            supervisor,
            "apply_for_summary_review",
            received_at=received.isoformat(),
            certificate_reference=f"CERT-{premises.id}",
        )
    with time_machine.travel(recorded, tick=False):
        move(
            session,
            premises,
            supervisor,
            "record_determination",
            outcome=outcome,
            decision_date=decided.isoformat(),
        )


D = date(2025, 6, 10)  # the warnings' day in the report tests


def around(before: int, after: int) -> list[datetime]:
    """`before` incidents in the 90 days before D and `after` in the 90 days after."""
    return [london(2025, 5, 1, 21) + timedelta(days=i) for i in range(before)] + [
        london(2025, 7, 1, 21) + timedelta(days=i) for i in range(after)
    ]


@pytest.fixture
def force(session: Session, people: dict[str, Any], make_premises: Any) -> dict[str, Any]:
    """LIV: three warnings on D (before/after 4/1, 2/2, 0/0; the last stood down 100
    days later). SEF: a warning on D (6/3), and a review determined 'no action' on
    1 Aug 2025 (recorded 5 Aug). Comparison premises (monitored throughout): C1 (2/1),
    C2 (4/4), C3 (6/6, but warned on 1 Sep, inside D's after window: excluded) and
    C4 (5/0)."""
    liv, sef, officer, sup = people["liv"], people["sef"], people["officer"], people["supervisor"]
    made: dict[str, Premises] = {}
    for key, authority, (b, a) in (
        ("w1", liv, (4, 1)),
        ("w2", liv, (2, 2)),
        ("w3", liv, (0, 0)),
        ("w4", sef, (6, 3)),
        ("c1", liv, (2, 1)),
        ("c2", sef, (4, 4)),
        ("c3", liv, (6, 6)),
        ("c4", liv, (5, 0)),
    ):
        made[key] = register_at(make_premises, authority, officer, name=f"Premises {key}")
        place_incidents(session, made[key], around(b, a))
    for key in ("w1", "w2", "w3", "w4"):
        warn_at(session, made[key], sup, london(2025, 6, 10, 15))
    with time_machine.travel(london(2025, 9, 18, 10), tick=False):
        move(session, made["w3"], sup, "stand_down")
    warn_at(session, made["c3"], sup, london(2025, 9, 1, 10))  # inside D's after window
    made["r1"] = register_at(make_premises, sef, officer, name="Review Rooms")
    place_incidents(session, made["r1"], [london(2025, 7, 1, 22), london(2025, 9, 1, 22)])
    review_outcome(
        session,
        made["r1"],
        sup,
        london(2025, 7, 20, 10),
        "no_action",
        date(2025, 8, 1),
        london(2025, 8, 5, 10),
    )
    return made


def test_force_report_medians_by_authority_and_type_and_deescalation(
    session: Session, people: dict[str, Any], force: dict[str, Premises]
) -> None:
    """Known medians: LIV warnings before 4, 2, 0 → 2; after 1, 2, 0 → 1. All warnings
    before 4, 2, 0, 6 → 3; after 1, 2, 0, 3 → 1.5. One LIV warning stood down within
    183 days; the others are not back. The review outcome 'no action' is its own type,
    decided on 1 Aug (its decision date, not the day it was recorded)."""
    now = london(2026, 6, 1)
    report = force_report(
        session, people["supervisor"], date(2025, 6, 1), date(2025, 8, 31), 90, now=now
    )

    assert report.premises_warned == 4
    assert report.premises_reviewed == 1
    warnings = next(g for g in report.by_type if g.key == "warning")
    assert (warnings.interventions, warnings.premises, warnings.complete) == (4, 4, 4)
    assert (warnings.median_before, warnings.median_after) == (3.0, 1.5)
    assert (warnings.deescalated, warnings.deescalation_known) == (1, 4)
    assert warnings.share_deescalated == pytest.approx(25.0)
    no_action = next(g for g in report.by_type if g.key == "review_outcome:no_action")
    assert no_action.label == "Review outcome: No action"
    [review_row] = [r for r in report.rows if r.assessment.intervention.kind == "review_outcome"]
    assert review_row.assessment.intervention.on == date(2025, 8, 1)
    # Incidents on 1 Jul (before) and 1 Sep (after) of a decision on 1 Aug.
    assert (review_row.assessment.before, review_row.assessment.after) == (1, 1)
    assert review_row.deescalated is True  # "no action" returns it to monitoring
    assert (no_action.deescalated, no_action.deescalation_known) == (1, 1)

    # c3's warning on 1 Sep is after the period.
    liv = next(g for g in report.by_authority if g.key == "LIV")
    assert (liv.interventions, liv.median_before, liv.median_after) == (3, 2.0, 1.0)
    sef = next(g for g in report.by_authority if g.key == "SEF")
    assert (sef.interventions, sef.premises) == (2, 2)
    assert (sef.median_before, sef.median_after) == (3.5, 2.0)  # w4 6/3, the review 1/1


def test_force_report_counts_only_the_period(
    session: Session, people: dict[str, Any], force: dict[str, Premises]
) -> None:
    """A period that ends before 1 Aug leaves out the review outcome (and c3's warning)."""
    report = force_report(
        session,
        people["admin"],
        date(2025, 6, 10),
        date(2025, 7, 31),
        90,
        now=london(2026, 6, 1),
    )
    assert {r.assessment.intervention.premises_id for r in report.rows} == {
        force[k].id for k in ("w1", "w2", "w3", "w4")
    }
    assert report.premises_reviewed == 0


def test_an_incomplete_after_window_is_left_out_of_the_medians(
    session: Session, people: dict[str, Any], force: dict[str, Premises]
) -> None:
    """On 1 Aug 2025 D's after windows are half way: the warnings are listed with
    figures so far, none is in a median, and de-escalation is not yet known for those
    still warned."""
    report = force_report(
        session,
        people["supervisor"],
        date(2025, 6, 1),
        date(2025, 6, 30),
        90,
        now=london(2025, 8, 1, 12),
    )
    warnings = next(g for g in report.by_type if g.key == "warning")
    assert warnings.interventions == 4 and warnings.complete == 0
    assert warnings.median_before is None and warnings.median_after is None
    assert report.incomplete == 4
    assert all(r.deescalated is None for r in report.rows)


def test_the_comparison_group_is_chosen_by_the_rule(
    session: Session, people: dict[str, Any], force: dict[str, Premises]
) -> None:
    """For each warning on D the nearest monitored premises with no intervention: w1
    (4 before) → c2 (4); w2 (2) → c1 (2); w4 (6) → c4 (5, within a fifth of 6 rounded
    down: 1), never c3 (6, but warned inside the window) nor the review premises (its
    state changed); w3 (0 before) needs an exact 0 and no candidate has one."""
    report = force_report(
        session,
        people["supervisor"],
        date(2025, 6, 1),
        date(2025, 6, 30),
        90,
        now=london(2026, 6, 1),
    )
    overall = report.comparisons[0]
    by_premises = {m.assessment.intervention.premises_id: m for m in overall.matches}
    assert by_premises[force["w1"].id].control_premises_id == force["c2"].id
    assert by_premises[force["w2"].id].control_premises_id == force["c1"].id
    assert by_premises[force["w4"].id].control_premises_id == force["c4"].id
    assert (
        by_premises[force["w4"].id].control_before,
        by_premises[force["w4"].id].control_after,
    ) == (5, 0)
    assert force["w3"].id not in by_premises
    assert force["c3"].id not in {m.control_premises_id for m in overall.matches}
    # Three matches: fewer than five, so the report says the numbers do not allow it.
    assert (overall.eligible, len(overall.matches), overall.available) == (4, 3, False)


def test_the_comparison_group_with_enough_matches(
    session: Session, people: dict[str, Any], make_premises: Any
) -> None:
    """Five warned premises with 3 incidents before and 1 after, and monitored premises
    with 3 before and 3 after: the comparison is shown, medians 3 → 1 with the
    intervention and 3 → 3 without, on the same dates."""
    liv, officer, sup = people["liv"], people["officer"], people["supervisor"]
    for i in range(5):
        p = register_at(make_premises, liv, officer, name=f"Warned {i}")
        place_incidents(session, p, around(3, 1))
        warn_at(session, p, sup, london(2025, 6, 10, 15))
    for i in range(2):
        p = register_at(make_premises, liv, officer, name=f"Control {i}")
        place_incidents(session, p, around(3, 3))
    report = force_report(
        session, sup, date(2025, 6, 1), date(2025, 6, 30), 90, now=london(2026, 6, 1)
    )
    overall = report.comparisons[0]
    assert overall.available and len(overall.matches) == 5
    assert (overall.median_before, overall.median_after) == (3.0, 1.0)
    assert (overall.control_median_before, overall.control_median_after) == (3.0, 3.0)


def test_comparison_excludes_plans_and_state_changes_in_the_window() -> None:
    """Of premises with the same count before, the lowest id wins, unless it had an
    action plan agreed inside the windows or left `monitored` in them; one registered
    after the before window began counts as monitored before it (nothing could be done
    to it) and qualifies."""
    day = date(2025, 6, 10)
    iv = Intervention(1, services.WARNING, day)
    three = [london(2025, 5, d, 21) for d in (1, 2, 3)]
    times = IncidentTimes({pid: list(three) for pid in (1, 2, 3, 4, 5)})
    registered = (1, london(2024, 12, 1), "monitored")
    trails = {
        2: services.StateTrail([registered]),
        3: services.StateTrail([registered]),
        4: services.StateTrail([registered, (2, london(2025, 8, 1), "warned")]),
        5: services.StateTrail([(1, london(2025, 4, 1), "monitored")]),  # registered late
    }
    [a] = assess([iv], 90, london(2026, 1, 1), times)

    plain = services.match_comparisons([a], trails, {}, times)
    with_plan = services.match_comparisons([a], trails, {2: [date(2025, 7, 1)]}, times)
    warned = services.match_comparisons([a], {4: trails[4]}, {}, times)
    late = services.match_comparisons([a], {5: trails[5]}, {}, times)

    assert plain[iv].control_premises_id == 2
    assert with_plan[iv].control_premises_id == 3
    assert warned == {}
    assert late[iv].control_premises_id == 5


def _csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_csv_contents_and_formula_safety(
    session: Session, people: dict[str, Any], make_premises: Any
) -> None:
    """One row per intervention with the windows and counts; a premises name that a
    spreadsheet would run as a formula is neutralised; the summary carries the groups,
    the comparison's verdict and the caveat."""
    p = register_at(make_premises, people["liv"], people["officer"], name="=HYPERLINK(1)")
    place_incidents(session, p, around(4, 1))
    warn_at(session, p, people["supervisor"], london(2025, 6, 10, 15))
    report = force_report(
        session,
        people["supervisor"],
        date(2025, 6, 1),
        date(2025, 6, 30),
        90,
        now=london(2026, 6, 1),
    )

    [row] = _csv(services.interventions_csv(report))
    assert row["premises"] == "'=HYPERLINK(1)"
    assert row["intervention"] == "Warning"
    assert row["intervention_date"] == "2025-06-10"
    assert (row["before_from"], row["before_to"]) == ("2025-03-12", "2025-06-09")
    assert (row["after_from"], row["after_to"]) == ("2025-06-11", "2025-09-08")
    assert (row["before"], row["after"], row["change"]) == ("4", "1", "-3")
    assert row["percent_change"] == "-75.0"
    assert row["after_window"] == "complete"
    assert row["de_escalated_within_183_days"] == "no"

    summary = _csv(services.summary_csv(report))
    groups = {(r["grouping"], r["group"]): r for r in summary}
    assert groups[("all", "All interventions")]["median_before"] == "4"
    assert groups[("authority", "Liverpool City Council")]["median_after"] == "1"
    assert "too few matches" in groups[("comparison", "All interventions")]["note"]
    assert "regression to the mean" in groups[("caveat", "")]["note"]


# ---- pages -------------------------------------------------------------------------------


def _cells(html: str, key: str) -> dict[str, str]:
    """The premises section's table cells of one intervention, by series."""
    cells = re.findall(
        rf'<td class="govuk-table__cell" data-key="{re.escape(key)}" data-series="(\w+)">(.*?)</td>',
        html,
        re.S,
    )
    return {series: re.sub(r"<[^>]+>", " ", body) for series, body in cells}


def test_premises_page_shows_the_section_with_chart_and_table(
    session: Session, client: FlaskClient, people: dict[str, Any], make_premises: Any
) -> None:
    """Police see "Did it work?": each bar's count matches its table cell; a recent
    warning's after window is marked incomplete; a bad window is refused with a message
    and the default shown."""
    crown = register_at(make_premises, people["liv"], people["officer"], name="The Crown")
    place_incidents(session, crown, around(4, 1))
    warn_at(session, crown, people["supervisor"], london(2025, 6, 10, 15))
    with time_machine.travel(london(2025, 9, 30, 10), tick=False):
        move(session, crown, people["supervisor"], "stand_down")
    recent = datetime.now(UTC) - timedelta(days=10)
    warn_at(session, crown, people["supervisor"], recent)
    sign_in(client, people["officer"])

    html = client.get(f"/premises/{crown.id}").get_data(as_text=True)

    assert 'id="assessment"' in html and "Did it work?" in html
    bars = re.findall(r'data-key="([^"]+)" data-series="(before|after)" data-count="(\d+)"', html)
    assert len(bars) == 4
    for key, series, count in bars:
        assert _cells(html, key)[series].split()[0] == count
    old_key = next(k for k, _s, _c in bars if "2025-06-10" in k)
    assert _cells(html, old_key)["change"].strip() == "-3 (-75%)"
    recent_key = next(k for k, _s, _c in bars if "2025-06-10" not in k)
    assert "Incomplete" in _cells(html, recent_key)["change"]
    assert "so far" in _cells(html, recent_key)["after"]
    assert "regression to the mean" in html

    bad = client.get(f"/premises/{crown.id}?window_days=1000").get_data(as_text=True)
    assert "from 7 to 365; showing 90 days instead" in bad
    short = client.get(f"/premises/{crown.id}?window_days=30").get_data(as_text=True)
    assert "in the 30 days before" in short


def test_premises_page_without_interventions_and_for_council_users(
    session: Session, client: FlaskClient, people: dict[str, Any], make_premises: Any
) -> None:
    """No interventions: said in words. A council user (no VIEW_ASSESSMENT) sees a
    premises of theirs under review without the section."""
    quiet = register_at(make_premises, people["liv"], people["officer"], name="Quiet Inn")
    sign_in(client, people["officer"])
    html = client.get(f"/premises/{quiet.id}").get_data(as_text=True)
    assert 'id="assessment-none"' in html

    reviewed = register_at(make_premises, people["liv"], people["officer"], name="Under Review")
    with time_machine.travel(london(2025, 7, 20, 10), tick=False):
        move(
            session,
            reviewed,
            people["supervisor"],
            "apply_for_summary_review",
            received_at=london(2025, 7, 20, 10).isoformat(),
            certificate_reference="CERT-1",
        )
    council = client.application.test_client()
    sign_in(council, people["council"])
    page = council.get(f"/premises/{reviewed.id}")
    assert page.status_code == 200
    assert "Did it work?" not in page.get_data(as_text=True)


def test_report_page_and_exports(
    session: Session, client: FlaskClient, people: dict[str, Any], force: dict[str, Premises]
) -> None:
    """The report for a period shows the figures by type and authority, the caveat beside
    them, the comparison's verdict, and links to CSVs with the same period."""
    sign_in(client, people["supervisor"])
    query = "period_from=1&period_from=6&period_from=2025&period_to=31&period_to=8&period_to=2025&window_days=90"
    page = client.get(f"/assessment?{query}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    row = re.search(r'<tr class="govuk-table__row" data-group="warning">(.*?)</tr>', html, re.S)
    assert row
    figures = dict(re.findall(r'data-figure="(\w+)">([^<]*)<', row.group(1)))
    assert figures["interventions"] == "4"
    assert figures["median_before"] == "3"
    assert figures["median_after"] == "1.5"
    assert figures["deescalated"] == "1 of 4 (25%)"
    assert "regression to the mean" in html
    assert "The numbers do not allow a comparison" in html
    assert f"/assessment/interventions.csv?{query}".replace("&", "&amp;") in html

    export = client.get(f"/assessment/interventions.csv?{query}")
    assert export.status_code == 200
    assert "attachment" in export.headers["Content-Disposition"]
    rows = _csv(export.get_data(as_text=True))
    assert len(rows) == 5  # four warnings on D and the review outcome
    summary = _csv(client.get(f"/assessment/summary.csv?{query}").get_data(as_text=True))
    assert any(r["group"] == "Review outcome: No action" for r in summary)


def test_report_refuses_bad_input_with_clear_errors(
    client: FlaskClient, people: dict[str, Any]
) -> None:
    """A period that ends before it starts, a window out of range, and a date that is no
    date: each a 422 with the field's message; the CSV says so too."""
    sign_in(client, people["supervisor"])
    backwards = (
        "period_from=1&period_from=8&period_from=2025&period_to=1&period_to=6&period_to=2025"
    )
    page = client.get(f"/assessment?{backwards}")
    assert page.status_code == 422
    assert "The start of the period must be on or before its end" in page.get_data(as_text=True)
    window = client.get("/assessment?window_days=400")
    assert window.status_code == 422
    assert "from 7 to 365" in window.get_data(as_text=True)
    nonsense = client.get("/assessment?period_from=40&period_from=13&period_from=2025")
    assert nonsense.status_code == 422
    assert client.get(f"/assessment/summary.csv?{backwards}").status_code == 422
    year_one = client.get("/assessment?period_to=1&period_to=1&period_to=0001")
    assert year_one.status_code == 422
    assert "Enter a date from 1 January 1900" in year_one.get_data(as_text=True)


def test_report_default_period_is_the_last_year(
    client: FlaskClient, people: dict[str, Any]
) -> None:
    """With no choices, the report covers the year to today and says so in the boxes."""
    sign_in(client, people["admin"])
    html = client.get("/assessment").get_data(as_text=True)
    assert 'id="no-interventions"' in html
    assert 'name="window_days" type="text" value="90"' in html or 'value="90"' in html


def test_any_query_string_is_answered_never_a_500(
    client: FlaskClient, people: dict[str, Any]
) -> None:
    """Whatever is typed in the boxes (or the query string), the report and its CSV answer
    with figures or the form's errors, never a failure."""
    sign_in(client, people["officer"])
    texts = st.one_of(st.text(max_size=12), st.integers(-5, 100000).map(str))

    @settings(max_examples=40, deadline=None)
    @given(values=st.lists(texts, min_size=7, max_size=7))
    def answer(values: list[str]) -> None:
        pairs = [("period_from", v) for v in values[:3]] + [("period_to", v) for v in values[3:6]]
        pairs.append(("window_days", values[6]))
        response = client.get("/assessment?" + urlencode(pairs))
        assert response.status_code in (200, 422), response.get_data(as_text=True)[:300]
        assert client.get("/assessment/summary.csv?" + urlencode(pairs)).status_code in (200, 422)

    answer()


@pytest.mark.parametrize(
    ("role", "status"), [("officer", 200), ("supervisor", 200), ("admin", 200), ("council", 404)]
)
def test_who_may_see_the_report(
    client: FlaskClient, people: dict[str, Any], role: str, status: int
) -> None:
    """VIEW_ASSESSMENT: police and admin; a council user gets 404 for the page and CSVs."""
    sign_in(client, people[role])
    assert client.get("/assessment").status_code == status
    assert client.get("/assessment/interventions.csv").status_code == status
    assert client.get("/assessment/summary.csv").status_code == status


def test_signed_out_is_sent_to_sign_in(client: FlaskClient) -> None:
    """No session: the report redirects to the sign-in page."""
    response = client.get("/assessment")
    assert response.status_code == 302 and "/sign-in" in response.headers["Location"]


def _reference_matches(
    assessments: list[services.Assessment],
    trails: dict[int, services.StateTrail],
    plan_days: dict[int, list[date]],
    times: IncidentTimes,
) -> dict[Intervention, tuple[int, int, int]]:
    """The comparison rule done the plain way (every premises checked for every
    intervention), to hold the indexed match_comparisons to."""
    out: dict[Intervention, tuple[int, int, int]] = {}
    for a in assessments:
        if not a.complete:
            continue
        w = a.windows
        best: tuple[int, int, int, int] | None = None
        for pid, trail in trails.items():
            if pid == a.intervention.premises_id:
                continue
            if not trail.stayed_monitored(w.before_start, w.after_end):
                continue
            if any(w.before_first <= d <= w.after_last for d in plan_days.get(pid, ())):
                continue
            before = times.count(pid, w.before_start, w.before_end)
            after = times.count(pid, w.after_start, w.after_end)
            distance = abs(before - a.before)
            if distance <= a.before // 5 and (best is None or (distance, pid) < best[:2]):
                best = (distance, pid, before, after)
        if best is not None:
            out[a.intervention] = best[1:]
    return out


@settings(max_examples=60, deadline=None)
@given(
    st.lists(  # per premises: states it moved to (month offsets), incidents (day offsets)
        st.tuples(
            st.lists(
                st.tuples(st.integers(0, 18), st.sampled_from(["monitored", "warned"])),
                max_size=3,
            ),
            st.lists(st.integers(0, 540), max_size=12),
            st.lists(st.integers(0, 540), max_size=1),
        ),
        min_size=1,
        max_size=12,
    ),
    st.lists(st.tuples(st.integers(1, 12), st.integers(100, 400)), min_size=1, max_size=6),
)
def test_comparison_matches_the_plain_rule(
    premises: list[tuple[list[tuple[int, str]], list[int], list[int]]],
    interventions: list[tuple[int, int]],
) -> None:
    """The comparison group, found by setting the always-quiet premises apart and
    indexing by count, is the one the plain rule (check every premises) finds."""
    start = london(2025, 1, 1, 12)
    trails: dict[int, services.StateTrail] = {}
    moments: dict[int, list[datetime]] = {}
    plan_days: dict[int, list[date]] = {}
    for pid, (moves, incidents, plans) in enumerate(premises, start=1):
        events = [(1, start - timedelta(days=30), "monitored")] + [
            (seq, start + timedelta(days=30 * month), state)
            for seq, (month, state) in enumerate(sorted(moves), start=2)
        ]
        trails[pid] = services.StateTrail(events)
        moments[pid] = sorted(start + timedelta(days=d, hours=3) for d in incidents)
        if plans:
            plan_days[pid] = [(start + timedelta(days=plans[0])).date()]
    times = IncidentTimes(moments)
    ivs = [
        Intervention(
            pid if pid <= len(premises) else 1,
            services.WARNING,
            (start + timedelta(days=day)).date(),
        )
        for pid, day in interventions
    ]
    assessed = assess(
        sorted(set(ivs), key=lambda iv: (iv.on, iv.premises_id)), 60, london(2027, 1, 1), times
    )
    found = services.match_comparisons(assessed, trails, plan_days, times)
    expected = _reference_matches(assessed, trails, plan_days, times)
    assert {
        iv: (m.control_premises_id, m.control_before, m.control_after) for iv, m in found.items()
    } == expected
    assert all(m.assessment.complete for m in found.values())
