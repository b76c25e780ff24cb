# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # A1: score-function and pathwise gradients agree in expectation
#
# On a random stable linear-quadratic system with additive action noise (u = Kx + sigma eps), the
# score-function gradient (what REINFORCE / GRPO / PPO at ratio 1 compute; leave-one-out baseline) and the
# pathwise gradient (backprop through time with reparameterized noise) are both unbiased estimates of the
# exact policy gradient grad_K J, which comes from autograd through the closed-form value recursion.
#
# The verdict comes from the claim record (rule claim_A1, `vgh.control.checks.check_a1`): per seed, the relative
# error r = |g_hat - grad J| / |grad J| at the largest N, and N r^2 / v there, the squared error against what the
# estimator's own noise explains (SCIENCE.md R26: no bias beyond about one standard error sqrt(v / N), the dotted
# lines), each a count over the seeds (R21); the log-log slopes of error vs N (unbiased: -1/2) are reported. The
# caption lists every sub-check's estimate, interval and verdict.
# Both estimators see the same N rollouts; the second panel shows why SF needs many more rollouts: its
# per-rollout variance.

# %%
if "snakemake" not in globals():  # run by hand from the repo root against an existing results/
    from vgh.claims import standalone_job

    snakemake = standalone_job("A1")  # rule fig_A1's paths and params (workflow/claims.yaml), drawing to scratch/

# %%
import matplotlib.pyplot as plt
import numpy as np

from vgh.claims import record_summary
from vgh.control.summary import a1_summary
from vgh.io import read_json, read_table
from vgh.plotting import log_scale, save, set_style
from vgh.runtime import configure
from vgh.stats import last

log = configure(snakemake.threads, snakemake.log[0])

table = read_table(snakemake.input.table)
claim = read_json(snakemake.input.claim)  # the record of rule claim_A1
thr = claim["config"]["thresholds"]
summary = a1_summary(table)
log.info(record_summary(claim))
summary

# %%
set_style()
colors = {"SF": "C0", "PD": "C1"}
labels = {"SF": "score function (LOO baseline)", "PD": "pathwise (BPTT)"}
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
for est in ("SF", "PD"):
    s = summary[summary.estimator == est].sort_values("n_rollouts")
    z = claim["checks"][f"{est}_error_within_noise_at_N_max"]  # R26: N r^2 / v at the largest N, per seed
    slopes = np.asarray(claim["details"][f"{est}_loglog_slopes"], float)
    ax1.plot(s.n_rollouts, s.rel_error, "o-", color=colors[est],
             label=f"{est}: mean slope {np.nanmean(slopes) if slopes.size else np.nan:.2f}, within noise "
                   f"{sum(z['member_passed'])}/{len(z['member_passed'])} seeds")
    ax1.fill_between(s.n_rollouts, s.rel_error_min, s.rel_error_max, color=colors[est], alpha=0.2, lw=0)
    ax2.plot(s.n_rollouts, s.per_rollout_var, "o-", color=colors[est], label=labels[est])
    ax2.fill_between(s.n_rollouts, s.per_rollout_var_min, s.per_rollout_var_max, color=colors[est], alpha=0.2,
                     lw=0)
    # what an unbiased estimator with this per-rollout variance gives: RMS error sqrt(v / N)
    v = last(s.per_rollout_var)
    if np.isfinite(v) and v >= 0:  # a variance; a degenerate table may hold anything
        ax1.plot(s.n_rollouts, np.sqrt(v / s.n_rollouts), ":", color=colors[est], lw=1.2)
ax1.plot([], [], ":", color="grey", label=r"$\sqrt{v/N}$ (unbiased, v = per-rollout var. at largest N)")
ax1.axhline(thr["max_rel_error"], color="k", ls="--", lw=1, label=f"check: {thr['max_rel_error']:g} at largest N")
log_scale(ax1, "xy")
ax1.set(xlabel="rollouts N", ylabel=r"relative error $\|\hat g-\nabla_K J\|/\|\nabla_K J\|$",
        title="error vs exact gradient (mean, min-max over seeds)")
ax1.legend(fontsize="small", loc="lower left")
log_scale(ax2, "xy")
ax2.set(xlabel="rollouts N",
        ylabel=r"per-rollout variance $\mathrm{tr\,Cov}/\|\nabla_K J\|^2$",
        title=f"per-rollout variance, sample estimate at each N (SF / PD = "
              f"{claim['details']['variance_ratio_SF_over_PD']:.1f})")
ax2.legend(fontsize="small")
fig.tight_layout()
save(fig, snakemake.output.pdf, snakemake.output.png, caption=record_summary(claim))
