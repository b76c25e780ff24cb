"""Ensemble intervals and three-valued verdicts (docs/SCIENCE.md, rule R0).

A claim's sub-check has one headline statistic per ensemble member (pretraining member for Parts B and C, Part
A's `control.seeds` repetition). The ensemble estimate is their mean; its 95% interval is the percentile bootstrap
over members (`scipy.stats.bootstrap`). Part C nests it: members, then RL seeds within each drawn member
(`nested_interval`). The verdict compares the interval with the threshold:

    ">=" t: PASS if lo >= t, FAIL if hi < t       "<=" t: PASS if hi <= t, FAIL if lo > t
    ">"  t: PASS if lo > t,  FAIL if hi <= t      "<"  t: PASS if hi < t,  FAIL if lo >= t

and INCONCLUSIVE otherwise (the interval straddles the threshold). A non-finite estimate or interval is FAIL (the
statistic could not be measured). A yes/no sub-check is the fraction of members where it holds, with
the threshold "> 0.5" (a majority, set per claim under `claims:`).

Roles: a *required* sub-check that FAILs fails the claim; a *binding* one (e.g. "the configured lr is the rule's
choice") that does not PASS makes the claim at best INCONCLUSIVE, never FAIL. `claim_verdict` combines them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Callable, Sequence

import numpy as np
from scipy import stats

PASS, FAIL, INCONCLUSIVE = "PASS", "FAIL", "INCONCLUSIVE"
VERDICTS = (PASS, FAIL, INCONCLUSIVE)
OPS = (">=", "<=", ">", "<")
ROLES = ("required", "binding")
CONFIDENCE = 0.95


def holds(value: float, op: str, threshold: float) -> bool:
    """value op threshold, False for a non-finite value."""
    v = float(value)
    if not math.isfinite(v):
        return False
    return {">=": v >= threshold, "<=": v <= threshold, ">": v > threshold, "<": v < threshold}[op]


def interval_verdict(lo: float, hi: float, op: str, threshold: float) -> str:
    """PASS / FAIL / INCONCLUSIVE of an interval [lo, hi] against `op threshold` (module docstring)."""
    if op not in OPS:
        raise ValueError(f"unknown comparison {op!r}; one of {OPS}")
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return FAIL
    if holds(lo, op, threshold) and holds(hi, op, threshold):
        return PASS
    if not holds(lo, op, threshold) and not holds(hi, op, threshold):
        return FAIL
    return INCONCLUSIVE


def with_member(table):
    """The table with a `member` column: a table from before the ensemble (or of a single run) is member 0."""
    return table if "member" in table.columns else table.assign(member=0)


def _rng(seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def interval(per_member: Sequence[float], n_resamples: int, seed) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the mean over members (resampling members with replacement).

    One member: the interval is its value (nothing to resample). Any non-finite member value: (nan, nan).
    """
    x = np.asarray(per_member, float)
    if len(x) == 0 or not np.isfinite(x).all():
        return float("nan"), float("nan")
    if len(x) == 1 or np.ptp(x) == 0:
        return float(x[0]) if len(x) == 1 else float(x.mean()), float(x[0]) if len(x) == 1 else float(x.mean())
    res = stats.bootstrap((x,), np.mean, n_resamples=n_resamples, method="percentile",
                          confidence_level=CONFIDENCE, rng=_rng(seed))
    ci = res.confidence_interval
    return float(ci.low), float(ci.high)


def nested_interval(per_member: Callable[[int, np.ndarray | None], float], n_members: int,
                    n_units: Sequence[int], n_resamples: int, seed) -> tuple[float, float]:
    """95% percentile interval of the mean over members of a statistic that depends on each member's units (RL
    seeds), resampled at both levels as rliable's stratified bootstrap does: draw members with replacement, then
    units within each drawn member with replacement, and recompute.

    per_member(k, idx): member k's statistic from its units idx (an index array with repeats), or from all of
    them when idx is None. The outer level is `scipy.stats.bootstrap` over member indices; the inner draws come
    from a generator seeded from `seed`, so the interval is deterministic.
    """
    if n_members == 0:
        return float("nan"), float("nan")
    inner = np.random.default_rng(_rng(seed).integers(2**63))

    def stat(members: np.ndarray) -> float:
        vals = [per_member(int(k), inner.integers(0, n_units[int(k)], n_units[int(k)])) for k in members]
        return float(np.mean(vals))

    if n_members == 1:
        draws = np.array([stat(np.array([0])) for _ in range(n_resamples)])
        if not np.isfinite(draws).all():
            return float("nan"), float("nan")
        lo, hi = np.percentile(draws, [50 * (1 - CONFIDENCE), 50 * (1 + CONFIDENCE)])
        return float(lo), float(hi)
    res = stats.bootstrap((np.arange(n_members),), stat, vectorized=False, n_resamples=n_resamples,
                          method="percentile", confidence_level=CONFIDENCE, rng=_rng(seed))
    ci = res.confidence_interval
    return float(ci.low), float(ci.high)


@dataclass
class SubCheck:
    """One sub-check of a claim: its estimate `value`, 95% `interval`, the comparison `op threshold_value` (and
    `threshold`, its text), the three-valued `verdict`, its `role`, each member's value and pass/fail, and a
    `note`. `yes_no` marks a yes/no sub-check (the fraction of members where it holds). Built by `subcheck`,
    `yes_no_subcheck`, `within_subcheck` or `unmeasured`; `as_dict` is its form in the claim record."""

    value: float
    interval: list[float]
    op: str
    threshold_value: Any
    threshold: str
    verdict: str
    role: str
    per_member: list[float]
    member_passed: list[bool]
    note: str = ""
    yes_no: bool = False

    @property
    def passed(self) -> bool:
        return self.verdict == PASS

    def __getitem__(self, key: str) -> Any:  # read like the record's dict
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default)

    def replace(self, **changes) -> "SubCheck":
        return replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        out = {"value": self.value, "interval": list(self.interval), "op": self.op,
               "threshold_value": self.threshold_value, "threshold": self.threshold, "verdict": self.verdict,
               "role": self.role, "per_member": list(self.per_member), "member_passed": list(self.member_passed),
               "passed": self.passed, "note": self.note}
        if self.yes_no:
            out["yes_no"] = True
        return out


def judged(per_member: Sequence[float], op: str, threshold: float, lo: float, hi: float, *,
           estimate: float | None = None, role: str = "required", note: str = "") -> SubCheck:
    """A sub-check whose interval [lo, hi] is already known (a bootstrap of the check's own, e.g. R4's envelope
    over both directions, or a nested interval from the ensemble table): estimate (mean over members unless
    given), verdict from the interval, each member's value and pass/fail."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; one of {ROLES}")
    x = np.asarray(per_member, float)
    est = float(x.mean()) if estimate is None and len(x) else float("nan") if estimate is None else float(estimate)
    verdict = interval_verdict(lo, hi, op, threshold) if math.isfinite(est) else FAIL
    return SubCheck(value=est, interval=[float(lo), float(hi)], op=op, threshold_value=float(threshold),
                    threshold=f"{op} {threshold:g}", verdict=verdict, role=role, per_member=[float(v) for v in x],
                    member_passed=[holds(v, op, threshold) for v in x], note=note)


def subcheck(per_member: Sequence[float], op: str, threshold: float, *, n_resamples: int, seed,
             role: str = "required", note: str = "") -> SubCheck:
    """One sub-check over the ensemble: the mean over members, its 95% interval (bootstrap over members), verdict,
    and each member's value and pass/fail."""
    lo, hi = interval(np.asarray(per_member, float), n_resamples, seed)
    return judged(per_member, op, threshold, lo, hi, role=role, note=note)


def yes_no_subcheck(per_member: Sequence[bool], threshold: float, *, n_resamples: int, seed,
                    role: str = "required", note: str = "") -> SubCheck:
    """A yes/no sub-check: the fraction of members where it holds, PASS when its interval lies above `threshold`
    (R0: 0.5, a majority of members)."""
    out = subcheck([1.0 if bool(b) else 0.0 for b in per_member], ">", threshold, n_resamples=n_resamples,
                   seed=seed, role=role, note=note)
    return out.replace(member_passed=[bool(b) for b in per_member], yes_no=True)


def within_subcheck(per_member: Sequence[float], lo: float, hi: float, *, n_resamples: int, seed,
                    role: str = "required") -> SubCheck:
    """"lo <= statistic <= hi": one interval (the bootstrap over members of the mean), PASS when it lies inside
    [lo, hi], FAIL when it lies wholly outside, INCONCLUSIVE otherwise (R0's rule at both ends)."""
    iv = interval(np.asarray(per_member, float), n_resamples, seed)  # one bootstrap serves both ends
    below = judged(per_member, ">=", lo, *iv, role=role)
    above = judged(per_member, "<=", hi, *iv, role=role)
    verdicts = {below.verdict, above.verdict}
    verdict = FAIL if FAIL in verdicts else PASS if verdicts == {PASS} else INCONCLUSIVE
    return below.replace(threshold=f"in [{lo:g}, {hi:g}]", op="in", threshold_value=[float(lo), float(hi)],
                         verdict=verdict,
                         member_passed=[a and b for a, b in zip(below.member_passed, above.member_passed)])


def unmeasured(op: str, threshold: float, note: str, role: str = "required") -> SubCheck:
    """A sub-check these tables cannot compute (e.g. one member where a held-out half is needed): INCONCLUSIVE and
    marked, never a silent PASS or a FAIL the numbers did not earn (R0). No per-member values, so it does not
    enter the member verdicts."""
    nan = float("nan")
    return SubCheck(value=nan, interval=[nan, nan], op=op, threshold_value=float(threshold),
                    threshold=f"{op} {threshold:g}", verdict=INCONCLUSIVE, role=role, per_member=[],
                    member_passed=[], note=note)


def claim_verdict(checks: dict[str, dict[str, Any]]) -> str:
    """FAIL if a required sub-check FAILs; PASS if every sub-check PASSes; INCONCLUSIVE otherwise."""
    if not checks:
        raise ValueError("a claim needs at least one sub-check")
    if any(c.get("role", "required") == "required" and c["verdict"] == FAIL for c in checks.values()):
        return FAIL
    if all(c["verdict"] == PASS for c in checks.values()):
        return PASS
    return INCONCLUSIVE


def member_verdicts(checks: dict[str, dict[str, Any]]) -> list[str]:
    """Each member's own verdict: the same rule on its point values (no interval); a binding sub-check that does
    not hold makes the member INCONCLUSIVE. Sub-checks without per-member values do not count."""
    per = [c for c in checks.values() if c.get("member_passed")]
    if not per:
        return []
    k = max(len(c["member_passed"]) for c in per)
    out = []
    for i in range(k):
        bits = [(c.get("role", "required"), c["member_passed"][i]) for c in per if i < len(c["member_passed"])]
        if any(role == "required" and not ok for role, ok in bits):
            out.append(FAIL)
        elif all(ok for _, ok in bits):
            out.append(PASS)
        else:
            out.append(INCONCLUSIVE)
    return out
