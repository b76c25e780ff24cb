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
# enumerated, float64). The straight-through pathwise costate lambda_PD (forward on hard sampled tokens,
# backward through their soft versions) is biased; its bias |E[lambda_PD] - g*| is computed exactly (one
# backward over all completions weighted by their probabilities). The score-function costate lambda_SF
# (leave-one-out baseline) is unbiased, so its error is shown at a fixed sample budget N.
# Entropy: mean per-token entropy of the restricted policy, an exact expectation over completions.
# One point per (checkpoint, temperature); error = pooled relative error sum_q |E[lambda] - g*_q| / sum_q |g*_q|.
#
# Check (SCIENCE.md): Spearman(E[lambda_PD] error, entropy) >= 0.8, and at the lowest temperature the
# E[lambda_PD] error of every checkpoint <= 0.1 (the maximum over checkpoints is checked; a checkpoint whose
# policy is still far from deterministic at the lowest temperature can fail it). Every prompt is kept; those
# whose error stays large at the lowest temperature are listed in the claim record. Right panel: the
# mechanism. Along the greedy completion, a flip of an early digit that moves the model's later digits (a
# carry chain in the model's own behaviour) is invisible to straight-through, which sees a flip only through
# the soft token's linear effect; the per-prompt error follows the fraction of flip probability with that
# property (`vgh.lm.measure.flip_analysis`).

# %%
if "snakemake" not in globals():  # run by hand from the repo root against an existing results/
    from vgh.claims import standalone_job

    snakemake = standalone_job("B1")  # paths and params of rule fig_B1, from workflow/claims.yaml

# %%
import matplotlib.pyplot as plt
import numpy as np

from vgh.io import read_tables
from vgh.lm.checks import check_b1
from vgh.plotting import log_scale, save, set_style
from vgh.runtime import configure

log = configure(snakemake.threads, snakemake.log[0])
summary = read_tables(snakemake.input.summaries).sort_values(["checkpoint", "temperature"])
prompts = read_tables(snakemake.input.prompts)
thr = snakemake.params.thresholds
claim = check_b1(summary, prompts, thr)
log.info(claim.summary())
for o in claim.details["prompts_lowest_temperature_above_limit"]:
    log.info("large error at the lowest temperature: %s", o)
summary[["checkpoint", "temperature", "entropy", "gap", "pd_error", "pd_error_median", "sf_error", "p_answer"]]

# %%
set_style()
from matplotlib.lines import Line2D

ckpts = sorted(summary["checkpoint"].unique())
colors = {c: f"C{i}" for i, c in enumerate(ckpts)}
q = prompts.groupby(["checkpoint", "temperature"])
iqr = {name: q[f"{name}_rel_error"].quantile([0.25, 0.75]).unstack().reindex(columns=[0.25, 0.75]).reset_index()
       for name in ("pd", "sf")}

fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
n_sf = snakemake.params.costates["sample_budget"]
for ax, name, title in ((axes[0], "pd", r"straight-through: bias of $E[\lambda_{PD}]$ (exact)"),
                        (axes[1], "sf", rf"score function: one $\lambda_{{SF}}$ estimate at N = {n_sf}")):
    for c in ckpts:
        s = summary[summary["checkpoint"] == c]
        b = s[["checkpoint", "temperature"]].merge(iqr[name], on=["checkpoint", "temperature"], how="left")
        ax.plot(s["entropy"], s[f"{name}_error"], "o-", color=colors[c])
        ax.plot(s["entropy"], s[f"{name}_error_median"], "x:", color=colors[c], ms=5, lw=1)
        ax.fill_between(s["entropy"], b[0.25], b[0.75], color=colors[c], alpha=0.12, lw=0)
        for _, r in s.iterrows():
            ax.annotate(f"{r.temperature:g}", (r.entropy, r[f"{name}_error"]), textcoords="offset points",
                        xytext=(3, 4), fontsize=6, color=colors[c])
    log_scale(ax, "y")
    ax.set(xlabel="mean per-token policy entropy (nats)", title=title,
           ylabel=r"relative error of $E[\lambda]$ vs $g^*$" if name == "pd" else r"relative error vs $g^*$")
    ax.text(0.98, 0.03, f"Spearman(pooled error, entropy) = "
            f"{claim.value if name == 'pd' else claim.details['spearman_sf_error_entropy']:.3f}",
            transform=ax.transAxes, ha="right", fontsize="small")
axes[0].axhline(thr["max_pd_error_lowest_temperature"], color="k", ls="--", lw=1)
handles = [Line2D([], [], color=colors[c], marker="o", label=f"step {c}") for c in ckpts] + [
    Line2D([], [], color="gray", marker="o", label=r"pooled $\sum_q\|E\lambda-g^*_q\|/\sum_q\|g^*_q\|$"),
    Line2D([], [], color="gray", marker="x", ls=":", label="median prompt (band: 25-75%)"),
    Line2D([], [], color="k", ls="--", label=f"check at the lowest tau: {thr['max_pd_error_lowest_temperature']:g}")]
axes[0].legend(handles=handles, fontsize="x-small", loc="lower right", bbox_to_anchor=(1, 0.08),
               title="numbers: temperature tau", title_fontsize="x-small")

tau_min = claim.details["lowest_temperature"]
low = prompts[np.isclose(prompts["temperature"], tau_min)]
ax = axes[2]
floor = 1e-12
for c in ckpts:
    for carry, marker in ((False, "o"), (True, "^")):
        d = low[(low["carry"] == carry) & (low["checkpoint"] == c)]
        ax.scatter(d["moving_flip_fraction"].clip(lower=floor), d["pd_rel_error"].clip(lower=floor), marker=marker,
                   s=22, edgecolors=colors[c], facecolors=colors[c] if not carry else "none", alpha=0.8)
ax.axhline(thr["max_pd_error_lowest_temperature"], color="k", ls="--", lw=1)
log_scale(ax, "xy")
ax.set(xlabel=f"fraction of flip probability that moves later digits (floor {floor:g})",
       ylabel=r"$\|E[\lambda_{PD}]-g^*\|/\|g^*\|$ per prompt",
       title=f"every prompt at tau = {tau_min:g}: Spearman = "
             f"{claim.details['spearman_pd_error_moving_flip_fraction_lowest_temperature']:.2f}")
ax.legend(handles=[Line2D([], [], color="gray", marker="o", ls="", label="no carry"),
                   Line2D([], [], color="gray", marker="^", ls="", mfc="none", label="carry")],
          fontsize="x-small", loc="lower right")
fig.tight_layout()
save(fig, snakemake.output.pdf, snakemake.output.png, caption=claim.summary())

# %%
claim.write(snakemake.output.claim, config={"costates": snakemake.params.costates, "claims": {"B1": thr}})
