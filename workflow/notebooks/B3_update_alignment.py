# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # B3: the critic-free actor update is value-gradient ascent in expectation
#
# In parameter space: the exact grad_theta J, J = mean over prompts of V (all completions enumerated, float64),
# against the first-step update directions (beta = 0, PPO-clip ratio 1) of plain REINFORCE, REINFORCE with a
# leave-one-out baseline (RLOO) and GRPO (group-normalized advantages, scale_rewards = group), each from one
# batch of G sampled completions for every prompt, on each of the K pretraining members. The null: the same
# estimators on the same batches with the rewards permuted within each group (seeded), which removes any link
# between a completion and its reward. Left: mean cosine over batches per member (faint), ensemble mean (bold)
# and the null's 2.5-97.5% band (per-batch cosines, pooled over members). Right: the cosine of the direction
# averaged over all batches (unbiased estimators approach 1) and GRPO's turn away from RLOO (a finding).
#
# The verdict comes from the claim record (rule claim_B3, `vgh.costates.checks.check_b3`; SCIENCE.md R5): at the
# largest G, RLOO's mean cosine against its threshold and against the null's quantile, and its increase with G.

# %%
if "snakemake" not in globals():  # run by hand from the repo root against an existing results/
    from vgh.claims import standalone_job

    snakemake = standalone_job("B3")  # rule fig_B3's paths and params (workflow/claims.yaml), drawing to scratch/

# %%
import matplotlib.pyplot as plt
import numpy as np

from vgh.claims import record_summary
from vgh.costates.checks import alignment_means
from vgh.io import read_json, read_tables
from vgh.plotting import log_scale, save, set_style
from vgh.runtime import configure

log = configure(snakemake.threads, snakemake.log[0])
table = read_tables(snakemake.input.alignment)
claim = read_json(snakemake.input.claim)  # the record of rule claim_B3
thr = claim["config"]["thresholds"]
means = alignment_means(table)
log.info(record_summary(claim))
means

# %%
set_style()
algos = {"reinforce": ("REINFORCE (no baseline)", "C0"), "rloo": ("RLOO (leave-one-out)", "C1"),
         "grpo": ("GRPO (std-normalized)", "C2")}
q = thr["null_quantile"]
null = table[table["reward_permuted"].astype(bool) & (table["estimate"] == "batch")]
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.6))
for a, (label, color) in algos.items():
    m = means[means["algo"] == a]
    for _, s in m.groupby("member"):
        s = s.sort_values("group_size")
        ax1.plot(s["group_size"], s["mean"], "-", color=color, alpha=0.3, lw=0.8)
    ens = m.groupby("group_size")["mean"].mean()
    ax1.plot(ens.index, ens.values, "o-", color=color, lw=2, label=f"{label}: ensemble mean")
    md = table[(table["estimate"] == "mean_over_batches") & (table["algo"] == a)
               & ~table["reward_permuted"].astype(bool)].groupby("group_size")["cosine"].mean()
    ax2.plot(md.index, 1 - md.values, "o-", color=color, label=f"{label}: mean direction vs grad J")
nr = null[null["algo"] == "rloo"]
if len(nr):
    band = nr.groupby("group_size")["cosine"].quantile([1 - q, q]).unstack()
    ax1.fill_between(band.index, band[1 - q], band[q], color="0.5", alpha=0.25, lw=0,
                     label=f"null (RLOO, rewards permuted in groups): {1 - q:g}-{q:g} quantiles")
ax1.axhline(thr["min_rloo_cosine"], color="k", ls="--", lw=1,
            label=f"check (RLOO, largest G): {thr['min_rloo_cosine']:g}")
n_b = claim["details"]["n_batches"]
n_m = table["member"].nunique()
sizes = sorted(means["group_size"].unique())
ax1.set(xlabel="group size G (completions per prompt)", ylabel=r"cosine(update, $\nabla_\theta J$)",
        title=f"{n_m} members (faint): mean over {n_b} batches; ensemble (bold)")
g = means[means["algo"] == "grpo"].groupby("group_size")["cosine_to_rloo"].mean()
ax2.plot(g.index, 1 - g.values, "s:", color="C2", label="GRPO vs RLOO on the same batch (mean)")
log_scale(ax2, "y")
ax2.set(xlabel="group size G (completions per prompt)", ylabel="1 - cosine",
        title=f"direction averaged over {n_b} batches (unbiased: 1 - cos -> 0)")
for ax in (ax1, ax2):
    log_scale(ax, "x", base=2)
    if sizes and all(np.isfinite(sizes)):
        ax.set_xticks(sizes, [str(int(s)) for s in sizes])
    ax.legend(fontsize="x-small")
fig.tight_layout()
save(fig, snakemake.output.pdf, snakemake.output.png, caption=record_summary(claim))

