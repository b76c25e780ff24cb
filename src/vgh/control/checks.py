"""Claim checks A1-A3 on the experiment tables (thresholds passed in) and the summaries the figures plot."""
from __future__ import annotations

import numpy as np
import pandas as pd
from vgh.claims import Claim, check
from vgh.stats import finite_max, last, loglog_slope, ratio, spearman, strict_max, strict_min


# ---------------------------------------------------------------------------------------------- A1
def a1_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Mean, min and max over seeds of rel_error and per_rollout_var per (estimator, N)."""
    g = table.groupby(["estimator", "n_rollouts"])
    out = g.agg(rel_error=("rel_error", "mean"), rel_error_min=("rel_error", "min"),
                rel_error_max=("rel_error", "max"), per_rollout_var=("per_rollout_var", "mean"),
                per_rollout_var_min=("per_rollout_var", "min"), per_rollout_var_max=("per_rollout_var", "max"),
                n_seeds=("seed", "nunique"))
    return out.reset_index()


def check_a1(table: pd.DataFrame, thresholds: dict) -> Claim:
    """Both relative errors (mean over seeds) at the largest N <= max_rel_error; both log-log slopes in
    slope_range (`thresholds`: the config's claims.A1)."""
    max_rel_error, slope_range = thresholds["max_rel_error"], thresholds["slope_range"]
    s = a1_summary(table)
    n_max = int(table.n_rollouts.max())
    checks, details = {}, {"n_rollouts_max": n_max, "n_seeds": int(table.seed.nunique())}
    errs = {}
    for est in ("SF", "PD"):
        e = s[s.estimator == est].sort_values("n_rollouts")
        errs[est] = last(e.rel_error)
        slope = loglog_slope(e.n_rollouts, e.rel_error)
        checks[f"{est}_rel_error_at_N_max"] = check(errs[est], le=max_rel_error)
        checks[f"{est}_loglog_slope"] = check(slope, within=tuple(slope_range))
        details[f"{est}_per_rollout_var"] = float(table[table.estimator == est].per_rollout_var.mean())
        details[f"{est}_rel_error_by_N"] = dict(zip(e.n_rollouts.astype(int).astype(str), e.rel_error.astype(float)))
    details["variance_ratio_SF_over_PD"] = ratio(details["SF_per_rollout_var"], details["PD_per_rollout_var"])
    value = float(np.max(list(errs.values())))  # nan if either is nan
    return Claim(
        id="A1",
        statement="With additive noise, the score-function (REINFORCE/GRPO) and pathwise (BPTT) gradients "
                  "agree in expectation with the exact LQ policy gradient.",
        metric=f"max(SF, PD) relative error at N={n_max} (mean over seeds)",
        value=value,
        threshold=f"<= {max_rel_error:g}; log-log slopes in [{slope_range[0]:g}, {slope_range[1]:g}]",
        checks=checks,
        details=details,
    )


# ---------------------------------------------------------------------------------------------- A2
def _norms(df: pd.DataFrame, keys: list[str], a: str, b: str) -> pd.DataFrame:
    """Per group of `keys`: |a - b| and |b| over the coordinates."""
    d = df.assign(_diff2=(df[a] - df[b]) ** 2, _ref2=df[b] ** 2, _se2=df["se"] ** 2)
    g = d.groupby(keys)[["_diff2", "_ref2", "_se2"]].sum()
    return pd.DataFrame({"err": np.sqrt(g._diff2), "ref": np.sqrt(g._ref2), "se": np.sqrt(g._se2)}).reset_index()


def a2_lq_errors(table: pd.DataFrame) -> pd.DataFrame:
    """Pooled relative error sum_q |mean costate - grad V| / sum_q |grad V| per (seed, M)."""
    n = _norms(table, ["seed", "continuations", "probe"], "costate", "reference")
    g = n.groupby(["seed", "continuations"])[["err", "ref", "se"]].sum()
    return pd.DataFrame({"rel_error": g.err / g.ref, "rel_se": g.se / g.ref}).reset_index()


def _cosine_table(costate: pd.DataFrame, ref: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    m = costate.merge(ref, on=keys + ["coord"], suffixes=("_c", "_r"))
    m = m.assign(_cr=m.value_c * m.value_r, _cc=m.value_c ** 2, _rr=m.value_r ** 2,
                 _dd=(m.value_c - m.value_r) ** 2)
    g = m.groupby(keys)[["_cr", "_cc", "_rr", "_dd"]].sum()
    return pd.DataFrame({"cosine": g._cr / np.sqrt(g._cc * g._rr), "rel_diff": np.sqrt(g._dd / g._rr),
                         "ref_norm": np.sqrt(g._rr)}).reset_index()


def a2_pendulum_cosines(table: pd.DataFrame) -> pd.DataFrame:
    """Cosine and relative difference between the mean costate (every M) and the smoothing reference (every
    scale), per (seed, probe, M, scale)."""
    keys = ["seed", "probe"]
    c = table[table.method == "costate"].rename(columns={"size": "continuations"})
    r = table[table.method == "smoothing"]
    out = []
    for s, rs in r.groupby("scale"):
        for M, cm in c.groupby("continuations"):
            t = _cosine_table(cm[keys + ["coord", "value"]], rs[keys + ["coord", "value"]], keys)
            out.append(t.assign(continuations=int(M), scale=float(s)))
    if not out:  # no costate or no reference rows (a degenerate table)
        return pd.DataFrame(columns=keys + ["cosine", "rel_diff", "ref_norm", "continuations", "scale"], dtype=float)
    return pd.concat(out, ignore_index=True)


def a2_pendulum_noise_free(table: pd.DataFrame) -> pd.DataFrame:
    """Relative difference |v - g0| / |v| of the mean costate (largest M) and of the smoothing reference (every
    scale) from the noise-free pathwise gradient g0, per (seed, probe): how much the noise moves grad V."""
    keys = ["seed", "probe"]
    g0 = table[table.method == "noise_free"][keys + ["coord", "value"]]
    if g0.empty:
        return pd.DataFrame(columns=keys + ["against", "scale", "rel_diff"])
    c = table[table.method == "costate"]
    c = c[c["size"] == c["size"].max()]
    out = [_cosine_table(g0, c[keys + ["coord", "value"]], keys).assign(against="costate", scale=np.nan)]
    for s, rs in table[table.method == "smoothing"].groupby("scale"):
        out.append(_cosine_table(g0, rs[keys + ["coord", "value"]], keys).assign(against="smoothing", scale=float(s)))
    return pd.concat(out, ignore_index=True)[keys + ["against", "scale", "rel_diff", "cosine"]]


def check_a2(lq_table: pd.DataFrame, pendulum_table: pd.DataFrame, thresholds: dict,
             headline_scale: float) -> Claim:
    """LQ pooled relative error (mean over seeds) at the largest M <= max_lq_rel_error, and the pendulum cosine
    between the mean costate (largest M) and the smoothing reference (headline scale) >= min_pendulum_cosine
    for every probe state of every seed (the minimum, not a stacked cosine). `thresholds`: claims.A2."""
    max_lq_rel_error, min_pendulum_cosine = thresholds["max_lq_rel_error"], thresholds["min_pendulum_cosine"]
    lq = a2_lq_errors(lq_table)
    m_max = int(lq.continuations.max())
    lq_err = float(lq[lq.continuations == m_max].rel_error.mean())
    cos = a2_pendulum_cosines(pendulum_table)
    pm_max = finite_max(cos.continuations)
    pm_max = int(pm_max) if np.isfinite(pm_max) else pm_max
    at_max = cos[cos.continuations == pm_max]
    head = at_max[np.isclose(at_max.scale.astype(float), headline_scale)]
    min_cos = strict_min(head.cosine)
    checks = {
        "lq_rel_error_at_M_max": check(lq_err, le=max_lq_rel_error),
        "pendulum_min_cosine": check(min_cos, ge=min_pendulum_cosine),
    }
    by_scale = at_max.groupby("scale").agg(min_cosine=("cosine", "min"), median_cosine=("cosine", "median"),
                                           median_rel_diff=("rel_diff", "median"), max_rel_diff=("rel_diff", "max"))
    nf = a2_pendulum_noise_free(pendulum_table)
    details = {
        "pendulum_noise_free_median_rel_diff": {
            "costate": float(nf[nf.against == "costate"].rel_diff.median()) if len(nf) else float("nan"),
            **{f"smoothing_{s:g}": float(g.rel_diff.median()) for s, g in nf[nf.against == "smoothing"].groupby("scale")},
        },
        "lq_rel_error_by_M": lq.groupby("continuations").rel_error.mean().rename(index=str).to_dict(),
        "lq_continuations_max": m_max,
        "pendulum_continuations_max": pm_max,
        "pendulum_headline_scale": float(headline_scale),
        "pendulum_n_probe_states": int(len(head)),
        "pendulum_by_smoothing_scale": {f"{s:g}": row.to_dict() for s, row in by_scale.iterrows()},
        "pendulum_min_cosine_by_M": (cos[np.isclose(cos.scale.astype(float), headline_scale)]
                                     .groupby("continuations").cosine.min().rename(index=str).to_dict()),
    }
    return Claim(
        id="A2",
        statement="Costates lambda_t = dR/dx_t equal the value gradient grad V(x_t) in conditional expectation.",
        metric=f"LQ pooled relative error at M={m_max} (mean over seeds)",
        value=lq_err,
        threshold=f"<= {max_lq_rel_error:g}; pendulum min cosine >= {min_pendulum_cosine:g}",
        checks=checks,
        details=details,
    )


# ---------------------------------------------------------------------------------------------- A3
def a3_bias(table: pd.DataFrame) -> pd.DataFrame:
    """Per (seed, alpha, backward): pooled relative bias sum_q |mean - grad V| / sum_q |grad V| and the noise
    floor 3 sum_q SE_q / sum_q |grad V| (SE_q = norm of the per-coordinate standard errors)."""
    n = _norms(table, ["seed", "alpha", "backward", "probe"], "costate", "reference")
    g = n.groupby(["seed", "alpha", "backward"])[["err", "ref", "se"]].sum()
    out = pd.DataFrame({"rel_bias": g.err / g.ref, "floor": 3 * g.se / g.ref}).reset_index()
    radius = table.groupby("alpha").ms_radius.first()
    return out.assign(ms_radius=out.alpha.map(radius))


def check_a3(table: pd.DataFrame, thresholds: dict) -> Claim:
    """Means over seeds: reparameterized bias <= floor for every alpha; detached bias <= floor at alpha = 0,
    > floor for every alpha > 0, and Spearman(alpha, detached bias) >= min_spearman (`thresholds`: claims.A3)."""
    min_spearman = thresholds["min_spearman"]
    b = a3_bias(table).groupby(["alpha", "backward"])[["rel_bias", "floor", "ms_radius"]].mean().reset_index()
    rep = b[b.backward == "reparameterized"].sort_values("alpha")
    det = b[b.backward == "detached"].sort_values("alpha")
    rep_ratio = (rep.rel_bias / rep.floor).to_numpy()
    det_ratio = (det.rel_bias / det.floor).to_numpy()
    alphas = det.alpha.to_numpy()
    zero = alphas == 0
    rho = spearman(alphas, det.rel_bias)
    checks = {
        "reparameterized_max_bias_over_floor": check(strict_max(rep_ratio), le=1.0),
        "detached_bias_over_floor_at_alpha0": check(strict_max(det_ratio[zero]), le=1.0),
        "detached_min_bias_over_floor_alpha_gt0": check(strict_min(det_ratio[~zero]), ge=1.0),
        "detached_spearman_alpha_bias": check(rho, ge=min_spearman),
    }
    details = {
        "alphas": alphas.tolist(),
        "reparameterized_rel_bias": rep.rel_bias.tolist(),
        "reparameterized_floor": rep.floor.tolist(),
        "detached_rel_bias": det.rel_bias.tolist(),
        "detached_floor": det.floor.tolist(),
        "mean_square_radius": det.ms_radius.tolist(),
        "all_alphas_mean_square_stable": bool((det.ms_radius < 1).all()),
        "n_seeds": int(table.seed.nunique()),
    }
    return Claim(
        id="A3",
        statement="The additive-noise assumption is load-bearing: with state-dependent noise a backward pass that "
                  "treats the noise sample as a constant gives biased costates; the reparameterized one does not.",
        metric="Spearman(alpha, detached relative bias)",
        value=rho,
        threshold=(f">= {min_spearman:g}; detached bias > floor for alpha > 0 and <= floor at 0; "
                   f"reparameterized <= floor"),
        checks=checks,
        details=details,
    )

