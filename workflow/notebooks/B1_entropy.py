# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # B1: the transformer costate's error is controlled by the policy entropy
#
# Policy: a pretrained tiny GPT-2 restricted to the ten digit tokens at temperature tau; state x: the input
# embedding at the last prompt position. The reference g* = grad_x V(x) is exact (all 10^L completions
# enumerated, float64). The straight-through pathwise costate lambda_PD is biased; its bias
# e = |E[lambda_PD] - g*| is computed exactly. The score-function costate lambda_SF is unbiased, so its error is
# shown at a fixed sample budget N. Entropy h: the prompt's mean per-token entropy, exact over completions.
# Every table comes from each of the K members, each with its own prompts (the ensemble, SCIENCE.md R20).
#
# The verdict comes from the claim record (rule claim_B1, `vgh.costates.checks.check_b1`; SCIENCE.md R10, R25), one
# unit per (member, checkpoint, tau, prompt): the **envelope** e <= C h (per member, C fitted on half its own
# prompts, points above their median h; coverage on its other half's points below their median), the **trend**
# (R25: the relative error e/|g*| rises with h within each checkpoint x temperature cell, given |g*|) and the
# **limit**, the pooled relative error sum |E[lambda_PD] - g*| / sum |g*| at the lowest mean entropy each member
# reaches.
# Reported: the median per-prompt error there and the carry-chain prompts as their own stratum; Spearman(e, h) and
# Spearman(e, gap) at each fixed tau and their partial Spearman given tau; the old Spearman of the pooled error.

# %%
if "snakemake" not in globals():  # run by hand from the repo root against an existing results/
    from vgh.claims import standalone_job

    snakemake = standalone_job("B1")  # rule fig_B1's paths and params (workflow/claims.yaml), drawing to scratch/

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from vgh.claims import record_summary
from vgh.costates.envelope import envelope_halves
from vgh.io import read_json, read_tables
from vgh.plotting import log_scale, member_dots, save, set_style
from vgh.runtime import configure

log = configure(snakemake.threads, snakemake.log[0])
summary = read_tables(snakemake.input.summary)
prompts = read_tables(snakemake.input.prompts)
summary = summary.sort_values(["member", "checkpoint", "temperature"])
claim = read_json(snakemake.input.claim)  # the record of rule claim_B1
thr = claim["config"]["thresholds"]
log.info(record_summary(claim))
for o in claim["details"]["outliers_lowest_entropy"]:
    log.info("large error at the lowest entropy: %s", o)
pd.DataFrame(claim["details"]["lowest_entropy"])

# %%
set_style()
members = sorted(prompts["member"].unique())
ckpts = sorted(summary["checkpoint"].unique())
colors = {c: f"C{i}" for i, c in enumerate(ckpts)}
fig, axes = plt.subplots(1, 4, figsize=(21, 4.8), gridspec_kw={"width_ratios": [1, 1, 1, 0.6]})

# (a) pooled relative errors vs mean entropy: every member faint, the ensemble mean bold with its range
ax = axes[0]
for (m, c), s in summary.groupby(["member", "checkpoint"]):
    ax.plot(s["entropy"], s["pd_error"], "-", color=colors[c], alpha=0.25, lw=0.8)
    ax.plot(s["entropy"], s["sf_error"], ":", color=colors[c], alpha=0.25, lw=0.8)
ens = summary.groupby(["checkpoint", "temperature"]).agg(
    entropy=("entropy", "mean"), pd_error=("pd_error", "mean"), lo=("pd_error", "min"), hi=("pd_error", "max"),
    sf_error=("sf_error", "mean")).reset_index()
for c, s in ens.groupby("checkpoint"):
    ax.plot(s["entropy"], s["pd_error"], "o-", color=colors[c], lw=2)
    ax.plot(s["entropy"], s["sf_error"], "s:", color=colors[c], lw=1.5, ms=4)
    ax.fill_between(s["entropy"], s["lo"], s["hi"], color=colors[c], alpha=0.15, lw=0)
log_scale(ax, "y")
ax.axhline(thr["max_pd_error_lowest_entropy"], color="k", ls="--", lw=1)
ax.set(xlabel="mean per-token policy entropy (nats)", ylabel=r"pooled relative error vs $g^*$",
       title=f"{len(members)} members (faint), ensemble mean (bold, band: range over members)")
ax.legend(handles=[Line2D([], [], color=colors[c], marker="o", label=f"step {c}") for c in ckpts] + [
    Line2D([], [], color="gray", marker="o", label=r"$E[\lambda_{PD}]$ (exact bias)"),
    Line2D([], [], color="gray", marker="s", ls=":", label=rf"$\lambda_{{SF}}$, N = {snakemake.params.sample_budget}"),
    Line2D([], [], color="k", ls="--", label=f"limit at the lowest entropy: {thr['max_pd_error_lowest_entropy']:g}")],
    fontsize="x-small", loc="best")

# (b) the envelope e <= C h, per member (R10 under R20): each member's fit half above its median h (grey), its
# held-out points below their median, covered or not by its own C
ax = axes[1]
env = claim["details"]["envelope"]
c_of = {int(m): float(c) for m, c in env.get("C_by_member", {}).items()}
floor = 1e-12
in_fit, in_held = envelope_halves(prompts)
for i, (m, d) in enumerate(prompts.groupby("member")):
    f = d[in_fit[d.index]]
    f_up = f[f["entropy"] > f["entropy"].median()]
    ax.scatter(f_up["entropy"].clip(lower=floor), f_up["pd_abs_error"].clip(lower=floor), s=6, color="0.6",
               alpha=0.5, label="each member's fit half, above its median h" if i == 0 else None)
    h = d[in_held[d.index]]
    low = h[h["entropy"] < h["entropy"].median()]
    ok = low["pd_abs_error"] <= c_of.get(int(m), np.nan) * low["entropy"]
    ax.scatter(low.loc[ok, "entropy"].clip(lower=floor), low.loc[ok, "pd_abs_error"].clip(lower=floor), s=9,
               color="C0", alpha=0.6, label="held-out prompts, below median h: covered" if i == 0 else None)
    ax.scatter(low.loc[~ok, "entropy"].clip(lower=floor), low.loc[~ok, "pd_abs_error"].clip(lower=floor), s=14,
               color="C3", marker="x", label="held-out prompts, below median h: outside" if i == 0 else None)
hs = np.linspace(0, max(float(np.nan_to_num(prompts["entropy"].max())), 1e-3), 200)[1:]
finite_c = [c for c in c_of.values() if np.isfinite(c)]
for i, c in enumerate(finite_c):
    ax.plot(hs, c * hs, "k-", lw=0.6, alpha=0.4,
            label=f"C h per member (99th pct of e/h, its fit half; median C {np.median(finite_c):.3g})"
            if i == 0 else None)
log_scale(ax, "xy")
sub = claim["checks"]["envelope_coverage_entropy"]
ax.set(xlabel="prompt's mean per-token entropy h (nats)", ylabel=r"$e = \|E[\lambda_{PD}] - g^*\|$ per prompt",
       title=f"envelope: held-out coverage {sub['value']:.3g} (>= {thr['min_coverage']:g}); "
             f"zero costate {env.get('zero_costate', {}).get('coverage_mean', float('nan')):.3g}")
ax.legend(fontsize="x-small", loc="best")

# (c) the limit at each member's lowest entropy, with the carry-chain stratum
ax = axes[2]
low = pd.DataFrame(claim["details"]["lowest_entropy"])
x = np.arange(len(low))
for col, marker, label in (("pd_error", "o", "pooled, all prompts"), ("pd_error_median", "x", "median prompt"),
                           ("pd_error_carry", "^", "pooled, carry prompts"),
                           ("pd_error_nocarry", "v", "pooled, no-carry prompts")):
    if col in low:
        ax.plot(x, low[col].astype(float).clip(lower=floor), marker, ls="", ms=7 if col == "pd_error" else 5,
                label=label)
lim = claim["checks"]["pd_error_lowest_entropy"]
if np.isfinite(lim["value"]):
    ax.axhspan(*[max(v, floor) for v in lim["interval"]], color="C0", alpha=0.15, lw=0,
               label=f"median member {lim['value']:.3g}, its interval (R21)")
ax.axhline(thr["max_pd_error_lowest_entropy"], color="k", ls="--", lw=1, label="limit")
log_scale(ax, "y")
ax.set_xticks(x, [f"m{r.member}\nstep {r.checkpoint}\ntau {r.temperature:g}" for r in low.itertuples()],
              fontsize="x-small")
ax.set(ylabel=r"relative error of $E[\lambda_{PD}]$", title="at each member's lowest mean entropy")
ax.legend(fontsize="x-small", loc="best")
# R25's trend, the sub-check that tells the claim from its confounders: per member, the partial rank correlation of
# e/|g*| with the entropy given |g*|, within each (checkpoint, temperature) cell
trend = claim["checks"]["error_rises_with_entropy_in_cells"]
ax = axes[-1]
member_dots(ax, members, trend["per_member"], trend["member_passed"], trend["threshold_value"],
            ylabel=r"partial rank corr. of $e/\|g^*\|$ with the entropy | $\|g^*\|$",
            title="within checkpoint x tau (R25)")
fig.tight_layout()
save(fig, snakemake.output.pdf, snakemake.output.png, caption=record_summary(claim))

