# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # A3: the additive-noise assumption is load-bearing
#
# On the LQ system the noise scale now depends on the state, sigma(x) = sigma0 sqrt(1 + alpha |x|^2). The
# value stays exactly quadratic (the P_t recursion gains alpha sigma0^2 (tr R + tr B'P_{t+1}B) I), so
# grad V = -2 P_t x is still exact. Two backward passes over the same sampled rollouts:
# (i) detached, u = Kx + stopgrad(sigma(x) eps), what a sampler that is not reparameterized gives;
# (ii) reparameterized, u = Kx + sigma(x) eps, all differentiated.
#
# Relative bias = sum_q |mean costate - grad V| / sum_q |grad V| over the probe states; noise floor =
# 3 x the standard error of the mean costate, relative to |grad V| (pooled the same way).
# The verdict comes from the claim record (rule claim_A3, `vgh.control.checks.check_a3`; SCIENCE.md R0, R3): the
# detached bias grows with alpha and lies above the floor for alpha > 0, the reparameterized one stays within it.
# Every alpha stays below the mean-square stability limit (reported in the legend). The caption lists each
# sub-check's estimate, interval and verdict.

# %%
if "snakemake" not in globals():  # run by hand from the repo root against an existing results/
    from vgh.claims import standalone_job

    snakemake = standalone_job("A3")  # rule fig_A3's paths and params (workflow/claims.yaml), drawing to scratch/

# %%
import matplotlib.pyplot as plt
import numpy as np

from vgh.claims import record_summary
from vgh.control.summary import a3_bias
from vgh.io import read_json, read_table
from vgh.plotting import log_scale, save, set_style
from vgh.runtime import configure
from vgh.stats import finite_max

log = configure(snakemake.threads, snakemake.log[0])

table = read_table(snakemake.input.table)
claim = read_json(snakemake.input.claim)  # the record of rule claim_A3
log.info(record_summary(claim))
bias = a3_bias(table)
bias.groupby(["alpha", "backward"])[["rel_bias", "floor", "ms_radius"]].mean()

# %%
set_style()
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4.2), gridspec_kw={"width_ratios": [1.3, 1]})
styles = {"detached": ("C3", "o", r"(i) detached: $u = Kx + \mathrm{sg}(\sigma(x)\varepsilon)$"),
          "reparameterized": ("C0", "s", r"(ii) reparameterized: $u = Kx + \sigma(x)\varepsilon$")}
for mode, (col, mk, lab) in styles.items():
    b = bias[bias.backward == mode].groupby("alpha")
    ax1.plot(b.rel_bias.mean().index, b.rel_bias.mean(), marker=mk, color=col, label=lab)
    ax1.fill_between(b.rel_bias.mean().index, b.rel_bias.min(), b.rel_bias.max(), color=col, alpha=0.2, lw=0)
    ax1.plot(b.floor.mean().index, b.floor.mean(), ls="--", color=col, lw=1, label=f"noise floor (3 SE), {mode}")
radius = table.groupby("alpha").ms_radius.first()
log_scale(ax1, "y")
ax1.set(xlabel=r"noise state-dependence $\alpha$  [$\sigma(x)=\sigma_0\sqrt{1+\alpha\|x\|^2}$]",
        ylabel=r"relative bias $\|\bar\lambda-\nabla V\| / \|\nabla V\|$ (pooled)",
        title="bias of the mean costate (mean, min-max over seeds)")
ax1.legend(fontsize="x-small", loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2,
           title=r"mean-square stability radius at each $\alpha$ (must stay < 1): "
                 + ", ".join(f"{r:.3f}" for r in radius), title_fontsize="x-small")

# right: every coordinate of every probe state at the largest alpha
a_max = table.alpha.max()
d = table[table.alpha == a_max]
for mode, (col, mk, lab) in styles.items():
    dm = d[d.backward == mode]
    ax2.scatter(dm.reference, dm.costate, s=10, marker=mk, color=col, alpha=0.6, label=mode)
lim = finite_max(np.abs(np.r_[d.reference, d.costate])) * 1.05
ax2.plot([-lim, lim], [-lim, lim], "k--", lw=1, label="identity")
ax2.set(xlabel=r"exact value gradient $-2P^{\alpha}_t x$ (per coordinate)",
        ylabel="mean costate (per coordinate)", title=rf"$\alpha$ = {a_max:g}, M = {int(table.continuations.max())}")
ax2.legend(fontsize="small")
fig.tight_layout()
save(fig, snakemake.output.pdf, snakemake.output.png, caption=record_summary(claim))

