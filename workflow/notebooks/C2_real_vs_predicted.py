# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # C2: real vs predicted RL gain (the paper's Figure 1)
#
# One point per pretraining checkpoint: the real gain (eval pass@1 after - before critic-free RL, mean over
# seeds, bars = range over seeds) against the value-impact prediction G_pred = H (1 - exp(-kappa S / H)) with
# kappa fitted by least squares leave-one-checkpoint-out (the prediction for a checkpoint never sees its gain).
# Second panel: Spearman rho of the real gain with G_pred, S*H, S alone and H alone, with 95% bootstrap
# intervals over seeds (each checkpoint's seeds resampled with replacement; G_pred refitted in each resample).
#
# Check (SCIENCE.md): Spearman(real, G_pred) >= `claims.C2.min_spearman` (0.7 by default). Whether G_pred
# beats each single factor is a finding (with intervals), not part of the verdict. The RL learning rate was
# fixed in the config by the lr rule (results/trajectory/lr_sweep.md); the claim record says whether the
# configured lr is the one the rule picks.

# %%
if "snakemake" not in globals():  # run by hand from the repo root against an existing results/
    from vgh.claims import standalone_job

    snakemake = standalone_job("C2")  # paths and params of rule fig_C2, from workflow/claims.yaml

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from vgh.plotting import save, set_style
from vgh.runtime import configure
from vgh.trajectory.checks import check_c2
from vgh.trajectory.predictors import PREDICTORS
from vgh.trajectory.summary import sweep_verdict

log = configure(snakemake.threads, snakemake.log[0])
table = pd.read_parquet(snakemake.input.checkpoints).sort_values("checkpoint")
preds = pd.read_parquet(snakemake.input.predictors)
per_lr = pd.read_parquet(snakemake.input.sweep_summary)
thr, traj = snakemake.params.thresholds, snakemake.params.trajectory
sweep = sweep_verdict(per_lr, traj["rl"]["lr"])
claim = check_c2(preds, table, thr, sweep=sweep)
log.info(claim.summary())
if not sweep["configured_lr_is_rule_choice"]:
    log.warning("configured lr %g is not the lr rule's choice %s", sweep["configured_lr"], sweep["chosen_lr"])
preds

# %%
set_style()
fig, (ax1, ax1b, ax2) = plt.subplots(1, 3, figsize=(15, 4.8), gridspec_kw={"width_ratios": [1, 1, 0.9]})
x, y = table["g_pred_loo"].to_numpy(), table["gain_mean"].to_numpy()
steps = table["checkpoint"].to_numpy()
rho = preds.set_index("predictor").reindex(list(PREDICTORS)).loc["G_pred"]
vals = np.concatenate([x, table["gain_min"].to_numpy(), table["gain_max"].to_numpy()])
vals = vals[np.isfinite(vals)]
if not vals.size:  # nothing finite to place: default limits, and say so
    vals = np.array([0.0, 1.0])
    for ax in (ax1, ax1b):
        ax.text(0.5, 0.5, "no finite gains or predictions", transform=ax.transAxes, ha="center", color="0.4")
for ax, scale in ((ax1, "linear"), (ax1b, "log")):
    ax.scatter(x, y, c=np.arange(len(steps)), cmap="viridis", s=36, zorder=3)
    ax.errorbar(x, y, yerr=[y - table["gain_min"], table["gain_max"] - y], fmt="none", ecolor="grey", lw=1,
                capsize=2, zorder=2, label=f"range over {int(table['n_seeds'].min())} seeds")
    if scale == "linear":
        hi = vals.max() * 1.1
        lo = min(0.0, vals.min()) - 0.03 * hi
        big = y >= 0.05 * np.abs(y).max()  # the cluster near 0 is labelled in the log panel
        show = big
    else:  # early checkpoints gain ~1e-5: log axes (symlog where a value is <= 0)
        pos_min = vals[vals > 0].min() if (vals > 0).any() else 1e-6
        if (vals > 0).all():
            ax.set(xscale="log", yscale="log")
            lo, hi = pos_min / 2.0, vals.max() * 2.0
        else:
            ax.set_xscale("symlog", linthresh=pos_min)
            ax.set_yscale("symlog", linthresh=pos_min)
            lo, hi = vals.min() * 1.2, vals.max() * 2.0
        show = ~big
    for i, (xi, yi, st) in enumerate(zip(x, y, steps)):
        if show[i]:
            ax.annotate(str(st), (xi, yi), xytext=(5, 4), textcoords="offset points", fontsize="x-small")
    ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="identity")
    ax.set(xlim=(lo, hi), ylim=(lo, hi), xlabel="predicted gain G_pred (LOO; eval pass@1)",
           ylabel="real gain (eval pass@1, after - before RL)")
ax1.plot([], [], " ", label=f"Spearman ρ = {rho['spearman']:.2f} [{rho['spearman_lo']:.2f}, {rho['spearman_hi']:.2f}]")
ax1.legend(fontsize="small", loc="upper left")
ax1.set_title("real vs predicted RL gain (labels: pretraining step)")
ax1b.set_title("same, log axes")

p = preds.set_index("predictor").reindex(list(PREDICTORS))
pos = np.arange(len(p))
labels = {"G_pred": "G_pred (LOO)", "S*H": "S·H", "S": "S alone", "H": "H alone"}
ax2.bar(pos, p["spearman"], color=["C1", "C2", "C0", "C7"], alpha=0.85)
ax2.errorbar(pos, p["spearman"], yerr=[p["spearman"] - p["spearman_lo"], p["spearman_hi"] - p["spearman"]],
             fmt="none", ecolor="k", capsize=4, lw=1.2, label="95% bootstrap interval (seeds)")
ax2.axhline(thr["min_spearman"], color="r", ls="--", lw=1, label=f"check: G_pred ρ ≥ {thr['min_spearman']:g}")
ax2.axhline(0, color="k", lw=0.6)
ax2.set_xticks(pos, [labels[n] for n in p.index])
for xi, (name, r) in zip(pos, p.iterrows()):
    ax2.annotate(f"{r['spearman']:.2f}", (xi, r["spearman_hi"]), xytext=(0, 3), textcoords="offset points",
                 ha="center", fontsize="small")
ax2.set(ylabel="Spearman ρ with the real gain", ylim=(min(-0.1, p["spearman_lo"].min() - 0.05), 1.3),
        title="which predictor ranks the checkpoints?")
ax2.legend(fontsize="small", loc="upper center", ncol=2)
fig.tight_layout()
rl = traj["rl"]
line2 = (f"RL: {rl['algo']}, {rl['optimizer']} lr {rl['lr']:g} (lr rule picks {sweep['chosen_lr']}), "
         f"{rl['steps']} steps, G = {rl['num_generations']}, {rl['prompts_per_step']} prompts/step; "
         f"kappa (all checkpoints) = {table['kappa_fit'].iloc[0]:.3g}")
save(fig, snakemake.output.pdf, snakemake.output.png, caption=claim.caption() + "\n" + line2)

# %%
claim.write(snakemake.output.claim, config={"trajectory": traj, "claims": {"C2": thr}})
