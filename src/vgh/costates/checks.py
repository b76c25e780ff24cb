"""Claim checks of Part B (B1-B3) under the pre-registered rules R0, R4 and R5 (docs/SCIENCE.md): pure functions
of the tidy tables, thresholds and the bootstrap's `n_resamples` and `seed` passed in. Each returns a Claim whose
sub-checks come from `vgh.ensemble` (estimate = mean over members, 95% interval, three-valued verdict, each
member's value and pass/fail).

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

from ..claims import Claim
from ..ensemble import subcheck, unmeasured, with_member, yes_no_subcheck
from ..stats import spearman, strict_min
from .envelope import envelope_check
from .findings import lowest_entropy_limit, old_statistics, outliers, relative_error_profile, separation


def check_b1(summary: pd.DataFrame, prompts: pd.DataFrame, thresholds: dict[str, float], *, statement: str,
             metric: str, seed: int) -> Claim:
    """B1 under R10: the error of E[lambda_PD] is bounded by C * entropy, falls as the entropy falls, and vanishes
    at the lowest entropy.

    Sub-checks (all required): `envelope_check` with x = the prompt's mean per-token entropy h (coverage on the
    held-out half of the prompts >= min_coverage; the relative error's lowest- over highest-quarter ratio <
    max_error_ratio); and the pooled relative error at the lowest mean entropy each member reaches (over
    checkpoints x temperatures) <= max_pd_error_lowest_entropy (log scale, R18). Reported: the median per-prompt
    error there, the carry-chain stratum, the zero-costate baseline, the factor separation (`separation`), the
    error profile (`relative_error_profile`) and the old statistics (`summary`, per member, checkpoint and
    temperature, is read for these only).
    """
    prompts = with_member(prompts)
    env, env_details = envelope_check(prompts, "entropy", thresholds["envelope_quantile"],
                                      thresholds["min_coverage"], thresholds["max_error_ratio"], seed=seed)
    low = lowest_entropy_limit(prompts)
    limit = thresholds["max_pd_error_lowest_entropy"]
    lim = subcheck(low["pd_error"].to_numpy(float), "<=", limit, scale="log",
                   note="pooled relative error at each member's lowest mean entropy")
    details = {
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
    checks = {"envelope_coverage_entropy": env["coverage"], "error_falls_with_entropy": env["trend"],
              "pd_error_lowest_entropy": lim}
    return Claim(
        id="B1", statement=statement, metric=metric, value=env["coverage"].value,
        threshold=(f">= {thresholds['min_coverage']:g}; error ratio (lowest / highest entropy quarter) < "
                   f"{thresholds['max_error_ratio']:g}; pooled error at the lowest entropy <= {limit:g}"),
        checks=checks, details=details)


def check_b2(summary: pd.DataFrame, prompts: pd.DataFrame, thresholds: dict[str, float], *, statement: str,
             metric: str, seed: int) -> Claim:
    """B2 under R10: the error of E[lambda_PD] is bounded by C * gap, gap = E sum_t |onehot(y_t) - p_t| / L (the
    prompts' `gap` column, exact), and falls as the gap falls. Two required sub-checks: `envelope_check` with x =
    gap (coverage on the held-out half of the prompts >= min_coverage; lowest- over highest-quarter error ratio <
    max_error_ratio). Reported: the strata, the zero-costate baseline, the factor separation, the error profile as
    the gap -> 0 and the old through-origin R^2 (`summary`, per member, checkpoint and temperature)."""
    prompts = with_member(prompts)
    env, env_details = envelope_check(prompts, "gap", thresholds["envelope_quantile"], thresholds["min_coverage"],
                                      thresholds["max_error_ratio"], seed=seed)
    details = {
        "envelope": env_details,
        "separation": separation(prompts),
        "relative_error_profile": relative_error_profile(prompts),
        "old_statistics": old_statistics(with_member(summary)),
        "n_points": int(len(prompts)),
    }
    if "gap_embed" in prompts:
        _, emb = envelope_check(prompts, "gap_embed", thresholds["envelope_quantile"], thresholds["min_coverage"],
                                thresholds["max_error_ratio"], seed=seed)
        details["envelope_embedding_gap"] = emb
    return Claim(
        id="B2", statement=statement, metric=metric, value=env["coverage"].value,
        threshold=f">= {thresholds['min_coverage']:g}; error ratio (lowest / highest gap quarter) < "
                  f"{thresholds['max_error_ratio']:g}",
        checks={"envelope_coverage_gap": env["coverage"], "error_falls_with_gap": env["trend"]}, details=details)


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


def null_quantiles(alignment: pd.DataFrame, q: float) -> pd.DataFrame:
    """Per member, algorithm and group size: the q-quantile of the null's per-batch cosines with grad J."""
    d = _real_null(with_member(alignment), True)
    d = d[d["estimate"] == "batch"]
    return d.groupby(["member", "algo", "group_size"])["cosine"].quantile(q).rename("null_quantile").reset_index()


def b3_per_member(alignment: pd.DataFrame, null_quantile: float) -> pd.DataFrame:
    """Per member: RLOO's mean cosine at the largest G of the table, the null's `null_quantile` there, the margin
    between them, and whether the mean cosine increases with every step to a larger G."""
    alignment = with_member(alignment)
    means = alignment_means(alignment)
    rloo = means[means["algo"] == "rloo"]
    nq = null_quantiles(alignment, null_quantile)
    nq = nq[nq["algo"] == "rloo"]
    g_max = rloo["group_size"].max() if len(rloo) else float("nan")
    rows = []
    for m in sorted(alignment["member"].unique()):
        r = rloo[rloo["member"] == m].sort_values("group_size")
        top = r.loc[r["group_size"] == g_max, "mean"]
        top = float(top.iloc[0]) if len(top) else float("nan")
        nt = nq[(nq["member"] == m) & (nq["group_size"] == g_max)]["null_quantile"]
        nt = float(nt.iloc[0]) if len(nt) else float("nan")
        steps = np.diff(r["mean"].to_numpy(float))
        rows.append({"member": int(m), "group_size": g_max, "rloo_cosine": top, "null_quantile": nt,
                     "margin": top - nt, "min_increment": strict_min(steps),
                     "increasing": bool(len(steps) > 0 and np.isfinite(steps).all() and (steps >= 0).all())})
    return pd.DataFrame(rows)


def check_b3(alignment: pd.DataFrame, thresholds: dict[str, float], *, statement: str, metric: str) -> Claim:
    """B3 under R5, per member then over the ensemble (R0), at the largest group size G of the table:

    - rloo_cosine_largest_G: RLOO's mean cosine with the exact grad_theta J (over batches) >= min_rloo_cosine;
    - rloo_cosine_above_null_largest_G: that mean minus the `null_quantile` (0.975) of the per-batch cosines of
      RLOO with the rewards permuted within each group, > 0 (PASS when the Student-t interval is above 0);
      INCONCLUSIVE and marked where the table has no null rows;
    - rloo_cosine_increasing_in_G: every step to a larger G raises RLOO's mean cosine (yes/no per member).
    Reported: every algorithm's mean cosine per G (mean over members), the null's quantile per G, GRPO's shift.
    """
    alignment = with_member(alignment)
    q = thresholds["null_quantile"]
    per = b3_per_member(alignment, q)
    has_null = len(_real_null(alignment, True)) > 0
    checks = {
        "rloo_cosine_largest_G": subcheck(per["rloo_cosine"], ">=", thresholds["min_rloo_cosine"]),
        "rloo_cosine_above_null_largest_G": (
            subcheck(per["margin"], ">", thresholds["min_margin_over_null"],
                     note=f"mean cosine minus the null's {q:g} quantile, per member")
            if has_null else unmeasured(">", thresholds["min_margin_over_null"],
                                        "no permuted-reward null rows in the table")),
        "rloo_cosine_increasing_in_G": yes_no_subcheck(per["increasing"], thresholds["min_fraction_increasing"]),
    }
    means = alignment_means(alignment)
    ens = means.groupby(["algo", "group_size"])["mean"].mean()
    nq = null_quantiles(alignment, q).groupby(["algo", "group_size"])["null_quantile"].mean()
    null_means = alignment_means(alignment, permuted=True).groupby(["algo", "group_size"])["mean"].mean()

    def by_g(series, algo):
        return {str(int(g)): float(v) for (a, g), v in series.items() if a == algo}

    mean_dir = _real_null(alignment, False)
    mean_dir = mean_dir[mean_dir["estimate"] == "mean_over_batches"].groupby(["algo", "group_size"])["cosine"].mean()
    rloo = by_g(ens, "rloo")
    details = {
        "largest_group_size": per["group_size"].iloc[0] if len(per) else float("nan"),
        "per_member": per.to_dict("records"),
        "mean_cosine": {a: by_g(ens, a) for a in ("reinforce", "rloo", "grpo")},
        "null_mean_cosine": {a: by_g(null_means, a) for a in ("reinforce", "rloo", "grpo")},
        f"null_quantile_{q:g}": {a: by_g(nq, a) for a in ("reinforce", "rloo", "grpo")},
        "grpo_minus_rloo_cosine": {k: by_g(ens, "grpo").get(k, float("nan")) - v for k, v in rloo.items()},
        "grpo_cosine_to_rloo_per_batch": by_g(means.groupby(["algo", "group_size"])["cosine_to_rloo"].mean(), "grpo"),
        "cosine_of_mean_direction": {a: by_g(mean_dir, a) for a in ("reinforce", "rloo", "grpo")},
        "spearman_rloo_cosine_group_size": spearman([int(k) for k in rloo], list(rloo.values()), min_n=3),
        "n_batches": int(alignment.loc[alignment["estimate"] == "batch", "batch"].nunique()),
        "n_params": int(alignment["n_params"].iloc[0]) if "n_params" in alignment and len(alignment) else -1,
    }
    return Claim(
        id="B3", statement=statement, metric=metric, value=checks["rloo_cosine_largest_G"].value,
        threshold=f">= {thresholds['min_rloo_cosine']:g}, above the null's {q:g} quantile, increasing in G",
        checks=checks, details=details)
