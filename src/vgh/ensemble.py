"""Ensemble verdicts: the sign test over members (docs/SCIENCE.md, rules R0, R20, R21).

A claim's sub-check has one statistic per ensemble member (pretraining member for Parts B and C, Part A's
`control.seeds` repetition); members are independent replicates of the experiment (R20). R21's decision rule: the
count c of the K members where the sub-check holds (x op t for a continuous statistic, a property for a yes/no one;
a member whose statistic is nan does not hold), judged by the exact binomial test against p0 (1/2 for a continuous
statistic, the configured fraction for a yes/no one):

    PASS when P(Bin(K, p0) >= c) <= 0.05,   FAIL when P(Bin(K, p0) <= c) <= 0.05,   INCONCLUSIVE otherwise.

Its error rates at p = p0 are the binomial's whatever the shape of the members' values (`sign_test`, vectorized, is
the one implementation). Reported beside it: the median member value and its distribution-free interval
[x_(K-c*+1), x_(c*)] (order statistics, c* the smallest count that PASSes), whose position against the threshold is
the verdict (`interval_verdict`); for a yes/no sub-check the fraction and its Clopper-Pearson bounds.

    ">=" t: PASS if lo >= t, FAIL if hi < t       "<=" t: PASS if hi <= t, FAIL if lo > t
    ">"  t: PASS if lo > t,  FAIL if hi <= t      "<"  t: PASS if hi < t,  FAIL if lo >= t

Roles: a *required* sub-check that FAILs fails the claim; a *binding* one (the configured lr is the rule's choice)
that does not PASS makes it at best INCONCLUSIVE (`claim_verdict`). R29's `paired_subcheck` counts some members only.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace
from typing import Any, Sequence

import numpy as np
from scipy import stats

PASS, FAIL, INCONCLUSIVE = "PASS", "FAIL", "INCONCLUSIVE"
VERDICTS = (PASS, FAIL, INCONCLUSIVE)
OPS = (">=", "<=", ">", "<")
ROLES = ("required", "binding")
TAIL = 0.05  # R21: each wrong verdict's rate at p = p0 is at most this
P0 = 0.5  # R21: a continuous sub-check holds in more than half of the replicates (PASS) or fewer (FAIL)


def holds(value: float, op: str, threshold: float) -> bool:
    """value op threshold, False for a non-finite value."""
    return bool(holds_array([value], op, threshold)[0])


def holds_array(values, op: str, threshold: float) -> np.ndarray:
    """`holds` elementwise over an array (nan and +-inf do not hold)."""
    x = np.asarray(values, float)
    with np.errstate(invalid="ignore"):
        out = {">=": x >= threshold, "<=": x <= threshold, ">": x > threshold, "<": x < threshold}[op]
    return out & np.isfinite(x)


def interval_verdict(lo: float, hi: float, op: str, threshold: float) -> str:
    """PASS / FAIL / INCONCLUSIVE of an interval [lo, hi] against `op threshold` (module docstring)."""
    if op not in OPS:
        raise ValueError(f"unknown comparison {op!r}; one of {OPS}")
    if math.isnan(lo) or math.isnan(hi):
        return FAIL  # the statistic could not be measured

    def end_holds(v: float) -> bool:  # an infinite end is unbounded on its side (no interval, or a worst member)
        if math.isinf(v):
            return v > 0 if op in (">=", ">") else v < 0
        return holds(v, op, threshold)

    ends = end_holds(lo) + end_holds(hi)
    return PASS if ends == 2 else (FAIL if ends == 0 else INCONCLUSIVE)


def with_member(table):
    """The table with a `member` column: a table from before the ensemble (or of a single run) is member 0."""
    return table if "member" in table.columns else table.assign(member=0)


@functools.cache
def critical_counts(k: int, p0: float = P0, tail: float = TAIL) -> tuple[int | None, int | None]:
    """(c_pass, c_fail) of R21's exact binomial test at K = k: PASS when the count is >= c_pass (the smallest c with
    P(Bin(k, p0) >= c) <= tail), FAIL when it is <= c_fail (the largest c with P(Bin(k, p0) <= c) <= tail); None
    where no count reaches it (k <= 4 at p0 = 1/2)."""
    c = np.arange(k + 1)
    up = c[stats.binom.sf(c - 1, k, p0) <= tail]
    down = c[stats.binom.cdf(c, k, p0) <= tail]
    return (int(up.min()) if up.size else None), (int(down.max()) if down.size else None)


CODES = np.array([FAIL, INCONCLUSIVE, PASS])  # sign_test's verdict codes 0, 1, 2


def sign_test(counts, k: int, p0: float = P0) -> np.ndarray:
    """R21's verdicts of counts (any shape) of k members: codes 2 PASS, 0 FAIL, 1 INCONCLUSIVE (`CODES`)."""
    c_pass, c_fail = critical_counts(int(k), float(p0))
    counts = np.asarray(counts)
    out = np.ones(counts.shape, dtype=np.int8)
    if c_pass is not None:
        out[counts >= c_pass] = 2
    if c_fail is not None:
        out[counts <= c_fail] = 0
    return out


def median_interval(per_member: Sequence[float], op: str) -> tuple[float, float, float]:
    """(median, lo, hi): the median member value and its distribution-free interval [x_(K-c*+1), x_(c*)] (R21), a
    member whose value is not finite (nan: it could not be measured) ranked as the worst value for `op` (below every
    other for ">=" / ">", above for "<=" / "<"); -inf / inf where the order statistic is such a member, and
    (-inf, inf) where no count can PASS (K <= 4)."""
    x = np.asarray(per_member, float)
    k = len(x)
    if k == 0:
        return float("nan"), float("nan"), float("nan")
    worst = -np.inf if op in (">=", ">") else np.inf
    srt = np.sort(np.where(np.isfinite(x), x, worst))  # a non-finite member does not hold (`holds`): ranked worst
    mid = float(np.median(srt))
    c_pass, _ = critical_counts(k)
    lo, hi = (-np.inf, np.inf) if c_pass is None else (float(srt[k - c_pass]), float(srt[c_pass - 1]))
    return (mid if math.isfinite(mid) else float("nan")), lo, hi


@dataclass
class SubCheck:
    """One sub-check of a claim: its estimate `value` (the median member value; for a yes/no sub-check the fraction),
    its `interval` (R21's order-statistic interval of the median; Clopper-Pearson bounds for a yes/no one), the
    comparison `op threshold_value` (and `threshold`, its text), the three-valued `verdict` (R21's sign test on the
    count of members that pass), its `role`, each member's value and pass/fail, and a `note`. `yes_no` marks a yes/no
    sub-check. Built by `subcheck`, `yes_no_subcheck` or `unmeasured`; `as_dict` is its form in the claim record."""

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
    meaningful: bool = True  # R17: False when the config's shapes, not the data, fix the outcome
    p0: float = P0  # R21: the binomial test's null pass rate (a yes/no sub-check's configured fraction)
    member_informative: list[bool] | None = None  # R29: the members the count is over (None: every member)

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
               "passed": self.passed, "note": self.note, "p0": self.p0}
        if self.yes_no:
            out["yes_no"] = True
        if not self.meaningful:
            out["meaningful"] = False
        if self.member_informative is not None:
            out["member_informative"] = list(self.member_informative)
        return out


def _count_note(count: int, k: int, p0: float) -> str:
    return f"{count} of {k} members (exact binomial against {p0:g}, R21)"


def _shapes_fix(out: SubCheck, k: int, p0: float) -> SubCheck:
    """R17: a count that cannot go both ways at K (no count PASSes, or none FAILs) is marked not meaningful."""
    c_pass, c_fail = critical_counts(k, p0)
    if c_pass is not None and c_fail is not None:
        return out
    cannot = " or ".join(w for w, c in (("PASS", c_pass), ("FAIL", c_fail)) if c is None)
    return not_meaningful(out, f"at K = {k} no count of members can {cannot} (R21's exact binomial, R17)")


def subcheck(per_member: Sequence[float], op: str, threshold: float, *, role: str = "required",
             note: str = "") -> SubCheck:
    """One sub-check over the ensemble (R21): each member passes when its value `op threshold`; the verdict is the
    sign test on the count of members that pass; reported: the median and its order-statistic interval."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; one of {ROLES}")
    if op not in OPS:
        raise ValueError(f"unknown comparison {op!r}; one of {OPS}")
    x = np.asarray(per_member, float)
    k = len(x)
    if k == 0:
        return unmeasured(op, threshold, "no members", role=role)
    bits = holds_array(x, op, threshold)
    count = int(bits.sum())
    est, lo, hi = median_interval(x, op)
    out = SubCheck(value=est, interval=[lo, hi], op=op, threshold_value=float(threshold),
                   threshold=f"{op} {threshold:g}", verdict=str(CODES[sign_test(count, k)]), role=role,
                   per_member=[float(v) for v in x], member_passed=[bool(b) for b in bits],
                   note=(note + "; " if note else "") + _count_note(count, k, P0))
    return _shapes_fix(out, k, P0)


def paired_subcheck(per_member: Sequence[float], op: str, threshold: float, informative: Sequence[bool], *,
                    role: str = "required", note: str = "") -> SubCheck:
    """R29: `subcheck`'s sign test over the informative members only (K' of K: where a baseline is already at its
    best nothing can beat it, so the member is left out, not counted as failing); K' <= 4 is INCONCLUSIVE and stays
    counted (the claim at best INCONCLUSIVE); only K <= 4 marks it (R17). Median and interval: the informative's."""
    x, mask = np.asarray(per_member, float), np.asarray(informative, bool)
    if mask.shape != x.shape:
        raise ValueError(f"{mask.shape[0] if mask.ndim else 0} informative flags for {len(x)} members")
    inner = subcheck(x[mask], op, threshold, role=role) if mask.any() else unmeasured(op, threshold, "", role=role)
    k, k_in, passed = len(x), int(mask.sum()), holds_array(x, op, threshold) & mask
    count = int(passed.sum())
    verdict = str(CODES[sign_test(count, k_in)]) if k_in else INCONCLUSIVE
    out = inner.replace(verdict=verdict, per_member=[float(v) for v in x], member_passed=[bool(b) for b in passed],
                        member_informative=[bool(b) for b in mask], meaningful=True,
                        note=(note + "; " if note else "") + f"{count} of the {k_in} informative members (K' of K = "
                        f"{k}; R29), exact binomial against {P0:g} (R21)")
    return _shapes_fix(out, k, P0)


def binomial_bounds(count: int, k: int, tail: float = TAIL) -> tuple[float, float]:
    """Clopper-Pearson bounds of a proportion from `count` of `k`, `tail` in each tail: the lower bound lies above
    p0 exactly when P(Bin(k, p0) >= count) < tail, the upper bound below p0 when P(Bin(k, p0) <= count) < tail."""
    lo = 0.0 if count == 0 else float(stats.beta.ppf(tail, count, k - count + 1))
    hi = 1.0 if count == k else float(stats.beta.ppf(1 - tail, count + 1, k - count))
    return lo, hi


def yes_no_subcheck(per_member: Sequence[bool], threshold: float, *, role: str = "required",
                    note: str = "") -> SubCheck:
    """A yes/no sub-check (R21): the count of members where it holds, judged by the exact binomial test against
    p0 = `threshold` (`sign_test`). Value: the fraction; interval: the Clopper-Pearson bounds, 5% in each tail."""
    bits = [bool(b) for b in per_member]
    k, count = len(bits), sum(bits)
    if k == 0:
        return unmeasured(">", threshold, "no members", role=role)
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; one of {ROLES}")
    lo, hi = binomial_bounds(count, k)
    out = SubCheck(value=count / k, interval=[lo, hi], op=">", threshold_value=float(threshold),
                   threshold=f"> {threshold:g}", verdict=str(CODES[sign_test(count, k, threshold)]), role=role,
                   per_member=[1.0 if b else 0.0 for b in bits], member_passed=bits,
                   note=(note + "; " if note else "") + _count_note(count, k, threshold), yes_no=True,
                   p0=float(threshold))
    return _shapes_fix(out, k, float(threshold))


def not_meaningful(check: SubCheck, why: str) -> SubCheck:
    """R17: a sub-check whose outcome the config's shapes fix, not its data. It keeps its numbers and verdict, its
    note says why, and it is left out of the claim's and the members' verdicts (`claim_verdict`,
    `member_verdicts`)."""
    note = f"not meaningful at this size: {why}" + (f"; {check.note}" if check.note else "")
    return check.replace(meaningful=False, note=note)


def _counted(checks: dict[str, Any]) -> dict[str, Any]:
    """The sub-checks that enter a verdict: all but those marked not meaningful at this size (R17)."""
    return {n: c for n, c in checks.items() if c.get("meaningful", True) is not False}


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
    def verdict(i: int) -> str:
        bits = [(c.get("role", "required"), c["member_passed"][i]) for c in per if i < len(c["member_passed"])
                and (c.get("member_informative") is None or c["member_informative"][i])]  # R29: not counted there
        if any(role == "required" and not ok for role, ok in bits):
            return FAIL
        return PASS if all(ok for _, ok in bits) else INCONCLUSIVE

    return [verdict(i) for i in range(max(len(c["member_passed"]) for c in per))]
