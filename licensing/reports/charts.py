"""Chart geometry for the reports page: server-drawn SVG, in the style (and palette) of
licensing/incidents/charts.py, each with the figures it shows for a table beside it."""

from __future__ import annotations

from dataclasses import dataclass

from licensing.incidents.charts import PALETTE
from licensing.premises.workflow import STATE_LABELS
from licensing.reports.services import CategoryCounts, StateSeries

# One colour per state, from the shared palette; the map's markers (app/map.css) match.
STATE_COLOURS = {
    "monitored": PALETTE[9],  # dark grey
    "warned": PALETTE[3],  # orange
    "review": PALETTE[4],  # purple
    "action": PALETTE[1],  # red
}
AXIS_COLOUR = "#b1b4b6"
TEXT_COLOUR = "#505a5f"


@dataclass(frozen=True)
class ChartBar:
    """One rectangle, with what it stands for (for its tooltip and data attributes)."""

    x: float
    y: float
    width: float
    height: float
    colour: str
    label: str
    key: str
    series: str
    count: int


@dataclass(frozen=True)
class Tick:
    """An axis label at a position."""

    x: float
    y: float
    text: str


@dataclass(frozen=True)
class StateChart:
    """Stacked bars, one per month-end, one colour per state."""

    width: int
    height: int
    plot_height: int
    bars: list[ChartBar]
    ticks: list[Tick]
    legend: list[tuple[str, str]]
    data: StateSeries
    max_total: int


@dataclass(frozen=True)
class CategoryChart:
    """Horizontal bars, one per incident category."""

    width: int
    height: int
    label_width: int
    bars: list[ChartBar]
    ticks: list[Tick]
    data: CategoryCounts


def state_chart(data: StateSeries, width: int = 640, height: int = 220) -> StateChart:
    """Lay out the premises-by-state chart: a stacked bar per month, states bottom up
    in workflow order."""
    plot_height = height - 20
    totals = data.totals
    max_total = max(totals, default=0)
    scale = plot_height / (max_total or 1)
    step = width / max(len(data.months), 1)
    bars: list[ChartBar] = []
    for index, month in enumerate(data.months):
        y = float(plot_height)
        for state, values in data.series.items():
            count = values[index]
            if not count:
                continue
            bar_height = count * scale
            y -= bar_height
            when = "now" if month.current else f"end of {month.label}"
            bars.append(
                ChartBar(
                    x=round(index * step + 2, 2),
                    y=round(y, 2),
                    width=round(max(step - 4, 1), 2),
                    height=round(bar_height, 2),
                    colour=STATE_COLOURS[state],
                    label=f"{when}: {count} {STATE_LABELS[state].lower()}",
                    key=month.key,
                    series=state,
                    count=count,
                )
            )
    ticks = [
        Tick(x=round(index * step + 2, 2), y=height - 5, text=month.short_label)
        for index, month in enumerate(data.months)
    ]
    return StateChart(
        width=width,
        height=height,
        plot_height=plot_height,
        bars=bars,
        ticks=ticks,
        legend=[(STATE_LABELS[state], STATE_COLOURS[state]) for state in data.series],
        data=data,
        max_total=max_total,
    )


def category_chart(
    data: CategoryCounts, width: int = 640, row_height: int = 24, label_width: int = 220
) -> CategoryChart:
    """Lay out the incidents-by-category chart: a bar per category, largest first, with
    the category's name to the left and its count at the bar's end."""
    rows = max(len(data.counts), 1)
    height = rows * row_height + 4
    largest = max((n for _category, n in data.counts), default=0) or 1
    room = width - label_width - 40
    bars: list[ChartBar] = []
    ticks: list[Tick] = []
    for index, (category, count) in enumerate(data.counts):
        bar_width = room * count / largest
        y = index * row_height + 4
        bars.append(
            ChartBar(
                x=float(label_width),
                y=float(y),
                width=round(max(bar_width, 1), 2),
                height=float(row_height - 6),
                colour=PALETTE[index % len(PALETTE)],
                label=f"{category}: {count}",
                key=category,
                series=category,
                count=count,
            )
        )
        ticks.append(Tick(x=float(label_width - 6), y=float(y + row_height - 10), text=category))
    return CategoryChart(
        width=width, height=height, label_width=label_width, bars=bars, ticks=ticks, data=data
    )
