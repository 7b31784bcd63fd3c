"""The report's plots as inline SVG text: effects with intervals, and daily cumulative curves.

Figures are built with matplotlib's object API (no pyplot state) and keep their text as text,
so the page stays small and needs nothing from outside.
"""

from __future__ import annotations

import io
import math
from typing import Any

from matplotlib import rc_context
from matplotlib.figure import Figure

COLORS = {"better": "#1a7f37", "worse": "#cf222e"}
NEUTRAL = "#57606a"
VARIANT_COLORS = ("#0969da", "#bf8700", "#8250df", "#1a7f37", "#cf222e")


def _svg(fig: Figure) -> str:
    """The figure as an `<svg>` element (no XML prologue)."""
    buf = io.StringIO()
    # Text stays text (in the page's font), so the SVG is small and needs no embedded glyphs.
    with rc_context({"svg.fonttype": "none", "font.family": "sans-serif"}):
        fig.savefig(buf, format="svg", bbox_inches="tight")
    text = buf.getvalue()
    return text[text.index("<svg") :]


def effects_svg(report: dict[str, Any]) -> str:
    """Relative effect of each treatment on each metric with its confidence interval."""
    rows = [
        (m["label"], c)
        for m in report["metrics"]
        for c in m["comparisons"]
        if c["rel_effect"] is not None and c["rel_effect_ci"][0] is not None
    ]
    fig = Figure(figsize=(7.5, 0.42 * max(len(rows), 1) + 1.0))
    ax = fig.subplots()
    several = len(report["treatments"]) > 1
    for i, (_, c) in enumerate(rows):
        lo, hi = c["rel_effect_ci"]
        color = COLORS.get(c["verdict"], NEUTRAL)
        mid = 100 * c["rel_effect"]
        ax.errorbar(
            mid, i, xerr=[[mid - 100 * lo], [100 * hi - mid]], fmt="o", color=color, capsize=3
        )
    ax.set_yticks(
        range(len(rows)),
        [f"{label} ({c['treatment']})" if several else label for label, c in rows],
    )
    ax.axvline(0, color="#8c959f", lw=1)
    ax.invert_yaxis()
    level = round(100 * (1 - report["settings"]["alpha"]))
    ax.set_xlabel(f"relative effect vs {report['control']} (%), {level}% interval")
    ax.grid(axis="x", color="#d0d7de", lw=0.5)
    return _svg(fig)


def daily_svg(report: dict[str, Any]) -> str:
    """Cumulative exposed agents, net GMV per exposed agent and return rate by day and variant."""
    fig = Figure(figsize=(10, 3.2))
    axes = fig.subplots(1, 3)
    panels = (
        ("agents", "exposed agents", 1.0),
        ("net_gmv_per_agent", "net GMV per exposed agent", 1.0),
        ("return_rate", "return rate (%)", 100.0),
    )
    by_variant: dict[str, list[dict[str, Any]]] = {}
    for row in report["daily"]:
        by_variant.setdefault(row["variant"], []).append(row)
    for k, (variant, rows) in enumerate(sorted(by_variant.items())):
        days = list(range(len(rows)))
        color = VARIANT_COLORS[k % len(VARIANT_COLORS)]
        for ax, (col, _, scale) in zip(axes, panels, strict=True):
            values = [math.nan if r[col] is None else scale * r[col] for r in rows]
            ax.plot(days, values, color=color, label=variant, lw=1.5)
    for ax, (_, title, _) in zip(axes, panels, strict=True):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(f"days since {report['period']['start'][:10]}")
        ax.grid(color="#d0d7de", lw=0.5)
    axes[0].legend(frameon=False)
    fig.tight_layout()
    return _svg(fig)
