"""The leaderboard's plot: PER against parameters (log scale), coloured by depth, as geometry for the page's SVG."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class PlotPoint:
    x: float
    y: float
    colour: str
    label: str
    depth: int
    is_baseline: bool
    number: int  # the row's rank in the table: drawn beside the point and listed under the plot
    name: str
    per: float
    parameters: int


@dataclass(frozen=True)
class Plot:
    width: int
    height: int
    points: list[PlotPoint]
    x_ticks: list[tuple[float, str]]
    y_ticks: list[tuple[float, str]]
    legend: list[tuple[str, int]]
    left: int
    bottom: int
    right: int
    top: int


PALETTE = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#e6ab02", "#66a61e", "#a6761d", "#666666")


def depth_colour(depth: int) -> str:
    return PALETTE[min(max(depth, 1), len(PALETTE)) - 1]


def leaderboard_plot(rows: list[dict], *, per: str = "per_hidden", width: int = 640, height: int = 360) -> Plot | None:
    """Coordinates for an inline SVG of the ``per`` column (the board's ranked PER); None when no row has both a
    PER and a parameter count."""
    usable = [r for r in rows if r[per] is not None and r["parameters"]]
    if not usable:
        return None
    left, right, top, bottom = 64, width - 16, 16, height - 48
    low = math.floor(math.log10(min(r["parameters"] for r in usable)))
    high = max(low + 1, math.ceil(math.log10(max(r["parameters"] for r in usable))))
    per_max = max(0.1, math.ceil(max(r[per] for r in usable) * 10) / 10)

    def x_of(parameters: int) -> float:
        return left + (math.log10(parameters) - low) / (high - low) * (right - left)

    def y_of(per: float) -> float:
        return bottom - per / per_max * (bottom - top)

    points = [
        PlotPoint(
            x=round(x_of(r["parameters"]), 1),
            y=round(y_of(r[per]), 1),
            colour=depth_colour(r["depth"] or 0),
            label=f"{r['name']}: PER {r[per]:.1%}, {r['parameters']:,} parameters, depth {r['depth']}",
            depth=r["depth"] or 0,
            is_baseline=r["is_baseline"],
            number=r["rank"],
            name=r["name"],
            per=r[per],
            parameters=r["parameters"],
        )
        for r in usable
    ]
    x_ticks = [(round(x_of(10**e), 1), f"10^{e}") for e in range(low, high + 1)]
    y_ticks = [(round(y_of(per_max * i / 4), 1), f"{per_max * i / 4:.0%}") for i in range(5)]
    legend = [(depth_colour(d), d) for d in sorted({p.depth for p in points})]
    return Plot(width, height, points, x_ticks, y_ticks, legend, left, bottom, right, top)
