# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # C2: real vs predicted RL gain (the paper's Figure 1), over the ensemble
#
# One point per (member, checkpoint): the real gain (eval pass@1 after - before critic-free RL, mean over RL
# seeds, bars = range over seeds) against the value-impact prediction G_pred = H (1 - exp(-kappa S_alg / H)) with
# kappa fitted per member leave-one-checkpoint-out (the prediction for a checkpoint never sees its gain); members
# faint, the ensemble mean per checkpoint bold. Second panel: Spearman rho of the real gain with G_pred, S*H, S
# alone and H alone (members as dots), with 95% nested bootstrap intervals (members, then RL seeds within each
# drawn member, G_pred refitted), and Delta = rho(G_pred) - max(rho(S), rho(H)) from the same resamples.
#
# The verdict comes from the claim record (rule claim_C2, `vgh.trajectory.checks.check_c2`; docs/SCIENCE.md R0,
# R8, R9): Spearman(real, G_pred), Delta, and whether the configured lr is the lr rule's choice for every member
# (results/trajectory/lr_sweep.md).

# %%
if "snakemake" not in globals():  # run by hand from the repo root against an existing results/
    from vgh.claims import standalone_job

    snakemake = standalone_job("C2")  # rule fig_C2's paths and params (workflow/claims.yaml), drawing to scratch/

# %%
import matplotlib.pyplot as plt
import numpy as np

from vgh.claims import record_summary
from vgh.io import read_json, read_table
from vgh.plotting import log_scale, save, set_style, symlog_scale
from vgh.runtime import configure
from vgh.trajectory.predictors import ENSEMBLE_STATISTICS, PREDICTORS

log = configure(snakemake.threads, snakemake.log[0])
table = read_table(snakemake.input.checkpoints).sort_values(["member", "checkpoint"])
mp = read_table(snakemake.input.member_predictors)
ens = read_table(snakemake.input.ensemble)
claim = read_json(snakemake.input.claim)  # the record of rule claim_C2
thr, rl = claim["config"]["thresholds"], snakemake.params.rl
log.info(record_summary(claim))
if not all(claim["details"]["lr_rule_by_member"].values()):
    log.warning("configured lr %g is not the lr rule's choice for every member: %s", rl["lr"],
                claim["details"]["lr_rule_by_member"])
ens

# %%
set_style()
fig, (ax1, ax1b, ax2) = plt.subplots(1, 3, figsize=(15, 4.8), gridspec_kw={"width_ratios": [1, 1, 0.9]})
members = sorted(table["member"].unique())
mean = table.select_dtypes("number").groupby(table["checkpoint"]).mean()
x_all, y_all = table["g_pred_loo"].to_numpy(), table["gain_mean"].to_numpy()
vals = np.concatenate([x_all, table["gain_min"].to_numpy(), table["gain_max"].to_numpy()])
vals = vals[np.isfinite(vals)]
if not vals.size:  # nothing finite to place: default limits, and say so
    vals = np.array([0.0, 1.0])
    for ax in (ax1, ax1b):
        ax.text(0.5, 0.5, "no finite gains or predictions", transform=ax.transAxes, ha="center", color="0.4")
e = ens.set_index("statistic").reindex(list(ENSEMBLE_STATISTICS))
for ax, scale in ((ax1, "linear"), (ax1b, "log")):
    for m in members:
        t = table[table["member"] == m]
        x, y = t["g_pred_loo"].to_numpy(), t["gain_mean"].to_numpy()
        ax.errorbar(x, y, yerr=[np.clip(y - t["gain_min"], 0, None), np.clip(t["gain_max"] - y, 0, None)], fmt="o",
                    ms=3, color="grey", alpha=0.35, lw=0.8, capsize=1.5, zorder=2,
                    label=f"members ({len(members)}; bars = range over {int(table['n_seeds'].min())} RL seeds)"
                    if m == members[0] else None)
    ax.scatter(mean["g_pred_loo"], mean["gain_mean"], c=np.arange(len(mean)), cmap="viridis", s=60,
               edgecolor="k", zorder=3, label="ensemble mean per checkpoint")
    if scale == "linear":
        hi = vals.max() * 1.1
        lo = min(0.0, vals.min()) - 0.03 * abs(hi)
    else:  # early checkpoints gain ~1e-5: log axes (symlog where a value is <= 0, one label per decade and 0)
        if (vals > 0).all():
            log_scale(ax, "xy")
            lo, hi = vals.min() / 2.0, vals.max() * 2.0
        else:
            linthresh = symlog_scale(ax, "xy", vals)
            lo, hi = min(vals.min() * 1.2, -linthresh), vals.max() * 2.0
    if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
        lo, hi = -1.0, 1.0
    for st, (xi, yi) in zip(mean.index, zip(mean["g_pred_loo"], mean["gain_mean"])):
        if np.isfinite(xi) and np.isfinite(yi):
            ax.annotate(str(st), (xi, yi), xytext=(5, 4), textcoords="offset points", fontsize="x-small")
    ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="identity")
    ax.set(xlim=(lo, hi), ylim=(lo, hi), xlabel="predicted gain G_pred (LOO; eval pass@1)",
           ylabel="real gain (eval pass@1, after - before RL)")
g = e.loc["G_pred"]
ax1.plot([], [], " ", label=f"Spearman ρ = {g['estimate']:.2f} [{g['lo']:.2f}, {g['hi']:.2f}] (mean of members)")
ax1.legend(fontsize="x-small", loc="upper left")
ax1.set_title("real vs predicted RL gain (labels: pretraining step)")
ax1b.set_title("same, log axes")

pos = np.arange(len(e))
labels = {"G_pred": "G_pred (LOO)", "S*H": "S·H", "S": "S alone", "H": "H alone", "delta": "Δ = G_pred −\nbest single"}
est = e["estimate"].to_numpy(float)
lo_, hi_ = e["lo"].to_numpy(float), e["hi"].to_numpy(float)
ax2.bar(pos, np.nan_to_num(est), color=["C1", "C2", "C0", "C7", "C3"], alpha=0.85)
ok = np.isfinite(est) & np.isfinite(lo_) & np.isfinite(hi_)
ax2.errorbar(pos[ok], est[ok], yerr=[np.clip(est[ok] - lo_[ok], 0, None), np.clip(hi_[ok] - est[ok], 0, None)],
             fmt="none", ecolor="k", capsize=4, lw=1.2, label="95% nested bootstrap (members, RL seeds)")
rho = mp.pivot(index="member", columns="predictor", values="spearman").reindex(columns=list(PREDICTORS))
per_member = {**{n: rho[n].to_numpy(float) for n in PREDICTORS},
              "delta": (rho["G_pred"] - rho[["S", "H"]].max(axis=1)).to_numpy(float)}
for i, name in enumerate(e.index):
    ax2.plot(np.full(len(per_member[name]), i) + 0.25, per_member[name], ".", color="k", alpha=0.5, ms=4,
             label="members" if i == 0 else None)
ax2.axhline(thr["min_spearman"], color="r", ls="--", lw=1, label=f"check: G_pred ρ ≥ {thr['min_spearman']:g}")
ax2.axhline(0, color="k", lw=0.6)
ax2.set_xticks(pos, [labels[n] for n in e.index], fontsize="small")
finite = np.concatenate([lo_[np.isfinite(lo_)], est[np.isfinite(est)], [-0.1]])
ax2.set(ylabel="Spearman ρ with the real gain (Δ: difference)", ylim=(min(-0.1, finite.min() - 0.05), 1.3),
        title="which predictor ranks the checkpoints?")
ax2.legend(fontsize="x-small", loc="upper center", ncol=2)
fig.tight_layout()
line3 = (f"RL: {rl['algo']}, {rl['optimizer']} lr {rl['lr']:g}, {rl['steps']} steps, G = {rl['num_generations']}, "
         f"{rl['prompts_per_step']} prompts/step; lr rule's choice per member: "
         f"{claim['details']['lr_rule_by_member']}; rho(S*H) = {claim['details']['spearman_S_times_H']:.3g}")
save(fig, snakemake.output.pdf, snakemake.output.png, caption=record_summary(claim) + "\n" + line3)

