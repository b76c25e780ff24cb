"""R22 (docs/SCIENCE.md): the predicted chance that a fresh ensemble of the same config gives a claim's verdict again,
and the distribution of the whole verdict table over fresh ensembles (what CI's fresh check compares with, R23).

A member's *pattern* is the vector of its pass bits over the counted sub-checks of a family of claims that share
members (Part A's seeds; the pretraining members of Parts B and C). A fresh ensemble of K members is drawn from the
posterior predictive of a Dirichlet process with concentration 1 and a uniform base over patterns: weights
~ Dirichlet(n_1, ..., n_m, 1) over the m distinct observed patterns and one pseudo-member, K members drawn from them,
and the members that fall to the pseudo-member take their patterns from a Polya urn of concentration 1 over uniformly
random patterns (the base's own Dirichlet process), so each sub-check's predictive pass rate is Jeffreys'
Beta(c + 1/2, K - c + 1/2). Every sub-check's count then gets R21's verdict (`vgh.ensemble.sign_test`) and every claim
its verdict (`claim_codes`, the vectorized `vgh.ensemble.claim_verdict`). Every draw takes the generator it is given.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd

from .claims_table import checks_from_members
from .ensemble import CODES, sign_test

FAIL_CODE, INCONCLUSIVE_CODE, PASS_CODE = 0, 1, 2


@dataclass(frozen=True)
class Column:
    """One counted sub-check of a family: its claim, name, role and the binomial test's p0; `informative`, for a
    sub-check counted over some members only (R29), the index of the column of their bits (role "informative")."""

    claim: str
    name: str
    role: str
    p0: float
    informative: int | None = None


def family_patterns(claims: Mapping[str, Mapping[str, Any]]) -> tuple[np.ndarray, list[Column], dict[str, list[str]]]:
    """The members' pass bits [K, S] over the counted sub-checks of `claims` (claim id -> {sub-check name -> SubCheck
    or its record dict}), those sub-checks' columns, and per claim the fixed verdicts of its sub-checks without
    per-member values (unmeasured: their verdict does not depend on the members). Sub-checks marked not meaningful
    at this size (R17) are left out, as the claim's verdict leaves them out."""
    cols, bits, fixed = [], [], {}
    for cid, checks in claims.items():
        fixed[cid] = []
        for name, c in checks.items():
            if c.get("meaningful", True) is False:
                continue
            passed = list(c.get("member_passed") or [])
            if not passed:
                fixed[cid].append(c["verdict"])
                continue
            mask = c.get("member_informative")
            if mask is not None:  # R29: its informative members' bits are a column of the pattern too
                cols.append(Column(cid, f"{name} (informative)", "informative", 0.5))
                bits.append(np.asarray(mask, bool))
            cols.append(Column(cid, name, c.get("role", "required"), float(c.get("p0", 0.5)),
                               len(cols) - 1 if mask is not None else None))
            bits.append(np.asarray(passed, bool))
    sizes = {len(b) for b in bits}
    if len(sizes) > 1:
        raise ValueError(f"the sub-checks of one family have different numbers of members: {sorted(sizes)}")
    k = sizes.pop() if sizes else 0
    return (np.stack(bits, axis=1) if bits else np.zeros((k, 0), bool)), cols, fixed


def predictive_bits(bits: np.ndarray, n_draws: int, rng: np.random.Generator, k: int | None = None) -> np.ndarray:
    """[D, k, S] pass bits of n_draws fresh ensembles of k members (default: as many as observed) from the
    Dirichlet-process predictive of the observed members' patterns `bits` [N, S] (module docstring)."""
    n, s = bits.shape
    k = n if k is None else int(k)
    patterns, counts = np.unique(bits, axis=0, return_counts=True)
    m = len(patterns)
    gam = rng.gamma(np.r_[counts, 1.0].astype(float), size=(n_draws, m + 1))
    w = gam / gam.sum(1, keepdims=True)
    cells = (rng.random((n_draws, k, 1)) > np.cumsum(w, 1)[:, None, :]).sum(-1)  # [D, K] in 0..m
    cells = np.minimum(cells, m)  # rounding of the last cumulative weight
    out = patterns[np.minimum(cells, m - 1)].copy()  # [D, K, S]; the pseudo-member's rows are set below
    urn = np.zeros((n_draws, k, s), bool)  # each draw's Polya urn of pseudo-member patterns so far
    size = np.zeros(n_draws, int)
    rows = np.arange(n_draws)
    for j in range(k):
        hit = cells[:, j] == m
        if not hit.any():
            continue
        new = rng.random(n_draws) * (1 + size) < 1  # a new pattern with probability 1 / (1 + r)
        fresh = rng.random((n_draws, s)) < 0.5
        pick = np.minimum((rng.random(n_draws) * np.maximum(size, 1)).astype(int), np.maximum(size - 1, 0))
        drawn = np.where(new[:, None], fresh, urn[rows, pick])
        out[hit, j] = drawn[hit]
        urn[rows[hit], size[hit]] = drawn[hit]
        size[hit] += 1
    return out


def _codes(counts: np.ndarray, i: int, k: int, col: Column) -> np.ndarray:
    """R21's verdict codes of column i per draw: over k members, or (R29) over each draw's informative ones."""
    if col.informative is None:
        return sign_test(counts[:, i], k, col.p0)
    k_in = counts[:, col.informative]
    out = np.full(len(k_in), INCONCLUSIVE_CODE, np.int8)
    for size in np.unique(k_in):
        at = k_in == size
        out[at] = sign_test(counts[at, i], int(size), col.p0)
    return out


def claim_codes(counts: np.ndarray, k: int, cols: list[Column], fixed: Mapping[str, list[str]]
                ) -> dict[str, np.ndarray]:
    """Each claim's verdict code (`vgh.ensemble.CODES`) per draw from its sub-checks' counts [D, S] of k members
    (R21 per sub-check; `claim_verdict`'s rule: FAIL if a required sub-check FAILs, PASS if every one PASSes,
    INCONCLUSIVE otherwise; a claim without a counted sub-check keeps its fixed verdicts' rule)."""
    d = counts.shape[0]
    codes = np.stack([_codes(counts, i, k, c) for i, c in enumerate(cols)], 1) if cols else \
        np.zeros((d, 0), np.int8)
    out = {}
    for cid, const in fixed.items():
        mine = [i for i, c in enumerate(cols) if c.claim == cid and c.role != "informative"]
        sub = codes[:, mine]
        required = np.array([cols[i].role == "required" for i in mine], bool)
        const_codes = [int(np.flatnonzero(CODES == v)[0]) for v in const]
        any_fail = (sub[:, required] == FAIL_CODE).any(1) if required.any() else np.zeros(d, bool)
        all_pass = (sub == PASS_CODE).all(1) & all(c == PASS_CODE for c in const_codes)
        if not mine and not const:
            out[cid] = np.full(d, INCONCLUSIVE_CODE, np.int8)  # every sub-check marked: INCONCLUSIVE (R17)
            continue
        out[cid] = np.where(any_fail, FAIL_CODE, np.where(all_pass, PASS_CODE, INCONCLUSIVE_CODE)).astype(np.int8)
    return out


def predicted_verdicts(claims: Mapping[str, Mapping[str, Any]], n_draws: int,
                       rng: np.random.Generator, k: int | None = None) -> dict[str, np.ndarray]:
    """Claim id -> its verdicts (strings) over n_draws fresh ensembles of k members (default: as many as observed)
    of one family (R22, R24); a family of fewer than two members predicts nothing (empty arrays), a family whose
    verdicts do not depend on the members (every sub-check marked not meaningful, R17, or unmeasured) predicts its
    fixed verdicts."""
    bits, cols, fixed = family_patterns(claims)
    n = bits.shape[0]
    k = n if k is None else int(k)
    if not cols:  # nothing depends on the members (every sub-check marked or unmeasured): the verdict is fixed
        counts = np.zeros((n_draws, 0), int)
    elif n < 2:
        return {cid: np.array([], dtype=object) for cid in claims}
    else:
        drawn = predictive_bits(bits, n_draws, rng, k)
        for i, c in enumerate(cols):  # R29: a member passes a sub-check counted over informative members only there
            if c.informative is not None:
                drawn[..., i] &= drawn[..., c.informative]
        counts = drawn.sum(1)
    return {cid: CODES[c] for cid, c in claim_codes(counts, k, cols, fixed).items()}


def recurrence(checks: Mapping[str, Any], verdict: str, n_draws: int, rng: np.random.Generator,
               claim: str = "claim") -> float:
    """R22: the predicted chance that a fresh ensemble gives `verdict` again, from one claim's sub-checks (the
    family's Dirichlet process projected on them is the same process on their bits); nan below two members."""
    drawn = predicted_verdicts({claim: checks}, n_draws, rng)[claim]
    return float(np.mean(drawn == verdict)) if len(drawn) else float("nan")


PREDICTION_DRAWS = 20000  # R22's predictive draws behind the table's prediction


def family_sizes(members: pd.DataFrame) -> dict[str, int]:
    """Family -> its number of members in a table of member pass bits (figures/claims_members.csv's layout): the
    size of a fresh ensemble that R24 predicts from the committed table's."""
    return {str(f): int(d["member"].nunique()) for f, d in members.groupby("family")}


def table_prediction(members: pd.DataFrame, n_draws: int = PREDICTION_DRAWS, seed: int = 0,
                     sizes: Mapping[str, int] | None = None) -> list[pd.DataFrame]:
    """R22's prediction of the verdict table of a fresh ensemble, from the members' pass bits (`members`, what
    `vgh.claims_table.claims_members` writes to figures/claims_members.csv; R24: the pooled members of every recorded
    ensemble): one frame of n_draws predicted verdicts per family of claims that share members (columns: claim ids),
    each a fresh ensemble of `sizes[family]` members (default: as many as `members` has); families are independent
    (their members are different replicates)."""
    rng = np.random.default_rng([int(seed), 23])
    out = []
    for name, fam in members.groupby("family", sort=True):
        drawn = predicted_verdicts(checks_from_members(fam), n_draws, rng, (sizes or {}).get(name))
        if all(len(v) for v in drawn.values()):
            out.append(pd.DataFrame(drawn))
    return out


def table_chance(predicted: list[pd.DataFrame], fresh: dict[str, str]) -> tuple[float, dict[str, float]]:
    """(p, chances): p = the predicted chance of a verdict table at most as probable as `fresh` (claim id -> verdict;
    families independent), and each claim's predicted chance of its fresh verdict. A claim the prediction does not
    cover (one member: no prediction) is left out."""
    dists, chances, fresh_p = [], {}, 1.0
    for frame in predicted:
        cols = [c for c in frame.columns if c in fresh]
        if not cols:
            continue
        freq = frame[cols].value_counts(normalize=True)
        key = tuple(fresh[c] for c in cols)
        fresh_p *= float(freq.get(key, 0.0))
        dists.append(freq.to_numpy(float))
        for c in cols:
            chances[c] = float((frame[c] == fresh[c]).mean())
    if not dists:
        return float("nan"), chances
    joint = dists[0]
    for d in dists[1:]:
        joint = np.outer(joint, d).ravel()
    return float(joint[joint <= fresh_p * (1 + 1e-9)].sum()), chances
