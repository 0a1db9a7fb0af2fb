"""Statutory deadline rules, checked by hand against the Licensing Act 2003 and the
Hearings Regulations 2005 across bank holidays, Easter and the clock changes."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest

from licensing.deadlines import rules
from licensing.deadlines.calendar import calendar_from_gov_uk, calendar_from_package
from licensing.timeutil import LONDON

CAL = calendar_from_package()


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2026, 12, 24), True),  # Thursday
        (date(2026, 12, 25), False),  # Christmas Day
        (date(2026, 12, 26), False),  # Saturday (Boxing Day)
        (date(2026, 12, 28), False),  # Boxing Day, substitute Monday
        (date(2027, 1, 1), False),  # New Year's Day
        (date(2027, 3, 26), False),  # Good Friday
        (date(2027, 3, 29), False),  # Easter Monday
        (date(2027, 3, 30), True),
        (date(2027, 5, 3), False),  # Early May bank holiday
        (date(2027, 5, 31), False),  # Spring bank holiday
        (date(2027, 8, 30), False),  # Summer bank holiday (England, not Scotland's)
        (date(2027, 8, 2), True),  # Scotland's summer bank holiday: a working day here
        (date(2027, 12, 27), False),  # Christmas Day substitute (25th is a Saturday)
        (date(2027, 12, 28), False),  # Boxing Day substitute
        (date(2027, 11, 20), False),  # Saturday
    ],
)
def test_working_days_of_england_and_wales(day, working):
    assert CAL.is_working_day(day) is working


def test_representations_close_28_days_after_the_day_after_the_application():
    # Received Friday 18 December 2026: day 1 is Saturday 19th, day 28 is Friday 15 January.
    assert rules.representations_close(date(2026, 12, 18)) == date(2027, 1, 15)


def test_hearing_window_skips_christmas_boxing_day_substitute_and_new_year():
    closed = rules.representations_close(date(2026, 11, 20))
    assert closed == date(2026, 12, 18)
    # Working days from Saturday 19 December: 21, 22, 23, 24, (25, 28 holidays), 29, 30, 31,
    # (1 Jan), 4-8, 11-15, 18, 19, 20: the 20th is Wednesday 20 January 2027.
    assert rules.hearing_start_by(closed, CAL) == date(2027, 1, 20)


def test_hearing_window_without_holidays_is_four_weeks():
    closed = rules.representations_close(date(2026, 12, 18))  # Friday 15 January 2027
    assert rules.hearing_start_by(closed, CAL) == date(2027, 2, 12)


def test_determination_within_five_working_days_across_easter():
    # Hearing Wednesday 24 March 2027: 24, 25, (Good Friday, weekend, Easter Monday), 30, 31, 1 April.
    assert rules.determination_by(date(2027, 3, 24), CAL) == date(2027, 4, 1)


def test_determination_after_a_hearing_held_on_a_non_working_day():
    # Saturday 27 March 2027 is not counted: 30, 31 March, 1, 2, 5 April.
    assert rules.determination_by(date(2027, 3, 27), CAL) == date(2027, 4, 5)


def test_appeal_within_21_days_beginning_with_notification():
    assert rules.appeal_by(date(2027, 1, 10)) == date(2027, 1, 30)


@pytest.mark.parametrize(
    ("received", "due"),
    [
        # Thursday before Easter 2027, GMT: 14 h on Thursday; Good Friday, the weekend (clocks
        # go forward on Sunday 28th) and Easter Monday do not count; 24 h on Tuesday;
        # the last 10 h end at 10:00 BST on Wednesday 31 March = 09:00 UTC.
        (datetime(2027, 3, 25, 10, 0, tzinfo=UTC), datetime(2027, 3, 31, 9, 0, tzinfo=UTC)),
        # Friday 23 October 2026 15:30 BST: 8.5 h on Friday; the weekend (clocks go back on
        # Sunday 25th) does not count; 24 h Monday; 15.5 h Tuesday: 15:30 GMT.
        (
            datetime(2026, 10, 23, 15, 30, tzinfo=LONDON),
            datetime(2026, 10, 27, 15, 30, tzinfo=UTC),
        ),
        # Received on a Saturday: the clock starts at midnight on Monday.
        (datetime(2026, 12, 19, 11, 0, tzinfo=UTC), datetime(2026, 12, 23, 0, 0, tzinfo=UTC)),
        # Christmas Eve 09:00: 15 h; Christmas, weekend, Boxing Day substitute skipped;
        # 24 h on the 29th; 9 h on the 30th.
        (datetime(2026, 12, 24, 9, 0, tzinfo=UTC), datetime(2026, 12, 30, 9, 0, tzinfo=UTC)),
    ],
)
def test_interim_steps_within_48_working_hours(received, due):
    assert rules.interim_steps_by(received, CAL) == due


def test_summary_determination_counts_from_the_london_date_of_receipt():
    assert rules.summary_determination_by(datetime(2027, 3, 25, 10, tzinfo=UTC)) == date(
        2027, 4, 22
    )
    # 23:30 UTC on Saturday 24 October 2026 is 00:30 BST on Sunday 25th in London.
    assert rules.summary_determination_by(datetime(2026, 10, 24, 23, 30, tzinfo=UTC)) == date(
        2026, 11, 22
    )


def test_nth_working_day_counts_the_first_day_when_it_is_a_working_day():
    assert CAL.nth_working_day_from(date(2027, 3, 30), 1) == date(2027, 3, 30)
    assert CAL.nth_working_day_from(date(2027, 3, 26), 1) == date(2027, 3, 30)
    with pytest.raises(ValueError):
        CAL.nth_working_day_from(date(2027, 3, 30), 0)
    # 21, 22, 23, 24, 29, 30, 31 December and 4 January.
    assert CAL.working_days_between(date(2026, 12, 21), date(2027, 1, 4)) == 8


def test_a_gov_uk_file_wins_and_carries_one_off_days(tmp_path):
    feed = {
        "england-and-wales": {
            "division": "england-and-wales",
            "events": [
                {
                    "title": "Special bank holiday",
                    "date": "2027-06-07",
                    "notes": "",
                    "bunting": True,
                },
                {
                    "title": "Christmas Day",
                    "date": "2027-12-27",
                    "notes": "Substitute day",
                    "bunting": True,
                },
            ],
        },
        "scotland": {"division": "scotland", "events": []},
    }
    path = tmp_path / "bank-holidays.json"
    path.write_text(json.dumps(feed))
    from_file = calendar_from_gov_uk(path)
    assert from_file.is_working_day(date(2027, 6, 7)) is False
    assert CAL.is_working_day(date(2027, 6, 7)) is True
    # Christmas Day and Good Friday are never working days, whatever the file says.
    assert from_file.is_working_day(date(2027, 3, 26)) is False
    assert from_file.is_working_day(date(2026, 12, 25)) is False
    assert rules.determination_by(date(2027, 6, 4), from_file) == date(2027, 6, 11)
    assert rules.determination_by(date(2027, 6, 4), CAL) == date(2027, 6, 10)


def test_a_file_that_is_not_a_gov_uk_feed_is_refused(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"events": []}))
    with pytest.raises(ValueError, match="not a GOV.UK"):
        calendar_from_gov_uk(path)
