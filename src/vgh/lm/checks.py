"""Claim checks of Part B (B1-B3) under the pre-registered rules R0, R4 and R5 (docs/SCIENCE.md): pure functions
of the tidy tables, thresholds and the bootstrap's `n_resamples` and `seed` passed in. Each returns a Claim whose
sub-checks come from `vgh.ensemble` (estimate = mean over members, 95% interval, three-valued verdict, each
member's value and pass/fail).

Rank correlations need at least three points here (`min_n=3`): two points always rank perfectly.

Tables (written by the `costates` and `update_alignment` rules, concatenated over the ensemble's members; a
table without a `member` column counts as member 0):
- summary: one row per (member, checkpoint, temperature), columns from `vgh.lm.measure.summarize` (pd_error is
  the pooled relative error sum_q |E[lambda_PD] - g*_q| / sum_q |g*_q|; entropy and gap are exact means).
- prompts: one row per (member, checkpoint, temperature, prompt), from `vgh.lm.measure.measure_checkpoint`:
  R4's unit, with e = pd_abs_error, gap = E sum_t |onehot(y_t) - p_t|_2 / L and entropy = E sum_t H(p_t) / L.
- alignment: from `vgh.lm.alignment.update_alignment` (rows per member, group size, batch, algorithm, and real
  or permuted-reward null).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ..claims import Claim
from ..ensemble import INCONCLUSIVE, subcheck, with_member, yes_no_subcheck
from ..stats import pearson, ratio, spearman, strict_min


def through_origin_fit(x, y) -> dict[str, float]:
    """Least-squares y ~ C x (no intercept): slope C, centred R^2 = 1 - SS_res / sum (y - mean y)^2."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    c = ratio(x @ y, x @ x)
    ss_res = float(((y - c * x) ** 2).sum())
    ss_tot = float(((y - y.mean()) ** 2).sum())
    return {"slope": c, "r2": 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")}


def _unmeasured(op: str, threshold: float, note: str, role: str = "required") -> dict[str, Any]:
    """A sub-check that cannot be computed from these tables (e.g. one member where a held-out half is needed):
    INCONCLUSIVE and marked, never a silent PASS or a FAIL the numbers did not earn (R0: "a sub-check that
    cannot be meaningful there is marked"). No per-member values, so it does not enter the member verdicts."""
    nan = float("nan")
    return {"value": nan, "interval": [nan, nan], "op": op, "threshold_value": float(threshold),
            "threshold": f"{op} {threshold:g}", "verdict": INCONCLUSIVE, "role": role, "per_member": [],
            "member_passed": [], "passed": False, "note": note}


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
    With K < 2 nothing is held out: the sub-check is INCONCLUSIVE and marked (`_unmeasured`).
    """
    prompts = with_member(prompts)
    members = sorted(int(m) for m in prompts["member"].unique())
    details: dict[str, Any] = {"x": xcol, "quantile": quantile, "n_members": len(members)}
    if len(members) < 2:
        return _unmeasured(">=", min_coverage, f"needs >= 2 members (a held-out half); got {len(members)}"), details
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
    sub = subcheck(per_member, ">=", min_coverage, n_resamples=n_resamples, seed=seed, interval_override=iv,
                   estimate=estimate, note=f"fit members {fit}, held out {held}; C = {c_fh:.4g} "
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


def partial_spearman(x, y, z) -> float:
    """Spearman of x and y controlling for z: Pearson of the ranks of x and y after a least-squares line in z's
    ranks is removed from each; nan where undefined."""
    x, y, z = (np.asarray(v, float) for v in (x, y, z))
    ok = np.isfinite(x) & np.isfinite(y) & np.isfinite(z)
    if ok.sum() < 4:
        return float("nan")
    rx, ry, rz = (stats.rankdata(v[ok]) for v in (x, y, z))
    design = np.column_stack([np.ones_like(rz), rz])
    res = [r - design @ np.linalg.lstsq(design, r, rcond=None)[0] for r in (rx, ry)]
    return pearson(res[0], res[1], min_n=4)


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


def _old_statistics(summary: pd.DataFrame) -> dict[str, float]:
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


def check_b1(summary: pd.DataFrame, prompts: pd.DataFrame, thresholds: dict[str, float], *, n_resamples: int,
             seed) -> Claim:
    """B1 under R4: the error of E[lambda_PD] is bounded by C * entropy, and vanishes at the lowest entropy.

    Sub-checks (both required): `envelope_check` with x = the prompt's mean per-token entropy h (held-out
    coverage >= min_coverage, C the envelope_quantile of e/h on the fit half); and the pooled relative error
    at the lowest mean entropy each member reaches (over checkpoints x temperatures) <= max_pd_error_lowest_entropy
    (interval over members). Reported: the median per-prompt error there, the carry-chain stratum, the factor
    separation (`separation`), the error profile (`relative_error_profile`) and the old statistics.
    `summary` (per member, checkpoint, temperature) is read for the old statistics only.
    """
    prompts = with_member(prompts)
    env, env_details = envelope_check(prompts, "entropy", thresholds["envelope_quantile"],
                                      thresholds["min_coverage"], n_resamples=n_resamples, seed=seed)
    low = lowest_entropy_limit(prompts)
    limit = thresholds["max_pd_error_lowest_entropy"]
    lim = subcheck(low["pd_error"].to_numpy(float), "<=", limit, n_resamples=n_resamples, seed=seed,
                   note="pooled relative error at each member's lowest mean entropy")
    details = {
        "envelope": env_details,
        "lowest_entropy": low.to_dict("records"),
        "pd_error_median_lowest_entropy_mean_over_members": float(low.get("pd_error_median", pd.Series(
            dtype=float)).mean()),
        "outliers_lowest_entropy": _outliers(prompts, low, limit),
        "separation": separation(prompts),
        "relative_error_profile": relative_error_profile(prompts),
        "old_statistics": _old_statistics(with_member(summary)),
        "n_points": int(len(prompts)),
    }
    checks = {"envelope_coverage_entropy": env, "pd_error_lowest_entropy": lim}
    return Claim(
        id="B1", statement="The straight-through costate's bias |E[lambda_PD] - g*| is controlled by the policy "
        "entropy: bounded by C * entropy on held-out members, and small where the entropy is lowest.",
        metric="held-out coverage of e <= C * entropy", value=env["value"],
        threshold=f">= {thresholds['min_coverage']:g}; pooled error at the lowest entropy <= {limit:g}",
        checks=checks, details=details)


def _outliers(prompts: pd.DataFrame, low: pd.DataFrame, level: float) -> list[dict[str, Any]]:
    """Prompts whose relative error at their member's lowest-entropy point exceeds `level` (a finding)."""
    out = []
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


def check_b2(summary: pd.DataFrame, prompts: pd.DataFrame, thresholds: dict[str, float], *, n_resamples: int,
             seed) -> Claim:
    """B2 under R4: the error of E[lambda_PD] is bounded by C * gap, gap = E sum_t |onehot(y_t) - p_t| / L (the
    prompts' `gap` column, exact). One required sub-check: `envelope_check` with x = gap (held-out coverage >=
    min_coverage). Reported: the coverage per carry stratum, the factor separation, the error profile as the
    gap -> 0 and the old through-origin R^2 (`summary`, per member, checkpoint and temperature)."""
    prompts = with_member(prompts)
    env, env_details = envelope_check(prompts, "gap", thresholds["envelope_quantile"], thresholds["min_coverage"],
                                      n_resamples=n_resamples, seed=seed)
    details = {
        "envelope": env_details,
        "separation": separation(prompts),
        "relative_error_profile": relative_error_profile(prompts),
        "old_statistics": _old_statistics(with_member(summary)),
        "n_points": int(len(prompts)),
    }
    if "gap_embed" in prompts:
        _, emb = envelope_check(prompts, "gap_embed", thresholds["envelope_quantile"], thresholds["min_coverage"],
                                n_resamples=0, seed=seed)
        details["envelope_embedding_gap"] = emb
    return Claim(
        id="B2", statement="The straight-through costate's bias is controlled by the sampling gap: "
        "|E[lambda_PD] - g*| <= C * E|onehot(y_t) - p_t| on held-out members towards gap -> 0.",
        metric="held-out coverage of e <= C * gap", value=env["value"],
        threshold=f">= {thresholds['min_coverage']:g}", checks={"envelope_coverage_gap": env}, details=details)


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


def check_b3(alignment: pd.DataFrame, thresholds: dict[str, float], *, n_resamples: int, seed) -> Claim:
    """B3 under R5, per member then over the ensemble (R0), at the largest group size G of the table:

    - rloo_cosine_largest_G: RLOO's mean cosine with the exact grad_theta J (over batches) >= min_rloo_cosine;
    - rloo_cosine_above_null_largest_G: that mean minus the `null_quantile` (0.975) of the per-batch cosines of
      RLOO with the rewards permuted within each group, > 0 (PASS when the interval's lower end is above 0);
      INCONCLUSIVE and marked where the table has no null rows;
    - rloo_cosine_increasing_in_G: every step to a larger G raises RLOO's mean cosine (yes/no per member).
    Reported: every algorithm's mean cosine per G (mean over members), the null's quantile per G, GRPO's shift.
    """
    alignment = with_member(alignment)
    q = thresholds.get("null_quantile", 0.975)
    per = b3_per_member(alignment, q)
    has_null = len(_real_null(alignment, True)) > 0
    checks = {
        "rloo_cosine_largest_G": subcheck(per["rloo_cosine"], ">=", thresholds["min_rloo_cosine"],
                                          n_resamples=n_resamples, seed=seed),
        "rloo_cosine_above_null_largest_G": (
            subcheck(per["margin"], ">", 0.0, n_resamples=n_resamples, seed=seed,
                     note=f"mean cosine minus the null's {q:g} quantile, per member")
            if has_null else _unmeasured(">", 0.0, "no permuted-reward null rows in the table")),
        "rloo_cosine_increasing_in_G": yes_no_subcheck(per["increasing"], n_resamples=n_resamples, seed=seed),
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
    g_max = details["largest_group_size"]
    return Claim(
        id="B3", statement="Critic-free actor updates are value-gradient ascent in expectation: the RLOO "
        "direction aligns with the exact grad_theta J, above a permuted-reward null, more so as the group grows.",
        metric=f"mean cosine(RLOO, grad J) at G = {g_max}", value=checks["rloo_cosine_largest_G"]["value"],
        threshold=f">= {thresholds['min_rloo_cosine']:g}, above the null's {q:g} quantile, increasing in G",
        checks=checks, details=details)
