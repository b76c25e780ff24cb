"""Ensemble intervals and three-valued verdicts (docs/SCIENCE.md, rules R0 and R18).

A claim's sub-check has one headline statistic per ensemble member (pretraining member for Parts B and C, Part
A's `control.seeds` repetition). R18's decision rule, which holds each wrong verdict's rate at or below 5% at K
members (measured by the calibration stage, R19):
- continuous: the 95% Student-t interval of the member mean, mean +- t(0.975, K-1) s / sqrt(K) (`interval`);
- error-type (`scale="log"`): the same on the log scale, estimate the geometric mean;
- yes/no: the count of members where it holds, exact binomial test against p0 (`yes_no_subcheck`), reported with
  the Clopper-Pearson interval whose ends are those tests.
The verdict compares the interval with the threshold:

    ">=" t: PASS if lo >= t, FAIL if hi < t       "<=" t: PASS if hi <= t, FAIL if lo > t
    ">"  t: PASS if lo > t,  FAIL if hi <= t      "<"  t: PASS if hi < t,  FAIL if lo >= t

and INCONCLUSIVE otherwise (the interval straddles the threshold). A nan estimate or interval is FAIL (the
statistic could not be measured); one member has no interval (INCONCLUSIVE).

Roles: a *required* sub-check that FAILs fails the claim; a *binding* one (e.g. "the configured lr is the rule's
choice") that does not PASS makes the claim at best INCONCLUSIVE, never FAIL. `claim_verdict` combines them.
`nested_interval` (Part C's members-then-seeds bootstrap) is kept for the reported ensemble table only.
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
    if math.isnan(lo) or math.isnan(hi):
        return FAIL  # the statistic could not be measured
    if math.isinf(lo) or math.isinf(hi):
        return INCONCLUSIVE  # no interval (one member): it straddles every threshold
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


SCALES = ("linear", "log")
LOG_FLOOR = 1e-12  # R18: a member value <= 0 on the log scale counts as LOG_FLOOR x the threshold


def on_scale(x, scale: str, threshold: float | None = None) -> np.ndarray:
    """Member values on the rule's scale: as they are, or their logs (values <= 0 floored at LOG_FLOOR x the
    threshold, an exact zero error; a nan, a value that could not be measured, stays nan: R18 FAILs it)."""
    x = np.asarray(x, float)
    if scale == "linear":
        return x
    if scale != "log":
        raise ValueError(f"unknown scale {scale!r}; one of {SCALES}")
    floor = LOG_FLOOR * (abs(threshold) if threshold else 1.0)
    return np.log(np.where((x > 0) | np.isnan(x), x, floor))


def interval(per_member: Sequence[float], scale: str = "linear", threshold: float | None = None
             ) -> tuple[float, float, float]:
    """(estimate, lo, hi): the member mean and its 95% Student-t interval, mean +- t(0.975, K-1) s / sqrt(K)
    (R18); on the log scale the geometric mean and exp of the interval of the mean log. One member: no interval
    (-inf, inf; the verdict is INCONCLUSIVE); members all equal: the interval is the estimate. Any non-finite member
    value: nan throughout."""
    x = on_scale(per_member, scale, threshold)
    if len(x) == 0 or not np.isfinite(x).all():
        return float("nan"), float("nan"), float("nan")
    mean = float(x.mean())
    half = math.inf if len(x) == 1 else float(stats.t.ppf(0.5 + CONFIDENCE / 2, len(x) - 1) * x.std(ddof=1)
                                              / math.sqrt(len(x)))
    out = (mean, mean - half, mean + half)
    return tuple(float(math.exp(v)) for v in out) if scale == "log" else out


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
    `note`. `yes_no` marks a yes/no sub-check (the fraction of members where it holds), `scale` a sub-check judged
    on the log scale (its value the geometric mean). Built by `subcheck`,
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
    scale: str = "linear"
    meaningful: bool = True  # R17: False when the config's shapes, not the data, fix the outcome

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
        if self.scale != "linear":
            out["scale"] = self.scale
        if not self.meaningful:
            out["meaningful"] = False
        return out


def judged(per_member: Sequence[float], op: str, threshold: float, lo: float, hi: float, *,
           estimate: float | None = None, role: str = "required", note: str = "") -> SubCheck:
    """A sub-check whose interval [lo, hi] is already known (a bootstrap of the check's own, e.g. R4's envelope
    over both directions): estimate (mean over members unless given), verdict from the interval, each member's
    value and pass/fail."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; one of {ROLES}")
    x = np.asarray(per_member, float)
    est = float(x.mean()) if estimate is None and len(x) else float("nan") if estimate is None else float(estimate)
    verdict = interval_verdict(lo, hi, op, threshold) if math.isfinite(est) else FAIL
    return SubCheck(value=est, interval=[float(lo), float(hi)], op=op, threshold_value=float(threshold),
                    threshold=f"{op} {threshold:g}", verdict=verdict, role=role, per_member=[float(v) for v in x],
                    member_passed=[holds(v, op, threshold) for v in x], note=note)


def subcheck(per_member: Sequence[float], op: str, threshold: float, *, scale: str = "linear",
             role: str = "required", note: str = "") -> SubCheck:
    """One sub-check over the ensemble (R18): the member mean (geometric on the log scale), its 95% Student-t
    interval, the verdict, and each member's value and pass/fail."""
    est, lo, hi = interval(per_member, scale, threshold)
    out = judged(per_member, op, threshold, lo, hi, estimate=est, role=role, note=note)
    return out.replace(scale=scale)


def binomial_bounds(count: int, k: int, tail: float = 0.05) -> tuple[float, float]:
    """Clopper-Pearson bounds of a proportion from `count` of `k`, `tail` in each tail: the lower bound lies above
    p0 exactly when P(Bin(k, p0) >= count) <= tail, the upper bound below p0 when P(Bin(k, p0) <= count) <= tail."""
    lo = 0.0 if count == 0 else float(stats.beta.ppf(tail, count, k - count + 1))
    hi = 1.0 if count == k else float(stats.beta.ppf(1 - tail, count + 1, k - count))
    return lo, hi


def yes_no_subcheck(per_member: Sequence[bool], threshold: float, *, role: str = "required",
                    note: str = "") -> SubCheck:
    """A yes/no sub-check (R18): the count of members where it holds, judged by the exact binomial test against
    p0 = `threshold` (0.5): PASS when P(Bin(K, p0) >= count) <= 0.05, FAIL when P(Bin(K, p0) <= count) <= 0.05,
    INCONCLUSIVE otherwise. Value: the fraction; interval: the Clopper-Pearson bounds with 5% in each tail."""
    bits = [bool(b) for b in per_member]
    k, count = len(bits), sum(bits)
    if k == 0:
        return unmeasured(">", threshold, "no members", role=role)
    lo, hi = binomial_bounds(count, k)
    frac = count / k
    verdict = PASS if lo > threshold else FAIL if hi < threshold else INCONCLUSIVE
    out = judged([1.0 if b else 0.0 for b in bits], ">", threshold, lo, hi, estimate=frac, role=role,
                 note=(note + "; " if note else "") + f"{count} of {k} members (exact binomial, R18)")
    out = out.replace(verdict=verdict, member_passed=bits, yes_no=True)
    can_pass, can_fail = binomial_bounds(k, k)[0] > threshold, binomial_bounds(0, k)[1] < threshold
    if not (can_pass and can_fail):
        cannot = " or ".join(w for w, ok in (("PASS", can_pass), ("FAIL", can_fail)) if not ok)
        out = not_meaningful(out, f"at K = {k} no count of members can {cannot} (R18's exact binomial, R17)")
    return out


def not_meaningful(check: SubCheck, why: str) -> SubCheck:
    """R17: a sub-check whose outcome the config's shapes fix, not its data. It keeps its numbers and verdict, its
    note says why, and it is left out of the claim's and the members' verdicts (`claim_verdict`,
    `member_verdicts`)."""
    note = f"not meaningful at this size: {why}" + (f"; {check.note}" if check.note else "")
    return check.replace(meaningful=False, note=note)


def _counted(checks: dict[str, Any]) -> dict[str, Any]:
    """The sub-checks that enter a verdict: all but those marked not meaningful at this size (R17)."""
    return {n: c for n, c in checks.items() if c.get("meaningful", True) is not False}


def within_subcheck(per_member: Sequence[float], lo: float, hi: float, *, role: str = "required") -> SubCheck:
    """"lo <= statistic <= hi": one Student-t interval of the member mean, PASS when it lies inside [lo, hi], FAIL
    when it lies wholly outside, INCONCLUSIVE otherwise (R18's rule at both ends)."""
    est, *iv = interval(per_member)
    below = judged(per_member, ">=", lo, *iv, estimate=est, role=role)
    above = judged(per_member, "<=", hi, *iv, estimate=est, role=role)
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
    """FAIL if a required sub-check FAILs; PASS if every sub-check PASSes; INCONCLUSIVE otherwise. Sub-checks marked
    not meaningful at this size (R17) do not count; a claim whose every sub-check is marked is INCONCLUSIVE."""
    if not checks:
        raise ValueError("a claim needs at least one sub-check")
    checks = _counted(checks)
    if not checks:
        return INCONCLUSIVE
    if any(c.get("role", "required") == "required" and c["verdict"] == FAIL for c in checks.values()):
        return FAIL
    if all(c["verdict"] == PASS for c in checks.values()):
        return PASS
    return INCONCLUSIVE


def member_verdicts(checks: dict[str, dict[str, Any]]) -> list[str]:
    """Each member's own verdict: the same rule on its point values (no interval); a binding sub-check that does
    not hold makes the member INCONCLUSIVE. Sub-checks without per-member values, or marked not meaningful at this
    size (R17), do not count."""
    per = [c for c in _counted(checks).values() if c.get("member_passed")]
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
