"""Findings of B1 and B2 reported beside their verdicts (docs/SCIENCE.md, R4): the separation of the entropy and
gap factors, the error profile as the gap -> 0, the lowest-entropy limit per member and the superseded pre-R4
statistics. None of them decides a verdict except `lowest_entropy_limit` (B1's second sub-check)."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..ensemble import with_member
from ..stats import partial_spearman, ratio, spearman, through_origin_fit


def lowest_entropy_limit(prompts: pd.DataFrame) -> pd.DataFrame:
    """Per member, the (checkpoint, temperature) with the lowest mean entropy over its prompts, and there: the
    pooled relative error sum |E[lambda_PD] - g*| / sum |g*| (R4's limit), the median per-prompt relative error,
    and both for the carry-chain prompts and the others as their own strata."""
    prompts = with_member(prompts)

    def pooled(d):
        return ratio(d["pd_abs_error"].sum(), d["g_norm"].sum()) if len(d) else float("nan")

    def median(d):
        return float(d["pd_rel_error"].median()) if len(d) else float("nan")

    rows = []
    for m, dm in prompts.groupby("member", sort=True):
        ent = dm.groupby(["checkpoint", "temperature"])["entropy"].mean()
        row = {"member": int(m)}
        if ent.notna().any():
            ck, tau = ent.idxmin()
            d = dm[(dm["checkpoint"] == ck) & (dm["temperature"] == tau)]
            carry = d["carry"].astype(bool) if "carry" in d else pd.Series(False, index=d.index)
            row.update({"checkpoint": int(ck), "temperature": float(tau), "entropy": float(ent.min()),
                        "pd_error": pooled(d), "pd_error_median": median(d),
                        "pd_error_carry": pooled(d[carry]), "pd_error_median_carry": median(d[carry]),
                        "pd_error_nocarry": pooled(d[~carry]), "pd_error_median_nocarry": median(d[~carry]),
                        "n_prompts": len(d), "n_carry": int(carry.sum())})
        else:
            row.update({"checkpoint": -1, "temperature": float("nan"), "entropy": float("nan"),
                        "pd_error": float("nan")})
        rows.append(row)
    return pd.DataFrame(rows)


def separation(prompts: pd.DataFrame, error: str = "pd_abs_error") -> dict[str, Any]:
    """R4's reported separation of the factors: Spearman(e, h) and Spearman(e, gap) over the points (members,
    checkpoints, prompts) at each fixed temperature, and the partial Spearman of each controlling for tau."""
    by_tau = {f"{t:g}": {"spearman_error_entropy": spearman(d[error], d["entropy"], min_n=3),
                         "spearman_error_gap": spearman(d[error], d["gap"], min_n=3)}
              for t, d in prompts.groupby("temperature", sort=True)}
    return {"at_fixed_temperature": by_tau,
            "partial_spearman_error_entropy_given_tau": partial_spearman(prompts[error], prompts["entropy"],
                                                                        prompts["temperature"]),
            "partial_spearman_error_gap_given_tau": partial_spearman(prompts[error], prompts["gap"],
                                                                    prompts["temperature"])}


def relative_error_profile(prompts: pd.DataFrame, n_bins: int = 8) -> dict[str, Any]:
    """The practical finding (reported): pooled relative error of E[lambda_PD] in gap bins (equal-count, all
    points) as the gap -> 0, and per temperature (pooled over members, checkpoints and prompts)."""
    def pooled(d):
        return ratio(d["pd_abs_error"].sum(), d["g_norm"].sum())

    gap = prompts["gap"].to_numpy(float)
    out: dict[str, Any] = {"by_temperature": {f"{t:g}": pooled(d) for t, d in prompts.groupby("temperature")}}
    ok = np.isfinite(gap)
    if ok.sum() >= n_bins and np.ptp(gap[ok]) > 0:
        bins = pd.qcut(prompts.loc[ok, "gap"], n_bins, duplicates="drop")
        out["by_gap_bin"] = [{"gap_lo": float(k.left), "gap_hi": float(k.right), "pooled_rel_error": pooled(d),
                              "n": len(d)} for k, d in prompts[ok].groupby(bins, observed=True)]
    else:
        out["by_gap_bin"] = []
    return out


def old_statistics(summary: pd.DataFrame) -> dict[str, float]:
    """The superseded pre-R4 statistics over the (member, checkpoint, temperature) points, kept as details."""
    if not len(summary) or "pd_error" not in summary:
        return {}
    out = {"spearman_pooled_error_entropy": spearman(summary["pd_error"], summary["entropy"], min_n=3),
           "r2_through_origin_pooled_error_gap": through_origin_fit(summary["gap"], summary["pd_error"])["r2"],
           "slope_through_origin_pooled_error_gap": through_origin_fit(summary["gap"], summary["pd_error"])["slope"]}
    if "sf_error" in summary:
        out["spearman_sf_error_entropy"] = spearman(summary["sf_error"], summary["entropy"], min_n=3)
    if "gap_embed" in summary:
        out["r2_through_origin_pooled_error_embedding_gap"] = through_origin_fit(summary["gap_embed"],
                                                                                  summary["pd_error"])["r2"]
    return out


def outliers(prompts: pd.DataFrame, low: pd.DataFrame, level: float) -> list[dict[str, Any]]:
    """Prompts whose relative error at their member's lowest-entropy point exceeds `level` (a finding)."""
    out = []
    prompts = prompts[prompts["pd_rel_error"] > level]  # the few candidates first (the check runs once per draw)
    for r in low.itertuples():
        d = prompts[(prompts["member"] == r.member) & (prompts["checkpoint"] == r.checkpoint)
                    & (prompts["temperature"] == r.temperature) & (prompts["pd_rel_error"] > level)]
        for q in d.sort_values("pd_rel_error", ascending=False).itertuples():
            out.append({"member": int(r.member), "checkpoint": int(q.checkpoint), "temperature": float(q.temperature),
                        "prompt": getattr(q, "prompt", None), "carry": bool(getattr(q, "carry", False)),
                        "pd_rel_error": float(q.pd_rel_error), "g_norm": float(q.g_norm),
                        "entropy": float(q.entropy),
                        "moving_flip_fraction": float(getattr(q, "moving_flip_fraction", float("nan")))})
    return out
