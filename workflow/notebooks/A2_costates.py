# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # A2: costates equal the value gradient in conditional expectation
#
# The costate lambda_t = dR/dx_t is what backprop through a sampled rollout deposits at the state (policy
# inside the derivative, noise held fixed). Averaged over M continuations from the same state (t, x) with
# fresh noise, it should equal the value gradient grad V_t(x).
#
# - LQ: the reference is exact, grad V_t(x) = -2 P_t x. Pooled relative error
#   sum_q |mean costate - grad V| / sum_q |grad V| over the probe states, per seed.
# - Pendulum (no closed form): the reference is Gaussian smoothing of the start state with antithetic pairs
#   and independent action noise (it never differentiates through the rollout); cosine per probe state.
#
# The verdict comes from the claim record (rule claim_A2, `vgh.control.checks.check_a2`; SCIENCE.md R0, R2): the LQ
# error at the largest M, the pendulum's minimum cosine at the headline smoothing scale (the first in the config),
# and R2's power and closeness of the noise-free pathwise gradient g0 (BPTT through the sigma = 0 rollout).
# Panel (d) shows how the pendulum agreement moves with the smoothing scale, (e) both distances per probe state,
# (f) the two R2 ratios per seed.

# %%
if "snakemake" not in globals():  # run by hand from the repo root against an existing results/
    from vgh.claims import standalone_job

    snakemake = standalone_job("A2")  # rule fig_A2's paths and params (workflow/claims.yaml), drawing to scratch/

# %%
import matplotlib.pyplot as plt
import numpy as np

from vgh.claims import record_summary
from vgh.control.summary import (
    a2_lq_errors,
    a2_pendulum_cosines,
    a2_pendulum_distances,
    a2_pendulum_noise_free,
    a2_pendulum_power,
)
from vgh.io import read_json, read_table
from vgh.plotting import log_scale, save, set_style
from vgh.runtime import configure
from vgh.stats import finite_max

log = configure(snakemake.threads, snakemake.log[0])

lq = read_table(snakemake.input.lq)
pen = read_table(snakemake.input.pendulum)
claim = read_json(snakemake.input.claim)  # the record of rule claim_A2
thr = claim["config"]["thresholds"]
scales = claim["config"]["smoothing_scales"]
headline = scales[0]
log.info(record_summary(claim))
lq_err = a2_lq_errors(lq)
cos = a2_pendulum_cosines(pen)
m_max = claim["details"]["pendulum_continuations_max"]
by_scale = (cos[cos.continuations == m_max].groupby("scale")
            .agg(min_cosine=("cosine", "min"), median_cosine=("cosine", "median"),
                 median_rel_diff=("rel_diff", "median"), max_rel_diff=("rel_diff", "max")))
log.info("pendulum, mean costate at M = %s vs smoothing reference, by smoothing scale:\n%s", m_max,
         by_scale.to_string())
by_scale

# %%
set_style()
fig, axes = plt.subplots(2, 3, figsize=(15, 9))
(ax_lq, ax_pen, ax_d), (ax_m, ax_s, ax_r) = axes

# (a) LQ: every coordinate of every probe state at the largest M
d = lq[lq.continuations == lq.continuations.max()]
ax_lq.errorbar(d.reference, d.costate, yerr=d.se.where(d.se >= 0), fmt="o", ms=3, alpha=0.7, color="C0", elinewidth=0.8)
lim = finite_max(np.abs(np.r_[d.reference, d.costate])) * 1.05
ax_lq.plot([-lim, lim], [-lim, lim], "k--", lw=1, label="identity")
ax_lq.set(xlabel=r"exact value gradient $-2P_t x$ (per coordinate)",
          ylabel=r"mean costate $\bar\lambda_t$ (per coordinate)",
          title=f"LQ, M = {int(d.continuations.iloc[0])} continuations, {d.seed.nunique()} seeds")
ax_lq.legend()

# (b) pendulum: mean costate (largest M) vs smoothing reference (headline scale)
c = pen[(pen.method == "costate") & (pen["size"] == pen[pen.method == "costate"]["size"].max())]
r = pen[(pen.method == "smoothing") & np.isclose(pen.scale, headline)]
m = c.merge(r, on=["seed", "probe", "coord"], suffixes=("_c", "_r"))
for k, name in ((0, r"$\partial V/\partial\theta$"), (1, r"$\partial V/\partial\omega$")):
    mk = m[m.coord == k]
    ax_pen.errorbar(mk.value_r, mk.value_c, xerr=mk.se_r.where(mk.se_r >= 0), yerr=mk.se_c.where(mk.se_c >= 0),
                    fmt="o", ms=3, alpha=0.7, elinewidth=0.8, color=f"C{k + 1}", label=name)
lim = finite_max(np.abs(np.r_[m.value_r, m.value_c])) * 1.2
ax_pen.plot([-lim, lim], [-lim, lim], "k--", lw=1, label="identity")
ax_pen.set_xscale("symlog", linthresh=1)
ax_pen.set_yscale("symlog", linthresh=1)
ax_pen.set(xlabel=f"smoothing reference, s = {headline:g} (per coordinate, symlog)",
           ylabel="mean costate (per coordinate, symlog)",
           title=f"pendulum, M = {m_max}; per-seed min cosine, mean "
                 f"{claim['checks']['pendulum_min_cosine']['value']:.4f} over {len(m) // 2} probe states")
ax_pen.legend(fontsize="small")

# (c) relative error vs M
g = lq_err.groupby("continuations").rel_error
ax_m.plot(g.mean().index, g.mean(), "o-", color="C0", label="LQ: pooled error vs exact $-2P_tx$")
ax_m.fill_between(g.mean().index, g.min(), g.max(), color="C0", alpha=0.2, lw=0)
ch = cos[np.isclose(cos.scale, headline)].groupby("continuations").rel_diff
ax_m.plot(ch.median().index, ch.median(), "s-", color="C1",
          label=f"pendulum: median |costate - ref|/|ref|, s = {headline:g}")
mm = np.array(sorted(lq_err.continuations.unique()), float)
ax_m.plot(mm, g.mean().iloc[0] * (mm / mm[0]) ** -0.5, ":", color="grey", label=r"$\propto M^{-1/2}$")
ax_m.axhline(thr["max_lq_rel_error"], color="k", ls="--", lw=1, label=f"LQ check: {thr['max_lq_rel_error']:g}")
log_scale(ax_m, "xy")
ax_m.set(xlabel="continuations M per probe state", ylabel="relative error",
         title="relative error vs M (LQ: mean, min-max over seeds)")
ax_m.legend(fontsize="small")

# (d) pendulum vs smoothing scale: 1 - cosine of every probe state, median relative difference
at = cos[cos.continuations == m_max]
for i, s in enumerate(sorted(at.scale.unique())):
    a = at[np.isclose(at.scale, s)]
    jitter = s * (1 + 0.06 * (np.linspace(-1, 1, len(a))))
    ax_s.scatter(jitter, 1 - a.cosine, s=12, color="C2", alpha=0.7,
                 label="1 - cosine(costate, ref), each probe state" if i == 0 else None)
sc = at.groupby("scale")
ax_s.plot(sc.rel_diff.median().index, sc.rel_diff.median(), "D-", color="C3", label="median |costate - ref|/|ref|")
ax_s.plot(sc.rel_diff.max().index, sc.rel_diff.max(), "v:", color="C3", label="max |costate - ref|/|ref|")
nf = a2_pendulum_noise_free(pen)
nfs = nf[nf.against == "smoothing"].groupby("scale").rel_diff.median()
if len(nfs):
    ax_s.plot(nfs.index, nfs, "x--", color="grey", label="control: median |ref - noise-free gradient|/|ref|")
ax_s.axhline(1 - thr["min_pendulum_cosine"], color="k", ls="--", lw=1,
             label=f"check: 1 - cosine <= {1 - thr['min_pendulum_cosine']:.2g}")
log_scale(ax_s, "x")
ax_s.set_xticks(scales, [f"{x:g}" for x in scales])
ax_s.minorticks_off()
log_scale(ax_s, "y")
ax_s.set(xlabel="smoothing scale s (rad, rad/s)",
         ylabel="disagreement with the mean costate",
         title=f"pendulum reference vs smoothing scale (M = {m_max})")
ax_s.legend(fontsize="x-small", loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)

# (e) R2 per probe state: |g0 - r| and |mean costate - r| (largest M, headline scale), with 3 SE of r
dist = a2_pendulum_distances(pen, headline).sort_values(["seed", "probe"]).reset_index(drop=True)
xs = np.arange(len(dist))
ax_d.plot(xs, dist.g0_minus_ref, "o", color="grey", label=r"$\|g_0 - r\|$ (noise-free BPTT vs reference)")
ax_d.plot(xs, dist.costate_minus_ref, "s", color="C1", label=r"$\|\bar\lambda - r\|$ (mean costate vs reference)")
ax_d.plot(xs, 3 * dist.ref_se, "_", color="k", ms=12, label=r"3 SE of $r$ (antithetic pairs)")
log_scale(ax_d, "y")
ax_d.set(xlabel="probe state (seed-major)", ylabel="distance from the smoothing reference r",
         title=f"pendulum, per probe state (M = {m_max}, s = {headline:g})")
ax_d.legend(fontsize="x-small")

# (f) R2 per seed, pooled over its probe states: power |g0 - r| / 3 SE and closeness |costate - r| / |g0 - r|
pw = a2_pendulum_power(pen, headline)
for col, key, mk in (("C4", "pendulum_power", "o"), ("C1", "pendulum_closeness", "s")):
    c_ = claim["checks"][key]
    vals = pw["power" if key == "pendulum_power" else "closeness"].to_numpy(float)
    ax_r.plot(pw.seed, vals, mk, color=col,
              label=f"{key.split('_')[1]} = {c_['value']:.3g} [{c_['interval'][0]:.3g}, {c_['interval'][1]:.3g}] "
                    f"({c_['threshold']}) {c_['verdict']}")
ax_r.axhline(1.0, color="k", ls="--", lw=1, label="threshold 1")
log_scale(ax_r, "y")
ax_r.set(xlabel="seed", ylabel="ratio", title="pendulum R2 sub-checks per seed (pooled over probe states)")
ax_r.legend(fontsize="x-small")
fig.tight_layout()
save(fig, snakemake.output.pdf, snakemake.output.png, caption=record_summary(claim))
