"""R19: every claim's check run on data where the claim is false (nulls) and where it is true (planted positives),
at the config's K, with the same code that decides the claim (docs/SCIENCE.md, R19 under R21).

- `rule_calibration`: R21's rule (`vgh.ensemble.sign_test`, the code `subcheck` decides with) per sub-check of a claim
  record, on K member values whose median lies at the threshold: the sub-check's own member values recentred (the
  threshold midway between the two middle members) and resampled with replacement, normal with the members' spread,
  skewed (lognormal sigma = 1 on the rule's own scale) and a bimodal 80/20 mixture, Bernoulli(p0) for yes/no; and
  planted positives at p1 = 0.9 (R21's effect size) and at one member SD on the passing side (p = 0.84).
- `claim_calibration`: the claim's check function (`vgh.claims.run_check`) on tables built from its own tables by
  the claim's nulls and planted positives, which live beside its check in its part's package and are named in
  workflow/claims.yaml (`nulls:`, e.g. `vgh.costates.nulls.b1_nulls`; `vgh.control.nulls`, `vgh.costates.nulls`
  and `vgh.trajectory.nulls` say what each claim's are).
The recurrence of a verdict is R22's (`vgh.recurrence`). Every draw comes from a generator seeded by the caller.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .claims import load_function, run_check
from .ensemble import CODES, FAIL, INCONCLUSIVE, PASS, SubCheck, holds_array, sign_test

N_RULE = 2000  # replicates per R21 rule case (config: calibration.rule_replicates)
N_CLAIM = 200  # replicates per random claim-level null (calibration.claim_replicates)
MAX_WRONG = 0.05  # R19: a null's wrong-verdict rate above this marks the check weak
P1 = 0.9  # R21's effect size: the pass rate at which every sub-check must have power >= 0.8


def _rates(verdicts) -> dict[str, float]:
    v = np.asarray(verdicts)
    n = len(v)
    return {"replicates": n, "pass_rate": float(np.mean(v == PASS)),
            "inconclusive_rate": float(np.mean(v == INCONCLUSIVE)), "fail_rate": float(np.mean(v == FAIL))}


def _row(claim: str, level: str, target: str, case: str, truth: str, verdicts, strict_fail: bool
         ) -> dict[str, Any]:
    """One calibration row. A null's wrong verdicts are its PASSes, and at the threshold (`strict_fail`) its FAILs
    too; a positive's wrong verdicts are everything but PASS (1 - power)."""
    r = _rates(verdicts)
    if truth == "null":
        worst = max(r["pass_rate"], r["fail_rate"]) if strict_fail else r["pass_rate"]
        ok = worst <= MAX_WRONG
    else:
        worst, ok = 1 - r["pass_rate"], None
    return {"claim": claim, "level": level, "target": target, "case": case, "truth": truth, **r,
            "wrong_rate": worst, "holds": ok}


def rule_verdicts(values: np.ndarray, op: str, threshold: float) -> np.ndarray:
    """R21's verdicts of replicated ensembles, values [R, K]: `subcheck`'s own count and `sign_test`."""
    counts = holds_array(values, op, threshold).sum(1)
    return CODES[sign_test(counts, values.shape[1])]


def _spread(per_member) -> float:
    """The members' standard deviation (1 where it is 0 or undefined: the sign test does not depend on it)."""
    x = np.asarray(per_member, float)
    x = x[np.isfinite(x)]
    sd = float(np.std(x, ddof=1)) if len(x) > 1 else 0.0
    return sd if sd > 0 else 1.0


def recentred(per_member, threshold: float) -> np.ndarray | None:
    """The members' finite values shifted so that the threshold lies midway between the two middle ones (so that a
    member drawn from them passes with probability 1/2); None where those two tie (a discrete statistic: no shift
    puts half the members on each side) or fewer than two values are finite."""
    x = np.sort(np.asarray(per_member, float)[np.isfinite(np.asarray(per_member, float))])
    if len(x) < 2:
        return None
    lo, hi = x[(len(x) - 1) // 2], x[(len(x) - 1) // 2 + 1]
    if lo == hi:
        return None
    return x + (threshold - (lo + hi) / 2)


def _bimodal(rng, shape, sd):
    """An 80/20 mixture of two normals (sd each, means 3 sd apart), shifted so that its median is 0."""
    z = np.where(rng.random(shape) < 0.8, 0.0, 3.0) + rng.standard_normal(shape)
    grid = np.linspace(-5, 8, 20001)
    cdf = 0.8 * stats.norm.cdf(grid) + 0.2 * stats.norm.cdf(grid - 3.0)
    return sd * (z - grid[np.searchsorted(cdf, 0.5)])


def rule_calibration(claim: str, checks: dict[str, SubCheck], k: int, rng: np.random.Generator,
                     n: int = N_RULE) -> list[dict[str, Any]]:
    """R21's rule on each sub-check's nulls (median at the threshold) and planted positives (module docstring)."""
    rows = []
    for name, sub in checks.items():
        if not sub.per_member:  # unmeasured by design: nothing to calibrate
            continue
        if sub.yes_no:
            p0 = float(sub.threshold_value)
            for case, p, truth in ((f"Bernoulli({p0:g}): the threshold", p0, "null"),
                                   (f"Bernoulli({P1:g}): R21's effect size", P1, "positive")):
                v = CODES[sign_test((rng.random((n, k)) < p).sum(1), k, p0)]
                rows.append(_row(claim, "rule", name, case, truth, v, strict_fail=True))
            continue
        t, op = float(sub.threshold_value), sub.op
        sd = _spread(sub.per_member)
        side = 1.0 if op in (">=", ">") else -1.0
        cases = []
        own = recentred(sub.per_member, t)
        if own is not None:
            cases.append(("own member values recentred (threshold midway between the middle two), resampled",
                          lambda: rng.choice(own, (n, k)), "null"))
        cases += [
            ("normal at the threshold (members' spread)", lambda: t + sd * rng.standard_normal((n, k)), "null"),
            ("skewed: lognormal sigma=1, median at the threshold",
             lambda: t + sd * np.expm1(rng.standard_normal((n, k))), "null"),
            ("bimodal 80/20 mixture, median at the threshold", lambda: t + _bimodal(rng, (n, k), sd), "null"),
            (f"p = {P1:g} (R21's effect size: normal, {stats.norm.ppf(P1):.2f} member SD on the passing side)",
             lambda: t + side * sd * stats.norm.ppf(P1) + sd * rng.standard_normal((n, k)), "positive"),
            ("p = 0.84 (normal, one member SD on the passing side)",
             lambda: t + side * sd + sd * rng.standard_normal((n, k)), "positive"),
        ]
        for case, draw, truth in cases:
            rows.append(_row(claim, "rule", name, case, truth, rule_verdicts(draw(), op, t), strict_fail=True))
    return rows


def member_key(table: pd.DataFrame) -> str | None:
    """The column that names a table's members: `member` (Parts B, C), `seed` (Part A), or none (a table over the
    whole ensemble)."""
    return next((c for c in ("member", "seed") if c in table.columns), None)


def ensemble_members(tables: dict[str, Any]) -> list:
    """The members of a claim's tables (the first table with a member column)."""
    for t in tables.values():
        if isinstance(t, pd.DataFrame) and member_key(t):
            return sorted(t[member_key(t)].dropna().unique().tolist())
    return []


def claim_calibration(claim: str, tables: dict[str, Any], params: dict[str, Any], rng: np.random.Generator,
                      n: int = N_CLAIM) -> list[dict[str, Any]]:
    """The claim's check on each of its claim-level nulls and positives (n replicates for a random null, n / 4 for
    a random positive, one for a deterministic case). params["nulls"] is the dotted name of the claim's nulls function
    (its `nulls:` in workflow/claims.yaml; none, no claim-level rows): (tables, params) -> {case: (truth, make,
    random)}, truth "null" or "positive", make(tables, rng) the tables of that case, random whether make draws."""
    nulls = load_function(params["nulls"])(tables, params) if params.get("nulls") else {}
    rows = []
    for case, (truth, make, random) in nulls.items():
        reps = (n if truth == "null" else max(1, n // 4)) if random else 1
        verdicts = [run_check(make(tables, rng), params, details=False).verdict for _ in range(reps)]
        rows.append(_row(claim, "claim", "claim", case, truth, verdicts, strict_fail=False))
    return rows


def outcome_shares(table: pd.DataFrame) -> pd.DataFrame:
    """Each calibration row's verdicts as what they mean for its truth: `right` (a positive's PASS; a rule-level
    null's INCONCLUSIVE, since it lies exactly at the threshold; a claim-level null's FAIL, since its claim is
    false), `undecided` (an INCONCLUSIVE that is neither right nor wrong: a positive's missing power, a claim-level
    null's) and `wrong` (a positive's FAIL; a null's PASS, and at the threshold its FAIL too, as `_row` counts them).
    What the calibration figure draws: a null that behaves is not drawn in the colour of a failure."""
    null, rule = table["truth"] == "null", table["level"] == "rule"
    p, i, f = table["pass_rate"], table["inconclusive_rate"], table["fail_rate"]
    right = np.where(null, np.where(rule, i, f), p)
    undecided = np.where(null & rule, 0.0, i)
    wrong = np.where(null, np.where(rule, p + f, p), f)
    return pd.DataFrame({"right": right, "undecided": undecided, "wrong": wrong}, index=table.index)


def claim_rng(seed: int, claim: str) -> np.random.Generator:
    """The generator of one claim's R19 draws (its calibration and its recurrence): seeded by the config's seed and
    the claim id's bytes (not their sum, under which B3 and C2 shared a stream)."""
    return np.random.default_rng([int(seed), *claim.encode()])


def calibration_table(claim: str, tables: dict[str, Any], params: dict[str, Any], checks: dict[str, SubCheck],
                      seed: int, rule_replicates: int = N_RULE, claim_replicates: int = N_CLAIM) -> pd.DataFrame:
    """R19's table for one claim: the rule rows of every sub-check and the claim-level rows."""
    rng = claim_rng(seed, claim)
    k = len(ensemble_members(tables)) or max((len(c.per_member) for c in checks.values()), default=1)
    rows = (rule_calibration(claim, checks, k, rng, rule_replicates)
            + claim_calibration(claim, tables, params, rng, claim_replicates))
    return pd.DataFrame(rows).assign(members=k)
