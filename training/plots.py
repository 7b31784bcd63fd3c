"""Plots logged with every training run: metric@k curves and segment bars."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

CURVE_METRICS = ("precision", "recall", "ndcg", "kept_ndcg", "kept_recall", "hit_rate", "map")


def plot_metric_curves(metrics: dict[str, float], ks: tuple[int, ...], path: Path) -> Path:
    """Line plot of each metric against k (all purchases solid, new-to-user dashed)."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name in CURVE_METRICS:
        ys = [metrics.get(f"{name}_at_{k}") for k in ks]
        if all(y is not None for y in ys):
            (line,) = ax.plot(ks, ys, marker="o", label=name)
            new = [metrics.get(f"new_{name}_at_{k}") for k in ks]
            if all(y is not None for y in new):
                ax.plot(ks, new, marker=".", ls="--", color=line.get_color(), alpha=0.6)
    ax.set_xlabel("k")
    ax.set_ylabel("value")
    ax.set_title("Metrics at k (dashed: SKUs new to the user)")
    ax.set_xticks(list(ks))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_segments(metrics: dict[str, float], metric: str, path: Path) -> Path | None:
    """Horizontal bars of `metric` per segment value (`segment.{name}={value}.{metric}`)."""
    pattern = re.compile(rf"^segment\.(.+)\.{re.escape(metric)}$")
    rows = [(m.group(1), v) for key, v in metrics.items() if (m := pattern.match(key))]
    if not rows:
        return None
    rows.sort()
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(rows) + 1.5))
    ax.barh([r[0] for r in rows], [r[1] for r in rows], color="#4c72b0")
    overall = metrics.get(metric)
    if overall is not None:
        ax.axvline(overall, color="k", ls="--", lw=1, label=f"all users {overall:.3f}")
        ax.legend(fontsize=8)
    ax.set_xlabel(metric)
    ax.set_title(f"{metric} by segment")
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
