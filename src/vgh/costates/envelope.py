"""R4's envelope method (docs/SCIENCE.md): the bound e <= C * x of the straight-through costate's error e by a
per-prompt quantity x (the entropy for B1, the sampling gap for B2), C fitted on one half of the ensemble's members
and its coverage measured on the other half."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ..ensemble import judged, unmeasured, with_member


def member_halves(members) -> tuple[list, list]:
    """R4's split of the ensemble: the fit half is the first ceil(K/2) members (sorted), the rest are held out."""
    members = sorted(members)
    k = math.ceil(len(members) / 2)
    return members[:k], members[k:]


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


def envelope_check(prompts: pd.DataFrame, xcol: str, quantile: float, min_coverage: float, *, n_resamples: int,
                   seed, error: str = "pd_abs_error") -> tuple[dict[str, Any], dict[str, Any]]:
    """R4's envelope sub-check of the bound e <= C * x (x = the gap for B2, the entropy for B1), and its details.

    Units: one (member, checkpoint, temperature, prompt) row, e = `error` (|E[lambda_PD] - g*|, exact).
    - Fit half F = the first ceil(K/2) members, held-out half H = the rest (`member_halves`).
    - C = the `quantile` of e/x over F's points whose x lies above the median x of F's points (pooled).
    - Each held-out member's coverage: the fraction of its points below its own median x with e <= C * x.
    - Estimate (the headline, as R4 states it): the mean coverage over H with C fitted on F.
    - Per member: every member's coverage when its half is the held-out one (H's with C from F, F's with C from
      H, the split repeated the other way round), so each member has a verdict of its own.
    - Interval: the 2.5 and 97.5% percentiles of the pooled draws of both directions (F fits / H held out and
      H fits / F held out), `n_resamples` draws each; a draw resamples the fit members with replacement within
      the fit half and the held-out members within theirs, refits C and averages the held-out coverages.
      At K = 2 each half is one member, so the interval spans the two directions' coverages.
    With K < 2 nothing is held out: the sub-check is INCONCLUSIVE and marked (`vgh.ensemble.unmeasured`).
    """
    prompts = with_member(prompts)
    members = sorted(int(m) for m in prompts["member"].unique())
    details: dict[str, Any] = {"x": xcol, "quantile": quantile, "n_members": len(members)}
    if len(members) < 2:
        return unmeasured(">=", min_coverage, f"needs >= 2 members (a held-out half); got {len(members)}"), details
    pts = {int(m): (d[xcol].to_numpy(float), d[error].to_numpy(float)) for m, d in prompts.groupby("member")}
    fit, held = member_halves(members)

    def direction(f, h):
        c = envelope_constant(np.concatenate([pts[m][0] for m in f]), np.concatenate([pts[m][1] for m in f]),
                              quantile)
        return c, {m: held_out_coverage(*pts[m], c) for m in h}

    c_fh, cov_h = direction(fit, held)
    c_hf, cov_f = direction(held, fit)
    per_member = [cov_f[m] if m in cov_f else cov_h[m] for m in members]
    estimate = float(np.mean(list(cov_h.values())))
    rng = np.random.default_rng(seed)
    draws = []
    for f, h in ((fit, held), (held, fit)):
        f, h = np.array(f), np.array(h)
        for _ in range(n_resamples):
            fd, hd = rng.choice(f, len(f)), rng.choice(h, len(h))
            c = envelope_constant(np.concatenate([pts[m][0] for m in fd]),
                                  np.concatenate([pts[m][1] for m in fd]), quantile)
            draws.append(np.mean([held_out_coverage(*pts[m], c) for m in hd]))
    draws = np.asarray(draws, float)
    iv = ((float("nan"), float("nan")) if not (draws.size and np.isfinite(draws).all())
          else tuple(float(v) for v in np.percentile(draws, [2.5, 97.5])))
    sub = judged(per_member, ">=", min_coverage, *iv, estimate=estimate,
                 note=f"fit members {fit}, held out {held}; C = {c_fh:.4g} "
                      f"(the other way round {c_hf:.4g}); interval over both directions")
    # the carry chains as their own stratum of the held-out points (reported)
    strata = {}
    if "carry" in prompts.columns:
        for name, want in (("carry", True), ("no_carry", False)):
            covs = []
            for m in held:
                d = prompts[prompts["member"] == m]
                x, e = d[xcol].to_numpy(float), d[error].to_numpy(float)
                if not np.isfinite(x).any():
                    covs.append(float("nan"))
                    continue
                below = (x < np.nanmedian(x)) & (d["carry"].to_numpy(bool) == want)
                covs.append(float(np.mean(e[below] <= c_fh * x[below])) if below.any() else float("nan"))
            strata[name] = covs
    details.update({"fit_members": [int(m) for m in fit], "held_out_members": [int(m) for m in held],
                    "C": c_fh, "C_other_direction": c_hf,
                    "coverage_held_out": {str(int(m)): v for m, v in cov_h.items()},
                    "coverage_other_direction": {str(int(m)): v for m, v in cov_f.items()},
                    "coverage_held_out_by_carry": strata})
    return sub, details
