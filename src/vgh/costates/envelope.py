"""R10's envelope method (docs/SCIENCE.md): the bound e <= C * x of the straight-through costate's error e by a per-
prompt quantity x (the entropy for B1, the sampling gap for B2), C fitted on a half of each member's own eval prompts
drawn from its stream and its coverage judged on its other half (R10 under R20); and the trend that makes it a bound
"controlled by x" (R25): within each (checkpoint, temperature) cell the relative error e/|g*| rises with x, given |g*|
(the quarter ratio of R10's trend is reported)."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..ensemble import SubCheck, subcheck, unmeasured, with_member
from ..stats import within_cell_partial_rank_correlation
from ..streams import numpy_rng


def prompt_halves(prompt_ids, member: int) -> tuple[np.ndarray, np.ndarray]:
    """R10's split of a member's eval prompts (`prompt_index` values) by a permutation from the member's own stream
    (R20): the first half fits C, the second is held out."""
    ids = np.sort(np.unique(np.asarray(prompt_ids)))
    perm = numpy_rng(int(member), "prompt_halves").permutation(ids)
    k = (len(ids) + 1) // 2
    return np.sort(perm[:k]), np.sort(perm[k:])


def envelope_constant(x: np.ndarray, e: np.ndarray, quantile: float) -> float:
    """C = the `quantile` of e/x over the points whose x lies above the median x of these points (finite ratios
    only); nan where there is none."""
    x, e = np.asarray(x, float), np.asarray(e, float)
    if not np.isfinite(x).any():
        return float("nan")
    above = x > np.nanmedian(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = e[above] / x[above]
    r = r[np.isfinite(r)]
    return float(np.quantile(r, quantile)) if r.size else float("nan")


def held_out_coverage(x: np.ndarray, e: np.ndarray, c: float) -> float:
    """The fraction of the points below the median x (of these points) with e <= c * x: a point whose error is
    nan counts as not covered (nothing is dropped); nan where no point lies below the median or c is nan."""
    x, e = np.asarray(x, float), np.asarray(e, float)
    if not (np.isfinite(c) and np.isfinite(x).any()):
        return float("nan")
    below = x < np.nanmedian(x)
    if not below.any():
        return float("nan")
    return float(np.mean(e[below] <= c * x[below]))


def envelope_halves(prompts: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(in_fit, in_held): the rows of `prompts` (columns member, prompt_index) in their member's fit half and in its
    held-out half (`prompt_halves`, each member from its own stream, R20)."""
    members = prompts["member"].to_numpy()
    index = prompts["prompt_index"].to_numpy()
    in_fit, in_held = np.zeros(len(prompts), bool), np.zeros(len(prompts), bool)
    for m in np.unique(members):
        mine = members == m
        fit, out = prompt_halves(index[mine], int(m))
        in_fit |= mine & np.isin(index, fit)
        in_held |= mine & np.isin(index, out)
    return in_fit, in_held


def coverage_by_member(prompts: pd.DataFrame, xcol: str, error: np.ndarray, quantile: float,
                       halves: tuple[np.ndarray, np.ndarray]) -> tuple[dict[int, float], dict[int, float], np.ndarray]:
    """Per member (R10 under R20): C fitted on the member's own fit half of its prompts (its points at every
    checkpoint and temperature) and its coverage on its own held-out half, for the errors `error` (one per row of
    `prompts`); `halves` = `envelope_halves(prompts)`. Returns C by member, coverage by member and the held-out
    rows' mask."""
    x = prompts[xcol].to_numpy(float)
    members = prompts["member"].to_numpy()
    in_fit, in_held = halves
    cs, cov = {}, {}
    for m in sorted(np.unique(members)):
        mine = members == m
        cs[int(m)] = envelope_constant(x[mine & in_fit], error[mine & in_fit], quantile)
        cov[int(m)] = held_out_coverage(x[mine & in_held], error[mine & in_held], cs[int(m)])
    return cs, cov, in_held


def error_ratio(prompts: pd.DataFrame, xcol: str) -> dict[int, float]:
    """Per member, the pooled relative error sum e / sum |g*| over its points in the lowest quarter of x, divided by
    that over its points in the highest quarter (R10's trend: < 1 when the error falls towards x -> 0)."""
    out = {}
    for m, d in prompts.groupby("member", sort=True):
        x = d[xcol].to_numpy(float)
        lo, hi = np.nanquantile(x, [0.25, 0.75]) if np.isfinite(x).any() else (np.nan, np.nan)

        def pooled(mask):
            g = d["g_norm"].to_numpy(float)[mask].sum()
            return d["pd_abs_error"].to_numpy(float)[mask].sum() / g if g > 0 else float("nan")

        with np.errstate(divide="ignore", invalid="ignore"):
            out[int(m)] = float(pooled(x <= lo) / pooled(x >= hi)) if np.isfinite(lo) else float("nan")
    return out


def within_cell_trend(prompts: pd.DataFrame, xcol: str, *, error: str = "pd_abs_error") -> dict[int, float]:
    """Per member, R25's trend: the partial rank correlation of the relative error e/|g*| with x given |g*|, within
    its (checkpoint, temperature) cells (`vgh.stats.within_cell_partial_rank_correlation`); a point with |g*| = 0
    has no relative error (nan, skipped)."""
    cells = cell_codes(prompts)
    members = prompts["member"].to_numpy()
    x, g, e = (prompts[c].to_numpy(float) for c in (xcol, "g_norm", error))
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(g > 0, e / g, np.nan)
    out = {}
    for m in np.unique(members):
        mine = members == m
        out[int(m)] = within_cell_partial_rank_correlation(x[mine], rel[mine], g[mine], cells[mine])
    return out


def cell_codes(prompts: pd.DataFrame) -> np.ndarray:
    """Each row's (checkpoint, temperature) cell as an integer, numbered in the order of the cells' labels
    "checkpoint|temperature" (the order in which R25's trend sums them)."""
    key = prompts[["checkpoint", "temperature"]]
    group = key.groupby(["checkpoint", "temperature"], dropna=False, sort=False).ngroup().to_numpy()
    cells = key.iloc[np.unique(group, return_index=True)[1]]  # each group's first row, by group number
    labels = cells["checkpoint"].astype(str).str.cat(cells["temperature"].astype(str), sep="|").fillna("nan").to_numpy()
    return np.argsort(np.argsort(labels, kind="stable"), kind="stable")[group]


def envelope_check(prompts: pd.DataFrame, xcol: str, quantile: float, min_coverage: float,
                   min_within_cell_correlation: float, *, error: str = "pd_abs_error", details: bool = True
                   ) -> tuple[dict[str, SubCheck], dict[str, Any]]:
    """R10's two required sub-checks of the bound e <= C * x, and their details.

    Units: one (member, checkpoint, temperature, prompt) row, e = `error` (|E[lambda_PD] - g*|, exact).
    - coverage, per member (R20): C = the `quantile` of e/x over the points of the member's fit half of its prompts
      (split by `prompt_halves` from its own stream) whose x lies above that half's median x; the member's coverage
      is the fraction of its held-out points below their median x with e <= C * x; >= min_coverage with R21's count
      over members.
    - trend (R25): each member's `within_cell_trend` (the relative error's partial rank correlation with x given
      |g*| within its checkpoint x temperature cells) > min_within_cell_correlation (R21's count).
    Reported: R10's `error_ratio` per member (lowest over highest quarter of x, across cells), the zero costate
    (e = |g*|) and the relative error (e / |g*|) scored by the same envelope rule, and
    the held-out coverage of the carry-chain prompts and of the lowest-x decile; with `details` False (a
    calibration, which reads only the verdict) none of these is computed and the details are {"x": xcol}.
    """
    prompts = with_member(prompts)
    if prompts["prompt_index"].nunique() < 2:
        note = f"needs >= 2 prompts (a held-out half); got {prompts['prompt_index'].nunique()}"
        return {"coverage": unmeasured(">=", min_coverage, note),
                "trend": unmeasured(">", min_within_cell_correlation, note)}, {"x": xcol}
    e = prompts[error].to_numpy(float)
    halves = envelope_halves(prompts)
    cs, cov, held = coverage_by_member(prompts, xcol, e, quantile, halves)
    members = sorted(cov)
    coverage = subcheck([cov[m] for m in members], ">=", min_coverage,
                        note="C fitted on half of each member's prompts, coverage on its other half (R10, R20)")
    rho = within_cell_trend(prompts, xcol, error=error)
    trend = subcheck([rho[m] for m in members], ">", min_within_cell_correlation,
                     note="partial rank correlation of e/|g*| with x given |g*|, within checkpoint x temperature "
                          "cells, per member (R25)")
    if not details:
        return {"coverage": coverage, "trend": trend}, {"x": xcol}
    ratio = error_ratio(prompts, xcol)
    g = prompts["g_norm"].to_numpy(float)
    _, cov_zero, _ = coverage_by_member(prompts, xcol, g, quantile, halves)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(g > 0, e / g, np.nan)
    _, cov_rel, _ = coverage_by_member(prompts, xcol, rel, quantile, halves)
    x = prompts[xcol].to_numpy(float)
    c_row = prompts["member"].map(cs).to_numpy(float)  # each row's member's C
    strata = {}
    for name, mask in (("carry", prompts["carry"].to_numpy(bool) if "carry" in prompts else None),
                       ("lowest_x_decile", x <= np.nanquantile(x[held], 0.1) if held.any() else None)):
        if mask is not None and (held & mask).any():
            strata[name] = float(np.mean(e[held & mask] <= c_row[held & mask] * x[held & mask]))
    details = {"x": xcol, "quantile": quantile, "n_members": len(members),
               "C_by_member": {str(m): v for m, v in cs.items()},
               "coverage_by_member": {str(m): v for m, v in cov.items()},
               "error_ratio_by_member": {str(m): v for m, v in ratio.items()},
               "within_cell_correlation_by_member": {str(m): v for m, v in rho.items()},
               "zero_costate": {"coverage_mean": float(np.nanmean(list(cov_zero.values())))},
               "relative_error_envelope": {"coverage_mean": float(np.nanmean(list(cov_rel.values())))},
               "held_out_coverage_strata": strata}
    return {"coverage": coverage, "trend": trend}, details
