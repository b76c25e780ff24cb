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
from matplotlib.ticker import FixedLocator, Formatter, NullLocator  # noqa: E402

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
            getattr(ax, f"{a}axis").set_minor_formatter(SparseMinorLogFormatter())
            continue
        ok = False
        why = "no finite values" if not values.size else "no positive values for a log scale"
        ax.text(0.5, 0.5 if a == "y" else 0.42, f"{a}: {why} (linear axis)", transform=ax.transAxes,
                ha="center", va="center", fontsize="small", color="0.4")
    return ok


class SparseMinorLogFormatter(Formatter):
    """Labels for a log axis's minor ticks that never overlap: only at 2 and 5 x 10^k, and only while the view spans
    under two decades (matplotlib labels 2, 3, 4, 6 x 10^k on a view of about one decade, which collide)."""

    def __call__(self, x, pos=None):
        lo, hi = sorted(self.axis.get_view_interval())
        if not (x > 0 and lo > 0 and np.log10(hi / lo) < 2):
            return ""
        exp = int(np.floor(np.log10(x) + 1e-9))
        mantissa = x / 10.0 ** exp
        m = next((m for m in (2, 5) if abs(mantissa - m) < 1e-6), None)
        return rf"$\mathdefault{{{m}\times10^{{{exp}}}}}$" if m else ""


def symlog_scale(ax, axis: str, values, decades: int = 4) -> float:
    """A symmetric log scale on `axis` ("x", "y" or "xy") for data with values <= 0: linear within `decades`
    decades below the largest |value| (smaller values sit on the linear part around 0), logarithmic beyond, with one
    labelled tick per decade and 0, so labels never pile up at zero (a linear part as thin as the smallest value
    stacked a dozen decades of ticks there). Returns the linear threshold."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    top = float(np.abs(v).max()) if v.size and np.abs(v).max() > 0 else 1.0
    lin = int(np.ceil(np.log10(top))) - decades

    def decades_to(x: float) -> range:  # lin .. the decade holding x
        return range(lin, max(int(np.ceil(np.log10(x))), lin) + 1)

    ticks = [0.0] + [10.0 ** k for k in (decades_to(v.max()) if v.size and v.max() > 0 else [])]
    ticks += [-(10.0 ** k) for k in (decades_to(-v.min()) if v.size and v.min() < 0 else [])]
    step = max(1, (len(ticks) + 7) // 9)  # at most about 9 labels: every other decade where there are more
    ticks = sorted(t for t in ticks if t == 0 or round(np.log10(abs(t)) - lin) % step == 0)
    for a in axis:
        (ax.set_xscale if a == "x" else ax.set_yscale)("symlog", linthresh=10.0 ** lin, linscale=0.5)
        getattr(ax, f"{a}axis").set_major_locator(FixedLocator(ticks))
        getattr(ax, f"{a}axis").set_minor_locator(NullLocator())
    return 10.0 ** lin


def member_dots(ax, members, values, passed, threshold: float, *, ylabel: str, title: str) -> None:
    """One dot per member (R21's unit): its value of a sub-check, filled where it holds and open where it does not,
    with the threshold as a dashed line and the count in the title."""
    x = np.arange(len(members))
    values, passed = np.asarray(values, float), np.asarray(passed, bool)
    shown = np.where(np.isfinite(values), values, threshold)  # an unmeasured member sits on the line, open
    ax.scatter(x[passed], shown[passed], s=40, color="C0", zorder=3)
    ax.scatter(x[~passed], shown[~passed], s=40, facecolors="none", edgecolors="C3", zorder=3)
    ax.axhline(threshold, color="k", ls="--", lw=1)
    ax.set_xticks(x, [str(m) for m in members], rotation=90, fontsize="x-small")
    ax.set(xlabel="member (filled: holds; open: does not, nan on the line)", ylabel=ylabel,
           title=f"{title}: {int(passed.sum())} of {len(members)} members")
