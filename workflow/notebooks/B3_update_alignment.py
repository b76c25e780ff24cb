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
# against the first-step updates (beta = 0, PPO-clip ratio 1) of plain REINFORCE, REINFORCE with a leave-one-out
# baseline (RLOO) and GRPO (group-normalized advantages, scale_rewards = group), on each of the K pretraining members
# (SCIENCE.md R14). Left: the cosine of each algorithm's *exact expected* update (the group-mates' reward levels
# summed out exactly) with grad J; REINFORCE's and RLOO's are grad J by an identity (cosine 1), GRPO's std
# normalization turns it away. Middle: what one batch of G completions per prompt buys, the mean per-batch cosine
# (the sample-budget curve), with the permuted-reward null's band. Right: the algorithm's update averaged over all
# batches at the largest G, per member, with its bootstrap interval over batches, against the permuted-reward
# null's bootstrap quantile.
#
# The verdict comes from the claim record (rule claim_B3, `vgh.costates.checks.check_b3`; SCIENCE.md R14, R27): at
# the largest G, the exact cosine of the algorithm Part C runs against its threshold (an angle of at most 25.8 degrees
# for 0.9); its batch mean's margin over the null is reported.

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
algo = claim["details"]["algo"]
real = ~table["reward_permuted"].astype(bool)
fig, (ax0, ax1, ax2) = plt.subplots(1, 3, figsize=(16, 4.6))
exact = table[(table["estimate"] == "exact_expectation") & real]
for a, (label, color) in algos.items():
    e = exact[exact["algo"] == a]
    for _, s in e.groupby("member"):
        s = s.sort_values("group_size")
        ax0.plot(s["group_size"], s["cosine"], "-", color=color, alpha=0.3, lw=0.8)
    ens = e.groupby("group_size")["cosine"].mean()
    ax0.plot(ens.index, ens.values, "o-" if a != "reinforce" else "x--", color=color, lw=2,
             label=f"{label}: ensemble mean")
    m = means[means["algo"] == a]
    for _, s in m.groupby("member"):
        s = s.sort_values("group_size")
        ax1.plot(s["group_size"], s["mean"], "-", color=color, alpha=0.3, lw=0.8)
    ens = m.groupby("group_size")["mean"].mean()
    ax1.plot(ens.index, ens.values, "o-", color=color, lw=2, label=f"{label}: ensemble mean")
ax0.axhline(thr["min_exact_cosine"], color="k", ls="--", lw=1,
            label=f"check ({algo}, largest G): {thr['min_exact_cosine']:g}")
null = table[table["reward_permuted"].astype(bool) & (table["estimate"] == "batch") & (table["algo"] == algo)]
if len(null):
    band = null.groupby("group_size")["cosine"].quantile([1 - q, q]).unstack()
    ax1.fill_between(band.index, band[1 - q], band[q], color="0.5", alpha=0.25, lw=0,
                     label=f"null ({algo}, rewards permuted in groups): {1 - q:g}-{q:g} quantiles")
n_b = claim["details"]["n_batches"]
n_m = table["member"].nunique()
sizes = sorted(means["group_size"].unique())
ax0.set(xlabel="group size G (completions per prompt)", ylabel=r"cosine(E[update], $\nabla_\theta J$)",
        title=f"exact expectation, {n_m} members (faint), ensemble (bold)")
ax1.set(xlabel="group size G (completions per prompt)", ylabel=r"mean cosine(update, $\nabla_\theta J$)",
        title=f"one batch: mean over {n_b} batches (sample budget)")
per = claim["details"]["per_member"]
if per:
    x = np.arange(len(per))
    c = np.array([r["batch_mean_cosine"] for r in per], float)
    lo = np.array([r["batch_mean_q025"] for r in per], float)
    hi = np.array([r["batch_mean_q975"] for r in per], float)
    color = algos.get(algo, ("", "C2"))[1]
    ax2.vlines(x, lo, hi, color=color, lw=2)  # the bootstrap's 2.5-97.5% quantiles (need not bracket the point)
    ax2.plot(x, c, "o", color=color, label=f"{algo}: mean over {n_b} batches, bootstrap 95%")
    ax2.plot(x, [r["null_quantile"] for r in per], "v", color="0.4",
             label=f"null: bootstrap {q:g} quantile of its batch mean")
    ax2.plot(x, [r["exact_cosine"] for r in per], "_", ms=14, color="k", label=f"{algo}: exact expectation")
    ax2.set_xticks(x, [str(r["member"]) for r in per])
    ax2.set(xlabel="member", ylabel=r"cosine with $\nabla_\theta J$",
            title=f"batch mean at G = {int(per[0]['group_size'])} vs the permuted-reward null")
for ax in (ax0, ax1):
    log_scale(ax, "x", base=2)
    if sizes and all(np.isfinite(sizes)):
        ax.set_xticks(sizes, [str(int(s)) for s in sizes])
for ax in (ax0, ax1, ax2):
    ax.legend(fontsize="x-small")
fig.tight_layout()
save(fig, snakemake.output.pdf, snakemake.output.png, caption=record_summary(claim))
