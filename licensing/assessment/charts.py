"""The "Did it work?" chart: server-drawn SVG (no script), a pair of bars per intervention
(confirmed incidents before, and after), in the palette of licensing/incidents/charts.py.
The page's table carries the same figures; each bar's data attributes match its cell."""

from __future__ import annotations

from dataclasses import dataclass

from licensing.assessment.services import Assessment
from licensing.incidents.charts import PALETTE

BEFORE_COLOUR = PALETTE[9]  # dark grey
AFTER_COLOUR = PALETTE[0]  # blue
# An after window still running is drawn in a lighter blue with a dashed outline (and
# says "so far" in its tooltip and the table), so it never reads as a final figure.
INCOMPLETE_COLOUR = PALETTE[5]  # light blue


@dataclass(frozen=True)
class PairBar:
    """One bar: an intervention's before or after count."""

    x: float
    y: float
    width: float
    height: float
    colour: str
    dashed: bool
    label: str
    key: str
    series: str
    count: int


@dataclass(frozen=True)
class GroupTick:
    """The label under a pair of bars."""

    x: float
    y: float
    text: str


@dataclass(frozen=True)
class BeforeAfterChart:
    """Bars in pairs, oldest intervention first."""

    width: int
    height: int
    plot_height: int
    bars: list[PairBar]
    ticks: list[GroupTick]
    max_count: int
    legend: list[tuple[str, str]]


def assessment_key(a: Assessment) -> str:
    """A stable key of an assessment for the chart and its table row."""
    iv = a.intervention
    return f"{iv.type_key}-{iv.on.isoformat()}-{iv.seq if iv.seq is not None else 'plan'}"


def before_after_chart(
    assessments: list[Assessment], width: int = 640, height: int = 200
) -> BeforeAfterChart:
    """Lay out the pairs of bars: before (grey) and after (blue; light blue and dashed
    while the after window is incomplete), scaled to the largest count."""
    ordered = sorted(assessments, key=lambda a: (a.intervention.on, a.intervention.seq or 0))
    plot_height = height - 34
    max_count = max((max(a.before, a.after) for a in ordered), default=0)
    scale = (plot_height - 12) / (max_count or 1)
    step = width / max(len(ordered), 1)
    bar_width = max(min(step / 2 - 6, 48), 4)
    bars: list[PairBar] = []
    ticks: list[GroupTick] = []
    for index, a in enumerate(ordered):
        left = index * step + (step - 2 * bar_width - 4) / 2
        key = assessment_key(a)
        when = a.intervention.on.strftime("%-d %b %Y")
        for offset, series, count in ((0, "before", a.before), (1, "after", a.after)):
            incomplete = series == "after" and not a.complete
            bar_height = count * scale
            words = (
                f"{a.intervention.label}, {when}: {count} confirmed incident"
                f"{'' if count == 1 else 's'} {series}"
                + (" so far (window incomplete)" if incomplete else "")
            )
            bars.append(
                PairBar(
                    x=round(left + offset * (bar_width + 4), 2),
                    y=round(plot_height - bar_height, 2),
                    width=round(bar_width, 2),
                    # A zero still gets a hairline, so "none" is visible, not missing.
                    height=round(max(bar_height, 1), 2),
                    colour=INCOMPLETE_COLOUR
                    if incomplete
                    else (BEFORE_COLOUR if series == "before" else AFTER_COLOUR),
                    dashed=incomplete,
                    label=words,
                    key=key,
                    series=series,
                    count=count,
                )
            )
        ticks.append(
            GroupTick(
                x=round(index * step + step / 2, 2),
                y=float(plot_height + 14),
                text=a.intervention.on.strftime("%-d %b %y"),
            )
        )
    return BeforeAfterChart(
        width=width,
        height=height,
        plot_height=plot_height,
        bars=bars,
        ticks=ticks,
        max_count=max_count,
        legend=[
            ("Before", BEFORE_COLOUR),
            ("After", AFTER_COLOUR),
            ("After, so far (window incomplete)", INCOMPLETE_COLOUR),
        ],
    )
