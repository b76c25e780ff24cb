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
# batch of G sampled completions for every prompt. Left: cosine with grad_theta J, mean and 10-90% range
# over independent batches. Right: the cosine of the direction averaged over all batches (unbiased
# estimators approach 1) and how far GRPO's std normalization turns the direction away from RLOO's.
#
# Check (SCIENCE.md): RLOO's mean cosine at the largest G >= 0.9, and increasing in G (every step to a larger
# G raises the mean cosine). GRPO's shift is a finding, not a failure.

# %%
if "snakemake" not in globals():  # run by hand from the repo root against an existing results/
    from vgh.claims import standalone_job

    snakemake = standalone_job("B3")  # paths and params of rule fig_B3, from workflow/claims.yaml

# %%
import matplotlib.pyplot as plt
import pandas as pd

from vgh.lm.checks import alignment_means, check_b3
from vgh.plotting import log_scale, save, set_style
from vgh.runtime import configure

log = configure(snakemake.threads, snakemake.log[0])
table = pd.read_parquet(snakemake.input.table)
thr = snakemake.params.thresholds
claim = check_b3(table, thr)
means = alignment_means(table)
log.info(claim.summary())
means

# %%
set_style()
algos = {"reinforce": ("REINFORCE (no baseline)", "C0"), "rloo": ("RLOO (leave-one-out)", "C1"),
         "grpo": ("GRPO (std-normalized)", "C2")}
batches = table[table["estimate"] == "batch"]
band = batches.groupby(["algo", "group_size"])["cosine"].quantile([0.1, 0.9]).unstack().reset_index()
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.4))
for a, (label, color) in algos.items():
    m = means[means["algo"] == a].sort_values("group_size")
    b = band[band["algo"] == a].sort_values("group_size")
    ax1.errorbar(m["group_size"], m["mean"], yerr=m["se"], fmt="o-", color=color, capsize=3, label=label)
    ax1.fill_between(b["group_size"], b[0.1], b[0.9], color=color, alpha=0.15, lw=0)
    md = table[(table["estimate"] == "mean_over_batches") & (table["algo"] == a)].sort_values("group_size")
    ax2.plot(md["group_size"], 1 - md["cosine"], "o-", color=color, label=f"{label}: mean direction vs grad J")
ax1.axhline(thr["min_rloo_cosine"], color="k", ls="--", lw=1, label=f"check (RLOO, largest G): {thr['min_rloo_cosine']:g}")
n_b = claim.details["n_batches"]
sizes = sorted(means["group_size"].unique())
ax1.set(xlabel="group size G (completions per prompt)", ylabel=r"cosine(update, $\nabla_\theta J$)",
        title=f"one batch: mean $\\pm$ s.e. and 10-90% band over {n_b} batches")
g = means[means["algo"] == "grpo"].sort_values("group_size")
ax2.plot(g["group_size"], 1 - g["cosine_to_rloo"], "s:", color="C2", label="GRPO vs RLOO on the same batch (mean)")
log_scale(ax2, "y")
ax2.set(xlabel="group size G (completions per prompt)", ylabel="1 - cosine",
        title=f"direction averaged over {n_b} batches (unbiased: 1 - cos -> 0)")
for ax in (ax1, ax2):
    log_scale(ax, "x", base=2)
    ax.set_xticks(sizes, [str(s) for s in sizes])
    ax.legend(fontsize="small")
fig.tight_layout()
save(fig, snakemake.output.pdf, snakemake.output.png, caption=claim.summary())

# %%
claim.write(snakemake.output.claim, config={"costates": snakemake.params.costates, "claims": {"B3": thr}})
