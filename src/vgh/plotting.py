"""One style for every figure: seaborn's paper context, colour-blind palette, PDF + PNG output."""
from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.collections import LineCollection, PathCollection  # noqa: E402

PALETTE = "colorblind"


def set_style() -> None:
    sns.set_theme(context="paper", style="whitegrid", palette=PALETTE, font_scale=1.1)
    plt.rcParams.update({
        "figure.dpi": 110,
        "savefig.dpi": 200,
        "savefig.bbox": "tight",
        "axes.titlesize": "medium",
        "legend.frameon": False,
        "pdf.fonttype": 42,
        # deterministic PDFs: no creation date in the metadata
        "svg.hashsalt": "vgh",
    })


def save(fig: "matplotlib.figure.Figure", pdf: str, png: str, caption: str | None = None) -> None:
    """Save a figure as PDF and PNG; `caption` (e.g. the claim's verdict) is printed under the axes."""
    if caption:
        fig.text(0.5, -0.02, caption, ha="center", va="top", fontsize="small", wrap=True)
    for path in (pdf, png):
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(pdf, metadata={"CreationDate": None, "ModDate": None})
    fig.savefig(png)
    plt.close(fig)


def _plotted(ax) -> np.ndarray:
    """[n, 2] points drawn on `ax` in data coordinates, both coordinates finite (matplotlib's autoscaling skips
    the others): lines, scatter and error-bar collections, filled bands; not reference lines like axhline."""
    parts = [np.column_stack([np.asarray(line.get_xdata(), float).ravel(), np.asarray(line.get_ydata(), float).ravel()])
             for line in ax.lines if line.get_transform() == ax.transData]
    for c in ax.collections:
        if isinstance(c, LineCollection):  # error bars
            parts += [np.asarray(seg, float).reshape(-1, 2) for seg in c.get_segments() if len(seg)]
        elif isinstance(c, PathCollection):  # a scatter: its offsets are the data, its path the marker
            parts.append(np.ma.filled(np.ma.asarray(c.get_offsets(), float), np.nan).reshape(-1, 2))
        else:  # filled bands
            parts += [np.asarray(p.vertices, float).reshape(-1, 2) for p in c.get_paths()]
    points = np.concatenate(parts) if parts else np.empty((0, 2))
    return points[np.isfinite(points).all(axis=1)]


def log_scale(ax, axis: str = "y", **kwargs) -> bool:
    """A log scale on `axis` ("x", "y" or "xy") only where its data can have one: some positive, finite values
    within float range. Otherwise the axis stays linear and says why (no data, or no positive values), so a
    figure renders whatever the numbers. Returns whether every requested axis is logarithmic."""
    ok = True
    points = _plotted(ax)
    for a in axis:
        values = points[:, 0 if a == "x" else 1]
        positive = values[values > 0]
        if positive.size and positive.min() > 1e-300 and positive.max() < 1e300:
            (ax.set_xscale if a == "x" else ax.set_yscale)("log", nonpositive="mask", **kwargs)
            continue
        ok = False
        why = "no finite values" if not values.size else "no positive values for a log scale"
        ax.text(0.5, 0.5 if a == "y" else 0.42, f"{a}: {why} (linear axis)", transform=ax.transAxes,
                ha="center", va="center", fontsize="small", color="0.4")
    return ok
