# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # C1: signal, headroom and the real RL gain along the pretraining trajectory
#
# For every pretraining checkpoint, on the held-out eval prompts, with the digit-restricted policy at tau = 1
# and the exact-match reward (all exact, teacher-forced, float64):
# pass@1 p_q = P(answer | prompt), pass@k = 1 - (1 - p_q)^k, headroom H = pass@k - pass@1,
# signal S = |grad_theta J|^2 with J = mean_q p_q, and the prompt-state value-gradient norm |grad_x V|.
# Real gain: eval pass@1 after - before a fixed-budget critic-free RL run (config `trajectory.rl`) from the
# checkpoint on the RL prompts, several seeds. Predicted gain: G_pred = H (1 - exp(-kappa S / H)), kappa fitted
# by least squares leave-one-checkpoint-out.
#
# Finding recorded (SCIENCE.md): the checkpoint where the real gain peaks and whether it is interior.
# Verdict rule (ours): PASS iff the seed-mean gain peaks strictly between the first and last checkpoint, which
# is what the signal x headroom criterion predicts (S ~ 0 early, H -> 0 once pass@1 saturates); reported either
# way, with the bootstrap frequency (over seeds) of an interior peak.

# %%
if "snakemake" not in globals():  # run by hand from the repo root against an existing results/
    from vgh.claims import standalone_job

    snakemake = standalone_job("C1")  # paths and params of rule fig_C1, from workflow/claims.yaml

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from vgh.plotting import log_scale, save, set_style
from vgh.runtime import configure
from vgh.trajectory.checks import check_c1

log = configure(snakemake.threads, snakemake.log[0])
table = pd.read_parquet(snakemake.input.checkpoints).sort_values("checkpoint")
gains = pd.read_parquet(snakemake.input.gains)
curves = pd.read_parquet(snakemake.input.curves)
peak_freq = pd.read_parquet(snakemake.input.peak_bootstrap)
traj, data = snakemake.params.trajectory, snakemake.params.data
claim = check_c1(table, {}, peak_freq, corruption_rate=data["corruption_rate"])
log.info(claim.summary())
table[["checkpoint", "pass_at_1", "headroom", "signal", "gain_mean", "gain_se", "g_pred_loo"]]

# %%
set_style()
steps = table["checkpoint"].to_numpy()
linthresh = float(steps[steps > 0].min()) if (steps > 0).any() else 1.0
k = traj["headroom_k"]
rl = traj["rl"]


ticks = [0] + [t for t in (10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000)
              if linthresh <= t <= steps.max() * 1.5]


def step_axis(ax):
    """Symlog x: linear below the first non-zero checkpoint, so step 0 is shown, log above."""
    ax.set_xscale("symlog", linthresh=linthresh, linscale=0.5)
    ax.set_xlim(-0.15 * linthresh, steps.max() * 1.4)
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel("pretraining step (log above %g)" % linthresh)


fig = plt.figure(figsize=(14, 8.5))
grid = fig.add_gridspec(2, 6)
axes = {"pass": fig.add_subplot(grid[0, 0:2]), "signal": fig.add_subplot(grid[0, 2:4]),
        "vgrad": fig.add_subplot(grid[0, 4:6]), "gain": fig.add_subplot(grid[1, 0:3]),
        "curves": fig.add_subplot(grid[1, 3:6])}
ax = axes["pass"]
for kk in sorted(set(traj["pass_k"]) | {1}):
    ax.plot(steps, table[f"pass_at_{kk}"], "o-", ms=4, label=f"pass@{kk}")
ax.plot(steps, table["headroom"], "s--", ms=4, color="k", label=f"headroom H = pass@{k} - pass@1")
ax.set(ylabel="eval probability (exact)", ylim=(-0.02, 1.02), title="pass@k and headroom")
step_axis(ax)
ax.legend(fontsize="small")

ax = axes["signal"]
ax.plot(steps, table["signal"], "o-", ms=4, color="C0", label=r"signal $S=\|\nabla_\theta J\|^2$")
ax.plot(steps, table["signal_x_headroom"], "^-", ms=4, color="C2", label=r"$S\cdot H$")
log_scale(ax, "y")
ax.set(ylabel=r"$S$ [(pass@1 / param. unit)$^2$], $S\cdot H$", title="value-gradient signal")
step_axis(ax)
ax.legend(fontsize="small")

ax = axes["vgrad"]
ax.plot(steps, table["value_grad_norm"], "d-", ms=4, color="C3",
        label=r"mean $\|\nabla_x V\|$ (prompt state, per embedding unit)")
ax.plot(steps, table["mean_pq1mq"], "v-", ms=4, color="C4", label=r"mean $p(1-p)$")
log_scale(ax, "y")
ax.set(ylabel="value-gradient norm, p(1 - p)", title="prompt-state value gradient")
step_axis(ax)
ax.legend(fontsize="small")

ax = axes["gain"]
for seed, g in gains.groupby("seed"):
    ax.plot(g["checkpoint"], g["gain"], ".", color="C0", alpha=0.35, ms=6,
            label="real gain, single seeds" if seed == gains["seed"].min() else None)
ax.fill_between(steps, table["gain_min"], table["gain_max"], color="C0", alpha=0.15, lw=0)
ax.errorbar(steps, table["gain_mean"], yerr=table["gain_se"], fmt="o-", ms=4, color="C0", capsize=2,
            label=f"real gain, mean ± SE ({int(table['n_seeds'].min())} seeds; band = range)")
ax.plot(steps, table["g_pred_loo"], "s--", ms=4, color="C1", label="G_pred (leave-one-checkpoint-out)")
ax.plot(steps, table["g_pred_fit"], ":", color="C1", alpha=0.7,
        label=f"G_pred (all checkpoints, kappa = {table['kappa_fit'].iloc[0]:.3g})")
peak = claim.details["peak_checkpoint"]
ax.axvline(peak, color="grey", lw=1, ls="--")
ax.annotate(f"peak of the real gain: step {peak}", (peak, 0), xytext=(4, 4), textcoords="offset points",
            fontsize="small", color="grey")
ax.axhline(0, color="k", lw=0.6)
ax.set(ylabel="eval pass@1 gain (after - before RL)",
       title=f"real vs predicted RL gain ({rl['algo']}, {rl['optimizer']} lr {rl['lr']:g}, {rl['steps']} steps)")
step_axis(ax)
ax.legend(fontsize="small", loc="upper left")

ax = axes["curves"]
mean_curves = curves.groupby(["checkpoint", "step"], as_index=False)["reward"].mean()
cmap = plt.get_cmap("viridis")
for i, s in enumerate(steps):
    c = mean_curves[mean_curves["checkpoint"] == s]
    ax.plot(c["step"], c["reward"], color=cmap(i / max(1, len(steps) - 1)), lw=1.2, label=f"step {s}")
ax.set(xlabel="RL step", ylabel="training reward (exact match, mean over seeds)",
       title="RL training curves by checkpoint", ylim=(-0.02, 1.02))
ax.legend(fontsize="x-small", ncol=2, title="checkpoint", title_fontsize="x-small", loc="center right")
fig.tight_layout()
line2 = (f"interior peak in {100 * claim.details.get('bootstrap_frac_peak_interior', float('nan')):.0f}% of seed "
         f"bootstraps; predicted (LOO) peak: step {claim.details['predicted_peak_checkpoint_loo']}; "
         f"corruption rate rho = {data['corruption_rate']:g}")
save(fig, snakemake.output.pdf, snakemake.output.png, caption=claim.caption() + "\n" + line2)

# %%
claim.write(snakemake.output.claim, config={"trajectory": traj, "data": data})
