"""Server-drawn charts (SVG, no script) with the figures they show, for a table beside."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from markupsafe import Markup, escape

from licensing.templating import format_date

# GOV.UK Design System colours, distinguishable and with contrast on white.
PALETTE = [
    "#1d70b8",  # blue
    "#d4351c",  # red
    "#00703c",  # green
    "#f47738",  # orange
    "#4c2c92",  # purple
    "#5694ca",  # light blue
    "#b58840",  # brown
    "#d53880",  # pink
    "#28a197",  # turquoise
    "#505a5f",  # dark grey
]


@dataclass(frozen=True)
class WeeklyChart:
    """A stacked weekly bar chart: geometry for the SVG and figures for the table."""

    width: int
    height: int
    bars: str  # SVG rect elements, labels escaped (see weekly_chart)
    legend: list[tuple[str, str]]
    max_count: int
    weeks: list[datetime]
    series: dict[str, list[int]]
    total: int
    month_ticks: list[tuple[float, str]]
    active_weeks: list[int]

    def bars_svg(self) -> Markup:
        """The bars as SVG `rect` elements, each titled with its figures."""
        # Only numbers, palette colours and escaped labels (categories come from files).
        return Markup(self.bars)  # noqa: S704  # nosec B704

    def table_header_cells(self) -> Markup:
        """The figures table's column headers, one per category (escaped)."""
        return Markup(  # noqa: S704  # nosec B704 - escaped labels only
            "".join(
                '<th scope="col" class="govuk-table__header govuk-table__header--numeric">'
                f"{escape(category)}</th>"
                for category in self.series
            )
        )

    def table_rows(self) -> Markup:
        """The figures table's rows: each week with an incident, its London date and one
        count per category. Written here for the reason `bars_svg` is: a year's weeks by
        a dozen categories made the template loop most of its page's output."""
        columns = list(self.series.values())
        rows = []
        for i in self.active_weeks:
            cells = "".join(
                f'<td class="govuk-table__cell govuk-table__cell--numeric">{values[i]}</td>'
                for values in columns
            )
            day = escape(format_date(self.weeks[i]))  # as the `date` filter shows it
            rows.append(
                f'<tr class="govuk-table__row"><th scope="row" class="govuk-table__header">'
                f"{day}</th>{cells}</tr>"
            )
        # Only integers, dates and markup written here.
        return Markup("".join(rows))  # noqa: S704  # nosec B704


def weekly_chart(
    weeks: list[datetime], series: dict[str, list[int]], width: int = 640, height: int = 180
) -> WeeklyChart:
    """Lay out stacked bars, one per week, one colour per category."""
    totals = (
        [sum(week) for week in zip(*series.values(), strict=True)] if series else [0] * len(weeks)
    )
    max_count = max(totals, default=0) or 1
    plot_height = height - 20
    step = width / max(len(weeks), 1)
    colours = {category: PALETTE[i % len(PALETTE)] for i, category in enumerate(series)}
    # The bars are written as SVG here, each label escaped once per category and week:
    # a busy premises has hundreds of bars, and a template loop (or an object per bar)
    # was a large part of its page's time.
    categories = [
        (escape(category), colours[category], values) for category, values in series.items()
    ]
    bar_width = round(max(step - 2, 1), 2)
    bars: list[str] = []
    for index in range(len(weeks)):
        week = escape(f"Week of {weeks[index]:%-d %b %Y}")
        x = round(index * step + 1, 2)
        y = float(plot_height)
        for category, colour, values in categories:
            count = values[index]
            if not count:
                continue
            bar_height = plot_height * count / max_count
            y -= bar_height
            bars.append(
                f'<rect x="{x}" y="{round(y, 2)}" width="{bar_width}" '
                f'height="{round(bar_height, 2)}" fill="{colour}">'
                f"<title>{week}: {count} {category}</title></rect>"
            )
    ticks = [
        (round(index * step, 2), start.strftime("%b"))
        for index, start in enumerate(weeks)
        if index == 0 or start.month != weeks[index - 1].month
    ]
    return WeeklyChart(
        width=width,
        height=height,
        bars="".join(bars),
        legend=list(colours.items()),
        max_count=max(totals, default=0),
        weeks=weeks,
        series=series,
        total=sum(totals),
        month_ticks=ticks,
        active_weeks=[i for i, total in enumerate(totals) if total],
    )
