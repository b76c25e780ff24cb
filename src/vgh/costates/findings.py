"""Findings of B1 and B2 reported beside their verdicts (docs/SCIENCE.md, R4): the separation of the entropy and
gap factors, the error profile as the gap -> 0, the lowest-entropy limit per member and the superseded pre-R4
statistics. None of them decides a verdict except `lowest_entropy_limit` (B1's second sub-check)."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..ensemble import with_member
from ..stats import partial_spearman, ratio, spearman, through_origin_fit


def lowest_entropy_limit(prompts: pd.DataFrame, strata: bool = True) -> pd.DataFrame:
    """Per member, the (checkpoint, temperature) with the lowest mean entropy over its prompts, and there: the
    pooled relative error sum |E[lambda_PD] - g*| / sum |g*| (R4's limit, B1's third sub-check), and with `strata`
    (what is reported) the median per-prompt relative error and both for the carry-chain prompts and the others as
    their own strata (sums and medians skip NaN)."""
    prompts = with_member(prompts)
    ent = prompts.groupby(["member", "checkpoint", "temperature"], sort=True)["entropy"].mean()
    member, ckpt, tau = (prompts[c].to_numpy() for c in ("member", "checkpoint", "temperature"))
    abs_err, g_norm, rel = (prompts[c].to_numpy(float) for c in ("pd_abs_error", "g_norm", "pd_rel_error"))
    carry_all = prompts["carry"].to_numpy(bool) if "carry" in prompts else np.zeros(len(prompts), bool)

    def pooled(sel):
        return ratio(float(np.nansum(abs_err[sel])), float(np.nansum(g_norm[sel]))) if sel.any() else float("nan")

    def median(sel):
        r = rel[sel]
        return float(np.median(r[~np.isnan(r)])) if (~np.isnan(r)).any() else float("nan")

    rows = []
    for m in np.unique(member):
        e = ent.loc[m] if m in ent.index.get_level_values(0) else pd.Series(dtype=float)
        row = {"member": int(m)}
        if e.notna().any():
            ck, t = e.idxmin()
            at = (member == m) & (ckpt == ck) & (tau == t)
            row.update({"checkpoint": int(ck), "temperature": float(t), "entropy": float(e.min()),
                        "pd_error": pooled(at)})
            if strata:
                carry, nocarry = at & carry_all, at & ~carry_all
                row.update({"pd_error_median": median(at),
                            "pd_error_carry": pooled(carry), "pd_error_median_carry": median(carry),
                            "pd_error_nocarry": pooled(nocarry), "pd_error_median_nocarry": median(nocarry),
                            "n_prompts": int(at.sum()), "n_carry": int(carry.sum())})
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
    """Prompts whose relative error at their member's lowest-entropy point exceeds `level` (a finding): by member,
    then largest error first."""
    key = ["member", "checkpoint", "temperature"]
    d = prompts[prompts["pd_rel_error"] > level]  # the few candidates first (the check runs once per draw)
    d = d.merge(low.loc[low["checkpoint"] >= 0, key].astype({"member": int, "checkpoint": int}), on=key)
    d = d.sort_values(["member", "pd_rel_error"], ascending=[True, False], kind="stable")
    n = len(d)
    out = pd.DataFrame({
        "member": d["member"].astype(int), "checkpoint": d["checkpoint"].astype(int),
        "temperature": d["temperature"].astype(float),
        "prompt": d["prompt"] if "prompt" in d else [None] * n,
        "carry": d["carry"].astype(bool) if "carry" in d else [False] * n,
        "pd_rel_error": d["pd_rel_error"].astype(float), "g_norm": d["g_norm"].astype(float),
        "entropy": d["entropy"].astype(float),
        "moving_flip_fraction": (d["moving_flip_fraction"].astype(float) if "moving_flip_fraction" in d
                                 else [float("nan")] * n)})
    return out.to_dict("records")
