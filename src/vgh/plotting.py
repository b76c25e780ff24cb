"""One style for every figure: seaborn's paper context, colour-blind palette, PDF + PNG output."""
from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

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
