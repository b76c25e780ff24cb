"""Claim checks A1-A3 on the experiment tables (thresholds passed in), on the summaries of `vgh.control.summary`."""
from __future__ import annotations

import numpy as np
import pandas as pd

from vgh.claims import Finding
from vgh.ensemble import INCONCLUSIVE, PASS, subcheck
from vgh.stats import finite_max, last, loglog_slope, ratio, spearman, strict_max, strict_min

from .summary import a1_summary, a2_lq_errors, a2_pendulum_cosines, a2_pendulum_noise_free, a2_pendulum_power, a3_bias


# ---------------------------------------------------------------------------------------------- A1
def _seeds(table: pd.DataFrame) -> list:
    return sorted(table.seed.dropna().unique()) if "seed" in table else []


def error_over_noise(rel_error, per_rollout_var, n_rollouts) -> np.ndarray:
    """R26's z = N r^2 / v: the squared relative error against the squared error the noise alone gives in
    expectation at N rollouts (v = tr Cov(per-rollout term) / |grad J|^2, measured from the same rollouts); 1 in
    expectation for an unbiased estimator, 1 + N beta^2 / v with a bias beta |grad J|. nan where v is not positive."""
    r, v, n = (np.asarray(a, float) for a in (rel_error, per_rollout_var, n_rollouts))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(v > 0, n * r ** 2 / v, np.nan)


def check_a1(table: pd.DataFrame, thresholds: dict) -> Finding:
    """A1 over the ensemble of `control.seeds` (R20) under R26: per seed, at the largest N, the SF and PD relative
    errors (<= max_rel_error) and each estimator's squared error against what its noise explains,
    z = N r^2 / v (`error_over_noise`, <= max_error_over_noise: no bias beyond about one standard error);
    each sub-check is R21's sign test over seeds (`vgh.ensemble`: the count of seeds where it holds).
    Reported: the per-seed log-log slopes of error vs N and their count in slope_range (R15's statistic), and each
    estimator's median standard error sqrt(v / N) at the largest N (what R26 resolves).
    Headline: the SF relative error (the estimator that needs the most rollouts).
    `thresholds`: the config's claims.A1."""
    max_rel_error, slope_range = thresholds["max_rel_error"], thresholds["slope_range"]
    max_z = thresholds["max_error_over_noise"]
    s = a1_summary(table)
    n_max = int(table.n_rollouts.max()) if len(table) else 0
    seeds = _seeds(table)
    checks, details = {}, {"n_rollouts_max": n_max, "n_seeds": len(seeds), "seeds": [int(x) for x in seeds]}
    per_seed_err, per_seed_z = {}, {}
    lo, hi = slope_range
    for est in ("SF", "PD"):
        d = table[table.estimator == est]
        at_max = [d[(d.seed == k) & (d.n_rollouts == n_max)] for k in seeds]
        per_seed_err[est] = [last(a.rel_error) for a in at_max]
        var = [last(a.per_rollout_var) for a in at_max]
        per_seed_z[est] = error_over_noise(per_seed_err[est], var, n_max)
        slopes = [loglog_slope(*d[d.seed == k].sort_values("n_rollouts")[["n_rollouts", "rel_error"]].to_numpy().T)
                  for k in seeds]
        e = s[s.estimator == est].sort_values("n_rollouts")
        details[f"{est}_per_rollout_var"] = float(d.per_rollout_var.mean())
        details[f"{est}_rel_error_by_N"] = dict(zip(e.n_rollouts.astype(int).astype(str), e.rel_error.astype(float)))
        details[f"{est}_standard_error_at_N_max"] = float(np.nanmedian(np.sqrt(np.asarray(var, float) / n_max))) \
            if n_max and len(var) else float("nan")
        details[f"{est}_loglog_slopes"] = [float(v) for v in slopes]
        details[f"{est}_slopes_in_range"] = int(sum(lo <= v <= hi for v in slopes))
    for est in ("SF", "PD"):
        checks[f"{est}_rel_error_at_N_max"] = subcheck(per_seed_err[est], "<=", max_rel_error)
    for est in ("SF", "PD"):  # R26: no bias beyond what the noise explains, a count of seeds (R21)
        checks[f"{est}_error_within_noise_at_N_max"] = subcheck(
            per_seed_z[est], "<=", max_z, note="z = N r^2 / v at the largest N: the squared error over the noise's")
    details["variance_ratio_SF_over_PD"] = ratio(details["SF_per_rollout_var"], details["PD_per_rollout_var"])
    return Finding(
        value=checks["SF_rel_error_at_N_max"].value,
        threshold=f"SF and PD <= {max_rel_error:g}; N r^2 / v <= {max_z:g} at the largest N (no bias beyond the "
                  f"noise)",
        checks=checks,
        details=details,
    )


# ---------------------------------------------------------------------------------------------- A2
def check_a2(lq: pd.DataFrame, pendulum: pd.DataFrame, thresholds: dict, smoothing_scales: list[float]) -> Finding:
    """A2 over the ensemble of `control.seeds` (R0, R2); every statistic is per seed, its verdict R21's over
    seeds (the count of seeds where each holds):

    - lq_rel_error_at_M_max (headline): LQ pooled relative error at the largest M <= max_lq_rel_error;
    - pendulum_min_cosine: the minimum over the seed's probe states of cosine(mean costate at the largest M,
      smoothing reference at the headline scale) >= min_pendulum_cosine;
    - pendulum_power (binding, R2): |g0 - r| / (3 SE_r) >= 1, pooled over the seed's probe states;
    - pendulum_closeness (R2): |mean costate - r| / |g0 - r| < 1; INCONCLUSIVE (with a note) whenever the power
      sub-check does not PASS: without power the reference cannot tell the costate from g0.

    `thresholds`: the config's claims.A2."""
    max_lq_rel_error, min_pendulum_cosine = thresholds["max_lq_rel_error"], thresholds["min_pendulum_cosine"]
    lq_table, pendulum_table, headline_scale = lq, pendulum, float(smoothing_scales[0])
    lq = a2_lq_errors(lq_table)
    m_max = int(lq.continuations.max()) if len(lq) else 0
    lq_at = lq[lq.continuations == m_max].sort_values("seed")
    cos = a2_pendulum_cosines(pendulum_table)
    pm_max = finite_max(cos.continuations)
    pm_max = int(pm_max) if np.isfinite(pm_max) else pm_max
    at_max = cos[cos.continuations == pm_max]
    head = at_max[np.isclose(at_max.scale.astype(float), headline_scale)]
    pen_seeds = _seeds(pendulum_table)
    min_cos = [strict_min(head[head.seed == k].cosine) for k in pen_seeds]
    pw = a2_pendulum_power(pendulum_table, headline_scale).set_index("seed").reindex(pen_seeds)
    min_power, max_closeness = thresholds["min_power"], thresholds["max_closeness"]
    power = subcheck(pw.power.to_numpy(float), ">=", min_power, role="binding")
    closeness = subcheck(pw.closeness.to_numpy(float), "<", max_closeness)
    if power.verdict != PASS:
        closeness = closeness.replace(
            verdict=INCONCLUSIVE,
            note=f"power {power.verdict}: |g0 - r| is not >= {3 * min_power:g} SE of the reference on every "
                 f"resample, so closeness is not informative (R2)")
    checks = {
        "lq_rel_error_at_M_max": subcheck(lq_at.rel_error.to_numpy(float), "<=", max_lq_rel_error),
        "pendulum_min_cosine": subcheck(min_cos, ">=", min_pendulum_cosine),
        "pendulum_power": power,
        "pendulum_closeness": closeness,
    }
    by_scale = at_max.groupby("scale").agg(min_cosine=("cosine", "min"), median_cosine=("cosine", "median"),
                                           median_rel_diff=("rel_diff", "median"), max_rel_diff=("rel_diff", "max"))
    nf = a2_pendulum_noise_free(pendulum_table)
    details = {
        "pendulum_noise_free_median_rel_diff": {
            "costate": float(nf[nf.against == "costate"].rel_diff.median()) if len(nf) else float("nan"),
            **{f"smoothing_{s:g}": float(g.rel_diff.median())
               for s, g in nf[nf.against == "smoothing"].groupby("scale")},
        },
        "pendulum_pooled_by_seed": {str(int(k)): {c: float(v) for c, v in row.items()}
                                    for k, row in pw.iterrows() if np.isfinite(k)},
        "lq_rel_error_by_M": lq.groupby("continuations").rel_error.mean().rename(index=str).to_dict(),
        "lq_continuations_max": m_max,
        "pendulum_continuations_max": pm_max,
        "pendulum_headline_scale": float(headline_scale),
        "pendulum_n_probe_states": int(len(head)),
        "pendulum_by_smoothing_scale": {f"{s:g}": row.to_dict() for s, row in by_scale.iterrows()},
        "pendulum_min_cosine_by_M": (cos[np.isclose(cos.scale.astype(float), headline_scale)]
                                     .groupby("continuations").cosine.min().rename(index=str).to_dict()),
    }
    return Finding(
        value=checks["lq_rel_error_at_M_max"].value,
        threshold=f"<= {max_lq_rel_error:g}; pendulum min cosine >= {min_pendulum_cosine:g}, power "
                  f"|g0 - r| >= {3 * min_power:g} SE (binding), closeness |costate - r| / |g0 - r| < {max_closeness:g}",
        checks=checks,
        details=details,
    )


# ---------------------------------------------------------------------------------------------- A3
def check_a3(table: pd.DataFrame, thresholds: dict) -> Finding:
    """A3 over the ensemble of `control.seeds` (R0, R3); per seed, over its alphas:

    - detached_spearman_alpha_bias (headline): Spearman(alpha, detached relative bias) >= min_spearman;
    - detached_min_bias_over_floor_alpha_gt0: min over alpha > 0 of detached bias / floor > 1 (above the floor
      for every alpha > 0);
    - reparameterized_max_bias_over_floor: max over every alpha of reparameterized bias / floor <= 1.

    No sub-check at alpha = 0 for the detached pass (R3: it is the reparameterized computation there). Each
    verdict is R21's over seeds (the count of seeds where it holds). `thresholds`:
    claims.A3."""
    min_spearman = thresholds["min_spearman"]
    above, within = thresholds["min_detached_bias_over_floor"], thresholds["max_reparameterized_bias_over_floor"]
    per = a3_bias(table)
    seeds = _seeds(table)
    rho, det_min, rep_max = [], [], []
    for k in seeds:
        p = per[per.seed == k]
        rep = p[p.backward == "reparameterized"].sort_values("alpha")
        det = p[p.backward == "detached"].sort_values("alpha")
        rho.append(spearman(det.alpha, det.rel_bias))
        pos = det[det.alpha > 0]
        det_min.append(strict_min((pos.rel_bias / pos.floor).to_numpy()))
        rep_max.append(strict_max((rep.rel_bias / rep.floor).to_numpy()))
    checks = {
        "detached_spearman_alpha_bias": subcheck(rho, ">=", min_spearman),
        "detached_min_bias_over_floor_alpha_gt0": subcheck(det_min, ">", above),
        "reparameterized_max_bias_over_floor": subcheck(rep_max, "<=", within),
    }
    b = per.groupby(["alpha", "backward"])[["rel_bias", "floor", "ms_radius"]].mean().reset_index()
    rep = b[b.backward == "reparameterized"].sort_values("alpha")
    det = b[b.backward == "detached"].sort_values("alpha")
    details = {
        "alphas": det.alpha.tolist(),
        "reparameterized_rel_bias": rep.rel_bias.tolist(),
        "reparameterized_floor": rep.floor.tolist(),
        "detached_rel_bias": det.rel_bias.tolist(),
        "detached_floor": det.floor.tolist(),
        "mean_square_radius": det.ms_radius.tolist(),  # mean over seeds' systems
        "all_alphas_mean_square_stable": bool((per.ms_radius < 1).all()),  # every seed's system at every alpha
        "n_seeds": len(seeds),
        "seeds": [int(x) for x in seeds],
    }
    return Finding(
        value=checks["detached_spearman_alpha_bias"].value,
        threshold=f">= {min_spearman:g}; detached bias > {_floor(above)} for every alpha > 0; reparameterized <= "
                  f"{_floor(within)}",
        checks=checks,
        details=details,
    )


def _floor(times: float) -> str:
    """"floor", or "<times> x floor" for a multiple other than 1 (A3's threshold text)."""
    return "floor" if times == 1 else f"{times:g} x floor"
