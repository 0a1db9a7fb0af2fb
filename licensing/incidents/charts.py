"""Server-drawn charts (SVG, no script) with the figures they show, for a table beside."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from markupsafe import Markup, escape

from licensing.timeutil import format_london

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
class Bar:
    """One coloured segment of a stacked bar."""

    x: float
    y: float
    width: float
    height: float
    colour: str
    label: str


@dataclass(frozen=True)
class WeeklyChart:
    """A stacked weekly bar chart: geometry for the SVG and figures for the table."""

    width: int
    height: int
    bars: list[Bar]
    legend: list[tuple[str, str]]
    max_count: int
    weeks: list[datetime]
    series: dict[str, list[int]]
    total: int
    month_ticks: list[tuple[float, str]]
    active_weeks: list[int]

    def bars_svg(self) -> Markup:
        """The bars as SVG `rect` elements, each titled with its figures. Written here
        rather than by a template loop: a busy premises has hundreds of bars, and the
        loop was a quarter of its page's time (Markup.format, which escapes each field
        through string.Formatter, was slower still)."""
        parts = [
            f'<rect x="{b.x}" y="{b.y}" width="{b.width}" height="{b.height}" '
            f'fill="{b.colour}"><title>{escape(b.label)}</title></rect>'
            for b in self.bars
        ]
        # Only numbers, palette colours and escaped labels (categories come from files).
        return Markup("".join(parts))  # noqa: S704  # nosec B704

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
            day = escape(format_london(self.weeks[i], with_time=False))
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
    totals = [sum(values[i] for values in series.values()) for i in range(len(weeks))]
    max_count = max(totals, default=0) or 1
    plot_height = height - 20
    step = width / max(len(weeks), 1)
    colours = {category: PALETTE[i % len(PALETTE)] for i, category in enumerate(series)}
    bars: list[Bar] = []
    week_names = [f"Week of {start:%-d %b %Y}" for start in weeks]
    for index in range(len(weeks)):
        y = float(plot_height)
        for category, values in series.items():
            count = values[index]
            if not count:
                continue
            bar_height = plot_height * count / max_count
            y -= bar_height
            bars.append(
                Bar(
                    x=round(index * step + 1, 2),
                    y=round(y, 2),
                    width=round(max(step - 2, 1), 2),
                    height=round(bar_height, 2),
                    colour=colours[category],
                    label=f"{week_names[index]}: {count} {category}",
                )
            )
    ticks = [
        (round(index * step, 2), start.strftime("%b"))
        for index, start in enumerate(weeks)
        if index == 0 or start.month != weeks[index - 1].month
    ]
    return WeeklyChart(
        width=width,
        height=height,
        bars=bars,
        legend=list(colours.items()),
        max_count=max(totals, default=0),
        weeks=weeks,
        series=series,
        total=sum(totals),
        month_ticks=ticks,
        active_weeks=[i for i, total in enumerate(totals) if total],
    )
