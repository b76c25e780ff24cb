# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # C1: signal, headroom and the real RL gain along the pretraining trajectory, over the ensemble
#
# For every pretraining member and checkpoint, on the held-out eval prompts, with the digit-restricted policy at
# tau = 1 and the exact-match reward (all exact, teacher-forced, float64): pass@1 p_q, pass@k = 1 - (1 - p_q)^k,
# headroom H = pass@k - pass@1, the algorithm's signal S_alg = |mean_q c(p_q) grad p_q|^2 (R6; |grad J|^2 beside
# it) and the prompt-state value-gradient norm. Real gain: eval pass@1 after - before a fixed-budget critic-free
# RL run from the checkpoint, several RL seeds. Predicted gain: G_pred = H (1 - exp(-kappa S_alg / H)), kappa
# fitted per member leave-one-checkpoint-out. Every member is drawn faint, the ensemble mean bold with its band
# (range over members).
#
# The verdict comes from the claim record (rule claim_C1, `vgh.trajectory.checks.check_c1`; docs/SCIENCE.md R0,
# R12, R8): per member, how far the predicted peak (largest LOO G_pred) lies from the real-gain plateau (every
# checkpoint within the largest RL-seed-mean gain's interval), against the same distance for each baseline (a
# constant guess at each checkpoint, S, H, pass@1, the step; bottom middle), and whether the configured lr is the
# lr rule's choice. Whether the real peak is interior is reported.

# %%
if "snakemake" not in globals():  # run by hand from the repo root against an existing results/
    from vgh.claims import standalone_job

    snakemake = standalone_job("C1")  # rule fig_C1's paths and params (workflow/claims.yaml), drawing to scratch/

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from vgh.claims import record_summary
from vgh.io import read_json, read_table
from vgh.plotting import log_scale, save, set_style
from vgh.runtime import configure

log = configure(snakemake.threads, snakemake.log[0])
table = read_table(snakemake.input.checkpoints).sort_values(["member", "checkpoint"])
curves = read_table(snakemake.input.curves)
peaks = read_table(snakemake.input.peaks)
claim = read_json(snakemake.input.claim)  # the record of rule claim_C1
traj = snakemake.params.trajectory
log.info(record_summary(claim))
peaks

# %%
set_style()
steps = np.sort(table["checkpoint"].unique())
linthresh = float(steps[steps > 0].min()) if (steps > 0).any() else 1.0
k = traj["headroom_k"]
rl = traj["rl"]
members = sorted(table["member"].unique())
ens = table.select_dtypes("number").groupby(table["checkpoint"]).agg(["mean", "min", "max"])

ticks = [0] + [t for t in (10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000)
              if linthresh <= t <= steps.max() * 1.5]


def step_axis(ax):
    """Symlog x: linear below the first non-zero checkpoint, so step 0 is shown, log above."""
    ax.set_xscale("symlog", linthresh=linthresh, linscale=0.5)
    ax.set_xlim(-0.15 * linthresh, steps.max() * 1.4)
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel("pretraining step (log above %g)" % linthresh)


def ensemble_plot(ax, col, color, label, style="o-", band=True):
    """Every member faint, the mean over members bold, the range over members as a band."""
    for m in members:
        t = table[table["member"] == m]
        ax.plot(t["checkpoint"], t[col], style, color=color, alpha=0.25, lw=0.8, ms=2)
    if band:
        ax.fill_between(steps, ens[(col, "min")], ens[(col, "max")], color=color, alpha=0.12, lw=0)
    ax.plot(steps, ens[(col, "mean")], style, color=color, lw=2.2, ms=4, label=label)


fig = plt.figure(figsize=(16, 8.5))
grid = fig.add_gridspec(2, 6)
axes = {"pass": fig.add_subplot(grid[0, 0:2]), "signal": fig.add_subplot(grid[0, 2:4]),
        "vgrad": fig.add_subplot(grid[0, 4:6]), "gain": fig.add_subplot(grid[1, 0:2]),
        "distance": fig.add_subplot(grid[1, 2:4]), "curves": fig.add_subplot(grid[1, 4:6])}
ax = axes["pass"]
for i, kk in enumerate(sorted(set(traj["pass_k"]) | {1})):
    ensemble_plot(ax, f"pass_at_{kk}", f"C{i}", f"pass@{kk}")
ensemble_plot(ax, "headroom", "k", f"headroom H = pass@{k} - pass@1", "s--")
ax.set(ylabel="eval probability (exact)", ylim=(-0.02, 1.02), title=f"pass@k and headroom ({len(members)} members)")
step_axis(ax)
ax.legend(fontsize="small")

ax = axes["signal"]
ensemble_plot(ax, "signal", "C0", r"$S_{alg}=\|E[\mathrm{update}]\|^2$ (R6)")
if "signal_grad_j" in table:
    ensemble_plot(ax, "signal_grad_j", "C5", r"$\|\nabla_\theta J\|^2$", ":", band=False)
ensemble_plot(ax, "signal_x_headroom", "C2", r"$S_{alg}\cdot H$", "^-", band=False)
log_scale(ax, "y")
ax.set(ylabel=r"signal [(pass@1 / param. unit)$^2$], $S\cdot H$", title="the algorithm's signal")
step_axis(ax)
ax.legend(fontsize="small")

ax = axes["vgrad"]
ensemble_plot(ax, "value_grad_norm", "C3", r"mean $\|\nabla_x V\|$ (prompt state)", "d-")
ensemble_plot(ax, "mean_pq1mq", "C4", r"mean $p(1-p)$", "v-")
log_scale(ax, "y")
ax.set(ylabel="value-gradient norm, p(1 - p)", title="prompt-state value gradient")
step_axis(ax)
ax.legend(fontsize="small")

ax = axes["gain"]
ensemble_plot(ax, "gain_mean", "C0",
              f"real gain, RL-seed mean ({int(table['n_seeds'].min())} seeds; bold = member mean, band = range)")
ensemble_plot(ax, "g_pred_loo", "C1", "G_pred (leave-one-checkpoint-out, per member)", "s--")
ens_peak = claim["details"]["ensemble_mean_gain_peak_checkpoint"]
if ens_peak is not None:
    ax.axvline(ens_peak, color="grey", lw=1, ls="--")
    ax.annotate(f"peak of the mean real gain: step {ens_peak}", (ens_peak, 0), xytext=(4, 4),
                textcoords="offset points", fontsize="small", color="grey")
ax.axhline(0, color="k", lw=0.6)
ax.set(ylabel="eval pass@1 gain (after - before RL)",
       title=f"real vs predicted RL gain ({rl['algo']}, {rl['optimizer']} lr {rl['lr']:g}, {rl['steps']} steps)")
step_axis(ax)
ax.legend(fontsize="small", loc="upper left")

ax = axes["distance"]  # R12: every predictor's distance to the real-gain plateau, per member and mean
dist = pd.DataFrame(claim["details"]["distance_to_plateau_by_member"]).T  # members x predictors
order = dist.mean().sort_values(kind="stable").index[::-1]
best = claim["details"]["best_baseline"]
rng = np.random.default_rng(0)  # jitter of the member dots only
for y, name in enumerate(order):
    color = "C1" if name == "G_pred" else ("C0" if name == best else "0.6")
    ax.barh(y, dist[name].mean(), color=color, alpha=0.45)
    ax.plot(dist[name] + rng.uniform(-0.12, 0.12, len(dist)), y + rng.uniform(-0.25, 0.25, len(dist)), ".",
            color=color, ms=3)
ax.set_yticks(range(len(order)), [f"{n} (best baseline)" if n == best else n for n in order], fontsize="x-small")
beats = claim["checks"]["beats_best_baseline"]
informative = claim["details"].get("informative_members", [])  # R29: members whose best baseline is off the plateau
need = claim["details"].get("members_to_resolve")
ax.set(xlabel="checkpoints from the real-gain plateau (bar: mean over members, dots: members)",
       title=f"G_pred vs its baselines: margin {beats['value']:.2g} "
             f"[{beats['interval'][0]:.2g}, {beats['interval'][1]:.2g}] ({beats['verdict']})\nover the "
             f"{len(informative)} of {len(dist)} members with the best baseline off the plateau (R29); "
             f"K for 5 such: {need if need is not None else 'none'}")
ax.title.set_fontsize("small")

ax = axes["curves"]
mean_curves = curves.groupby(["checkpoint", "step"], as_index=False)["reward"].mean()
cmap = plt.get_cmap("viridis")
for i, s in enumerate(steps):
    c = mean_curves[mean_curves["checkpoint"] == s]
    ax.plot(c["step"], c["reward"], color=cmap(i / max(1, len(steps) - 1)), lw=1.2, label=f"step {s}")
ax.set(xlabel="RL step", ylabel="training reward (exact match, mean over members and seeds)",
       title="RL training curves by checkpoint", ylim=(-0.02, 1.02))
ax.legend(fontsize="x-small", ncol=2, title="checkpoint", title_fontsize="x-small", loc="center right")
fig.tight_layout()
line3 = (f"real peak interior in {claim['details']['fraction_real_peak_interior']:.0%} of members; "
         f"permutation p (G_pred's checkpoint labels) {claim['details']['permutation_p_mean_distance']:.3g}; "
         "per member "
         "(real -> predicted peak step): " + ", ".join(f"{int(r.member)}: {int(r.real_peak_checkpoint)} -> "
                                                       f"{int(r.predicted_peak_checkpoint)}"
                                                       for r in peaks.itertuples())
         + f"; corruption rate rho = {claim['config']['corruption_rate']:g}")
save(fig, snakemake.output.pdf, snakemake.output.png, caption=record_summary(claim) + "\n" + line3)

