"""The working-day calendar of the Licensing Act 2003 and the Hearings Regulations 2005.

A working day is any day other than a Saturday, a Sunday, Christmas Day, Good Friday, or a
bank holiday in England and Wales (Licensing Act 2003 s.193). Bank holidays come from the
`holidays` package, or from a GOV.UK `bank-holidays.json` file named in configuration,
which wins when present (it carries one-off days, such as a coronation, as they are
announced). Christmas Day and Good Friday are added whatever the source says.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path

import holidays
from dateutil.easter import easter

GOV_UK_DIVISION = "england-and-wales"


class WorkingDayCalendar:
    """Answers whether a date is a working day, and counts working days."""

    def __init__(self, bank_holidays: Iterable[date], source: str) -> None:
        self.bank_holidays = frozenset(bank_holidays)
        self.source = source

    def is_working_day(self, day: date) -> bool:
        """Not a weekend, Christmas Day, Good Friday or an England and Wales bank holiday."""
        if day.weekday() >= 5 or (day.month, day.day) == (12, 25):
            return False
        if day == easter(day.year) - timedelta(days=2):  # Good Friday
            return False
        return day not in self.bank_holidays

    def nth_working_day_from(self, first: date, n: int) -> date:
        """The n-th working day of a period that begins with `first` (counted as day 1
        if it is a working day): "within n working days beginning with `first`"."""
        if n < 1:
            raise ValueError("n must be at least 1")
        day = first
        counted = 0
        while True:
            if self.is_working_day(day):
                counted += 1
                if counted == n:
                    return day
            day += timedelta(days=1)

    def next_working_day(self, day: date) -> date:
        """`day` itself if it is a working day, else the next one."""
        return self.nth_working_day_from(day, 1)

    def working_days_between(self, start: date, end: date) -> int:
        """Working days from `start` to `end`, both included (0 if end is before start)."""
        count = 0
        day = start
        while day <= end:
            count += self.is_working_day(day)
            day += timedelta(days=1)
        return count


def _years() -> range:
    this_year = date.today().year
    return range(2000, this_year + 11)


def calendar_from_package() -> WorkingDayCalendar:
    """Bank holidays for England from the `holidays` package."""
    days = holidays.UK(subdiv="ENG", years=_years())
    return WorkingDayCalendar(days.keys(), "holidays package (UK, England)")


def calendar_from_gov_uk(path: Path) -> WorkingDayCalendar:
    """Bank holidays for England and Wales from a GOV.UK bank-holidays.json file."""
    data = json.loads(path.read_text(encoding="utf-8"))
    try:
        events = data[GOV_UK_DIVISION]["events"]
        days = [date.fromisoformat(event["date"]) for event in events]
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{path} is not a GOV.UK bank-holidays.json file: {error}") from None
    return WorkingDayCalendar(days, f"GOV.UK bank holidays file {path}")


@lru_cache(maxsize=8)
def working_day_calendar(bank_holidays_file: str | None = None) -> WorkingDayCalendar:
    """The calendar to use: the GOV.UK file when one is configured, else the package."""
    if bank_holidays_file:
        return calendar_from_gov_uk(Path(bank_holidays_file))
    return calendar_from_package()
