"""Claim checks of Part B (B1-B3) under the rules R10 (B1/B2), R14 (B3), R20 and R21 (docs/SCIENCE.md): pure functions
of the tidy tables and thresholds. Each returns a Finding whose sub-checks come from `vgh.ensemble` (R21: the count of
members where each holds, the median and its order-statistic interval, the three-valued verdict, each member's
value and pass/fail).

Rank correlations need at least three points here (`min_n=3`): two points always rank perfectly.

Tables (written by the `costates` and `update_alignment` rules, concatenated over the ensemble's members; a
table without a `member` column counts as member 0):
- summary: one row per (member, checkpoint, temperature), columns from `vgh.costates.measure.summarize` (pd_error is
  the pooled relative error sum_q |E[lambda_PD] - g*_q| / sum_q |g*_q|; entropy and gap are exact means).
- prompts: one row per (member, checkpoint, temperature, prompt), from `vgh.costates.measure.measure_costates`:
  R4's unit, with e = pd_abs_error, gap = E sum_t |onehot(y_t) - p_t|_2 / L and entropy = E sum_t H(p_t) / L.
- alignment: from `vgh.costates.alignment.update_alignment` (rows per member, group size, batch, algorithm, and real
  or permuted-reward null).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..claims import Finding
from ..ensemble import subcheck, unmeasured, with_member
from ..stats import spearman, strict_min
from .envelope import envelope_check
from .findings import lowest_entropy_limit, old_statistics, outliers, relative_error_profile, separation


def check_b1(summary: pd.DataFrame, prompts: pd.DataFrame, thresholds: dict[str, float], details: bool = True
             ) -> Finding:
    """B1 under R10 and R25: the error of E[lambda_PD] is bounded by C * entropy, rises with the entropy within a
    checkpoint and temperature, and vanishes at the lowest entropy.

    Sub-checks (all required): `envelope_check` with x = the prompt's mean per-token entropy h (coverage on the
    held-out half of the prompts >= min_coverage; R25's trend: the relative error's partial rank correlation with
    the entropy given |g*|, within checkpoint x temperature cells, > min_within_cell_correlation); and the pooled
    relative error at the lowest mean entropy each member reaches (over checkpoints x temperatures) <=
    max_pd_error_lowest_entropy (R21's count). Reported: the median per-prompt
    error there, the carry-chain stratum, the zero-costate baseline, the factor separation (`separation`), the
    error profile (`relative_error_profile`) and the old statistics (`summary`, per member, checkpoint and
    temperature, is read for these only). With `details` False (a calibration: `vgh.claims.run_check`) nothing
    that is only reported is computed: the same sub-checks, and details {}.
    """
    prompts = with_member(prompts)
    env, env_details = envelope_check(prompts, "entropy", thresholds["envelope_quantile"],
                                      thresholds["min_coverage"], thresholds["min_within_cell_correlation"],
                                      details=details)
    low = lowest_entropy_limit(prompts, strata=details)
    limit = thresholds["max_pd_error_lowest_entropy"]
    lim = subcheck(low["pd_error"].to_numpy(float), "<=", limit,
                   note="pooled relative error at each member's lowest mean entropy")
    reported = {} if not details else {
        "envelope": env_details,
        "lowest_entropy": low.to_dict("records"),
        "pd_error_median_lowest_entropy_mean_over_members": float(low.get("pd_error_median", pd.Series(
            dtype=float)).mean()),
        "outliers_lowest_entropy": outliers(prompts, low, limit),
        "separation": separation(prompts),
        "relative_error_profile": relative_error_profile(prompts),
        "old_statistics": old_statistics(with_member(summary)),
        "n_points": int(len(prompts)),
    }
    checks = {"envelope_coverage_entropy": env["coverage"], "error_rises_with_entropy_in_cells": env["trend"],
              "pd_error_lowest_entropy": lim}
    return Finding(
        value=env["coverage"].value,
        threshold=(f">= {thresholds['min_coverage']:g}; e/|g*| rises with the entropy within checkpoint x temperature, "
                   f"given |g*| (partial rank correlation > {thresholds['min_within_cell_correlation']:g}); pooled "
                   f"error at the lowest entropy <= {limit:g}"),
        checks=checks, details=reported)


def check_b2(summary: pd.DataFrame, prompts: pd.DataFrame, thresholds: dict[str, float], details: bool = True
             ) -> Finding:
    """B2 under R10 and R25: the error of E[lambda_PD] is bounded by C * gap, gap = E sum_t |onehot(y_t) - p_t| / L
    (the prompts' `gap` column, exact), and rises with the gap within a checkpoint and temperature. Two required
    sub-checks: `envelope_check` with x = gap (coverage on the held-out half of the prompts >= min_coverage; R25's
    within-cell trend of the relative error with the gap given |g*| > min_within_cell_correlation). Reported: the
    strata, the zero-costate baseline, the factor separation, the error profile as the gap -> 0 and the old
    through-origin R^2 (`summary`, per member, checkpoint and temperature). With `details` False (a calibration)
    nothing that is only reported is computed: the same sub-checks, and details {}."""
    prompts = with_member(prompts)
    env, env_details = envelope_check(prompts, "gap", thresholds["envelope_quantile"], thresholds["min_coverage"],
                                      thresholds["min_within_cell_correlation"], details=details)
    reported = {} if not details else {
        "envelope": env_details,
        "separation": separation(prompts),
        "relative_error_profile": relative_error_profile(prompts),
        "old_statistics": old_statistics(with_member(summary)),
        "n_points": int(len(prompts)),
    }
    if details and "gap_embed" in prompts:
        _, emb = envelope_check(prompts, "gap_embed", thresholds["envelope_quantile"], thresholds["min_coverage"],
                                thresholds["min_within_cell_correlation"])
        reported["envelope_embedding_gap"] = emb
    return Finding(
        value=env["coverage"].value,
        threshold=f">= {thresholds['min_coverage']:g}; e/|g*| rises with the gap within checkpoint x temperature, "
                  f"given |g*| (partial rank correlation > {thresholds['min_within_cell_correlation']:g})",
        checks={"envelope_coverage_gap": env["coverage"], "error_rises_with_gap_in_cells": env["trend"]},
        details=reported)


def _real_null(alignment: pd.DataFrame, permuted: bool) -> pd.DataFrame:
    """Rows of the real estimators (permuted=False) or of the permuted-reward null (True); a table without the
    `reward_permuted` column has only real rows."""
    flag = alignment["reward_permuted"].astype(bool) if "reward_permuted" in alignment else pd.Series(
        False, index=alignment.index)
    return alignment[flag == permuted]


def alignment_means(alignment: pd.DataFrame, permuted: bool = False) -> pd.DataFrame:
    """Per member, algorithm and group size: mean, std, standard error and count over batches of the cosine with
    grad J (real rows, or the permuted-reward null with `permuted=True`), and the mean cosine_to_rloo."""
    d = _real_null(with_member(alignment), permuted)
    d = d[d["estimate"] == "batch"]
    g = d.groupby(["member", "algo", "group_size"])
    out = g["cosine"].agg(["mean", "std", "count"]).reset_index()
    out["se"] = out["std"] / np.sqrt(out["count"])
    out["cosine_to_rloo"] = g["cosine_to_rloo"].mean().values
    return out


def _estimate(alignment: pd.DataFrame, estimate: str, permuted: bool = False) -> pd.DataFrame:
    d = _real_null(with_member(alignment), permuted)
    return d[d["estimate"] == estimate]


def b3_per_member(alignment: pd.DataFrame, algo: str, null_quantile: float) -> pd.DataFrame:
    """Per member, at the largest G of the table (R14): the exact expected update's cosine with grad J of `algo`
    (exact_cosine) and RLOO's (rloo_exact_cosine, 1 by an identity), the cosine of `algo`'s mean over batches
    (batch_mean_cosine) with its bootstrap's 2.5% and 97.5% quantiles, the `null_quantile` of the permuted-reward
    null's bootstrap of its batch mean, the margin between the two, and whether RLOO's mean per-batch cosine
    increases with every step to a larger G (reported). nan where the table lacks the rows."""
    alignment = with_member(alignment)
    g_max = alignment["group_size"].max() if len(alignment) else float("nan")
    top = alignment[alignment["group_size"] == g_max]
    top = top.assign(permuted=top["reward_permuted"].astype(bool).to_numpy() if "reward_permuted" in top else False)
    first = top.groupby(["estimate", "permuted", "algo", "member"])["cosine"].first()
    boot = top[top["estimate"] == "bootstrap_of_mean"].groupby(["permuted", "algo", "member"])["cosine"]
    quant = {q: boot.quantile(q) for q in (0.025, 0.975, null_quantile)}

    def value(series, key):
        return float(series.get(key, float("nan")))

    means = alignment_means(alignment)
    rloo = means[means["algo"] == "rloo"].sort_values("group_size").groupby("member")["mean"]
    rows = []
    for m in sorted(alignment["member"].unique()):
        steps = np.diff(rloo.get_group(m).to_numpy(float)) if m in rloo.groups else np.array([])
        c = value(first, ("mean_over_batches", False, algo, m))
        nq = value(quant[null_quantile], (True, algo, m))
        rows.append({"member": int(m), "group_size": g_max, "algo": algo,
                     "exact_cosine": value(first, ("exact_expectation", False, algo, m)),
                     "rloo_exact_cosine": value(first, ("exact_expectation", False, "rloo", m)),
                     "batch_mean_cosine": c, "batch_mean_q025": value(quant[0.025], (False, algo, m)),
                     "batch_mean_q975": value(quant[0.975], (False, algo, m)),
                     "null_quantile": nq, "margin": c - nq, "rloo_min_increment": strict_min(steps),
                     "rloo_increasing": bool(len(steps) > 0 and np.isfinite(steps).all() and (steps >= 0).all())})
    return pd.DataFrame(rows)


def check_b3(alignment: pd.DataFrame, thresholds: dict[str, float], algo: str = "grpo") -> Finding:
    """B3 under R14 and R27, per member then over the ensemble (R21), at the largest group size G of the table, for
    `algo` (the algorithm Part C runs). One deciding sub-check, exact_cosine_largest_G (required): the cosine of
    `algo`'s exact expected update with grad_theta J >= min_exact_cosine (R27: at least that share of steepest ascent's
    first-order progress per unit step, an angle of at most arccos min_exact_cosine); INCONCLUSIVE and marked where
    the table has no exact_expectation rows.
    Reported (R27: not decided): per member, the cosine of `algo`'s update averaged over the batches minus the
    `null_quantile` (0.975) of the bootstrap of the permuted-reward null's batch mean, and how many members have it
    above 0; every algorithm's exact cosine and norm ratio per G, the per-batch mean cosine per G (the sample-budget
    curve), RLOO's "increasing in G" count, GRPO's shift from grad J.
    """
    alignment = with_member(alignment)
    q = thresholds["null_quantile"]
    per = b3_per_member(alignment, algo, q)
    has_exact = per["exact_cosine"].notna().any() if len(per) else False
    checks = {
        "exact_cosine_largest_G": (
            subcheck(per["exact_cosine"], ">=", thresholds["min_exact_cosine"],
                     note=f"cosine of {algo}'s exact expected update with grad J")
            if has_exact else unmeasured(">=", thresholds["min_exact_cosine"],
                                         "no exact_expectation rows in the table")),
    }
    means = alignment_means(alignment)
    ens = means.groupby(["algo", "group_size"])["mean"].mean()
    null_means = alignment_means(alignment, permuted=True).groupby(["algo", "group_size"])["mean"].mean()
    exact = _estimate(alignment, "exact_expectation").groupby(["algo", "group_size"])
    mean_dir = _estimate(alignment, "mean_over_batches").groupby(["algo", "group_size"])["cosine"].mean()

    def by_g(series, a):
        return {str(int(g)): float(v) for (b, g), v in series.items() if b == a}

    algos = ("reinforce", "rloo", "grpo")
    rloo = by_g(ens, "rloo")
    details = {
        "algo": algo,
        "largest_group_size": per["group_size"].iloc[0] if len(per) else float("nan"),
        "per_member": per.to_dict("records"),
        "batch_mean_margin_over_null": {
            "null_quantile": q, "by_member": [float(v) for v in per["margin"]] if len(per) else [],
            "members_above_0": int((per["margin"] > 0).sum()) if len(per) else 0, "n_members": int(len(per))},
        "exact_cosine": {a: by_g(exact["cosine"].mean(), a) for a in algos},
        "exact_rel_norm": ({a: by_g(exact["rel_norm"].mean(), a) for a in algos} if "rel_norm" in alignment else {}),
        "grpo_exact_shift": {k: 1 - v for k, v in by_g(exact["cosine"].mean(), "grpo").items()},
        "mean_cosine_per_batch": {a: by_g(ens, a) for a in algos},
        "null_mean_cosine_per_batch": {a: by_g(null_means, a) for a in algos},
        "cosine_of_mean_direction": {a: by_g(mean_dir, a) for a in algos},
        "rloo_increasing_in_G": f"{int(per['rloo_increasing'].sum())} of {len(per)} members" if len(per) else "",
        "spearman_rloo_cosine_group_size": spearman([int(k) for k in rloo], list(rloo.values()), min_n=3),
        "grpo_cosine_to_rloo_per_batch": by_g(means.groupby(["algo", "group_size"])["cosine_to_rloo"].mean(), "grpo"),
        "n_batches": int(alignment.loc[alignment["estimate"] == "batch", "batch"].nunique()),
        "n_params": int(alignment["n_params"].iloc[0]) if "n_params" in alignment and len(alignment) else -1,
    }
    return Finding(
        value=checks["exact_cosine_largest_G"].value,
        threshold=f">= {thresholds['min_exact_cosine']:g} in exact expectation (an angle of at most "
                  f"{np.degrees(np.arccos(thresholds['min_exact_cosine'])):.1f} degrees)",
        checks=checks, details=details)
