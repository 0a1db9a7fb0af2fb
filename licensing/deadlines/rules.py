"""Each statutory deadline as a small named function of its source date.

Day rules return a date: the last day on which the step may be taken. Hour rules return
an instant (UTC). Sources: Licensing Act 2003 ss.51-53C; Licensing Act 2003 (Hearings)
Regulations 2005, Schedule 1; Licensing Act 2003 (Summary Review of Premises Licences)
Regulations 2007; Licensing Act 2003 Schedule 5 (appeals).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from licensing.deadlines.calendar import WorkingDayCalendar
from licensing.timeutil import LONDON

REPRESENTATION_PERIOD_DAYS = 28
HEARING_WORKING_DAYS = 20
DETERMINATION_WORKING_DAYS = 5
APPEAL_DAYS = 21
INTERIM_STEPS_HOURS = 48
SUMMARY_DETERMINATION_DAYS = 28
COMPLIANCE_VISIT_DAYS = 7


def representations_close(application_date: date) -> date:
    """Representations close at the end of the 28th consecutive day starting the day
    after the application was given to the authority (Hearings Regs, reg 22 and Sch 1)."""
    return application_date + timedelta(days=REPRESENTATION_PERIOD_DAYS)


def hearing_start_by(representations_closed: date, calendar: WorkingDayCalendar) -> date:
    """The hearing must start within 20 working days beginning with the day after the
    representation period ends (Hearings Regs, Sch 1, para 8)."""
    return calendar.nth_working_day_from(
        representations_closed + timedelta(days=1), HEARING_WORKING_DAYS
    )


def determination_by(last_hearing_day: date, calendar: WorkingDayCalendar) -> date:
    """The authority determines the review within 5 working days beginning with the day
    (or the last day) of the hearing (Hearings Regs, reg 26(2))."""
    return calendar.nth_working_day_from(last_hearing_day, DETERMINATION_WORKING_DAYS)


def appeal_by(notified_on: date) -> date:
    """An appeal to the magistrates' court must be lodged within 21 days beginning with
    the day the appellant was notified of the decision (Sch 5, para 9)."""
    return notified_on + timedelta(days=APPEAL_DAYS - 1)


def interim_steps_by(received_at: datetime, calendar: WorkingDayCalendar) -> datetime:
    """Interim steps must be considered within 48 hours of receipt of a summary review
    application, disregarding any time that is not on a working day (s.53B(1), (11)).
    Working days are civil days in England, so the hours are counted in London time."""
    remaining = timedelta(hours=INTERIM_STEPS_HOURS)
    moment = received_at.astimezone(UTC)
    day = moment.astimezone(LONDON).date()
    while True:
        day_start = datetime.combine(day, time(0), tzinfo=LONDON).astimezone(UTC)
        next_start = datetime.combine(day + timedelta(days=1), time(0), tzinfo=LONDON).astimezone(
            UTC
        )
        if calendar.is_working_day(day):
            start = max(moment, day_start)
            available = next_start - start
            if remaining <= available:
                return start + remaining
            remaining -= available
        day += timedelta(days=1)


def summary_determination_by(received_at: datetime) -> date:
    """The summary review must be determined within 28 days after the day on which the
    application was received (s.53C(2))."""
    return received_at.astimezone(LONDON).date() + timedelta(days=SUMMARY_DETERMINATION_DAYS)


def compliance_visit_due(decision_date: date) -> date:
    """Our visit policy: a compliance check within 7 days of a determination that leads to
    action."""
    return decision_date + timedelta(days=COMPLIANCE_VISIT_DAYS)
