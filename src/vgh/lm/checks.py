"""Claim checks of Part B (B1-B3): pure functions of the tidy tables, thresholds passed in.

Rank correlations need at least three points here (`min_n=3`): two points always rank perfectly.

Tables (written by the `costates` and `update_alignment` rules):
- summary: one row per (checkpoint, temperature), columns from `vgh.lm.measure.summarize` (pd_error is
  the pooled relative error sum_q |E[lambda_PD] - g*_q| / sum_q |g*_q|; entropy and gap are exact means).
- prompts: one row per (checkpoint, temperature, prompt), from `vgh.lm.measure.measure_checkpoint`.
- alignment: from `vgh.lm.alignment.update_alignment` (rows per group size, batch and algorithm).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from ..claims import Claim, check
from ..stats import last, spearman, strict_min


def through_origin_fit(x, y) -> dict[str, float]:
    """Least-squares y ~ C x (no intercept): slope C, centred R^2 = 1 - SS_res / sum (y - mean y)^2."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    c = float(x @ y / (x @ x))
    ss_res = float(((y - c * x) ** 2).sum())
    ss_tot = float(((y - y.mean()) ** 2).sum())
    return {"slope": c, "r2": 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")}


def _per_checkpoint(summary: pd.DataFrame, col: str, tau: float) -> dict[str, float]:
    d = summary[np.isclose(summary["temperature"], tau)]
    return {str(int(k)): float(v) for k, v in zip(d["checkpoint"], d[col])}


def lowest_temperature_outliers(prompts: pd.DataFrame, tau: float, level: float) -> list[dict[str, Any]]:
    """Prompts whose E[lambda_PD] relative error at temperature tau exceeds `level` (a finding, not dropped)."""
    d = prompts[np.isclose(prompts["temperature"], tau) & (prompts["pd_rel_error"] > level)]
    d = d.sort_values("pd_rel_error", ascending=False)
    return [{"checkpoint": int(r.checkpoint), "prompt": r.prompt, "answer": r.answer, "carry": bool(r.carry),
             "pd_rel_error": float(r.pd_rel_error), "g_norm": float(r.g_norm), "entropy": float(r.entropy),
             "p_answer": float(r.p_answer), "moving_flip_fraction": float(r.moving_flip_fraction)}
            for r in d.itertuples()]


def check_b1(summary: pd.DataFrame, prompts: pd.DataFrame, thresholds: dict[str, float]) -> Claim:
    """B1: the error of E[lambda_PD] is controlled by policy entropy.

    Sub-checks: Spearman(pooled pd_error, mean entropy) over all (checkpoint, temperature) points >=
    min_spearman; and at the lowest temperature, the pooled pd_error of *every* checkpoint (the maximum over
    checkpoints) <= max_pd_error_lowest_temperature.
    """
    rho = spearman(summary["pd_error"], summary["entropy"], min_n=3)
    tau_min = float(summary["temperature"].min())
    low = summary[np.isclose(summary["temperature"], tau_min)]
    worst = float(low["pd_error"].max())
    limit = thresholds["max_pd_error_lowest_temperature"]
    outliers = lowest_temperature_outliers(prompts, tau_min, limit)
    low_prompts = prompts[np.isclose(prompts["temperature"], tau_min)]
    details = {
        "n_points": int(len(summary)),
        "lowest_temperature": tau_min,
        "pd_error_lowest_temperature": _per_checkpoint(summary, "pd_error", tau_min),
        "pd_error_median_lowest_temperature": _per_checkpoint(summary, "pd_error_median", tau_min),
        "entropy_lowest_temperature": _per_checkpoint(summary, "entropy", tau_min),
        "pd_error_range": [float(summary["pd_error"].min()), float(summary["pd_error"].max())],
        "entropy_range_nats": [float(summary["entropy"].min()), float(summary["entropy"].max())],
        "spearman_sf_error_entropy": spearman(summary["sf_error"], summary["entropy"], min_n=3),
        "sf_error_range": [float(summary["sf_error"].min()), float(summary["sf_error"].max())],
        "pd_error_lowest_temperature_carry": float(low_prompts.loc[low_prompts["carry"], "pd_abs_error"].sum()
                                                   / low_prompts.loc[low_prompts["carry"], "g_norm"].sum()),
        "pd_error_lowest_temperature_nocarry": float(
            low_prompts.loc[~low_prompts["carry"], "pd_abs_error"].sum()
            / low_prompts.loc[~low_prompts["carry"], "g_norm"].sum()),
        "spearman_pd_error_moving_flip_fraction_lowest_temperature": spearman(
            low_prompts["moving_flip_fraction"], low_prompts["pd_rel_error"], min_n=3),
        "spearman_pd_error_moving_flip_fraction_all": spearman(prompts["moving_flip_fraction"],
                                                               prompts["pd_rel_error"], min_n=3),
        "n_prompts_lowest_temperature_above_limit": len(outliers),
        "n_carry_prompts_lowest_temperature_above_limit": int(sum(o["carry"] for o in outliers)),
        "n_moving_flip_prompts_lowest_temperature_above_limit": int(
            sum(o["moving_flip_fraction"] > 0.1 for o in outliers)),
        "prompts_lowest_temperature_above_limit": outliers,
    }
    checks = {
        "spearman_pd_error_entropy": check(rho, ge=thresholds["min_spearman"]),
        "pd_error_lowest_temperature_max_over_checkpoints": check(worst, le=limit),
    }
    return Claim(
        id="B1", statement="The straight-through costate's bias (error of E[lambda_PD] vs the exact value "
        "gradient) is controlled by the policy entropy.",
        metric="Spearman(pooled E[lambda_PD] rel. error, entropy)", value=rho,
        threshold=f">= {thresholds['min_spearman']:g}; max over checkpoints of the error at tau = {tau_min:g}: "
        f"{worst:.3g} (<= {limit:g})", checks=checks, details=details)


def check_b2(summary: pd.DataFrame, thresholds: dict[str, float]) -> Claim:
    """B2: pooled pd_error ~ C * gap (least squares through the origin, one-hot gap); centred R^2 >= min_r2."""
    fit = through_origin_fit(summary["gap"], summary["pd_error"])
    per_ckpt = {str(int(k)): through_origin_fit(d["gap"], d["pd_error"])["slope"]
                for k, d in summary.groupby("checkpoint")}
    details = {
        "slope_C": fit["slope"],
        "slope_C_per_checkpoint": per_ckpt,
        "r2_embedding_gap": through_origin_fit(summary["gap_embed"], summary["pd_error"])["r2"],
        "slope_embedding_gap": through_origin_fit(summary["gap_embed"], summary["pd_error"])["slope"],
        "r2_squared_gap": through_origin_fit(summary["gap_sq"], summary["pd_error"])["r2"],
        "r2_entropy": through_origin_fit(summary["entropy"], summary["pd_error"])["r2"],
        "spearman_pd_error_gap": spearman(summary["pd_error"], summary["gap"], min_n=3),
        "r2_sf_error_gap": through_origin_fit(summary["gap"], summary["sf_error"])["r2"],
        "n_points": int(len(summary)),
    }
    checks = {"r2_through_origin_gap": check(fit["r2"], ge=thresholds["min_r2"])}
    return Claim(
        id="B2", statement="The straight-through costate's bias is controlled by the sampling gap: "
        "error ~ C * E|onehot(y_t) - p_t|.",
        metric="centred R^2 of error = C * gap (through the origin)", value=fit["r2"],
        threshold=f">= {thresholds['min_r2']:g}",
        checks=checks, details=details)


def alignment_means(alignment: pd.DataFrame) -> pd.DataFrame:
    """Mean, std and standard error over batches of each algorithm's cosine, per group size."""
    d = alignment[alignment["estimate"] == "batch"]
    g = d.groupby(["algo", "group_size"])
    out = g["cosine"].agg(["mean", "std", "count"]).reset_index()
    out["se"] = out["std"] / np.sqrt(out["count"])
    out["cosine_to_rloo"] = g["cosine_to_rloo"].mean().values
    return out


def check_b3(alignment: pd.DataFrame, thresholds: dict[str, float]) -> Claim:
    """B3: RLOO's mean cosine with the exact grad_theta J at the largest G >= min_rloo_cosine, and increasing
    in G. "Increasing" = every step to the next larger G raises the mean cosine: the smallest consecutive
    increment is >= 0 (equivalently Spearman(G, mean cosine) = 1 for distinct means)."""
    means = alignment_means(alignment)
    rloo = means[means["algo"] == "rloo"].sort_values("group_size")
    g_max = int(rloo["group_size"].max()) if len(rloo) else float("nan")
    top = last(rloo["mean"])
    min_step = strict_min(np.diff(rloo["mean"].to_numpy()))

    def by_g(algo: str, col: str) -> dict[str, float]:
        d = means[means["algo"] == algo].sort_values("group_size")
        return {str(int(k)): float(v) for k, v in zip(d["group_size"], d[col])}

    mean_dir = alignment[alignment["estimate"] == "mean_over_batches"]
    details = {
        "largest_group_size": g_max,
        "mean_cosine": {a: by_g(a, "mean") for a in ("reinforce", "rloo", "grpo")},
        "se_cosine": {a: by_g(a, "se") for a in ("reinforce", "rloo", "grpo")},
        "spearman_rloo_cosine_group_size": spearman(rloo["group_size"], rloo["mean"], min_n=3),
        "grpo_minus_rloo_cosine": {k: by_g("grpo", "mean")[k] - v for k, v in by_g("rloo", "mean").items()},
        "grpo_cosine_to_rloo_per_batch": by_g("grpo", "cosine_to_rloo"),
        "cosine_of_mean_direction": {
            a: {str(int(k)): float(v) for k, v in zip(d["group_size"], d["cosine"])}
            for a, d in mean_dir.sort_values("group_size").groupby("algo")},
        "n_batches": int(alignment.loc[alignment["estimate"] == "batch", "batch"].nunique()),
        "n_params": int(alignment["n_params"].iloc[0]),
    }
    checks = {
        "rloo_cosine_largest_G": check(top, ge=thresholds["min_rloo_cosine"]),
        "rloo_cosine_min_increment_in_G": check(min_step, ge=0.0),
    }
    return Claim(
        id="B3", statement="Critic-free actor updates are value-gradient ascent in expectation: the RLOO "
        "direction aligns with the exact grad_theta J, more so as the group grows.",
        metric=f"mean cosine(RLOO, grad J) at G = {g_max}", value=top,
        threshold=f">= {thresholds['min_rloo_cosine']:g} and increasing in G", checks=checks, details=details)

