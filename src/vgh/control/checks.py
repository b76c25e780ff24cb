"""Claim checks A1-A3 on the experiment tables (thresholds passed in), on the summaries of `vgh.control.summary`."""
from __future__ import annotations

import numpy as np
import pandas as pd

from vgh.claims import Claim
from vgh.ensemble import INCONCLUSIVE, PASS, subcheck, yes_no_subcheck
from vgh.stats import finite_max, last, loglog_slope, ratio, spearman, strict_max, strict_min

from .summary import a1_summary, a2_lq_errors, a2_pendulum_cosines, a2_pendulum_noise_free, a2_pendulum_power, a3_bias


# ---------------------------------------------------------------------------------------------- A1
def _seeds(table: pd.DataFrame) -> list:
    return sorted(table.seed.dropna().unique()) if "seed" in table else []


def check_a1(table: pd.DataFrame, thresholds: dict, *, statement: str, metric: str) -> Claim:
    """A1 over the ensemble of `control.seeds` (R0): per seed, the SF and PD relative errors at the largest N
    (<= max_rel_error) and the log-log slopes of error vs N, fitted per seed over its N values (in slope_range, a
    count of seeds: R15);
    each sub-check is R21's sign test over seeds (`vgh.ensemble`: the count of seeds where it holds).
    Headline: the SF relative error (the estimator that needs the most rollouts).
    `thresholds`: the config's claims.A1."""
    max_rel_error, slope_range = thresholds["max_rel_error"], thresholds["slope_range"]
    s = a1_summary(table)
    n_max = int(table.n_rollouts.max()) if len(table) else 0
    seeds = _seeds(table)
    checks, details = {}, {"n_rollouts_max": n_max, "n_seeds": len(seeds), "seeds": [int(x) for x in seeds]}
    per_seed_err, per_seed_slope = {}, {}
    for est in ("SF", "PD"):
        d = table[table.estimator == est]
        per_seed_err[est] = [last(d[(d.seed == k) & (d.n_rollouts == n_max)].rel_error) for k in seeds]
        per_seed_slope[est] = [loglog_slope(*d[d.seed == k].sort_values("n_rollouts")[["n_rollouts", "rel_error"]]
                                            .to_numpy().T) for k in seeds]
        e = s[s.estimator == est].sort_values("n_rollouts")
        details[f"{est}_per_rollout_var"] = float(d.per_rollout_var.mean())
        details[f"{est}_rel_error_by_N"] = dict(zip(e.n_rollouts.astype(int).astype(str), e.rel_error.astype(float)))
    for est in ("SF", "PD"):
        checks[f"{est}_rel_error_at_N_max"] = subcheck(per_seed_err[est], "<=", max_rel_error)
    lo, hi = slope_range
    for est in ("SF", "PD"):  # R15: "every seed's slope in the range" is a count of seeds (R21's binomial rule)
        inside = [bool(lo <= v <= hi) for v in per_seed_slope[est]]
        checks[f"{est}_loglog_slope_in_range"] = yes_no_subcheck(
            inside, thresholds["min_fraction_slope_in_range"],
            note=f"per-seed slopes {', '.join(f'{v:.3g}' for v in per_seed_slope[est])}").replace(
            per_member=[float(v) for v in per_seed_slope[est]])
    details["variance_ratio_SF_over_PD"] = ratio(details["SF_per_rollout_var"], details["PD_per_rollout_var"])
    return Claim(
        id="A1",
        statement=statement,
        metric=metric,
        value=checks["SF_rel_error_at_N_max"].value,
        threshold=f"SF and PD <= {max_rel_error:g}; per-seed log-log slopes in [{slope_range[0]:g}, "
                  f"{slope_range[1]:g}]",
        checks=checks,
        details=details,
    )


# ---------------------------------------------------------------------------------------------- A2
def check_a2(lq: pd.DataFrame, pendulum: pd.DataFrame, thresholds: dict, smoothing_scales: list[float], *,
             statement: str, metric: str) -> Claim:
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
    return Claim(
        id="A2",
        statement=statement,
        metric=metric,
        value=checks["lq_rel_error_at_M_max"].value,
        threshold=f"<= {max_lq_rel_error:g}; pendulum min cosine >= {min_pendulum_cosine:g}, power "
                  f"|g0 - r| >= {3 * min_power:g} SE (binding), closeness |costate - r| / |g0 - r| < {max_closeness:g}",
        checks=checks,
        details=details,
    )


# ---------------------------------------------------------------------------------------------- A3
def check_a3(table: pd.DataFrame, thresholds: dict, *, statement: str, metric: str) -> Claim:
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
    return Claim(
        id="A3",
        statement=statement,
        metric=metric,
        value=checks["detached_spearman_alpha_bias"].value,
        threshold=f">= {min_spearman:g}; detached bias > {_floor(above)} for every alpha > 0; reparameterized <= "
                  f"{_floor(within)}",
        checks=checks,
        details=details,
    )


def _floor(times: float) -> str:
    """"floor", or "<times> x floor" for a multiple other than 1 (A3's threshold text)."""
    return "floor" if times == 1 else f"{times:g} x floor"
