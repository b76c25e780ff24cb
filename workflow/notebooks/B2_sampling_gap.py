# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # B2: the transformer costate's error is controlled by the sampling gap
#
# Same runs as B1 (one point per checkpoint and temperature), against the sampling gap: the mean
# |onehot(y_t) - p_t|_2 along completions (an exact expectation by enumeration; E of its square is
# 1 - |p|^2 <= entropy). The bound's form is error <= C * gap, so a least-squares line through the origin is
# fitted and its centred R^2 reported. Entropy and gap both move with the temperature; the checkpoints are
# what separate B1 from B2, so points are coloured by checkpoint. Right: the embedding-space gap
# |e(y_t) - e_bar_t| (what the straight-through input correction replaces), for comparison.
#
# Check (SCIENCE.md): centred R^2 of error = C * gap (one-hot gap) >= 0.7.

# %%
if "snakemake" not in globals():  # run by hand from the repo root against an existing results/
    from vgh.claims import standalone_job

    snakemake = standalone_job("B2")  # paths and params of rule fig_B2, from workflow/claims.yaml

# %%
import matplotlib.pyplot as plt
import numpy as np

from vgh.io import read_tables
from vgh.lm.checks import check_b2, through_origin_fit
from vgh.plotting import save, set_style
from vgh.runtime import configure

log = configure(snakemake.threads, snakemake.log[0])
summary = read_tables(snakemake.input.summaries).sort_values(["checkpoint", "temperature"])
thr = snakemake.params.thresholds
claim = check_b2(summary, thr)
log.info(claim.summary())
summary[["checkpoint", "temperature", "gap", "gap_embed", "entropy", "pd_error"]]

# %%
set_style()
ckpts = sorted(summary["checkpoint"].unique())
colors = {c: f"C{i}" for i, c in enumerate(ckpts)}
fig, axes = plt.subplots(1, 2, figsize=(11, 4.4))
for ax, col, xlabel in ((axes[0], "gap", r"sampling gap $E\,\|\mathrm{onehot}(y_t)-p_t\|_2$"),
                        (axes[1], "gap_embed", r"embedding gap $E\,\|e(y_t)-\bar e_t\|_2$ (embedding units)")):
    fit = through_origin_fit(summary[col], summary["pd_error"])
    for c in ckpts:
        s = summary[summary["checkpoint"] == c]
        ax.plot(s[col], s["pd_error"], "o", color=colors[c], label=f"step {c}")
        for _, r in s.iterrows():
            ax.annotate(f"{r.temperature:g}", (r[col], r.pd_error), textcoords="offset points", xytext=(3, 3),
                        fontsize=6, color=colors[c])
    xs = np.linspace(0, summary[col].max() * 1.05, 50)
    ax.plot(xs, fit["slope"] * xs, "k--", lw=1,
            label=rf"error = {fit['slope']:.3g} $\times$ gap, centred $R^2$ = {fit['r2']:.3f}")
    ax.set(xlabel=xlabel, ylabel=r"pooled relative error of $E[\lambda_{PD}]$", xlim=(0, None), ylim=(0, None))
    ax.legend(fontsize="small", title="labels: tau", title_fontsize="x-small")
axes[0].set_title("one-hot gap (the checked fit)")
axes[1].set_title("embedding-space gap (detail)")
fig.tight_layout()
save(fig, snakemake.output.pdf, snakemake.output.png, caption=claim.summary())

# %%
claim.write(snakemake.output.claim, config={"costates": snakemake.params.costates, "claims": {"B2": thr}})
